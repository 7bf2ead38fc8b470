"""Every indicator of the command centre, defined once.

Names follow the Chinese digital city management practice (CJ/T 292, GB/T 30428 and the
published monthly bulletins): rates are over the cases *due* in the window, not all cases.

The functions are pure. They take a frame of cases (one row per case, the columns of the
``cases`` table, times as naive UTC) and a ``Window``, and return per-case flags; summing
flags gives the counts, and the rate functions turn counts into rates. The same flags
summed per department, grid or worker give the rankings, so the wall, the review, the
weekly report and ``/api/indicators`` cannot disagree about a number.

Window: counts of events (reported, registered, invalid, dispatched, handled, closed,
reworked) count cases whose transition happened in ``[start, end)``; states (in progress,
overdue) are read at ``asof`` = min(end, now).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

SATISFIED = ("satisfied", "basic")

# The stable keys of /api/indicators, in order.
API_KEYS = (
    "reported", "registered", "invalid", "dispatched", "handled", "closed", "in_progress", "overdue",
    "reworked", "due_to_close", "closed_on_time", "closure_rate", "on_time_closure_rate",
    "on_time_handling_rate", "rework_rate", "timely_registration_rate", "valid_report_rate",
    "satisfaction_rate", "mean_close_hours", "p90_close_hours", "patrol_hours", "patrol_km",
    "grids_patrolled", "workers_online",
)
RATE_KEYS = (
    "closure_rate", "on_time_closure_rate", "on_time_handling_rate", "rework_rate", "overdue_pending_rate",
    "timely_registration_rate", "valid_report_rate", "satisfaction_rate",
)

TIME_COLUMNS = (
    "reported_at", "updated_at", "registered_at", "invalid_at", "dispatched_at", "last_dispatched_at",
    "handled_at", "closed_at", "evaluated_at", "first_returned_at", "returned_at", "register_deadline",
    "dispatch_deadline", "deadline", "verify_deadline", "stage_started_at", "stage_deadline", "stage_due_soon_at",
)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` with states read at ``asof``; all aware datetimes."""

    start: datetime
    end: datetime
    asof: datetime

    @classmethod
    def until_now(cls, start: datetime, end: datetime, now: datetime) -> Window:
        if end <= start:
            raise ValueError("the window's end must be after its start")
        return cls(start, end, min(end, now))

    def naive(self) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
        """The bounds as naive UTC timestamps, comparable with the case columns."""
        return tuple(pd.Timestamp(t.astimezone(UTC).replace(tzinfo=None)) for t in (self.start, self.end, self.asof))


def empty_cases() -> pd.DataFrame:
    """A case frame with no rows and the right dtypes."""
    frame = pd.DataFrame({name: pd.Series(dtype="datetime64[us]") for name in TIME_COLUMNS})
    for name in ("id", "status", "grid", "category", "dept", "grade", "source", "worker", "satisfaction", "stage"):
        frame[name] = pd.Series(dtype="object")
    frame["rework_count"] = pd.Series(dtype="int64")
    frame["self_handled"] = pd.Series(dtype="bool")
    return frame


