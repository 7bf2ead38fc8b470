"""A case's stages as rounds, each against its limit in the limit's own unit."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from gridrules.lifecycle import Case, CaseEvent, Category, Rules, apply_event
from gridrules.limits import Limit, StageLimits, add_limit, elapsed_amount
from gridrules.stage_rounds import stage_rounds
from tests.support import local

A_LIMITS = StageLimits.parse("10m", "10m", "2h", "1h", "natural")
C_LIMITS = StageLimits.parse("1h", "1h", "3wd", "1wd", "working")
T0 = local(2026, 11, 23, 9, 0)  # a Monday
NUMBERS = itertools.count(1)


@pytest.fixture
def rules(domain_config):
    categories = {"X0101": Category("X0101", "manhole", None, 3, dept="SWJ", grade="A", limits=A_LIMITS),
                  "X0102": Category("X0102", "graffiti", None, 3, dept="CGJ", grade="C", limits=C_LIMITS)}
    return Rules(categories, domain_config.calendar, domain_config.grade_limits, 0.8)


@pytest.mark.parametrize("text", ["30m", "2h", "1.5h", "1d", "3d", "1wd", "2.5wd"])
@pytest.mark.parametrize("kind", ["natural", "working"])
@pytest.mark.parametrize("start", [T0, local(2026, 11, 27, 16, 30), local(2026, 10, 1, 10, 0)])  # Monday, Friday afternoon, a holiday
def test_the_time_to_a_deadline_is_the_limit_in_its_own_unit(domain_config, text, kind, start):
    limit = Limit.parse(text)
    deadline = add_limit(start, limit, kind, domain_config.calendar)
    assert elapsed_amount(start, deadline, limit, kind, domain_config.calendar) == pytest.approx(limit.amount, abs=1e-6)


def test_working_hours_skip_the_night_and_the_weekend(domain_config):
    friday_afternoon, monday_morning = local(2026, 11, 27, 16, 0), local(2026, 11, 30, 10, 0)
    hours = elapsed_amount(friday_afternoon, monday_morning, Limit.parse("2h"), "working", domain_config.calendar)
    natural = elapsed_amount(friday_afternoon, monday_morning, Limit.parse("2h"), "natural", domain_config.calendar)
    assert hours < 4 and natural == 66


def play(rules, steps) -> tuple[Case, list[dict]]:
    case, events = None, []
    for action, ts, fields in steps:
        before = case.status if case else None
        case = apply_event(case, CaseEvent(event_id=f"e{next(NUMBERS)}", case_id="C1", action=action, ts=ts, **fields), rules)
        events.append({"ts": ts, "action": action, "from_status": before, "to_status": case.status})
    return case, events


def deadlines_of(case: Case) -> dict:
    return {name: getattr(case, name) for name in ("register_deadline", "dispatch_deadline", "deadline", "verify_deadline")}


def test_a_reworked_case_has_a_round_per_entry_and_rework_buys_no_time(rules):
    report = {"grid": "G1", "category": "X0101", "lat": 31.2, "lon": 120.6, "source": "patrol"}
    case, events = play(rules, [
        ("report", T0, report),
        ("register", T0 + timedelta(minutes=5), {}),
        ("dispatch", T0 + timedelta(minutes=25), {"dept": "SWJ"}),  # 15 minutes into a 10-minute limit: 5 late
        ("feedback", T0 + timedelta(hours=1), {}),
        ("return", T0 + timedelta(hours=1, minutes=30), {}),
        ("feedback", T0 + timedelta(hours=3), {}),  # the committed deadline was 2 h after dispatch
        ("close", T0 + timedelta(hours=3, minutes=20), {}),
    ])
    rounds = stage_rounds(events, deadlines_of(case), rules.limits_for(rules.categories["X0101"], case.grade), rules.calendar, T0 + timedelta(days=1))
    assert [(r.stage, r.started_at - T0, r.ended_at - T0) for r in rounds] == [
        ("register", timedelta(0), timedelta(minutes=5)),
        ("dispatch", timedelta(minutes=5), timedelta(minutes=25)),
        ("handle", timedelta(minutes=25), timedelta(hours=1)),
        ("verify", timedelta(hours=1), timedelta(hours=1, minutes=30)),
        ("handle", timedelta(hours=1, minutes=30), timedelta(hours=3)),
        ("verify", timedelta(hours=3), timedelta(hours=3, minutes=20)),
    ]
    register, dispatch, handle, verify, rework, last_verify = rounds
    assert (register.elapsed, register.late_by) == (5, None)
    assert dispatch.elapsed == 20 and dispatch.late_by == pytest.approx(10)  # minutes, as the limit is written
    assert handle.late_by is None and handle.deadline == case.deadline
    assert rework.deadline == case.deadline and rework.elapsed == 1.5 and rework.late_by == pytest.approx(35 / 60)  # hours
    assert verify.deadline == T0 + timedelta(hours=2) and verify.late_by is None
    assert last_verify.deadline == case.verify_deadline and not last_verify.running


def test_the_stage_a_case_is_in_runs_until_now(rules):
    case, events = play(rules, [("report", T0, {"grid": "G1", "category": "X0102", "lat": 31.2, "lon": 120.6, "source": "hotline"})])
    now = T0 + timedelta(hours=3)
    (only,) = stage_rounds(events, deadlines_of(case), rules.limits_for(rules.categories["X0102"], case.grade), rules.calendar, now)
    assert only.running and only.stage == "register" and only.limit == Limit.parse("1h") and only.calendar_kind == "working"
    assert only.elapsed == pytest.approx(rules.calendar.working_minutes_between(T0, now) / 60) and only.late_by == pytest.approx(only.elapsed - 1)
