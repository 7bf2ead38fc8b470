"""What the weekly meeting report's exports show, shared by the spreadsheet and the PDF.

The heading lines (title, period, the week it is compared with) and every table's columns:
each column's header label, its kind of number (``count``, ``rate``, ``hours``, ``score``,
``text``) and how it reads a row of the report. Numbers are written by ``dashboard.formatting``,
so paper, spreadsheet and screen agree.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import pandas as pd

from dashboard.formatting import format_number, interventions_text, plain_number
from dashboard.i18n import LABELS, period_key, t, tf
from dashboard.weekly_report import WeeklyReport
from gridrules.indicators import INTERVENTION_KEYS, Window

# ---------------------------------------------------------------- cells


def text_of(value: object) -> str:
    """A text cell: empty for a missing value (None, NaN, NA), else the value as written."""
    return "" if plain_number(value) is None and not isinstance(value, str) else str(value)


def cell_text(kind: str, value: object) -> str:
    """A cell as the screen shows it: ``count``, ``rate`` (%), ``hours``, ``score`` (one decimal) or ``text``."""
    return text_of(value) if kind == "text" else format_number(kind, value)


def records(frame: pd.DataFrame | None) -> list[dict]:
    """A table of the report as rows (none for a missing or empty table)."""
    return [] if frame is None or frame.empty else frame.to_dict("records")


def list_marks(report: WeeklyReport) -> dict[str, str]:
    """dept code → ``red`` or ``black`` for the departments on the 红黑榜."""
    marks = dict.fromkeys(report.red.get("dept", []), "red")
    marks.update(dict.fromkeys(report.black.get("dept", []), "black"))
    return marks


def _code_label(prefix: str, value: object, lang: str) -> str:
    """A code (stage, status) in words when there is a label for it, else the code itself."""
    value = text_of(value)
    key = f"{prefix}_{value}"
    return t(key, lang) if key in LABELS else value


# ---------------------------------------------------------------- headings


def local_time(moment: datetime, tz: tzinfo | None) -> datetime:
    """``moment`` in the report's time zone (as it is when the window has none)."""
    return moment.astimezone(tz) if tz is not None else moment


def week_label(window: Window) -> str:
    """``YYYY-MM-DD – YYYY-MM-DD``: the window's first and last local day; a window that ends
    within a day (the part of last week a running week is compared with) ends at its hour:
    ``2026-11-16 – 2026-11-18 21:00``."""
    tz = window.start.tzinfo
    end = local_time(window.end, tz)
    last = (end - timedelta(days=1)).date().isoformat() if end.time() == time(0) else end.strftime("%Y-%m-%d %H:%M")
    return f"{local_time(window.start, tz).date().isoformat()} – {last}"


def period_name(kind: str, first: date, lang: str = "zh") -> str:
    """A period by its name: ``2026年第48周`` / ``2026 W48`` (ISO weeks), ``2026年11月`` /
    ``2026-11``, ``2026年第4季度`` / ``2026 Q4``."""
    if kind == "week":
        year, week, _ = first.isocalendar()
        return tf("week_label", lang, year=year, week=week)
    if kind == "month":
        return tf("month_label", lang, year=first.year, month=first.month)
    return tf("quarter_label", lang, year=first.year, quarter=(first.month - 1) // 3 + 1)


def as_of_text(window: Window, lang: str = "zh") -> str:
    """``截至 2026-12-03 10:00`` for a period still running, else empty."""
    if window.asof >= window.end:
        return ""
    return tf("as_of", lang, time=local_time(window.asof, window.start.tzinfo).strftime("%Y-%m-%d %H:%M"))


def period_text(report: WeeklyReport, lang: str = "zh") -> str:
    """The period, how far it has run when still in progress, and the period it is compared with."""
    text = f"{t(period_key('report_period', report.kind), lang)} {period_name(report.kind, report.window.start.date(), lang)} {week_label(report.window)}"
    notes = [as_of_text(report.window, lang), tf("working_days_text", lang, days=report.working_days)]
    text += f" ({', '.join(note for note in notes if note)})"
    return text + f" · {t(period_key('compared_with', report.kind), lang)} {week_label(report.previous)}"


def report_title(report: WeeklyReport, lang: str = "zh") -> str:
    return f"{report.area.name} · {t(period_key('weekly_report', report.kind), lang)}"


# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One column of an exported table: its header label key, kind of number and how to read a row."""

    label: str
    kind: str
    value: Callable[[dict], object]


def _field(name: str) -> Callable[[dict], object]:
    return lambda row: row.get(name)


def department_columns(report: WeeklyReport, lang: str) -> list[Column]:
    """The spreadsheet's department ranking: every intervention count a column of its own."""
    return _department_columns(report, lang, [Column(key, "count", _field(key)) for key in INTERVENTION_KEYS])


def department_page_columns(report: WeeklyReport, lang: str) -> list[Column]:
    """The printed page's: the interventions in words, one column (``formatting.interventions_text``)."""
    return _department_columns(report, lang, [Column("interventions", "text", lambda row: interventions_text(row, lang))])


def _department_columns(report: WeeklyReport, lang: str, interventions: list[Column]) -> list[Column]:
    marks = list_marks(report)
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
        *interventions,
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
        Column("list_mark", "text", lambda row: t(f"{marks[row['dept']]}_list", lang) if row.get("dept") in marks else ""),
    ]


def red_black_columns() -> list[Column]:
    """The red and the black list (the PDF's boxes on the red/black page)."""
    return [
        Column("rank", "count", _field("rank")),
        Column("department", "text", _field("name")),
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
        Column("on_time_closure_rate", "rate", _field("on_time_closure_rate")),
    ]


def category_columns(lang: str, kind: str = "week") -> list[Column]:
    return [
        Column("category_code", "text", _field("code")),
        Column("category", "text", _field("name")),
        Column(period_key("reported_this_week", kind), "count", _field("reported")),
        Column(period_key("reported_last_week", kind), "count", _field("previous")),
        Column(period_key("change_vs_last_week", kind), "count", _field("change")),
    ]


def trend_columns(lang: str, kind: str = "week") -> list[Column]:
    """The twelve periods' main rates, each period by its name and marked 截至 when running."""
    def name(row: dict) -> str:
        text = period_name(kind, row["start"], lang)
        return f"{text} ({t('running', lang)})" if row.get("running") else text

    return [
        Column("trend_period", "text", name),
        Column("reported", "count", _field("reported")),
        Column("closure_rate", "rate", _field("closure_rate")),
        Column("on_time_closure_rate", "rate", _field("on_time_closure_rate")),
        Column("satisfaction_rate", "rate", _field("satisfaction_rate")),
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
        Column("stage", "text", lambda row: _code_label("stage", row.get("stage"), lang)),
        Column("late_hours", "hours", _field("late_hours")),
    ]


def reworked_columns(lang: str) -> list[Column]:
    return [
        Column("case_id", "text", _field("id")),
        Column("category", "text", _field("category_name")),
        Column("grid", "text", _field("grid_name")),
        Column("department", "text", _field("dept_name")),
        Column("rework_count", "count", _field("rework_count")),
        Column("status", "text", lambda row: _code_label("status", row.get("status"), lang)),
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
        Column("report_attainment", "rate", _field("report_attainment")),
        Column("score", "score", _field("score")),
        Column("grade", "text", _field("grade")),
    ]
