"""The feed consumer against a real Redis and the grid database (SQLite and PostgreSQL)."""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from data_feeds import case_store, live_state, queries, schema
from data_feeds.keys import Keys
from gridrules import indicators
from gridrules.access import EVERYTHING
from gridrules.clock import utc_now
from gridrules.indicators import Window
from gridrules.lifecycle import case_version
from tests.feed_support import basic_grids, case_event, drain, make_ingest, report, wgs84_of
from tests.support import TZ, assert_rollups_match_cases

KEYS = Keys("gridops:")


@pytest.fixture
def ingest(feed_district, raw_redis, domain_config):
    return make_ingest(feed_district, raw_redis, domain_config)


@pytest.fixture
def grids(feed_district):
    return basic_grids(feed_district)


def publish(client, *messages, stream=KEYS.case_events):
    return [client.xadd(stream, message) for message in messages]


def dead_letters(client) -> list[dict]:
    return [{k.decode(): v.decode(errors="replace") for k, v in fields.items()} for _, fields in client.xrange(KEYS.dead_letter)]


def stored_case(engine, case_id):
    with engine.connect() as connection:
        return connection.execute(select(schema.cases).where(schema.cases.c.id == case_id)).mappings().first()


def event_count(engine, case_id=None) -> int:
    statement = select(func.count()).select_from(schema.case_events)
    if case_id:
        statement = statement.where(schema.case_events.c.case_id == case_id)
    with engine.connect() as connection:
        return connection.execute(statement).scalar()


def test_a_whole_loop_lands_in_the_database_and_the_live_state(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=3)
    grid = grids[0]
    publish(
        raw_redis,
        report("C1", t, grid, description="路边摆摊", reporter="张先生", contact="13812345678", worker=grid["worker"]),
        case_event("C1", "register", t + timedelta(minutes=5)),
        case_event("C1", "dispatch", t + timedelta(minutes=9), dept="CGJ"),
    )
    totals = drain(ingest)
    assert totals["applied"] == 3 and totals["dead"] == 0
    case = stored_case(feed_district, "C1")
    assert case["status"] == "dispatched" and case["grid"] == grid["code"] and case["dept"] == "CGJ"
    assert case["reporter"] == "张先生" and case["worker"] == grid["worker"]
    open_cases = {c["id"]: c for c in live_state.open_cases(raw_redis, KEYS)}
    assert open_cases["C1"]["stage"] == "handle" and open_cases["C1"]["stage_deadline"]
    publish(raw_redis, case_event("C1", "feedback", t + timedelta(hours=1)), case_event("C1", "close", t + timedelta(hours=2)),
            case_event("C1", "evaluate", t + timedelta(hours=2, minutes=30), satisfaction="satisfied"))
    drain(ingest)
    assert stored_case(feed_district, "C1")["status"] == "evaluated"
    assert "C1" not in {c["id"] for c in live_state.open_cases(raw_redis, KEYS)}
    assert event_count(feed_district, "C1") == 6
    changes = raw_redis.xrange(KEYS.changes)
    assert [fields[b"action"] for _, fields in changes if fields[b"kind"] == b"case"] == [b"report", b"register", b"dispatch", b"feedback", b"close", b"evaluate"]
    assert raw_redis.xpending(KEYS.case_events, "gridops-ingest")["pending"] == 0
    assert_rollups_match_cases(feed_district)


