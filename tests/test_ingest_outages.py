"""Outages mid-burst: the consumer waits them out, says so, resumes by itself, and ends with
exact counts — PostgreSQL refusing connections, SQLite locked, Redis killed and restarted
from its append-only file."""
from __future__ import annotations

import sqlite3
import time
import uuid

import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from data_feeds import schema
from data_feeds.db import init_db, make_engine
from data_feeds.keys import Keys
from tests.feed_support import basic_grids
from tests.redis_servers import RedisServer
from tests.support import PG_URL, import_small_district, postgres_unavailable, wait_for
from tests.test_ingest_processes import publish_workload, start_consumer

KEYS = Keys("gridops:")
OUTAGE_S = 30
CASES, WORKERS, PINGS_PER_WORKER = 1200, 10, 200
pytestmark = pytest.mark.slow


def build_district(url: str, folder) -> object:
    """The small test district (普陀区 cut into 24 grids) with its staff, in the database at ``url``."""
    engine = make_engine(url)
    init_db(engine)
    return import_small_district(engine, folder)


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar()


def consumer_state(client, name: str) -> dict:
    return {k.decode(): v.decode() for k, v in client.hgetall(KEYS.consumer_status(name)).items()}


def metrics(client) -> dict:
    return {k.decode(): int(float(v)) for k, v in client.hgetall(KEYS.feed_metrics).items()}


def assert_exact(engine, client, pings: int) -> None:
    """Every event once, every message counted once as what it was, nothing dead."""
    assert count(engine, schema.case_events) == CASES * 3
    assert count(engine, schema.cases) == CASES
    with engine.connect() as connection:
        assert set(connection.execute(select(schema.cases.c.status)).scalars()) == {"dispatched"}
    assert client.xlen(KEYS.dead_letter) == 0, client.xrange(KEYS.dead_letter, count=5)
    counted = metrics(client)
    assert {name: counted.get(name, 0) for name in ("consumed:case", "applied:case", "duplicates:case", "consumed:gps", "applied:gps", "late:gps")} == {
        "consumed:case": CASES * 3, "applied:case": CASES * 3, "duplicates:case": 0, "consumed:gps": pings, "applied:gps": pings, "late:gps": 0}


def drained(engine, client) -> bool:
    return (count(engine, schema.case_events) >= CASES * 3
            and client.xpending(KEYS.case_events, "gridops-ingest")["pending"] == 0
            and client.xpending(KEYS.patrol_gps, "gridops-ingest")["pending"] == 0
            and int(client.hget(KEYS.feed_metrics, "consumed:gps") or 0) >= WORKERS * PINGS_PER_WORKER)


def test_a_postgresql_outage_mid_burst_is_waited_out(redis_url, tmp_path):
    if postgres_unavailable():
        pytest.skip(postgres_unavailable())
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"gridops_outage_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = build_district(url, tmp_path)
    client = redis.Redis.from_url(redis_url)
    log = tmp_path / "consumer.log"
    process = start_consumer(url, redis_url, "outage", log, "--batch", "200")
    try:
        wait_for(lambda: consumer_state(client, "outage").get("state") == "ok", timeout_s=120)
        pings = publish_workload(client, basic_grids(engine), cases=CASES, pings_per_worker=PINGS_PER_WORKER, workers=WORKERS)
        wait_for(lambda: count(engine, schema.case_events) > 300, timeout_s=120)
        engine.dispose()
        with admin.connect() as connection:  # the database goes away: sessions ended, no new ones
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        began = time.monotonic()
        wait_for(lambda: consumer_state(client, "outage").get("reason") == "database", timeout_s=OUTAGE_S)
        assert consumer_state(client, "outage")["state"] == "degraded"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - began)))  # the outage lasts its 30 s
        assert process.poll() is None, log.read_text()[-2000:]
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        wait_for(lambda: drained(engine, client), timeout_s=240, every_s=0.5)
        wait_for(lambda: consumer_state(client, "outage").get("state") == "ok", timeout_s=30)
        assert process.poll() is None
        assert_exact(engine, client, len(pings))
        assert metrics(client).get("outage:database", 0) >= 1
    finally:
        process.terminate()
        process.wait(timeout=20)
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def test_sqlite_locked_mid_burst_is_waited_out(redis_url, tmp_path):
    path = tmp_path / "grid.db"
    engine = build_district(f"sqlite:///{path}", tmp_path)
    client = redis.Redis.from_url(redis_url)
    log = tmp_path / "consumer.log"
    process = start_consumer(f"sqlite:///{path}", redis_url, "locked", log, "--batch", "200")
    holder = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        wait_for(lambda: consumer_state(client, "locked").get("state") == "ok", timeout_s=120)
        pings = publish_workload(client, basic_grids(engine), cases=CASES, pings_per_worker=PINGS_PER_WORKER, workers=WORKERS)
        wait_for(lambda: count(engine, schema.case_events) > 300, timeout_s=120)
        holder.execute("BEGIN EXCLUSIVE")  # another program holds the write lock for the outage
        began = time.monotonic()
        before = count(engine, schema.case_events)
        # it says so (not silent, which /healthz would read as a dead consumer)
        wait_for(lambda: consumer_state(client, "locked").get("reason") == "database", timeout_s=OUTAGE_S)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - began)))
        assert count(engine, schema.case_events) == before  # nothing got through the lock
        assert process.poll() is None, log.read_text()[-2000:]
        holder.execute("ROLLBACK")
        wait_for(lambda: drained(engine, client), timeout_s=240, every_s=0.5)
        assert process.poll() is None
        assert_exact(engine, client, len(pings))
    finally:
        holder.close()
        process.terminate()
        process.wait(timeout=20)
        engine.dispose()


def test_redis_killed_and_restarted_from_its_append_only_file_mid_burst(tmp_path):
    server = RedisServer(tmp_path / "redis", ("--appendonly", "yes", "--appendfsync", "always"))
    path = tmp_path / "grid.db"
    engine = build_district(f"sqlite:///{path}", tmp_path)
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    log = tmp_path / "consumer.log"
    process = start_consumer(f"sqlite:///{path}", server.url, "survivor", log, "--batch", "200")
    try:
        wait_for(lambda: consumer_state(client, "survivor").get("state") == "ok", timeout_s=120)
        pings = publish_workload(client, basic_grids(engine), cases=CASES, pings_per_worker=PINGS_PER_WORKER, workers=WORKERS)
        wait_for(lambda: count(engine, schema.case_events) > 300, timeout_s=120)
        server.kill()
        before = count(engine, schema.case_events)
        time.sleep(5)  # Redis is away for a few seconds
        assert process.poll() is None, log.read_text()[-2000:]
        assert count(engine, schema.case_events) - before <= 200  # at most the batch in hand got through
        server.start()  # from its append-only file: streams, the group's pending entries, counters
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        wait_for(lambda: drained(engine, client), timeout_s=240, every_s=0.5)
        wait_for(lambda: consumer_state(client, "survivor").get("state") == "ok", timeout_s=30)
        assert process.poll() is None
        assert_exact(engine, client, len(pings))
        assert metrics(client).get("outage:redis", 0) >= 1
    finally:
        process.terminate()
        process.wait(timeout=20)
        server.stop()
        engine.dispose()
