"""The case lifecycle (六步闭环) as a state machine, and how each event changes a case.

    reported → registered → dispatched → handled → closed → evaluated
    reported → invalid            (不予立案: reject)
    handled  → dispatched         (返工: verification failed, return)
    reported → closed             (自处置: solved on the spot by the grid)

and the centre's interventions, which keep the loop where it is or step it back:

    dispatched → dispatched       (改派: re-dispatch to another department; its clock starts, the first's stops)
    dispatched → registered       (退单: the department declines a case as not its own; the centre re-routes it)
    dispatched → dispatched       (延期: an approved later handling deadline)
    any open   → the same         (督办: the centre presses the department; no stage changes)

Every other transition is an error naming both states. ``apply_event`` is pure: it takes
a case (or ``None``) and an event and returns the new case with its timestamps and stage
deadlines, so the feed consumer, the demo generator and the tests share one rule book.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from gridrules.limits import StageLimits, add_limit
from gridrules.workcalendar import WorkCalendar

ACTIONS = ("report", "register", "reject", "dispatch", "feedback", "return", "close", "evaluate", "supervise", "decline", "extend")
# Actions that carry an operator's words (the supervision's note, the decline's or extension's reason).
NOTE_ACTIONS = ("supervise", "decline", "extend")
STATUSES = ("reported", "registered", "dispatched", "handled", "closed", "evaluated", "invalid")
OPEN_STATUSES = ("reported", "registered", "dispatched", "handled")
FINAL_STATUSES = ("closed", "evaluated", "invalid")
# How far along the loop a status is; every transition but rework moves a case up.
STATUS_RANK = {"reported": 0, "registered": 1, "dispatched": 2, "handled": 3, "closed": 4, "evaluated": 5, "invalid": 5}
GRADES = ("A", "B", "C")
SOURCES = ("patrol", "hotline", "police", "wechat", "video", "leader")
SATISFACTION = ("satisfied", "basic", "unsatisfied")

TRANSITIONS: Mapping[tuple[str | None, str], str] = {
    (None, "report"): "reported",
    ("reported", "register"): "registered",
    ("reported", "reject"): "invalid",
    ("reported", "close"): "closed",
    ("registered", "dispatch"): "dispatched",
    ("dispatched", "feedback"): "handled",
    ("handled", "return"): "dispatched",
    ("handled", "close"): "closed",
    ("closed", "evaluate"): "evaluated",
    ("dispatched", "dispatch"): "dispatched",
    ("dispatched", "decline"): "registered",
    ("dispatched", "extend"): "dispatched",
    **{(status, "supervise"): status for status in OPEN_STATUSES},
}

# The state each action leads to, to name the target of an illegal transition.
ACTION_TARGET = {action: target for (_, action), target in TRANSITIONS.items()}



class IllegalTransition(ValueError):
    """An event the lifecycle does not allow; the message names both states."""

    def __init__(self, from_state: str | None, action: str):
        self.from_state = from_state
        self.action = action
        self.to_state = (from_state or "?") if action == "supervise" else ACTION_TARGET.get(action, "?")
        source = from_state or "(no case)"
        super().__init__(f"illegal transition {source} → {self.to_state} (action {action!r})")


def next_state(state: str | None, action: str) -> str:
    """The state after ``action``; raises IllegalTransition for anything the loop forbids."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


@dataclass(frozen=True)
class Category:
    """A class of the event catalogue; detail classes carry a department, grade and limits."""

    code: str
    name: str
    parent: str | None
    level: int
    dept: str | None = None
    grade: str | None = None
    limits: StageLimits | None = None
    name_en: str | None = None

    @property
    def is_detail(self) -> bool:
        return self.limits is not None


@dataclass(frozen=True)
class Rules:
    """What applying an event needs to know: the catalogue, the calendar, grade limits."""

    categories: Mapping[str, Category]
    calendar: WorkCalendar
    grade_limits: Mapping[str, StageLimits]
    due_soon_fraction: float = 0.8

    def limits_for(self, category: Category, grade: str) -> StageLimits:
        """The category's own limits, or its grade's when an event overrides the grade."""
        if grade == category.grade or grade not in self.grade_limits:
            return category.limits
        return self.grade_limits[grade]


