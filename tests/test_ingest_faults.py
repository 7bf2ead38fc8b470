"""One bad message never stops the consumer: poison is isolated and dead-lettered, the
messages behind it apply, and a batch committed but never acknowledged counts once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from data_feeds import schema
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from tests.feed_support import basic_grids, case_event, drain, gps_ping, make_ingest, report, wgs84_of

KEYS = Keys("gridops:")


@pytest.fixture
def grids(feed_district):
    return basic_grids(feed_district)


def dead_reasons(client) -> dict[str, str]:
    """message's case id (or worker) → dead-letter reason."""
    letters = {}
    for _, fields in client.xrange(KEYS.dead_letter):
        fields = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        letters[fields.get("case_id") or fields.get("worker") or fields["dlq_id"]] = fields["dlq_reason"]
    return letters


def stored_statuses(engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(schema.cases.c.id, schema.cases.c.status)).all())


def metrics(client) -> dict[str, int]:
    return {k.decode(): int(float(v)) for k, v in client.hgetall(KEYS.feed_metrics).items()}


def test_a_timestamp_in_the_year_33658_is_a_dead_letter_and_the_events_behind_it_apply(feed_district, raw_redis, grids, domain_config):
    ingest = make_ingest(feed_district, raw_redis, domain_config)
    t = utc_now() - timedelta(minutes=30)
    raw_redis.xadd(KEYS.case_events, report("OK1", t, grids[0]))
    raw_redis.xadd(KEYS.case_events, {**report("BAD", t, grids[0]), "ts": "999999999999999"})
    raw_redis.xadd(KEYS.case_events, report("OK2", t, grids[1]))
    lat, lon = wgs84_of(grids[0])
    raw_redis.xadd(KEYS.patrol_gps, {**gps_ping(grids[0]["worker"], t, lat, lon), "ts": "999999999999999"})
    raw_redis.xadd(KEYS.patrol_gps, gps_ping(grids[0]["worker"], t, lat, lon))
    totals = drain(ingest)
    assert totals["applied"] == 3 and totals["dead"] == 2
    assert set(stored_statuses(feed_district)) == {"OK1", "OK2"}
    assert sorted(dead_reasons(raw_redis).values()) == ["bad_timestamp", "bad_timestamp"]


@pytest.mark.parametrize("field,value", [("reporter", "张" * 150), ("contact", "1" * 80), ("case_id", "C" * 100), ("event_id", "E" * 150)])
def test_text_longer_than_its_column_is_refused_by_validation_not_by_the_database(feed_district, raw_redis, grids, domain_config, field, value):
    """PostgreSQL refused these inside the transaction ("value too long"), SQLite stored them."""
    ingest = make_ingest(feed_district, raw_redis, domain_config)
    t = utc_now() - timedelta(minutes=30)
    raw_redis.xadd(KEYS.case_events, {**report("LONG", t, grids[0]), field: value})
    raw_redis.xadd(KEYS.case_events, report("OK1", t, grids[0]))
    drain(ingest)
    assert set(stored_statuses(feed_district)) == {"OK1"}
    assert list(dead_reasons(raw_redis).values()) == ["oversized_field"]


