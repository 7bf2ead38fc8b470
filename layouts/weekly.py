"""The assessment screen (周例会 / 月度、季度考核): large type for a projector. Pure builders over a WeeklyReport."""
from __future__ import annotations

from datetime import date, timedelta

import plotly.graph_objects as go
from dash import dcc, html

from dashboard.formatting import format_value, interventions_text
from dashboard.i18n import period_key, t, tf
from dashboard.weekly_columns import period_name, period_text
from gridrules.timewindows import PERIOD_KINDS, period_shift
from layouts import ids
from layouts.widgets import category_axis, change_tiles, page_header, page_language

WEEKLY_TILES = (
    "reported", "registered", "closed", "due_to_close", "closed_on_time", "overdue", "closure_rate",
    "on_time_closure_rate", "on_time_handling_rate", "rework_rate", "satisfaction_rate", "patrol_hours",
)
PERIODS_TO_PICK = 12
TREND_RATES = (("closure_rate", "#35d07f"), ("on_time_closure_rate", "#ffb020"), ("satisfaction_rate", "#c58cff"))
CHART = {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "font": {"color": "#cfe3ff", "size": 15},
         "margin": {"l": 50, "r": 50, "t": 10, "b": 40}}


def kind_options(lang: str) -> list[dict]:
    return [{"label": t(f"period_{kind}", lang), "value": kind} for kind in PERIOD_KINDS]


def period_options(kind: str, running: date, lang: str) -> list[dict]:
    """The running period (marked) and the eleven before it, newest first, each by name and dates."""
    options = []
    for back in range(PERIODS_TO_PICK):
        first = period_shift(kind, running, -back)
        last = period_shift(kind, first, 1) - timedelta(days=1)
        dates = f"{first:%Y-%m-%d} ~ {last:%m-%d}"
        label = f"{period_name(kind, first, lang)} {dates}" + (f"（{t('running', lang)}）" if not back else "")
        options.append({"label": label if lang == "zh" else label.replace("（", " (").replace("）", ")"), "value": first.isoformat()})
    return options


def trend_figure(report, lang: str) -> go.Figure:
    """The main rates of the twelve periods up to this one as lines (left axis, %), reported as
    bars (right axis); periods by name on a category axis, the running one marked."""
    trend = report.trend
    labels = [period_name(report.kind, start, lang) + (f"<br>({t('running', lang)})" if running else "")  # a second line: ticks stay apart
              for start, running in zip(trend["start"], trend["running"])]

    def values(column: str, scale: float = 1.0) -> list:
        return [None if value is None or value != value else round(float(value) * scale, 1) for value in trend[column]]

    # the counts on the base axis (right) and the rates on the one overlaying it (left): plotly
    # draws an overlaying axis's traces on top, so the lines stay in front of the bars
    figure = go.Figure([go.Bar(x=labels, y=values("reported"), name=t("reported", lang), marker_color="#35506f")])
    for key, colour in TREND_RATES:
        figure.add_trace(go.Scatter(x=labels, y=values(key, 100), name=t(key, lang), mode="lines+markers", line={"color": colour, "width": 3}, yaxis="y2"))
    figure.update_layout(**CHART, legend={"orientation": "h", "y": 1.14}, uirevision="weekly",
                         yaxis={"side": "right", "rangemode": "tozero", "showgrid": False, "title": {"text": t("reported", lang)}},
                         yaxis2={"overlaying": "y", "side": "left", "range": [0, 105], "tickmode": "linear", "tick0": 0, "dtick": 20,
                                 "ticksuffix": "%", "gridcolor": "#15304d"})
    figure.update_xaxes(gridcolor="#15304d", **category_axis(labels))
    return figure


def _table(headers: list[str], rows: list[list], row_classes: list[str] | None = None, attributes: list[dict] | None = None) -> html.Table:
    body = []
    for index, row in enumerate(rows):
        extra = (attributes or [{}] * len(rows))[index]
        body.append(html.Tr([html.Td(cell) for cell in row], className=(row_classes or [""] * len(rows))[index], **extra))
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(body)], className="data-table weekly-table")


