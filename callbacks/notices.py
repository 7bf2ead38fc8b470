"""The screen's notice: one line over the page that says why it shows less than asked.

Any callback may set it (``show``) and a screen clears it when it shows what was asked
(``clear``). A selection out of bounds is "lasting": it stays until the selection changes. A
query stopped by the statement timeout is "passing": it fades after a minute (wall screens
run for days), and any callback's timeout shows it, whatever screen it belongs to.
"""
from __future__ import annotations

import time

from dash import html, set_props

from dashboard.i18n import t, tf
from data_feeds.db import QueryTimeout
from data_feeds.outages import DATABASE, outage_of
from layouts import ids


def show(message: str, lasting: bool = True) -> None:
    # A new key makes a new element, so a passing notice shown again fades from the start.
    line = html.Div(message, key=f"{time.monotonic():.6f}", className="notice-lasting" if lasting else "notice-passing")
    set_props(ids.App.NOTICE, {"children": line})


def clear() -> None:
    set_props(ids.App.NOTICE, {"children": None})


def timeout_text(error: QueryTimeout, lang: str) -> str:
    return tf("query_timeout", lang, seconds=f"{error.seconds:g}")


def outage_text(service: str, lang: str) -> str:
    return t("database_unavailable" if service == DATABASE else "redis_unavailable", lang)


def callback_failed(error: Exception):
    """Dash's error handler for every callback: a query past the statement timeout, or the
    database or Redis unavailable, becomes a notice (in both languages: a handler does not know
    the page's) and leaves every output as it was, so the screen keeps what it shows and the
    next update tries again; any other error goes on to Flask's handlers (403, 500) as before."""
    if isinstance(error, QueryTimeout):
        show(f"{timeout_text(error, 'zh')} / {timeout_text(error, 'en')}", lasting=False)
        return None
    service = outage_of(error)
    if service is not None:
        show(f"{outage_text(service, 'zh')} / {outage_text(service, 'en')}", lasting=False)
        return None
    raise error
