"""Every indicator of gridrules.indicators against hand-computed expectations."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from data_feeds.queries import case_frame
from gridrules import indicators as ind
from gridrules.indicators import Window
from tests.support import utc

START = utc(2026, 11, 1)
END = utc(2026, 11, 2)
NOW = utc(2026, 11, 10)
WINDOW = Window.until_now(START, END, NOW)


def at(hours: float) -> datetime:
    """Naive UTC, hours after the window's start (negative: before it)."""
    return (START + timedelta(hours=hours)).replace(tzinfo=None)


def case(case_id="c", reported=1.0, **times) -> dict:
    row = {
        "id": case_id, "status": "reported", "grid": times.pop("grid", "G1"), "category": "X", "dept": times.pop("dept", "D1"),
        "grade": "B", "source": times.pop("source", "patrol"), "worker": times.pop("worker", None),
        "satisfaction": times.pop("satisfaction", None), "stage": None,
        "rework_count": times.pop("rework", 0), "self_handled": times.pop("self_handled", False),
    }
    for column in ind.TIME_COLUMNS:
        row[column] = None
    row["reported_at"] = at(reported)
    row["updated_at"] = at(reported)
    for name, hours in times.items():
        row[name] = None if hours is None else at(hours)
    return row


def frame(*rows) -> pd.DataFrame:
    return case_frame(pd.DataFrame(list(rows)))


def counts(*rows, window=WINDOW) -> dict:
    return ind.summarise(ind.case_flags(frame(*rows), window))


# ---------------------------------------------------------------- event counts

def test_event_counts_take_start_inclusive_end_exclusive():
    result = counts(
        case("a", reported=0.0),
        case("b", reported=23.99),
        case("c", reported=24.0),
        case("d", reported=-0.01),
    )
    assert result["reported"] == 2


def test_each_transition_counts_in_the_window_it_happened():
    result = counts(
        case("a", reported=-5, registered_at=1, dispatched_at=2, handled_at=3, closed_at=4, evaluated_at=5, satisfaction="satisfied"),
        case("b", reported=2, invalid_at=3),
        case("c", reported=-30, registered_at=-29, dispatched_at=-28, handled_at=-27, closed_at=25),
        case("d", reported=-30, registered_at=-29, dispatched_at=-28, handled_at=2, returned_at=5, first_returned_at=5, rework=1),
    )
    assert (result["reported"], result["registered"], result["invalid"], result["dispatched"]) == (1, 1, 1, 1)
    assert (result["handled"], result["closed"], result["reworked"], result["evaluated"]) == (2, 1, 1, 1)


def test_rework_counts_when_first_or_latest_return_falls_in_the_window():
    result = counts(
        case("a", reported=-50, first_returned_at=-40, returned_at=3, rework=2),
        case("b", reported=-50, first_returned_at=2, returned_at=30, rework=2),
        case("c", reported=-50, first_returned_at=-40, returned_at=-30, rework=2),
    )
    assert result["reworked"] == 2


# ---------------------------------------------------------------- states at asof

def test_in_progress_is_every_open_case_at_asof():
    window = Window.until_now(START, END, at(12).replace(tzinfo=START.tzinfo))
    result = counts(
        case("open-reported", reported=1),
        case("open-dispatched", reported=-100, registered_at=-99, dispatched_at=-98),
        case("closed-before", reported=1, closed_at=5),
        case("closed-after-asof", reported=1, closed_at=20),
        case("rejected", reported=1, invalid_at=2),
        case("reported-after-asof", reported=13),
        window=window,
    )
    assert result["in_progress"] == 3


def test_overdue_uses_the_deadline_of_the_stage_at_asof():
    asof = at(10)
    window = Window.until_now(START, END, asof.replace(tzinfo=START.tzinfo))
    rows = [
        case("register-late", reported=1, register_deadline=2),
        case("register-ok", reported=1, register_deadline=11),
        case("dispatch-late", reported=1, registered_at=1.5, register_deadline=2, dispatch_deadline=3),
        case("handle-late", reported=1, registered_at=1.5, dispatched_at=2, deadline=9),
        case("handle-ok", reported=1, registered_at=1.5, dispatched_at=2, deadline=12),
        case("verify-late", reported=1, registered_at=1.5, dispatched_at=2, deadline=12, handled_at=3, verify_deadline=8),
        case("reworked-handle-late", reported=1, registered_at=1.5, dispatched_at=2, deadline=9, handled_at=3, verify_deadline=20, returned_at=4),
        case("closed-late-but-closed", reported=1, registered_at=1.5, dispatched_at=2, deadline=3, closed_at=5),
    ]
    flags = ind.case_flags(frame(*rows), window)
    overdue = {row["id"] for row, flag in zip(rows, flags["overdue"]) if flag}
    assert overdue == {"register-late", "dispatch-late", "handle-late", "verify-late", "reworked-handle-late"}


