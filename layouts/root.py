"""The shell every page renders into: the URL and the page container."""
from dash import dcc, html

from layouts import ids


def layout() -> html.Div:
    return html.Div([dcc.Location(id=ids.App.URL, refresh="callback-nav"), html.Div(id=ids.App.PAGE)], className="app")
