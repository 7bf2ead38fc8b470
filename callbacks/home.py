"""The start page: build it from the database, refresh its tiles."""
from __future__ import annotations

from dash import Input, Output, State

from dashboard import services
from dashboard.clock import utc_now
from dashboard.context import AppContext, current_context
from dashboard.timewindows import today
from data_feeds import reference
from layouts import home, ids
from layouts.widgets import bounds_of, grid_collection, kpi_row


def page(ctx: AppContext, lang: str, query: dict, other_language_href: str):
    now = utc_now()
    area = reference.root_grid(ctx.engine)
    if area is None:
        return home.not_found(lang, "/")
    window = today(ctx.settings.tz, now)
    values = services.area_indicators(ctx, area, window, now)
    outline = services.map_geometries(ctx, area, level=area.level)
    grids = services.map_geometries(ctx, area, level=4)
    states = services.grid_states(ctx, area, window, now)
    outline_collection = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": g["geometry"], "properties": {"name": g["name"]}} for g in outline]}
    return home.layout(
        lang,
        {"code": area.code, "name": area.name, "grid_count": len(grids)},
        values,
        outline_collection,
        grid_collection(grids, states, lang),
        bounds_of(outline[0]["geometry"]),
        ctx.settings.tile_url,
        now.astimezone(ctx.settings.tz).strftime("%H:%M:%S"),
        other_language_href,
    )


def register(app) -> None:
    @app.callback(
        Output(ids.Home.TILES, "children"),
        Output(ids.Home.UPDATED, "children"),
        Input(ids.Home.REFRESH, "n_intervals"),
        State(ids.Home.STATE, "data"),
        prevent_initial_call=True,
    )
    def refresh_tiles(_, state):
        ctx = current_context()
        now = utc_now()
        area = services.grid(ctx, state["area"])
        values = services.area_indicators(ctx, area, today(ctx.settings.tz, now), now)
        return kpi_row(values, home.HOME_TILES, state["lang"]), now.astimezone(ctx.settings.tz).strftime("%H:%M:%S")
