"""The deadline watcher: alerts when an open case enters due-soon, overdue or escalation.

The lock holder also trims feed entries every consumer group has consumed, so the streams
do not grow without end. One alert per change of a case's stage state goes to ``gridops:alerts``; when the case moves
on (next stage, closed) a ``cleared`` alert follows. A case overdue by more than
``escalate_multiple`` times its stage limit escalates. Several consumers may run the
watcher: a short Redis lock lets one of them tick at a time.
"""
from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import select

from data_feeds import schema
from data_feeds.case_store import case_from_row
from data_feeds.feed_status import trim_consumed
from data_feeds.keys import Keys
from data_feeds.redis_client import text
from gridrules.config import DomainConfig
from gridrules.limits import stage_state

WATCH_EVERY_S = 10.0
STREAM_KEEP_S = 3600.0  # consumed feed entries stay this long for inspection, then are trimmed
ALERTS_MAX_LENGTH = 20_000


def alert_state(case, now: datetime, escalate_multiple: float) -> str:
    """ok, due_soon, overdue or escalated, for the case's current stage."""
    state = stage_state(now, case.stage_deadline, case.stage_due_soon_at)
    if state == "overdue" and case.stage_started_at is not None:
        allowed = (case.stage_deadline - case.stage_started_at).total_seconds()
        if allowed > 0 and (now - case.stage_started_at).total_seconds() > escalate_multiple * allowed:
            return "escalated"
    return state


def alert_fields(case, state: str, now: datetime) -> dict:
    late = (now - case.stage_deadline).total_seconds() if case.stage_deadline else 0.0
    return {
        "type": state, "case_id": case.case_id, "stage": case.stage or "", "grade": case.grade, "dept": case.dept or "",
        "grid": case.grid, "category": case.category, "status": case.status,
        "deadline": case.stage_deadline.isoformat() if case.stage_deadline else "",
        "late_seconds": f"{late:.0f}", "at": now.isoformat(),
    }


class DeadlineWatcher:
    def __init__(self, engine, redis_client, keys: Keys, config: DomainConfig, every_s: float = WATCH_EVERY_S):
        self.engine = engine
        self.redis = redis_client
        self.keys = keys
        self.config = config
        self.every_s = every_s
        self._last = 0.0

    def tick_if_due(self, now: datetime) -> list[dict]:
        if time.monotonic() - self._last < self.every_s:
            return []
        self._last = time.monotonic()
        if not self.redis.set(self.keys.watcher_lock, "1", nx=True, px=int(self.every_s * 1000 * 0.9)):
            return []  # another consumer ticked within this interval
        return self.tick(now)

    def tick(self, now: datetime) -> list[dict]:
        emitted = self.check_deadlines(now)
        for stream in (self.keys.case_events, self.keys.patrol_gps):
            trim_consumed(self.redis, stream, STREAM_KEEP_S, now)
        return emitted

    def check_deadlines(self, now: datetime) -> list[dict]:
        """Compare every open case's stage state with the last alerted one; emit the changes."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(schema.cases).where(schema.cases.c.is_open.is_(True))).mappings().all()
        current = {}
        cases = {}
        for row in rows:
            case = case_from_row(row)
            state = alert_state(case, now, self.config.escalate_multiple)
            if state != "ok":
                current[case.case_id] = f"{case.stage}:{state}"
                cases[case.case_id] = (case, state)
        previous = {text(k): text(v) for k, v in self.redis.hgetall(self.keys.alert_state).items()}
        emitted = []
        pipe = self.redis.pipeline(transaction=True)
        for case_id, key in current.items():
            if previous.get(case_id) != key:
                case, state = cases[case_id]
                fields = alert_fields(case, state, now)
                pipe.xadd(self.keys.alerts, fields, maxlen=ALERTS_MAX_LENGTH, approximate=True)
                pipe.hset(self.keys.alert_state, case_id, key)
                emitted.append(fields)
        for case_id, key in previous.items():
            if case_id not in current:
                fields = {"type": "cleared", "case_id": case_id, "was": key, "at": now.isoformat()}
                pipe.xadd(self.keys.alerts, fields, maxlen=ALERTS_MAX_LENGTH, approximate=True)
                pipe.hdel(self.keys.alert_state, case_id)
                emitted.append(fields)
        if emitted:
            pipe.xadd(self.keys.changes, {"kind": "alerts", "count": str(len(emitted))}, maxlen=5000, approximate=True)
        pipe.execute()
        return emitted