def one_local_day_ago(tz):
    """Noon of yesterday, local time: a start for a few minutes of events that all fall on one
    local day, whatever the hour the test runs (CI runs round local midnight too)."""
    yesterday = (utc_now().astimezone(tz) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    return yesterday


def test_a_repeated_event_id_is_a_duplicate_and_changes_nothing(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=1)
    first = report("C1", t, grids[0], event_id="same")
    publish(raw_redis, first, case_event("C1", "register", t + timedelta(minutes=1), event_id="reg"))
    drain(ingest)
    before = dict(stored_case(feed_district, "C1"))
    publish(raw_redis, first, case_event("C1", "register", t + timedelta(minutes=1), event_id="reg"), case_event("C1", "reject", t + timedelta(minutes=2), event_id="reg"))
    totals = drain(ingest)
    assert totals["duplicates"] == 3 and totals["applied"] == 0
    assert dict(stored_case(feed_district, "C1")) == before
    assert event_count(feed_district) == 2
    assert int(raw_redis.hget(KEYS.feed_metrics, "duplicates:case")) == 3


def test_a_dispatch_before_its_register_waits_and_then_applies(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=1)
    publish(raw_redis, report("C1", t, grids[0]), case_event("C1", "dispatch", t + timedelta(minutes=10), dept="CGJ"))
    totals = drain(ingest)
    assert totals["parked"] == 1 and stored_case(feed_district, "C1")["status"] == "reported"
    publish(raw_redis, case_event("C1", "register", t + timedelta(minutes=5)))
    totals = drain(ingest)
    assert totals["applied"] == 2
    case = stored_case(feed_district, "C1")
    assert case["status"] == "dispatched" and case["dept"] == "CGJ"
    with feed_district.connect() as connection:
        actions = list(connection.execute(select(schema.case_events.c.action).where(schema.case_events.c.case_id == "C1").order_by(schema.case_events.c.id)).scalars())
        assert connection.execute(select(func.count()).select_from(schema.parked_events)).scalar() == 0
    assert actions == ["report", "register", "dispatch"]


def test_events_before_their_report_wait_for_it_in_one_batch(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=1)
    publish(raw_redis, case_event("C9", "register", t + timedelta(minutes=2)), case_event("C9", "dispatch", t + timedelta(minutes=3), dept="SWJ"), report("C9", t, grids[1]))
    totals = drain(ingest)
    assert totals["applied"] == 3 and totals["dead"] == 0
    assert stored_case(feed_district, "C9")["status"] == "dispatched"


def test_an_event_for_a_case_never_reported_ends_as_a_dead_letter(feed_district, raw_redis, domain_config):
    ingest = make_ingest(feed_district, raw_redis, domain_config, park_timeout_s=0.0)
    publish(raw_redis, case_event("GHOST", "register", utc_now()))
    drain(ingest)
    letters = dead_letters(raw_redis)
    assert [letter["dlq_reason"] for letter in letters] == ["unknown_case"]
    assert letters[0]["case_id"] == "GHOST" and letters[0]["dlq_stream"] == KEYS.case_events


def test_a_parked_event_the_case_never_reaches_times_out(feed_district, raw_redis, domain_config, grids):
    ingest = make_ingest(feed_district, raw_redis, domain_config, park_timeout_s=0.0)
    t = utc_now() - timedelta(minutes=30)
    publish(raw_redis, report("C1", t, grids[0]), case_event("C1", "close", t + timedelta(minutes=5)))
    drain(ingest)  # close on a reported case is on-the-spot handling: legal
    publish(raw_redis, case_event("C2", "register", t), report("C2", t, grids[0]))
    publish(raw_redis, report("C3", t, grids[0]), case_event("C3", "feedback", t + timedelta(minutes=1)))
    drain(ingest)
    reasons = {letter["case_id"]: letter["dlq_reason"] for letter in dead_letters(raw_redis)}
    assert reasons == {"C3": "out_of_order_timeout"}
    assert stored_case(feed_district, "C2")["status"] == "registered"


def test_an_event_the_case_has_moved_past_is_dead_at_once(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=1)
    publish(raw_redis, report("C1", t, grids[0]), case_event("C1", "reject", t + timedelta(minutes=1)), case_event("C1", "register", t + timedelta(minutes=2)))
    drain(ingest)
    letters = dead_letters(raw_redis)
    assert [letter["dlq_reason"] for letter in letters] == ["illegal_transition"]
    assert "invalid → registered" in letters[0]["dlq_detail"]


BASE = {"event_id": "x1", "case_id": "B1", "action": "report", "category": "E050101", "source": "hotline"}


@pytest.mark.parametrize("change,reason", [
    ({"event_id": None}, "missing_field"),
    ({"case_id": ""}, "missing_field"),
    ({"action": "explode"}, "unknown_action"),
    ({"ts": "yesterday"}, "bad_timestamp"),
    ({"ts": "2026-11-22T09:15:03"}, "bad_timestamp"),
    ({"ts": "FUTURE"}, "timestamp_in_future"),
    ({"ts": "PAST"}, "timestamp_too_old"),
    ({"lat": "nan"}, "bad_coordinates"),
    ({"lat": "inf"}, "bad_coordinates"),
    ({"lat": "north"}, "bad_coordinates"),
    ({"lat": "95"}, "bad_coordinates"),
    ({"lat": "39.9", "lon": "116.4"}, "out_of_district"),
    ({"grid": "999999"}, "unknown_grid"),
    ({"category": "E05"}, "unknown_category"),
    ({"category": "ZZZ"}, "unknown_category"),
    ({"source": "pigeon"}, "bad_value"),
    ({"crs": "utm"}, "bad_value"),
    ({"grade": "Q"}, "bad_value"),
    ({"worker": "W9999"}, "unknown_worker"),
    ({"description": "长" * 5000}, "oversized_field"),
    ({"reporter": b"\xff\xfe\x00junk"}, "not_text"),
    ({"reporter": "tab\x00null"}, "not_text"),
    ({"case_id": "<img src=x onerror=alert(1)>"}, "bad_identifier"),
    ({"event_id": "=HYPERLINK(\"http://x\")"}, "bad_identifier"),
    ({"case_id": "C 1"}, "bad_identifier"),
    ({"grid": "<b>G</b>"}, "bad_identifier"),
    ({"category": "E05'--"}, "bad_identifier"),
    ({"worker": "W1\"><script>"}, "bad_identifier"),
])
def test_bad_report_fields_are_dead_lettered_with_their_reason(ingest, raw_redis, grids, change, reason):
    lat, lon = wgs84_of(grids[0])
    message = {**BASE, "ts": utc_now().isoformat(), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "grid": grids[0]["code"]}
    for key, value in change.items():
        if value is None:
            message.pop(key)
        elif value == "FUTURE":
            message[key] = (utc_now() + timedelta(hours=2)).isoformat()
        elif value == "PAST":
            message[key] = (utc_now() - timedelta(days=400)).isoformat()
        else:
            message[key] = value
    publish(raw_redis, message)
    totals = drain(ingest)
    assert totals.get("applied", 0) == 0
    letters = raw_redis.xrange(KEYS.dead_letter)
    assert len(letters) == 1
    fields = letters[0][1]
    assert fields[b"dlq_reason"].decode() == reason
    for key, value in message.items():  # the original fields, untouched
        assert fields[key.encode()] == (value if isinstance(value, bytes) else value.encode())
    assert int(raw_redis.hget(KEYS.feed_metrics, f"dead:{reason}")) == 1


def test_a_grid_far_from_the_position_is_a_mismatch(ingest, raw_redis, grids):
    lat, lon = wgs84_of(grids[-1])
    publish(raw_redis, {**BASE, "ts": utc_now().isoformat(), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "grid": grids[0]["code"]})
    drain(ingest)
    assert [letter["dlq_reason"] for letter in dead_letters(raw_redis)] == ["grid_mismatch"]


def test_an_empty_grid_is_located_from_the_position(ingest, raw_redis, grids, feed_district):
    lat, lon = wgs84_of(grids[5])
    publish(raw_redis, {**BASE, "ts": utc_now().isoformat(), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "grid": ""})
    drain(ingest)
    assert stored_case(feed_district, "B1")["grid"] == grids[5]["code"]


def test_positions_are_converted_to_the_map_datum(ingest, raw_redis, grids, feed_district):
    lat, lon = wgs84_of(grids[2])
    publish(raw_redis, {**BASE, "ts": str(int(utc_now().timestamp() * 1000)), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "grid": ""})
    drain(ingest)
    case = stored_case(feed_district, "B1")
    assert case["lat"] == pytest.approx(grids[2]["lat"], abs=1e-6) and case["lon"] == pytest.approx(grids[2]["lon"], abs=1e-6)


@pytest.mark.parametrize("action,fields,reason", [
    ("dispatch", {}, "missing_field"),
    ("dispatch", {"dept": "NOPE"}, "unknown_department"),
    ("evaluate", {"satisfaction": "thrilled"}, "bad_value"),
    ("dispatch", {"dept": "CGJ", "deadline": "2001-01-01T00:00:00+08:00"}, "bad_value"),
    ("dispatch", {"dept": "CGJ", "deadline": "9999-12-31T23:59:59-05:00"}, "bad_timestamp"),
    ("supervise", {}, "missing_field"),
    ("supervise", {"note": " \t "}, "missing_field"),
    ("decline", {}, "missing_field"),
    ("decline", {"note": "not ours", "dept": "NOPE"}, "unknown_department"),
    ("extend", {"note": "waiting for parts"}, "missing_field"),
    ("extend", {"note": "waiting for parts", "deadline": "2001-01-01T00:00:00+08:00"}, "bad_value"),
    ("extend", {"deadline": "2099-01-01T00:00:00+08:00"}, "bad_value"),
])
def test_bad_fields_of_later_actions(ingest, raw_redis, action, fields, reason):
    publish(raw_redis, case_event("C1", action, utc_now(), **fields))
    drain(ingest)
    assert [letter["dlq_reason"] for letter in dead_letters(raw_redis)] == [reason]


def test_the_consumer_survives_a_batch_of_garbage(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(minutes=10)
    publish(raw_redis, {b"\xff": b"\x00\x01"}, {"only": "one"}, {"event_id": "e", "case_id": "c", "action": "report", "ts": "0"}, report("OK1", t, grids[0]))
    totals = drain(ingest)
    assert totals["applied"] == 1 and totals["dead"] == 3
    assert raw_redis.xpending(KEYS.case_events, "gridops-ingest")["pending"] == 0


# ---------------------------------------------------------------- GPS


def pings(worker: str, grid: dict, start, count: int, every_s: int = 5, step_deg: float = 0.00003):
    lat, lon = wgs84_of(grid)
    return [
        {"worker": worker, "ts": (start + timedelta(seconds=i * every_s)).isoformat(), "lat": f"{lat + i * step_deg:.7f}", "lon": f"{lon:.7f}", "speed": "1.3", "heading": "0"}
        for i in range(count)
    ]


def test_pings_become_thinned_tracks_daily_totals_and_live_positions(ingest, raw_redis, grids, feed_district):
    start = utc_now() - timedelta(minutes=12)
    if start.astimezone(TZ).date() != utc_now().astimezone(TZ).date():
        pytest.skip("within 12 minutes after local midnight: the track would fall on two days")
    grid = grids[0]
    publish(raw_redis, *pings(grid["worker"], grid, start, 120), stream=KEYS.patrol_gps)
    totals = drain(ingest)
    assert totals["applied"] == 120
    with feed_district.connect() as connection:
        days = pd.DataFrame(connection.execute(select(schema.patrol_days)).mappings().all())
        points = connection.execute(select(func.count()).select_from(schema.patrol_points)).scalar()
    assert days["seconds"].sum() == pytest.approx(119 * 5)
    assert days["meters"].sum() == pytest.approx(119 * 0.00003 * 111_195, rel=0.01)
    assert days["rounds"].sum() == 1 and set(days["grid"]) >= {grid["code"]}
    # at most one point per 30 s slot plus one per 20 m walked, and at least one per slot
    walked_m = 119 * 0.00003 * 111_195
    assert 595 / 30 <= points <= 595 / 30 + walked_m / 20 + 2
    positions = {p["worker"]: p for p in live_state.worker_positions(raw_redis, KEYS, utc_now(), 10)}
    assert positions[grid["worker"]]["online"] and positions[grid["worker"]]["speed"] == 1.3
    assert len(live_state.trail(raw_redis, KEYS, grid["worker"])) == min(points, live_state.TRAIL_LENGTH)  # trails follow the thinned track
    assert [p["worker"] for p in live_state.worker_positions(raw_redis, KEYS, utc_now(), 10) if p["online"]] == [grid["worker"]]


def test_replayed_pings_add_nothing_twice(ingest, raw_redis, grids, feed_district):
    start = utc_now() - timedelta(minutes=20)
    grid = grids[0]
    batch = pings(grid["worker"], grid, start, 60)
    publish(raw_redis, *batch, stream=KEYS.patrol_gps)
    drain(ingest)
    with feed_district.connect() as connection:
        before = connection.execute(select(func.sum(schema.patrol_days.c.seconds), func.count()).select_from(schema.patrol_days)).one()
    publish(raw_redis, *batch, stream=KEYS.patrol_gps)
    totals = drain(ingest)
    assert totals["late"] == 60 and totals["applied"] == 0
    with feed_district.connect() as connection:
        after = connection.execute(select(func.sum(schema.patrol_days.c.seconds), func.count()).select_from(schema.patrol_days)).one()
    assert tuple(after) == tuple(before)


def test_bad_pings_are_dead_lettered(ingest, raw_redis, grids):
    grid = grids[0]
    good = pings(grid["worker"], grid, utc_now() - timedelta(minutes=1), 1)[0]
    bad = [
        {**good, "worker": "NOBODY"},
        {**good, "worker": "<svg onload=alert(1)>"},
        {**good, "lat": "NaN"},
        {**good, "lat": "39.9", "lon": "116.4"},
        {**good, "speed": "-3"},
        {**good, "heading": "400"},
        {**good, "ts": "not a time"},
        {k: v for k, v in good.items() if k != "lon"},
    ]
    publish(raw_redis, *bad, stream=KEYS.patrol_gps)
    drain(ingest)
    reasons = sorted(letter["dlq_reason"] for letter in dead_letters(raw_redis))
    assert reasons == sorted(["unknown_worker", "bad_identifier", "bad_coordinates", "out_of_district", "bad_value", "bad_value", "bad_timestamp", "missing_field"])
    assert {letter["dlq_stream"] for letter in dead_letters(raw_redis)} == {KEYS.patrol_gps}


# ---------------------------------------------------------------- deadlines


def test_the_watcher_alerts_once_per_change_and_clears(ingest, raw_redis, grids, feed_district):
    now = utc_now()
    # A-grade category (natural hours): register within 10 minutes.
    publish(raw_redis, report("LATE", now - timedelta(minutes=9), grids[0], category="B010102"),
            report("VERYLATE", now - timedelta(minutes=25), grids[0], category="B010102"),
            report("FINE", now - timedelta(minutes=1), grids[0], category="B010102"))
    drain(ingest)
    alerts = ingest.watcher.tick(now)
    by_case = {a["case_id"]: a for a in alerts}
    assert by_case["LATE"]["type"] == "due_soon" and by_case["VERYLATE"]["type"] == "escalated"
    assert "FINE" not in by_case
    assert float(by_case["VERYLATE"]["late_seconds"]) == pytest.approx(15 * 60, abs=5)
    assert by_case["VERYLATE"]["dept"] == "SWJ" and by_case["VERYLATE"]["grade"] == "A" and by_case["VERYLATE"]["stage"] == "register"
    assert ingest.watcher.tick(now) == []  # nothing new
    assert ingest.watcher.tick(now + timedelta(minutes=2))[0]["type"] == "overdue"  # LATE passes its deadline
    publish(raw_redis, case_event("VERYLATE", "register", now))
    drain(ingest)
    cleared = ingest.watcher.tick(now + timedelta(minutes=2))
    assert [(a["type"], a["case_id"]) for a in cleared] == [("cleared", "VERYLATE")]
    stream = [fields[b"type"] for _, fields in raw_redis.xrange(KEYS.alerts)]
    assert stream == [b"due_soon", b"escalated", b"overdue", b"cleared"] or sorted(stream) == sorted([b"due_soon", b"escalated", b"overdue", b"cleared"])


def test_live_state_is_rebuilt_from_the_database(ingest, raw_redis, grids, feed_district, domain_config):
    t = utc_now() - timedelta(minutes=30)
    publish(raw_redis, report("C1", t, grids[0]), report("C2", t, grids[1]), case_event("C2", "reject", t + timedelta(minutes=1)))
    drain(ingest)
    raw_redis.delete(KEYS.open_cases)
    make_ingest(feed_district, raw_redis, domain_config, consumer="another")
    assert {c["id"] for c in live_state.open_cases(raw_redis, KEYS)} == {"C1"}
    record = json.loads(raw_redis.hget(KEYS.open_cases, "C1"))
    assert record["stage"] == "register" and record["grid"] == grids[0]["code"]


def open_ids(client) -> set[str]:
    return {c["id"] for c in live_state.open_cases(client, KEYS)}


def test_a_rebuild_while_another_consumer_writes_undoes_nothing(ingest, raw_redis, grids, feed_district, domain_config):
    """A consumer starting while another works reads its snapshot, the other applies more and
    writes the live state, and only then does the snapshot land: it must not bring back a
    closed case or drop a new one."""
    t = one_local_day_ago(ingest.tz)
    publish(raw_redis, report("C1", t, grids[0]), report("C2", t, grids[1]))
    drain(ingest)
    snapshot = live_state.read_snapshot(feed_district)
    publish(raw_redis, case_event("C1", "close", t + timedelta(minutes=5)), report("C3", t + timedelta(minutes=6), grids[2]),
            case_event("C2", "register", t + timedelta(minutes=7)))
    drain(ingest)
    live_state.write_snapshot(feed_district, raw_redis, KEYS, snapshot)
    assert open_ids(raw_redis) == {"C2", "C3"}
    assert json.loads(raw_redis.hget(KEYS.open_cases, "C2"))["status"] == "registered"  # not the snapshot's "reported"
    make_ingest(feed_district, raw_redis, domain_config, consumer="third")  # a rebuild from the database as it is
    assert open_ids(raw_redis) == {"C2", "C3"}


def test_live_writes_landing_out_of_order_keep_the_newest_state(ingest, raw_redis, grids, feed_district):
    """Two consumers commit a case's transitions one after the other, but their Redis writes
    may land the other way round."""
    t = utc_now() - timedelta(minutes=30)
    publish(raw_redis, report("C1", t, grids[0]), case_event("C1", "register", t + timedelta(minutes=1)))
    drain(ingest)
    with feed_district.connect() as connection:
        registered = case_store.load_cases_by_id(connection, ["C1"])["C1"]
    reported = dataclasses.replace(registered, status="reported", stage="register")
    closed = dataclasses.replace(registered, status="closed", stage=None)

    def write(case):
        pipe = raw_redis.pipeline(transaction=True)
        live_state.queue_case_states(pipe, KEYS, [live_state.case_state(case)])
        pipe.execute()

    write(reported)  # older than what is there
    assert json.loads(raw_redis.hget(KEYS.open_cases, "C1"))["status"] == "registered"
    write(closed)
    write(registered)  # the write of an earlier batch, arriving after the close
    assert open_ids(raw_redis) == set()
    reworked = dataclasses.replace(registered, status="dispatched", rework_count=1)
    assert case_version(reworked) > case_version(dataclasses.replace(registered, status="handled"))


def test_a_case_gone_from_the_database_leaves_the_live_state(ingest, raw_redis, grids, feed_district, domain_config):
    raw_redis.hset(KEYS.open_cases, "GHOST", json.dumps({"id": "GHOST", "status": "reported"}))
    make_ingest(feed_district, raw_redis, domain_config, consumer="another")
    assert "GHOST" not in open_ids(raw_redis)


def test_consumed_entries_are_trimmed_but_not_unread_ones(ingest, raw_redis, grids):
    from data_feeds.feed_status import trim_consumed

    old = [{"worker": grids[0]["worker"], "ts": utc_now().isoformat(), "lat": "0", "lon": "0"} for _ in range(300)]
    ids = [raw_redis.xadd(KEYS.patrol_gps, fields, id=f"{1000 + n}-0") for n, fields in enumerate(old)]
    drain(ingest)
    raw_redis.xgroup_create(KEYS.patrol_gps, "slow-reader", id="1100-0")  # another system, still behind
    assert trim_consumed(raw_redis, KEYS.patrol_gps, keep_s=3600, now=utc_now()) == 100
    remaining = [entry_id.decode() for entry_id, _ in raw_redis.xrange(KEYS.patrol_gps)]
    assert remaining[0] == "1100-0" and len(remaining) == 200  # what the slow reader still needs stays
    assert ids[0].decode() not in remaining


# ---------------------------------------------------------------- the centre's interventions (issue 12 items 10, 13)

def stored_events(engine, case_id) -> list[dict]:
    e = schema.case_events.c
    with engine.connect() as connection:
        rows = connection.execute(select(e.action, e.from_status, e.to_status, e.dept, e.detail).where(e.case_id == case_id).order_by(e.ts, e.id)).mappings()
        return [{**row, "detail": json.loads(row["detail"]) if row["detail"] else {}} for row in rows]


def test_re_dispatch_decline_extension_and_supervision_apply_and_are_counted_against_the_right_department(ingest, raw_redis, grids, feed_district):
    """A dispatch to a second department or after a decline was dead-lettered as an illegal transition."""
    t = utc_now() - timedelta(hours=3)
    later = (t + timedelta(days=5)).isoformat()
    publish(
        raw_redis,
        report("R1", t, grids[0]),
        case_event("R1", "register", t + timedelta(minutes=5)),
        case_event("R1", "dispatch", t + timedelta(minutes=9), dept="CGJ"),
        case_event("R1", "dispatch", t + timedelta(minutes=20), dept="GAJ", actor="centre"),  # 改派
        case_event("R1", "decline", t + timedelta(minutes=30), dept="GAJ", note="不属于本部门  职责"),  # 退单
        case_event("R1", "dispatch", t + timedelta(minutes=40), dept="XFJ"),
        case_event("R1", "extend", t + timedelta(minutes=50), deadline=later, note="等待配件"),  # 延期
        case_event("R1", "supervise", t + timedelta(minutes=60), note="请加快处置"),  # 督办
    )
    totals = drain(ingest)
    assert totals["dead"] == 0, dead_letters(raw_redis)
    case = stored_case(feed_district, "R1")
    assert (case["status"], case["dept"]) == ("dispatched", "XFJ")
    assert (case["redispatch_count"], case["decline_count"], case["extension_count"], case["supervise_count"]) == (1, 1, 1, 1)
    assert case["deadline"] == pd.Timestamp(later).tz_convert("UTC").tz_localize(None).to_pydatetime()
    events = stored_events(feed_district, "R1")
    assert [(e["action"], e["from_status"], e["to_status"], e["dept"]) for e in events[3:]] == [
        ("dispatch", "dispatched", "dispatched", "CGJ"),  # counted against the department it was taken from
        ("decline", "dispatched", "registered", "GAJ"),
        ("dispatch", "registered", "dispatched", "XFJ"),
        ("extend", "dispatched", "dispatched", "XFJ"),
        ("supervise", "dispatched", "dispatched", "XFJ"),
    ]
    assert events[3]["detail"] == {"to_dept": "GAJ"}
    assert events[4]["detail"] == {"note": "不属于本部门 职责"}
    assert events[6]["detail"]["note"] == "等待配件" and events[6]["detail"]["deadline"].startswith(later[:16].replace("+00:00", ""))
    record = {c["id"]: c for c in live_state.open_cases(raw_redis, KEYS)}["R1"]
    assert record["dept"] == "XFJ" and record["supervise_count"] == 1
    assert b"supervise" in [fields.get(b"action") for _, fields in raw_redis.xrange(KEYS.changes)]
    window = Window.until_now(t - timedelta(hours=1), utc_now() + timedelta(hours=1), utc_now())
    counts = indicators.intervention_counts(queries.load_interventions(feed_district, "/", window, queries.CaseFilter(), EVERYTHING))
    assert counts.to_dict("index") == {
        "CGJ": {"supervised": 0, "supervised_on_time": 0, "redispatched": 1, "declined": 0, "extended": 0},
        "GAJ": {"supervised": 0, "supervised_on_time": 0, "redispatched": 0, "declined": 1, "extended": 0},
        "XFJ": {"supervised": 1, "supervised_on_time": 0, "redispatched": 0, "declined": 0, "extended": 1},
    }
    only = queries.load_interventions(feed_district, "/", window, queries.CaseFilter(dept="GAJ"), EVERYTHING)
    assert only["kind"].tolist() == ["decline"]
    assert_rollups_match_cases(feed_district)  # a re-dispatch and a decline move the case between departments


def test_a_supervision_of_a_closed_case_is_dead_lettered(ingest, raw_redis, grids, feed_district):
    t = utc_now() - timedelta(hours=1)
    publish(raw_redis, report("S1", t, grids[0]), case_event("S1", "close", t + timedelta(minutes=5)),
            case_event("S1", "supervise", t + timedelta(minutes=6), note="late"))
    drain(ingest)
    assert [(letter["dlq_reason"], letter["dlq_field"]) for letter in dead_letters(raw_redis)] == [("illegal_transition", "action")]
