"""The situational review (态势研判): drill-down, filters, change against the period before,
departments, hot spots, patrol coverage and the case list with timelines. Pure builders."""
from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import dash_ag_grid as dag
import dash_leaflet as dl
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from shapely.geometry import shape

from dashboard.export_cells import csv_text
from dashboard.formatting import age_text, amount_text, chart_text, distance_text, interventions_text, unique_labels
from dashboard.i18n import t, tf
from gridrules import bounds
from gridrules.geometry import area_features
from gridrules.lifecycle import GRADES, OPEN_STATUSES, SOURCES
from gridrules.limits import STAGES
from gridrules.selection import WINDOWS
from layouts import ids
from layouts.widgets import bounds_of, category_axis, change_tiles, date_picker_words, geojson, page_header, page_language

REVIEW_TILES = (
    "reported", "registered", "closed", "in_progress", "overdue", "due_to_close", "closure_rate",
    "on_time_closure_rate", "on_time_handling_rate", "rework_rate", "satisfaction_rate", "mean_close_hours",
)
# AG Grid's theming API with the page's colours and fonts (its legacy CSS themes come from a CDN).
GRID_THEME = {"function": "themeQuartz.withParams({backgroundColor: '#0b1a2e', foregroundColor: '#e6f1ff', headerBackgroundColor: '#10243b', "
                          "borderColor: '#1c3656', accentColor: '#5ad8ff', oddRowBackgroundColor: '#0d1f36', fontSize: 13, spacing: 5, "
                          "fontFamily: ['Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', 'sans-serif']})"}
CHART = {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "font": {"color": "#cfe3ff"}, "margin": {"l": 40, "r": 10, "t": 10, "b": 30}}


def tiles(values: dict, previous: dict, lang: str) -> list:
    return change_tiles(values, previous, REVIEW_TILES, lang)


def filter_bar(selection, lang: str, category_options: list, department_options: list, dates: dict) -> html.Div:
    """The window, the custom dates (``dates``: the first and last day one may pick) and the filters."""
    window_options = [{"label": t(f"window_{w}", lang), "value": w} for w in WINDOWS]
    return html.Div([
        dcc.Dropdown(id=ids.Review.WINDOW, options=window_options, value=selection.window, clearable=False, className="dropdown"),
        dcc.DatePickerRange(id=ids.Review.DATES, start_date=selection.start, end_date=selection.end, display_format="YYYY-MM-DD",
                            min_date_allowed=dates["min"], max_date_allowed=dates["max"], **date_picker_words(lang),
                            className="date-range" + ("" if selection.window == "custom" else " hidden")),
        dcc.Dropdown(id=ids.Review.CATEGORY, options=category_options, value=selection.category, placeholder=t("all_categories", lang), className="dropdown wide"),
        dcc.Dropdown(id=ids.Review.GRADE, options=[{"label": g, "value": g} for g in GRADES], value=selection.grade, placeholder=t("all_grades", lang), className="dropdown narrow"),
        dcc.Dropdown(id=ids.Review.SOURCE, options=[{"label": t("source_" + s, lang), "value": s} for s in SOURCES], value=selection.source, placeholder=t("all_sources", lang), className="dropdown"),
        dcc.Dropdown(id=ids.Review.DEPT, options=department_options, value=selection.dept, placeholder=t("all_departments", lang), className="dropdown"),
        dcc.Dropdown(id=ids.Review.STAGE, options=[{"label": t("stage_" + s, lang), "value": s} for s in STAGES], value=selection.stage, placeholder=t("all_stages", lang), className="dropdown"),
    ], className="form-row filters")


def search_box(lang: str) -> html.Div:
    """Find a case by its id, words of its description or (roles that may unmask) a phone number."""
    return html.Div([
        dcc.Input(id=ids.Review.SEARCH, type="search", debounce=True, maxLength=64, placeholder=t("search_placeholder", lang), className="search-input",
                  autoComplete="off"),
        html.Div(id=ids.Review.SEARCH_HITS, className="search-hits"),
    ], className="search-box")


