"""The feed consumer: Redis streams → grid database and live state, exactly once in effect.

For each batch read through the consumer group:

1. validate every message (``feed_contract``); refused ones become dead letters;
2. in one database transaction: skip event ids already applied or parked (the idempotency
   records), apply case events through the lifecycle, park events that arrived before the
   transition they follow, extend patrol tracks from the committed track state;
3. commit, and only then, in one Redis MULTI: add the dead letters, acknowledge the
   batch, count metrics and update the live state.

A crash before the commit loses nothing (the messages stay pending and are read again or
claimed by another consumer with XAUTOCLAIM); a crash after it double-counts nothing (the
replayed events are duplicates, the replayed pings are not newer than the track state).

Out-of-order events across channels: an event whose case is *behind* it (a ``dispatch``
for a case still ``reported``, any event for a case not reported yet) is parked in the
database and applied as soon as the case catches up; after ``park_timeout_s`` it goes to
the dead-letter stream (``out_of_order_timeout`` or ``unknown_case``). An event the case
has already moved past (a ``register`` for a closed case) is dead-lettered at once.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from dashboard.clock import utc_now
from dashboard.domain_config import DomainConfig
from dashboard.lifecycle import OPEN_STATUSES, STATUS_RANK, TRANSITIONS, Case, CaseEvent, IllegalTransition, apply_event, next_state
from dashboard.patrol import advance_tracks
from data_feeds import case_store, db, live_state, patrol_store, schema
from data_feeds.feed_contract import FeedError, Reason, Reference, load_reference, validate_case_event, validate_gps_batch
from data_feeds.keys import Keys
from data_feeds.reference import load_rules
from data_feeds.watcher import DeadlineWatcher

log = logging.getLogger(__name__)

GROUP = "gridops-ingest"
CLOCK_SKEW_S = 300  # an event may be stamped this much before its case's previous transition
RETRIES = 5


@dataclass(frozen=True)
class IngestOptions:
    group: str = GROUP
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch: int = 5000
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    claim_every_s: float = 15.0
    park_timeout_s: float = 600.0
    sweep_every_s: float = 1.0
    reference_refresh_s: float = 60.0
    max_age_days: float = 90.0
    map_crs: str = "gcj02"


@dataclass
class Outcome:
    """What one batch came to; every message ends in exactly one of these."""

    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    late: int = 0
    dead: list = field(default_factory=list)  # (message id, raw fields, FeedError)
    acked: list = field(default_factory=list)
    changes: list = field(default_factory=list)  # (before, after, event) of applied case events
    positions: pd.DataFrame | None = None  # accepted pings
    kept: pd.DataFrame | None = None  # the thinned ones


def _id(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_behind(status: str, action: str) -> bool:
    """Whether the case has not yet reached a state ``action`` applies to (so it may later)."""
    if status not in OPEN_STATUSES:
        return False
    sources = [source for (source, act) in TRANSITIONS if act == action and source is not None]
    return any(STATUS_RANK[source] > STATUS_RANK[status] for source in sources)


class Ingest:
    """One consumer of the group; several share the streams' load."""

    def __init__(self, engine, redis_client: redis.Redis, keys: Keys, config: DomainConfig, options: IngestOptions = IngestOptions()):
        self.engine = engine
        self.redis = redis_client
        self.keys = keys
        self.config = config
        self.tz = config.calendar.tz
        self.options = options
        self.watcher = DeadlineWatcher(engine, redis_client, keys, config)
        self._reference: Reference | None = None
        self._rules = None
        self._ancestors = None
        self._reference_loaded_at = 0.0
        self._last_claim = 0.0
        self._last_sweep = 0.0
        self._own_pending_done = False

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Create the consumer group (reading from the start of each stream) and the live state."""
        for stream in (self.keys.case_events, self.keys.patrol_gps):
            try:
                self.redis.xgroup_create(stream, self.options.group, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
        self.refresh_reference(force=True)
        live_state.rebuild(self.engine, self.redis, self.keys, self.tz, utc_now(), self._ancestors)

    def refresh_reference(self, force: bool = False) -> None:
        """Reload grids, catalogue, departments and workers (imports may add to them)."""
        if force or time.monotonic() - self._reference_loaded_at > self.options.reference_refresh_s:
            self._reference = load_reference(self.engine, self.options.map_crs, self.options.max_age_days)
            self._rules = load_rules(self.engine, self.config)
            self._ancestors = live_state.grid_ancestors(self.engine)
            self._reference_loaded_at = time.monotonic()

    # ------------------------------------------------------------ loop

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        self.setup()
        log.info("consumer %s of group %s reading %s and %s", self.options.consumer, self.options.group, self.keys.case_events, self.keys.patrol_gps)
        while not stop.is_set():
            try:
                self.poll_once()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("Redis unavailable (%s); retrying in 2 s", error)
                time.sleep(2)
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error) and "UNBLOCKED" not in str(error):
                    raise
                # The stream or group was deleted under us (a flush, a manual XGROUP DESTROY): recreate.
                log.warning("stream or consumer group vanished (%s); recreating", error)
                self.setup()

    def poll_once(self, block_ms: int | None = None) -> dict:
        """Read and process one round; returns counts by outcome (for tests and benchmarks)."""
        self.refresh_reference()
        totals = {"applied": 0, "duplicates": 0, "parked": 0, "late": 0, "dead": 0}
        for stream, messages in self._read(block_ms):
            outcome = self.process(stream, messages)
            for name in ("applied", "duplicates", "parked", "late"):
                totals[name] += getattr(outcome, name)
            totals["dead"] += len(outcome.dead)
        now = utc_now()
        if time.monotonic() - self._last_sweep > self.options.sweep_every_s:
            applied, dead = self.revisit_parked(now)
            totals["applied"] += applied
            totals["dead"] += dead
            self._last_sweep = time.monotonic()
        self.watcher.tick_if_due(now)
        return totals

    def _read(self, block_ms: int | None):
        streams = (self.keys.case_events, self.keys.patrol_gps)
        group, consumer = self.options.group, self.options.consumer
        batches = []
        if not self._own_pending_done:
            # After a restart under the same name: what this consumer read but never acknowledged.
            reply = self.redis.xreadgroup(group, consumer, {s: "0" for s in streams}, count=self.options.batch)
            batches = [(_id(stream), entries) for stream, entries in reply or [] if entries]
            if not batches:
                self._own_pending_done = True
            return batches
        if time.monotonic() - self._last_claim > self.options.claim_every_s:
            self._last_claim = time.monotonic()
            for stream in streams:
                claimed = self.redis.xautoclaim(stream, group, consumer, min_idle_time=self.options.claim_idle_ms, start_id="0-0", count=self.options.batch)
                entries = claimed[1] if claimed else []
                if entries:
                    log.info("claimed %d messages of %s left pending by another consumer", len(entries), stream)
                    batches.append((stream, entries))
            if batches:
                return batches
        reply = self.redis.xreadgroup(group, consumer, {s: ">" for s in streams}, count=self.options.batch, block=self.options.block_ms if block_ms is None else block_ms)
        return [(_id(stream), entries) for stream, entries in reply or [] if entries]

    # ------------------------------------------------------------ batches

    def process(self, stream: str, entries) -> Outcome:
        """Process one batch of one stream, retrying the transaction on a write conflict."""
        messages = [(_id(message_id), fields) for message_id, fields in entries]
        deleted = [message_id for message_id, fields in messages if fields is None]
        messages = [(message_id, fields) for message_id, fields in messages if fields is not None]
        work = self._process_cases if stream == self.keys.case_events else self._process_gps
        outcome = _with_retries(lambda: work(messages), f"batch of {len(messages)} from {stream}")
        outcome.acked = [message_id for message_id, _ in messages] + deleted
        self._finish(stream, outcome)
        return outcome

    def _process_cases(self, messages) -> Outcome:
        now = utc_now()
        outcome = Outcome()
        valid: list[tuple[str, dict, CaseEvent]] = []
        for message_id, raw in messages:
            try:
                valid.append((message_id, raw, validate_case_event(raw, self._reference, now)))
            except FeedError as error:
                outcome.dead.append((message_id, raw, error))
        applied = []
        with self.engine.begin() as connection:
            known = case_store.known_event_ids(connection, [event.event_id for _, _, event in valid])
            cases = case_store.load_cases_by_id(connection, {event.case_id for _, _, event in valid}, lock=True)
            stored_ids = set(cases)
            parked = self._load_parked(connection, {event.case_id for _, _, event in valid})
            event_rows, new_parked, unparked = [], [], []
            seen = set()
            for message_id, raw, event in valid:
                if event.event_id in known or event.event_id in seen:
                    outcome.duplicates += 1
                    continue
                seen.add(event.event_id)
                try:
                    result = self._try_apply(cases.get(event.case_id), event)
                except FeedError as error:
                    outcome.dead.append((message_id, raw, error))
                    continue
                if result is None:
                    new_parked.append(self._parked_row(event, raw, message_id, now))
                    parked.setdefault(event.case_id, []).append((event, raw, message_id))
                    outcome.parked += 1
                    continue
                applied.append(self._record(cases, result, event, event_rows, now))
                applied.extend(self._drain_parked(cases, parked, event.case_id, event_rows, unparked, outcome.dead, now))
            outcome.applied = len(applied)
            case_store.save_cases(connection, [cases[case_id] for case_id in {after.case_id for _, after, _ in applied}], stored_ids)
            if event_rows:
                connection.execute(schema.case_events.insert(), event_rows)
            if new_parked:
                connection.execute(schema.parked_events.insert(), new_parked)
            if unparked:
                connection.execute(delete(schema.parked_events).where(schema.parked_events.c.event_id.in_(unparked)))
        outcome.changes = applied
        return outcome

    def _try_apply(self, case: Case | None, event: CaseEvent) -> Case | None:
        """The case after ``event``; None when the event must wait for its case; FeedError when it never fits."""
        if case is None:
            if event.action != "report":
                return None
            return self._apply(None, event)
        if event.ts < case.updated_at - timedelta(seconds=CLOCK_SKEW_S):
            raise FeedError(Reason.BEFORE_PREVIOUS, f"{event.action} at {event.ts.isoformat()} is before the case's previous transition at {case.updated_at.isoformat()}", "ts")
        try:
            next_state(case.status, event.action)
        except IllegalTransition as error:
            if _is_behind(case.status, event.action):
                return None
            raise FeedError(Reason.ILLEGAL_TRANSITION, str(error), "action") from None
        return self._apply(case, event)

    def _apply(self, case: Case | None, event: CaseEvent) -> Case:
        try:
            return apply_event(case, event, self._rules)
        except IllegalTransition as error:
            raise FeedError(Reason.ILLEGAL_TRANSITION, str(error), "action") from None
        except ValueError as error:
            raise FeedError(Reason.BAD_VALUE, str(error)) from None

    def _record(self, cases: dict, after: Case, event: CaseEvent, event_rows: list, now: datetime):
        before = cases.get(event.case_id)
        cases[event.case_id] = after
        event_rows.append(case_store.event_row(event, before.status if before else None, after.status, now))
        return before, after, event

    def _drain_parked(self, cases, parked, case_id, event_rows, unparked, dead, now):
        """Apply the case's parked events that now fit, oldest first, until none does;
        one the case has moved past is dead-lettered with its reason."""
        applied = []
        progress = True
        while progress and parked.get(case_id):
            progress = False
            for item in sorted(parked[case_id], key=lambda entry: entry[0].ts):
                event, raw, source_id = item
                try:
                    result = self._try_apply(cases.get(case_id), event)
                except FeedError as error:
                    dead.append((source_id, raw, error))
                    result = False
                if result is None:
                    continue
                if result is not False:
                    applied.append(self._record(cases, result, event, event_rows, now))
                parked[case_id].remove(item)
                unparked.append(event.event_id)
                progress = True
                break
        return applied

    def _load_parked(self, connection, case_ids) -> dict:
        result: dict = {}
        ids = sorted(case_ids)
        for start in range(0, len(ids), 500):
            rows = connection.execute(select(schema.parked_events).where(schema.parked_events.c.case_id.in_(ids[start : start + 500]))).mappings()
            for row in rows:
                raw = json.loads(row["fields"])
                try:
                    event = validate_case_event(raw, self._reference, utc_now())
                except FeedError:
                    continue  # too old by now: revisit_parked dead-letters it
                result.setdefault(row["case_id"], []).append((event, raw, row["source_id"]))
        return result

    def _parked_row(self, event: CaseEvent, raw, message_id: str, now: datetime) -> dict:
        fields = {_id(k): _id(v) for k, v in raw.items()}
        return {
            "event_id": event.event_id, "case_id": event.case_id, "action": event.action, "ts": db.to_db_time(event.ts),
            "fields": json.dumps(fields, ensure_ascii=False), "source_stream": self.keys.case_events, "source_id": message_id,
            "received_at": db.to_db_time(now),
        }

    def _process_gps(self, messages) -> Outcome:
        now = utc_now()
        raws = [raw for _, raw in messages]
        batch = validate_gps_batch(raws, self._reference, now)
        outcome = Outcome(dead=[(messages[i][0], messages[i][1], error) for i, error in sorted(batch.errors.items())])
        frame = pd.DataFrame({
            "worker": batch.worker, "ts": batch.ts, "lat": batch.lat, "lon": batch.lon,
            "grid": batch.grid, "speed": batch.speed, "heading": batch.heading,
        })
        if frame.empty:
            return outcome
        with self.engine.begin() as connection:
            states = patrol_store.load_states(connection, set(frame["worker"]), lock=True)
            update = advance_tracks(frame, states, self.tz)
            patrol_store.insert_points(connection, update.kept)
            patrol_store.add_to_days(connection, update.summary)
            patrol_store.save_states(connection, update.states)
        outcome.applied = len(update.accepted)
        outcome.late = update.late
        outcome.positions = update.accepted
        outcome.kept = update.kept
        return outcome

    # ------------------------------------------------------------ after the commit

    def _finish(self, stream: str, outcome: Outcome) -> None:
        """Dead letters, acknowledgements, metrics and live state in one Redis transaction."""
        kind = "case" if stream == self.keys.case_events else "gps"
        now = utc_now()
        pipe = self.redis.pipeline(transaction=True)
        for message_id, raw, error in outcome.dead:
            pipe.xadd(self.keys.dead_letter, self.dead_letter_fields(raw, stream, message_id, error, now))
            pipe.hincrby(self.keys.feed_metrics, f"dead:{error.reason}", 1)
        if outcome.acked:
            pipe.xack(stream, self.options.group, *outcome.acked)
            pipe.hincrby(self.keys.feed_metrics, f"consumed:{kind}", len(outcome.acked))
            pipe.hincrby(self.keys.feed_metrics, f"consumer:{self.options.consumer}", len(outcome.acked))
            pipe.set(self.keys.last_message, int(now.timestamp() * 1000))
        for name in ("applied", "duplicates", "parked", "late"):
            if getattr(outcome, name):
                pipe.hincrby(self.keys.feed_metrics, f"{name}:{kind}", getattr(outcome, name))
        live_state.record_case_changes(pipe, self.keys, outcome.changes, self._ancestors, self.tz)
        if outcome.positions is not None:
            live_state.record_positions(pipe, self.keys, outcome.positions, outcome.kept)
        pipe.execute()

    @staticmethod
    def dead_letter_fields(raw, stream: str, message_id: str, error: FeedError, now: datetime) -> dict:
        """The original fields untouched, plus where they came from and why they were refused."""
        fields = dict(raw)
        fields.update({
            "dlq_reason": error.reason, "dlq_detail": error.detail[:500], "dlq_field": error.field or "",
            "dlq_stream": stream, "dlq_id": message_id, "dlq_at": now.isoformat(),
        })
        return fields

    def revisit_parked(self, now: datetime) -> tuple[int, int]:
        """Apply parked events whose case has caught up (its report or predecessor may have
        been applied by another consumer), and dead-letter those past the timeout.
        Returns (applied, dead)."""
        return _with_retries(lambda: self._revisit_parked(now), "revisiting parked events")

    def _revisit_parked(self, now: datetime) -> tuple[int, int]:
        cutoff = db.to_db_time(now - timedelta(seconds=self.options.park_timeout_s))
        outcome = Outcome()
        with self.engine.begin() as connection:
            # SKIP LOCKED: consumers revisiting at the same moment take different events.
            rows = connection.execute(
                select(schema.parked_events).order_by(schema.parked_events.c.ts).limit(self.options.batch).with_for_update(skip_locked=True)
            ).mappings().all()
            if not rows:
                return 0, 0
            cases = case_store.load_cases_by_id(connection, {row["case_id"] for row in rows}, lock=True)
            stored_ids = set(cases)
            parked: dict = {}
            invalid_ids = []
            for row in rows:
                raw = json.loads(row["fields"])
                try:
                    event = validate_case_event(raw, self._reference, now)
                except FeedError as error:  # e.g. too old by now
                    outcome.dead.append((row["source_id"], raw, error))
                    invalid_ids.append(row["event_id"])
                    continue
                parked.setdefault(row["case_id"], []).append((event, raw, row["source_id"]))
            event_rows, unparked, applied = [], [], []
            for case_id in list(parked):
                if case_id in cases:
                    applied.extend(self._drain_parked(cases, parked, case_id, event_rows, unparked, outcome.dead, now))
            expired = {row["event_id"]: row for row in rows if row["received_at"] < cutoff}
            for items in parked.values():
                for event, raw, source_id in items:
                    if event.event_id in expired:
                        case = cases.get(event.case_id)
                        if case is None:
                            error = FeedError(Reason.UNKNOWN_CASE, f"no report of case {event.case_id!r} arrived within {self.options.park_timeout_s:.0f} s", "case_id")
                        else:
                            error = FeedError(Reason.OUT_OF_ORDER_TIMEOUT, f"{event.action} waited {self.options.park_timeout_s:.0f} s for case {event.case_id} (still {case.status})", "action")
                        outcome.dead.append((source_id, raw, error))
            finished = set(unparked) | set(expired) | set(invalid_ids)
            case_store.save_cases(connection, [cases[c] for c in {after.case_id for _, after, _ in applied}], stored_ids)
            if event_rows:
                connection.execute(schema.case_events.insert(), event_rows)
            if finished:
                connection.execute(delete(schema.parked_events).where(schema.parked_events.c.event_id.in_(sorted(finished))))
            outcome.changes = applied
            outcome.applied = len(applied)
            # Redis inside the database transaction: if it fails, the rows stay parked.
            self._finish(self.keys.case_events, outcome)
        return outcome.applied, len(outcome.dead)


def _with_retries(work, what: str):
    """Run a transaction again when it lost a race with another consumer (conflict, deadlock)."""
    for attempt in range(RETRIES):
        try:
            return work()
        except (IntegrityError, DBAPIError) as error:
            if attempt == RETRIES - 1:
                raise
            log.warning("%s conflicted with another consumer (%s); retrying", what, type(error).__name__)
            time.sleep(0.05 * (attempt + 1))


def run_consumer(settings, config: DomainConfig, options: IngestOptions, stop: threading.Event | None = None) -> None:
    """``python app.py ingest``: consume until interrupted; SIGTERM finishes the batch in hand first."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = db.make_engine(settings.database_url, writer=True)
    db.init_db(engine)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30, health_check_interval=30)
    Ingest(engine, client, Keys(settings.prefix), config, options).run(stop)

