"""The consumer as a real process: killed mid-batch it loses nothing; two of them share a stream."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis
from sqlalchemy import func, select

from data_feeds import schema
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from gridrules.patrol import summarise_tracks
from tests.feed_support import basic_grids, case_event, report, wgs84_of
from tests.support import assert_rollups_match_cases, wait_for

PROJECT = Path(__file__).resolve().parent.parent
KEYS = Keys("gridops:")
pytestmark = pytest.mark.slow


def start_consumer(database_url: str, redis_url: str, name: str, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "app.py", "ingest", "--consumer", name, *extra],
        cwd=PROJECT, env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT,
    )


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar()


def publish_workload(client, grids, cases: int, pings_per_worker: int, workers: int):
    """cases × (report, register, dispatch) and a GPS track per worker; returns the pings."""
    t = utc_now() - timedelta(hours=2)
    pipe = client.pipeline(transaction=False)
    for n in range(cases):
        grid = grids[n % len(grids)]
        case_id = f"K{n:05d}"
        for message in (
            report(case_id, t + timedelta(seconds=n), grid, event_id=f"{case_id}-report"),
            case_event(case_id, "register", t + timedelta(seconds=n + 60), event_id=f"{case_id}-register"),
            case_event(case_id, "dispatch", t + timedelta(seconds=n + 120), dept="CGJ", event_id=f"{case_id}-dispatch"),
        ):
            pipe.xadd(KEYS.case_events, message)
    pings = []
    start = utc_now() - timedelta(minutes=50)
    for grid in grids[:workers]:
        lat, lon = wgs84_of(grid)
        for i in range(pings_per_worker):
            ping = {"worker": grid["worker"], "ts": (start + timedelta(seconds=5 * i)).isoformat(), "lat": f"{lat + 0.00002 * (i % 50):.7f}", "lon": f"{lon:.7f}"}
            pipe.xadd(KEYS.patrol_gps, ping)
            pings.append(ping)
    pipe.execute()
    return pings


def expected_patrol_seconds(engine, pings) -> float:
    """An independent computation: the same points, converted and located, summarised in one go."""
    from data_feeds.grid_locator import GridLocator
    from gridrules.coords import wgs84_to_gcj02

    frame = pd.DataFrame(pings)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    lat, lon = wgs84_to_gcj02(frame["lat"].astype(float).to_numpy(), frame["lon"].astype(float).to_numpy())
    frame["lat"], frame["lon"] = lat, lon
    frame["grid"] = GridLocator.from_database(engine).locate(lat, lon)
    return float(summarise_tracks(frame, "Asia/Shanghai")["seconds"].sum())


def patrol_seconds(engine) -> float:
    with engine.connect() as connection:
        return float(connection.execute(select(func.coalesce(func.sum(schema.patrol_days.c.seconds), 0))).scalar())


def event_ids(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(schema.case_events.c.event_id)).scalars())


def test_sigkill_mid_batch_loses_nothing_and_counts_nothing_twice(feed_district, database_url, redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    grids = basic_grids(feed_district)
    pings = publish_workload(client, grids, cases=1500, pings_per_worker=300, workers=10)
    total_events = 1500 * 3
    log = tmp_path / "consumer.log"
    def pending() -> int:
        return client.xpending(KEYS.case_events, "gridops-ingest")["pending"] + client.xpending(KEYS.patrol_gps, "gridops-ingest")["pending"]

    kills = mid_batch = 0
    for round_number in range(6):
        process = start_consumer(database_url, redis_url, "victim", log, "--batch", "300")
        floor = count(feed_district, schema.case_events)
        # Let it get into the work, then kill it without warning; a kill that lands between
        # two batches (nothing pending) proves little, so try again until one lands inside one.
        wait_for(lambda: count(feed_district, schema.case_events) > floor or process.poll() is not None, timeout_s=60)  # noqa: B023
        time.sleep(0.05 * (round_number % 3 + 1))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            mid_batch += pending() > 0
        if count(feed_district, schema.case_events) >= total_events or mid_batch >= 2:
            break
    assert kills >= 1
    assert mid_batch >= 1 or count(feed_district, schema.case_events) == total_events
    final = start_consumer(database_url, redis_url, "victim", log)
    try:
        wait_for(lambda: count(feed_district, schema.case_events) >= total_events and client.xpending(KEYS.patrol_gps, "gridops-ingest")["pending"] == 0
                 and client.xlen(KEYS.patrol_gps) == sum(int(v) for k, v in client.hgetall(KEYS.feed_metrics).items() if k == b"consumed:gps"), timeout_s=120)
        time.sleep(0.5)
    finally:
        final.terminate()
        final.wait(timeout=10)
    ids = event_ids(feed_district)
    assert len(ids) == total_events and len(set(ids)) == total_events
    assert count(feed_district, schema.cases) == 1500
    with feed_district.connect() as connection:
        statuses = set(connection.execute(select(schema.cases.c.status)).scalars())
    assert statuses == {"dispatched"}
    assert_rollups_match_cases(feed_district)  # kept in the cases' transactions: exact after the kills too
    assert patrol_seconds(feed_district) == pytest.approx(expected_patrol_seconds(feed_district, pings))
    assert client.xlen(KEYS.dead_letter) == 0, client.xrange(KEYS.dead_letter)
    # every message counted once, as what it was: a batch committed just before a kill is
    # finished from the ingest ledger, not counted again as duplicates or late pings
    metrics = {k.decode(): int(v) for k, v in client.hgetall(KEYS.feed_metrics).items() if not k.startswith(b"consumer:")}
    assert {name: metrics.get(name, 0) for name in ("consumed:case", "applied:case", "duplicates:case", "consumed:gps", "applied:gps", "late:gps")} == {
        "consumed:case": total_events, "applied:case": total_events, "duplicates:case": 0,
        "consumed:gps": len(pings), "applied:gps": len(pings), "late:gps": 0}


def readers(client) -> set[str]:
    """The consumers that have read from both streams through the group."""
    names = []
    for stream in (KEYS.case_events, KEYS.patrol_gps):
        try:
            names.append({c["name"].decode() for c in client.xinfo_consumers(stream, "gridops-ingest")})
        except redis.ResponseError:  # the group does not exist yet
            return set()
    return set.intersection(*names)


def test_two_consumers_share_the_streams_exactly_once(feed_district, database_url, redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    grids = basic_grids(feed_district)
    log = tmp_path / "consumers.log"
    first = start_consumer(database_url, redis_url, "alpha", log, "--batch", "100")
    second = start_consumer(database_url, redis_url, "beta", log, "--batch", "100")
    try:
        # Publish only once both are reading: a consumer still loading its reference data
        # would otherwise find the streams drained by the other one, which proves nothing.
        wait_for(lambda: readers(client) >= {"alpha", "beta"}, timeout_s=120)
        publish_workload(client, grids, cases=2000, pings_per_worker=200, workers=20)
        wait_for(lambda: int(client.hget(KEYS.feed_metrics, "consumed:case") or 0) == 6000
                 and int(client.hget(KEYS.feed_metrics, "consumed:gps") or 0) == 4000, timeout_s=180)
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=10)
    ids = event_ids(feed_district)
    assert len(ids) == 6000 and len(set(ids)) == 6000
    metrics = {k.decode(): int(v) for k, v in client.hgetall(KEYS.feed_metrics).items()}
    assert metrics["consumer:alpha"] > 0 and metrics["consumer:beta"] > 0
    assert metrics["consumer:alpha"] + metrics["consumer:beta"] == 6000 + 4000
    assert metrics.get("applied:gps", 0) + metrics.get("late:gps", 0) == 4000
    assert client.xlen(KEYS.dead_letter) == 0, client.xrange(KEYS.dead_letter)
    assert_rollups_match_cases(feed_district)
