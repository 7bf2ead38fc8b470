"""The video wall: build it once, then keep it live with pushed signals and pulled deltas."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import ClientsideFunction, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import services, wall_service
from gridrules import wall_rules
from gridrules.access import Forbidden
from dashboard.auth import current_principal
from gridrules.clock import utc_now
from dashboard.context import AppContext, current_context
from dashboard.i18n import t, tf
from data_feeds import queries
from data_feeds.outages import DATABASE, outage_of
from layouts import ids, wall
from layouts.widgets import bounds_of, kpi_row

STREAM_PATH = "/stream/changes"


def _collection(items: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g["geometry"], "properties": {"code": g["code"], "name": g["name"]}} for g in items
    ]}


def _names(ctx, lang: str, area) -> tuple[dict, dict, dict]:
    grids = services._cached(f"grid-names|{area.code}", services.REFERENCE_TIMEOUT_S,
                             lambda: {g["code"]: g["name"] for g in services.map_geometries(ctx, area, level=4)})
    return wall_service.category_names(ctx, lang), grids, wall_service.department_names(ctx, lang)


def _parts(ctx: AppContext, scope, area, lang: str, now, cursor: dict, force: bool, scale: float = 1.0) -> dict:
    """Board, ticker, counts, tiles and charts, each only when it changed (or ``force``)."""
    records = wall_service.open_records(ctx, scope)
    ancestors = wall_service.ancestors(ctx)
    towns = {g["code"] for g in services.map_geometries(ctx, area, level=2)} if area.level < 2 else set()
    counts = wall_rules.grid_counts(records, now)
    parts = {
        "counts": counts,
        "town_counts": wall_rules.area_counts(counts, ancestors, towns),
        "board": wall_rules.dispatch_board(records, now),
        "alerts": wall_rules.alert_rows(records, now, limit=None, newest_first=True),
        "tiles": wall_service.tiles(ctx, area, scope, now),
    }
    digests = dict(cursor.get("digests", {}))
    changed = {}
    for name, value in parts.items():
        digest = wall_service._digest(value if name != "alerts" else [(r["id"], r["state"]) for r in value])
        if force or digests.get(name) != digest:
            changed[name] = value
            digests[name] = digest
    minute = now.strftime("%Y%m%d%H%M") + f"@{scale:.2f}"
    if force or cursor.get("minute") != minute or cursor.get("area") != area.code:
        changed["charts"] = _figures(ctx, scope, area, lang, now, scale)
    return {"changed": changed, "digests": digests, "minute": minute}


def _figures(ctx, scope, area, lang: str, now, scale: float = 1.0) -> dict:
    categories = wall_service.major_class_counts(wall_service.breakdown(ctx, area, scope, now, "category"), ctx, lang).head(8)
    return {
        "trend": wall.trend_figure(wall_service.hourly_trend(ctx, area, scope, now), lang, scale),
        "categories": wall.bar_figure(categories["name"], categories["reported"], "#3aa0ff", scale),
        "sources": wall.source_figure(wall_service.breakdown(ctx, area, scope, now, "source"), lang, scale),
    }


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    now = utc_now()
    scope = principal.scope
    area = services.home_area(ctx, scope)
    kiosk = query.get("kiosk") == "1"
    try:
        rotate = max(0, int(query.get("rotate", "0")))
    except ValueError:
        rotate = 0
    change_id = wall_service.latest_change_id(ctx)  # before reading state: nothing falls between
    records = wall_service.open_records(ctx, scope)
    category_names, grid_names, department_names = _names(ctx, lang, area)
    grids = services.map_geometries(ctx, area, level=4)
    towns = services.map_geometries(ctx, area, level=2) if area.level < 2 else []
    outline = services.map_geometries(ctx, area, level=area.level)
    parts = _parts(ctx, scope, area, lang, now, {}, force=True)
    changed = parts["changed"]
    cases = [f for f in (wall_rules.case_feature(r, now, category_names) for r in records) if f]
    workers = wall_service.worker_features(ctx, scope, wall_service.all_workers(ctx), now)
    cursor = {"changes": change_id, "gps": now.timestamp(), "digests": parts["digests"], "minute": parts["minute"], "area": area.code}
    state = {
        "area": area.code,
        "lang": lang,
        "kiosk": kiosk,
        "rotate": rotate,
        "tz": ctx.settings.tz_name,
        "towns": [g["code"] for g in towns],
        "cursor": cursor,
        "trail_points": wall_service.TRAIL_POINTS,
        "ids": {"signal": ids.Wall.SIGNAL, "workers": ids.Wall.WORKERS, "trails": ids.Wall.TRAILS},  # for set_props in wall.js
        "feed": feed_signal(ctx, now, lang),
    }
    map_parts = {
        "grids": _collection(grids), "towns": _collection(towns), "outline": _collection(outline),
        "bounds": bounds_of(outline[0]["geometry"]), "tile_url": ctx.settings.tile_url,
        "counts": changed["counts"], "town_counts": changed["town_counts"],
        "cases": wall_rules.feature_collection(cases), "workers": wall_rules.feature_collection(workers),
        "trails": wall_rules.trail_collection(workers),
    }
    figures = changed["charts"]
    return wall.layout(
        lang, {"code": area.code, "name": area.name}, kiosk, changed["tiles"], map_parts,
        wall.board_table(changed["board"], department_names, lang),
        wall.ticker(changed["alerts"], category_names, grid_names, department_names, lang),
        figures, state, other_language_href, f"{STREAM_PATH}?{urlencode({'area': area.code})}",
    )


def feed_signal(ctx, now, lang: str) -> dict:
    """What the wall's header shows of the feed: when the consumer last received a message
    (the page ages it every second), and — when the feed is not ok — the state and what to say
    (no consumer, a consumer waiting out an outage, lagging): red or amber from the first render,
    whenever the trouble began."""
    health = wall_service.feed_health(ctx, now)
    return {"last_ms": health["last_ms"], "state": health["state"], "text": feed_text(health, lang)}


def feed_text(health: dict, lang: str) -> str:
    state = health["state"]
    if state == "ok":
        return ""
    if state == "degraded":
        return t({"database": "feed_database_down", "redis": "feed_redis_down"}.get(health.get("reason"), "feed_fault"), lang)
    if state == "lagging":
        return tf("feed_lagging", lang, seconds=f"{health.get('lag_s') or 0:.0f}")
    return t("feed_no_consumer" if state == "no_consumer" else "feed_fault", lang)


def unavailable_signal(service: str, lang: str) -> dict:
    """The header when the wall's own pull cannot reach the database or Redis."""
    return {"last_ms": None, "state": "unavailable", "text": t("feed_database_down" if service == DATABASE else "feed_redis_down", lang)}