def test_overdue_pending_rate_is_over_dispatched_open_cases():
    window = Window.until_now(START, END, at(10).replace(tzinfo=START.tzinfo))
    result = counts(
        case("a", reported=1, registered_at=1, dispatched_at=2, deadline=5),
        case("b", reported=1, registered_at=1, dispatched_at=2, deadline=20),
        case("c", reported=1, register_deadline=2),  # overdue but not dispatched
        window=window,
    )
    assert result["pending"] == 2 and result["overdue_pending"] == 1 and result["overdue"] == 2
    assert result["overdue_pending_rate"] == 0.5


# ---------------------------------------------------------------- due-based rates

def test_due_to_close_counts_each_case_once_where_it_falls_due():
    rows = [
        case("deadline-in-open", reported=-10, dispatched_at=-9, deadline=5),
        case("early-close-in-window", reported=-10, dispatched_at=-9, deadline=100, closed_at=3),
        case("early-close-before-window", reported=-10, dispatched_at=-9, deadline=5, closed_at=-1),
        case("late-close-in-window-deadline-before", reported=-50, dispatched_at=-49, deadline=-2, closed_at=3),
        case("deadline-in-closed-late-after-end", reported=-10, dispatched_at=-9, deadline=5, closed_at=30),
        case("deadline-in-closed-late-in-window", reported=-10, dispatched_at=-9, deadline=5, closed_at=7),
        case("self-handled-no-deadline", reported=1, closed_at=2, registered_at=2, self_handled=True),
    ]
    flags = ind.case_flags(frame(*rows), WINDOW)
    due = {row["id"] for row, flag in zip(rows, flags["due_to_close"]) if flag}
    assert due == {"deadline-in-open", "early-close-in-window", "deadline-in-closed-late-after-end", "deadline-in-closed-late-in-window"}
    due_closed = {row["id"] for row, flag in zip(rows, flags["due_closed"]) if flag}
    assert due_closed == {"early-close-in-window", "deadline-in-closed-late-in-window"}
    on_time = {row["id"] for row, flag in zip(rows, flags["closed_on_time"]) if flag}
    assert on_time == {"early-close-in-window"}


def test_consecutive_windows_never_count_a_case_twice():
    rows = [case(f"c{i}", reported=-10, dispatched_at=-9, deadline=i * 3.1 - 20, closed_at=(i * 2.3 - 15) if i % 3 else None) for i in range(40)]
    data = frame(*rows)
    total = 0
    for day in range(-2, 3):
        window = Window.until_now(START + timedelta(days=day), START + timedelta(days=day + 1), NOW)
        total += int(ind.due_to_close(data, window).sum())
    everything = Window.until_now(START - timedelta(days=2), START + timedelta(days=3), NOW)
    assert total == int(ind.due_to_close(data, everything).sum())


def test_published_check_972_due_911_closed_737_on_time():
    rows = []
    for i in range(737):  # closed on or before the deadline, in the window
        rows.append(case(f"on-time-{i}", reported=-24, dispatched_at=-23, deadline=12, closed_at=6))
    for i in range(174):  # deadline in the window, closed late but before its end
        rows.append(case(f"late-{i}", reported=-24, dispatched_at=-23, deadline=5, closed_at=20))
    for i in range(61):  # deadline in the window, still open
        rows.append(case(f"open-{i}", reported=-24, dispatched_at=-23, deadline=10))
    result = counts(*rows)
    assert result["due_to_close"] == 972
    assert result["closed_on_time"] == 737
    assert round(result["closure_rate"] * 100, 2) == 93.72
    assert round(result["on_time_closure_rate"] * 100, 2) == 75.82


def test_on_time_handling_and_rework_rates():
    result = counts(
        case("a", reported=-5, dispatched_at=-4, deadline=5, handled_at=4, closed_at=6),
        case("b", reported=-5, dispatched_at=-4, deadline=5, handled_at=7, closed_at=8, rework=1),
        case("c", reported=-5, dispatched_at=-4, deadline=6),
        case("d", reported=-5, dispatched_at=-4, deadline=50, handled_at=2),
    )
    assert result["due_to_handle"] == 4  # a (on time), b (late), c (open), d (early feedback)
    assert result["handled_on_time"] == 2
    assert result["on_time_handling_rate"] == 0.5
    assert result["due_to_close"] == 3 and result["due_reworked"] == 1
    assert result["rework_rate"] == pytest.approx(1 / 3)