def search_hits(hits: list[dict], tz, lang: str) -> list:
    """Each hit as a button that opens its case panel; a line when nothing matched."""
    if not hits:
        return [html.Div(t("search_nothing", lang), className="muted search-empty")]
    return [html.Button([
        html.Span(hit["id"], className="hit-id"), html.Span(hit.get("category_name_en") or hit["category_name"] if lang == "en" else hit["category_name"]),
        html.Span(hit["grid_name"], className="muted"), html.Span(local_time(hit["reported_at"], tz)[:16], className="muted"),
        html.Span(hit.get("description") or "", className="hit-text"),
    ], id={"type": ids.Review.SEARCH_HIT, "case": hit["id"]}, className="search-hit") for hit in hits]


def breadcrumb(chain: list[tuple[str, str]], selection, lang: str) -> list:
    parts = []
    for index, (code, name) in enumerate(chain):
        if index:
            parts.append(html.Span(" › ", className="muted"))
        if index == len(chain) - 1:
            parts.append(html.Span(name, className="crumb-current"))
        else:
            parts.append(dcc.Link(name, href="/review" + selection.with_area(code).search(lang), className="crumb"))
    return parts


def trend_figure(trend, lang: str) -> go.Figure:
    """The window's slots (days, or hours of a day) in order on a category axis: plotly would
    read a label such as ``11-26`` as a date. A slot still to come has no bar and no point."""
    labels = list(trend["label"])

    def values(column):
        return [None if pd.isna(value) else int(value) for value in trend[column]]

    figure = go.Figure([
        go.Bar(x=labels, y=values("reported"), name=t("reported", lang), marker_color="#3aa0ff"),
        go.Scatter(x=labels, y=values("reported_before"), name=t("reported", lang) + " · " + t("before", lang), line={"color": "#3aa0ff", "dash": "dot"}),
        go.Scatter(x=labels, y=values("closed"), name=t("closed", lang), line={"color": "#35d07f", "width": 3}),
        go.Scatter(x=labels, y=values("closed_before"), name=t("closed", lang) + " · " + t("before", lang), line={"color": "#35d07f", "dash": "dot"}),
    ])
    figure.update_layout(**CHART, legend={"orientation": "h", "y": 1.15}, uirevision="review")
    figure.update_xaxes(gridcolor="#15304d", **category_axis(labels))
    figure.update_yaxes(gridcolor="#15304d", rangemode="tozero")
    return figure


def category_figure(categories, lang: str) -> go.Figure:
    top = categories.head(10).iloc[::-1]
    labels = chart_text(unique_labels(list(top["name"]), list(top["code"])))
    figure = go.Figure([
        go.Bar(y=labels, x=list(top["previous"]), orientation="h", name=t("before", lang), marker_color="#35506f"),
        go.Bar(y=labels, x=list(top["reported"]), orientation="h", name=t("this_period", lang), marker_color="#3aa0ff"),
    ])
    figure.update_layout(**{**CHART, "margin": {"l": 120, "r": 10, "t": 10, "b": 30}}, barmode="group", legend={"orientation": "h", "y": 1.12}, uirevision="review")
    return figure


def area_collection(children: list[dict], lang: str) -> dict:
    """The child areas as map features; each tooltip says what its numbers are."""
    def label(child: dict) -> list[str]:
        lines = [child["name"]] + [f"{t(key, lang)} {child[key]}" for key in ("reported", "in_progress", "overdue")]
        if child.get("score") is not None:
            lines.append(f"{t('score', lang)} {child['score']:.1f} · {t('grade', lang)} {child.get('grade') or '—'}")
        return lines

    return area_features(children, lambda c: {
        "code": c["code"], "name": c["name"], "reported": c["reported"], "overdue": c["overdue"], "label": label(c),
    })


def name_points(children: list[dict]) -> dict:
    """A point inside each child area carrying its name, drawn as text on the map where the
    area is wide enough for it (gridops.map.nameMarker measures)."""
    features = []
    for child in children:
        area = shape(child["geometry"])
        inside = area.representative_point()
        west, _, east, _ = area.bounds
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [inside.x, inside.y]},
                         "properties": {"code": child["code"], "name": child["name"], "west": west, "east": east}})
    return {"type": "FeatureCollection", "features": features}


