"""The video wall (大屏): a 16:9 screen legible from five metres. Pure builders.

Sizes are in ``rem`` and the root font size follows the screen width (assets/wall.css), so
the same layout fills 1920×1080 and 3840×2160 without scrollbars.
"""
from __future__ import annotations

import dash_leaflet as dl
import plotly.graph_objects as go
from dash import dcc, html
from dash_extensions import SSE

from dashboard.formatting import age_text, amount_text, chart_text
from dashboard.i18n import t, tf
from layouts import ids
from layouts.widgets import category_axis, geojson, kpi_row

WALL_TILES = (
    "reported", "registered", "dispatched", "in_progress", "closed", "invalid", "overdue",
    "closure_rate", "on_time_closure_rate", "satisfaction_rate", "workers_online",
)
PULL_FALLBACK_MS = 10_000
TICK_MS = 1_000
PANEL_BG = "rgba(0,0,0,0)"
CHART_FONT = {"color": "#cfe3ff", "family": "Noto Sans CJK SC, Microsoft YaHei, sans-serif"}
TICKER_ROWS = 500  # overdue cases in the ticker, the browser showing TICKER_PAGE at a time: every one is reached
TICKER_PAGE = 4  # with the footer line, what fits the ticker panel at any wall size
OVERDUE_LIST_ROWS = 25
SOURCE_KEYS = {"patrol": "source_patrol", "hotline": "source_hotline", "police": "source_police", "wechat": "source_wechat", "video": "source_video", "leader": "source_leader"}


def _figure_layout(figure: go.Figure, legend: bool = False, scale: float = 1.0) -> go.Figure:
    """Dark, transparent, fonts and margins scaled with the wall (1 at 1920 px wide)."""
    figure.update_layout(
        paper_bgcolor=PANEL_BG, plot_bgcolor=PANEL_BG, font={**CHART_FONT, "size": round(13 * scale)},
        margin={"l": round(40 * scale), "r": round(10 * scale), "t": round(8 * scale), "b": round(28 * scale)},
        showlegend=legend, legend={"orientation": "h", "y": 1.12, "x": 0}, uirevision="wall",
    )
    figure.update_xaxes(gridcolor="#15304d", zeroline=False)
    figure.update_yaxes(gridcolor="#15304d", zeroline=False)
    return figure


def trend_figure(rows, lang: str, scale: float = 1.0) -> go.Figure:
    """Reported and closed per hour over the last 24 hours."""
    figure = go.Figure([
        go.Bar(x=list(rows["hour"]), y=list(rows["reported"]), name=t("reported", lang), marker_color="#3aa0ff"),
        go.Scatter(x=list(rows["hour"]), y=list(rows["closed"]), name=t("closed", lang), mode="lines+markers",
                   line={"color": "#35d07f", "width": 3 * scale}, marker={"size": 6 * scale}),
    ])
    figure = _figure_layout(figure, legend=True, scale=scale)
    return figure.update_xaxes(**category_axis(list(rows["hour"])))


def bar_figure(names, values, colour: str, scale: float = 1.0) -> go.Figure:
    """Horizontal bars, the largest on top, each with its count upright beside it (plotly would
    turn a count that does not fit inside a thin bar sideways, illegible from five metres)."""
    figure = go.Figure(go.Bar(x=list(values)[::-1], y=chart_text(names)[::-1], orientation="h", marker_color=colour, text=list(values)[::-1],
                              textposition="outside", textangle=0, cliponaxis=False))
    figure = _figure_layout(figure, scale=scale)
    figure.update_layout(margin={"l": round(90 * scale), "r": round(28 * scale), "t": round(4 * scale), "b": round(20 * scale)},
                         uniformtext={"minsize": round(11 * scale), "mode": "show"})
    if max(list(values) or [0]) <= 10:  # counts are whole: no ticks at 0.5
        figure.update_xaxes(dtick=1)
    return figure


def source_figure(rows, lang: str, scale: float = 1.0) -> go.Figure:
    """Today's reports by channel (channels without reports left out)."""
    rows = rows[rows["reported"] > 0]
    labels = [t(SOURCE_KEYS.get(s, s), lang) for s in rows["source"]]
    figure = go.Figure(go.Pie(labels=labels, values=list(rows["reported"]), hole=0.5, textinfo="value", sort=False,
                              marker={"colors": ["#3aa0ff", "#f5a623", "#ff4d4f", "#35d07f", "#a36bff", "#8aa4c2"]}))
    figure = _figure_layout(figure, legend=True, scale=scale)
    figure.update_layout(margin={"l": 4, "r": 4, "t": 4, "b": 4}, legend={"orientation": "v", "x": 1.0, "y": 0.5, "font": {"size": round(13 * scale)}})
    return figure


