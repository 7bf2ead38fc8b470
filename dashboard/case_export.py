"""The review's case list as a file, CSV or XLSX: the cases of the selection (area, window,
filters) within the caller's scope, the newest ``gridrules.bounds.MAX_EXPORT_CASES`` of them, personal data
masked as the screen masks it for the caller's role. The caller writes the audit entry."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from dashboard import cached_reads
from dashboard.cases import present_case
from dashboard.context import AppContext
from dashboard.export_cells import csv_text, put_cell
from dashboard.i18n import LABELS, t, tf
from dashboard.weekly_xlsx import HEADER_ROW, display_width, fit_widths, write_header
from data_feeds import queries
from data_feeds.queries import CaseFilter
from data_feeds.reference import GridInfo
from gridrules.access import Principal
from gridrules.indicators import Window

# (field of the exported row, header label key)
COLUMNS = (
    ("id", "case_id"), ("reported_at", "reported_time"), ("source", "source"), ("category", "category"), ("grid_name", "grid"),
    ("grid", "grid_code"), ("dept", "department"), ("grade", "grade"), ("status", "status"), ("stage", "stage"),
    ("stage_deadline", "stage_deadline"), ("overdue_now", "overdue_now"), ("closed_at", "closed_time"), ("rework_count", "rework_count"),
    ("satisfaction", "evaluation"), ("description", "description"), ("reporter", "reporter"), ("contact", "contact"),
)


@dataclass(frozen=True)
class CaseExport:
    """What an export holds: its title line, the rows (in COLUMNS order), whether the selection
    had more than MAX_EXPORT_CASES and whether personal data is masked."""

    title: str
    header: list[str]
    rows: list[list]
    truncated: bool
    masked: bool
    limit: int  # the most cases one export holds

    def note(self, lang: str) -> str:
        return tf("export_truncated", lang, limit=f"{self.limit:,}") if self.truncated else ""


def _local(value: object, tz: tzinfo) -> str | None:
    """A stored (naive UTC) time as local ``YYYY-MM-DD HH:MM``."""
    if not isinstance(value, datetime):
        return None
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _label(prefix: str, code: object, lang: str) -> str | None:
    """A code (status, stage, source, satisfaction) in words when there is a label for it."""
    if code is None or code == "":
        return None
    key = f"{prefix}_{code}"
    return t(key, lang) if key in LABELS else str(code)


def build(ctx: AppContext, principal: Principal, area: GridInfo, window: Window, filters: CaseFilter, lang: str, now: datetime,
          period: str) -> CaseExport:
    """The export of the cases reported in ``window`` under ``area`` for the caller; ``period``
    (the review's period line) goes into the title line."""
    tz = ctx.settings.tz
    names = cached_reads.names(ctx, lang)
    cases, truncated = queries.export_cases(ctx.reader, area.path, window, filters, principal.scope)
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    rows = []
    for row in cases:
        shown = present_case(row, principal)
        deadline = row.get("stage_deadline")
        overdue = bool(row.get("is_open")) and isinstance(deadline, datetime) and deadline < now_naive
        category = row.get("category_name_en") if lang == "en" and row.get("category_name_en") else row.get("category_name")
        values = {
            "id": row["id"], "reported_at": _local(row.get("reported_at"), tz), "source": _label("source", row.get("source"), lang),
            "category": category, "grid_name": row.get("grid_name"), "grid": row.get("grid"),
            "dept": names["departments"].get(row.get("dept"), row.get("dept")), "grade": row.get("grade"),
            "status": _label("status", row.get("status"), lang), "stage": _label("stage", row.get("stage"), lang) if row.get("is_open") else None,
            "stage_deadline": _local(deadline, tz) if row.get("is_open") else None, "overdue_now": t("yes" if overdue else "no", lang),
            "closed_at": _local(row.get("closed_at"), tz), "rework_count": row.get("rework_count"),
            "satisfaction": _label("satisfaction", row.get("satisfaction"), lang),
            "description": shown.get("description"), "reporter": shown.get("reporter"), "contact": shown.get("contact"),
        }
        rows.append([values[field] for field, _ in COLUMNS])
    masked = not principal.scope.personal_data
    title = f"{area.name} · {t('case_list', lang)} · {period}" + (f" · {t('personal_data_masked', lang)}" if masked else "")
    return CaseExport(title, [t(label, lang) for _, label in COLUMNS], rows, truncated, masked, queries.MAX_EXPORT_CASES)


def as_csv(export: CaseExport, lang: str) -> str:
    """UTF-8 with a byte-order mark (spreadsheet programs then read the Chinese); the title and,
    when cut, the note first; nothing in it runs as a formula."""
    lines = [[export.title]] + ([[export.note(lang)]] if export.truncated else []) + [export.header] + export.rows
    return csv_text(lines)


def as_xlsx(export: CaseExport, lang: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = t("case_list", lang)
    book.properties.creator = "GridOps"
    put_cell(sheet, 1, 1, export.title).font = Font(bold=True, size=13)
    if export.truncated:
        put_cell(sheet, 2, 1, export.note(lang)).font = Font(bold=True, color="C62828")
    write_header(sheet, export.header)
    widths = [display_width(label) for label in export.header]
    for offset, row in enumerate(export.rows, start=1):
        for column, value in enumerate(row, start=1):
            put_cell(sheet, HEADER_ROW + offset, column, value)
            widths[column - 1] = max(widths[column - 1], display_width(str(value)) if value is not None else 0)
    fit_widths(sheet, widths)
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=2).coordinate
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{sheet.cell(row=HEADER_ROW + max(len(export.rows), 1), column=len(export.header)).coordinate}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
