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

Nothing stops the consumer. An exception while validating or applying one message sends
that message to the dead-letter stream with its reason; a batch that fails as a whole is
applied again message by message to find the one at fault; a message delivered more than
``max_deliveries`` times without being finished (one that crashes consumers) is dead-lettered
as ``poison``. Outages of the database or Redis are waited out with backoff and reported
(``/metrics``, ``/healthz``); the consumer resumes by itself and, through the ingest ledger,
counts every message once as what it was.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError

from data_feeds import case_store, db, ingest_ledger, live_state, partitions, patrol_store, redis_client, rollups, schema
from data_feeds.deadline_watcher import DeadlineWatcher
from data_feeds.feed_contract import FeedError, Reason, Reference, load_reference, unexpected, validate_case_event, validate_gps_batch
from data_feeds.keys import Keys
from data_feeds.outages import Backoff, outage_of
from data_feeds.redis_client import text
from data_feeds.reference import load_rules
from gridrules.clock import utc_now
from gridrules.config import DomainConfig
from gridrules.lifecycle import OPEN_STATUSES, STATUS_RANK, TRANSITIONS, Case, CaseEvent, IllegalTransition, apply_event, next_state
from gridrules.patrol import advance_tracks

log = logging.getLogger(__name__)

GROUP = "gridops-ingest"
CLOCK_SKEW_S = 300  # an event may be stamped this much before its case's previous transition
RETRIES = 5
STATUS_TTL_S = 30  # a consumer that has not said how it is for this long is dead
LOCK_WAIT_S = 10  # SQLite: wait this long for another writer's lock, well inside STATUS_TTL_S, then report an outage
STATUS_EVERY_S = 2.0
FINISHED_MARKER_TTL_S = 86400


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
    patrol_retention_days: float | None = None  # GPS points older than this are dropped (partitions on PostgreSQL)
    map_crs: str = "gcj02"
    max_deliveries: int = 10  # a message read this often without being finished is poison


