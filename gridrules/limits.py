"""Stage time limits (``30m``, ``2h``, ``1d``, ``1wd``) and the deadlines they give.

Units: ``m`` minutes and ``h`` hours count natural or working time as the category's
calendar says; ``d`` is always natural days (24 h); ``wd`` is always working days, one
working day being the calendar's working minutes per day.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridrules.workcalendar import WorkCalendar


@dataclass(frozen=True)
class Stage:
    """One timed stage of the lifecycle: the status a case has during it, the action that ends
    it, and the case's fields for when it started and when it is due."""

    name: str
    status: str
    ended_by: str
    started_field: str
    deadline_field: str


# The four timed stages of the six-step loop, in order — the one table every rule and screen reads.
STAGE_TABLE = (
    Stage("register", "reported", "register", "reported_at", "register_deadline"),
    Stage("dispatch", "registered", "dispatch", "registered_at", "dispatch_deadline"),
    Stage("handle", "dispatched", "feedback", "dispatched_at", "deadline"),
    Stage("verify", "handled", "close", "handled_at", "verify_deadline"),
)
STAGES = tuple(stage.name for stage in STAGE_TABLE)
STAGE_OF_STATUS = {stage.status: stage.name for stage in STAGE_TABLE}  # the stage (and so the limit) of an open status
STAGE_ENDED_BY = {stage.ended_by: stage for stage in STAGE_TABLE}  # the stage an action ends
CALENDAR_KINDS = ("natural", "working")
LIMIT_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|wd)\s*$")


class LimitError(ValueError):
    """A limit or calendar value that cannot be parsed."""


@dataclass(frozen=True)
class Limit:
    """A stage limit as written in the catalogue."""

    amount: float
    unit: str  # m | h | d | wd

    @classmethod
    def parse(cls, text: str) -> Limit:
        match = LIMIT_PATTERN.match(text or "")
        if not match or float(match.group(1)) <= 0:
            raise LimitError(f"{text!r} is not a limit like 30m, 2h, 1d or 1wd")
        return cls(float(match.group(1)), match.group(2))

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount}{self.unit}"


@dataclass(frozen=True)
class StageLimits:
    """The four stage limits of a category (or grade) and the calendar they count in."""

    register: Limit
    dispatch: Limit
    handle: Limit
    verify: Limit
    calendar: str = "natural"

    def __post_init__(self):
        if self.calendar not in CALENDAR_KINDS:
            raise LimitError(f"{self.calendar!r} is not a calendar (natural or working)")

    def for_stage(self, stage: str) -> Limit:
        return getattr(self, stage)

    @classmethod
    def parse(cls, register: str, dispatch: str, handle: str, verify: str, calendar: str) -> StageLimits:
        return cls(Limit.parse(register), Limit.parse(dispatch), Limit.parse(handle), Limit.parse(verify), (calendar or "").strip())


def add_limit(start: datetime, limit: Limit, calendar_kind: str, calendar: WorkCalendar, fraction: float = 1.0) -> datetime:
    """The instant when ``fraction`` of ``limit`` has elapsed since ``start``."""
    if limit.unit == "d":
        return start + timedelta(days=limit.amount * fraction)
    if limit.unit == "wd":
        return calendar.add_working_minutes(start, limit.amount * calendar.minutes_per_day * fraction)
    minutes = limit.amount * (60 if limit.unit == "h" else 1) * fraction
    if calendar_kind == "working":
        return calendar.add_working_minutes(start, minutes)
    return start + timedelta(minutes=minutes)


def elapsed_amount(start: datetime, end: datetime, limit: Limit, calendar_kind: str, calendar: WorkCalendar) -> float:
    """The time from ``start`` to ``end`` in the limit's own unit, counted the way its deadline
    is (``add_limit``): natural days for ``d``, working days for ``wd``, minutes or hours of
    the category's calendar otherwise. Negative when ``end`` is before ``start``."""
    if end < start:
        return -elapsed_amount(end, start, limit, calendar_kind, calendar)
    if limit.unit == "d":
        return (end - start).total_seconds() / 86400
    if limit.unit == "wd":
        return calendar.working_minutes_between(start, end) / calendar.minutes_per_day
    minutes = calendar.working_minutes_between(start, end) if calendar_kind == "working" else (end - start).total_seconds() / 60
    return minutes / (60 if limit.unit == "h" else 1)


def limit_minutes(limit: Limit, calendar: WorkCalendar) -> float:
    """The nominal length of a limit in minutes (working minutes for ``wd``), for display."""
    return {"m": 1, "h": 60, "d": 1440, "wd": calendar.minutes_per_day}[limit.unit] * limit.amount


def stage_state(now: datetime, deadline: datetime | None, due_soon_at: datetime | None) -> str:
    """``ok``, ``due_soon`` (80% of the stage's time used) or ``overdue`` (100% used)."""
    if deadline is None:
        return "ok"
    if now >= deadline:
        return "overdue"
    if due_soon_at is not None and now >= due_soon_at:
        return "due_soon"
    return "ok"
