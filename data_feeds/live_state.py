"""Live state in Redis for the screens: open cases, today's counters, worker positions, changes.

The grid database is the system of record; this is its fast mirror. The consumer writes it
after each committed batch and rebuilds it from the database when it starts, so a crash
between the commit and the Redis write heals on the next start.
"""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from dashboard.lifecycle import OPEN_STATUSES, Case
from data_feeds import db, schema
from data_feeds.case_store import case_from_row
from data_feeds.keys import Keys

TRAIL_LENGTH = 20
CHANGES_MAX_LENGTH = 5000


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment else None


def open_case_record(case: Case) -> dict:
    """What the screens need of an open case: where, what, and its current stage deadline."""
    return {
        "id": case.case_id, "status": case.status, "stage": case.stage, "grid": case.grid, "category": case.category,
        "grade": case.grade, "dept": case.dept, "source": case.source, "lat": case.lat, "lon": case.lon,
        "reported_at": _iso(case.reported_at), "stage_started_at": _iso(case.stage_started_at),
        "stage_deadline": _iso(case.stage_deadline), "stage_due_soon_at": _iso(case.stage_due_soon_at),
        "deadline": _iso(case.deadline), "rework_count": case.rework_count,
    }


def record_case_changes(pipe, keys: Keys, applied, ancestors, tz) -> None:
    """Queue the live-state updates of applied events (``(before, after, event)`` triples)."""
    for _before, after, event in applied:
        day = event.ts.astimezone(tz).date().isoformat()
        counters = keys.today_counters(day)
        for area in ancestors.get(after.grid, (after.grid,)):
            pipe.hincrby(counters, f"{area}|{event.action}", 1)
        pipe.expire(counters, 3 * 86400)
        if after.status in OPEN_STATUSES:
            pipe.hset(keys.open_cases, after.case_id, json.dumps(open_case_record(after), ensure_ascii=False))
        else:
            pipe.hdel(keys.open_cases, after.case_id)
        pipe.xadd(
            keys.changes,
            {
                "kind": "case", "case_id": after.case_id, "action": event.action, "status": after.status,
                "grid": after.grid, "grade": after.grade, "category": after.category, "dept": after.dept or "",
                "stage": after.stage or "", "ts": _iso(event.ts), "lat": "" if after.lat is None else str(after.lat),
                "lon": "" if after.lon is None else str(after.lon),
            },
            maxlen=CHANGES_MAX_LENGTH,
            approximate=True,
        )


POSITION_FIELDS = ("lat", "lon", "grid", "speed", "heading", "epoch")  # the compact record in the workers hash


def record_positions(pipe, keys: Keys, accepted: pd.DataFrame, kept: pd.DataFrame | None = None) -> None:
    """Queue each worker's newest position and when it was last seen; trails grow by the
    thinned (kept) points, about one per 30 s."""
    if accepted.empty:
        return
    latest = accepted.drop_duplicates("worker", keep="last")  # accepted is sorted by worker and time
    epoch = latest["ts"].to_numpy(dtype="datetime64[us]").astype("int64") / 1_000_000
    speed = latest["speed"].round(2).to_numpy()
    heading = latest["heading"].round(1).to_numpy()
    # A compact "lat,lon,grid,speed,heading,epoch" line: at city scale this is written
    # 20,000 times a second, and JSON costs more than the write itself.
    positions = {
        worker: f"{lat:.6f},{lon:.6f},{grid},{'' if sp != sp else sp},{'' if hd != hd else hd},{when:.3f}"
        for worker, lat, lon, grid, sp, hd, when in zip(latest["worker"], latest["lat"], latest["lon"], latest["grid"], speed, heading, epoch)
    }
    pipe.hset(keys.workers, mapping=positions)
    pipe.zadd(keys.workers_seen, dict(zip(latest["worker"], epoch.tolist())))
    if kept is not None:
        for worker, lat, lon in zip(kept["worker"], kept["lat"], kept["lon"]):
            pipe.lpush(keys.trail(worker), f"{lat:.6f},{lon:.6f}")
            pipe.ltrim(keys.trail(worker), 0, TRAIL_LENGTH - 1)
    # who moved, by arrival: a device that sends its buffer late has still moved since the screen last looked
    pipe.xadd(keys.changes, {"kind": "gps", "workers": ",".join(positions)}, maxlen=CHANGES_MAX_LENGTH, approximate=True)