def legend_steps(max_value: int) -> list[tuple[int, str]]:
    """The shading's steps as (ramp index, range of reported cases), as gridops.map.shareColour
    maps a share of the largest value: 0; under ¼; under ½; under ¾; the rest."""
    max_value = max(int(max_value), 1)
    starts = [1] + [(k * max_value + 3) // 4 for k in (1, 2, 3)] + [max_value + 1]
    steps = [(0, "0")]
    for index in range(4):
        low, high = starts[index], starts[index + 1] - 1
        if low <= high:
            steps.append((index + 1, str(low) if low == high else f"{low}–{high}"))
    return steps


def area_legend(max_value: int, lang: str) -> list:
    """What the map's shading and outlines mean."""
    rows = [html.Div([html.Span(className=f"swatch ramp-{index}"), html.Span(text)], className="legend-step", **{"data-step": str(index)})
            for index, text in legend_steps(max_value)]
    return [html.Div(t("legend_reported", lang), className="legend-title"), *rows,
            html.Div([html.Span(className="swatch overdue-edge"), html.Span(t("legend_overdue", lang))], className="legend-step")]


def area_map(collection: dict, names: dict, bounds) -> dl.Map:
    center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    return dl.Map([
        geojson(id=ids.Review.AREAS, data=collection, style={"variable": "gridops.map.areaStyle"},
                hoverStyle={"variable": "gridops.map.hoverStyle"}, hideout={"max": max_reported(collection)}),
        geojson(id=ids.Review.NAMES, data=names, pointToLayer={"variable": "gridops.map.nameMarker"}, interactive=False),
    ], id=ids.Review.MAP, bounds=bounds, center=center, zoomSnap=0.25, attributionControl=False, className="review-map",
        style={"background": "#07111f"})


def max_reported(collection: dict) -> int:
    return max([f["properties"]["reported"] for f in collection["features"]] or [0]) or 1


RANKING_COLUMNS = (
    ("name", "area_name", None), ("reported", "reported", "n"), ("in_progress", "in_progress", "n"), ("overdue", "overdue", "n"),
    ("closure_rate", "closure_rate", "%"), ("on_time_closure_rate", "on_time_closure_rate", "%"), ("satisfaction_rate", "satisfaction_rate", "%"),
    ("score", "score", "h"), ("grade", "grade", None),
)


def ranking_rows(children: list[dict]) -> list[dict]:
    """Worst first, as the department table: the lowest score, then the most overdue, the
    most reported; areas with nothing due (no score) last."""
    def order(child: dict):
        return (child.get("score") is None, child.get("score") or 0.0, -child["overdue"], -child["reported"], child["code"])

    return [{field: child.get(field) for field, _, _ in RANKING_COLUMNS} | {"code": child["code"]} for child in sorted(children, key=order)]


def area_ranking(children: list[dict], lang: str) -> dag.AgGrid:
    """Every child of the selected area, worst first, sortable; a click on a row drills down."""
    columns = [{"field": field, "headerName": t(label, lang), "sortable": True, "minWidth": unbreakable_width([t(label, lang)]),
                **({"valueFormatter": NUMBER_FORMATS[kind]} if kind in NUMBER_FORMATS else {}), **({"type": "numericColumn"} if kind else {}),
                **({"minWidth": 120, "cellClass": "drill-link"} if field == "name" else {})}
               for field, label, kind in RANKING_COLUMNS]
    return dag.AgGrid(id=ids.Review.RANKING, columnDefs=columns, rowData=ranking_rows(children), getRowId="params.data.code",
                      defaultColDef={"resizable": True, "minWidth": 72, "wrapHeaderText": True, "autoHeaderHeight": True},
                      columnSize="responsiveSizeToFit", dashGridOptions={"animateRows": False, "theme": GRID_THEME}, className="review-grid ranking-grid")


NUMBER_FORMATS = {"%": {"function": "params.value == null ? '—' : d3.format('.1%')(params.value)"},
                  "h": {"function": "params.value == null ? '—' : d3.format('.1f')(params.value)"}}
DEPARTMENT_COLUMNS = (
    ("name", "department", None), ("due_to_close", "due_to_close", "n"), ("due_closed", "closed", "n"), ("closed_on_time", "closed_on_time", "n"),
    ("due_reworked", "reworked", "n"), ("overdue", "overdue", "n"), ("mean_close_hours", "mean_close_hours", "h"),
    ("p90_close_hours", "p90_close_hours", "h"), ("on_time_closure_rate", "on_time_closure_rate", "%"), ("satisfaction_rate", "satisfaction_rate", "%"),
    ("supervised", "supervised", "n"), ("supervised_on_time", "supervised_on_time", "n"), ("redispatched", "redispatched", "n"),
    ("declined", "declined", "n"), ("extended", "extended", "n"),
    ("score", "score", "h"), ("grade", "grade", None),
)  # the CSV's; on the screen the interventions share one column (``interventions_text``)
INTERVENTION_FIELDS = ("supervised", "supervised_on_time", "redispatched", "declined", "extended")
GRID_DEPARTMENT_COLUMNS = tuple(column for column in DEPARTMENT_COLUMNS if column[0] not in INTERVENTION_FIELDS and column[0] not in ("score", "grade")) + (
    ("interventions", "interventions", None), ("score", "score", "h"), ("grade", "grade", None))


def department_grid(departments, lang: str) -> dag.AgGrid:
    rows = department_rows(departments, lang)
    columns = [{"field": field, "headerName": t(label, lang), "sortable": True, "filter": kind is None, "minWidth": unbreakable_width([t(label, lang)]),
                **({"valueFormatter": NUMBER_FORMATS[kind]} if kind in NUMBER_FORMATS else {}), **({"type": "numericColumn"} if kind else {}),
                **({"minWidth": name_width([row.get(field) for row in rows] + [t(label, lang)]), "wrapText": True, "autoHeight": True}
                   if field == "name" else {}),
                # each intervention whole (督办4（按期0）), wrapping only between them
                **({"minWidth": unbreakable_width([row.get(field) for row in rows] + [t(label, lang)], keep_all=True), "wrapText": True, "autoHeight": True,
                    "cellStyle": {"wordBreak": "keep-all"}} if field == "interventions" else {})}
               for field, label, kind in GRID_DEPARTMENT_COLUMNS]
    return dag.AgGrid(id=ids.Review.DEPARTMENTS, columnDefs=columns, rowData=rows,
                      defaultColDef={"resizable": True, "minWidth": 72, "wrapHeaderText": True, "autoHeaderHeight": True},
                      columnSize="responsiveSizeToFit",
                      dashGridOptions={"animateRows": False, "theme": GRID_THEME}, className="review-grid")


def department_csv(rows: list[dict], lang: str) -> str:
    """The department table as CSV, with a byte-order mark for spreadsheet programs; text never runs as a formula."""
    header = [t(label, lang) for _, label, _ in DEPARTMENT_COLUMNS]
    return csv_text([header] + [[row.get(field) for field, _, _ in DEPARTMENT_COLUMNS] for row in rows])


def department_rows(departments, lang: str) -> list[dict]:
    """Worst first, where a leader looks: the lowest score, then the most overdue and the most
    due; departments with nothing due (no score) last. Each with its interventions in words."""
    if departments is None or departments.empty:
        return []
    keep = [field for field, _, _ in DEPARTMENT_COLUMNS if field in departments.columns]
    frame = departments.sort_values(["score", "overdue", "due_to_close", "dept"], ascending=[True, False, False, True], na_position="last")[keep + ["dept"]]
    rows = [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]
    return [{**row, "interventions": interventions_text(row, lang)} for row in rows]


CASE_COLUMNS = (("id", "case_id"), ("reported_at", "reported_time"), ("category_name", "category"), ("grid_name", "grid"),
                ("grade", "grade"), ("status", "status"), ("dept", "department"), ("source", "source"))


CASE_MIN_WIDTHS = {"id": 200, "reported_at": 100}  # ids of 22 characters (the simulator's) whole
CASE_WRAPPED = ("category_name", "grid_name", "grade", "status", "dept", "source")  # wrap between words; the row grows
FITTED_MAX_PX = 320
WRAP_FROM_PX = 190  # a name wider than this wraps onto a second line
CELL_FONT_PX = 13  # GRID_THEME's fontSize


def _text_px(text: object) -> float:
    """About how wide ``text`` is at the grid's font: a CJK character the font's size, a Latin one about half."""
    return sum(CELL_FONT_PX if unicodedata.east_asian_width(char) in "WF" else 0.53 * CELL_FONT_PX for char in str(text or ""))


def unbreakable_width(texts: list, keep_all: bool = False) -> int:
    """The narrowest a column of these texts (header included) may get so that each wraps between
    words, never inside one (``Satisfactio-n``) and is never cut: its longest word, with the cell's
    padding and the header's sort icon. Chinese wraps between any two characters, unless the
    column keeps words whole (``keep_all``: CSS ``word-break: keep-all``, a run of Chinese one word)."""
    def pieces(text: object) -> list[str]:
        return [word if keep_all or not any(unicodedata.east_asian_width(char) in "WF" for char in word) else word[:2] for word in str(text or "").split()]

    widest = max((_text_px(piece) for text in texts for piece in pieces(text)), default=0)
    return int(min(FITTED_MAX_PX, max(72, widest + 36)))


def name_width(texts: list) -> int:
    """A column of names: wide enough for the whole of most names on one line (up to
    ``WRAP_FROM_PX``), a longer one wraps between words (``unbreakable_width``)."""
    whole = max((_text_px(text) for text in texts), default=0) + 36
    return int(max(unbreakable_width(texts), min(whole, WRAP_FROM_PX)))


def case_grid(rows: list[dict], lang: str) -> dag.AgGrid:
    """The case list; columns keep a readable width (the grid scrolls sideways rather than cut ids)."""
    columns = [{"field": field, "headerName": t(label, lang), "sortable": True, "filter": True,
                "minWidth": name_width([row.get(field) for row in rows] + [t(label, lang)]) if field in CASE_WRAPPED else CASE_MIN_WIDTHS.get(field, 80),
                **({"wrapText": True, "autoHeight": True} if field in CASE_WRAPPED else {})}
               for field, label in CASE_COLUMNS]
    return dag.AgGrid(id=ids.Review.CASES, columnDefs=columns, rowData=rows, defaultColDef={"resizable": True},
                      columnSize="responsiveSizeToFit", dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True, "checkboxes": False}, "animateRows": False, "theme": GRID_THEME},
                      className="review-grid")