def _view_area(ctx, scope, state: dict, view: dict | None):
    index = (view or {}).get("index", 0)
    towns = state.get("towns", [])
    code = towns[index - 1] if 1 <= index <= len(towns) else state["area"]
    return services.area_in_scope(ctx, code, scope), index


def pull(ctx: AppContext, principal, state: dict, cursor: dict, view: dict | None, scale: float = 1.0):
    """Everything that changed since ``cursor``, and the new cursor."""
    now = utc_now()
    scope = principal.scope
    area, _ = _view_area(ctx, scope, state, view)
    lang = state["lang"]
    delta: dict = {"feed": feed_signal(ctx, now, lang)}
    entries = wall_service.change_entries(ctx, cursor.get("changes", "0-0"))
    changes = [fields for _, fields in entries]
    category_names, grid_names, department_names = _names(ctx, lang, services.area_in_scope(ctx, state["area"], scope))
    if len(entries) > wall_service.MAX_CHANGES:
        records = wall_service.open_records(ctx, scope)
        delta.update(reset_cases=True, cases=[f for f in (wall_rules.case_feature(r, now, category_names) for r in records) if f])
    elif entries:
        # Only changes the caller may know of name a case, whatever follows from them.
        visible = wall_rules.case_changes_in_scope(changes, wall_service.grid_paths(ctx), scope)
        changed_ids = sorted({fields["case_id"] for fields in visible})
        if changed_ids:
            in_scope = wall_service.open_records_by_id(ctx, changed_ids, scope)
            upserts = [f for f in (wall_rules.case_feature(in_scope[i], now, category_names) for i in changed_ids if i in in_scope) if f]
            delta.update(cases=upserts, cases_remove=[i for i in changed_ids if i not in in_scope], new=wall_rules.new_reports(visible))
    new_change_id = entries[-1][0] if entries else cursor.get("changes", "0-0")
    moved = wall_service.all_workers(ctx) if len(entries) > wall_service.MAX_CHANGES else wall_rules.moved_workers(changes)
    if moved:
        delta["worker_moves"] = wall_service.worker_moves(ctx, scope, moved, now)
    offline = wall_service.gone_offline(ctx, scope, cursor.get("gps", now.timestamp()) - 1.0, now)
    if offline:
        delta["workers_offline"] = offline
    parts = _parts(ctx, scope, area, lang, now, cursor, force=False, scale=scale)
    changed = parts["changed"]
    if "counts" in changed:
        delta["grid_counts"] = changed["counts"]
    if "town_counts" in changed:
        delta["town_counts"] = changed["town_counts"]
    new_cursor = {"changes": new_change_id, "gps": now.timestamp(), "digests": parts["digests"], "minute": parts["minute"], "area": area.code}
    outputs = {
        "tiles": kpi_row(changed["tiles"], wall.WALL_TILES, lang) if "tiles" in changed else no_update,
        "board": wall.board_table(changed["board"], department_names, lang) if "board" in changed else no_update,
        "ticker": wall.ticker(changed["alerts"], category_names, grid_names, department_names, lang) if "alerts" in changed else no_update,
        "charts": changed.get("charts"),
    }
    return delta, new_cursor, outputs