@dataclass
class Outcome:
    """What messages came to; every message ends in exactly one of these (a message parked
    and applied in the same batch counts in both, as it did both)."""

    applied: list = field(default_factory=list)  # message ids (of a revisit: the parked events' source ids)
    duplicates: list = field(default_factory=list)
    parked: list = field(default_factory=list)
    late: list = field(default_factory=list)
    dead: list = field(default_factory=list)  # (message id, raw fields, FeedError)
    acked: list = field(default_factory=list)
    changes: list = field(default_factory=list)  # (before, after, event) of applied case events
    positions: list = field(default_factory=list)  # frames of accepted pings
    kept: list = field(default_factory=list)  # frames of the thinned ones
    ledger_ids: list = field(default_factory=list)  # the ingest ledger rows of the batch's transactions
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # marks the Redis half as done

    def merge(self, other: Outcome) -> Outcome:
        for name in ("applied", "duplicates", "parked", "late", "dead", "acked", "changes", "positions", "kept", "ledger_ids"):
            getattr(self, name).extend(getattr(other, name))
        return self

    def counts(self) -> dict:
        counts = {name: len(getattr(self, name)) for name in ingest_ledger.OUTCOMES}
        counts["dead"] = len(self.dead)
        return counts

    def ledger_record(self, connection, stream: str, consumer: str, now: datetime) -> None:
        """Write what the batch came to into the ingest ledger, in its transaction."""
        dead = [(message_id, error.reason, error.detail, error.field or "") for message_id, _, error in self.dead]
        by_outcome = {name: getattr(self, name) for name in ingest_ledger.OUTCOMES}
        self.ledger_ids.append(ingest_ledger.record(connection, stream, consumer, by_outcome, dead, now))


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
        self._reference_loaded_at = 0.0
        self._last_claim = 0.0
        self._last_sweep = 0.0
        self._own_pending_done = False
        self._unfinished: tuple[str, Outcome] | None = None  # committed, its Redis half not yet done
        self._finished_ledger: list[int] = []  # ledger rows to delete in the next transaction
        self.health = ConsumerHealth()

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
        with self.engine.begin() as connection:
            ingest_ledger.prune(connection, utc_now())
        live_state.rebuild(self.engine, self.redis, self.keys)
        self._own_pending_done = False

    def refresh_reference(self, force: bool = False) -> None:
        """Reload grids, catalogue, departments and workers (imports may add to them)."""
        if force or time.monotonic() - self._reference_loaded_at > self.options.reference_refresh_s:
            self._reference = load_reference(self.engine, self.options.map_crs, self.options.max_age_days)
            self._rules = load_rules(self.engine, self.config)
            rollups.ensure(self.engine, self.tz)  # after a migration or a grid import that moved grids
            partitions.maintain(self.engine, utc_now(), self.options.patrol_retention_days)
            self._reference_loaded_at = time.monotonic()

    # ------------------------------------------------------------ loop

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop``; wait out outages of the database and Redis, never exit on an error."""
        stop = stop or threading.Event()
        backoff = Backoff()
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    self.setup()
                    ready = True
                    log.info("consumer %s of group %s reading %s and %s", self.options.consumer, self.options.group, self.keys.case_events, self.keys.patrol_gps)
                self.finish_unfinished()
                self.poll_once()
                self.report_health()
                backoff.reset()
            except Exception as error:  # noqa: BLE001 — whatever happens, the centre's feed goes on
                kind = outage_of(error)
                if kind is None and isinstance(error, redis.ResponseError) and ("NOGROUP" in str(error) or "UNBLOCKED" in str(error)):
                    # The stream or group was deleted under us (a flush, a manual XGROUP DESTROY): recreate.
                    log.warning("stream or consumer group vanished (%s); recreating", error)
                    ready = False
                    continue
                if kind == "redis":
                    ready = False  # the group may be new and the live state behind: set up again
                self._own_pending_done = False  # what was in hand is pending: read it again
                self.health.trouble(kind or "error", error)
                self.report_health()
                backoff.wait(stop)
        self.health.leave(self.redis, self.keys, self.options.consumer)

    def finish_unfinished(self) -> None:
        """Do the Redis half of a batch committed before an outage (once: its marker says if it landed)."""
        if self._unfinished is None:
            return
        stream, outcome = self._unfinished
        try:
            self._finish(stream, outcome)
        except Exception as error:
            if outage_of(error):
                raise
            # Something in the live-state part cannot be written: acknowledge and count the
            # batch without it (the next start-up rebuilds the live state from the database).
            log.exception("finishing a batch of %s failed; finishing it without its live-state changes", stream)
            outcome.changes, outcome.positions, outcome.kept = [], [], []
            self._finish(stream, outcome)
        self._unfinished = None

    def report_health(self) -> None:
        """Tell the operators (``/healthz``, ``/metrics``) how this consumer is, at most every few seconds."""
        if not self.health.due():
            return
        try:
            self.health.write(self.redis, self.keys, self.options.consumer)
        except redis.RedisError:
            pass  # Redis down: /healthz says so itself

    def poll_once(self, block_ms: int | None = None) -> dict:
        """Read and process one round; returns counts by outcome (for tests and benchmarks)."""
        self.refresh_reference()
        totals = {"applied": 0, "duplicates": 0, "parked": 0, "late": 0, "dead": 0}
        for stream, messages, recovered in self._read(block_ms):
            outcome = self.process(stream, messages, recovered)
            for name, value in outcome.counts().items():
                totals[name] += value
        now = utc_now()
        if time.monotonic() - self._last_sweep > self.options.sweep_every_s:
            applied, dead = self.revisit_parked(now)
            totals["applied"] += applied
            totals["dead"] += dead
            self._last_sweep = time.monotonic()
        self.watcher.tick_if_due(now)
        self.health.fine(self.redis, self.keys)
        return totals

    def _read(self, block_ms: int | None):
        """Batches as (stream, entries, recovered): recovered ones were delivered before."""
        streams = (self.keys.case_events, self.keys.patrol_gps)
        group, consumer = self.options.group, self.options.consumer
        batches = []
        if not self._own_pending_done:
            # After a restart under the same name, or an outage: what this consumer read but never acknowledged.
            reply = self.redis.xreadgroup(group, consumer, dict.fromkeys(streams, "0"), count=self.options.batch)
            batches = [(text(stream), entries, True) for stream, entries in reply or [] if entries]
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
                    batches.append((stream, entries, True))
            if batches:
                return batches
        reply = self.redis.xreadgroup(group, consumer, dict.fromkeys(streams, ">"), count=self.options.batch, block=self.options.block_ms if block_ms is None else block_ms)
        return [(text(stream), entries, False) for stream, entries in reply or [] if entries]

    # ------------------------------------------------------------ batches

    def process(self, stream: str, entries, recovered: bool = False) -> Outcome:
        """Process one batch of one stream: apply it, then do its Redis half.

        ``recovered``: the messages were delivered before, so some may be committed already
        (their outcome is in the ingest ledger) or be poison (delivered too often)."""
        messages = [(text(message_id), fields) for message_id, fields in entries]
        deleted = [message_id for message_id, fields in messages if fields is None]
        messages = [(message_id, fields) for message_id, fields in messages if fields is not None]
        outcome = Outcome()
        if recovered and messages:
            messages = self._recover(stream, messages, outcome)
        if messages:
            outcome.merge(self._apply(stream, messages))
        outcome.acked = [message_id for message_id, _ in messages] + outcome.acked + deleted
        try:
            self._finish(stream, outcome)
        except Exception:
            self._unfinished = (stream, outcome)  # committed: its Redis half is done when Redis is back
            raise
        return outcome

    def _apply(self, stream: str, messages) -> Outcome:
        """Apply a batch in one transaction; if it fails for anything but an outage, apply its
        messages one by one so that only the one at fault is dead-lettered."""
        work = self._process_cases if stream == self.keys.case_events else self._process_gps
        try:
            return _with_retries(lambda: work(messages), f"batch of {len(messages)} from {stream}")
        except Exception as error:
            if outage_of(error):
                raise
            if len(messages) == 1:
                return self._refused(messages[0], error)
            log.warning("a batch of %d from %s failed (%s: %s); applying its messages one by one", len(messages), stream, type(error).__name__, error)
        outcome = Outcome()
        for message in messages:
            try:
                outcome.merge(_with_retries(lambda: work([message]), f"message {message[0]} from {stream}"))  # noqa: B023 - called at once
            except Exception as error:
                if outage_of(error):
                    raise  # those applied so far are committed with their ledger rows
                outcome.merge(self._refused(message, error))
        return outcome

    @staticmethod
    def _refused(message, error: Exception) -> Outcome:
        message_id, raw = message
        log.warning("message %s refused by the database: %s: %s", message_id, type(error).__name__, error)
        return Outcome(dead=[(message_id, raw, FeedError(Reason.APPLY_ERROR, f"{type(error).__name__}: {str(error)[:300]}"))])

    def _recover(self, stream: str, messages, outcome: Outcome) -> list:
        """Finish messages already committed from the ledger, dead-letter poison; return the rest."""
        ids = [message_id for message_id, _ in messages]
        with self.engine.connect() as connection:
            recorded, covered = ingest_ledger.lookup(connection, stream, ids)
        deliveries = self._deliveries(stream, ids)
        rest, reapplied = [], []
        for message_id, raw in messages:
            entry = recorded.get(message_id)
            if entry is not None:
                for name in entry.outcomes:
                    getattr(outcome, name).append(message_id)
                if entry.dead:
                    outcome.dead.append((message_id, raw, FeedError(*entry.dead)))
                if "applied" in entry.outcomes and stream == self.keys.case_events:
                    reapplied.append(raw)
                outcome.acked.append(message_id)
            elif deliveries.get(message_id, 0) > self.options.max_deliveries:
                count = deliveries[message_id]
                log.error("message %s of %s delivered %d times without being finished: dead-lettered as poison", message_id, stream, count)
                outcome.dead.append((message_id, raw, FeedError(Reason.POISON, f"delivered {count} times without being finished")))
                outcome.acked.append(message_id)
            else:
                rest.append((message_id, raw))
        if recorded:
            log.info("finished %d messages of %s committed before a crash, from the ingest ledger", len(recorded), stream)
            outcome.changes.extend(self._current_changes(reapplied))
            self._finished_ledger.extend(covered)
        return rest

    def _deliveries(self, stream: str, ids: list[str]) -> dict[str, int]:
        """How often each message has been delivered (Redis counts every read and claim)."""
        if not ids:
            return {}
        first, last = min(ids, key=_stream_order), max(ids, key=_stream_order)
        pending = self.redis.xpending_range(stream, self.options.group, min=first, max=last, count=len(ids) + 1000, consumername=self.options.consumer)
        return {text(item["message_id"]): int(item["times_delivered"]) for item in pending}

    def _current_changes(self, raws) -> list:
        """Live-state changes for case events committed before a crash: their cases as they are now
        (the live state takes only newer versions and counts each event once, so this is safe)."""
        events = []
        for raw in raws:
            try:
                events.append(self._validate(raw, utc_now()))
            except FeedError:
                continue  # too old by now to show on today's screens
        with self.engine.connect() as connection:
            cases = case_store.load_cases_by_id(connection, {event.case_id for event in events})
        return [(None, cases[event.case_id], event) for event in events if event.case_id in cases]

    def _begin_batch(self, connection) -> None:
        """In each batch's transaction: forget the ledger rows of batches finished since."""
        if self._finished_ledger:
            ingest_ledger.forget(connection, self._finished_ledger)

    def _end_batch(self, connection, stream: str, outcome: Outcome, now: datetime) -> None:
        outcome.ledger_record(connection, stream, self.options.consumer, now)

    def _process_cases(self, messages) -> Outcome:
        now = utc_now()
        outcome = Outcome()
        valid: list[tuple[str, dict, CaseEvent]] = []
        for message_id, raw in messages:
            try:
                valid.append((message_id, raw, self._validate(raw, now)))
            except FeedError as error:
                outcome.dead.append((message_id, raw, error))
        forgotten = list(self._finished_ledger)
        with self.engine.begin() as connection:
            self._begin_batch(connection)
            known = case_store.known_event_ids(connection, [event.event_id for _, _, event in valid])
            cases = case_store.load_cases_by_id(connection, {event.case_id for _, _, event in valid}, lock=True)
            stored = dict(cases)
            parked = self._load_parked(connection, {event.case_id for _, _, event in valid})
            event_rows, new_parked, unparked = [], [], []
            seen = set()
            for message_id, raw, event in valid:
                if event.event_id in known or event.event_id in seen:
                    outcome.duplicates.append(message_id)
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
                    outcome.parked.append(message_id)
                    continue
                self._record(cases, result, event, message_id, event_rows, outcome, now)
                self._drain_parked(cases, parked, event.case_id, event_rows, unparked, outcome, now)
            case_store.save_cases(connection, [cases[case_id] for case_id in {after.case_id for _, after, _ in outcome.changes}], stored, self.tz)
            if event_rows:
                connection.execute(schema.case_events.insert(), event_rows)
            if new_parked:
                connection.execute(schema.parked_events.insert(), new_parked)
            if unparked:
                connection.execute(delete(schema.parked_events).where(schema.parked_events.c.event_id.in_(unparked)))
            self._end_batch(connection, self.keys.case_events, outcome, now)
        self._forgotten(forgotten)
        return outcome

    def _forgotten(self, row_ids: list[int]) -> None:
        """The transaction that deleted ``row_ids`` committed: stop carrying them."""
        done = set(row_ids)
        self._finished_ledger = [row_id for row_id in self._finished_ledger if row_id not in done]

    def _validate(self, raw, now: datetime) -> CaseEvent:
        """The case event of ``raw``, or FeedError — also for a failure nobody foresaw."""
        try:
            return validate_case_event(raw, self._reference, now)
        except FeedError:
            raise
        except Exception as error:  # this message is refused; the batch goes on
            raise unexpected(error) from None

    def _try_apply(self, case: Case | None, event: CaseEvent) -> Case | None:
        """The case after ``event``; None when the event must wait for its case; FeedError when it never fits."""
        if case is None:
            if event.action != "report":
                return None
            return self._apply_event(None, event)
        if event.ts < case.updated_at - timedelta(seconds=CLOCK_SKEW_S):
            raise FeedError(Reason.BEFORE_PREVIOUS, f"{event.action} at {event.ts.isoformat()} is before the case's previous transition at {case.updated_at.isoformat()}", "ts")
        try:
            next_state(case.status, event.action)
        except IllegalTransition as error:
            if _is_behind(case.status, event.action):
                return None
            raise FeedError(Reason.ILLEGAL_TRANSITION, str(error), "action") from None
        return self._apply_event(case, event)

    def _apply_event(self, case: Case | None, event: CaseEvent) -> Case:
        try:
            return apply_event(case, event, self._rules)
        except IllegalTransition as error:
            raise FeedError(Reason.ILLEGAL_TRANSITION, str(error), "action") from None
        except ValueError as error:
            raise FeedError(Reason.BAD_VALUE, str(error)) from None

    @staticmethod
    def _record(cases: dict, after: Case, event: CaseEvent, message_id: str, event_rows: list, outcome: Outcome, now: datetime) -> None:
        before = cases.get(event.case_id)
        cases[event.case_id] = after
        event_rows.append(case_store.event_row(event, before, after, now))
        outcome.changes.append((before, after, event))
        outcome.applied.append(message_id)

    def _drain_parked(self, cases, parked, case_id, event_rows, unparked, outcome: Outcome, now) -> None:
        """Apply the case's parked events that now fit, oldest first, until none does;
        one the case has moved past is dead-lettered with its reason."""
        progress = True
        while progress and parked.get(case_id):
            progress = False
            for item in sorted(parked[case_id], key=lambda entry: entry[0].ts):
                event, raw, source_id = item
                try:
                    result = self._try_apply(cases.get(case_id), event)
                except FeedError as error:
                    outcome.dead.append((source_id, raw, error))
                    result = False
                if result is None:
                    continue
                if result is not False:
                    self._record(cases, result, event, source_id, event_rows, outcome, now)
                parked[case_id].remove(item)
                unparked.append(event.event_id)
                progress = True
                break

    def _load_parked(self, connection, case_ids) -> dict:
        result: dict = {}
        ids = sorted(case_ids)
        for start in range(0, len(ids), 500):
            rows = connection.execute(select(schema.parked_events).where(schema.parked_events.c.case_id.in_(ids[start : start + 500]))).mappings()
            for row in rows:
                raw = json.loads(row["fields"])
                try:
                    event = self._validate(raw, utc_now())
                except FeedError:
                    continue  # too old by now: revisit_parked dead-letters it
                result.setdefault(row["case_id"], []).append((event, raw, row["source_id"]))
        return result

    def _parked_row(self, event: CaseEvent, raw, message_id: str, now: datetime) -> dict:
        fields = {text(k): text(v) for k, v in raw.items()}
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
        forgotten = list(self._finished_ledger)
        with self.engine.begin() as connection:
            self._begin_batch(connection)
            states = patrol_store.load_states(connection, set(frame["worker"]), lock=True)
            update = advance_tracks(frame, states, self.tz)
            patrol_store.insert_points(connection, update.kept)
            patrol_store.add_to_days(connection, update.summary)
            patrol_store.save_states(connection, update.states)
            accepted = set(update.accepted_rows)
            for row, position in enumerate(batch.index):
                (outcome.applied if row in accepted else outcome.late).append(messages[position][0])
            self._end_batch(connection, self.keys.patrol_gps, outcome, now)
        self._forgotten(forgotten)
        outcome.positions = [update.accepted]
        outcome.kept = [update.kept]
        return outcome

    # ------------------------------------------------------------ after the commit

    def _finish(self, stream: str, outcome: Outcome) -> None:
        """Dead letters, acknowledgements, metrics and live state in one Redis transaction.

        Done at most once per batch: the transaction sets the batch's marker, and a retry
        after a lost reply (did EXEC run?) checks the marker first."""
        marker = self.keys.finished_batch(outcome.token)
        if self._unfinished is not None and self.redis.exists(marker):
            self._finished_ledger.extend(outcome.ledger_ids)
            return
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
        for name, value in outcome.counts().items():
            if value and name != "dead":
                pipe.hincrby(self.keys.feed_metrics, f"{name}:{kind}", value)
        live_state.record_case_changes(pipe, self.keys, outcome.changes)
        if outcome.positions:
            live_state.record_positions(pipe, self.keys, pd.concat(outcome.positions), pd.concat(outcome.kept))
        pipe.set(marker, 1, ex=FINISHED_MARKER_TTL_S)
        pipe.execute()
        self._finished_ledger.extend(outcome.ledger_ids)

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
        Returns (applied, dead). If that fails for anything but an outage, the parked events
        are revisited one by one, and the one at fault is dead-lettered."""
        try:
            return _with_retries(lambda: self._revisit_parked(now), "revisiting parked events")
        except Exception as error:
            if outage_of(error):
                raise
            log.warning("revisiting parked events failed (%s: %s); revisiting them one by one", type(error).__name__, error)
        with self.engine.connect() as connection:
            event_ids = connection.execute(select(schema.parked_events.c.event_id).order_by(schema.parked_events.c.ts).limit(self.options.batch)).scalars().all()
        applied = dead = 0
        for event_id in event_ids:
            try:
                one_applied, one_dead = _with_retries(lambda: self._revisit_parked(now, event_id), f"revisiting parked event {event_id}")  # noqa: B023 - called at once
            except Exception as error:
                if outage_of(error):
                    raise
                one_applied, one_dead = 0, self._refuse_parked(event_id, error, now)
            applied, dead = applied + one_applied, dead + one_dead
        return applied, dead

    def _refuse_parked(self, event_id: str, error: Exception, now: datetime) -> int:
        """Dead-letter a parked event whose application fails whatever the batch; 1 if it was still parked."""
        with self.engine.begin() as connection:
            row = connection.execute(select(schema.parked_events).where(schema.parked_events.c.event_id == event_id).with_for_update()).mappings().first()
            if row is None:
                return 0
            connection.execute(delete(schema.parked_events).where(schema.parked_events.c.event_id == event_id))
            refused = self._refused((row["source_id"], json.loads(row["fields"])), error)
            # Redis inside the database transaction: if it fails, the row stays parked.
            self._finish(self.keys.case_events, refused)
        return 1

    def _revisit_parked(self, now: datetime, only: str | None = None) -> tuple[int, int]:
        cutoff = db.to_db_time(now - timedelta(seconds=self.options.park_timeout_s))
        outcome = Outcome()
        with self.engine.begin() as connection:
            # SKIP LOCKED: consumers revisiting at the same moment take different events.
            statement = select(schema.parked_events).order_by(schema.parked_events.c.ts).limit(self.options.batch)
            if only is not None:
                statement = statement.where(schema.parked_events.c.event_id == only)
            rows = connection.execute(statement.with_for_update(skip_locked=True)).mappings().all()
            if not rows:
                return 0, 0
            cases = case_store.load_cases_by_id(connection, {row["case_id"] for row in rows}, lock=True)
            stored = dict(cases)
            parked: dict = {}
            invalid_ids = []
            for row in rows:
                raw = json.loads(row["fields"])
                try:
                    event = self._validate(raw, now)
                except FeedError as error:  # e.g. too old by now
                    outcome.dead.append((row["source_id"], raw, error))
                    invalid_ids.append(row["event_id"])
                    continue
                parked.setdefault(row["case_id"], []).append((event, raw, row["source_id"]))
            event_rows, unparked = [], []
            for case_id in list(parked):
                if case_id in cases:
                    self._drain_parked(cases, parked, case_id, event_rows, unparked, outcome, now)
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
            case_store.save_cases(connection, [cases[c] for c in {after.case_id for _, after, _ in outcome.changes}], stored, self.tz)
            if event_rows:
                connection.execute(schema.case_events.insert(), event_rows)
            if finished:
                connection.execute(delete(schema.parked_events).where(schema.parked_events.c.event_id.in_(sorted(finished))))
            # Redis inside the database transaction: if it fails, the rows stay parked.
            self._finish(self.keys.case_events, outcome)
        return len(outcome.applied), len(outcome.dead)


class ConsumerHealth:
    """How this consumer is: fine, or in trouble since when and why (an outage or an error)."""

    def __init__(self):
        self.state = "ok"
        self.reason = ""
        self.detail = ""
        self.since = time.time()
        self._written_at = 0.0
        self._changed = True

    def trouble(self, reason: str, error: Exception) -> None:
        detail = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300] if str(error).strip() else ''}"
        if self.state != "degraded" or self.reason != reason:
            log.warning("%s unavailable (%s); waiting with backoff, nothing is acknowledged meanwhile", reason, detail)
            if reason == "error":
                log.exception("unexpected error in the consumer loop", exc_info=error)
            self.state, self.reason, self.since, self._changed = "degraded", reason, time.time(), True
        self.detail = detail

    def fine(self, client, keys: Keys) -> None:
        """A round went through: if that ends an outage, log and count it."""
        if self.state == "ok":
            return
        lasted = time.time() - self.since
        log.warning("%s is back after %.0f s; resuming", self.reason, lasted)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(keys.feed_metrics, f"outage:{self.reason}", 1)
            pipe.hincrbyfloat(keys.feed_metrics, f"outage_seconds:{self.reason}", lasted)
            pipe.execute()
        except redis.RedisError:
            pass
        self.state, self.reason, self.detail, self.since, self._changed = "ok", "", "", time.time(), True

    def leave(self, client, keys: Keys, consumer: str) -> None:
        """Stopped on purpose: no longer listed (a consumer that dies is listed as dead)."""
        try:
            client.delete(keys.consumer_status(consumer))
            client.zrem(keys.consumers, consumer)
        except redis.RedisError:
            pass

    def due(self) -> bool:
        return self._changed or time.time() - self._written_at > STATUS_EVERY_S

    def write(self, client, keys: Keys, consumer: str) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.hset(keys.consumer_status(consumer), mapping={
            "state": self.state, "reason": self.reason, "detail": self.detail, "since": f"{self.since:.3f}", "seen": f"{time.time():.3f}",
        })
        pipe.expire(keys.consumer_status(consumer), STATUS_TTL_S)
        pipe.zadd(keys.consumers, {consumer: time.time()})
        pipe.execute()
        self._written_at, self._changed = time.time(), False


def _stream_order(message_id: str) -> tuple[int, int]:
    ms, _, sequence = message_id.partition("-")
    return int(ms), int(sequence or 0)


CONFLICT_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock


def _is_conflict(error: Exception) -> bool:
    """A transaction that lost a race with another consumer's, and may simply be run again."""
    return isinstance(error, IntegrityError) or (
        isinstance(error, OperationalError) and getattr(error.orig, "sqlstate", None) in CONFLICT_SQLSTATES)


def _with_retries(work, what: str):
    """Run a transaction again when it lost a race with another consumer (a conflict or a
    deadlock); anything else — an outage, the data's fault — goes to the caller at once."""
    for attempt in range(RETRIES):
        try:
            return work()
        except (IntegrityError, OperationalError) as error:
            if attempt == RETRIES - 1 or not _is_conflict(error):
                raise
            log.warning("%s conflicted with another consumer (%s); retrying", what, type(error).__name__)
            time.sleep(0.05 * (attempt + 1))


def run_consumer(settings, config: DomainConfig, options: IngestOptions, stop: threading.Event | None = None) -> None:
    """``python app.py ingest``: consume until interrupted; SIGTERM finishes the batch in hand first.
    A database that is not reachable at start is waited for, as during an outage."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = db.make_engine(settings.database_url, writer=True, lock_wait_s=LOCK_WAIT_S)
    backoff = Backoff()
    while not stop.is_set():
        try:
            db.init_db(engine)
            break
        except db.DatabaseUnavailable as error:
            log.warning("%s; waiting for it", error)
            backoff.wait(stop)
    client = redis_client.connect(settings, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)
    Ingest(engine, client, Keys(settings.prefix), config, options).run(stop)

