"""Daily counts of what every case has done, and the indicators of a window from them.

The row-level indicators (``gridrules.indicators``) read every case a window touches: their
cost grows with the archive. A rollup holds, per local day and key (grid, category,
department, source, grade, dispatched or not), how many cases did each thing that day.
Each case *contributes* to a few of those counts; when a case changes, its old
contribution is taken off and its new one added (``contributions`` of the case before and
after), so the counts are always those of the cases as they are now — exactly what the
row-level path computes — and rebuilding them from the cases gives the same numbers.

A window from local midnight to local midnight (every window of the screens) is read as:

* events in ``[start, end)`` (reported, registered, …, closed, evaluated): the days' counts;
* due counts (应结案, 应处置 and what depends on them), whose moment is a deadline that may lie
  ahead: the days' counts up to ``settled`` (the local midnight at or before the window's
  ``asof``), and row-level for ``[settled, asof)`` — today so far;
* counts that depend on the window's end (a report is valid if registered *before the end*,
  a due case counts as closed if closed *before the end*, a rework counts once whether first
  or latest return fell in the window): the days' counts of the unconditional version, less
  (or plus) the cases for which something happened at or after the end. Such cases changed
  at or after ``settled``, so they are among the *recent* cases read row-level: open now, or
  updated at or after ``settled``. For a window reaching now there are none.
* states at asof (in progress, overdue, pending): from the same recent cases.

So a window costs a sum over its days' (or whole months') counts plus the cases open or
changed since the start of its last day, whatever its length. Windows that do not start and
end at local midnight are computed row-level.

The time to close is kept as Σ seconds and a histogram (``indicators.HISTOGRAM``), from
which both paths read the mean (exact) and the 90th percentile (to the histogram's 25 %).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import numpy as np
import pandas as pd

from gridrules import indicators
from gridrules.indicators import CLOSE_SECONDS, HISTOGRAM, SATISFIED, Window, close_buckets

KEY_COLUMNS = ("grid", "category", "dept", "source", "grade", "is_dispatched")
DIMENSIONS = KEY_COLUMNS[1:]
# The counts are kept per grouping: every dimension ("full"), and a few with most of them
# summed away (blank), so that the common questions read a handful of rows — the totals of
# an area (tiles, API without filters), per department (with ``is_dispatched`` for a
# department's scope), per category, per source. Any other question reads "full".
GROUPINGS = {
    "all": (),
    "dept": ("dept", "is_dispatched"),
    "category": ("category",),
    "source": ("source",),
    "full": DIMENSIONS,
}


# The deepest area (1 = the district, 2 = a town…) each grouping is kept for: finer areas
# have too few cases a day for a fine grouping to sum anything (it would hold a row per
# case), and a question about them that needs one reads their cases instead.
GROUPING_DEPTH = {"all": 99, "dept": 3, "source": 3, "category": 2, "full": 2}


def grouping_for(needed: set[str]) -> str:
    """The smallest grouping that holds every dimension in ``needed``."""
    for name, dimensions in GROUPINGS.items():
        if needed <= set(dimensions):
            return name
    raise ValueError(f"no grouping holds {sorted(needed)}")
EVENT_COUNTERS = (
    "reported", "registered", "invalid", "dispatched", "handled", "closed", "evaluated", "satisfied",
    "timely_registered", "returned", "valid_eventually",
)
DUE_COUNTERS = ("due_to_close", "closed_on_time", "due_reworked", "due_to_handle", "handled_on_time")
COUNTERS = (*EVENT_COUNTERS, *DUE_COUNTERS, *HISTOGRAM)
VALUE_COLUMNS = (*COUNTERS, CLOSE_SECONDS)


# ---------------------------------------------------------------- contributions


def local_days(moments: pd.Series, tz: tzinfo) -> pd.Series:
    """The local calendar day (midnight, naive) of naive-UTC moments; NaT stays NaT."""
    moments = pd.Series(moments, dtype="datetime64[us]")
    return moments.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def _due_moment(done_at: pd.Series, deadline: pd.Series) -> pd.Series:
    on_time = done_at.notna() & (done_at <= deadline)
    return done_at.where(on_time, deadline)


def contributions(cases: pd.DataFrame, tz: tzinfo) -> pd.DataFrame:
    """What ``cases`` (a frame of cases-table rows, times naive UTC) add to the rollups: one
    row per local ``day`` and key (KEY_COLUMNS) with VALUE_COLUMNS, zero rows left out.

    ``dept`` is "" for no department; ``is_dispatched`` whether the case has been dispatched
    (a department's scope sees only those)."""
    if cases.empty:
        return pd.DataFrame(columns=["day", *KEY_COLUMNS, *VALUE_COLUMNS])
    c = cases
    keys = pd.DataFrame({
        "grid": c["grid"].astype(object), "category": c["category"].astype(object),
        "dept": c["dept"].astype(object).where(c["dept"].notna(), ""), "source": c["source"].astype(object),
        "grade": c["grade"].astype(object), "is_dispatched": c["dispatched_at"].notna(),
    }, index=c.index)
    due_close = _due_moment(c["closed_at"], c["deadline"]).where(c["deadline"].notna())
    due_handle = _due_moment(c["handled_at"], c["deadline"]).where(c["deadline"].notna())
    always = pd.Series(True, index=c.index)
    # counter → (the moment that decides its day, whether the case counts)
    parts = {
        "reported": (c["reported_at"], always),
        "registered": (c["registered_at"], always),
        "invalid": (c["invalid_at"], always),
        "dispatched": (c["dispatched_at"], always),
        "handled": (c["handled_at"], always),
        "closed": (c["closed_at"], always),
        "evaluated": (c["evaluated_at"], always),
        "satisfied": (c["evaluated_at"], c["satisfaction"].isin(SATISFIED)),
        "timely_registered": (c["registered_at"], c["registered_at"] <= c["register_deadline"]),
        "returned": (c["returned_at"], always),
        "valid_eventually": (c["reported_at"], c["registered_at"].notna()),
        "due_to_close": (due_close, always),
        "closed_on_time": (due_close, c["closed_at"] <= c["deadline"]),
        "due_reworked": (due_close, c["rework_count"] > 0),
        "due_to_handle": (due_handle, always),
        "handled_on_time": (due_handle, c["handled_at"] <= c["deadline"]),
    }
    frames = []
    for name, (moment, counts) in parts.items():
        mask = (moment.notna() & counts.fillna(False).astype(bool)).to_numpy()
        if mask.any():
            frames.append(keys[mask].assign(day=local_days(moment[mask], tz).to_numpy(), counter=name, value=1.0))
    closed = c["closed_at"].notna().to_numpy()
    if closed.any():
        seconds = (c["closed_at"][closed] - c["reported_at"][closed]).dt.total_seconds()
        days = local_days(c["closed_at"][closed], tz).to_numpy()
        frames.append(keys[closed].assign(day=days, counter=CLOSE_SECONDS, value=seconds.to_numpy()))
        buckets = np.array(HISTOGRAM, dtype=object)[close_buckets(seconds)]
        frames.append(keys[closed].assign(day=days, counter=buckets, value=1.0))
    if not frames:
        return pd.DataFrame(columns=["day", *KEY_COLUMNS, *VALUE_COLUMNS])
    long = pd.concat(frames, ignore_index=True)
    wide = long.pivot_table(index=["day", *KEY_COLUMNS], columns="counter", values="value", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=list(VALUE_COLUMNS), fill_value=0)
    for name in COUNTERS:
        wide[name] = wide[name].astype("int64")
    wide[CLOSE_SECONDS] = wide[CLOSE_SECONDS].astype(float)
    result = wide.reset_index()
    result["day"] = pd.to_datetime(result["day"]).dt.date
    return result


# ---------------------------------------------------------------- windows


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def is_midnight(moment: datetime, tz: tzinfo) -> bool:
    local = moment.astimezone(tz)
    return local.time() == time(0) and local_midnight(local.date(), tz) == moment


@dataclass(frozen=True)
class DayPlan:
    """How a midnight-to-midnight window is read: event counts over days ``[first, end)``,
    due counts over ``[first, due_end)``, and the recent cases (open, or updated at or after
    ``settled``) row-level."""

    first: date
    end: date
    due_end: date
    settled: datetime


def day_plan(window: Window, tz: tzinfo) -> DayPlan | None:
    """The plan of a window that starts and ends at local midnight; None for any other."""
    if not (is_midnight(window.start, tz) and is_midnight(window.end, tz)):
        return None
    first, end = window.start.astimezone(tz).date(), window.end.astimezone(tz).date()
    asof_day = window.asof.astimezone(tz).date()
    settled = local_midnight(asof_day, tz)
    due_end = min(max(asof_day, first), end)
    return DayPlan(first, end, due_end, settled)


def periods(first: date, end: date) -> tuple[list[tuple[date, date]], list[tuple[date, date]]]:
    """Days ``[first, end)`` as (day ranges, month ranges): the whole calendar months inside
    read from monthly counts, the days around them from daily ones. Ranges are ``[a, b)``."""
    if end <= first:
        return [], []
    month = first if first.day == 1 else _next_month(first)
    months_end = month
    while _next_month(months_end) <= end:
        months_end = _next_month(months_end)
    if months_end == month:
        return [(first, end)], []
    days = [r for r in ((first, month), (months_end, end)) if r[0] < r[1]]
    return days, [(month, months_end)]


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_of(day: date) -> date:
    return day.replace(day=1)


# ---------------------------------------------------------------- a window's counts


def _frame_sums(frame: pd.DataFrame, names: list[str], key: str | None) -> pd.DataFrame:
    """Column sums of ``frame`` per ``key`` (one row "" without a key)."""
    if key is None:
        return pd.DataFrame([frame[list(names)].sum()], index=pd.Index([""], name="key"))
    sums = frame.groupby(key, dropna=True)[list(names)].sum()
    sums.index.name = "key"
    return sums


def window_counts(events: pd.DataFrame, due: pd.DataFrame, recent: pd.DataFrame, window: Window, plan: DayPlan, key: str | None = None) -> pd.DataFrame:
    """The COUNT_KEYS of ``indicators`` and the close-time sums of a window, per ``key`` value
    (index "key"; one row "" without a key), from:

    ``events``: EVENT_COUNTERS, CLOSE_SECONDS and HISTOGRAM summed over the plan's days, per key;
    ``due``: DUE_COUNTERS summed over ``[first, due_end)``, per key;
    ``recent``: the cases (rows of the cases table) open now or updated at or after ``plan.settled``.
    """
    start, end, _ = window.naive()
    c = recent if not recent.empty else indicators.empty_cases()
    if key is not None and key not in c.columns:
        c = c.assign(**{key: pd.Series(dtype=object)})
    flag = indicators.FLAG_FUNCTIONS
    late = pd.DataFrame(index=c.index)
    # Reports of the window registered only at or after its end are not valid ones.
    late["registered_late"] = indicators.reported(c, window) & (c["registered_at"] >= end)
    # A case first returned in the window and again only after it counts once, by its first return.
    late["first_return_only"] = indicators._in(c["first_returned_at"], start, end) & (c["returned_at"] >= end)
    # Due cases of the settled days that were not closed before the window's end.
    settled_window = Window(window.start, window.end, max(window.start, min(window.asof, plan.settled)))
    late["due_not_closed"] = indicators.due_to_close(c, settled_window) & ~(c["closed_at"] < end)
    row_level = pd.DataFrame({name: flag[name](c, window) for name in ("in_progress", "overdue", "pending", "overdue_pending")}, index=c.index)
    # Today so far: due counts of [settled, asof), row-level.
    edge_start = max(window.start, plan.settled)
    edge = Window(edge_start, window.end, window.asof)
    for name in (*DUE_COUNTERS, "due_closed"):
        row_level[f"edge_{name}"] = flag[name](c, edge) if edge_start < window.asof else False
    row_level = pd.concat([row_level, late], axis=1).fillna(False).astype("int64")
    if key is not None:
        row_level[key] = c[key].where(c[key].notna(), "") if key == "dept" else c[key]
    recent_sums = _frame_sums(row_level, [n for n in row_level.columns if n != key], key)
    event_sums = events.set_index("key") if "key" in events.columns else events
    due_sums = due.set_index("key") if "key" in due.columns else due
    index = event_sums.index.union(due_sums.index).union(recent_sums.index)
    e = event_sums.reindex(index, fill_value=0)
    d = due_sums.reindex(index, fill_value=0)
    r = recent_sums.reindex(index, fill_value=0)
    out = pd.DataFrame(index=index)
    for name in ("reported", "registered", "invalid", "dispatched", "handled", "closed", "evaluated", "satisfied", "timely_registered"):
        out[name] = e[name]
    out["reworked"] = e["returned"] + r["first_return_only"]
    out["valid_reported"] = e["valid_eventually"] - r["registered_late"]
    for name in ("in_progress", "overdue", "pending", "overdue_pending"):
        out[name] = r[name]
    for name in DUE_COUNTERS:
        out[name] = d[name] + r[f"edge_{name}"]
    out["due_closed"] = d["due_to_close"] - r["due_not_closed"] + r["edge_due_closed"]
    out = out.reindex(columns=list(indicators.COUNT_KEYS)).astype("int64")
    out[CLOSE_SECONDS] = e[CLOSE_SECONDS].astype(float)
    for name in HISTOGRAM:
        out[name] = e[name].astype("int64")
    out.index.name = "key"
    return out


def add_days(day: date, count: int) -> date:
    return day + timedelta(days=count)