def test_timely_registration_valid_reports_and_satisfaction():
    result = counts(
        case("a", reported=1, registered_at=1.1, register_deadline=1.5, evaluated_at=3, satisfaction="satisfied"),
        case("b", reported=1, registered_at=2, register_deadline=1.5, evaluated_at=3, satisfaction="basic"),
        case("c", reported=1, invalid_at=1.2, evaluated_at=3, satisfaction="unsatisfied"),
        case("d", reported=1),
        case("e", reported=1, registered_at=30, register_deadline=1.5),  # registered after the window
    )
    assert result["registered"] == 2 and result["timely_registered"] == 1
    assert result["timely_registration_rate"] == 0.5
    assert result["reported"] == 5 and result["valid_reported"] == 2
    assert result["valid_report_rate"] == 0.4
    assert result["satisfaction_rate"] == pytest.approx(2 / 3)


def test_close_hours_mean_and_90th_percentile():
    rows = [case(f"c{i}", reported=0, closed_at=float(i + 1)) for i in range(10)]
    result = counts(*rows)
    assert result["mean_close_hours"] == pytest.approx(5.5)
    # The percentile is read from the close-time histogram (25 % buckets): within a quarter of the exact 9.1 h.
    exact = pd.Series(range(1, 11), dtype=float).quantile(0.9)
    assert result["p90_close_hours"] == ind.histogram_quantile(ind.histogram(pd.Series(range(1, 11), dtype=float) * 3600), 0.9)
    assert abs(result["p90_close_hours"] - exact) <= 0.25 * exact


@pytest.mark.parametrize("hours", [[0.0], [0.05] * 7, [2.0, 3.0, 500.0], [1000.0, 2000.0], list(np.linspace(0.2, 300, 997))])
def test_the_histogram_percentile_stays_within_its_bucket_width(hours):
    counts = ind.histogram(pd.Series(hours) * 3600)
    assert counts.sum() == len(hours)
    value = ind.histogram_quantile(counts, 0.9)
    exact = float(np.quantile(hours, 0.9, method="inverted_cdf"))
    if exact >= ind.CLOSE_EDGES_H[-1]:
        assert value == ind.CLOSE_EDGES_H[-1]  # the open last bucket answers its lower edge
    elif exact >= ind.CLOSE_EDGES_H[1]:
        assert abs(value - exact) <= 0.25 * exact
    else:
        assert 0 <= value <= ind.CLOSE_EDGES_H[1]
    assert ind.histogram_quantile(np.zeros(len(ind.CLOSE_EDGES_H), dtype=int), 0.9) is None


def test_rates_are_none_without_a_denominator():
    result = counts()
    for key in ind.RATE_FUNCTIONS:
        assert result[key] is None
    assert result["mean_close_hours"] is None and result["reported"] == 0


def test_every_api_key_is_produced():
    result = counts(case("a"))
    result.update(ind.patrol_totals(pd.DataFrame(columns=["day", "worker", "grid", "seconds", "meters"])))
    result["workers_online"] = 0
    assert set(ind.API_KEYS) <= set(result)


# ---------------------------------------------------------------- per department / grid / worker

def test_summaries_by_key_add_up_to_the_total():
    rows = [
        case(f"c{i}", reported=i % 20, dept=f"D{i % 3}", grid=f"G{i % 5}", registered_at=(i % 20) + 0.1,
             register_deadline=(i % 20) + (0.05 if i % 4 else 0.5), dispatched_at=(i % 20) + 0.2, deadline=(i % 20) + 2,
             closed_at=(i % 20) + (1 if i % 2 else 3))
        for i in range(60)
    ]
    data = frame(*rows)
    flags = ind.case_flags(data, WINDOW)
    total = ind.summarise(flags)
    for key in ("dept", "grid"):
        table = ind.summarise_by(data, flags, key)
        for name in ind.COUNT_KEYS:
            assert table[name].sum() == total[name], (key, name)
    by_dept = ind.summarise_by(data, flags, "dept").set_index("dept")
    d0 = ind.summarise(flags[data["dept"] == "D0"])
    assert by_dept.loc["D0", "on_time_closure_rate"] == pytest.approx(d0["on_time_closure_rate"])
    assert by_dept.loc["D0", "p90_close_hours"] == pytest.approx(d0["p90_close_hours"])


