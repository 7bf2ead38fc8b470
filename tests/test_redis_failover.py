"""Redis Sentinel: the master killed mid-burst, a replica promoted; the consumer and an open
wall's push stream carry on through the new master, and nothing the old master had
acknowledged to the publisher with WAIT (a replica has it) is lost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from urllib.request import urlopen

import pytest
import redis
from redis.sentinel import Sentinel
from sqlalchemy import select

from data_feeds import schema
from data_feeds.embedded_redis import free_port
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from tests.browser import running_server, sse_messages
from tests.feed_support import basic_grids, case_event, report
from tests.redis_servers import RedisServer
from tests.support import PROJECT, wait_for
from tests.test_ingest_outages import build_district, consumer_state

KEYS = Keys("gridops:")
MASTER = "gridops"
CASES = 900
pytestmark = pytest.mark.slow


def sentinel_config(master_port: int) -> str:
    return (f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
            f"sentinel parallel-syncs {MASTER} 1\n")


@pytest.fixture
def redis_ha(tmp_path):
    """A master, its replica and three sentinels that know each other."""
    master = RedisServer(tmp_path / "master", ("--appendonly", "yes", "--appendfsync", "always"))
    replica = RedisServer(tmp_path / "replica", ("--appendonly", "yes", "--appendfsync", "always", "--replicaof", "127.0.0.1", str(master.port)))
    sentinels = [RedisServer(tmp_path / f"sentinel{n}", sentinel_config=sentinel_config(master.port)) for n in range(3)]
    watch = [redis.Redis(port=s.port, decode_responses=True) for s in sentinels]
    wait_for(lambda: redis.Redis(port=replica.port, decode_responses=True).info("replication").get("master_link_status") == "up", timeout_s=30)
    # each sentinel must know the replica and the two others, or there is no quorum to fail over
    wait_for(lambda: all(int(w.sentinel_master(MASTER)["num-other-sentinels"]) == 2 and int(w.sentinel_master(MASTER)["num-slaves"]) == 1 for w in watch),
             timeout_s=60, every_s=0.5)
    yield {"master": master, "replica": replica, "sentinels": sentinels}
    for server in (*sentinels, replica, master):
        server.stop()


def test_a_failover_mid_burst_loses_nothing_the_master_acknowledged_with_wait(redis_ha, tmp_path):
    sentinel_hosts = ",".join(f"127.0.0.1:{s.port}" for s in redis_ha["sentinels"])
    env_redis = {"REDIS_SENTINELS": sentinel_hosts, "REDIS_MASTER_NAME": MASTER, "REDIS_URL": ""}
    path = tmp_path / "grid.db"
    engine = build_district(f"sqlite:///{path}", tmp_path)
    grids = basic_grids(engine)
    sentinel = Sentinel([("127.0.0.1", s.port) for s in redis_ha["sentinels"]], socket_timeout=2)
    publisher = sentinel.master_for(MASTER, socket_timeout=5)
    env = {**os.environ, **env_redis, "DATABASE_URL": f"sqlite:///{path}", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "consumer.log", "a")
    consumer = subprocess.Popen([sys.executable, "app.py", "ingest", "--consumer", "ha", "--batch", "100"], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    received: list = []
    stop = threading.Event()
    try:
        with running_server({**env_redis, "DATABASE_URL": f"sqlite:///{path}", "GRIDOPS_SIMULATE": "0"}, log_path=tmp_path / "server.log", port=free_port()) as base:
            wait_for(lambda: consumer_state(publisher, "ha").get("state") == "ok", timeout_s=120)
            reader = threading.Thread(target=sse_messages, args=(f"{base}/stream/changes?area=", received, stop), daemon=True)
            reader.start()
            guaranteed, unsure = set(), set()
            t = utc_now() - timedelta(hours=1)
            killed = False
            for start in range(0, CASES, 30):
                chunk = []
                for n in range(start, min(CASES, start + 30)):
                    case_id = f"H{n:04d}"
                    chunk += [report(case_id, t + timedelta(seconds=n), grids[n % len(grids)], event_id=f"{case_id}-report"),
                              case_event(case_id, "register", t + timedelta(seconds=n + 60), event_id=f"{case_id}-register")]
                if start == CASES // 3:
                    wait_for(lambda: len(event_ids(engine)) > 0, timeout_s=60)
                    redis_ha["master"].kill()  # mid-burst, without warning
                    killed = True
                for _ in range(120):  # the publisher retries through the failover, as a field app would
                    try:
                        pipe = publisher.pipeline(transaction=False)
                        for message in chunk:
                            pipe.xadd(KEYS.case_events, message)
                        pipe.execute()
                        # WAIT: how many replicas have the chunk. None left after the failover:
                        # then only the new master has it (and no further failure follows here).
                        replicas = publisher.wait(1, 500)
                        (guaranteed if replicas >= 1 or killed else unsure).update(m["event_id"] for m in chunk)
                        break
                    except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                        time.sleep(0.25)
                else:
                    raise AssertionError("could not publish through the failover")
            new_master = sentinel.discover_master(MASTER)
            assert new_master[1] == redis_ha["replica"].port
            wait_for(lambda: guaranteed <= set(event_ids(engine)), timeout_s=180, every_s=0.5)
            ids = event_ids(engine)
            assert len(ids) == len(set(ids))  # nothing applied twice
            assert consumer.poll() is None
            wait_for(lambda: consumer_state(publisher, "ha").get("state") == "ok", timeout_s=60)
            # the wall's stream, opened before the failover, still signals a new case
            before = len([m for m in received if "seq" in m])
            publisher.xadd(KEYS.case_events, report("AFTER", utc_now() - timedelta(minutes=1), grids[0], event_id="AFTER-report"))
            wait_for(lambda: len([m for m in received if "seq" in m]) > before, timeout_s=60, every_s=0.2)
            with urlopen(f"{base}/healthz", timeout=10) as response:
                assert json.loads(response.read())["redis"]["ok"]
    finally:
        stop.set()
        consumer.terminate()
        consumer.wait(timeout=20)
        log.close()
        engine.dispose()


def event_ids(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(schema.case_events.c.event_id)).scalars())
