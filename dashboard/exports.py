"""Exports of the weekly meeting report (周例会): a spreadsheet and a printable PDF.

Pure builders: they take a ``WeeklyReport`` and return bytes. No database, no network: the PDF is
rendered by WeasyPrint from an HTML string whose only resources are inline ``data:`` URIs
(anything else is refused), with the system's Noto Sans CJK embedded as a subset. Numbers
go through ``layouts.widgets.format_value``, so paper, spreadsheet and screen agree.
"""
from __future__ import annotations

import base64
import html
import io
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import matplotlib
import pandas as pd

from dashboard.export_cells import put_cell, xml_text
from dashboard.formatting import PERCENT_KEYS, change_parts, format_value, plain_number
from dashboard.i18n import LABELS, t, tf
from dashboard.weekly import SUMMARY_KEYS, WeeklyReport, change
from gridrules.indicators import Window

matplotlib.use("Agg")  # no display on a server; figures are drawn straight to SVG

FONT_FAMILY = "Noto Sans CJK SC"
PDF_CASE_ROWS = 15  # overdue and reworked cases printed (the spreadsheet has all the report holds)
PDF_WORKER_ROWS = 20
XLSX_HEADER_ROW = 3  # rows 1–2 hold the title and the period
XLSX_MIN_WIDTH_CHARS = 6
XLSX_MAX_WIDTH_CHARS = 48
CHART_WIDTH_MM = 273  # A4 landscape (297 mm) less 12 mm margins
DAILY_CHART_HEIGHT_MM = 56
RED_BLACK_WIDTH_MM = 125  # the lists' column on the red/black page; the score chart takes the rest
SCORES_CHART_WIDTH_MM = CHART_WIDTH_MM - RED_BLACK_WIDTH_MM - 6
SCORES_CHART_MAX_MM = 168  # a page's height under its heading; more departments make thinner bars
SCORES_BAR_MM = 6.0
MM_PER_INCH = 25.4

TONE_COLOURS = {"good": "#1b7f3b", "bad": "#c62828", "neutral": "#5f6368"}
RED_COLOUR = "#c62828"
BLACK_COLOUR = "#212121"
BAR_COLOUR = "#5b7fa6"
THIS_WEEK_COLOURS = {"reported": "#1f5fa8", "closed": "#2e8b57"}
LAST_WEEK_COLOURS = {"reported": "#7fa7d6", "closed": "#8fcca8"}


# ---------------------------------------------------------------- formatting


def _text(value) -> str:
    return "" if plain_number(value) is None and not isinstance(value, str) else str(value)


# A representative indicator per kind of number, so every kind is formatted by format_value.
_KIND_KEY = {"count": "reported", "rate": "closure_rate", "hours": "mean_close_hours"}


def format_kind(kind: str, value, lang: str = "zh") -> str:
    """A number as the screen shows it: ``count``, ``rate`` (%), ``hours``, ``score`` (one decimal) or ``text``."""
    if kind == "text":
        return _text(value)
    value = plain_number(value)
    if kind == "score":
        return "—" if value is None else f"{value:.1f}"
    return format_value(_KIND_KEY[kind], value, lang)


def kind_of(key: str) -> str:
    """The kind of number an indicator key holds."""
    if key in PERCENT_KEYS:
        return "rate"
    if key.endswith("_hours") or key == "patrol_km":
        return "hours"
    return "count"


def _local(moment: datetime, tz) -> datetime:
    return moment.astimezone(tz) if tz is not None else moment


def week_label(window: Window) -> str:
    """``YYYY-MM-DD – YYYY-MM-DD``: the window's first and last local day."""
    tz = window.start.tzinfo
    last = _local(window.end, tz) - timedelta(days=1)
    return f"{_local(window.start, tz).date().isoformat()} – {last.date().isoformat()}"


def period_text(report: WeeklyReport, lang: str = "zh") -> str:
    """The week, how far it has run when still in progress, and the week it is compared with."""
    tz = report.week.start.tzinfo
    text = f"{t('report_period', lang)} {week_label(report.week)}"
    if report.week.asof < report.week.end:
        text += f" ({tf('as_of', lang, time=_local(report.week.asof, tz).strftime('%Y-%m-%d %H:%M'))})"
    return text + f" · {t('compared_with', lang)} {week_label(report.previous)}"