def test_composite_score_renormalises_missing_values_and_scores_complements():
    weights = {"closure_rate": 0.5, "1-rework_rate": 0.25, "satisfaction_rate": 0.25}
    assert ind.composite_score({"closure_rate": 1.0, "rework_rate": 0.2, "satisfaction_rate": 0.6}, weights) == pytest.approx(100 * (0.5 + 0.2 + 0.15))
    assert ind.composite_score({"closure_rate": 0.8, "rework_rate": None, "satisfaction_rate": None}, weights) == pytest.approx(80.0)
    assert ind.composite_score({}, weights) is None


@pytest.mark.parametrize("score,grade", [(95, "A"), (90, "A"), (89.99, "B"), (75, "B"), (60, "C"), (40, "D"), (39.9, "E"), (0, "E"), (None, None)])
def test_grades_follow_the_configured_thresholds(domain_config, score, grade):
    assert ind.grade_of(score, domain_config.grade_thresholds) == grade


def test_patrol_totals_and_attainment():
    patrol = pd.DataFrame([
        {"day": "2026-11-01", "worker": "W1", "grid": "G1", "seconds": 3600.0, "meters": 3000.0},
        {"day": "2026-11-01", "worker": "W1", "grid": "G2", "seconds": 1800.0, "meters": 1500.0},
        {"day": "2026-11-02", "worker": "W2", "grid": "G1", "seconds": 7200.0, "meters": 8000.0},
        {"day": "2026-11-02", "worker": "W3", "grid": "G3", "seconds": 0.0, "meters": 0.0},
    ])
    assert ind.patrol_totals(patrol) == {"patrol_hours": 3.5, "patrol_km": 12.5, "grids_patrolled": 2}
    assert ind.patrol_attainment(3.5, 7.0) == 0.5
    assert ind.patrol_attainment(9.0, 7.0) == 1.0
    assert ind.patrol_attainment(1.0, 0) is None


def test_workers_are_ranked_by_score_then_reports_then_hours_and_the_idle_are_not_ranked():
    from gridrules.indicators import rank_workers, report_attainment

    table = pd.DataFrame({
        "worker": ["W1", "W2", "W3", "W4", "W5"],
        "score": [80.0, 80.0, 80.0, 95.0, 99.0],
        "valid_reported": [3, 5, 5, 1, 9],
        "patrol_hours": [10.0, 6.0, 9.0, 12.0, 1.5],  # W5 was away most of the week
    })
    ranked = rank_workers(table, min_patrol_hours=3.0)
    assert list(ranked["worker"]) == ["W4", "W3", "W2", "W1", "W5"]
    assert list(ranked["rank"]) == [1, 2, 3, 4, None]
    assert report_attainment(3, 5.0) == 0.6 and report_attainment(9, 5.0) == 1.0 and report_attainment(2, 0) is None


def test_interventions_count_per_department_and_supervised_cases_closed_on_time_once_each():
    events = pd.DataFrame.from_records([
        ("supervise", "CGJ", "k1", True), ("supervise", "CGJ", "k1", True),  # twice on one case: 2 supervisions, 1 case on time
        ("supervise", "CGJ", "k2", False), ("redispatch", "CGJ", "k3", False),
        ("decline", "GAJ", "k4", False), ("extend", "GAJ", "k5", True),
    ], columns=["kind", "dept", "case_id", "closed_on_time"])
    counts = ind.intervention_counts(events)
    assert counts.loc["CGJ"].to_dict() == {"supervised": 3, "supervised_on_time": 1, "redispatched": 1, "declined": 0, "extended": 0}
    assert counts.loc["GAJ"].to_dict() == {"supervised": 0, "supervised_on_time": 0, "redispatched": 0, "declined": 1, "extended": 1}
    table = ind.with_interventions(pd.DataFrame({"dept": ["CGJ", "SWJ"], "due_to_close": [4, 2]}), counts)
    assert table.set_index("dept")[["due_to_close", "supervised", "declined"]].to_dict("index") == {
        "CGJ": {"due_to_close": 4, "supervised": 3, "declined": 0},
        "GAJ": {"due_to_close": 0, "supervised": 0, "declined": 1},  # a department known only by its decline still shows
        "SWJ": {"due_to_close": 2, "supervised": 0, "declined": 0},
    }
    assert ind.intervention_counts(events.iloc[:0]).empty
