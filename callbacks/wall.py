"""The video wall: build it once, then keep it live with pushed signals and pulled deltas.
The data come from ``dashboard.wall_screen``; this module turns them into components."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import ClientsideFunction, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from flask import request

from dashboard import cached_reads, wall_screen
from dashboard.auth import current_principal
from dashboard.context import AppContext, current_context
from dashboard.i18n import t
from data_feeds.outages import outage_of
from gridrules import wall_rules
from gridrules.access import Forbidden
from gridrules.geometry import area_features, feature_collection
from layouts import ids, wall
from layouts.widgets import bounds_of, kpi_row

STREAM_PATH = "/stream/changes"
PAGE_IDS = {"signal": ids.Wall.SIGNAL, "workers": ids.Wall.WORKERS, "trails": ids.Wall.TRAILS, "ticker": ids.Wall.TICKER,
            "overdue_view": ids.Wall.OVERDUE_VIEW, "board": ids.Wall.BOARD}


def _figures(charts: dict, lang: str, scale: float) -> dict:
    categories = charts["categories"]
    return {
        "trend": wall.trend_figure(charts["trend"], lang, scale),
        "categories": wall.bar_figure(categories["name"], categories["reported"], "#3aa0ff", scale),
        "sources": wall.source_figure(charts["sources"], lang, scale),
    }


def _ticker(rows, names: wall_screen.Names, lang: str, **options):
    return wall.ticker(rows, names.categories, names.grids, names.departments, lang, **options)


def _attention(items: list[dict], names: wall_screen.Names, principal, state: dict) -> tuple[list, list[str]]:
    can = principal.can("command") and not state.get("kiosk")
    return wall.attention_banner(items, names.categories, names.grids, state["lang"], can), [item["key"] for item in items]


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    opened = wall_screen.opening(ctx, principal, lang, query, PAGE_IDS, {"timing": wall.TIMING, "texts": wall.js_texts(lang)})
    area, changed = opened.area, opened.parts.changed
    map_parts = {
        "grids": area_features(opened.grids), "towns": area_features(opened.towns), "outline": area_features(opened.outline),
        "bounds": bounds_of(opened.outline[0]["geometry"]), "tile_url": ctx.settings.tile_url,
        "counts": changed["counts"], "town_counts": changed["town_counts"],
        "cases": feature_collection(opened.cases), "workers": feature_collection(opened.workers),
        "trails": wall_rules.trail_collection(opened.workers),
    }
    return wall.layout(
        lang, {"code": area.code, "name": area.name}, opened.state["kiosk"], changed["tiles"], map_parts,
        wall.board_table(changed["board"], opened.names.departments, lang),
        _ticker(changed["alerts"], opened.names, lang),
        _figures(opened.parts.charts, lang, 1.0), opened.state, other_language_href, f"{STREAM_PATH}?{urlencode({'area': area.code})}",
        attention=_attention(changed["attention"], opened.names, principal, opened.state)[0],
    )


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
        Output(ids.Wall.ATTENTION, "children"),
        Output(ids.Wall.ATTENTION_KEYS, "data"),
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
            pulled = wall_screen.pull(current_context(), principal, state or {}, cursor or {}, view, scale)
        except (Forbidden, cached_reads.NotFound):
            raise PreventUpdate from None  # a forged or stale area: answer nothing
        except Exception as error:
            service = outage_of(error)
            if service is None:
                raise
            # The database or Redis is away: the header says so in red, the map keeps what it
            # shows, and the next signal or poll tries again.
            signal = wall_screen.unavailable_signal(service, (state or {}).get("lang", "zh"))
            return ({"feed": signal},) + (no_update,) * 9
        lang, changed = state["lang"], pulled.parts.changed
        figures = _figures(pulled.parts.charts, lang, scale) if pulled.parts.charts is not None else {}
        return (
            pulled.delta, pulled.cursor,
            kpi_row(changed["tiles"], wall.WALL_TILES, lang) if "tiles" in changed else no_update,
            wall.board_table(changed["board"], pulled.names.departments, lang) if "board" in changed else no_update,
            _ticker(changed["alerts"], pulled.names, lang) if "alerts" in changed else no_update,
            figures.get("trend", no_update), figures.get("categories", no_update), figures.get("sources", no_update),
            *(_attention(changed["attention"], pulled.names, principal, state) if "attention" in changed else (no_update, no_update)),
        )

    @app.callback(
        Output(ids.Wall.ATTENTION, "children", allow_duplicate=True),
        Input(ids.Wall.ACKNOWLEDGE, "n_clicks"),
        State(ids.Wall.ATTENTION_KEYS, "data"),
        prevent_initial_call=True,
    )
    def acknowledge(clicks, shown):
        """Acknowledge what the banner shows, for every wall (they hear it on the change stream)."""
        if not clicks:
            raise PreventUpdate
        ctx, principal = current_context(), current_principal()
        try:
            wall_screen.acknowledge(ctx, principal, shown, request.remote_addr)
        except Forbidden:
            raise PreventUpdate from None
        return []

    @app.callback(
        Output(ids.Wall.MAP, "viewport"),
        Output(ids.Wall.FOCUS, "data"),
        Output(ids.Wall.VIEW_TITLE, "children"),
        Output(ids.Wall.OVERDUE_VIEW, "className"),
        Output(ids.Wall.OVERDUE_VIEW, "children"),
        Input(ids.Wall.VIEW, "data"),
        State(ids.Wall.STATE, "data"),
        prevent_initial_call=True,
    )
    def show_view(view, state):
        """Rotation: the district, each town in turn (the map fits and outlines it; the tiles,
        board and alerts are the town's: ``wall_screen.pull`` follows the view), then the
        overdue list full screen."""
        ctx, principal = current_context(), current_principal()
        principal.require("wall")
        lang = state["lang"]
        index = (view or {}).get("index", 0)
        if index == len(state.get("towns", [])) + 1:
            home = cached_reads.area_in_scope(ctx, state["area"], principal.scope)
            content = [html.H2(t("overdue_list", lang), className="overdue-title"),
                       _ticker(wall_screen.overdue_rows(ctx, principal), wall_screen.names(ctx, lang, home), lang, limit=wall.OVERDUE_LIST_ROWS, page=None)]
            return no_update, no_update, t("overdue_list", lang), "overdue-view", content
        try:
            area, _ = wall_screen.view_area(ctx, principal.scope, state, view)
        except (Forbidden, cached_reads.NotFound):
            raise PreventUpdate from None
        outline = cached_reads.map_geometries(ctx, area, level=area.level)
        title = "" if index == 0 else area.name
        focus = {"type": "FeatureCollection", "features": [] if index == 0 else [{"type": "Feature", "geometry": outline[0]["geometry"], "properties": {}}]}
        # viewport, not bounds: a map's bounds apply only when it is made
        return {"bounds": bounds_of(outline[0]["geometry"]), "transition": "fitBounds"}, focus, title, "overdue-view hidden", []

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
        panel = wall_screen.grid_panel(ctx, principal, ((feature or {}).get("properties") or {}).get("code"))
        if panel is None:
            raise PreventUpdate
        grid, staff, counts = panel
        return wall.grid_info(grid, staff, counts, state["lang"])

    @app.callback(
        Output(ids.Wall.GRID_INFO, "children", allow_duplicate=True),
        Output(ids.Wall.FOCUS, "data", allow_duplicate=True),
        Input(ids.Wall.WORKERS, "clickData"),
        State(ids.Wall.STATE, "data"),
        prevent_initial_call=True,
    )
    def worker_clicked(feature, state):
        """Who a clicked worker is, today's patrol, and their trail drawn out (inside the caller's scope only)."""
        ctx, principal = current_context(), current_principal()
        principal.require("wall")
        try:
            area = cached_reads.area_in_scope(ctx, state["area"], principal.scope)
        except (Forbidden, cached_reads.NotFound):
            raise PreventUpdate from None
        clicked = feature or {}
        worker = wall_screen.worker_panel(ctx, principal, str(clicked.get("id") or (clicked.get("properties") or {}).get("id") or ""), area, state["lang"])
        if worker is None:
            raise PreventUpdate
        trail = worker["trail"]
        focus = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": trail}, "properties": {}}]
                 if len(trail) >= 2 else []}
        return wall.worker_info(worker, state["lang"]), focus

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
        State(ids.Wall.STATE, "data"),
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

