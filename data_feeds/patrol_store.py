"""Patrol in the grid database: committed track state, thinned points, daily totals.

On the feed's hot path, so read and written with driver-level bulk statements
(``data_feeds.bulk_writes``), a frame at a time.
"""
from __future__ import annotations

import pandas as pd

from data_feeds import bulk_writes, schema
from gridrules.patrol import STATE_COLUMNS, empty_states


def load_states(connection, workers, lock: bool = False) -> pd.DataFrame:
    """The committed last point of each worker; ``lock`` serialises concurrent consumers."""
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    ids = sorted(set(workers))
    rows = []
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        sql = f"SELECT {', '.join(STATE_COLUMNS)} FROM {schema.patrol_state.name} WHERE worker IN ({', '.join([mark] * len(chunk))}) ORDER BY worker"
        if lock and dialect.name in ("postgresql", "mysql"):
            sql += " FOR UPDATE"
        rows.extend(tuple(row) for row in connection.exec_driver_sql(sql, tuple(chunk)))  # tuples: pandas probes Row objects slowly
    if not rows:
        return empty_states()
    frame = pd.DataFrame.from_records(rows, columns=STATE_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601" if dialect.name == "sqlite" else None).astype("datetime64[us]")
    frame["odometer"] = frame["odometer"].fillna(0.0).astype(float)
    return frame


def save_states(connection, states: pd.DataFrame) -> None:
    bulk_writes.upsert_frame(connection, schema.patrol_state, ("worker",), states, replace=tuple(STATE_COLUMNS[1:]))


def insert_points(connection, kept: pd.DataFrame) -> None:
    bulk_writes.insert_frame(connection, schema.patrol_points, kept[["worker", "ts", "lat", "lon", "grid", "speed", "heading"]])


def add_to_days(connection, summary: pd.DataFrame) -> None:
    """Add a batch's increments to the daily totals per day, worker and grid."""
    if summary.empty:
        return
    frame = summary.astype({"seconds": float, "meters": float, "points": int, "rounds": int})
    bulk_writes.upsert_frame(connection, schema.patrol_days, ("day", "worker", "grid"), frame, add=("seconds", "meters", "points", "rounds"))
