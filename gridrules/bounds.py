"""The bounds every request is held to, defined once for the API and the screens.

A parameter outside them is refused with a clear message before any work is done (400 on
the API, a notice on a screen), so that no single request can make a worker read the whole
database, count a century of cases or overflow a date; a body larger than any screen sends
is refused unread (413); and every query of the dashboard stops after a statement timeout
(503 on the API, a notice on a screen) instead of holding a worker.

The window length, the statement timeout and the streams per caller are settings
(``GRIDOPS_MAX_WINDOW_DAYS``, ``GRIDOPS_STATEMENT_TIMEOUT_S``, ``GRIDOPS_MAX_STREAMS``); the
defaults are here.
"""
from __future__ import annotations

from datetime import date

EARLIEST_DAY = date(2000, 1, 1)  # no grid-governance record predates it: an earlier date is a mistake
FUTURE_DAYS = 366  # deadlines and the weeks one may plan reach at most a year ahead
MAX_WINDOW_DAYS = 366  # a year and a day: a year compared with the year before
MAX_CASE_EVENTS = 500  # transitions of one case read for its panel (a real case has a dozen; a hostile feed may send more)
MAX_CASE_LIMIT = 1000  # cases in one /api/cases answer (newest first)
MAX_EXPORT_CASES = 10_000  # cases in one case-list export (newest first); a selection with more says so
MAX_BODY_BYTES = 2 * 1024 * 1024  # Dash callback bodies are a few KB; no API endpoint reads a body
MAX_CODE_LENGTH = 64  # area, grid and case codes; a longer one names nothing and is not looked up
STATEMENT_TIMEOUT_S = 15.0  # the dashboard's queries; the consumer and the importers have none
NEAREST_WORKERS = 5  # the online workers a case panel lists, nearest first
NEAREST_RADIUS_M = 20_000  # farther than a town's width nobody is "near": the list says so
MAX_NEAREST_SCAN = 2_000  # positions one nearest-worker search reads at most (offline and out-of-scope ones are skipped)
MAX_STREAMS = 8  # change streams one caller (user or token) holds open at once: a wall needs one
BUSY_PLACES = 16  # requests one dashboard worker works on at once (pandas is CPU: more only interleave)
BUSY_WAIT_S = 10.0  # a request waits this long for a place, then 503 with Retry-After


def body_limit_text() -> str:
    return f"{MAX_BODY_BYTES // (1024 * 1024)} MiB"


def quoted(text: str) -> str:
    """A caller's value quoted for a message, cut to MAX_CODE_LENGTH: an answer never echoes
    a whole oversized parameter."""
    return repr(text if len(text) <= MAX_CODE_LENGTH else text[:MAX_CODE_LENGTH] + "…")