BOARD_MARKS = (("supervised", "board_supervised"), ("redispatched", "board_redispatched"), ("declined", "board_declined"), ("extended", "board_extended"))


def intervention_marks(row: dict, lang: str) -> list:
    """A department's interventions as small marks after its name, only those it has:
    open cases under supervision (督办) and today's re-dispatches, declines and extensions."""
    return [html.Span(tf(label, lang, n=row[key]), className=f"board-mark mark-{key}", title=t(key, lang), **{"data-mark": key, "data-n": str(row[key])})
            for key, label in BOARD_MARKS if row.get(key)]


def board_table(rows, department_names: dict, lang: str) -> html.Table:
    """Dispatch board: every department with a case, worst first. The browser shows as many rows
    as the panel holds and says how many it leaves out (wall.js fitBoard: the panel's height in
    rows depends on the screen's shape, not only its width)."""
    head = html.Tr([html.Th(t(key, lang)) for key in ("department", "waiting", "in_hand", "due_soon", "overdue")])
    body = [
        html.Tr([
            html.Td([html.Span(department_names.get(row["dept"], row["dept"]), className="board-dept"), *intervention_marks(row, lang)]),
            html.Td(row["waiting"]), html.Td(row["in_hand"]),
            html.Td(row["due_soon"], className="warn" if row["due_soon"] else ""), html.Td(row["overdue"], className="alert" if row["overdue"] else ""),
        ], **{"data-dept": row["dept"]})
        for row in rows
    ]
    body.append(html.Tr(html.Td("", colSpan=5, className="muted more-rows"), className="board-more", hidden=True,
                        **{"data-template": f"{t('more_rows', lang)} {{n}}"}))
    return html.Table([html.Thead(head), html.Tbody(body)], className="wall-table board-table")


# How the wall behaves in the browser (assets/wall.js reads these from the page state).
TIMING = {
    "fresh_ms": 10_000,  # a new case flashes this long
    "stale_ms": 25_000,  # no update for this long: say so and reconnect the stream
    "silent_ms": 15_000,  # the stream beats every 5 s: this long without a beat, it is dead
    "ticker_page_s": 5,  # the alert ticker turns a page this often
    "in_flight_max_ms": 10_000,  # a pull unanswered this long is given up on
    "worker_flush_ms": 2_000,  # redraw thousands of worker markers at most this often
    "health_ok_s": 120,  # the last message younger than this: green; younger than health_warn_s: amber
    "health_warn_s": 600,
}
# The words wall.js writes, in the page's language (templates with {placeholders}).
JS_TEXTS = ("late_by", "left", "span_hours", "span_minutes", "feed_no_data", "feed_age", "stale_since")


def js_texts(lang: str) -> dict:
    return {key: t(key, lang) for key in JS_TEXTS}


