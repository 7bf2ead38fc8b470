"""The start page: build it from the database, refresh its tiles."""
from __future__ import annotations

from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from dashboard import cached_reads
from dashboard.auth import current_principal
from dashboard.context import AppContext, current_context
from data_feeds.queries import CaseFilter
from gridrules.access import Forbidden
from gridrules.clock import utc_now
from gridrules.geometry import area_features
from gridrules.timewindows import today
from layouts import home, ids
from layouts.widgets import bounds_of, grid_collection, kpi_row, nav_links


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    now = utc_now()
    scope = principal.scope
    area = cached_reads.home_area(ctx, scope)
    if area is None:
        return home.not_found(lang, "/")
    window = today(ctx.settings.tz, now)
    values = cached_reads.area_indicators(ctx, area, window, now, CaseFilter(), scope)
    outline = cached_reads.map_geometries(ctx, area, level=area.level)
    grids = cached_reads.map_geometries(ctx, area, level=4)
    states = cached_reads.grid_states(ctx, area, window, now, scope)
    outline_collection = area_features(outline, lambda g: {"name": g["name"]})
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
        user=principal.name if ctx.settings.auth else None,
        links=nav_links(principal, lang),
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
        scope = current_principal().scope
        try:
            area = cached_reads.area_in_scope(ctx, (state or {}).get("area"), scope)
        except (Forbidden, cached_reads.NotFound):
            raise PreventUpdate from None  # a forged or stale area: answer nothing
        values = cached_reads.area_indicators(ctx, area, today(ctx.settings.tz, now), now, CaseFilter(), scope)
        return kpi_row(values, home.HOME_TILES, state["lang"]), now.astimezone(ctx.settings.tz).strftime("%H:%M:%S")