def _pct(value) -> str:
    return format_value("closure_rate", value)


def red_black(report, lang: str, min_due: int) -> html.Div:
    """The red and the black list, each department under its place in the ranking beside it
    (departments with too few cases due have a rank but are on neither list), and the rule."""
    def card(frame, title: str, tone: str):
        items = [html.Li([html.Span(str(row["rank"]), className="place"), html.Span(row["name"]), html.Span(f"{row['score']:.1f}", className="score")],
                         **{"data-dept": row["dept"], "data-rank": str(row["rank"])}) for row in frame.to_dict("records")]
        return html.Div([html.H3(title), html.Ul(items or [html.Li(t("no_data", lang), className="muted")], className="ranked")], className=f"list-card {tone}")

    return html.Div([
        html.Div([card(report.red, t("red_list", lang), "red"), card(report.black, t("black_list", lang), "black")], className="red-black"),
        html.P(tf("red_black_rule", lang, min_due=min_due), className="muted table-note red-black-rule"),
    ])


def department_ranking(report, lang: str) -> html.Table:
    red, black = set(report.red["dept"]), set(report.black["dept"])
    rows = [[row["rank"], row["name"], row["due_to_close"], _pct(row["closure_rate"]), _pct(row["on_time_closure_rate"]),
             _pct(row["rework_rate"]), _pct(row["satisfaction_rate"]), row["overdue"], interventions_text(row, lang),
             "—" if row["score"] is None or row["score"] != row["score"] else f"{row['score']:.1f}", row["grade"] or "—"]
            for row in report.departments.to_dict("records")]
    classes = ["red-row" if d in red else "black-row" if d in black else "" for d in report.departments["dept"]]
    headers = [t(k, lang) for k in ("rank", "department", "due_to_close", "closure_rate", "on_time_closure_rate", "rework_rate", "satisfaction_rate", "overdue",
                                    "interventions", "score", "grade")]
    return _table(headers, rows, classes, [{"data-dept": d} for d in report.departments["dept"]])


def categories(report, lang: str) -> html.Table:
    rows = [[row["name"], row["reported"], row["previous"], f"{row['change']:+d}"] for row in report.categories.to_dict("records")]
    return _table([t("category", lang), t(period_key("this_week", report.kind), lang), t(period_key("last_week", report.kind), lang), t("change", lang)], rows)


def hot_grids(report, lang: str) -> html.Table:
    rows = [[row["name"], row["reported"], row["in_progress"], row["overdue"]] for row in report.hot_grids.to_dict("records")]
    return _table([t(k, lang) for k in ("grid", "reported", "in_progress", "overdue")], rows)


def overdue_cases(report, lang: str) -> html.Table:
    rows = [[row["id"], row["category_name"], row["grid_name"], row["dept_name"], row["grade"], f"{row['late_hours']:.1f}"]
            for row in report.overdue_cases.head(12).to_dict("records")]
    return _table([t(k, lang) for k in ("case_id", "category", "grid", "department", "grade", "late_hours")], rows)


def reworked_cases(report, lang: str) -> html.Table:
    rows = [[row["id"], row["category_name"], row["grid_name"], row["dept_name"], row["rework_count"]]
            for row in report.reworked_cases.head(12).to_dict("records")]
    return _table([t(k, lang) for k in ("case_id", "category", "grid", "department", "rework_count")], rows)


def worker_rule(config, lang: str) -> str:
    """The worker ranking's rule, from the configured weights and norms."""
    weights = config.score_weights["worker"]
    total = sum(weights.values())

    def share(name: str) -> int:
        return round(100 * weights.get(name, 0) / total)

    return tf("worker_rule", lang, patrol=share("patrol_attainment"), reports=share("report_attainment"), valid=share("valid_report_rate"),
              timely=share("timely_registration_rate"), hours=config.expected_hours_per_day, per_day=config.expected_valid_reports_per_day,
              min_hours=config.min_ranked_patrol_hours)


