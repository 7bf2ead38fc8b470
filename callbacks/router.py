"""Render the page for the URL: path picks the screen, ``?lang=en`` the language; the caller's
role decides whether it may be shown at all."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from dash import ClientsideFunction, Input, Output, State

from callbacks import admin, home, notices, review, wall, weekly
from dashboard.auth import current_principal
from dashboard.context import current_context
from dashboard.i18n import normalise_language
from data_feeds.db import QueryTimeout
from data_feeds.outages import outage_of
from gridrules.access import PAGE_PERMISSIONS
from layouts import ids
from layouts.home import forbidden, not_found, unavailable

# path -> function(ctx, principal, lang, query, other language href) building the page
PAGES = {"/": home.page, "/wall": wall.page, "/review": review.page, "/weekly": weekly.page, "/admin": admin.users_page, "/admin/audit": admin.audit_page}


def parse_query(search: str | None) -> dict[str, str]:
    """``?a=1&b=2`` → {"a": "1", "b": "2"} (last value wins)."""
    return {key: values[-1] for key, values in parse_qs((search or "").lstrip("?")).items()}


def language_href(pathname: str, query: dict, lang: str) -> str:
    """The same page in the other language."""
    other = "en" if lang == "zh" else "zh"
    return f"{pathname}?{urlencode({**query, 'lang': other})}"


def register(app) -> None:
    # The page is built when the path changes; a screen that keeps its selection in the query
    # (the review) follows query changes itself, without being rebuilt.
    @app.callback(Output(ids.App.PAGE, "children"), Input(ids.App.URL, "pathname"), State(ids.App.URL, "search"))
    def render_page(pathname, search):
        query = parse_query(search)
        lang = normalise_language(query.get("lang"))
        path = pathname or "/"
        builder = PAGES.get(path)
        if builder is None:
            return not_found(lang, "/")
        principal = current_principal()
        if not principal.can(PAGE_PERMISSIONS[path]):
            return forbidden(lang)
        notices.clear()  # a new page: whatever the last one had to say is moot (its builder may say something new)
        try:
            return builder(current_context(), principal, lang, query, language_href(path, query, lang))
        except QueryTimeout as error:
            notices.show(notices.timeout_text(error, lang))
            return unavailable(lang)
        except Exception as error:
            service = outage_of(error)
            if service is None:
                raise
            # The database or Redis is away: say so; the page loads itself again in a few seconds.
            notices.show(notices.outage_text(service, lang))
            return unavailable(lang, retrying=True)

    # An unavailable page's timer: load the page again (the outage may be over by then).
    app.clientside_callback(ClientsideFunction("gridops_app", "reload"), Output(ids.App.RETRY, "disabled"),
                            Input(ids.App.RETRY, "n_intervals"), prevent_initial_call=True)
