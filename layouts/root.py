"""The shell every page renders into: the URL, the notice line and the page container."""
from dash import dcc, html

from layouts import ids


def layout() -> html.Div:
    return html.Div([
        dcc.Location(id=ids.App.URL, refresh="callback-nav"),
        html.Div(id=ids.App.NOTICE, className="app-notice", role="alert"),  # over the page: the wall keeps its 16:9
        html.Div(id=ids.App.PAGE),
    ], className="app")
