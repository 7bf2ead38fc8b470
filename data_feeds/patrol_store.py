"""Patrol in the grid database: committed track state, thinned points, daily totals."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, bindparam, select, tuple_

from dashboard.patrol import TrackState
from data_feeds import schema


def load_states(connection, workers, lock: bool = False) -> dict[str, TrackState]:
    """The committed last point of each worker; ``lock`` serialises concurrent consumers."""
    result = {}
    ids = sorted(set(workers))
    for start in range(0, len(ids), 500):
        statement = select(schema.patrol_state).where(schema.patrol_state.c.worker.in_(ids[start : start + 500])).order_by(schema.patrol_state.c.worker)
        if lock:
            statement = statement.with_for_update()
        for row in connection.execute(statement).mappings():
            result[row["worker"]] = TrackState(
                pd.Timestamp(row["ts"]), row["lat"], row["lon"], row["grid"], pd.Timestamp(row["kept_ts"]), row["kept_lat"], row["kept_lon"]
            )
    return result


def save_states(connection, states: dict[str, TrackState], existing: set[str]) -> None:
    rows = [
        {"worker": worker, "ts": s.ts.to_pydatetime(), "lat": s.lat, "lon": s.lon, "grid": s.grid,
         "kept_ts": s.kept_ts.to_pydatetime(), "kept_lat": s.kept_lat, "kept_lon": s.kept_lon}
        for worker, s in states.items()
    ]
    new_rows = [row for row in rows if row["worker"] not in existing]
    old_rows = [row for row in rows if row["worker"] in existing]
    if new_rows:
        connection.execute(schema.patrol_state.insert(), new_rows)
    if old_rows:
        columns = [name for name in old_rows[0] if name != "worker"]
        connection.execute(
            schema.patrol_state.update().where(schema.patrol_state.c.worker == bindparam("_worker")).values({c: bindparam(f"_{c}") for c in columns}),
            [{"_worker": row["worker"], **{f"_{c}": row[c] for c in columns}} for row in old_rows],
        )


def insert_points(connection, kept: pd.DataFrame) -> None:
    if kept.empty:
        return
    rows = [
        {"worker": r.worker, "ts": pd.Timestamp(r.ts).to_pydatetime(), "lat": float(r.lat), "lon": float(r.lon), "grid": r.grid,
         "speed": None if pd.isna(r.speed) else float(r.speed), "heading": None if pd.isna(r.heading) else float(r.heading)}
        for r in kept.itertuples(index=False)
    ]
    connection.execute(schema.patrol_points.insert(), rows)


def add_to_days(connection, summary: pd.DataFrame) -> None:
    """Add a batch's increments to the daily totals per day, worker and grid."""
    if summary.empty:
        return
    d = schema.patrol_days.c
    rows = summary.to_dict("records")
    keys = [(row["day"], row["worker"], row["grid"]) for row in rows]
    existing = set()
    for start in range(0, len(keys), 300):
        chunk = keys[start : start + 300]
        existing.update(
            tuple(found)
            for found in connection.execute(select(d.day, d.worker, d.grid).where(tuple_(d.day, d.worker, d.grid).in_(chunk))).all()
        )
    new_rows = [row for row, key in zip(rows, keys) if key not in existing]
    old_rows = [row for row, key in zip(rows, keys) if key in existing]
    if new_rows:
        connection.execute(schema.patrol_days.insert(), [_numbers(row) for row in new_rows])
    if old_rows:
        statement = (
            schema.patrol_days.update()
            .where(and_(d.day == bindparam("_day"), d.worker == bindparam("_worker"), d.grid == bindparam("_grid")))
            .values(
                seconds=d.seconds + bindparam("_seconds"),
                meters=d.meters + bindparam("_meters"),
                points=d.points + bindparam("_points"),
                rounds=d.rounds + bindparam("_rounds"),
            )
        )
        connection.execute(statement, [{f"_{k}": v for k, v in _numbers(row).items()} for row in old_rows])


def _numbers(row: dict) -> dict:
    return {
        "day": row["day"], "worker": row["worker"], "grid": row["grid"], "seconds": float(row["seconds"]),
        "meters": float(row["meters"]), "points": int(row["points"]), "rounds": int(row["rounds"]),
    }
