"""Live state in Redis for the screens: open cases, worker positions, changes.

The grid database is the system of record; this is its fast mirror. The consumer writes it
after each committed batch and brings it up to the database when it starts, so a crash
between the commit and the Redis write heals on the next start.

Several consumers write it at once, and one may rebuild it while the others write: their
writes can land in any order. So no write can undo a newer one. A case's record changes
only to a newer state (``case_version``) and a closed case cannot come back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.case_store import case_from_row, load_cases_by_id
from data_feeds.keys import Keys
from data_feeds.redis_client import text
from gridrules.lifecycle import OPEN_STATUSES, Case, case_version

TRAIL_LENGTH = 20
CHANGES_MAX_LENGTH = 5000


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def open_case_record(case: Case) -> dict:
    """What the screens need of an open case: where, what, and its current stage deadline."""
    return {
        "id": case.case_id, "status": case.status, "stage": case.stage, "grid": case.grid, "category": case.category,
        "grade": case.grade, "dept": case.dept, "source": case.source, "lat": case.lat, "lon": case.lon,
        "reported_at": _iso(case.reported_at), "stage_started_at": _iso(case.stage_started_at),
        "stage_deadline": _iso(case.stage_deadline), "stage_due_soon_at": _iso(case.stage_due_soon_at),
        "deadline": _iso(case.deadline), "rework_count": case.rework_count, "dispatched_at": _iso(case.dispatched_at),
        "supervise_count": case.supervise_count, "redispatch_count": case.redispatch_count, "extension_count": case.extension_count,
    }


CLOSED_MEMORY_S = 3600  # how long a closed case is remembered, so that a late write of it as open is refused
SCRIPT_CHUNK = 1000  # cases or events per script call

# KEYS: open records, their versions, recently closed. ARGV: memory (s), then per case: id, version, record ('' = no longer open).
SET_CASE_STATES = """
local now = tonumber(redis.call('TIME')[1])
local changed = 0
for i = 2, #ARGV, 3 do
  local id, version, record = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if not redis.call('ZSCORE', KEYS[3], id) and version >= tonumber(redis.call('HGET', KEYS[2], id) or '-1') then
    if record == '' then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      redis.call('ZADD', KEYS[3], now, id)
    else
      redis.call('HSET', KEYS[1], id, record)
      redis.call('HSET', KEYS[2], id, version)
    end
    changed = changed + 1
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[1]))
return changed
"""

GONE_VERSION = 1 << 40  # a case the database does not have: above any version


def queue_case_states(pipe, keys: Keys, states: list[tuple[str, int, dict | None]]) -> None:
    """Queue (case id, version, record or None when no longer open) as ordered writes."""
    script = pipe.register_script(SET_CASE_STATES)
    for start in range(0, len(states), SCRIPT_CHUNK):
        args = [CLOSED_MEMORY_S]
        for case_id, version, record in states[start : start + SCRIPT_CHUNK]:
            args += [case_id, version, "" if record is None else json.dumps(record, ensure_ascii=False)]
        script(keys=[keys.open_cases, keys.open_versions, keys.closed_recently], args=args, client=pipe)


def case_state(case: Case) -> tuple[str, int, dict | None]:
    return case.case_id, case_version(case), open_case_record(case) if case.status in OPEN_STATUSES else None


def record_case_changes(pipe, keys: Keys, applied) -> None:
    """Queue the live-state updates of applied events (``(before, after, event)`` triples)."""
    latest: dict[str, Case] = {}
    for _before, after, event in applied:
        latest[after.case_id] = after
        pipe.xadd(
            keys.changes,
            {
                "kind": "case", "case_id": after.case_id, "action": event.action, "status": after.status,
                "grid": after.grid, "grade": after.grade, "category": after.category, "dept": after.dept or "",
                "stage": after.stage or "", "ts": _iso(event.ts), "lat": "" if after.lat is None else str(after.lat),
                "dispatched_at": _iso(after.dispatched_at) or "",
                "lon": "" if after.lon is None else str(after.lon),
            },
            maxlen=CHANGES_MAX_LENGTH,
            approximate=True,
        )
    queue_case_states(pipe, keys, [case_state(case) for case in latest.values()])


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
    pipe.geoadd(keys.workers_geo, [value for trio in zip(latest["lon"], latest["lat"], latest["worker"]) for value in trio])
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
        "ts": datetime.fromtimestamp(float(epoch), tz=UTC).isoformat(), "epoch": float(epoch),
    }


def grid_ancestors(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Every grid → itself and its ancestors, from the materialised paths."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.grids.c.code, schema.grids.c.path)).all()
    return {code: tuple(part for part in path.split("/") if part) for code, path in rows}


@dataclass(frozen=True)
class Snapshot:
    """What the database says at one moment: the open cases."""

    open_cases: list[Case]


def read_snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as connection:
        open_rows = connection.execute(select(schema.cases).where(schema.cases.c.is_open.is_(True))).mappings().all()
    return Snapshot([case_from_row(row) for row in open_rows])


def write_snapshot(engine: Engine, redis_client, keys: Keys, snapshot: Snapshot) -> None:
    """Bring the live state up to a snapshot, however old, without undoing newer writes;
    records the snapshot does not have are checked against the database as it is now
    (closed since, or reported since the snapshot was read)."""
    pipe = redis_client.pipeline(transaction=False)
    queue_case_states(pipe, keys, [case_state(case) for case in snapshot.open_cases])
    pipe.execute()
    unknown = {text(case_id) for case_id in redis_client.hkeys(keys.open_cases)} - {case.case_id for case in snapshot.open_cases}
    if unknown:
        with engine.connect() as connection:
            current = load_cases_by_id(connection, unknown)
        pipe = redis_client.pipeline(transaction=False)
        queue_case_states(pipe, keys, [case_state(current[i]) if i in current else (i, GONE_VERSION, None) for i in sorted(unknown)])
        pipe.execute()


def rebuild(engine: Engine, redis_client, keys: Keys) -> None:
    """Bring the open cases up to the database; safe while other consumers write (every write is
    ordered). A change entry "rebuild" then tells every open wall to take all its cases anew."""
    write_snapshot(engine, redis_client, keys, read_snapshot(engine))
    redis_client.xadd(keys.changes, {"kind": "rebuild"}, maxlen=CHANGES_MAX_LENGTH, approximate=True)


# ---------------------------------------------------------------- readers



def open_cases(redis_client, keys: Keys) -> list[dict]:
    return [json.loads(text(value)) for value in redis_client.hvals(keys.open_cases)]


def open_cases_by_id(redis_client, keys: Keys, case_ids: list[str]) -> dict[str, dict]:
    """The live records of those of these cases that are open."""
    raw = redis_client.hmget(keys.open_cases, case_ids) if case_ids else []
    return {case_id: json.loads(text(value)) for case_id, value in zip(case_ids, raw) if value is not None}


def worker_positions(redis_client, keys: Keys, now: datetime, offline_after_minutes: float) -> list[dict]:
    """Every worker's last position with ``online`` (a ping within the last N minutes)."""
    cutoff = now.timestamp() - offline_after_minutes * 60
    seen = {text(k): v for k, v in redis_client.zrange(keys.workers_seen, 0, -1, withscores=True)}
    result = []
    for worker, value in redis_client.hgetall(keys.workers).items():
        record = parse_position(text(worker), text(value))
        record["online"] = seen.get(record["worker"], 0) >= cutoff
        result.append(record)
    return result


