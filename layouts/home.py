"""The start page: the district map with every grid and today's indicator tiles."""
from __future__ import annotations

from dash import dcc, html

from dashboard.i18n import t
from layouts import ids
from layouts.widgets import district_map, kpi_row, page_header, page_language

HOME_TILES = (
    "reported", "registered", "dispatched", "in_progress", "closed", "invalid", "overdue",
    "closure_rate", "on_time_closure_rate", "satisfaction_rate", "workers_online",
)
REFRESH_MS = 15_000
RETRY_S = 10  # a page that could not be built in an outage loads itself again after this


def layout(lang: str, area: dict, values: dict, outline: dict, grids: dict, bounds, tile_url: str | None, updated: str,
           other_language_href: str, user: str | None = None, links: list | None = None) -> html.Div:
    """The page for one area; ``area`` has code, name and the number of basic grids."""
    return html.Div(
        [
            page_header(
                [html.Span(area["name"], className="area-name"), " ", t("app_title", lang)], lang, user, other_language_href,
                right=[html.Span(f"{t('updated_at', lang)} ", className="muted"), html.Span(updated, id=ids.Home.UPDATED)],
                links=links,
            ),
            html.Section(
                [html.H2(f"{t('today', lang)}", className="section-title"), html.Div(kpi_row(values, HOME_TILES, lang), id=ids.Home.TILES, className="kpi-row")],
            ),
            html.Section(
                [
                    html.H2(f"{t('map_title', lang)} · {area['grid_count']} {t('basic_grids', lang)}", className="section-title"),
                    district_map(ids.Home.MAP, outline, grids, bounds, tile_url, ids.Home.GRIDS, ids.Home.OUTLINE, "gridops.map.gridStyle"),
                ],
                className="map-section",
            ),
            dcc.Store(id=ids.Home.STATE, data={"area": area["code"], "lang": lang}),
            dcc.Interval(id=ids.Home.REFRESH, interval=REFRESH_MS),
        ],
        className="page page-home",
        lang=page_language(lang),
    )


def not_found(lang: str, home_href: str) -> html.Div:
    return html.Div([html.H1(t("not_found", lang)), html.A(t("back_home", lang), href=home_href)], className="page page-missing", lang=page_language(lang))


def forbidden(lang: str) -> html.Div:
    return html.Div([html.H1(t("forbidden", lang)), html.A(t("back_home", lang), href="/")], className="page page-forbidden", lang=page_language(lang))


def unavailable(lang: str, retrying: bool = False) -> html.Div:
    """A page that could not be built: its queries ran past the statement timeout, or (``retrying``)
    the database or Redis is away and the page tries again by itself (the notice says which)."""
    heading = t("unavailable_retrying" if retrying else "unavailable", lang)
    retry = [dcc.Interval(id=ids.App.RETRY, interval=RETRY_S * 1000, max_intervals=1)] if retrying else []
    return html.Div([html.H1(heading), html.A(t("back_home", lang), href="/"), *retry], className="page page-unavailable",
                    lang=page_language(lang), **{"data-retrying": "1" if retrying else "0"})
