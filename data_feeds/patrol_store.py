"""Patrol in the grid database: committed track state, thinned points, daily totals.

On the feed's hot path, so written with driver-level bulk statements (``data_feeds.bulk``).
"""
from __future__ import annotations

import pandas as pd

from dashboard.patrol import TrackState
from data_feeds import bulk, schema

STATE_COLUMNS = ("worker", "ts", "lat", "lon", "grid", "kept_ts", "kept_lat", "kept_lon")


def load_states(connection, workers, lock: bool = False) -> dict[str, TrackState]:
    """The committed last point of each worker; ``lock`` serialises concurrent consumers."""
    result = {}
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    ids = sorted(set(workers))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT {', '.join(STATE_COLUMNS)} FROM {schema.patrol_state.name} WHERE worker IN ({', '.join([mark] * len(chunk))}) ORDER BY worker"
        if lock and dialect.name in ("postgresql", "mysql"):
            sql += " FOR UPDATE"
        for worker, ts, lat, lon, grid, kept_ts, kept_lat, kept_lon in connection.exec_driver_sql(sql, tuple(chunk)):
            result[worker] = TrackState(bulk.read_datetime(ts), lat, lon, grid, bulk.read_datetime(kept_ts), kept_lat, kept_lon)
    return result


def save_states(connection, states: dict[str, TrackState]) -> None:
    rows = [
        {"worker": worker, "ts": s.ts, "lat": s.lat, "lon": s.lon, "grid": s.grid, "kept_ts": s.kept_ts, "kept_lat": s.kept_lat, "kept_lon": s.kept_lon}
        for worker, s in states.items()
    ]
    bulk.upsert_many(connection, schema.patrol_state, ("worker",), rows, replace=STATE_COLUMNS[1:])


def insert_points(connection, kept: pd.DataFrame) -> None:
    if kept.empty:
        return
    rows = kept[["worker", "ts", "lat", "lon", "grid", "speed", "heading"]].to_dict("records")
    bulk.insert_many(connection, schema.patrol_points, rows)


def add_to_days(connection, summary: pd.DataFrame) -> None:
    """Add a batch's increments to the daily totals per day, worker and grid."""
    if summary.empty:
        return
    rows = [
        {"day": row["day"], "worker": row["worker"], "grid": row["grid"], "seconds": float(row["seconds"]),
         "meters": float(row["meters"]), "points": int(row["points"]), "rounds": int(row["rounds"])}
        for row in summary.to_dict("records")
    ]
    bulk.upsert_many(connection, schema.patrol_days, ("day", "worker", "grid"), rows, add=("seconds", "meters", "points", "rounds"))
