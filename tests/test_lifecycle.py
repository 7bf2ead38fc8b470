"""The case lifecycle (六步闭环) as a state machine, and apply_event's timestamps and deadlines."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from gridrules.lifecycle import (
    ACTIONS,
    STATUSES,
    TRANSITIONS,
    Case,
    CaseEvent,
    Category,
    IllegalTransition,
    Rules,
    apply_event,
    case_version,
    next_state,
)
from gridrules.limits import StageLimits
from tests.support import local

A_LIMITS = StageLimits.parse("10m", "10m", "2h", "1h", "natural")
C_LIMITS = StageLimits.parse("1h", "1h", "3wd", "1wd", "working")


@pytest.fixture
def rules(domain_config):
    categories = {
        "X": Category("X", "major", None, 1),
        "X01": Category("X01", "sub", "X", 2),
        "X0101": Category("X0101", "manhole cover missing", "X01", 3, dept="SWJ", grade="A", limits=A_LIMITS),
        "X0102": Category("X0102", "graffiti", "X01", 3, dept="CGJ", grade="C", limits=C_LIMITS),
    }
    return Rules(categories, domain_config.calendar, domain_config.grade_limits, 0.8)


EVENT_NUMBERS = itertools.count(1)


def event(action, ts, **fields):
    return CaseEvent(event_id=f"e{next(EVENT_NUMBERS)}", case_id="C1", action=action, ts=ts, **fields)


def play(rules, steps) -> Case:
    case = None
    for action, ts, fields in steps:
        case = apply_event(case, event(action, ts, **fields), rules)
    return case


T0 = local(2026, 11, 23, 9, 0)  # a Monday, a working day
REPORT = ("report", T0, {"grid": "G1", "category": "X0101", "lat": 31.2, "lon": 120.6, "source": "patrol"})


# ---------------------------------------------------------------- the state machine

@pytest.mark.parametrize("state,action,target", [(s, a, t) for (s, a), t in TRANSITIONS.items()])
def test_every_allowed_transition_gives_its_target(state, action, target):
    assert next_state(state, action) == target


FORBIDDEN = [(s, a) for s in (None, *STATUSES) for a in ACTIONS if (s, a) not in TRANSITIONS]


@pytest.mark.parametrize("state,action", FORBIDDEN)
def test_every_other_transition_is_an_error_naming_both_states(state, action):
    with pytest.raises(IllegalTransition) as raised:
        next_state(state, action)
    message = str(raised.value)
    assert (state or "(no case)") in message
    assert raised.value.to_state in message
    assert raised.value.from_state == state


def test_the_loop_has_exactly_the_designed_transitions():
    assert set(TRANSITIONS) == {
        (None, "report"), ("reported", "register"), ("reported", "reject"), ("reported", "close"),
        ("registered", "dispatch"), ("dispatched", "feedback"), ("handled", "return"), ("handled", "close"),
        ("closed", "evaluate"),
        # the centre's interventions (issue 12 item 13, item 10)
        ("dispatched", "dispatch"), ("dispatched", "decline"), ("dispatched", "extend"),
        ("reported", "supervise"), ("registered", "supervise"), ("dispatched", "supervise"), ("handled", "supervise"),
    }


def test_unknown_action_is_refused():
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        next_state("reported", "fly")


def test_final_states_accept_nothing_but_evaluation_of_closed():
    for action in ACTIONS:
        with pytest.raises(IllegalTransition):
            next_state("invalid", action)
        with pytest.raises(IllegalTransition):
            next_state("evaluated", action)


# ---------------------------------------------------------------- apply_event

def test_full_loop_sets_every_timestamp_and_stage(rules):
    t = T0
    case = play(rules, [
        REPORT,
        ("register", t + timedelta(minutes=5), {}),
        ("dispatch", t + timedelta(minutes=12), {"dept": "SWJ"}),
        ("feedback", t + timedelta(minutes=90), {}),
        ("close", t + timedelta(minutes=120), {}),
        ("evaluate", t + timedelta(hours=5), {"satisfaction": "basic"}),
    ])
    assert case.status == "evaluated"
    assert case.reported_at == t and case.registered_at == t + timedelta(minutes=5)
    assert case.dispatched_at == t + timedelta(minutes=12)
    assert case.handled_at == t + timedelta(minutes=90)
    assert case.closed_at == t + timedelta(minutes=120)
    assert case.satisfaction == "basic"
    # A-grade, natural hours: register 10 min, dispatch 10 min, handle 2 h, verify 1 h.
    assert case.register_deadline == t + timedelta(minutes=10)
    assert case.dispatch_deadline == t + timedelta(minutes=15)
    assert case.deadline == t + timedelta(minutes=12, hours=2)
    assert case.verify_deadline == t + timedelta(minutes=150)
    assert case.stage is None and case.stage_deadline is None
    assert case.dept == "SWJ" and not case.self_handled and case.rework_count == 0


def test_each_stage_carries_its_deadline_and_due_soon_at_80_percent(rules):
    case = play(rules, [REPORT])
    assert case.stage == "register"
    assert case.stage_deadline == T0 + timedelta(minutes=10)
    assert case.stage_due_soon_at == T0 + timedelta(minutes=8)
    case = apply_event(case, event("register", T0 + timedelta(minutes=2)), rules)
    assert case.stage == "dispatch" and case.stage_deadline == T0 + timedelta(minutes=12)
    case = apply_event(case, event("dispatch", T0 + timedelta(minutes=4), dept="SWJ"), rules)
    assert case.stage == "handle" and case.stage_deadline == T0 + timedelta(minutes=124)
    assert case.stage_due_soon_at == T0 + timedelta(minutes=4 + 96)


def test_rework_loops_back_to_dispatched_and_keeps_the_committed_deadline(rules):
    case = play(rules, [
        REPORT,
        ("register", T0 + timedelta(minutes=5), {}),
        ("dispatch", T0 + timedelta(minutes=10), {"dept": "SWJ"}),
        ("feedback", T0 + timedelta(minutes=60), {}),
        ("return", T0 + timedelta(minutes=70), {}),
    ])
    assert case.status == "dispatched" and case.stage == "handle"
    assert case.rework_count == 1
    assert case.returned_at == case.first_returned_at == T0 + timedelta(minutes=70)
    assert case.stage_deadline == case.deadline == T0 + timedelta(minutes=130)
    case = apply_event(case, event("feedback", T0 + timedelta(minutes=100)), rules)
    case = apply_event(case, event("return", T0 + timedelta(minutes=110)), rules)
    assert case.rework_count == 2 and case.first_returned_at == T0 + timedelta(minutes=70)
    assert case.dispatched_at == T0 + timedelta(minutes=10)  # the first dispatch is kept
    assert case.last_dispatched_at == T0 + timedelta(minutes=110)


def test_on_the_spot_handling_closes_a_reported_case(rules):
    case = play(rules, [REPORT, ("close", T0 + timedelta(minutes=20), {})])
    assert case.status == "closed" and case.self_handled
    assert case.registered_at == case.handled_at == case.closed_at == T0 + timedelta(minutes=20)
    assert case.deadline is None


def test_reject_makes_the_case_invalid(rules):
    case = play(rules, [REPORT, ("reject", T0 + timedelta(minutes=3), {})])
    assert case.status == "invalid" and case.invalid_at == T0 + timedelta(minutes=3)
    with pytest.raises(IllegalTransition, match="invalid → registered"):
        apply_event(case, event("register", T0 + timedelta(minutes=4)), rules)


def test_working_calendar_deadlines_skip_nights_and_weekends(rules):
    friday_evening = local(2026, 11, 27, 17, 0)
    case = apply_event(None, event("report", friday_evening, grid="G1", category="X0102", source="hotline"), rules)
    # 1 working hour: 30 minutes on Friday until 17:30, the rest Monday from 08:30.
    assert case.register_deadline == local(2026, 11, 30, 9, 0)


def test_grade_override_takes_that_grades_limits(rules):
    case = apply_event(None, event("report", T0, grid="G1", category="X0102", source="hotline", grade="A"), rules)
    assert case.grade == "A"
    assert case.register_deadline == T0 + timedelta(minutes=10)  # A limits, not the category's C


def test_explicit_deadline_on_dispatch_wins(rules):
    case = play(rules, [REPORT, ("register", T0 + timedelta(minutes=1), {})])
    deadline = T0 + timedelta(hours=6)
    case = apply_event(case, event("dispatch", T0 + timedelta(minutes=2), dept="CGJ", deadline=deadline), rules)
    assert case.deadline == deadline and case.dept == "CGJ"
    assert case.stage_due_soon_at == T0 + timedelta(minutes=2) + (deadline - T0 - timedelta(minutes=2)) * 0.8


def test_dispatch_without_department_is_refused(rules):
    case = play(rules, [REPORT, ("register", T0 + timedelta(minutes=1), {})])
    with pytest.raises(ValueError, match="department"):
        apply_event(case, event("dispatch", T0 + timedelta(minutes=2)), rules)


def test_report_needs_a_detail_class_and_a_grid(rules):
    with pytest.raises(ValueError, match="detail class"):
        apply_event(None, event("report", T0, grid="G1", category="X01"), rules)
    with pytest.raises(ValueError, match="grid"):
        apply_event(None, event("report", T0, category="X0101"), rules)


def test_evaluation_needs_a_known_satisfaction(rules):
    case = play(rules, [REPORT, ("close", T0 + timedelta(minutes=5), {})])
    with pytest.raises(ValueError, match="satisfaction"):
        apply_event(case, event("evaluate", T0 + timedelta(hours=1), satisfaction="meh"), rules)


def test_a_second_report_of_the_same_case_is_illegal(rules):
    case = play(rules, [REPORT])
    with pytest.raises(IllegalTransition, match="reported → reported"):
        apply_event(case, event("report", T0, grid="G1", category="X0101"), rules)


# ---------------------------------------------------------------- the centre's interventions

DISPATCHED = [REPORT, ("register", T0 + timedelta(minutes=5), {}), ("dispatch", T0 + timedelta(minutes=10), {"dept": "SWJ"})]


def test_a_re_dispatch_gives_the_new_department_its_own_time_and_keeps_the_first_dispatch(rules):
    first = play(rules, DISPATCHED)
    case = apply_event(first, event("dispatch", T0 + timedelta(minutes=40), dept="CGJ"), rules)
    assert (case.status, case.dept, case.redispatch_count) == ("dispatched", "CGJ", 1)
    assert case.dispatched_at == T0 + timedelta(minutes=10)  # counted dispatched once
    assert case.last_dispatched_at == case.stage_started_at == T0 + timedelta(minutes=40)
    assert case.deadline == case.stage_deadline == T0 + timedelta(minutes=160)  # 2 h from the re-dispatch
    assert case_version(case) > case_version(first)
    with pytest.raises(ValueError, match="already dispatched to CGJ"):
        apply_event(case, event("dispatch", T0 + timedelta(minutes=50), dept="CGJ"), rules)


def test_a_decline_sends_the_case_back_to_the_centre_with_a_fresh_dispatch_stage(rules):
    first = play(rules, DISPATCHED)
    case = apply_event(first, event("decline", T0 + timedelta(minutes=30), dept="SWJ", note="不属于本部门"), rules)
    assert (case.status, case.dept, case.deadline, case.decline_count) == ("registered", None, None, 1)
    assert case.stage == "dispatch" and case.stage_deadline == T0 + timedelta(minutes=40)  # the 10-minute dispatch limit again
    assert case_version(case) > case_version(first)  # though its status steps back
    again = apply_event(case, event("dispatch", T0 + timedelta(minutes=35), dept="CGJ"), rules)
    assert again.dispatched_at == T0 + timedelta(minutes=10) and again.dept == "CGJ" and again.redispatch_count == 0
    with pytest.raises(ValueError, match="CGJ cannot decline a case dispatched to SWJ"):
        apply_event(first, event("decline", T0 + timedelta(minutes=30), dept="CGJ", note="x"), rules)


def test_an_extension_moves_the_deadline_that_on_time_is_judged_against(rules):
    first = play(rules, DISPATCHED)
    later = T0 + timedelta(hours=6)
    case = apply_event(first, event("extend", T0 + timedelta(minutes=60), deadline=later, note="等待配件"), rules)
    assert (case.deadline, case.stage_deadline, case.extension_count, case.status) == (later, later, 1, "dispatched")
    assert case.stage_started_at == first.stage_started_at
    assert case.stage_due_soon_at == first.stage_started_at + (later - first.stage_started_at) * 0.8
    with pytest.raises(ValueError, match="later than the current one"):
        apply_event(case, event("extend", T0 + timedelta(minutes=70), deadline=later, note="again"), rules)


@pytest.mark.parametrize("steps", [DISPATCHED[:1], DISPATCHED[:2], DISPATCHED, DISPATCHED + [("feedback", T0 + timedelta(minutes=50), {})]])
def test_supervision_changes_no_stage_and_counts(rules, steps):
    before = play(rules, steps)
    case = apply_event(before, event("supervise", T0 + timedelta(minutes=55), note="请加快处置"), rules)
    assert (case.status, case.stage, case.stage_deadline, case.deadline) == (before.status, before.stage, before.stage_deadline, before.deadline)
    assert case.supervise_count == 1 and case.supervised_at == T0 + timedelta(minutes=55)
    again = apply_event(case, event("supervise", T0 + timedelta(minutes=58), note="再次督办"), rules)
    assert again.supervise_count == 2 and again.supervised_at == case.supervised_at
    assert case_version(before) < case_version(case) < case_version(again)


def test_a_closed_case_cannot_be_supervised(rules):
    case = play(rules, [REPORT, ("close", T0 + timedelta(minutes=5), {})])
    with pytest.raises(IllegalTransition, match=r"closed → closed \(action 'supervise'\)"):
        apply_event(case, event("supervise", T0 + timedelta(minutes=6), note="x"), rules)