def late_text(late_s: int, lang: str) -> str:
    """"超期 1小时05分" / "overdue 1 h 05 min"; due-soon cases count down instead (wall.js ages it
    every second from the same templates)."""
    hours, minutes = divmod(abs(late_s) // 60, 60)
    span = tf("span_hours", lang, hours=hours, minutes=f"{minutes:02d}") if hours else tf("span_minutes", lang, minutes=minutes)
    return f"{t('late_by' if late_s >= 0 else 'left', lang)} {span}"


def late_cell(row: dict, lang: str) -> html.Span:
    """How late a case is: in working time (``1.5 工作小时``) when its stage limit counts working
    time, refreshed by the server; else in natural time, aged every second by the browser from
    its deadline (``data-deadline``)."""
    if row.get("working"):
        words = amount_text(abs(row["shown_amount"]), row["shown_unit"], "working", lang)
        return html.Span(f"{t('late_by' if row['late_amount'] >= 0 else 'left', lang)} {words}", className="late working")
    return html.Span(late_text(row["late_s"], lang), className="late", **{"data-deadline": str(row["deadline"])})


def ticker(rows, category_names: dict, grid_names: dict, department_names: dict, lang: str, limit: int = TICKER_ROWS,
           page: int | None = TICKER_PAGE) -> html.Div:
    """The overdue cases, most severe first, under a line counting them (the overdue tile's
    number) and the cases due soon (kept apart: they are not late yet); the first ``limit``.

    With ``page``, the browser shows that many rows at a time and pages through them (wall.js;
    the first page shows until it does), above a footer with the page and the number of all
    alerts. Without, the alerts beyond ``limit`` are counted in a last line.
    """
    overdue = [row for row in rows if row["state"] == "overdue"]
    due_soon = len(rows) - len(overdue)
    counts = html.Div([
        html.Span(tf("alerts_overdue", lang, count=len(overdue)), className="count-overdue", **{"data-count": str(len(overdue))}),
        html.Span(tf("alerts_due_soon", lang, count=due_soon), className="count-due-soon", **{"data-count": str(due_soon)}),
    ], className="ticker-counts")
    return html.Div([counts, _alert_list(overdue, category_names, grid_names, department_names, lang, limit, page)])


def _alert_list(rows, category_names: dict, grid_names: dict, department_names: dict, lang: str, limit: int, page: int | None) -> html.Ul:
    items = []
    hidden = len(rows) - limit
    for row in rows[:limit]:
        classes = f"alert-row state-{row['state']} grade-{row['grade']}" + (" severe" if row["grade"] == "A" and row["state"] == "overdue" else "")
        if page and len(items) >= page:
            classes += " paged-out"
        items.append(html.Li([
            html.Span(row["grade"], className="grade-badge"),
            html.Span([*([html.Span(t("supervised_badge", lang), className="supervise-badge", title=t("supervised_title", lang))] if row.get("supervised") else []),
                       category_names.get(row["category"], row["category"])], className="alert-category"),
            html.Span(grid_names.get(row["grid"], row["grid"]), className="alert-grid"),
            html.Span(department_names.get(row["dept"], row["dept"] or ""), className="alert-dept"),
            late_cell(row, lang),
            html.Span(row["id"], className="alert-id"),
        ], className=classes, **{"data-case": row["id"], "data-row": str(len(items))}))
    if not items:
        items = [html.Li(t("no_alerts", lang), className="alert-row empty")]
    if page:
        if len(rows) > page:  # which page shows (written by the browser) and how many alerts there are
            items.append(html.Li([html.Span(className="ticker-page"), html.Span(tf("alerts_in_all", lang, count=len(rows)))],
                                 className="alert-row empty ticker-footer"))
        return html.Ul(items, className="ticker-list", **{"data-lang": lang, "data-page": str(page)})
    if hidden > 0:
        items.append(html.Li(f"{t('more_rows', lang)} {hidden}", className="alert-row empty more-rows"))
    return html.Ul(items, className="ticker-list", **{"data-lang": lang})


def grid_info(grid: dict | None, staff: list[dict], counts: list[int], lang: str) -> list:
    """The panel shown when a grid is clicked: name, staff, counts."""
    if grid is None:
        return []
    people = [html.Div(f"{t('grid_' + s['role'], lang)}：{s['name']}") for s in staff]
    return [
        html.Div(grid["name"], className="info-title"),
        html.Div(grid["code"], className="muted"),
        *people,
        html.Div(f"{t('open_cases', lang)} {counts[0]} · {t('overdue_cases', lang)} {counts[1]}"),
    ]


def worker_info(worker: dict | None, lang: str) -> list:
    """The panel shown when a worker is clicked: who, where, how long since the last ping, today's patrol."""
    if worker is None:
        return []
    facts = [
        ("home_grid", worker["home_grid"] or "—"), ("in_grid", worker["grid"] or "—"),
        ("last_ping", f"{age_text(worker['age_s'], lang)} · {t('worker_online' if worker['online'] else 'worker_offline', lang)}"),
        ("today_patrol", tf("patrol_today_text", lang, km=f"{worker['km']:.1f}", hours=f"{worker['hours']:.1f}", rounds=worker["rounds"])),
        ("phone", worker["phone"] or "—"),
    ]
    return [
        html.Div(f"{worker['name'] or '—'} · {worker['id']}", className="info-title"),
        html.Dl([part for key, value in facts for part in (html.Dt(t(key, lang)), html.Dd(value))], className="worker-facts", **{"data-worker": worker["id"]}),
    ]


ATTENTION_SHOWN = 5  # items the banner names; it counts the rest


def attention_banner(items: list[dict], categories: dict, grids: dict, lang: str, can_acknowledge: bool) -> list:
    """New danger on every wall until acknowledged: grade-A reports and grade-A cases fallen overdue,
    newest first, with the button that acknowledges them for every wall (duty roles, not a kiosk)."""
    if not items:
        return []
    lines = [html.Li([html.Span(t("attention_" + item["reason"], lang), className=f"reason reason-{item['reason']}"),
                      html.Span(categories.get(item["category"], item["category"] or "")), html.Span(grids.get(item["grid"], item["grid"] or "")),
                      html.Span(item["id"], className="case-id")], **{"data-case": item["id"], "data-reason": item["reason"]})
             for item in items[:ATTENTION_SHOWN]]
    if len(items) > ATTENTION_SHOWN:
        lines.append(html.Li(tf("more_count", lang, count=len(items) - ATTENTION_SHOWN), className="more"))
    head = [html.Span(tf("attention_title", lang, count=len(items)), className="attention-title")]
    if can_acknowledge:
        head.append(html.Button(t("acknowledge", lang), id=ids.Wall.ACKNOWLEDGE, className="acknowledge control"))
    return [html.Div(head, className="attention-head"), html.Ul(lines)]


def wall_map(grids: dict, towns: dict, outline: dict, bounds, tile_url: str | None, counts: dict, town_counts: dict, kiosk: bool,
             cases: dict, workers: dict, trails: dict) -> dl.Map:
    """The map, built once with the current pins, workers and trails; deltas are merged in later."""
    layers = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, attribution=""))
    layers += [
        geojson(id=ids.Wall.GRIDS, data=grids, style={"variable": "gridops.wall.gridStyle"}, hideout={"counts": counts, "zoom": 10},
                hoverStyle={"variable": "gridops.map.hoverStyle"}),
        geojson(id=ids.Wall.TOWNS, data=towns, style={"variable": "gridops.wall.townStyle"}, hideout={"counts": town_counts, "zoom": 10}, interactive=False),
        geojson(data=outline, style={"color": "#5ad8ff", "weight": 3, "fill": False}, interactive=False),
        geojson(id=ids.Wall.FOCUS, data={"type": "FeatureCollection", "features": []}, style=FOCUS_STYLE, interactive=False),
        geojson(id=ids.Wall.CASES, data=cases, pointToLayer={"variable": "gridops.wall.casePin"},
                cluster=True, clusterToLayer={"variable": "gridops.wall.caseCluster"}, superClusterOptions={"radius": 45, "maxZoom": 14}),
        geojson(id=ids.Wall.TRAILS, data=trails, style={"variable": "gridops.wall.trailStyle"}, interactive=False),
        geojson(id=ids.Wall.WORKERS, data=workers, pointToLayer={"variable": "gridops.wall.workerMarker"}),
    ]
    # a centre as well as bounds: dash-leaflet's viewport tracking compares against it.
    center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    return dl.Map(layers, id=ids.Wall.MAP, bounds=bounds, center=center, zoomSnap=0.25, preferCanvas=True,
                  attributionControl=False, zoomControl=not kiosk, className="wall-map", style={"background": "#07111f"})


