"""Fast bulk writes for the feed's hot path: one driver-level executemany per table and batch.

SQLAlchemy's per-row parameter processing costs more than the write itself at 20,000 GPS
pings a second, so the consumer's patrol writes go to the driver directly. The SQL stays
portable: INSERT … ON CONFLICT for SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE for
MySQL/MariaDB; times are handed to SQLite in the format SQLAlchemy itself stores.
"""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd

SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # what SQLAlchemy's SQLite DateTime writes and reads


def _placeholder(dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


def _driver_value(dialect, value):
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if dialect.name == "sqlite" and isinstance(value, datetime):
        return value.strftime(SQLITE_DATETIME_FORMAT)
    if isinstance(value, float) and value != value:  # NaN → NULL
        return None
    return value


def _tuples(dialect, rows: list[dict], columns: list[str]) -> list[tuple]:
    return [tuple(_driver_value(dialect, row[column]) for column in columns) for row in rows]


def insert_many(connection, table, rows: list[dict]) -> None:
    """Plain INSERT of every row."""
    if not rows:
        return
    columns = list(rows[0])
    dialect = connection.dialect
    marks = ", ".join([_placeholder(dialect)] * len(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    connection.exec_driver_sql(sql, _tuples(dialect, rows, columns))


def upsert_many(connection, table, keys: tuple[str, ...], rows: list[dict], add: tuple[str, ...] = (), replace: tuple[str, ...] = ()) -> None:
    """INSERT each row, or on a key conflict add ``add`` columns to the stored ones and
    overwrite ``replace`` columns."""
    if not rows:
        return
    columns = list(keys) + list(add) + list(replace)
    dialect = connection.dialect
    marks = ", ".join([_placeholder(dialect)] * len(columns))
    insert = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    if dialect.name == "mysql":
        updates = [f"{c} = {c} + VALUES({c})" for c in add] + [f"{c} = VALUES({c})" for c in replace]
        sql = f"{insert} ON DUPLICATE KEY UPDATE {', '.join(updates)}"
    else:
        updates = [f"{c} = {table.name}.{c} + excluded.{c}" for c in add] + [f"{c} = excluded.{c}" for c in replace]
        sql = f"{insert} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
    connection.exec_driver_sql(sql, _tuples(dialect, rows, columns))


def read_datetime(value) -> pd.Timestamp:
    """A stored time as read through the driver (a string on SQLite) → naive UTC Timestamp."""
    if isinstance(value, str):
        return pd.Timestamp(datetime.fromisoformat(value))
    if isinstance(value, date):
        return pd.Timestamp(value)
    return pd.Timestamp(value)