def report_title(report: WeeklyReport, lang: str = "zh") -> str:
    return f"{report.area.name} · {t('weekly_report', lang)}"


def _label(prefix: str, value, lang: str) -> str:
    """A code (stage, status) in words when there is a label for it, else the code itself."""
    value = _text(value)
    key = f"{prefix}_{value}"
    return t(key, lang) if key in LABELS else value


def _list_marks(report: WeeklyReport) -> dict[str, str]:
    """dept code → ``red`` or ``black`` for the departments on the 红黑榜."""
    marks = dict.fromkeys(report.red.get("dept", []), "red")
    marks.update(dict.fromkeys(report.black.get("dept", []), "black"))
    return marks


# ---------------------------------------------------------------- tables (shared by both exports)


@dataclass(frozen=True)
class Column:
    """One column of an exported table: its header label key, kind of number and how to read a row."""

    label: str
    kind: str
    value: Callable[[dict], object]


def _field(name: str) -> Callable[[dict], object]:
    return lambda row: row.get(name)


def department_columns(report: WeeklyReport, lang: str) -> list[Column]:
    marks = _list_marks(report)
    return [
        Column("rank", "count", _field("rank")),
        Column("department", "text", _field("name")),
        Column("dept_code", "text", _field("dept")),
        Column("due_to_close", "count", _field("due_to_close")),
        Column("closure_rate", "rate", _field("closure_rate")),
        Column("on_time_closure_rate", "rate", _field("on_time_closure_rate")),
        Column("rework_rate", "rate", _field("rework_rate")),
        Column("satisfaction_rate", "rate", _field("satisfaction_rate")),
        Column("overdue", "count", _field("overdue")),
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
        Column("list_mark", "text", lambda row: t(f"{marks[row['dept']]}_list", lang) if row.get("dept") in marks else ""),
    ]


def category_columns(lang: str) -> list[Column]:
    return [
        Column("category_code", "text", _field("code")),
        Column("category", "text", _field("name")),
        Column("reported_this_week", "count", _field("reported")),
        Column("reported_last_week", "count", _field("previous")),
        Column("change_vs_last_week", "count", _field("change")),
    ]


def hot_grid_columns(lang: str) -> list[Column]:
    return [
        Column("grid", "text", _field("name")),
        Column("grid_code", "text", _field("grid")),
        Column("reported", "count", _field("reported")),
        Column("in_progress", "count", _field("in_progress")),
        Column("overdue", "count", _field("overdue")),
    ]


def overdue_columns(lang: str) -> list[Column]:
    return [
        Column("case_id", "text", _field("id")),
        Column("category", "text", _field("category_name")),
        Column("grid", "text", _field("grid_name")),
        Column("department", "text", _field("dept_name")),
        Column("grade", "text", _field("grade")),
        Column("stage", "text", lambda row: _label("stage", row.get("stage"), lang)),
        Column("late_hours", "hours", _field("late_hours")),
    ]


def reworked_columns(lang: str) -> list[Column]:
    return [
        Column("case_id", "text", _field("id")),
        Column("category", "text", _field("category_name")),
        Column("grid", "text", _field("grid_name")),
        Column("department", "text", _field("dept_name")),
        Column("rework_count", "count", _field("rework_count")),
        Column("status", "text", lambda row: _label("status", row.get("status"), lang)),
    ]


def worker_columns(lang: str) -> list[Column]:
    return [
        Column("rank", "count", _field("rank")),
        Column("person_name", "text", _field("name")),
        Column("worker_id", "text", _field("worker")),
        Column("grid", "text", _field("grid")),
        Column("reported", "count", _field("reported")),
        Column("valid_reported", "count", _field("valid_reported")),
        Column("valid_report_rate", "rate", _field("valid_report_rate")),
        Column("timely_registration_rate", "rate", _field("timely_registration_rate")),
        Column("patrol_hours", "hours", _field("patrol_hours")),
        Column("patrol_attainment", "rate", _field("patrol_attainment")),
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
    ]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [] if frame is None or frame.empty else frame.to_dict("records")


# ---------------------------------------------------------------- spreadsheet

