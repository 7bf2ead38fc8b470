"""Fast bulk writes for the feed's hot path: one driver-level executemany per table and batch.

SQLAlchemy's per-row parameter processing costs more than the write itself at 20,000 GPS
pings a second, so the consumer's patrol writes go to the driver directly. The SQL stays
portable: INSERT … ON CONFLICT for SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE for
MySQL/MariaDB; times are handed to SQLite in the format SQLAlchemy itself stores.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
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


def frame_tuples(dialect, frame: pd.DataFrame) -> list[tuple]:
    """Rows of a frame as driver parameters, converted column by column (vectorised)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            values = column.to_numpy(dtype="datetime64[us]")
            if dialect.name == "sqlite":
                text = np.char.replace(np.datetime_as_string(values, unit="us"), "T", " ").astype(object)
                text[np.isnat(values)] = None
                columns.append(text)
            else:
                moments = np.array(column.dt.to_pydatetime(), dtype=object)
                moments[column.isna().to_numpy()] = None
                columns.append(moments)
        elif pd.api.types.is_float_dtype(column):
            values = column.to_numpy(dtype=float)
            if np.isnan(values).any():
                converted = values.astype(object)
                converted[np.isnan(values)] = None
                columns.append(converted)
            else:
                columns.append(values.tolist())
        elif pd.api.types.is_integer_dtype(column):
            columns.append(column.to_numpy().tolist())
        else:
            columns.append(column.to_numpy(dtype=object))
    return list(zip(*columns))


def insert_frame(connection, table, frame: pd.DataFrame) -> None:
    """Plain INSERT of every row of a frame (columns named as the table's)."""
    if frame.empty:
        return
    dialect = connection.dialect
    marks = ", ".join([_placeholder(dialect)] * len(frame.columns))
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(frame.columns)}) VALUES ({marks})", frame_tuples(dialect, frame))


def upsert_frame(connection, table, keys: tuple[str, ...], frame: pd.DataFrame, add: tuple[str, ...] = (), replace: tuple[str, ...] = ()) -> None:
    """Insert rows of ``frame`` (columns ``keys + add + replace``), or on a key already stored add the
    ``add`` columns to it and replace the ``replace`` ones, in one statement."""
    if frame.empty:
        return
    columns = list(keys) + list(add) + list(replace)
    connection.exec_driver_sql(_upsert_sql(connection.dialect, table, keys, add, replace), frame_tuples(connection.dialect, frame[columns]))


def _upsert_sql(dialect, table, keys, add, replace) -> str:
    columns = list(keys) + list(add) + list(replace)
    marks = ", ".join([_placeholder(dialect)] * len(columns))
    insert = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    if dialect.name == "mysql":
        updates = [f"{c} = {c} + VALUES({c})" for c in add] + [f"{c} = VALUES({c})" for c in replace]
        return f"{insert} ON DUPLICATE KEY UPDATE {', '.join(updates)}"
    updates = [f"{c} = {table.name}.{c} + excluded.{c}" for c in add] + [f"{c} = excluded.{c}" for c in replace]
    return f"{insert} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"

