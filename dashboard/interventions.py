"""The centre's actions on a case from the screens. A 督办 (supervision) is published on the
case stream like any other event, so the consumer validates, applies and records it in the
one place every transition goes through; the screen then waits, briefly, to show it applied."""
from __future__ import annotations

import time
import uuid
from datetime import datetime

from sqlalchemy import select

from dashboard.context import AppContext
from data_feeds import accounts, queries, schema
from data_feeds.feed_contract import MAX_FIELD_CHARS, case_message, note_text
from data_feeds.keys import Keys
from gridrules.access import Principal
from gridrules.lifecycle import CaseEvent

APPLIED_WAIT_S = 6.0  # how long the operator's click waits to see the consumer apply it
APPLIED_POLL_S = 0.2


class NoteNeeded(ValueError):
    """A supervision without words: the department must be told what is pressed for."""


def supervise(ctx: AppContext, principal: Principal, case_id: str, note: object, remote: str | None, now: datetime) -> str | None:
    """Publish a supervision of an open case within the caller's scope; returns its event id
    (None for a case unknown, closed or outside the scope). Audited as ``case.supervise``."""
    principal.require("command")
    text = note_text(note)[:MAX_FIELD_CHARS]
    if not text:
        raise NoteNeeded("a supervision needs a note")
    row = queries.case_detail(ctx.engine, str(case_id or "")[:schema.cases.c.id.type.length], principal.scope)
    if row is None or not row.get("is_open"):
        return None
    event = CaseEvent(event_id=f"supervise-{uuid.uuid4().hex}", case_id=row["id"], action="supervise", ts=now, actor=principal.name, note=text)
    ctx.redis.xadd(Keys(ctx.settings.prefix).case_events, case_message(event, ctx.settings.tz))
    accounts.audit(ctx.engine, principal.name, "case.supervise", row["id"], {"note": text, "event": event.event_id}, remote)
    return event.event_id


def applied(ctx: AppContext, event_id: str, wait_s: float = APPLIED_WAIT_S) -> bool:
    """Whether the consumer has applied ``event_id``, waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    e = schema.case_events.c
    while True:
        with ctx.engine.connect() as connection:
            if connection.execute(select(e.id).where(e.event_id == event_id)).first() is not None:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(APPLIED_POLL_S)