def workers(report, lang: str) -> html.Table:
    rows = [[row["rank"] if row["rank"] is not None and row["rank"] == row["rank"] else t("unranked", lang), row["name"], row["grid"], row["valid_reported"],
             _pct(row["valid_report_rate"]), f"{row['patrol_hours']:.1f}", _pct(row["patrol_attainment"]), _pct(row["report_attainment"]),
             _pct(row["timely_registration_rate"]), "—" if row["score"] is None or row["score"] != row["score"] else f"{row['score']:.1f}", row["grade"] or "—"]
            for row in report.workers.to_dict("records")]
    headers = [t(k, lang) for k in ("rank", "grid_worker", "grid", "valid_reported", "valid_report_rate", "patrol_hours", "patrol_attainment",
                                    "report_attainment", "timely_registration_rate", "score", "grade")]
    return _table(headers, rows, attributes=[{"data-worker": w} for w in report.workers["worker"]])


def body(report, lang: str, config) -> list:
    """Everything under the week picker; ``config`` (DomainConfig) gives the lists' rules."""
    running = report.window.asof < report.window.end
    return [
        html.Div(f"{report.area.name} · {period_text(report, lang)}", className="weekly-period running" if running else "weekly-period"),
        html.Div(change_tiles(report.totals, report.previous_totals, WEEKLY_TILES, lang), className="kpi-row weekly-tiles"),
        html.Section([html.H2(t("section_trend", lang)),
                      dcc.Graph(id=ids.Weekly.TREND, figure=trend_figure(report, lang), config={"displayModeBar": False}, className="weekly-trend")],
                     className="panel"),
        html.Div([
            html.Section([html.H2(t("red_black_list", lang)), red_black(report, lang, config.min_due)], className="panel"),
            html.Section([html.H2(t("department_ranking", lang)), department_ranking(report, lang)], className="panel wide"),
        ], className="weekly-row"),
        html.Div([
            html.Section([html.H2(t("top_categories", lang)), categories(report, lang)], className="panel"),
            html.Section([html.H2(t("hot_spots", lang)), hot_grids(report, lang)], className="panel"),
        ], className="weekly-row even"),
        html.Div([
            html.Section([html.H2(t(period_key("overdue_cases_week", report.kind), lang)), overdue_cases(report, lang)], className="panel"),
            html.Section([html.H2(t(period_key("reworked_cases_week", report.kind), lang)), reworked_cases(report, lang)], className="panel"),
        ], className="weekly-row even"),
        html.Section([html.H2(t("worker_ranking", lang)), html.P(worker_rule(config, lang), className="muted table-note worker-rule"),
                      workers(report, lang)], className="panel"),
    ]


def layout(lang: str, user: str | None, other_language_href: str, links, kind: str, options: list, first: str, content: list, state: dict) -> html.Div:
    return html.Div([
        page_header([html.Span(t(period_key("weekly_title", kind), lang), id=ids.Weekly.TITLE)], lang, user, other_language_href, links=links),
        html.Div([
            dcc.RadioItems(id=ids.Weekly.KIND, options=kind_options(lang), value=kind, inline=True, className="period-kinds"),
            dcc.Dropdown(id=ids.Weekly.WEEK, options=options, value=first, clearable=False, searchable=False, className="dropdown week-picker"),
            html.Button(t("export_pdf", lang), id=ids.Weekly.PDF, className="button"),
            html.Button(t("export_xlsx", lang), id=ids.Weekly.XLSX, className="button"),
            dcc.Download(id=ids.Weekly.DOWNLOAD),
        ], className="form-row"),
        dcc.Loading(html.Div(content, id=ids.Weekly.BODY), type="dot", color="#5ad8ff"),
        dcc.Store(id=ids.Weekly.STATE, data=state),
    ], className="page page-weekly", lang=page_language(lang))
