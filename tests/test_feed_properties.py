"""Property-based: arbitrary field maps never break the validator or stop the consumer, and every
message ends applied, duplicate or dead-lettered with a reason."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from data_feeds import schema
from data_feeds.feed_contract import FeedError, Reason, _careful_ping, _fast_ping, load_reference, validate_case_event, validate_gps_batch
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from tests.feed_support import basic_grids, drain, make_ingest, wgs84_of

KEYS = Keys("gridops:")
REASONS = {value for name, value in vars(Reason).items() if name.isupper()}
CONTRACT_FIELDS = ["event_id", "case_id", "action", "ts", "grid", "category", "lat", "lon", "source", "crs", "grade", "dept",
                   "deadline", "satisfaction", "description", "reporter", "contact", "worker", "speed", "heading", "accuracy"]


def plausible_values(grids):
    grid = grids[0]
    lat, lon = wgs84_of(grid)
    now = utc_now()
    return st.sampled_from([
        "report", "register", "reject", "dispatch", "feedback", "return", "close", "evaluate",
        grid["code"], grids[-1]["code"], "E050101", "B010102", "E05", "CGJ", "SWJ", "NOPE",
        f"{lat:.7f}", f"{lon:.7f}", "NaN", "-inf", "1e308", "", " ", "0",
        now.isoformat(), (now - timedelta(minutes=5)).isoformat(), str(int(now.timestamp() * 1000)),
        "2026-13-45T99:99:99+08:00", "patrol", "hotline", "wgs84", "gcj02", "bd09", "A", "B", "C", "Z",
        "satisfied", "basic", "unsatisfied", grid["worker"], "case-1", "case-2", "ev-1", "ev-2",
    ])


def hostile_values():
    """Any unicode, any number, dates from year 1 to 9999 in any offset, as text."""
    return st.one_of(
        st.text(max_size=40),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from(OFFSETS)).map(lambda d: d.isoformat()),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat()),
        st.integers(min_value=0, max_value=10**18).map(str),  # epoch milliseconds, sane or not
        st.sampled_from(["999999999999999", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "nan", "-0", "1e400", "\u202e", "<img src=x>"]),
    )


OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12)), timezone(timedelta(hours=8))]


def field_maps(grids, min_size: int = 0):
    names = st.one_of(st.sampled_from(CONTRACT_FIELDS), st.text(min_size=1, max_size=12), st.binary(min_size=1, max_size=8))
    values = st.one_of(plausible_values(grids), hostile_values(), st.binary(max_size=40), st.just("长" * 2100))
    return st.dictionaries(names, values, min_size=min_size, max_size=14)


def valid_ping_with_one_field_changed(grids):
    """A ping that is valid but for at most one field, which takes any value: where the fast and
    the careful validation could disagree."""
    grid = grids[0]
    lat, lon = wgs84_of(grid)
    base = {"worker": grid["worker"], "ts": utc_now().isoformat(), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "speed": "1.2", "heading": "90", "accuracy": "5"}
    changed = st.sampled_from(sorted(base) + ["crs"])
    return st.tuples(changed, st.one_of(hostile_values(), plausible_values(grids), st.sampled_from(["nan", "NaN", "inf", "", " ", "wgs84", "GCJ02", "bd09"]))).map(
        lambda pair: {**base, pair[0]: pair[1]})


@pytest.fixture
def reference_and_grids(feed_district):
    return load_reference(feed_district), basic_grids(feed_district)


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the validator does not touch the database; one backend is enough")


def test_the_case_validator_returns_an_event_or_a_known_reason(sqlite_only, reference_and_grids):
    reference, grids = reference_and_grids

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=field_maps(grids))
    def check(raw):
        try:
            event = validate_case_event(raw, reference, utc_now())
        except FeedError as error:
            assert error.reason in REASONS and error.detail
            return
        assert event.event_id and event.case_id and event.action

    check()


def test_the_gps_validator_accounts_for_every_ping(sqlite_only, reference_and_grids):
    reference, grids = reference_and_grids

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raws=st.lists(field_maps(grids), max_size=12))
    def check(raws):
        batch = validate_gps_batch(raws, reference, utc_now())
        assert sorted(batch.index + list(batch.errors)) == list(range(len(raws)))
        assert all(error.reason in REASONS for error in batch.errors.values())

    check()


def test_the_fast_and_the_careful_gps_validation_agree(sqlite_only, reference_and_grids):
    """One validation: whatever the fast path accepts, the careful path accepts with the same
    values (the fast path once took speed=nan, which the careful path refuses)."""
    reference, grids = reference_and_grids

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(fields=valid_ping_with_one_field_changed(grids))
    def check(fields):
        raw = {key.encode(): value.encode() for key, value in fields.items()}
        now = utc_now()
        fast = _fast_ping(raw, reference.workers, (now - reference.max_age).timestamp() * 1000, (now.timestamp() + 300) * 1000)
        try:
            careful = _careful_ping(raw, reference, now)
        except FeedError:
            careful = None
        if fast is not None:
            assert careful is not None, fields
            assert fast[0] == careful[0] and fast[4] == careful[4]
            assert np.allclose(fast[1:4], careful[1:4], equal_nan=True) and np.allclose(fast[5:], careful[5:], equal_nan=True), (fast, careful)

    check()


def test_speed_nan_is_refused_on_both_paths(sqlite_only, reference_and_grids):
    reference, grids = reference_and_grids
    lat, lon = wgs84_of(grids[0])
    raw = {b"worker": grids[0]["worker"].encode(), b"ts": utc_now().isoformat().encode(), b"lat": f"{lat:.7f}".encode(), b"lon": f"{lon:.7f}".encode()}
    for field in (b"speed", b"heading", b"accuracy"):
        batch = validate_gps_batch([{**raw, field: b"nan"}], reference, utc_now())
        assert [error.reason for error in batch.errors.values()] == ["bad_value"], field


@pytest.mark.slow  # sixty batches through a real consumer
def test_the_consumer_never_stops_and_accounts_for_every_message(sqlite_only, feed_district, redis_url, domain_config):
    client = redis.Redis.from_url(redis_url)
    grids = basic_grids(feed_district)
    ingest = make_ingest(feed_district, client, domain_config, park_timeout_s=0.0)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    # Redis streams cannot hold an entry without fields, so the consumer never sees one.
    @given(batch=st.lists(field_maps(grids, min_size=1), min_size=1, max_size=12), stream=st.sampled_from([KEYS.case_events, KEYS.patrol_gps]))
    def check(batch, stream):
        dead_before = client.xlen(KEYS.dead_letter) if client.exists(KEYS.dead_letter) else 0
        with feed_district.connect() as connection:
            events_before = connection.execute(select(func.count()).select_from(schema.case_events)).scalar()
        metrics_before = {k.decode(): int(v) for k, v in client.hgetall(KEYS.feed_metrics).items()}
        for raw in batch:
            client.xadd(stream, raw)
        totals = drain(ingest)
        dead = (client.xlen(KEYS.dead_letter) if client.exists(KEYS.dead_letter) else 0) - dead_before
        with feed_district.connect() as connection:
            events = connection.execute(select(func.count()).select_from(schema.case_events)).scalar() - events_before
            parked = connection.execute(select(func.count()).select_from(schema.parked_events)).scalar()
        metrics = {k.decode(): int(v) for k, v in client.hgetall(KEYS.feed_metrics).items()}
        kind = "case" if stream == KEYS.case_events else "gps"
        delta = {name: metrics.get(f"{name}:{kind}", 0) - metrics_before.get(f"{name}:{kind}", 0) for name in ("consumed", "applied", "duplicates", "late")}
        assert delta["consumed"] == len(batch)
        assert parked == 0  # with no patience, parked events are applied or dead-lettered at once
        if kind == "case":
            assert events + delta["duplicates"] + dead == len(batch), totals
        else:
            assert delta["applied"] + delta["late"] + dead == len(batch), totals
        for _, fields in client.xrange(KEYS.dead_letter)[dead_before:]:
            assert fields[b"dlq_reason"].decode() in REASONS
        assert client.xpending(stream, "gridops-ingest")["pending"] == 0

    check()
