"""Shared widgets as pure builders: indicator tiles, the grid map and its GeoJSON.

Everything arrives as arguments (no clock, no I/O), so each builder is unit-tested
without a browser.
"""
from __future__ import annotations

import dash_leaflet as dl
from dash import html
from shapely.geometry import shape

from dashboard.formatting import change_parts, format_value
from dashboard.i18n import t
from gridrules.geometry import area_features
from layouts import ids

OUTLINE_STYLE = {"color": "#5ad8ff", "weight": 3, "fill": False, "opacity": 0.9}


def change_tiles(values: dict, previous: dict, names: tuple, lang: str) -> list:
    """Indicator tiles with their change against the period before (``data-kpi``/``data-value``)."""
    result = []
    for name in names:
        value = values.get(name)
        text, tone = change_parts(name, value, previous.get(name), lang)
        raw = "" if value is None else repr(value) if isinstance(value, float) else str(value)
        result.append(html.Div([
            html.Div(t(name, lang), className="kpi-label"),
            html.Div(format_value(name, value, lang), className="kpi-value"),
            html.Div([html.Span(t("vs_before", lang) + " ", className="muted"), html.Span(text, className=f"change change-{tone}")], className="kpi-change"),
        ], className="kpi", **{"data-kpi": name, "data-value": raw}))
    return result


def kpi_tile(name: str, value, lang: str, emphasis: str | None = None) -> html.Div:
    """One indicator tile; ``data-kpi`` names the indicator and ``data-value`` holds the raw number."""
    raw = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    class_name = "kpi" + (f" kpi-{emphasis}" if emphasis else "")
    return html.Div(
        [html.Div(t(name, lang), className="kpi-label"), html.Div(format_value(name, value, lang), className="kpi-value")],
        id=ids.kpi(name),
        className=class_name,
        **{"data-kpi": name, "data-value": raw},
    )


def kpi_row(values: dict, names: tuple[str, ...], lang: str) -> list[html.Div]:
    """Tiles for ``names`` in order; overdue counts above zero are emphasised."""
    return [kpi_tile(name, values.get(name), lang, "alert" if name == "overdue" and values.get(name) else None) for name in names]


def grid_collection(grids, counts: dict[str, dict], lang: str) -> dict:
    """A FeatureCollection of grids with their open and overdue counts in the properties.

    ``grids``: records with code, name, geometry (GeoJSON dict, already simplified);
    ``counts``: code → {"in_progress": n, "overdue": n}.
    """
    def properties(grid):
        count = counts.get(grid["code"], {})
        open_cases, overdue = int(count.get("in_progress", 0) or 0), int(count.get("overdue", 0) or 0)
        return {"code": grid["code"], "name": grid["name"], "open": open_cases, "overdue": overdue,
                "label": [grid["name"], f"{t('open_cases', lang)} {open_cases} · {t('overdue_cases', lang)} {overdue}"]}

    return area_features(grids, properties)


# Every GeoJSON layer binds its features' ``properties.label`` (a text or a list of lines)
# with this function of assets/gridops_map.js, which builds the tooltip from text nodes.
LABEL_BINDER = {"variable": "gridops.map.label"}


def geojson(**props) -> dl.GeoJSON:
    """A GeoJSON layer, the only way the app makes one (tests/test_markup_safety.py checks).

    Without an ``onEachFeature`` of its own, dash-leaflet binds ``properties.tooltip`` and
    ``properties.popup`` with Leaflet's bindTooltip/bindPopup, which parse them as HTML: a
    name or id from a feed or an import file would run as script. Here every layer binds
    ``properties.label`` as text instead, so no string on a map is ever parsed.
    """
    if "onEachFeature" in props:
        raise ValueError("a GeoJSON layer binds its labels with LABEL_BINDER only")
    return dl.GeoJSON(onEachFeature=LABEL_BINDER, **props)


def bounds_of(geometry: dict) -> list[list[float]]:
    """Leaflet bounds [[south, west], [north, east]] of a GeoJSON geometry."""
    west, south, east, north = shape(geometry).bounds
    return [[south, west], [north, east]]


def district_map(map_id: str, outline: dict, grids: dict, bounds, tile_url: str | None, grids_id: str, outline_id: str, style_function: str) -> dl.Map:
    """The grid map: no external tiles unless a tile server is configured (intranet first)."""
    layers = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, attribution=""))
    layers.append(
        geojson(
            id=grids_id,
            data=grids,
            style={"variable": style_function},
            hoverStyle={"variable": "gridops.map.hoverStyle"},
            zoomToBoundsOnClick=False,
        )
    )
    layers.append(geojson(id=outline_id, data=outline, style=OUTLINE_STYLE, interactive=False))
    return dl.Map(
        layers,
        id=map_id,
        bounds=bounds,
        center=[(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2],  # dash-leaflet's viewport tracking needs one
        zoomSnap=0.25,
        attributionControl=False,
        className="grid-map",
        style={"background": "#07111f"},
    )


def page_header(title: list, lang: str, user: str | None, other_language_href: str, right: list | None = None, links: list | None = None) -> html.Header:
    """The header of every desk page: title, links to the screens, who is signed in, language."""
    parts = list(right or [])
    for label, href in links or []:
        parts.append(html.A(label, href=href, className="nav-link"))
    if user:
        parts.append(html.Span(user, className="user-name"))
        # Signing out changes state, so it is a POST (a GET link could be fired by any page).
        parts.append(html.Form(html.Button(t("sign_out", lang), type="submit", className="nav-link link-button"),
                               method="POST", action="/logout", className="sign-out"))
    parts.append(html.A(t("language_switch", lang), href=other_language_href, className="lang-switch"))
    return html.Header([html.H1(title), html.Div(parts, className="header-right")], className="page-header")


def nav_links(principal, lang: str) -> list[tuple[str, str]]:
    """The screens the caller may open, for the header."""
    from gridrules.access import PAGE_PERMISSIONS

    names = {"/": "nav_home", "/wall": "nav_wall", "/review": "nav_review", "/weekly": "nav_weekly", "/admin": "nav_admin", "/admin/audit": "nav_audit"}
    return [(t(label, lang), path) for path, label in names.items() if principal.can(PAGE_PERMISSIONS[path])]


def category_axis(labels: list[str]) -> dict:
    """An x axis of these labels, in this order, read as text: plotly would take ``11-26`` or
    ``2026-11`` for a date and place it on a time axis."""
    return {"type": "category", "categoryorder": "array", "categoryarray": list(labels)}


def page_language(lang: str) -> str:
    """The page's ``lang`` attribute: screen readers, fonts and the date pickers follow it."""
    return "zh-CN" if lang == "zh" else "en"


def date_picker_words(lang: str) -> dict:
    """A date picker's month heading and first weekday for the page's language (its weekday
    names follow the page too: assets/datepicker_zh.js)."""
    return {"month_format": "YYYY年M月" if lang == "zh" else "MMMM YYYY", "first_day_of_week": 1,
            "start_date_placeholder_text": t("start_date", lang), "end_date_placeholder_text": t("end_date", lang)}