_XLSX_FORMATS = {
    "count": "#,##0",
    "rate": "0.0%",
    "hours": "#,##0.0",
    "score": "0.0",
}
_XLSX_CHANGE_FORMATS = {
    "count": "+#,##0;-#,##0;0",
    "rate": "+0.0%;-0.0%;0.0%",
    "hours": "+#,##0.0;-#,##0.0;0.0",
}


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK characters count twice."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _cell_value(kind: str, value):
    if kind == "text":
        return _text(value) or None
    return plain_number(value)


def weekly_xlsx(report: WeeklyReport, lang: str = "zh") -> bytes:
    """The weekly report as an .xlsx workbook: summary, departments, categories, hot grids, cases, workers."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    book.properties.title = xml_text(f"{report_title(report, lang)} {week_label(report.week)}")
    book.properties.creator = "GridOps"

    _summary_sheet(book, report, lang)
    marks = _list_marks(report)
    fills = {"red": "FDE2E2", "black": "D9D9D9"}
    _table_sheet(book, "sheet_departments", report, lang, department_columns(report, lang), _records(report.departments),
                 row_fill=lambda row: fills.get(marks.get(row.get("dept"))))
    _table_sheet(book, "sheet_categories", report, lang, category_columns(lang), _records(report.categories), signed={"change_vs_last_week"})
    _table_sheet(book, "sheet_hot_grids", report, lang, hot_grid_columns(lang), _records(report.hot_grids))
    _table_sheet(book, "sheet_overdue", report, lang, overdue_columns(lang), _records(report.overdue_cases))
    _table_sheet(book, "sheet_reworked", report, lang, reworked_columns(lang), _records(report.reworked_cases))
    _table_sheet(book, "sheet_workers", report, lang, worker_columns(lang), _records(report.workers))

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet_start(book, sheet_key: str, report: WeeklyReport, lang: str):
    from openpyxl.styles import Font

    sheet = book.create_sheet(t(sheet_key, lang))
    put_cell(sheet, 1, 1, f"{report_title(report, lang)} · {t(sheet_key, lang)}").font = Font(bold=True, size=14)
    put_cell(sheet, 2, 1, period_text(report, lang))
    sheet.freeze_panes = sheet.cell(row=XLSX_HEADER_ROW + 1, column=1).coordinate
    sheet.print_title_rows = f"{XLSX_HEADER_ROW}:{XLSX_HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    return sheet


def _write_header(sheet, labels: list[str]) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    for index, label in enumerate(labels, start=1):
        cell = put_cell(sheet, XLSX_HEADER_ROW, index, label)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E8EEF6")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(bottom=Side(style="thin", color="7F8FA6"))


def _fit_widths(sheet, widths: list[int]) -> None:
    from openpyxl.utils import get_column_letter

    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(XLSX_MIN_WIDTH_CHARS, min(XLSX_MAX_WIDTH_CHARS, width + 2))


def _summary_sheet(book, report: WeeklyReport, lang: str) -> None:
    sheet = _sheet_start(book, "sheet_summary", report, lang)
    labels = [t("indicator", lang), t("this_week", lang), t("last_week", lang), t("change_vs_last_week", lang)]
    _write_header(sheet, labels)
    widths = [_display_width(label) for label in labels]
    for offset, key in enumerate(SUMMARY_KEYS, start=1):
        row = XLSX_HEADER_ROW + offset
        kind = kind_of(key)
        current, previous = plain_number(report.totals.get(key)), plain_number(report.previous_totals.get(key))
        values = [t(key, lang), current, previous, change(current, previous)]
        formats = [None, _XLSX_FORMATS[kind], _XLSX_FORMATS[kind], _XLSX_CHANGE_FORMATS[kind]]
        for column, (value, number_format) in enumerate(zip(values, formats), start=1):
            cell = put_cell(sheet, row, column, value)
            if number_format:
                cell.number_format = number_format
        shown = [values[0]] + [format_value(key, value, lang) for value in values[1:]]
        widths = [max(width, _display_width(text) + 1) for width, text in zip(widths, shown)]
    _fit_widths(sheet, widths)


def _table_sheet(book, sheet_key: str, report: WeeklyReport, lang: str, columns: list[Column], rows: list[dict],
                 row_fill: Callable[[dict], str | None] | None = None, signed: frozenset | set = frozenset()) -> None:
    from openpyxl.styles import PatternFill

    sheet = _sheet_start(book, sheet_key, report, lang)
    labels = [t(column.label, lang) for column in columns]
    _write_header(sheet, labels)
    widths = [_display_width(label) for label in labels]
    if not rows:
        put_cell(sheet, XLSX_HEADER_ROW + 1, 1, t("no_data", lang))
    for offset, record in enumerate(rows, start=1):
        fill = row_fill(record) if row_fill else None
        for index, column in enumerate(columns, start=1):
            value = _cell_value(column.kind, column.value(record))
            cell = put_cell(sheet, XLSX_HEADER_ROW + offset, index, value)
            if column.kind in _XLSX_FORMATS:
                cell.number_format = (_XLSX_CHANGE_FORMATS if column.label in signed else _XLSX_FORMATS)[column.kind]
            if fill:
                cell.fill = PatternFill("solid", fgColor=fill)
            widths[index - 1] = max(widths[index - 1], _display_width(format_kind(column.kind, value, lang)))
    _fit_widths(sheet, widths)


# ---------------------------------------------------------------- charts (SVG, text kept as text)


def _chart_style() -> dict:
    return {
        "svg.fonttype": "none",  # text stays text: the PDF's embedded CJK font draws it
        "svg.hashsalt": "gridops-weekly",  # stable ids, so the same report gives the same SVG
        "font.family": [FONT_FAMILY, "DejaVu Sans"],
        "font.size": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "legend.frameon": False,
        "text.parse_math": False,  # names are drawn as written: "$…$" in one is not TeX
    }


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _inch(mm: float) -> float:
    return mm / MM_PER_INCH


def daily_chart_svg(daily: pd.DataFrame, lang: str = "zh", width_mm: float = CHART_WIDTH_MM, height_mm: float = DAILY_CHART_HEIGHT_MM) -> str:
    """Bars for reported and closed per day this week, lines for the same days last week."""
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_chart_style()):
        figure = Figure(figsize=(_inch(width_mm), _inch(height_mm)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(7))
        labels = [f"{t(f'weekday_{weekday}', lang)}\n{day:%m-%d}" for weekday, day in zip(daily["weekday"], daily["date"])]
        bar = 0.36
        for shift, name, label in ((-bar / 2, "reported", "chart_reported_this"), (bar / 2, "closed", "chart_closed_this")):
            values = [plain_number(value) for value in daily[name]]
            drawn = [(position + shift, value) for position, value in zip(positions, values) if value is not None]
            rects = axes.bar([x for x, _ in drawn], [v for _, v in drawn], width=bar, color=THIS_WEEK_COLOURS[name], label=t(label, lang))
            axes.bar_label(rects, fontsize=9, padding=1)
        for name, label in (("previous_reported", "chart_reported_last"), ("previous_closed", "chart_closed_last")):
            values = [plain_number(value) for value in daily[name]]
            colour = LAST_WEEK_COLOURS[name.removeprefix("previous_")]
            axes.plot(positions, [math.nan if value is None else value for value in values], color=colour, linestyle="--",
                      linewidth=2, marker="o", markersize=4, label=t(label, lang))
        axes.set_xticks(positions, labels)
        axes.set_xlim(-0.6, 6.6)
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        handles, labels = axes.get_legend_handles_labels()
        order = [2, 3, 0, 1]  # this week's bars first, then last week's lines
        axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _svg(figure)


def scores_chart_svg(report: WeeklyReport, lang: str = "zh", width_mm: float = SCORES_CHART_WIDTH_MM, height_mm: float | None = None) -> str:
    """Department scores as horizontal bars, best at the top; red-list bars red, black-list bars black."""
    from matplotlib.figure import Figure

    table = report.departments[report.departments["score"].notna()] if not report.departments.empty else report.departments
    marks = _list_marks(report)
    names = [_text(name) for name in table["name"]] if not table.empty else []
    scores = [plain_number(score) for score in table["score"]] if not table.empty else []
    colours = [{"red": RED_COLOUR, "black": BLACK_COLOUR}.get(marks.get(code), BAR_COLOUR) for code in table.get("dept", [])]
    height_mm = height_mm or scores_chart_height_mm(len(names))
    with matplotlib.rc_context(_chart_style()):
        figure = Figure(figsize=(_inch(width_mm), _inch(height_mm)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(names)))
        rects = axes.barh(positions, scores, color=colours, height=0.7)
        axes.bar_label(rects, labels=[f"{score:.1f}" for score in scores], fontsize=10, padding=2)
        axes.set_yticks(positions, names)
        axes.invert_yaxis()
        axes.set_xlim(0, 105)
        axes.set_xlabel(t("score", lang))
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        return _svg(figure)


def scores_chart_height_mm(bars: int) -> float:
    """One legible row per department, within the red/black page."""
    return max(40.0, min(SCORES_CHART_MAX_MM, 14.0 + SCORES_BAR_MM * bars))


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


# ---------------------------------------------------------------- PDF

_CSS = """
@page {
  size: A4 landscape;
  margin: 11mm 12mm 14mm 12mm;
  @bottom-left { content: "%(footer_left)s"; font-size: 9pt; color: #555; }
  @bottom-right { content: %(page_of)s; font-size: 9pt; color: #555; }
}
html { font-family: "%(font)s", sans-serif; color: #1a1a1a; font-size: 12pt; line-height: 1.3; }
body { margin: 0; }
h1 { font-size: 22pt; margin: 0; line-height: 1.2; }
h2 { font-size: 15pt; margin: 3mm 0 2mm 0; padding-left: 2.5mm; border-left: 2mm solid #1f5fa8; }
.period { font-size: 12pt; color: #333; margin: 0 0 2mm 0; }
.new-page { break-before: page; }
.keep { break-inside: avoid; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 2mm; }
.tile { border: 0.3mm solid #c5cfdc; border-radius: 1.5mm; padding: 1.2mm 2mm; background: #f6f8fb; }
.tile .label { font-size: 10.5pt; color: #333; }
.tile .value { font-size: 19pt; font-weight: bold; line-height: 1.15; }
.tile .delta { font-size: 10.5pt; font-weight: bold; }
.tile .prev { font-size: 9.5pt; color: #555; }
.good { color: %(good)s; } .bad { color: %(bad)s; } .neutral { color: %(neutral)s; }
.legend { font-size: 9.5pt; color: #555; margin: 1mm 0 0 0; }
.chart img { display: block; }
table { border-collapse: collapse; width: 100%%; font-size: 11pt; }
th { background: #e8eef6; font-weight: bold; text-align: right; padding: 1.1mm 1.5mm; border-bottom: 0.4mm solid #7f8fa6; }
th.text { text-align: left; }
td { padding: 0.8mm 1.5mm; border-bottom: 0.2mm solid #d5dbe3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.red td { background: #fde2e2; }
tr.black td { background: #dcdcdc; }
.tag { white-space: nowrap; display: inline-block; padding: 0 1.5mm; border-radius: 1mm; color: white; font-weight: bold; }
.tag.red { background: %(red)s; } .tag.black { background: %(black)s; }
.red-black { display: grid; grid-template-columns: %(lists_mm)smm 1fr; gap: 6mm; }
.list { margin-bottom: 5mm; }
.list h3 { margin: 0; padding: 1.5mm 3mm; color: white; font-size: 14pt; }
.list.red h3 { background: %(red)s; } .list.black h3 { background: %(black)s; }
.list.red { border: 0.5mm solid %(red)s; } .list.black { border: 0.5mm solid %(black)s; }
.list table { font-size: 12pt; }
.list th { white-space: nowrap; }
.note { font-size: 10pt; color: #555; margin: 1mm 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; }
.empty { color: #777; text-align: center; padding: 3mm; }
"""


def _css_string(text: str) -> str:
    """A CSS string literal's content: quotes, backslashes, line breaks and ``<`` escaped."""
    return "".join({"\\": "\\\\", '"': '\\"', "\n": "\\a ", "<": "\\3c "}.get(char, char) for char in text)


def _page_of_css(lang: str) -> str:
    """``"第 " counter(page) " 页 / 共 " counter(pages) " 页"`` from the ``page_of`` label."""
    template = t("page_of", lang)
    parts = []
    rest = template
    while rest:
        positions = [(rest.find(token), token, counter) for token, counter in (("{page}", "counter(page)"), ("{pages}", "counter(pages)")) if token in rest]
        if not positions:
            parts.append(f'"{_css_string(rest)}"')
            break
        index, token, counter = min(positions)
        if index:
            parts.append(f'"{_css_string(rest[:index])}"')
        parts.append(counter)
        rest = rest[index + len(token):]
    return " ".join(parts)


def _e(value) -> str:
    return html.escape(_text(value))


def _table_html(columns: list[Column], rows: list[dict], lang: str, row_class: Callable[[dict], str] | None = None,
                cell_html: dict[str, Callable[[dict], str]] | None = None) -> str:
    head = "".join(f'<th class="{"text" if column.kind == "text" else "num"}">{_e(t(column.label, lang))}</th>' for column in columns)
    if not rows:
        body = f'<tr><td class="empty" colspan="{len(columns)}">{_e(t("no_data", lang))}</td></tr>'
    else:
        lines = []
        for record in rows:
            cells = []
            for column in columns:
                if cell_html and column.label in cell_html:
                    content = cell_html[column.label](record)
                else:
                    content = _e(format_kind(column.kind, column.value(record), lang))
                css = ' class="num"' if column.kind != "text" else ""
                cells.append(f"<td{css}>{content}</td>")
            css = f' class="{row_class(record)}"' if row_class and row_class(record) else ""
            lines.append(f"<tr{css}>{''.join(cells)}</tr>")
        body = "".join(lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tiles_html(report: WeeklyReport, lang: str) -> str:
    tiles = []
    for key in SUMMARY_KEYS:
        current, previous = report.totals.get(key), report.previous_totals.get(key)
        delta, tone = change_parts(key, current, previous, lang)
        tiles.append(
            '<div class="tile">'
            f'<div class="label">{_e(t(key, lang))}</div>'
            f'<div class="value">{_e(format_value(key, plain_number(current), lang))}</div>'
            f'<div class="delta {tone}">{_e(delta)}</div>'
            f'<div class="prev">{_e(t("last_week", lang))} {_e(format_value(key, plain_number(previous), lang))}</div>'
            "</div>"
        )
    return f'<div class="tiles">{"".join(tiles)}</div><p class="legend">{_e(t("tone_legend", lang))}</p>'


def _red_black_html(report: WeeklyReport, lang: str) -> str:
    columns = [
        Column("rank", "count", _field("rank")),
        Column("department", "text", _field("name")),
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
        Column("on_time_closure_rate", "rate", _field("on_time_closure_rate")),
    ]
    boxes = []
    for kind, frame in (("red", report.red), ("black", report.black)):
        boxes.append(f'<div class="list {kind}"><h3>{_e(t(f"{kind}_list", lang))}</h3>{_table_html(columns, _records(frame), lang)}</div>')
    return "".join(boxes)


def _rows_note(shown: int, total, lang: str) -> str:
    total = plain_number(total)
    if total is None or total <= shown:
        return ""
    return f'<p class="note">{_e(tf("rows_shown", lang, shown=shown, total=total))}</p>'


def weekly_html(report: WeeklyReport, lang: str = "zh", daily: pd.DataFrame | None = None, generated_at: datetime | None = None,
                min_due: int | None = None) -> str:
    """The printable HTML of the weekly report (what ``weekly_pdf`` renders); every text escaped.

    ``daily`` (``report.daily`` when not given) adds the chart of reported and closed per day;
    ``min_due`` (``DomainConfig.min_due``) adds the red/black list rule under the lists.
    """
    tz = report.week.start.tzinfo
    title = report_title(report, lang)
    footer = f"{title} {week_label(report.week)}"
    if generated_at is not None:
        footer += " · " + tf("generated_at", lang, time=_local(generated_at, tz).strftime("%Y-%m-%d %H:%M"))
    css = _CSS % {
        "font": FONT_FAMILY, "footer_left": _css_string(footer), "page_of": _page_of_css(lang),
        "good": TONE_COLOURS["good"], "bad": TONE_COLOURS["bad"], "neutral": TONE_COLOURS["neutral"],
        "red": RED_COLOUR, "black": BLACK_COLOUR, "lists_mm": RED_BLACK_WIDTH_MM,
    }
    marks = _list_marks(report)
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="period">{_e(period_text(report, lang))}</p>',
        f'<section class="keep"><h2>{_e(t("section_totals", lang))}</h2>{_tiles_html(report, lang)}</section>',
    ]
    daily = report.daily if daily is None else daily
    if daily is not None:
        image = _data_uri(daily_chart_svg(daily, lang))
        parts.append(f'<section class="chart keep"><h2>{_e(t("section_daily", lang))}</h2>'
                     f'<img src="{image}" style="width: {CHART_WIDTH_MM}mm; height: {DAILY_CHART_HEIGHT_MM}mm" alt=""></section>')

    rule = f'<p class="note">{_e(tf("red_black_rule", lang, min_due=min_due))}</p>' if min_due is not None else ""
    scored = int(report.departments["score"].notna().sum()) if not report.departments.empty else 0
    chart = f'<p class="empty">{_e(t("no_data", lang))}</p>'
    if scored:
        height = scores_chart_height_mm(scored)
        image = _data_uri(scores_chart_svg(report, lang, height_mm=height))
        chart = f'<img src="{image}" style="width: {SCORES_CHART_WIDTH_MM}mm; height: {height:.1f}mm" alt="">'
    parts.append(f'<section class="new-page red-black"><div><h2>{_e(t("section_red_black", lang))}</h2>{_red_black_html(report, lang)}{rule}</div>'
                 f'<div class="chart"><h2>{_e(t("section_scores", lang))}</h2>{chart}</div></section>')

    def list_tag(row) -> str:
        mark = marks.get(row.get("dept"))
        return f'<span class="tag {mark}">{_e(t(f"{mark}_list", lang))}</span>' if mark else ""

    tag = {"list_mark": list_tag}
    parts.append(f'<section class="new-page"><h2>{_e(t("section_departments", lang))}</h2>'
                 f'{_table_html(department_columns(report, lang), _records(report.departments), lang, row_class=lambda row: marks.get(row.get("dept"), ""), cell_html=tag)}'
                 "</section>")

    def change_cell(row) -> str:
        text, tone = change_parts("reported", row.get("reported"), row.get("previous"), lang)  # volumes are not judged
        return f'<span class="{tone}">{_e(text)}</span>'

    parts.append(
        '<section class="new-page"><div class="pair">'
        f'<div><h2>{_e(t("section_categories", lang))}</h2>{_table_html(category_columns(lang), _records(report.categories), lang, cell_html={"change_vs_last_week": change_cell})}</div>'
        f'<div><h2>{_e(t("section_hot_grids", lang))}</h2>{_table_html(hot_grid_columns(lang), _records(report.hot_grids), lang)}</div>'
        "</div></section>"
    )
    overdue = _records(report.overdue_cases)[:PDF_CASE_ROWS]
    reworked = _records(report.reworked_cases)[:PDF_CASE_ROWS]
    parts.append(f'<section class="new-page"><h2>{_e(t("section_overdue", lang))}</h2>'
                 f'{_table_html(overdue_columns(lang), overdue, lang)}{_rows_note(len(overdue), report.totals.get("overdue"), lang)}</section>')
    parts.append(f'<section class="keep"><h2>{_e(t("section_reworked", lang))}</h2>'
                 f'{_table_html(reworked_columns(lang), reworked, lang)}{_rows_note(len(reworked), report.totals.get("reworked"), lang)}</section>')
    workers = _records(report.workers)[:PDF_WORKER_ROWS]
    parts.append(f'<section class="new-page"><h2>{_e(t("section_workers", lang))}</h2>{_table_html(worker_columns(lang), workers, lang)}</section>')

    html_lang = "en" if lang == "en" else "zh-CN"
    document_title = _e(f"{title} {week_label(report.week)}")
    return (f'<!DOCTYPE html><html lang="{html_lang}"><head><meta charset="utf-8"><title>{document_title}</title>'
            f"<style>{css}</style></head><body>{''.join(parts)}</body></html>")


def _offline_fetcher():
    """A URL fetcher for ``data:`` URIs only: a report never reaches for the network."""
    from weasyprint import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def weekly_pdf(report: WeeklyReport, lang: str = "zh", daily: pd.DataFrame | None = None, generated_at: datetime | None = None,
               min_due: int | None = None) -> bytes:
    """The weekly report as an A4 landscape PDF with the CJK font embedded.

    ``daily``: per-day counts (``report.daily`` when not given). ``generated_at``: the time printed in the footer (the
    caller's clock; none is read here).
    """
    from weasyprint import HTML

    document = HTML(string=weekly_html(report, lang, daily, generated_at, min_due), base_url=None, url_fetcher=_offline_fetcher())
    return document.write_pdf()
