"""Cached data functions behind the screens and the API (flask-caching on Redis).

The cache key is the question (area, window, filters), identical in every worker, so the
cost of a screen does not grow with the number of people watching it. A window still
running lives for seconds; a closed window for an hour.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from dashboard import area_reports, weekly_report
from dashboard.context import AppContext
from dashboard.extensions import cache
from dashboard.i18n import tf
from data_feeds import queries, reference
from data_feeds.db import replica_lag_seconds
from data_feeds.queries import CaseFilter
from gridrules import bounds, indicators
from gridrules.access import Principal, Scope
from gridrules.clock import utc_now
from gridrules.geometry import simplify_geometry
from gridrules.identifiers import is_identifier
from gridrules.indicators import Window
from gridrules.lifecycle import Rules

LIVE_TIMEOUT_S = 5
CLOSED_TIMEOUT_S = 3600
REFERENCE_TIMEOUT_S = 600

T = TypeVar("T")


def _window_key(window: Window) -> str:
    return f"{window.start.isoformat()}|{window.end.isoformat()}"


def _timeout(window: Window, now: datetime) -> int:
    return CLOSED_TIMEOUT_S if window.end <= now else LIVE_TIMEOUT_S


def cached(key: str, timeout: int, compute: Callable[[], T]) -> T:
    """``compute()``, or its value stored in the shared Redis cache under ``key`` for ``timeout``
    seconds, so that every worker and every viewer of the same thing shares one computation.
    The key must name everything the value depends on (area, window, filters, the caller's
    scope); ``compute`` must not return None (None means "not cached")."""
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, timeout=timeout)
    return value


REPLICA_LAG_CACHE_S = 5
REPLICA_LAG_NOTICE_S = 5.0  # a replica further behind than this is said on the screens


def replica_lag(ctx: AppContext) -> float | None:
    """How far the read replica is behind (seconds; shared for a moment), None without one.
    A replica that cannot say counts as far behind (an hour): the screens warn rather than stay silent."""
    if ctx.reader is ctx.engine:
        return None

    def compute() -> dict:
        try:
            lag = replica_lag_seconds(ctx.reader, ctx.engine)
        except SQLAlchemyError:
            lag = 3600.0
        return {"lag": lag}

    return cached("replica-lag", REPLICA_LAG_CACHE_S, compute)["lag"]


def replica_notice(ctx: AppContext, lang: str) -> str:
    """What the screens say of the replica: nothing unless it lags more than REPLICA_LAG_NOTICE_S."""
    lag = replica_lag(ctx)
    if lag is None or lag <= REPLICA_LAG_NOTICE_S:
        return ""
    return tf("replica_lagging", lang, seconds=f"{lag:.0f}")


def area_indicators(ctx: AppContext, area: reference.GridInfo, window: Window, now: datetime, filters: CaseFilter, scope: Scope) -> dict:
    """Every indicator of an area and window (the values behind /api/indicators and every tile)."""
    key = f"indicators|{area.code}|{_window_key(window)}|{filters.key()}|{scope.key()}"
    return cached(key, _timeout(window, now), lambda: area_reports.area_indicators(ctx.reader, ctx.config, area, window, filters, scope).values)


def intervention_counts(ctx: AppContext, area: reference.GridInfo, window: Window, now: datetime, scope: Scope) -> dict[str, dict]:
    """The centre's interventions per department (``indicators.INTERVENTION_KEYS``) in an area and window."""
    key = f"interventions|{area.code}|{_window_key(window)}|{scope.key()}"

    def compute():
        events = queries.load_interventions(ctx.reader, area.path, window, CaseFilter(), scope)
        # wrapped: the cache hands an empty dict back as a miss, and a day without interventions
        # (every morning) would query the database on every wall pull
        return {"by_dept": indicators.intervention_counts(events).to_dict("index")}

    return cached(key, _timeout(window, now), compute)["by_dept"]


def grid_states(ctx: AppContext, area: reference.GridInfo, window: Window, now: datetime, scope: Scope) -> dict[str, dict]:
    """Open (in progress) and overdue cases per basic grid of an area, at the window's asof."""
    key = f"grid-states|{area.code}|{_window_key(window)}|{scope.key()}"

    def compute():
        table = area_reports.grid_table(ctx.reader, area, window, CaseFilter(), scope)
        return {row["grid"]: {"in_progress": int(row["in_progress"]), "overdue": int(row["overdue"])} for row in table.to_dict("records")}

    return cached(key, _timeout(window, now), compute)