FOCUS_STYLE = {"color": "#ffd54f", "weight": 4, "fill": False, "opacity": 0.95}  # the town the rotation shows


# The shading of a basic grid by its open cases: (ramp step, open cases) as gridops.map.openColour
# steps them (0; 1; 2–3; 4–6; 7 and more): a browser test holds the two together.
OPEN_STEPS = ((0, "0"), (1, "1"), (2, "2–3"), (3, "4–6"), (4, "7+"))


def map_legend(lang: str) -> html.Div:
    """What the map's marks mean, in a corner of the map: the pins by grade and the ring of an
    overdue one, the grids' shading and red edge, workers online and offline and their trail."""
    def item(mark: html.Span, key: str, **data) -> html.Div:
        return html.Div([mark, html.Span(t(key, lang))], className="legend-item", **data)

    shading = [html.Div([html.Span(className=f"swatch ramp-{step}"), html.Span(text)], className="legend-step", **{"data-open": text.split("–")[0].rstrip("+")})
               for step, text in OPEN_STEPS]
    return html.Div([
        html.Div([item(html.Span(className=f"pin grade-{grade}"), f"legend_grade_{grade}") for grade in ("A", "B", "C")]
                 + [item(html.Span(className="pin grade-C state-overdue"), "legend_overdue_pin"),
                    item(html.Span(className="pin grade-C supervised"), "legend_supervised_pin")], className="legend-row"),
        html.Div([html.Span(t("legend_open_cases", lang), className="legend-title"), *shading,
                  item(html.Span(className="swatch overdue-edge"), "legend_overdue_edge")], className="legend-row"),
        html.Div([item(html.Span(className="worker-dot online"), "legend_worker_online"), item(html.Span(className="worker-dot offline"), "legend_worker_offline"),
                  item(html.Span(className="trail-line"), "legend_trail")], className="legend-row"),
    ], id=ids.Wall.LEGEND, className="wall-legend")