def register(app) -> None:
    @app.callback(
        Output(ids.Wall.DELTA, "data"),
        Output(ids.Wall.CURSOR, "data"),
        Output(ids.Wall.TILES, "children"),
        Output(ids.Wall.BOARD, "children"),
        Output(ids.Wall.TICKER, "children"),
        Output(ids.Wall.TREND, "figure"),
        Output(ids.Wall.CATEGORIES, "figure"),
        Output(ids.Wall.SOURCES, "figure"),
        Input(ids.Wall.SIGNAL, "data"),
        Input(ids.Wall.PULL, "n_intervals"),
        Input(ids.Wall.VIEW, "data"),
        Input(ids.Wall.SCALE, "data"),
        State(ids.Wall.STATE, "data"),
        State(ids.Wall.CURSOR, "data"),
        prevent_initial_call=True,
    )
    def refresh(_signal, _tick, view, scale, state, cursor):
        principal = current_principal()
        principal.require("wall")
        scale = min(4.0, max(0.5, float(scale or 1.0)))
        try:
            delta, new_cursor, outputs = pull(current_context(), principal, state or {}, cursor or {}, view, scale)
        except (Forbidden, services.NotFound):
            raise PreventUpdate from None  # a forged or stale area: answer nothing
        except Exception as error:
            service = outage_of(error)
            if service is None:
                raise
            # The database or Redis is away: the header says so in red, the map keeps what it
            # shows, and the next signal or poll tries again.
            signal = unavailable_signal(service, (state or {}).get("lang", "zh"))
            return ({"feed": signal},) + (no_update,) * 7
        charts = outputs["charts"] or {}
        return (
            delta, new_cursor, outputs["tiles"], outputs["board"], outputs["ticker"],
            charts.get("trend", no_update), charts.get("categories", no_update), charts.get("sources", no_update),
        )

    @app.callback(
        Output(ids.Wall.MAP, "bounds"),
        Output(ids.Wall.VIEW_TITLE, "children"),
        Output(ids.Wall.OVERDUE_VIEW, "className"),
        Output(ids.Wall.OVERDUE_VIEW, "children"),
        Input(ids.Wall.VIEW, "data"),
        State(ids.Wall.STATE, "data"),
        prevent_initial_call=True,
    )
    def show_view(view, state):
        """Rotation: the district, each town in turn, then the overdue list full screen."""
        ctx, principal = current_context(), current_principal()
        principal.require("wall")
        lang = state["lang"]
        index = (view or {}).get("index", 0)
        if index == len(state.get("towns", [])) + 1:
            home = services.area_in_scope(ctx, state["area"], principal.scope)
            category_names, grid_names, department_names = _names(ctx, lang, home)
            rows = wall_rules.alert_rows(wall_service.open_records(ctx, principal.scope), utc_now(), limit=None)
            content = [html.H2(t("overdue_list", lang), className="overdue-title"),
                       wall.ticker(rows, category_names, grid_names, department_names, lang, limit=wall.OVERDUE_LIST_ROWS, page=None)]
            return no_update, t("overdue_list", lang), "overdue-view", content
        try:
            area, _ = _view_area(ctx, principal.scope, state, view)
        except (Forbidden, services.NotFound):
            raise PreventUpdate from None
        outline = services.map_geometries(ctx, area, level=area.level)
        title = "" if index == 0 else area.name
        return bounds_of(outline[0]["geometry"]), title, "overdue-view hidden", []

    @app.callback(
        Output(ids.Wall.GRID_INFO, "children"),
        Input(ids.Wall.GRIDS, "clickData"),
        State(ids.Wall.STATE, "data"),
        prevent_initial_call=True,
    )
    def grid_clicked(feature, state):
        """Name, staff and counts of a clicked grid (inside the caller's scope only)."""
        ctx, principal = current_context(), current_principal()
        principal.require("wall")
        code = ((feature or {}).get("properties") or {}).get("code")
        grid = services.grid(ctx, code) if code else None
        if grid is None or not principal.scope.covers(grid.path):
            raise PreventUpdate
        staff = [row for row in queries.list_workers(ctx.engine, grid.path, principal.scope) if row["grid"] == code]
        counts = wall_rules.grid_counts(wall_service.open_records(ctx, principal.scope), utc_now()).get(code, [0, 0])
        return wall.grid_info({"code": grid.code, "name": grid.name}, staff, counts, state["lang"])

    app.clientside_callback(
        ClientsideFunction("gridops_wall", "apply"),
        Output(ids.Wall.CASES, "data"),
        Output(ids.Wall.WORKERS, "data"),
        Output(ids.Wall.TRAILS, "data"),
        Output(ids.Wall.GRIDS, "hideout"),
        Output(ids.Wall.TOWNS, "hideout"),
        Output(ids.Wall.LAST_OK, "data"),
        Input(ids.Wall.DELTA, "data"),
        Input(ids.Wall.MAP, "zoom"),
        State(ids.Wall.CASES, "data"),
        State(ids.Wall.WORKERS, "data"),
        State(ids.Wall.GRIDS, "hideout"),
        State(ids.Wall.TOWNS, "hideout"),
        State(ids.Wall.STATE, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("gridops_wall", "tick"),
        Output(ids.Wall.CLOCK, "children"),
        Output(ids.Wall.HEALTH, "className"),
        Output(ids.Wall.HEALTH, "children"),
        Output(ids.Wall.STALE, "children"),
        Output(ids.Wall.STREAM, "url"),
        Input(ids.Wall.TICK, "n_intervals"),
        State(ids.Wall.LAST_OK, "data"),
        State(ids.Wall.DELTA, "data"),
        State(ids.Wall.STATE, "data"),
        State(ids.Wall.STREAM, "url"),
        State(ids.Wall.STREAM_HEARD, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("gridops_wall", "heard"),
        Output(ids.Wall.SIGNAL, "data"),
        Output(ids.Wall.STREAM_HEARD, "data"),
        Input(ids.Wall.STREAM, "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("gridops_wall", "reconnect"),
        Output(ids.Wall.STREAM, "url", allow_duplicate=True),
        Input(ids.Wall.STREAM, "done"),
        State(ids.Wall.STREAM, "url"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("gridops_wall", "measure"),
        Output(ids.Wall.SCALE, "data"),
        Input(ids.Wall.TICK, "n_intervals"),
        State(ids.Wall.SCALE, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("gridops_wall", "rotate"),
        Output(ids.Wall.VIEW, "data"),
        Input(ids.Wall.ROTATE, "n_intervals"),
        State(ids.Wall.VIEW, "data"),
        State(ids.Wall.STATE, "data"),
        prevent_initial_call=True,
    )