def _in(column: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (column >= start) & (column < end)


# ---------------------------------------------------------------- event counts


def reported(c: pd.DataFrame, w: Window) -> pd.Series:
    """上报数: cases reported in the window (start ≤ reported_at < end)."""
    start, end, _ = w.naive()
    return _in(c["reported_at"], start, end)


def registered(c: pd.DataFrame, w: Window) -> pd.Series:
    """立案数: cases registered in the window (on-the-spot cases register when closed)."""
    start, end, _ = w.naive()
    return _in(c["registered_at"], start, end)


def invalid(c: pd.DataFrame, w: Window) -> pd.Series:
    """作废数 (不予立案): cases rejected in the window."""
    start, end, _ = w.naive()
    return _in(c["invalid_at"], start, end)


def dispatched(c: pd.DataFrame, w: Window) -> pd.Series:
    """派遣数: cases first dispatched in the window (re-dispatch after rework is rework)."""
    start, end, _ = w.naive()
    return _in(c["dispatched_at"], start, end)


def handled(c: pd.DataFrame, w: Window) -> pd.Series:
    """处置数: cases whose latest feedback (handling done) fell in the window."""
    start, end, _ = w.naive()
    return _in(c["handled_at"], start, end)


def closed(c: pd.DataFrame, w: Window) -> pd.Series:
    """结案数 (event count): cases closed in the window."""
    start, end, _ = w.naive()
    return _in(c["closed_at"], start, end)


def reworked(c: pd.DataFrame, w: Window) -> pd.Series:
    """返工数: cases returned for rework in the window (first or latest return in it)."""
    start, end, _ = w.naive()
    return _in(c["first_returned_at"], start, end) | _in(c["returned_at"], start, end)


def evaluated(c: pd.DataFrame, w: Window) -> pd.Series:
    """评价数: cases evaluated in the window."""
    start, end, _ = w.naive()
    return _in(c["evaluated_at"], start, end)


def satisfied(c: pd.DataFrame, w: Window) -> pd.Series:
    """满意数: cases evaluated in the window as satisfied or basically satisfied."""
    return evaluated(c, w) & c["satisfaction"].isin(SATISFIED)


# ---------------------------------------------------------------- states at asof


def open_at(c: pd.DataFrame, w: Window) -> pd.Series:
    """Reported before asof and neither closed nor rejected before asof."""
    _, _, asof = w.naive()
    return (c["reported_at"] < asof) & ~(c["closed_at"] < asof) & ~(c["invalid_at"] < asof)


def in_progress(c: pd.DataFrame, w: Window) -> pd.Series:
    """处置中: cases open at asof, at any stage before closing (reported … handled)."""
    return open_at(c, w)


def stage_deadline_at(c: pd.DataFrame, w: Window) -> pd.Series:
    """The deadline of the stage each case was in at asof (NaT once closed or rejected).

    register stage → register_deadline; dispatch stage → dispatch_deadline; handle stage
    (dispatched, or returned for rework) → the committed deadline; verify stage (feedback
    given, not returned since) → verify_deadline.
    """
    _, _, asof = w.naive()
    not_registered = ~(c["registered_at"] < asof)
    not_dispatched = ~(c["dispatched_at"] < asof)
    returned_since = (c["returned_at"] >= c["handled_at"]) & (c["returned_at"] < asof)
    in_verify = (c["handled_at"] < asof) & ~returned_since
    deadline = np.select(
        [not_registered, not_dispatched, in_verify],
        [c["register_deadline"], c["dispatch_deadline"], c["verify_deadline"]],
        default=c["deadline"],
    )
    result = pd.Series(deadline, index=c.index, dtype="datetime64[us]")
    return result.where(open_at(c, w))


def overdue(c: pd.DataFrame, w: Window) -> pd.Series:
    """超期数: cases open at asof whose current stage's deadline has passed (100% of its time used)."""
    _, _, asof = w.naive()
    return stage_deadline_at(c, w) < asof


def pending(c: pd.DataFrame, w: Window) -> pd.Series:
    """待处置: open at asof and already dispatched (waiting for the department or verification)."""
    _, _, asof = w.naive()
    return open_at(c, w) & (c["dispatched_at"] < asof)


def overdue_pending(c: pd.DataFrame, w: Window) -> pd.Series:
    """超期待处置: pending cases that are overdue."""
    return pending(c, w) & overdue(c, w)


# ---------------------------------------------------------------- due-based (rates)


def _due_moment(done_at: pd.Series, deadline: pd.Series) -> pd.Series:
    """When a case falls due: when it was done if on time, else at its deadline."""
    on_time = done_at.notna() & (done_at <= deadline)
    return done_at.where(on_time, deadline)


def due_to_close(c: pd.DataFrame, w: Window) -> pd.Series:
    """应结案数: dispatched cases falling due to close in the window.

    due_at = closed_at if closed on or before its deadline, else the deadline; a case is
    due in the window when start ≤ due_at < asof (the window's end once it is over). So a
    case counts once: where its deadline falls, or where it was closed early; and a window
    still running counts only what has fallen due so far. Cases solved on the spot have no
    deadline.
    """
    start, _, asof = w.naive()
    return c["deadline"].notna() & _in(_due_moment(c["closed_at"], c["deadline"]), start, asof)


def due_closed(c: pd.DataFrame, w: Window) -> pd.Series:
    """结案数 (of due): due cases closed before the window's end."""
    _, end, _ = w.naive()
    return due_to_close(c, w) & (c["closed_at"] < end)


def closed_on_time(c: pd.DataFrame, w: Window) -> pd.Series:
    """按期结案数: due cases closed on or before their deadline."""
    return due_to_close(c, w) & (c["closed_at"] <= c["deadline"])


def due_reworked(c: pd.DataFrame, w: Window) -> pd.Series:
    """Due cases that were returned for rework at least once."""
    return due_to_close(c, w) & (c["rework_count"] > 0)


def due_to_handle(c: pd.DataFrame, w: Window) -> pd.Series:
    """应处置数: dispatched cases falling due to handle in the window so far (as due_to_close, by feedback)."""
    start, _, asof = w.naive()
    return c["deadline"].notna() & _in(_due_moment(c["handled_at"], c["deadline"]), start, asof)


def handled_on_time(c: pd.DataFrame, w: Window) -> pd.Series:
    """按期处置数: due-to-handle cases whose latest feedback came on or before the deadline."""
    return due_to_handle(c, w) & (c["handled_at"] <= c["deadline"])


def timely_registered(c: pd.DataFrame, w: Window) -> pd.Series:
    """按时立案数: cases registered in the window within the register limit."""
    return registered(c, w) & (c["registered_at"] <= c["register_deadline"])


def valid_reported(c: pd.DataFrame, w: Window) -> pd.Series:
    """有效上报数: cases reported in the window that were registered (not rejected) before its end."""
    _, end, _ = w.naive()
    return reported(c, w) & (c["registered_at"] < end)


def close_seconds(c: pd.DataFrame, w: Window) -> pd.Series:
    """Seconds from report to close, for cases closed in the window (NaN for others)."""
    return (c["closed_at"] - c["reported_at"]).dt.total_seconds().where(closed(c, w))


# The time to close: its mean is Σ seconds / closed; its 90th percentile is read from a
# histogram (buckets 25 % wide, geometric from 6 minutes to 39 days, linear inside a bucket),
# so that daily counts can carry it (``gridrules.rollups``) and every path gives the same
# figure. It lies within a quarter of the exact percentile's value.
CLOSE_EDGES_H = tuple([0.0] + [round(0.1 * 1.25**k, 9) for k in range(42)])  # the last bucket is [939.9 h, ∞)
HISTOGRAM = tuple(f"h{k:02d}" for k in range(len(CLOSE_EDGES_H)))
CLOSE_SECONDS = "close_seconds"


def close_buckets(seconds: pd.Series | np.ndarray) -> np.ndarray:
    """The histogram bucket (0 … len(CLOSE_EDGES_H) − 1) of each time to close given in seconds."""
    hours = np.asarray(seconds, dtype=float) / 3600.0
    return np.clip(np.searchsorted(CLOSE_EDGES_H, hours, side="right") - 1, 0, len(CLOSE_EDGES_H) - 1)


def histogram(seconds: pd.Series) -> np.ndarray:
    """Counts per bucket of times to close in seconds (NaN left out)."""
    values = pd.Series(seconds, dtype=float).dropna().to_numpy()
    return np.bincount(close_buckets(values), minlength=len(CLOSE_EDGES_H)).astype(np.int64)


def histogram_quantile(counts: Iterable[int] | np.ndarray, q: float) -> float | None:
    """The ``q`` quantile in hours of a close-time histogram: the bucket holding rank q·N,
    linearly inside it (the last, open bucket answers its lower edge); None for no cases."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return None
    rank = q * total
    cumulative = np.cumsum(counts)
    bucket = min(int(np.searchsorted(cumulative, rank, side="left")), len(counts) - 1)
    low = CLOSE_EDGES_H[bucket]
    if bucket == len(counts) - 1 or counts[bucket] == 0:
        return float(low)
    before = int(cumulative[bucket - 1]) if bucket else 0
    return float(low + (CLOSE_EDGES_H[bucket + 1] - low) * (rank - before) / int(counts[bucket]))


FLAG_FUNCTIONS = {
    "reported": reported,
    "registered": registered,
    "invalid": invalid,
    "dispatched": dispatched,
    "handled": handled,
    "closed": closed,
    "reworked": reworked,
    "evaluated": evaluated,
    "satisfied": satisfied,
    "in_progress": in_progress,
    "overdue": overdue,
    "pending": pending,
    "overdue_pending": overdue_pending,
    "due_to_close": due_to_close,
    "due_closed": due_closed,
    "closed_on_time": closed_on_time,
    "due_reworked": due_reworked,
    "due_to_handle": due_to_handle,
    "handled_on_time": handled_on_time,
    "timely_registered": timely_registered,
    "valid_reported": valid_reported,
}
COUNT_KEYS = tuple(FLAG_FUNCTIONS)


def case_flags(c: pd.DataFrame, w: Window) -> pd.DataFrame:
    """One boolean column per counted flag, plus ``close_seconds``, one row per case."""
    if c.empty:
        c = empty_cases()
    flags = pd.DataFrame({name: function(c, w).fillna(False).astype(bool) for name, function in FLAG_FUNCTIONS.items()}, index=c.index)
    flags[CLOSE_SECONDS] = close_seconds(c, w)
    return flags


# ---------------------------------------------------------------- rates


def ratio(numerator: float | pd.Series, denominator: float | pd.Series) -> float | pd.Series | None:
    """numerator / denominator; None (scalar) or NaN (series) when the denominator is 0."""
    if isinstance(denominator, pd.Series):
        return (numerator / denominator.where(denominator > 0)).astype(float)
    return None if not denominator else numerator / denominator


def closure_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """结案率 = due_closed / due_to_close."""
    return ratio(n["due_closed"], n["due_to_close"])


def on_time_closure_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """按期结案率 = closed_on_time / due_to_close (911 and 737 of 972 due → 93.72%, 75.82%)."""
    return ratio(n["closed_on_time"], n["due_to_close"])


def on_time_handling_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """按期处置率 = handled_on_time / due_to_handle."""
    return ratio(n["handled_on_time"], n["due_to_handle"])


def rework_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """返工率 = due_reworked / due_to_close."""
    return ratio(n["due_reworked"], n["due_to_close"])


def overdue_pending_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """超期待处置率 = overdue_pending / pending (at asof)."""
    return ratio(n["overdue_pending"], n["pending"])


def timely_registration_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """按时立案率 = timely_registered / registered."""
    return ratio(n["timely_registered"], n["registered"])


def valid_report_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """有效上报率 = valid_reported / reported (of the cases reported in the window)."""
    return ratio(n["valid_reported"], n["reported"])


def satisfaction_rate(n: Mapping[str, int] | pd.DataFrame) -> float | pd.Series | None:
    """满意率 = (satisfied + basically satisfied) / evaluated."""
    return ratio(n["satisfied"], n["evaluated"])


RATE_FUNCTIONS = {
    "closure_rate": closure_rate,
    "on_time_closure_rate": on_time_closure_rate,
    "on_time_handling_rate": on_time_handling_rate,
    "rework_rate": rework_rate,
    "overdue_pending_rate": overdue_pending_rate,
    "timely_registration_rate": timely_registration_rate,
    "valid_report_rate": valid_report_rate,
    "satisfaction_rate": satisfaction_rate,
}


# ---------------------------------------------------------------- patrol


def patrol_totals(patrol: pd.DataFrame) -> dict:
    """patrol_hours = Σ seconds / 3600; patrol_km = Σ meters / 1000; grids_patrolled = distinct grids walked.

    ``patrol`` has one row per local day, worker and grid (the ``patrol_days`` table).
    """
    if patrol.empty:
        return {"patrol_hours": 0.0, "patrol_km": 0.0, "grids_patrolled": 0}
    walked = patrol[patrol["seconds"] > 0]
    return {
        "patrol_hours": float(patrol["seconds"].sum() / 3600.0),
        "patrol_km": float(patrol["meters"].sum() / 1000.0),
        "grids_patrolled": int(walked["grid"].nunique()),
    }


def patrol_attainment(hours: float, expected_hours: float) -> float | None:
    """巡查达标率 = min(1, patrol hours / expected hours); None when nothing was expected."""
    if not expected_hours:
        return None
    return min(1.0, hours / expected_hours)


def report_attainment(valid_reported: int, expected_reports: float) -> float | None:
    """有效上报达标率 = min(1, valid reports / expected valid reports); None when nothing was expected."""
    if not expected_reports:
        return None
    return min(1.0, valid_reported / expected_reports)


WORKER_ORDER = ("score", "valid_reported", "patrol_hours", "worker")  # the ranking's tie-breaks, in order


def rank_workers(table: pd.DataFrame, min_patrol_hours: float) -> pd.DataFrame:
    """Workers in ranking order with a ``rank`` column: those who patrolled at least
    ``min_patrol_hours`` in the period are ranked by score, then valid reports, then patrol
    hours (the more the better), then id; the rest follow unranked (rank None), most active first."""
    if table.empty:
        return table.assign(rank=pd.Series(dtype=object))
    ascending = [False, False, False, True]
    ranked = table[table["patrol_hours"] >= min_patrol_hours].sort_values(list(WORKER_ORDER), ascending=ascending, na_position="last")
    unranked = table[table["patrol_hours"] < min_patrol_hours].sort_values(["patrol_hours", "valid_reported", "worker"], ascending=[False, False, True])
    ranked = ranked.assign(rank=list(range(1, len(ranked) + 1)))
    unranked = unranked.assign(rank=[None] * len(unranked))
    return pd.concat([ranked, unranked.astype({"rank": object})]).reset_index(drop=True) if len(unranked) else ranked.reset_index(drop=True)


# ---------------------------------------------------------------- summaries


def _clean(value: object):
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def close_sums(seconds: pd.Series) -> dict:
    """Σ seconds and the histogram (HISTOGRAM keys) of times to close (NaN left out)."""
    counts = histogram(seconds)
    return {CLOSE_SECONDS: float(pd.Series(seconds, dtype=float).sum()), **dict(zip(HISTOGRAM, (int(n) for n in counts), strict=True))}


def summary(counts: Mapping) -> dict:
    """Counts, rates and close times from summed flags: COUNT_KEYS, CLOSE_SECONDS and HISTOGRAM."""
    result: dict = {name: int(counts[name]) for name in COUNT_KEYS}
    for name, function in RATE_FUNCTIONS.items():
        result[name] = _clean(function(result))
    closed_count = result["closed"]
    result["mean_close_hours"] = float(counts[CLOSE_SECONDS]) / closed_count / 3600.0 if closed_count else None
    result["p90_close_hours"] = histogram_quantile([counts[name] for name in HISTOGRAM], 0.9)
    return result


def summarise(flags: pd.DataFrame) -> dict:
    """Counts, rates and close times of one frame of flags (one area, one window)."""
    counts = {name: int(flags[name].sum()) for name in COUNT_KEYS}
    return summary({**counts, **close_sums(flags[CLOSE_SECONDS])})


def summarise_by(cases: pd.DataFrame, flags: pd.DataFrame, key: str) -> pd.DataFrame:
    """The same counts and rates per value of ``key`` (dept, grid, worker…), one row each."""
    if cases.empty:
        return pd.DataFrame(columns=[key, *COUNT_KEYS, *RATE_FUNCTIONS, "mean_close_hours", "p90_close_hours"])
    grouped = flags.assign(**{key: cases[key]}).groupby(key, dropna=True)
    counts = grouped[list(COUNT_KEYS)].sum().astype(int)
    counts[CLOSE_SECONDS] = grouped[CLOSE_SECONDS].sum().astype(float)
    seconds = flags[CLOSE_SECONDS].dropna()
    buckets = pd.Series(np.array(HISTOGRAM, dtype=object)[close_buckets(seconds)], index=seconds.index, dtype=object)
    groups = cases.loc[seconds.index, key]
    histograms = pd.crosstab(groups, buckets) if len(seconds) else pd.DataFrame(index=counts.index)
    counts = counts.join(histograms.reindex(index=counts.index, columns=list(HISTOGRAM), fill_value=0).fillna(0).astype("int64"))
    return summaries(counts).reset_index()


def summaries(table: pd.DataFrame) -> pd.DataFrame:
    """``summary`` of every row of a table of summed flags (COUNT_KEYS, CLOSE_SECONDS, HISTOGRAM)."""
    counts = table[list(COUNT_KEYS)].astype("int64")
    for name, function in RATE_FUNCTIONS.items():
        counts[name] = function(counts)
    closed_count = table["closed"].where(table["closed"] > 0)
    counts["mean_close_hours"] = (table[CLOSE_SECONDS].astype(float) / closed_count / 3600.0).astype(float)
    counts["p90_close_hours"] = [histogram_quantile(row, 0.9) for row in table[list(HISTOGRAM)].to_numpy(dtype=np.int64)]
    counts["p90_close_hours"] = counts["p90_close_hours"].astype(float)
    return counts


# The centre's interventions, counted per event in the window against the department each
# concerns (``data_feeds.queries.load_interventions``):
#   supervised (督办数)            supervise events, against the case's department at the time
#   supervised_on_time            distinct cases supervised in the window that closed by their deadline
#   redispatched (改派)           re-dispatches, against the department the case was taken from
#   declined (退单)               declines, against the declining department (the centre's routing, not its timeliness)
#   extended (延期)               approved extensions, against the case's department
INTERVENTION_KEYS = ("supervised", "supervised_on_time", "redispatched", "declined", "extended")
INTERVENTION_OF_KIND = {"supervise": "supervised", "redispatch": "redispatched", "decline": "declined", "extend": "extended"}


def intervention_counts(events: pd.DataFrame) -> pd.DataFrame:
    """INTERVENTION_KEYS per department (index ``dept``) from the window's intervention events."""
    if events.empty:
        return pd.DataFrame(columns=list(INTERVENTION_KEYS), index=pd.Index([], name="dept"), dtype="int64")
    counts = pd.crosstab(events["dept"], events["kind"].map(INTERVENTION_OF_KIND)).reindex(columns=list(INTERVENTION_KEYS), fill_value=0)
    supervised = events[events["kind"] == "supervise"].drop_duplicates("case_id")
    counts["supervised_on_time"] = supervised[supervised["closed_on_time"].astype(bool)].groupby("dept").size().reindex(counts.index, fill_value=0)
    counts.index.name = "dept"
    return counts.astype("int64")


def with_interventions(table: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """A per-department table with INTERVENTION_KEYS added (0 where none); a department with
    interventions and no other row joins it."""
    merged = table.merge(counts.reset_index(), on="dept", how="outer")
    for name in (*COUNT_KEYS, *INTERVENTION_KEYS):
        if name in merged.columns:
            merged[name] = merged[name].fillna(0).astype("int64")
    return merged


def composite_score(values: dict, weights: dict) -> float | None:
    """综合得分 = 100 × Σ wᵢ·vᵢ / Σ wᵢ over the weighted indicators that have a value.

    A weight named ``1-x`` scores the complement of indicator ``x`` (e.g. 1-rework_rate).
    """
    total = weighted = 0.0
    for name, weight in weights.items():
        complement = name.startswith("1-")
        value = values.get(name[2:] if complement else name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        value = float(value)
        total += weight * ((1.0 - value) if complement else value)
        weighted += weight
    return None if weighted == 0 else 100.0 * total / weighted


def grade_of(score: float | None, thresholds: Iterable[tuple[str, float]]) -> str | None:
    """A (≥90) … E (<40) by the configured thresholds, best first; None without a score."""
    if score is None:
        return None
    for grade, minimum in thresholds:
        if score >= minimum:
            return grade
    return "E"
