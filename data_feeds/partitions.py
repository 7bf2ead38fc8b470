"""Monthly partitions of the two tables that grow without end, on PostgreSQL.

``case_events`` and ``patrol_points`` are partitioned by range of ``ts``, a partition a
month (``case_events_y2026m12``) and a default one for anything outside them, so that old
GPS points leave by dropping whole partitions (``GRIDOPS_PATROL_RETENTION_DAYS``; the daily
patrol totals stay) instead of a DELETE that rewrites the table, and a query for a month
reads that month. Case history is never dropped. The primary key and the event id's
uniqueness include ``ts`` there, as PostgreSQL requires; a redelivered message carries the
same time, so it is still caught.

The feed consumer keeps partitions ready from four months back (the oldest time the feed
accepts) to two months ahead. SQLite has no partitions: retention deletes old points there.
"""
from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, CreateTable

from data_feeds import schema

log = logging.getLogger(__name__)

TABLES = (schema.case_events, schema.patrol_points)
NAMES = tuple(table.name for table in TABLES)
MONTHS_BACK = 4  # the feed refuses times older than 90 days
MONTHS_AHEAD = 2
PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_y(?P<year>\d{4})m(?P<month>\d{2})$")


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def is_partitioned(connection, table: str) -> bool:
    return connection.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :name AND c.relnamespace = to_regnamespace(current_schema())::oid"), {"name": table}).first() is not None


def _create_statement(table, connection) -> str:
    """The table's CREATE TABLE for PostgreSQL, partitioned by ts: the key and unique constraints with ts."""
    ddl = str(CreateTable(table).compile(dialect=connection.dialect)).strip()
    ddl = ddl.replace("PRIMARY KEY (id)", "PRIMARY KEY (id, ts)")
    ddl = re.sub(r"UNIQUE \(([a-z_]+)\)", r"UNIQUE (\1, ts)", ddl)
    return f"{ddl} PARTITION BY RANGE (ts)"


def create_tables(connection) -> None:
    """Create the partitioned tables, their indexes, default partitions and the months around
    today (PostgreSQL, new database)."""
    for table in TABLES:
        connection.exec_driver_sql(_create_statement(table, connection))
        for index in table.indexes:
            connection.execute(CreateIndex(index))
        connection.exec_driver_sql(f"CREATE TABLE {table.name}_default PARTITION OF {table.name} DEFAULT")
        _create_months(connection, table.name, *_months_around(datetime.now(UTC).date()))


def partition_existing(connection) -> None:
    """Move a database's plain tables into partitioned ones, rows and ids kept (the migration)."""
    for table in TABLES:
        if is_partitioned(connection, table.name):
            continue
        old = f"{table.name}_unpartitioned"
        connection.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {old}")
        for index in table.indexes:
            connection.exec_driver_sql(f"ALTER INDEX IF EXISTS {index.name} RENAME TO {index.name}_unpartitioned")
        for constraint in table.constraints:
            if constraint.name and constraint.name.startswith("uq_"):
                connection.exec_driver_sql(f"ALTER TABLE {old} DROP CONSTRAINT IF EXISTS {constraint.name}")
        connection.exec_driver_sql(f"ALTER TABLE {old} RENAME CONSTRAINT {table.name}_pkey TO {old}_pkey")
        connection.exec_driver_sql(f"ALTER SEQUENCE IF EXISTS {table.name}_id_seq RENAME TO {old}_id_seq")
        connection.exec_driver_sql(_create_statement(table, connection))
        for index in table.indexes:
            connection.execute(CreateIndex(index))
        connection.exec_driver_sql(f"CREATE TABLE {table.name}_default PARTITION OF {table.name} DEFAULT")
        first, last = connection.execute(text(f"SELECT min(ts), max(ts) FROM {old}")).one()
        if first is not None:
            _create_months(connection, table.name, month_start(first.date()), next_month(last.date()))
        columns = ", ".join(column.name for column in table.columns)
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {old}")
        connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)")
        connection.exec_driver_sql(f"DROP TABLE {old}")


def _months_around(today: date) -> tuple[date, date]:
    """From MONTHS_BACK months before ``today``'s month to MONTHS_AHEAD months after it (exclusive end)."""
    first = month_start(today)
    for _ in range(MONTHS_BACK):
        first = month_start(first - timedelta(days=1))
    end = month_start(today)
    for _ in range(MONTHS_AHEAD + 1):
        end = next_month(end)
    return first, end


def _create_months(connection, table: str, first: date, end: date) -> list[str]:
    """Partitions for the months from ``first`` up to (not including) ``end``; the names created."""
    created = []
    existing = set(months_of(connection, table))
    month = month_start(first)
    while month < end:
        if month not in existing and not _default_holds(connection, table, month):
            name = partition_name(table, month)
            # A month the default partition already holds rows of cannot be split off: those rows stay there.
            savepoint = connection.begin_nested()
            try:
                connection.exec_driver_sql(
                    f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')")
            except DBAPIError as error:
                savepoint.rollback()
                log.warning("partition %s not created: %s", name, str(error.orig).splitlines()[0])
            else:
                savepoint.commit()
                created.append(name)
        month = next_month(month)
    return created


def _default_holds(connection, table: str, month: date) -> bool:
    """Whether the default partition holds rows of ``month`` (which then stay there: a month
    cannot be split off a default partition that has its rows)."""
    return connection.exec_driver_sql(
        f"SELECT 1 FROM {table}_default WHERE ts >= '{month.isoformat()}' AND ts < '{next_month(month).isoformat()}' LIMIT 1").first() is not None


def months_of(connection, table: str) -> list[date]:
    """The months ``table`` has a partition for, oldest first."""
    rows = connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :table AND p.relnamespace = to_regnamespace(current_schema())::oid"), {"table": table}).scalars()
    months = []
    for name in rows:
        match = PARTITION_NAME.match(name)
        if match and match["table"] == table:
            months.append(date(int(match["year"]), int(match["month"]), 1))
    return sorted(months)


def maintain(engine, now: datetime, patrol_retention_days: float | None) -> dict:
    """Partitions ready around ``now``; patrol points older than the retention dropped (whole
    partitions on PostgreSQL, a DELETE on SQLite). Returns what was created and dropped."""
    created, dropped = [], []
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            for table in NAMES:
                if is_partitioned(connection, table):
                    created += _create_months(connection, table, *_months_around(now.date()))
        if patrol_retention_days:
            cutoff = now.replace(tzinfo=None) - timedelta(days=patrol_retention_days)
            if connection.dialect.name == "postgresql" and is_partitioned(connection, "patrol_points"):
                for month in months_of(connection, "patrol_points"):
                    if datetime.combine(next_month(month), datetime.min.time()) <= cutoff:
                        name = partition_name("patrol_points", month)
                        connection.exec_driver_sql(f"DROP TABLE {name}")
                        dropped.append(name)
            else:
                count = connection.execute(delete(schema.patrol_points).where(schema.patrol_points.c.ts < cutoff)).rowcount
                if count:
                    dropped.append(f"{count} patrol points")
    if created or dropped:
        log.info("partitions: created %s; dropped %s", created or "none", dropped or "none")
    return {"created": created, "dropped": dropped}
