"""The weekly meeting report (周例会) as a spreadsheet: an .xlsx workbook built with openpyxl.

A pure builder: it takes a ``WeeklyReport`` and returns bytes. One sheet for the totals against
the week before, one per table of ``dashboard.weekly_columns``; numbers stay numbers (rates as
fractions with a percentage format), every cell is written by ``dashboard.export_cells``.
"""
from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from dashboard.export_cells import put_cell, xml_text
from dashboard.formatting import format_value, kind_of, plain_number
from dashboard.i18n import period_key, t
from dashboard.weekly_columns import (
    Column,
    category_columns,
    cell_text,
    department_columns,
    hot_grid_columns,
    list_marks,
    overdue_columns,
    period_text,
    records,
    report_title,
    reworked_columns,
    text_of,
    trend_columns,
    week_label,
    worker_columns,
)
from dashboard.weekly_report import SUMMARY_KEYS, WeeklyReport, change

if TYPE_CHECKING:  # imported where a workbook is built
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

HEADER_ROW = 3  # rows 1–2 hold the title and the period
MIN_WIDTH_CHARS = 6
MAX_WIDTH_CHARS = 48
LIST_FILLS = {"red": "FDE2E2", "black": "D9D9D9"}  # the rows of departments on the red and the black list

NUMBER_FORMATS = {
    "count": "#,##0",
    "rate": "0.0%",
    "hours": "#,##0.0",
    "score": "0.0",
}
CHANGE_FORMATS = {
    "count": "+#,##0;-#,##0;0",
    "rate": "+0.0%;-0.0%;0.0%",
    "hours": "+#,##0.0;-#,##0.0;0.0",
}


def render(report: WeeklyReport, lang: str = "zh") -> bytes:
    """The weekly report as an .xlsx workbook: summary, departments, categories, hot grids, cases, workers."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    book.properties.title = xml_text(f"{report_title(report, lang)} {week_label(report.window)}")
    book.properties.creator = "GridOps"

    _summary_sheet(book, report, lang)
    marks = list_marks(report)
    _table_sheet(book, "sheet_departments", report, lang, department_columns(report, lang), records(report.departments),
                 row_fill=lambda row: LIST_FILLS.get(marks.get(row.get("dept"))))
    _table_sheet(book, "sheet_categories", report, lang, category_columns(lang, report.kind), records(report.categories),
                 signed={period_key("change_vs_last_week", report.kind)})
    _table_sheet(book, "sheet_hot_grids", report, lang, hot_grid_columns(lang), records(report.hot_grids))
    _table_sheet(book, "sheet_overdue", report, lang, overdue_columns(lang), records(report.overdue_cases))
    _table_sheet(book, "sheet_reworked", report, lang, reworked_columns(lang), records(report.reworked_cases))
    _table_sheet(book, "sheet_workers", report, lang, worker_columns(lang), records(report.workers))
    _table_sheet(book, "sheet_trend", report, lang, trend_columns(lang, report.kind), records(report.trend))

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK characters count twice."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _cell_value(kind: str, value: object):
    if kind == "text":
        return text_of(value) or None
    return plain_number(value)


def _sheet_start(book: Workbook, sheet_key: str, report: WeeklyReport, lang: str) -> Worksheet:
    from openpyxl.styles import Font

    sheet = book.create_sheet(t(sheet_key, lang))
    put_cell(sheet, 1, 1, f"{report_title(report, lang)} · {t(sheet_key, lang)}").font = Font(bold=True, size=14)
    put_cell(sheet, 2, 1, period_text(report, lang))
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=1).coordinate
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    return sheet


def write_header(sheet: Worksheet, labels: list[str]) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    for index, label in enumerate(labels, start=1):
        cell = put_cell(sheet, HEADER_ROW, index, label)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E8EEF6")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(bottom=Side(style="thin", color="7F8FA6"))


def fit_widths(sheet: Worksheet, widths: list[int]) -> None:
    from openpyxl.utils import get_column_letter

    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(MIN_WIDTH_CHARS, min(MAX_WIDTH_CHARS, width + 2))


def _summary_sheet(book: Workbook, report: WeeklyReport, lang: str) -> None:
    sheet = _sheet_start(book, "sheet_summary", report, lang)
    labels = [t("indicator", lang)] + [t(period_key(key, report.kind), lang) for key in ("this_week", "last_week", "change_vs_last_week")]
    write_header(sheet, labels)
    widths = [display_width(label) for label in labels]
    for offset, key in enumerate(SUMMARY_KEYS, start=1):
        row = HEADER_ROW + offset
        kind = kind_of(key)
        current, previous = plain_number(report.totals.get(key)), plain_number(report.previous_totals.get(key))
        values = [t(key, lang), current, previous, change(current, previous)]
        formats = [None, NUMBER_FORMATS[kind], NUMBER_FORMATS[kind], CHANGE_FORMATS[kind]]
        for column, (value, number_format) in enumerate(zip(values, formats), start=1):
            cell = put_cell(sheet, row, column, value)
            if number_format:
                cell.number_format = number_format
        shown = [values[0]] + [format_value(key, value, lang) for value in values[1:]]
        widths = [max(width, display_width(text) + 1) for width, text in zip(widths, shown)]
    fit_widths(sheet, widths)


def _table_sheet(book: Workbook, sheet_key: str, report: WeeklyReport, lang: str, columns: list[Column], rows: list[dict],
                 row_fill: Callable[[dict], str | None] | None = None, signed: frozenset | set = frozenset()) -> None:
    from openpyxl.styles import PatternFill

    sheet = _sheet_start(book, sheet_key, report, lang)
    labels = [t(column.label, lang) for column in columns]
    write_header(sheet, labels)
    widths = [display_width(label) for label in labels]
    if not rows:
        put_cell(sheet, HEADER_ROW + 1, 1, t("no_data", lang))
    for offset, record in enumerate(rows, start=1):
        fill = row_fill(record) if row_fill else None
        for index, column in enumerate(columns, start=1):
            value = _cell_value(column.kind, column.value(record))
            cell = put_cell(sheet, HEADER_ROW + offset, index, value)
            if column.kind in NUMBER_FORMATS:
                cell.number_format = (CHANGE_FORMATS if column.label in signed else NUMBER_FORMATS)[column.kind]
            if fill:
                cell.fill = PatternFill("solid", fgColor=fill)
            widths[index - 1] = max(widths[index - 1], display_width(cell_text(column.kind, value)))
    fit_widths(sheet, widths)