@dataclass(frozen=True)
class CaseEvent:
    """One transition as it arrives on the feed, already validated and typed."""

    event_id: str
    case_id: str
    action: str
    ts: datetime
    actor: str = ""
    grid: str | None = None
    category: str | None = None
    lat: float | None = None
    lon: float | None = None
    source: str | None = None
    grade: str | None = None
    dept: str | None = None
    deadline: datetime | None = None
    satisfaction: str | None = None
    description: str | None = None
    reporter: str | None = None
    contact: str | None = None
    worker: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Case:
    """A case as the grid database stores it: its state, every stage time and deadline."""

    case_id: str
    status: str
    grid: str
    category: str
    dept: str | None
    grade: str
    source: str
    reported_at: datetime
    updated_at: datetime
    lat: float | None = None
    lon: float | None = None
    description: str | None = None
    reporter: str | None = None
    contact: str | None = None
    worker: str | None = None
    registered_at: datetime | None = None
    invalid_at: datetime | None = None
    dispatched_at: datetime | None = None  # first dispatch
    last_dispatched_at: datetime | None = None
    handled_at: datetime | None = None  # latest feedback
    closed_at: datetime | None = None
    evaluated_at: datetime | None = None
    first_returned_at: datetime | None = None
    returned_at: datetime | None = None  # latest return (rework)
    register_deadline: datetime | None = None
    dispatch_deadline: datetime | None = None
    deadline: datetime | None = None  # the committed handling deadline, set at first dispatch
    verify_deadline: datetime | None = None
    stage: str | None = None
    stage_started_at: datetime | None = None
    stage_deadline: datetime | None = None
    stage_due_soon_at: datetime | None = None
    rework_count: int = 0
    self_handled: bool = False
    satisfaction: str | None = None
    supervised_at: datetime | None = None  # first 督办
    supervise_count: int = 0
    redispatch_count: int = 0
    decline_count: int = 0
    extension_count: int = 0

    @property
    def interventions(self) -> int:
        return self.supervise_count + self.redispatch_count + self.decline_count + self.extension_count


def case_version(case: Case) -> int:
    """A number that grows with every transition of a case, so that a copy of its state can
    tell a newer one from an older one arriving late.

    Every transition raises the status's rank (``STATUS_RANK``) except rework (handled →
    dispatched), which lowers the rank by one and raises ``rework_count``, and the centre's
    interventions, which keep or lower the rank and raise their own count:
    version = 8 × (rework_count + interventions) + rank.
    """
    return 8 * (case.rework_count + case.interventions) + STATUS_RANK[case.status]