def layout(lang: str, area: dict, kiosk: bool, values: dict, map_parts: dict, board, ticker_list, figures: dict, state: dict,
           other_language_href: str, stream_url: str, attention: list | None = None) -> html.Div:
    """The whole wall. ``map_parts``: grids, towns, outline, bounds, tile_url, counts, town_counts,
    and the feature collections cases, workers, trails."""
    header = html.Header([
        html.H1([html.Span(area["name"], className="area-name"), " ", t("app_title", lang), html.Span(id=ids.Wall.VIEW_TITLE, className="view-title")]),
        html.Div([
            html.Span(id=ids.Wall.STALE, className="stale"),
            html.Span(id=ids.Wall.HEALTH, className="health health-unknown", **{"data-age": ""}),
            html.Span(id=ids.Wall.CLOCK, className="clock"),
            html.A(t("language_switch", lang), href=other_language_href, className="lang-switch control"),
        ], className="header-right"),
    ], className="wall-header")
    main = html.Div([
        html.Div([
            wall_map(map_parts["grids"], map_parts["towns"], map_parts["outline"], map_parts["bounds"], map_parts["tile_url"],
                     map_parts["counts"], map_parts["town_counts"], kiosk, map_parts["cases"], map_parts["workers"], map_parts["trails"]),
            map_legend(lang),
            html.Div(id=ids.Wall.GRID_INFO, className="grid-info"),
            html.Div(attention, id=ids.Wall.ATTENTION, className="attention-banner", role="alert"),
            html.Div(id=ids.Wall.OVERDUE_VIEW, className="overdue-view hidden"),
        ], className="wall-map-panel"),
        html.Div([
            html.Section([html.H2([t("dispatch_board", lang), html.Span(t("board_marks_note", lang), className="board-marks-note")]), html.Div(board, id=ids.Wall.BOARD, className="board-scroll")], className="wall-panel board-panel"),
            html.Section([html.H2(t("alerts", lang)), html.Div(ticker_list, id=ids.Wall.TICKER, className="ticker")], className="wall-panel ticker-panel"),
            html.Section([html.H2(t("trend_24h", lang)), dcc.Graph(id=ids.Wall.TREND, figure=figures["trend"], config={"displayModeBar": False, "staticPlot": kiosk}, className="wall-graph")], className="wall-panel chart-panel"),
            html.Div([
                html.Section([html.H2(t("categories", lang)), dcc.Graph(id=ids.Wall.CATEGORIES, figure=figures["categories"], config={"displayModeBar": False, "staticPlot": kiosk}, className="wall-graph")], className="wall-panel"),
                html.Section([html.H2(t("sources", lang)), dcc.Graph(id=ids.Wall.SOURCES, figure=figures["sources"], config={"displayModeBar": False, "staticPlot": kiosk}, className="wall-graph")], className="wall-panel"),
            ], className="chart-pair"),
        ], className="wall-side"),
    ], className="wall-main")
    return html.Div([
        header,
        html.Div(kpi_row(values, WALL_TILES, lang), id=ids.Wall.TILES, className="wall-tiles"),
        main,
        SSE(id=ids.Wall.STREAM, url=stream_url, concat=False, options={"method": "GET", "withCredentials": True}),
        dcc.Interval(id=ids.Wall.PULL, interval=PULL_FALLBACK_MS),
        dcc.Interval(id=ids.Wall.TICK, interval=TICK_MS),
        dcc.Interval(id=ids.Wall.ROTATE, interval=max(5, state.get("rotate") or 60) * 1000, disabled=not state.get("rotate")),
        dcc.Store(id=ids.Wall.STATE, data=state),
        dcc.Store(id=ids.Wall.CURSOR, data=state["cursor"]),
        dcc.Store(id=ids.Wall.DELTA, data={"feed": state.get("feed")}),
        dcc.Store(id=ids.Wall.VIEW, data={"index": 0}),
        dcc.Store(id=ids.Wall.LAST_OK, data=0),
        dcc.Store(id=ids.Wall.SIGNAL, data=None),
        dcc.Store(id=ids.Wall.STREAM_HEARD, data=0),
        dcc.Store(id=ids.Wall.SCALE, data=None),
        dcc.Store(id=ids.Wall.ATTENTION_KEYS, data=state.get("attention", [])),
    ], id=ids.Wall.ROOT, className="wall" + (" kiosk" if kiosk else ""), lang="zh-CN" if lang == "zh" else "en")
