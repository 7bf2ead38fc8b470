"""Cases and their events in the grid database: rows ↔ ``Case`` objects, batch reads and writes."""
from __future__ import annotations

import json
from datetime import datetime, tzinfo

from sqlalchemy import bindparam, select

from data_feeds import db, rollups, schema
from gridrules.lifecycle import OPEN_STATUSES, Case, CaseEvent

CASE_FIELDS = tuple(Case.__dataclass_fields__)


def case_row(case: Case) -> dict:
    """The ``cases`` table row of a case (times as naive UTC)."""
    row = {name: getattr(case, name) for name in CASE_FIELDS}
    row["id"] = row.pop("case_id")
    for name, value in row.items():
        if isinstance(value, datetime):
            row[name] = db.to_db_time(value)
    row["is_open"] = case.status in OPEN_STATUSES
    return row


def case_from_row(row) -> Case:
    """A ``Case`` from a ``cases`` row (times back to aware UTC)."""
    values = {}
    for name in CASE_FIELDS:
        value = row["id"] if name == "case_id" else row[name]
        values[name] = db.from_db_time(value) if isinstance(value, datetime) else value
    for name in ("rework_count", "supervise_count", "redispatch_count", "decline_count", "extension_count"):
        values[name] = values[name] or 0
    values["self_handled"] = bool(values["self_handled"])
    return Case(**values)


def load_cases_by_id(connection, case_ids, lock: bool = False) -> dict[str, Case]:
    """The stored cases among ``case_ids``; ``lock`` takes row locks where the database has them."""
    result = {}
    ids = sorted(set(case_ids))
    for start in range(0, len(ids), 500):
        statement = select(schema.cases).where(schema.cases.c.id.in_(ids[start : start + 500])).order_by(schema.cases.c.id)
        if lock:
            statement = statement.with_for_update()
        for row in connection.execute(statement).mappings():
            result[row["id"]] = case_from_row(row)
    return result


def save_cases(connection, cases: list[Case], stored: dict[str, Case], tz: tzinfo) -> None:
    """Insert new cases and update stored ones (``stored``: as they were read), and move the
    rollups from the one to the other, in the caller's transaction."""
    new_rows = [case_row(case) for case in cases if case.case_id not in stored]
    old_rows = [case_row(case) for case in cases if case.case_id in stored]
    if new_rows:
        connection.execute(schema.cases.insert(), new_rows)
    if old_rows:
        columns = [name for name in old_rows[0] if name != "id"]
        statement = schema.cases.update().where(schema.cases.c.id == bindparam("_id")).values({name: bindparam(f"_{name}") for name in columns})
        connection.execute(statement, [{"_id": row["id"], **{f"_{name}": row[name] for name in columns}} for row in old_rows])
    before = [case_row(stored[case.case_id]) for case in cases if case.case_id in stored]
    rollups.apply_changes(connection, before, new_rows + old_rows, tz)


def event_row(event: CaseEvent, before: Case | None, after: Case, received_at: datetime) -> dict:
    """The ``case_events`` row of an applied event. Its ``dept`` is the department the event
    concerns: the one dispatched to, or, for an intervention, the one it is counted against
    (a re-dispatch: the department the case was taken from, the new one in ``detail``)."""
    dept, detail = event.dept, {}
    if event.note:
        detail["note"] = event.note
    if event.action in ("supervise", "extend", "decline"):
        dept = before.dept
    if event.action == "dispatch" and before.status == "dispatched":
        dept, detail["to_dept"] = before.dept, after.dept
    if event.action == "extend":
        detail["previous_deadline"] = before.deadline.isoformat() if before.deadline else None
        detail["deadline"] = after.deadline.isoformat()
    return {
        "event_id": event.event_id,
        "case_id": event.case_id,
        "action": event.action,
        "ts": db.to_db_time(event.ts),
        "actor": event.actor or "",
        "from_status": before.status if before else None,
        "to_status": after.status,
        "dept": dept,
        "detail": json.dumps(detail, ensure_ascii=False) if detail else None,
        "received_at": db.to_db_time(received_at),
    }


def known_event_ids(connection, event_ids) -> set[str]:
    """Which of ``event_ids`` are already applied or parked (the idempotency records)."""
    ids = sorted(set(event_ids))
    known = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        known.update(connection.execute(select(schema.case_events.c.event_id).where(schema.case_events.c.event_id.in_(chunk))).scalars())
        known.update(connection.execute(select(schema.parked_events.c.event_id).where(schema.parked_events.c.event_id.in_(chunk))).scalars())
    return known
