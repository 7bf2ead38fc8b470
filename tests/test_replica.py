"""With DATABASE_READ_URL the screens and the API read a real streaming replica (its own
server, made by pg_basebackup) while writes go to the primary, and say when it lags."""
from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app import create_app
from dashboard import cached_reads
from dashboard.context import EXTENSION_KEY
from dashboard.settings import Settings
from data_feeds import rollups, schema
from data_feeds.db import init_db, make_engine, to_db_time
from data_feeds.reference import root_grid
from gridrules.clock import utc_now
from tests import pg_replica
from tests.support import TZ, import_small_district

pytestmark = pytest.mark.skipif(pg_replica.unavailable() is not None, reason=str(pg_replica.unavailable()))


@pytest.fixture(scope="module")
def servers():
    # Not under pytest's folder: the servers run as postgres, who may not enter root's 0700 folders.
    folder = Path(tempfile.mkdtemp(prefix="gridops-replication-"))
    folder.chmod(0o755)
    try:
        primary, replica = pg_replica.start_pair(folder / "servers")
        try:
            yield primary, replica
        finally:
            replica.stop()
            primary.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def add_cases(engine, first: int, count: int) -> None:
    """``count`` cases reported an hour ago (ids from ``first``), with their rollups."""
    with engine.connect() as connection:
        grid = connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)).scalar()
        category = connection.execute(select(schema.categories.c.code, schema.categories.c.dept).where(schema.categories.c.level == 3).order_by(schema.categories.c.code)).first()
    moment = to_db_time(utc_now() - timedelta(hours=1))
    rows = [{
        "id": f"R{number:05d}", "status": "reported", "grid": grid, "category": category.code, "dept": category.dept, "grade": "B",
        "source": "patrol", "reported_at": moment, "updated_at": moment, "register_deadline": moment + timedelta(minutes=30),
        "rework_count": 0, "self_handled": False, "is_open": True,
    } for number in range(first, first + count)]
    with engine.begin() as connection:
        connection.execute(schema.cases.insert(), rows)
        rollups.apply_changes(connection, [], rows, TZ)


def reported(client, area: str, **filters) -> int:
    response = client.get("/api/indicators", query_string={"area": area, **filters})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["reported"]


def test_screens_read_the_replica_and_say_how_far_behind_it_is(servers, redis_url, tmp_path):
    primary, replica = servers
    writer, reader = make_engine(primary.url), make_engine(replica.url)
    try:
        init_db(writer)
        import_small_district(writer)
        rollups.rebuild(writer, TZ)
        add_cases(writer, 0, 5)

        def replica_cases() -> int:
            with reader.connect() as connection:
                return connection.execute(select(func.count()).select_from(schema.cases)).scalar()

        pg_replica.wait_for(lambda: replica_cases() == 5, what="the replica to receive the cases")
        with reader.connect() as connection:
            assert connection.execute(text("SELECT pg_is_in_recovery()")).scalar() is True  # a standby server, not the primary again
        app = create_app(Settings(database_url=primary.url, database_read_url=replica.url, redis_url=redis_url, var_dir=tmp_path, auth=False))
        client = app.server.test_client()
        district = root_grid(writer).code
        assert reported(client, district) == 5
        health = client.get("/healthz").get_json()
        assert health["replica_lag_seconds"] is not None and health["replica_lag_seconds"] <= 5

        # The replica stops replaying: the primary moves on, the screens keep reading the replica and say so.
        with reader.connect() as connection:
            connection.execute(text("SELECT pg_wal_replay_pause()"))
        add_cases(writer, 5, 3)
        pg_replica.wait_for(lambda: (client.get("/healthz").get_json()["replica_lag_seconds"] or 0) > 6, timeout_s=60, what="the lag to show")
        assert reported(client, district, source="patrol") == 5  # a question not asked before: read now, from the replica
        with app.server.app_context():
            notice = cached_reads.replica_notice(app.server.extensions[EXTENSION_KEY], "zh")
        assert notice.startswith("只读库落后主库") and "秒" in notice

        with reader.connect() as connection:
            connection.execute(text("SELECT pg_wal_replay_resume()"))
        pg_replica.wait_for(lambda: replica_cases() == 8, what="the replica to catch up")
        assert reported(client, district, grade="B") == 8
        assert client.get("/healthz").get_json()["replica_lag_seconds"] <= 5
    finally:
        writer.dispose()
        reader.dispose()