def apply_event(case: Case | None, event: CaseEvent, rules: Rules) -> Case:
    """Return the case after ``event``; raise IllegalTransition or ValueError if it cannot apply."""
    status = next_state(case.status if case else None, event.action)
    if event.action == "report":
        return _report(event, rules)
    if event.case_id != case.case_id:
        raise ValueError(f"event for case {event.case_id!r} applied to case {case.case_id!r}")
    ts = event.ts
    changes: dict = {"status": status, "updated_at": max(ts, case.updated_at)}
    category = rules.categories[case.category]
    grade = event.grade or case.grade
    limits = rules.limits_for(category, grade)
    if event.action == "register":
        changes.update(registered_at=ts, grade=grade, dispatch_deadline=add_limit(ts, limits.dispatch, limits.calendar, rules.calendar))
        changes.update(_stage("dispatch", ts, changes["dispatch_deadline"], limits, rules))
    elif event.action == "reject":
        changes.update(invalid_at=ts, **_no_stage())
    elif event.action == "dispatch":
        if not event.dept:
            raise ValueError("dispatch needs a department (dept)")
        if case.status == "dispatched" and event.dept == case.dept:
            raise ValueError(f"case is already dispatched to {case.dept}: a re-dispatch names another department")
        # A re-dispatch (改派) gives the new department its own time; the first's clock stops.
        deadline = event.deadline or add_limit(ts, limits.handle, limits.calendar, rules.calendar)
        changes.update(dept=event.dept, dispatched_at=case.dispatched_at or ts, last_dispatched_at=ts, deadline=deadline)
        changes.update(_stage("handle", ts, deadline, limits, rules, explicit=event.deadline is not None))
        if case.status == "dispatched":
            changes.update(redispatch_count=case.redispatch_count + 1)
    elif event.action == "decline":
        if event.dept and event.dept != case.dept:
            raise ValueError(f"{event.dept} cannot decline a case dispatched to {case.dept}")
        # Back to the centre, whose routing it counts against: a fresh dispatch stage, no department.
        dispatch_deadline = add_limit(ts, limits.dispatch, limits.calendar, rules.calendar)
        changes.update(dept=None, deadline=None, dispatch_deadline=dispatch_deadline, decline_count=case.decline_count + 1)
        changes.update(_stage("dispatch", ts, dispatch_deadline, limits, rules))
    elif event.action == "extend":
        if event.deadline is None or (case.deadline is not None and event.deadline <= case.deadline):
            raise ValueError("an extension needs a deadline later than the current one")
        changes.update(deadline=event.deadline, extension_count=case.extension_count + 1)
        changes.update(_stage("handle", case.stage_started_at or ts, event.deadline, limits, rules, explicit=True))
    elif event.action == "supervise":
        changes.update(supervised_at=case.supervised_at or ts, supervise_count=case.supervise_count + 1)
    elif event.action == "feedback":
        verify_deadline = add_limit(ts, limits.verify, limits.calendar, rules.calendar)
        changes.update(handled_at=ts, verify_deadline=verify_deadline)
        changes.update(_stage("verify", ts, verify_deadline, limits, rules))
    elif event.action == "return":
        # Rework does not buy time: the handle stage keeps the case's committed deadline.
        changes.update(
            returned_at=ts,
            first_returned_at=case.first_returned_at or ts,
            last_dispatched_at=ts,
            rework_count=case.rework_count + 1,
        )
        changes.update(_stage("handle", ts, case.deadline, limits, rules, explicit=True))
    elif event.action == "close":
        changes.update(closed_at=ts, **_no_stage())
        if case.status == "reported":
            changes.update(self_handled=True, registered_at=ts, handled_at=ts)
    elif event.action == "evaluate":
        if event.satisfaction not in SATISFACTION:
            raise ValueError(f"satisfaction {event.satisfaction!r} is not one of {', '.join(SATISFACTION)}")
        changes.update(evaluated_at=ts, satisfaction=event.satisfaction)
    return replace(case, **changes)


def _report(event: CaseEvent, rules: Rules) -> Case:
    category = rules.categories.get(event.category or "")
    if category is None or not category.is_detail:
        raise ValueError(f"category {event.category!r} is not a detail class of the catalogue")
    if not event.grid:
        raise ValueError("report needs a basic grid (grid) or a position to locate it")
    grade = event.grade or category.grade
    if grade not in GRADES:
        raise ValueError(f"grade {grade!r} is not one of A, B, C")
    limits = rules.limits_for(category, grade)
    ts = event.ts
    register_deadline = add_limit(ts, limits.register, limits.calendar, rules.calendar)
    return Case(
        case_id=event.case_id,
        status="reported",
        grid=event.grid,
        category=category.code,
        dept=category.dept,
        grade=grade,
        source=event.source or "patrol",
        reported_at=ts,
        updated_at=ts,
        lat=event.lat,
        lon=event.lon,
        description=event.description,
        reporter=event.reporter,
        contact=event.contact,
        worker=event.worker,
        register_deadline=register_deadline,
        **_stage("register", ts, register_deadline, limits, rules),
    )


def _stage(stage: str, started: datetime, deadline: datetime, limits: StageLimits, rules: Rules, explicit: bool = False) -> dict:
    if explicit:
        # A deadline given by the dispatcher (or kept through rework): warn at the same
        # fraction of the time actually granted.
        due_soon = started + (deadline - started) * rules.due_soon_fraction if deadline > started else deadline
    else:
        due_soon = add_limit(started, limits.for_stage(stage), limits.calendar, rules.calendar, rules.due_soon_fraction)
    return {"stage": stage, "stage_started_at": started, "stage_deadline": deadline, "stage_due_soon_at": due_soon}


def _no_stage() -> dict:
    return {"stage": None, "stage_started_at": None, "stage_deadline": None, "stage_due_soon_at": None}