def case_rows(cases: list[dict], names: dict, tz, lang: str) -> list[dict]:
    rows = []
    for case in cases:
        reported = case["reported_at"]
        if isinstance(reported, str):
            reported = datetime.fromisoformat(reported)
        reported = reported.replace(tzinfo=UTC) if reported.tzinfo is None else reported
        rows.append({
            "id": case["id"], "reported_at": reported.astimezone(tz).strftime("%m-%d %H:%M"),
            "category_name": case.get("category_name_en") if lang == "en" and case.get("category_name_en") else case.get("category_name"),
            "grid_name": case.get("grid_name"), "grade": case["grade"],
            "status": t("status_" + case["status"], lang) + (f" · {t('supervised_title', lang)}" if case.get("supervise_count") else ""),
            "dept": names["departments"].get(case.get("dept"), case.get("dept") or ""), "source": t("source_" + case["source"], lang),
        })
    return rows


def hot_spot_list(hot_spots, selection, lang: str) -> html.Table:
    """The grids with most cases; a grid's name opens the review of that grid (its cases listed,
    each a click from its panel)."""
    head = html.Tr([html.Th(t(key, lang)) for key in ("grid", "reported", "in_progress", "overdue")])
    def link(row: dict) -> dcc.Link:
        return dcc.Link(row["name"], href="/review" + selection.with_area(row["grid"]).search(lang), className="hot-spot-link")

    body = [html.Tr([html.Td(link(row)), html.Td(row["reported"]), html.Td(row["in_progress"]), html.Td(row["overdue"], className="alert" if row["overdue"] else "")],
                    **{"data-grid": row["grid"]}) for row in hot_spots.to_dict("records")]
    return html.Table([html.Thead(head), html.Tbody(body)], className="data-table compact")


