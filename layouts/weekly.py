"""The weekly meeting screen (周例会): large type for a projector. Pure builders over a WeeklyReport."""
from __future__ import annotations

from datetime import date, timedelta

from dash import dcc, html

from dashboard.formatting import format_value
from dashboard.i18n import t, tf
from dashboard.weekly_columns import period_text
from layouts import ids
from layouts.widgets import change_tiles, page_header

WEEKLY_TILES = (
    "reported", "registered", "closed", "due_to_close", "closed_on_time", "overdue", "closure_rate",
    "on_time_closure_rate", "on_time_handling_rate", "rework_rate", "satisfaction_rate", "patrol_hours",
)
WEEKS_TO_PICK = 12


def week_options(this_monday: date, lang: str) -> list[dict]:
    """The current week (marked as running) and the eleven before it, newest first."""
    options = []
    for back in range(WEEKS_TO_PICK):
        monday = this_monday - timedelta(weeks=back)
        label = f"{monday:%Y-%m-%d} ~ {monday + timedelta(days=6):%m-%d}（{t('week_number', lang)} {monday.isocalendar()[1]}{'，' + t('running', lang) if not back else ''}）"
        options.append({"label": label if lang == "zh" else label.replace("（", " (").replace("）", ")").replace("，", ", "), "value": monday.isoformat()})
    return options


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
             _pct(row["rework_rate"]), _pct(row["satisfaction_rate"]), row["overdue"],
             "—" if row["score"] is None or row["score"] != row["score"] else f"{row['score']:.1f}", row["grade"] or "—"]
            for row in report.departments.to_dict("records")]
    classes = ["red-row" if d in red else "black-row" if d in black else "" for d in report.departments["dept"]]
    headers = [t(k, lang) for k in ("rank", "department", "due_to_close", "closure_rate", "on_time_closure_rate", "rework_rate", "satisfaction_rate", "overdue", "score", "grade")]
    return _table(headers, rows, classes, [{"data-dept": d} for d in report.departments["dept"]])


def categories(report, lang: str) -> html.Table:
    rows = [[row["name"], row["reported"], row["previous"], f"{row['change']:+d}"] for row in report.categories.to_dict("records")]
    return _table([t(k, lang) for k in ("category", "this_week", "last_week", "change")], rows)


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
    running = report.week.asof < report.week.end
    return [
        html.Div(f"{report.area.name} · {period_text(report, lang)}", className="weekly-period running" if running else "weekly-period"),
        html.Div(change_tiles(report.totals, report.previous_totals, WEEKLY_TILES, lang), className="kpi-row weekly-tiles"),
        html.Div([
            html.Section([html.H2(t("red_black_list", lang)), red_black(report, lang, config.min_due)], className="panel"),
            html.Section([html.H2(t("department_ranking", lang)), department_ranking(report, lang)], className="panel wide"),
        ], className="weekly-row"),
        html.Div([
            html.Section([html.H2(t("top_categories", lang)), categories(report, lang)], className="panel"),
            html.Section([html.H2(t("hot_spots", lang)), hot_grids(report, lang)], className="panel"),
        ], className="weekly-row even"),
        html.Div([
            html.Section([html.H2(t("overdue_cases_week", lang)), overdue_cases(report, lang)], className="panel"),
            html.Section([html.H2(t("reworked_cases_week", lang)), reworked_cases(report, lang)], className="panel"),
        ], className="weekly-row even"),
        html.Section([html.H2(t("worker_ranking", lang)), html.P(worker_rule(config, lang), className="muted table-note worker-rule"),
                      workers(report, lang)], className="panel"),
    ]


def layout(lang: str, user: str | None, other_language_href: str, links, options: list, monday: str, content: list, state: dict) -> html.Div:
    return html.Div([
        page_header([t("weekly_title", lang)], lang, user, other_language_href, links=links),
        html.Div([
            dcc.Dropdown(id=ids.Weekly.WEEK, options=options, value=monday, clearable=False, className="dropdown week-picker"),
            html.Button(t("export_pdf", lang), id=ids.Weekly.PDF, className="button"),
            html.Button(t("export_xlsx", lang), id=ids.Weekly.XLSX, className="button"),
            dcc.Download(id=ids.Weekly.DOWNLOAD),
        ], className="form-row"),
        dcc.Loading(html.Div(content, id=ids.Weekly.BODY), type="dot", color="#5ad8ff"),
        dcc.Store(id=ids.Weekly.STATE, data=state),
    ], className="page page-weekly", lang="zh-CN" if lang == "zh" else "en")
