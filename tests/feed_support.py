"""Helpers for feed tests: publish messages like the field apps do, run a consumer to quiet."""
from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy import select

from data_feeds import schema
from data_feeds.ingest import Ingest, IngestOptions
from data_feeds.keys import Keys
from gridrules.coords import gcj02_to_wgs84

_counter = itertools.count(1)


def basic_grids(engine) -> list[dict]:
    """code, centroid (GCJ-02) and its grid worker of every basic grid."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.grids.c.code, schema.grids.c.centroid_lat, schema.grids.c.centroid_lon, schema.workers.c.id)
            .select_from(schema.grids.join(schema.workers, schema.workers.c.grid == schema.grids.c.code))
            .where(schema.grids.c.level == 4, schema.workers.c.role == "worker")
            .order_by(schema.grids.c.code)
        ).all()
    return [{"code": code, "lat": lat, "lon": lon, "worker": worker} for code, lat, lon, worker in rows]


def wgs84_of(grid: dict) -> tuple[float, float]:
    lat, lon = gcj02_to_wgs84(grid["lat"], grid["lon"])
    return float(lat), float(lon)


def case_event(case_id: str, action: str, ts: datetime, **fields) -> dict:
    message = {"event_id": fields.pop("event_id", f"ev-{next(_counter)}"), "case_id": case_id, "action": action, "ts": ts.isoformat()}
    message.update({key: str(value) for key, value in fields.items()})
    return message


def report(case_id: str, ts: datetime, grid: dict, category: str = "E050101", source: str = "patrol", **fields) -> dict:
    lat, lon = wgs84_of(grid)
    return case_event(case_id, "report", ts, grid=grid["code"], category=category, source=source, lat=f"{lat:.7f}", lon=f"{lon:.7f}", **fields)


def gps_ping(worker: str, ts: datetime, lat: float, lon: float, **fields) -> dict:
    """A patrol GPS message (WGS-84 unless ``crs`` says otherwise)."""
    message = {"worker": worker, "ts": ts.isoformat(), "lat": f"{lat:.7f}", "lon": f"{lon:.7f}"}
    message.update({key: str(value) for key, value in fields.items()})
    return message


def publish_case_events(redis_client, messages: list[dict], prefix: str = "gridops:") -> list[str]:
    """XADD each message to the case-events stream, in order; returns the stream ids."""
    return [_text(redis_client.xadd(Keys(prefix).case_events, message)) for message in messages]


def publish_pings(redis_client, messages: list[dict], prefix: str = "gridops:") -> None:
    """XADD GPS messages to the patrol stream in one round trip."""
    pipe = redis_client.pipeline(transaction=False)
    for message in messages:
        pipe.xadd(Keys(prefix).patrol_gps, message)
    pipe.execute()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def make_ingest(engine, redis_client, config, prefix: str = "gridops:", **options) -> Ingest:
    values = {"consumer": "test-consumer", "block_ms": 50, "claim_every_s": 3600.0, "sweep_every_s": 0.0}
    values.update(options)
    ingest = Ingest(engine, redis_client, Keys(prefix), config, IngestOptions(**values))
    ingest.setup()
    return ingest


def drain(ingest: Ingest, rounds: int = 50) -> dict:
    """Poll until two rounds in a row find nothing; returns the summed outcome counts."""
    totals: dict = {}
    quiet = 0
    for _ in range(rounds):
        counts = ingest.poll_once(block_ms=20)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        quiet = quiet + 1 if not any(counts.values()) else 0
        if quiet >= 2:
            break
    return totals