def patrol_panel(patrol: dict, lang: str) -> list:
    workers = patrol["workers"]
    below = workers[workers["below"]] if not workers.empty else workers
    head = html.Tr([html.Th(t(key, lang)) for key in ("grid_worker", "grid", "patrol_hours", "patrol_km", "rounds")])
    body = [html.Tr([html.Td(r["name"]), html.Td(r["grid"]), html.Td(f"{r['hours']:.1f}"), html.Td(f"{r['km']:.1f}"),
                     html.Td(f"{r['rounds']} / {r['expected_rounds']:g}", className="alert" if r["below"] else "")])
            for r in workers.head(40).to_dict("records")]
    return [
        html.Div([
            html.Span(f"{t('grids_patrolled_today', lang)} {patrol['grids_today']} / {patrol['total_grids']}", className="stat", **{"data-stat": "grids_today"}),
            html.Span(f"{t('grids_patrolled_week', lang)} {patrol['grids_week']} / {patrol['total_grids']}", className="stat", **{"data-stat": "grids_week"}),
            html.Span(f"{t('below_expected', lang)} {len(below)}", className="stat alert" if len(below) else "stat", **{"data-stat": "below"}),
        ], className="stats"),
        html.Div(html.Table([html.Thead(head), html.Tbody(body)], className="data-table compact"), className="scroll"),
    ]