def nearest_positions(redis_client, keys: Keys, lat: float, lon: float, count: int, radius_m: float) -> list[tuple[str, float, dict]]:
    """The ``count`` workers whose last position is nearest to (lat, lon) within ``radius_m``,
    nearest first: (worker, great-circle metres, position). A search of Redis's geo index
    (a geohash sorted set), so it costs the neighbourhood, not the number of workers."""
    found = redis_client.geosearch(keys.workers_geo, longitude=lon, latitude=lat, radius=radius_m, unit="m", sort="ASC", count=count, withdist=True)
    if not found:
        return []
    workers = [text(worker) for worker, _ in found]
    lines = redis_client.hmget(keys.workers, workers)
    return [(worker, float(metres), parse_position(worker, text(line))) for (_, metres), worker, line in zip(found, workers, lines) if line is not None]


ACKNOWLEDGED_KEEP_S = 7 * 24 * 3600  # an acknowledgement outlives any grade-A case's attention


def acknowledge(redis_client, keys: Keys, attention_keys: list[str], at: datetime) -> None:
    """Record that these attention items were acknowledged, and tell every open screen."""
    pipe = redis_client.pipeline(transaction=False)
    pipe.zadd(keys.acknowledged, {key: at.timestamp() for key in attention_keys})
    pipe.zremrangebyscore(keys.acknowledged, "-inf", at.timestamp() - ACKNOWLEDGED_KEEP_S)
    pipe.xadd(keys.changes, {"kind": "ack", "count": str(len(attention_keys))}, maxlen=CHANGES_MAX_LENGTH, approximate=True)
    pipe.execute()


def acknowledged(redis_client, keys: Keys) -> set[str]:
    return {text(key) for key in redis_client.zrange(keys.acknowledged, 0, -1)}


def last_seen(redis_client, keys: Keys, workers: list[str]) -> dict[str, float]:
    """Epoch seconds of each worker's last ping (those ever seen)."""
    scores = redis_client.zmscore(keys.workers_seen, workers) if workers else []
    return {worker: score for worker, score in zip(workers, scores) if score is not None}


def trail(redis_client, keys: Keys, worker: str) -> list[tuple[float, float]]:
    """The worker's recent positions, oldest first."""
    points = [text(p).split(",") for p in redis_client.lrange(keys.trail(worker), 0, -1)]
    return [(float(lat), float(lon)) for lat, lon in reversed(points)]

