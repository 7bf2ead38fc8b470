"""The assessment report (周例会 / 月度、季度考核): a week, month or quarter against the one
before, rankings, the red/black list and the trend of the main rates over twelve periods.

One data structure feeds the screen, the PDF and the spreadsheet, so all three show the same
numbers; every number comes from ``gridrules.indicators`` through ``dashboard.area_reports``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

import pandas as pd
from sqlalchemy.engine import Engine

from dashboard import area_reports
from data_feeds import queries
from data_feeds.queries import CaseFilter
from data_feeds.reference import GridInfo
from gridrules import indicators
from gridrules.access import Scope
from gridrules.config import DomainConfig
from gridrules.indicators import Window
from gridrules.timewindows import local_midnight, period_before, period_start, period_window, recent_periods

SUMMARY_KEYS = (
    "reported", "registered", "invalid", "dispatched", "closed", "due_to_close", "closed_on_time", "reworked", "overdue",
    "closure_rate", "on_time_closure_rate", "on_time_handling_rate", "rework_rate", "timely_registration_rate",
    "satisfaction_rate", "mean_close_hours", "patrol_hours", "patrol_km",
)
TOP_CATEGORIES = 10
HOT_GRIDS = 10
CASE_ROWS = 30
WORKER_ROWS = 20
TREND_PERIODS = 12
TREND_KEYS = ("reported", "closure_rate", "on_time_closure_rate", "satisfaction_rate")
BUCKET_DAYS = {"week": 1, "month": 1, "quarter": 7}  # the per-day chart counts a quarter by week


@dataclass
class WeeklyReport:
    """Everything the assessment screen shows, for one area and one period: a Monday-to-Sunday
    week, a calendar month or a quarter (``kind``)."""

    area: GridInfo
    kind: str  # week, month or quarter
    window: Window
    previous: Window
    totals: dict
    previous_totals: dict
    departments: pd.DataFrame  # dept, name, due_to_close, closure_rate, on_time_closure_rate, rework_rate, satisfaction_rate, overdue, score, grade, rank
    red: pd.DataFrame
    black: pd.DataFrame
    categories: pd.DataFrame  # code, name, reported, previous, change
    hot_grids: pd.DataFrame  # grid, name, reported, in_progress, overdue
    overdue_cases: pd.DataFrame  # id, category, grid, dept, deadline, late_hours
    reworked_cases: pd.DataFrame  # id, category, grid, dept, rework_count, status
    workers: pd.DataFrame  # worker, name, grid, reported, valid_reported, valid_report_rate, timely_registration_rate, patrol_hours, patrol_attainment, score, grade, rank
    names: dict = field(default_factory=dict)  # code → name for categories, departments and grids
    daily: pd.DataFrame | None = None  # reported and closed per day (per 7 days in a quarter), this period and the one before
    trend: pd.DataFrame | None = None  # start, reported and the main rates of the twelve periods up to this one
    working_days: int = 0  # working days (holiday calendar) the period has touched: what the norms count against


def change(current: float | None, previous: float | None) -> float | None:
    """current − previous, or None when either is missing."""
    if current is None or previous is None:
        return None
    return current - previous


def build(engine: Engine, config: DomainConfig, area: GridInfo, kind: str, first: date, scope: Scope, now: datetime,
          names: dict, filters: CaseFilter = CaseFilter()) -> WeeklyReport:  # noqa: B008 - CaseFilter is frozen
    """The report of the ``kind`` period containing ``first`` (local time) for ``area`` within ``scope``."""
    tz = config.calendar.tz
    first = period_start(kind, first)
    window = period_window(kind, first, tz, now)
    before = period_before(kind, window, now)
    totals = area_reports.area_indicators(engine, config, area, window, filters, scope).values
    previous_totals = area_reports.area_indicators(engine, config, area, before, filters, scope).values
    cases = queries.load_cases(engine, area.path, window, filters, scope)
    flags = indicators.case_flags(cases, window)
    previous_cases = queries.load_cases(engine, area.path, before, filters, scope)
    departments = _departments(area_reports.department_table(engine, config, area, window, filters, scope, cases, flags), names)
    red, black = red_black(departments, config)
    return WeeklyReport(
        area=area, kind=kind, window=window, previous=before, totals=totals, previous_totals=previous_totals,
        departments=departments, red=red, black=black,
        categories=_categories(cases, flags, previous_cases, indicators.case_flags(previous_cases, before), names),
        hot_grids=_hot_grids(cases, flags, names),
        overdue_cases=_overdue_cases(cases, flags, window, names),
        reworked_cases=_reworked_cases(cases, flags, names),
        workers=_workers(engine, config, area, window, scope, cases, flags, names),
        names=names,
        daily=daily_counts(kind, window, before, cases, previous_cases, tz),
        trend=trend(engine, area, kind, first, scope, now, tz, filters),
        working_days=area_reports.working_days_in(window, config),
    )


def trend(engine: Engine, area: GridInfo, kind: str, first: date, scope: Scope, now: datetime, tz: tzinfo,
          filters: CaseFilter = CaseFilter()) -> pd.DataFrame:  # noqa: B008 - CaseFilter is frozen
    """Reported and the main rates (``TREND_KEYS``) of the ``TREND_PERIODS`` periods ending with
    the one starting ``first``, oldest first, one row each: ``start`` (the period's first day),
    ``running`` and the values. The cases are read once for the whole span: a case that matters
    for a period matters for the span (``queries.load_cases``), and each period's flags only count
    cases reported before its end."""
    starts = recent_periods(kind, first, TREND_PERIODS)
    span = Window.until_now(local_midnight(starts[0], tz), period_window(kind, first, tz, now).end, now)
    cases = queries.load_cases(engine, area.path, span, filters, scope)
    rows = []
    for start in starts:
        window = period_window(kind, start, tz, now)
        if window.start >= now:
            continue
        _, end, _ = window.naive()
        own = cases[(cases["reported_at"] < end).to_numpy()] if not cases.empty else cases
        values = indicators.summarise(indicators.case_flags(own, window))
        rows.append({"start": start, "running": window.asof < window.end, **{key: values.get(key) for key in TREND_KEYS}})
    return pd.DataFrame(rows, columns=["start", "running", *TREND_KEYS])


def daily_counts(kind: str, window: Window, previous: Window, cases: pd.DataFrame, previous_cases: pd.DataFrame, tz: tzinfo) -> pd.DataFrame:
    """Reported and closed per local day (per seven days from the first in a quarter), this
    period and the one before, counted with ``indicators.reported`` and ``indicators.closed`` over
    each bucket's window so the buckets add up to the period's totals. One row per bucket in
    order: ``position`` (1…), ``date`` (its first day), ``weekday`` (1–7), ``reported``, ``closed``,
    ``previous_date``, ``previous_reported``, ``previous_closed``; missing (NA) for buckets that
    have not begun or that the shorter period lacks (the 31st against a 30-day month)."""
    step = BUCKET_DAYS[kind]
    this_period = _per_bucket(cases, window.start, window.end, window.asof, tz, step)
    last_period = _per_bucket(previous_cases, previous.start, window.start, previous.asof, tz, step)  # its whole calendar span
    length = max(len(this_period), len(last_period))
    this_period += [(None, None, None)] * (length - len(this_period))
    last_period += [(None, None, None)] * (length - len(last_period))
    return pd.DataFrame({
        "position": range(1, length + 1),
        "date": [day for day, _, _ in this_period],
        "weekday": [day.isoweekday() if day else None for day, _, _ in this_period],
        "reported": pd.array([reported for _, reported, _ in this_period], dtype="Int64"),
        "closed": pd.array([closed for _, _, closed in this_period], dtype="Int64"),
        "previous_date": [day for day, _, _ in last_period],
        "previous_reported": pd.array([reported for _, reported, _ in last_period], dtype="Int64"),
        "previous_closed": pd.array([closed for _, _, closed in last_period], dtype="Int64"),
    })


def _per_bucket(cases: pd.DataFrame, start: datetime, end: datetime, asof: datetime, tz: tzinfo, step: int) -> list[tuple]:
    """(first day, reported, closed) per bucket of ``step`` days from ``start`` to ``end``, counted
    up to ``asof``: buckets that begin later have none."""
    if cases is None or cases.empty:
        cases = indicators.empty_cases()
    end = end.astimezone(tz)
    rows = []
    day = start.astimezone(tz).date()
    while local_midnight(day, tz) < end:
        begins = local_midnight(day, tz)
        bucket = Window.until_now(begins, min(local_midnight(day + timedelta(days=step), tz), end), asof)
        if begins >= asof:
            rows.append((day, None, None))
        else:
            rows.append((day, int(indicators.reported(cases, bucket).sum()), int(indicators.closed(cases, bucket).sum())))
        day += timedelta(days=step)
    return rows


DEPARTMENT_COLUMNS = ["dept", "name", "due_to_close", "closure_rate", "on_time_closure_rate", "rework_rate", "satisfaction_rate", "overdue",
                      *indicators.INTERVENTION_KEYS, "score", "grade", "rank"]


def _departments(table: pd.DataFrame, names: dict) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame(columns=DEPARTMENT_COLUMNS)
    table["name"] = table["dept"].map(lambda code: names.get("departments", {}).get(code, code))
    table = table.sort_values(["score", "due_to_close"], ascending=[False, False], na_position="last").reset_index(drop=True)
    table["rank"] = range(1, len(table) + 1)
    return table[DEPARTMENT_COLUMNS]


def red_black(departments: pd.DataFrame, config: DomainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """红黑榜: the best and worst by composite score among departments with enough cases due."""
    eligible = departments[(departments["due_to_close"] >= config.min_due) & departments["score"].notna()]
    red = eligible.head(config.red_count)
    black = eligible.drop(red.index).tail(config.black_count).iloc[::-1]
    return red.reset_index(drop=True), black.reset_index(drop=True)


def _major(code: str, parents: dict) -> str:
    while parents.get(code):
        code = parents[code]
    return code


def _categories(cases: pd.DataFrame, flags: pd.DataFrame, previous_cases: pd.DataFrame, previous_flags: pd.DataFrame, names: dict) -> pd.DataFrame:
    """Reported cases by major class, this period and the one before."""
    parents = names.get("category_parents", {})

    def by_major(frame: pd.DataFrame, frame_flags: pd.DataFrame) -> pd.Series:
        if frame.empty:
            return pd.Series(dtype=int)
        reported = frame.loc[frame_flags["reported"].to_numpy(), "category"]
        return reported.map(lambda code: _major(code, parents)).value_counts()

    now_counts, before_counts = by_major(cases, flags), by_major(previous_cases, previous_flags)
    codes = sorted(set(now_counts.index) | set(before_counts.index), key=lambda c: (-now_counts.get(c, 0), c))  # ties by code: the same order in every process
    rows = [{"code": c, "name": names.get("categories", {}).get(c, c), "reported": int(now_counts.get(c, 0)),
             "previous": int(before_counts.get(c, 0))} for c in codes]
    table = pd.DataFrame(rows, columns=["code", "name", "reported", "previous"])
    counts = table["name"].value_counts()
    table["name"] = [f"{name} ({code})" if counts.get(name, 0) > 1 else name for name, code in zip(table["name"], table["code"])]
    table["change"] = table["reported"] - table["previous"]
    return table.head(TOP_CATEGORIES)


def _hot_grids(cases: pd.DataFrame, flags: pd.DataFrame, names: dict) -> pd.DataFrame:
    table = indicators.summarise_by(cases, flags, "grid")
    if table.empty:
        return pd.DataFrame(columns=["grid", "name", "reported", "in_progress", "overdue"])
    table = table.sort_values(["reported", "overdue"], ascending=False).head(HOT_GRIDS)
    table["name"] = table["grid"].map(lambda code: names.get("grids", {}).get(code, code))
    return table[["grid", "name", "reported", "in_progress", "overdue"]].reset_index(drop=True)


def _case_names(frame: pd.DataFrame, names: dict) -> pd.DataFrame:
    frame = frame.copy()
    frame["category_name"] = frame["category"].map(lambda c: names.get("categories_all", {}).get(c, c))
    frame["grid_name"] = frame["grid"].map(lambda c: names.get("grids", {}).get(c, c))
    frame["dept_name"] = frame["dept"].map(lambda c: names.get("departments", {}).get(c, c or ""))
    return frame


def _overdue_cases(cases: pd.DataFrame, flags: pd.DataFrame, window: Window, names: dict) -> pd.DataFrame:
    """Cases overdue at the end of the period (or now, for one in progress), the latest first."""
    columns = ["id", "category_name", "grid_name", "dept_name", "grade", "stage", "late_hours"]
    if cases.empty:
        return pd.DataFrame(columns=columns)
    _, _, asof = window.naive()
    late = cases[flags["overdue"].to_numpy()].copy()
    deadlines = indicators.stage_deadline_at(cases, window)[flags["overdue"].to_numpy()]
    late["late_hours"] = ((asof - deadlines).dt.total_seconds() / 3600).round(1)
    late = _case_names(late.sort_values("late_hours", ascending=False).head(CASE_ROWS), names)
    return late[columns].reset_index(drop=True)


def _reworked_cases(cases: pd.DataFrame, flags: pd.DataFrame, names: dict) -> pd.DataFrame:
    columns = ["id", "category_name", "grid_name", "dept_name", "rework_count", "status"]
    if cases.empty:
        return pd.DataFrame(columns=columns)
    reworked = cases[flags["reworked"].to_numpy()].sort_values("rework_count", ascending=False).head(CASE_ROWS)
    return _case_names(reworked, names)[columns].reset_index(drop=True)


def _workers(engine: Engine, config: DomainConfig, area: GridInfo, window: Window, scope: Scope, cases: pd.DataFrame, flags: pd.DataFrame, names: dict) -> pd.DataFrame:
    """Grid workers by the worker score (patrol and valid reports against their norms,
    timeliness, validity), ranked by ``indicators.rank_workers``: the first WORKER_ROWS."""
    columns = ["worker", "name", "grid", "reported", "valid_reported", "valid_report_rate", "timely_registration_rate",
               "patrol_hours", "patrol_attainment", "report_attainment", "score", "grade", "rank"]
    staff = pd.DataFrame(queries.list_workers(engine, area.path, scope))
    if staff.empty:
        return pd.DataFrame(columns=columns)
    staff = staff[staff["role"] == "worker"]
    by_worker = indicators.summarise_by(cases, flags, "worker").set_index("worker") if not cases.empty else pd.DataFrame()
    first, last = queries.local_days(window, config.calendar.tz)
    patrol = queries.load_patrol(engine, area.path, first, last, scope)
    hours = (patrol.groupby("worker")["seconds"].sum() / 3600) if not patrol.empty else pd.Series(dtype=float)
    working_days = area_reports.working_days_in(window, config)
    expected_hours, expected_reports = config.expected_hours_per_day * working_days, config.expected_valid_reports_per_day * working_days
    rows = []
    for worker in staff.itertuples(index=False):
        own = by_worker.loc[worker.id] if worker.id in by_worker.index else None
        worked = float(hours.get(worker.id, 0.0))
        valid = int(own["valid_reported"]) if own is not None else 0
        rows.append({
            "worker": worker.id, "name": worker.name, "grid": names.get("grids", {}).get(worker.grid, worker.grid),
            "reported": int(own["reported"]) if own is not None else 0,
            "valid_reported": valid,
            "valid_report_rate": _number(own["valid_report_rate"]) if own is not None else None,
            "timely_registration_rate": _number(own["timely_registration_rate"]) if own is not None else None,
            "patrol_hours": round(worked, 1),
            "patrol_attainment": indicators.patrol_attainment(worked, expected_hours),
            "report_attainment": indicators.report_attainment(valid, expected_reports),
        })
    table = indicators.rank_workers(area_reports.scored(pd.DataFrame(rows), config, "worker"), config.min_ranked_patrol_hours)
    return table[columns].head(WORKER_ROWS)


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