def local_time(value, tz) -> str:
    """An ISO or datetime moment (naive: UTC) as local ``YYYY-MM-DD HH:MM:SS``; ``—`` for none."""
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def stage_table(rounds, tz, lang: str) -> html.Table:
    """Each round of each stage: its start, when it was due, its limit and the time it took in
    the limit's own unit, and whether it was on time or late by how much."""
    head = html.Tr([html.Th(t(key, lang)) for key in ("stage_column", "started", "due", "limit", "elapsed", "result")])
    def amount(value: float | None, stage_round) -> str:
        limit = stage_round.limit
        return "—" if value is None or limit is None else amount_text(value, limit.unit, stage_round.calendar_kind, lang)

    rows = []
    for stage_round in rounds:
        limit = stage_round.limit
        if stage_round.late_by is not None:
            result = html.Span(tf("late_by_amount", lang, amount=amount(stage_round.late_by, stage_round)), className="alert")
        else:
            result = html.Span(t("running_for" if stage_round.running else "on_time", lang), className="muted" if stage_round.running else "ok")
        rows.append(html.Tr([
            html.Td(t("stage_" + stage_round.stage, lang)), html.Td(local_time(stage_round.started_at, tz)), html.Td(local_time(stage_round.deadline, tz)),
            html.Td(amount(limit.amount, stage_round) if limit is not None else "—"), html.Td(amount(stage_round.elapsed, stage_round)), html.Td(result),
        ], className="running" if stage_round.running else "", **{"data-stage": stage_round.stage}))
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table compact stage-table")


def case_location_map(case: dict, outline: dict | None) -> dl.Map | html.Div:
    """The case's point on a small map with its grid's outline (no tiles: offline first)."""
    if case.get("lat") is None or case.get("lon") is None:
        return html.Div("—", className="muted")
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [case["lon"], case["lat"]]}, "properties": {}}
    layers = []
    if outline:
        layers.append(geojson(data={"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": outline, "properties": {}}]},
                              style={"color": "#5ad8ff", "weight": 2, "fillOpacity": 0.08}, interactive=False))
    layers.append(geojson(data={"type": "FeatureCollection", "features": [point]}, pointToLayer={"variable": "gridops.map.casePoint"}, interactive=False))
    bounds = bounds_of(outline) if outline else [[case["lat"] - 0.002, case["lon"] - 0.002], [case["lat"] + 0.002, case["lon"] + 0.002]]
    return dl.Map(layers, id=ids.Review.CASE_MAP, bounds=bounds, center=[case["lat"], case["lon"]], zoomSnap=0.25, attributionControl=False,
                  zoomControl=False, className="case-map", style={"background": "#07111f"})