def map_geometries(ctx: AppContext, area: reference.GridInfo, level: int) -> list[dict]:
    """Simplified geometries of the area's grids of one level: code, name, geometry."""
    key = f"geometries|{area.code}|{level}"

    def compute():
        frame = reference.grid_geometries(ctx.reader, level, area.path)
        return [
            {"code": row["code"], "name": row["name"], "geometry": simplify_geometry(row["geometry"])}
            for row in frame.to_dict("records")
            if row["geometry"]
        ]

    return cached(key, REFERENCE_TIMEOUT_S, compute)


class NotFound(Exception):
    """A code that names nothing (an area, a case): answered with 404."""


class UnknownArea(NotFound):
    """An area parameter that names no grid: the caller's mistake (400 on the API)."""


def home_area(ctx: AppContext, scope: Scope) -> reference.GridInfo | None:
    """Where a caller's screens start: the root of their scope, else the district."""
    if scope.area_code:
        return grid(ctx, scope.area_code)
    return cached("root-grid", REFERENCE_TIMEOUT_S, lambda: reference.root_grid(ctx.reader) or False) or None


def area_in_scope(ctx: AppContext, code: str | None, scope: Scope) -> reference.GridInfo:
    """The grid ``code`` (the caller's home area when empty), refused when outside the scope."""
    from gridrules.access import Forbidden

    if not code:
        area = home_area(ctx, scope)
        if area is None:
            raise NotFound("the grid database holds no district yet (python app.py import-grids FILE)")
        return area
    area = grid(ctx, code)
    if area is None:
        raise UnknownArea(f"unknown area code {bounds.quoted(code)}")
    if not scope.covers(area.path):
        raise Forbidden(f"area {code} is outside your scope")
    return area


def grid(ctx: AppContext, code: str) -> reference.GridInfo | None:
    """A grid by code (cached: the tree changes only on import). A value that cannot be a
    code names nothing: it is neither looked up nor cached, whatever a caller sends."""
    if len(code) > bounds.MAX_CODE_LENGTH or not is_identifier(code):
        return None
    return cached(f"grid|{code}", REFERENCE_TIMEOUT_S, lambda: reference.load_grid(ctx.reader, code) or False) or None


def rules(ctx: AppContext) -> Rules:
    """The rule book (catalogue limits, calendar, grade limits): what a stage's lateness is counted in."""
    return cached("rules", REFERENCE_TIMEOUT_S, lambda: reference.load_rules(ctx.reader, ctx.config))


def names(ctx: AppContext, lang: str) -> dict:
    """The reference data every screen names things by, read and cached in this one place (it
    changes only on import), in the language of the page: ``departments``, ``categories``
    (major classes), ``categories_all``, ``category_parents``, ``category_levels``, ``grids``."""
    def compute():
        categories = reference.load_categories(ctx.reader)
        departments = reference.load_departments(ctx.reader).to_dict("records")
        grids = reference.grid_names(ctx.reader)
        result = {}
        for language in ("zh", "en"):
            pick = (lambda zh, en: en or zh) if language == "en" else (lambda zh, en: zh)
            result[language] = {
                "departments": {d["code"]: pick(d["name"], d["name_en"]) for d in departments},
                "categories": {c.code: pick(c.name, c.name_en) for c in categories.values() if c.level == 1},
                "categories_all": {c.code: pick(c.name, c.name_en) for c in categories.values()},
                "category_parents": {c.code: c.parent for c in categories.values()},
                "category_levels": {c.code: c.level for c in categories.values()},
                "grids": grids,
            }
        return result

    return cached("reference-names", REFERENCE_TIMEOUT_S, compute)[lang if lang == "en" else "zh"]


CLOSED_WEEK_S = 6 * 3600
OPEN_WEEK_S = 60


def period_report(ctx: AppContext, principal: Principal, area_code: str | None, kind: str, first: date, lang: str) -> weekly_report.WeeklyReport:
    """The assessment report of a week, month or quarter for the caller's scope, cached: a closed
    period for hours, the running one for a minute."""
    now = utc_now()
    area = area_in_scope(ctx, area_code, principal.scope)
    key = f"weekly|{kind}|{area.code}|{first.isoformat()}|{principal.scope.key()}|{lang}"

    value = cache.get(key)
    if value is None:
        value = weekly_report.build(ctx.reader, ctx.config, area, kind, first, principal.scope, now, names(ctx, lang))
        cache.set(key, value, timeout=CLOSED_WEEK_S if value.window.end <= now else OPEN_WEEK_S)
    return value


def major_class(parents: dict, code: str) -> str:
    """The major class (first level of the catalogue) a class belongs to."""
    while parents.get(code):
        code = parents[code]
    return code
