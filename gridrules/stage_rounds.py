"""A case's story as stages: each time it entered a timed stage of the six-step loop, when it
left it, its deadline, and the time it took against its limit, in the limit's own unit.

A stage is entered again on rework (a returned case is handled and verified once more): every
entry is a round of its own. Rework does not buy time: every handling round answers to the
case's committed deadline, as the lifecycle rules say; a verification round other than the
last is judged against the limit from its own start.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridrules.limits import STAGE_OF_STATUS, STAGE_TABLE, Limit, StageLimits, add_limit, elapsed_amount
from gridrules.workcalendar import WorkCalendar

DEADLINE_FIELD = {stage.name: stage.deadline_field for stage in STAGE_TABLE}


@dataclass(frozen=True)
class StageRound:
    stage: str
    started_at: datetime
    ended_at: datetime | None  # None: the case is in this stage now
    deadline: datetime | None
    limit: Limit | None
    calendar_kind: str
    elapsed: float | None  # from the start to the end (or now), in the limit's unit
    late_by: float | None  # past the deadline at the end (or now), in the limit's unit; None when on time

    @property
    def running(self) -> bool:
        return self.ended_at is None


def stage_rounds(events: list[dict], deadlines: dict, limits: StageLimits | None, calendar: WorkCalendar, now: datetime) -> list[StageRound]:
    """The rounds of ``events`` (dicts with ``ts`` and ``to_status``, in time order, ``ts``
    aware); ``deadlines`` holds the case's deadline fields (``register_deadline`` …, aware or
    None); ``limits`` the stage limits the lifecycle applies to the case (None: unknown)."""
    entered: list[tuple[str, datetime, datetime | None]] = []  # (stage, started, ended)
    for event in events:
        if entered and entered[-1][2] is None:
            stage, started, _ = entered[-1]
            entered[-1] = (stage, started, event["ts"])
        stage = STAGE_OF_STATUS.get(event["to_status"])
        if stage is not None:
            entered.append((stage, event["ts"], None))
    last_of = {stage: index for index, (stage, _, _) in enumerate(entered)}
    rounds = []
    for index, (stage, started, ended) in enumerate(entered):
        limit = limits.for_stage(stage) if limits is not None else None
        kind = limits.calendar if limits is not None else "natural"
        deadline = deadlines.get(DEADLINE_FIELD[stage])
        if (deadline is None or (stage == "verify" and index != last_of[stage])) and limit is not None:
            deadline = add_limit(started, limit, kind, calendar)
        until = ended or now
        elapsed = late_by = None
        if limit is not None:
            elapsed = elapsed_amount(started, until, limit, kind, calendar)
            if deadline is not None and until > deadline:
                late_by = elapsed_amount(deadline, until, limit, kind, calendar)
        rounds.append(StageRound(stage, started, ended, deadline, limit, kind, elapsed, late_by))
    return rounds