def parse_position(worker: str, line: str) -> dict:
    """The record of ``record_positions`` as a dict (speed and heading None when unknown)."""
    lat, lon, grid, speed, heading, epoch = line.split(",")
    return {
        "worker": worker, "lat": float(lat), "lon": float(lon), "grid": grid,
        "speed": float(speed) if speed else None, "heading": float(heading) if heading else None,
        "ts": datetime.fromtimestamp(float(epoch), tz=timezone.utc).isoformat(), "epoch": float(epoch),
    }


def grid_ancestors(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Every grid → itself and its ancestors, from the materialised paths."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.grids.c.code, schema.grids.c.path)).all()
    return {code: tuple(part for part in path.split("/") if part) for code, path in rows}


def rebuild(engine: Engine, redis_client, keys: Keys, tz, now: datetime, ancestors) -> None:
    """Replace the open cases and today's counters with what the database says."""
    with engine.connect() as connection:
        open_rows = connection.execute(select(schema.cases).where(schema.cases.c.is_open.is_(True))).mappings().all()
        midnight = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        counts = connection.execute(
            select(schema.cases.c.grid, schema.case_events.c.action, func.count())
            .select_from(schema.case_events.join(schema.cases, schema.cases.c.id == schema.case_events.c.case_id))
            .where(schema.case_events.c.ts >= db.to_db_time(midnight))
            .where(schema.case_events.c.ts < db.to_db_time(midnight + timedelta(days=1)))
            .group_by(schema.cases.c.grid, schema.case_events.c.action)
        ).all()
    counters: dict[str, int] = {}
    for grid, action, count in counts:
        for area in ancestors.get(grid, (grid,)):
            counters[f"{area}|{action}"] = counters.get(f"{area}|{action}", 0) + int(count)
    day_key = keys.today_counters(midnight.date().isoformat())
    pipe = redis_client.pipeline(transaction=True)
    pipe.delete(keys.open_cases, day_key)
    records = {row["id"]: json.dumps(open_case_record(case_from_row(row)), ensure_ascii=False) for row in open_rows}
    for start in range(0, len(records), 5000):
        chunk = dict(list(records.items())[start : start + 5000])
        pipe.hset(keys.open_cases, mapping=chunk)
    if counters:
        pipe.hset(day_key, mapping=counters)
        pipe.expire(day_key, 3 * 86400)
    pipe.execute()


# ---------------------------------------------------------------- readers


def _decoded(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def open_cases(redis_client, keys: Keys) -> list[dict]:
    return [json.loads(_decoded(value)) for value in redis_client.hvals(keys.open_cases)]


def open_cases_by_id(redis_client, keys: Keys, case_ids: list[str]) -> dict[str, dict]:
    """The live records of those of these cases that are open."""
    raw = redis_client.hmget(keys.open_cases, case_ids) if case_ids else []
    return {case_id: json.loads(_decoded(value)) for case_id, value in zip(case_ids, raw) if value is not None}


def today_counters(redis_client, keys: Keys, day: str, area: str) -> dict[str, int]:
    """Today's transitions of an area by action, as the consumer counted them."""
    raw = redis_client.hgetall(keys.today_counters(day))
    prefix = f"{area}|"
    return {_decoded(k)[len(prefix):]: int(v) for k, v in raw.items() if _decoded(k).startswith(prefix)}


def worker_positions(redis_client, keys: Keys, now: datetime, offline_after_minutes: float) -> list[dict]:
    """Every worker's last position with ``online`` (a ping within the last N minutes)."""
    cutoff = now.timestamp() - offline_after_minutes * 60
    seen = {_decoded(k): v for k, v in redis_client.zrange(keys.workers_seen, 0, -1, withscores=True)}
    result = []
    for worker, value in redis_client.hgetall(keys.workers).items():
        record = parse_position(_decoded(worker), _decoded(value))
        record["online"] = seen.get(record["worker"], 0) >= cutoff
        result.append(record)
    return result


def online_count(redis_client, keys: Keys, now: datetime, offline_after_minutes: float) -> int:
    return int(redis_client.zcount(keys.workers_seen, now.timestamp() - offline_after_minutes * 60, "+inf"))


def trail(redis_client, keys: Keys, worker: str) -> list[tuple[float, float]]:
    """The worker's recent positions, oldest first."""
    points = [_decoded(p).split(",") for p in redis_client.lrange(keys.trail(worker), 0, -1)]
    return [(float(lat), float(lon)) for lat, lon in reversed(points)]