def refuse_case_in_the_database(engine, case_id: str) -> None:
    """A trigger that makes the database itself refuse one case: a fault no validation foresaw."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse_poison BEFORE INSERT ON cases WHEN NEW.id = '{case_id}' BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END")
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN IF NEW.id = '{case_id}' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END; $$")
            connection.exec_driver_sql("CREATE TRIGGER refuse_poison BEFORE INSERT ON cases FOR EACH ROW EXECUTE FUNCTION refuse_poison()")


def test_a_message_the_database_refuses_is_isolated_and_dead_lettered_alone(feed_district, raw_redis, grids, domain_config):
    refuse_case_in_the_database(feed_district, "POISON")
    ingest = make_ingest(feed_district, raw_redis, domain_config)
    t = utc_now() - timedelta(minutes=30)
    for case_id in ("OK1", "POISON", "OK2"):
        raw_redis.xadd(KEYS.case_events, report(case_id, t, grids[0]))
        raw_redis.xadd(KEYS.case_events, case_event(case_id, "register", t + timedelta(minutes=1)))
    totals = drain(ingest)
    assert stored_statuses(feed_district) == {"OK1": "registered", "OK2": "registered"}
    letters = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in raw_redis.xrange(KEYS.dead_letter)]
    assert [(letter["case_id"], letter["action"], letter["dlq_reason"]) for letter in letters][0] == ("POISON", "report", "apply_error")
    assert "refused by a test trigger" in letters[0]["dlq_detail"]
    assert totals["applied"] == 4
    assert raw_redis.xpending(KEYS.case_events, "gridops-ingest")["pending"] == 0


def test_a_message_delivered_too_often_is_dead_lettered_as_poison(feed_district, raw_redis, grids, domain_config):
    """A message that crashes every consumer that reads it is read again and again; after
    ``max_deliveries`` it goes to the dead letters instead of taking the consumer down once more."""
    make_ingest(feed_district, raw_redis, domain_config).poll_once(block_ms=1)  # the group exists
    t = utc_now() - timedelta(minutes=30)
    raw_redis.xadd(KEYS.case_events, report("CRASHER", t, grids[0]))
    raw_redis.xreadgroup("gridops-ingest", "test-consumer", {KEYS.case_events: ">"})
    for _ in range(10):  # nine restarts that died on it, as each re-reads its pending messages
        raw_redis.xreadgroup("gridops-ingest", "test-consumer", {KEYS.case_events: "0"})
    raw_redis.xadd(KEYS.case_events, report("AFTER", t, grids[1]))
    ingest = make_ingest(feed_district, raw_redis, domain_config, max_deliveries=10)
    drain(ingest)
    assert stored_statuses(feed_district) == {"AFTER": "reported"}
    assert dead_reasons(raw_redis) == {"CRASHER": "poison"}
    assert raw_redis.xpending(KEYS.case_events, "gridops-ingest")["pending"] == 0


def test_a_batch_committed_but_never_acknowledged_counts_once_as_applied(feed_district, raw_redis, grids, domain_config):
    """Killed between the database commit and the Redis transaction: the next reader finishes
    the batch from the ingest ledger — applied, not duplicates — and counts every message once."""
    t = utc_now() - timedelta(minutes=30)
    first = make_ingest(feed_district, raw_redis, domain_config)
    raw_redis.xadd(KEYS.case_events, report("C1", t, grids[0]))
    raw_redis.xadd(KEYS.case_events, case_event("C1", "register", t + timedelta(minutes=1)))
    raw_redis.xadd(KEYS.case_events, {**report("C2", t, grids[0]), "category": "NOPE"})  # dead
    raw_redis.xadd(KEYS.case_events, case_event("C3", "dispatch", t + timedelta(minutes=1), dept="CGJ"))  # parked
    lat, lon = wgs84_of(grids[0])
    for i in range(5):
        raw_redis.xadd(KEYS.patrol_gps, gps_ping(grids[0]["worker"], t + timedelta(seconds=10 * i), lat + 0.0001 * i, lon))
    raw_redis.xadd(KEYS.patrol_gps, gps_ping(grids[0]["worker"], t, lat, lon))  # late: a repeat of the first
    # The first consumer reads and commits both batches, then dies before its Redis half.
    for stream, entries in raw_redis.xreadgroup("gridops-ingest", "test-consumer", {KEYS.case_events: ">", KEYS.patrol_gps: ">"}):
        first._apply(stream.decode(), [(message_id.decode(), fields) for message_id, fields in entries])
    assert metrics(raw_redis) == {}
    restarted = make_ingest(feed_district, raw_redis, domain_config)
    drain(restarted)
    counted = metrics(raw_redis)
    assert {name: counted.get(name, 0) for name in ("consumed:case", "applied:case", "duplicates:case", "parked:case", "dead:unknown_category")} == {
        "consumed:case": 4, "applied:case": 2, "duplicates:case": 0, "parked:case": 1, "dead:unknown_category": 1}
    assert {name: counted.get(name, 0) for name in ("consumed:gps", "applied:gps", "late:gps")} == {"consumed:gps": 6, "applied:gps": 5, "late:gps": 1}
    assert raw_redis.xlen(KEYS.dead_letter) == 1
    assert stored_statuses(feed_district) == {"C1": "registered"}
    with feed_district.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.case_events)).scalar() == 2
    # its live state too: the case is on the screens
    assert raw_redis.hexists(KEYS.open_cases, "C1")
    # and the ledger is emptied once the batches are finished and another batch commits
    raw_redis.xadd(KEYS.case_events, report("C4", t, grids[0]))
    drain(restarted)
    raw_redis.xadd(KEYS.case_events, report("C5", t, grids[0]))
    drain(restarted)
    with feed_district.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.ingest_ledger)).scalar() <= 1


def test_a_parked_event_the_database_refuses_is_dead_lettered_without_blocking_the_others(feed_district, raw_redis, grids, domain_config):
    ingest = make_ingest(feed_district, raw_redis, domain_config)
    t = utc_now() - timedelta(minutes=30)
    # registers arrive first and wait for their reports
    for case_id in ("P1", "P2"):
        raw_redis.xadd(KEYS.case_events, case_event(case_id, "register", t + timedelta(minutes=1)))
    drain(ingest)
    with feed_district.begin() as connection:
        connection.execute(text("UPDATE parked_events SET fields = :fields WHERE case_id = 'P2'"), {"fields": '{"not": "an event"}'})
    for case_id in ("P1", "P2"):
        raw_redis.xadd(KEYS.case_events, report(case_id, t, grids[0]))
    drain(ingest)
    assert stored_statuses(feed_district) == {"P1": "registered", "P2": "reported"}
    with feed_district.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.parked_events)).scalar() == 0