def nearest_section(workers: list[dict] | None, case: dict, lang: str) -> list:
    """就近调度: an open case's nearest online workers, to phone (nothing for a closed case)."""
    if case.get("status") not in OPEN_STATUSES or case.get("lat") is None:
        return []
    if workers is None:
        body = html.P(t("nearest_unavailable", lang), className="muted")
    elif not workers:
        body = html.P(tf("nearest_none", lang, km=bounds.NEAREST_RADIUS_M // 1000), className="muted")
    else:
        body = html.Table([
            html.Thead(html.Tr([html.Th(t(key, lang)) for key in ("worker", "nearest_distance", "last_ping", "in_grid", "phone")])),
            html.Tbody([html.Tr([
                html.Td([f"{w['name'] or '—'} · {w['id']}", *([html.Span(t("own_grid", lang), className="badge own-grid")] if w["own_grid"] else [])]),
                html.Td(distance_text(w["metres"], lang), className="num"),
                html.Td(age_text(w["age_s"], lang), className="num"),
                html.Td(w["grid_name"] or w["grid"] or "—"),
                html.Td(w["phone"] or "—", className="num"),
            ], **{"data-worker": w["id"], "data-metres": str(w["metres"])}) for w in workers]),
        ], className="data-table compact nearest", id=ids.Review.NEAREST)
    return [html.H4(t("nearest_workers", lang)), html.P(t("nearest_note", lang), className="muted table-note"), body]


def event_kind(event: dict) -> str:
    """The action as the centre names it: a dispatch of a dispatched case is a re-dispatch (改派)."""
    return "redispatch" if event["action"] == "dispatch" and event.get("from_status") == "dispatched" else event["action"]


def event_note(event: dict, department_names: dict, tz) -> str:
    """What a transition says beyond its action: the department dispatched to, an extension's
    new deadline, the operator's note."""
    detail = event.get("detail") or {}
    parts = []
    if event["action"] == "dispatch":
        dept = detail.get("to_dept") or event.get("dept")
        parts.append("→ " + department_names.get(dept, dept or ""))
    if event["action"] == "extend" and detail.get("deadline"):
        parts.append("→ " + local_time(detail["deadline"], tz))
    if detail.get("note"):
        parts.append(str(detail["note"]))
    return " · ".join(part for part in parts if part.strip("→ "))


def supervise_form(case: dict, lang: str) -> list:
    """督办: an operator's note to the department, for an open case."""
    if case.get("status") not in OPEN_STATUSES:
        return []
    return [html.Div([
        dcc.Input(id=ids.Review.SUPERVISE_NOTE, type="text", maxLength=200, placeholder=t("supervise_placeholder", lang), className="supervise-note", debounce=False),
        html.Button(t("supervise_button", lang), id=ids.Review.SUPERVISE, className="small-button supervise-button"),
    ], className="supervise-form", title=t("supervise_title", lang))]


def case_panel(story, tz, lang: str, can_unmask: bool, can_command: bool = False) -> list:
    """A case's panel: what, where, who reported it (masked per role), each stage of the loop
    against its limit, and every transition with who did it, by name."""
    case = story.case
    facts = [
        (t("category_path", lang), " → ".join(story.category_path) or case["category"]),
        (t("grade", lang), case["grade"]),
        (t("source", lang), t("source_" + case["source"], lang)),
        (t("status", lang), t("status_" + case["status"], lang)),
        (t("grid", lang), case.get("grid_name") or case["grid"]),
        (t("reported_time", lang), local_time(case.get("reported_at"), tz)),
    ]
    if case.get("rework_count"):
        facts.append((t("rework_count", lang), tf("rework_rounds", lang, count=case["rework_count"])))
    for key, label in (("supervise_count", "supervised"), ("redispatch_count", "redispatched"), ("decline_count", "declined"), ("extension_count", "extended")):
        if case.get(key):
            facts.append((t(label, lang), str(case[key])))
    if case.get("satisfaction"):
        facts.append((t("evaluation", lang), t("satisfaction_" + case["satisfaction"], lang)))
    personal = [html.Div(f"{t('reporter', lang)}：{case.get('reporter') or '—'} · {t('contact', lang)}：{case.get('contact') or '—'}", className="personal", id="review-personal")]
    if can_unmask and case.get("masked"):
        personal.append(html.Button(t("show_contact", lang), id=ids.Review.UNMASK, className="small-button"))
    events = html.Table([
        html.Thead(html.Tr([html.Th(t(key, lang)) for key in ("time", "action", "actor", "status", "event_note")])),
        html.Tbody([html.Tr([html.Td(local_time(event["ts"], tz)), html.Td(t("action_" + event_kind(event), lang)), html.Td(event.get("actor_name") or ""),
                             html.Td(f"{t('status_' + (event.get('from_status') or 'new'), lang)} → {t('status_' + event['to_status'], lang)}"),
                             html.Td(event_note(event, story.department_names, tz))],
                            **{"data-action": event_kind(event)})
                    for event in story.events]),
    ], className="data-table compact timeline")
    return [
        html.Div([html.H3(f"{case['id']} · {story.category_path[-1] if story.category_path else case['category']}"),
                  html.Button("×", id=ids.Review.CLOSE_CASE, title=t("close_panel", lang), className="close-button")], className="panel-head"),
        html.P(case.get("description") or "—", className="description"),
        html.Dl([part for label, value in facts for part in (html.Dt(label), html.Dd(value))], className="facts"),
        *personal,
        *(supervise_form(case, lang) if can_command else []),
        html.H4(t("location", lang)), case_location_map(case, story.grid_outline),
        *nearest_section(story.nearest, case, lang),
        html.H4(t("stages", lang)), stage_table(story.rounds, tz, lang),
        html.H4(t("case_timeline", lang)), events,
    ]


def layout(lang: str, user: str | None, other_language_href: str, links, selection, filter_parts: dict, data_parts: dict, state: dict) -> html.Div:
    return html.Div([
        page_header([html.Span(t("review_title", lang)), html.Span(id=ids.Review.BREADCRUMB, children=data_parts["breadcrumb"], className="breadcrumb")],
                    lang, user, other_language_href, links=links),
        filter_bar(selection, lang, filter_parts["categories"], filter_parts["departments"], filter_parts["dates"]),
        search_box(lang),
        html.Div(id=ids.Review.PERIOD, children=data_parts["period"], className="muted period"),
        html.Div(data_parts["tiles"], id=ids.Review.TILES, className="kpi-row review-tiles"),
        html.Div([
            html.Section([html.H2(t("areas", lang), className="section-title"), data_parts["map"],
                          html.Div(data_parts["legend"], id=ids.Review.LEGEND, className="map-legend")], className="panel map-panel"),
            html.Section([html.H2(t("area_ranking", lang), className="section-title"), html.P(t("areas_worst_first", lang), className="muted table-note"),
                          data_parts["ranking"]], className="panel wide ranking-panel"),
        ], className="review-row halves map-row"),
        html.Div([
            html.Section([html.H2(t("trend", lang), className="section-title"), dcc.Graph(id=ids.Review.TREND, figure=data_parts["trend"], config={"displayModeBar": False}, className="review-graph")], className="panel"),
            html.Section([html.H2(t("categories_period", lang), className="section-title"), dcc.Graph(id=ids.Review.CATEGORIES, figure=data_parts["categories"], config={"displayModeBar": False}, className="review-graph")], className="panel"),
        ], className="review-row halves"),
        html.Div([
            html.Section([html.Div([html.H2(t("department_performance", lang), className="section-title"),
                                    html.Button(t("export_csv", lang), id=ids.Review.EXPORT, className="small-button")], className="panel-head"),
                          html.P(t("departments_worst_first", lang), className="muted table-note"),
                          data_parts["departments"], dcc.Download(id=ids.Review.DOWNLOAD)], className="panel wide"),
            html.Section([html.H2(t("hot_spots", lang), className="section-title"), html.Div(data_parts["hot_spots"], id=ids.Review.HOT_SPOTS, className="scroll")], className="panel"),
        ], className="review-row two"),
        html.Div([
            html.Section([html.H2(t("patrol_coverage", lang), className="section-title"), html.Div(data_parts["patrol"], id=ids.Review.PATROL)], className="panel"),
            html.Section([html.Div([html.H2(t("case_list", lang), className="section-title"),
                                    html.Div([html.Button(t("export_csv", lang), id=ids.Review.CASES_CSV, className="small-button"),
                                              html.Button(t("export_xlsx", lang), id=ids.Review.CASES_XLSX, className="small-button")],
                                             className="button-pair")], className="panel-head"),
                          data_parts["cases"], dcc.Download(id=ids.Review.CASES_DOWNLOAD)], className="panel wide"),
        ], className="review-row one-two"),
        html.Aside(data_parts.get("case_panel") or [], id=ids.Review.TIMELINE, className="case-panel open" if data_parts.get("case_panel") else "case-panel",
                   role="dialog", **{"aria-label": t("case_panel", lang)}),
        dcc.Store(id=ids.Review.CASE_SHOWN, data=data_parts.get("case_shown")),
        dcc.Store(id=ids.Review.STATE, data=state),
    ], className="page page-review", lang=page_language(lang))
