"""Case events and patrol points by month on PostgreSQL; old GPS points leave with their
partition (their daily totals stay); SQLite keeps working without partitions."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from dashboard.settings import Settings, SettingsError
from data_feeds import partitions, schema
from data_feeds.db import init_db, make_engine
from tests.support import utc

NOW = utc(2026, 12, 3, 8, 0)


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def event(number: int, ts: datetime) -> dict:
    return {"event_id": f"e{number}", "case_id": f"K{number}", "action": "report", "ts": naive(ts), "actor": "w",
            "to_status": "reported", "received_at": naive(ts)}


def point(worker: str, ts: datetime) -> dict:
    return {"worker": worker, "ts": naive(ts), "lat": 31.2, "lon": 121.4}


def holder(connection, table: str, where: str) -> str:
    return connection.execute(text(f"SELECT tableoid::regclass::text FROM {table} WHERE {where}")).scalar()


@pytest.fixture
def postgresql_engine(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL's")
    engine = make_engine(database_url)
    init_db(engine)
    yield engine
    engine.dispose()


def test_events_and_points_land_in_their_months_partition(postgresql_engine):
    engine = postgresql_engine
    with engine.connect() as connection:
        assert partitions.is_partitioned(connection, "case_events") and partitions.is_partitioned(connection, "patrol_points")
    partitions.maintain(engine, NOW, None)
    with engine.connect() as connection:
        months = partitions.months_of(connection, "case_events")
        assert date(2026, 8, 1) in months and date(2027, 2, 1) in months  # four months back, two ahead
    assert partitions.maintain(engine, NOW, None)["created"] == []  # and again: nothing to do
    with engine.begin() as connection:
        connection.execute(schema.case_events.insert(), [event(1, NOW - timedelta(days=40)), event(2, NOW), event(3, utc(2031, 1, 1))])
        connection.execute(schema.patrol_points.insert(), [point("W1", NOW)])
    with engine.connect() as connection:
        assert holder(connection, "case_events", "event_id = 'e1'").endswith("case_events_y2026m10")
        assert holder(connection, "case_events", "event_id = 'e2'").endswith("case_events_y2026m12")
        assert holder(connection, "case_events", "event_id = 'e3'").endswith("case_events_default")  # far ahead: kept, not refused
        assert holder(connection, "patrol_points", "worker = 'W1'").endswith("patrol_points_y2026m12")
        ids = list(connection.execute(select(schema.case_events.c.id).order_by(schema.case_events.c.id)).scalars())
    assert len(set(ids)) == 3


def test_retention_drops_whole_months_of_points_and_keeps_their_totals_and_the_case_history(postgresql_engine):
    engine = postgresql_engine
    old = NOW - timedelta(days=200)
    with engine.begin() as connection:
        partitions._create_months(connection, "patrol_points", date(2026, 5, 1), date(2026, 6, 1))
        partitions._create_months(connection, "case_events", date(2026, 5, 1), date(2026, 6, 1))
        connection.execute(schema.patrol_points.insert(), [point("W1", old), point("W1", NOW - timedelta(days=1))])
        connection.execute(schema.patrol_days.insert(), [{"day": old.date(), "worker": "W1", "grid": "G1", "seconds": 3600.0, "meters": 2000.0, "points": 1, "rounds": 1}])
        connection.execute(schema.case_events.insert(), [event(1, old)])
    result = partitions.maintain(engine, NOW, 90)
    assert "patrol_points_y2026m05" in result["dropped"]
    assert not any(name.startswith("case_events") for name in result["dropped"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.patrol_points)).scalar() == 1  # yesterday's stays
        assert connection.execute(select(func.count()).select_from(schema.patrol_days)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(schema.case_events)).scalar() == 1
        assert date(2026, 5, 1) not in partitions.months_of(connection, "patrol_points")


def test_sqlite_keeps_working_and_deletes_old_points(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'grid.db'}")
    init_db(engine)
    with engine.begin() as connection:
        connection.execute(schema.patrol_points.insert(), [point("W1", NOW - timedelta(days=200)), point("W1", NOW)])
    assert partitions.maintain(engine, NOW, 90)["dropped"] == ["1 patrol points"]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.patrol_points)).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("value", ["0", "3", "-5", "many", "99999999"])
def test_a_retention_out_of_bounds_is_refused(value):
    with pytest.raises(SettingsError, match="GRIDOPS_PATROL_RETENTION_DAYS"):
        Settings.from_env({"GRIDOPS_PATROL_RETENTION_DAYS": value})
    assert Settings.from_env({"GRIDOPS_PATROL_RETENTION_DAYS": "180"}).patrol_retention_days == 180
    assert Settings.from_env({}).patrol_retention_days is None
