"""Benchmark: ingest throughput on one core, beside the raw redis-py XREADGROUP rate.

    .venv/bin/python bench/bench_ingest.py [--pings 200000] [--events 20000] [--database sqlite|postgresql]

Pre-fills the streams (GPS pings of every demo worker every 5 s; case events of whole
lifecycles), then drains them with the real consumer (validation, datum conversion,
point-in-polygon, lifecycle, database transaction, live state) pinned to one CPU, and
measures, in the same run, how fast plain redis-py reads and acknowledges the same
number of entries. The ratio is the figure; the target is 20,000 GPS pings/s (a city of
100,000 devices reporting every 5 s).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.settings import DEFAULT_CONFIG_PATH  # noqa: E402
from data_feeds.db import init_db, make_engine  # noqa: E402
from data_feeds.demo import DEFAULT_CATALOGUE, DEFAULT_DEPARTMENTS, DEMO_BOUNDARY, DEMO_TOWNS, write_staff_file  # noqa: E402
from data_feeds.embedded_redis import start_embedded_redis  # noqa: E402
from data_feeds.importers.catalogue import import_catalogue  # noqa: E402
from data_feeds.importers.departments import import_departments  # noqa: E402
from data_feeds.importers.grids import SubdivideOptions, import_grids  # noqa: E402
from data_feeds.importers.workers import import_workers  # noqa: E402
from data_feeds.ingest import Ingest, IngestOptions  # noqa: E402
from data_feeds.keys import Keys  # noqa: E402
from gridrules.clock import utc_now  # noqa: E402
from gridrules.config import load_domain_config  # noqa: E402
from gridrules.coords import gcj02_to_wgs84  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PREFIX = "bench:"
BATCH = 5000


def district(url: str, folder: Path, workers: int):
    """The demo district; with ``workers`` > 0, that many grid workers spread over its grids (city scale)."""
    engine = make_engine(url, writer=True)
    init_db(engine)
    import_departments(engine, DEFAULT_DEPARTMENTS)
    import_catalogue(engine, DEFAULT_CATALOGUE)
    import_grids(engine, DEMO_BOUNDARY, SubdivideOptions(DEMO_TOWNS, 200, 900))
    staff = folder / "workers.csv"
    if workers:
        with engine.connect() as connection:
            grids = [row[0] for row in connection.execute(text("SELECT code FROM grids WHERE level = 4 ORDER BY code"))]
        lines = ["id,name,grid,role"] + [f"C{n:06d},网格员{n},{grids[n % len(grids)]},worker" for n in range(workers)]
        staff.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        write_staff_file(engine, staff, seed=1)
    import_workers(engine, staff)
    return engine


def workers_and_positions(engine):
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT w.id, g.code, g.centroid_lat, g.centroid_lon FROM workers w JOIN grids g ON g.code = w.grid WHERE w.role = 'worker' ORDER BY w.id"
        )).all()
    lat, lon = gcj02_to_wgs84(np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))
    return [r[0] for r in rows], [r[1] for r in rows], lat, lon


def fill_gps(client, stream: str, count: int, workers, lat, lon, start):
    """Every worker pings every 5 s from ``start``, walking a little."""
    rng = np.random.default_rng(1)
    rounds = count // len(workers) + 1
    pipe = client.pipeline(transaction=False)
    written = 0
    # Devices are not synchronised: each reports at its own offset within the 5 s.
    offsets_ms = (np.arange(len(workers)) * 5000 // len(workers)).tolist()
    start_ms = int(start.timestamp() * 1000)
    for step in range(rounds):
        jitter = rng.normal(0, 0.00002, (len(workers), 2))
        for i, worker in enumerate(workers):
            if written == count:
                break
            pipe.xadd(stream, {"worker": worker, "ts": str(start_ms + 5000 * step + offsets_ms[i]), "lat": f"{lat[i] + jitter[i, 0] + step * 1e-5:.7f}", "lon": f"{lon[i] + jitter[i, 1]:.7f}", "speed": "1.2", "heading": "90"})
            written += 1
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def fill_cases(client, stream: str, count: int, grids, workers, lat, lon):
    """Whole lifecycles: report, register, dispatch, feedback, close (5 events a case)."""
    start = utc_now() - timedelta(hours=20)
    pipe = client.pipeline(transaction=False)
    for n in range(count // 5):
        i = n % len(grids)
        t = start + timedelta(seconds=n)
        case_id = f"BC{n:07d}"
        steps = [
            {"action": "report", "grid": grids[i], "category": "E050101", "source": "patrol", "lat": f"{lat[i]:.7f}", "lon": f"{lon[i]:.7f}", "worker": workers[i]},
            {"action": "register"}, {"action": "dispatch", "dept": "CGJ"}, {"action": "feedback"}, {"action": "close"},
        ]
        for k, fields in enumerate(steps):
            pipe.xadd(stream, {"event_id": f"{case_id}-{k}", "case_id": case_id, "ts": (t + timedelta(minutes=10 * k)).isoformat(), **fields})
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def raw_read_rate(client, stream: str, count: int) -> float:
    """Plain redis-py: XREADGROUP count=2000 + XACK until ``count`` entries are read; entries/s."""
    client.xgroup_create(stream, "raw", id="0")
    started = time.perf_counter()
    read = 0
    while read < count:
        reply = client.xreadgroup("raw", "raw-1", {stream: ">"}, count=BATCH)
        if not reply:
            break
        entries = reply[0][1]
        client.xack(stream, "raw", *[entry_id for entry_id, _ in entries])
        read += len(entries)
    return read / (time.perf_counter() - started)


def drain_rate(ingest: Ingest, client, stream: str, count: int, already: int = 0) -> float:
    started = time.perf_counter()
    idle = 0
    while idle < 3:
        totals = ingest.poll_once(block_ms=10)
        idle = idle + 1 if not any(totals.values()) else 0
    elapsed = time.perf_counter() - started
    consumed = int(client.hget(Keys(PREFIX).feed_metrics, f"consumed:{'gps' if 'gps' in stream else 'case'}") or 0)
    assert consumed == count + already, f"consumed {consumed - already} of {count}"
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=0, help="grid workers (devices); default the demo's 900 (e.g. 100000 for a city)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core for this process; Redis and the database run elsewhere
    folder = Path(tempfile.mkdtemp(prefix="gridops-bench-ingest-"))
    if args.database == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        admin = make_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS bench_ingest CASCADE"))
            connection.execute(text("CREATE SCHEMA bench_ingest"))
        url = f"{PG_URL}?options=-csearch_path%3Dbench_ingest"
    server, redis_url = start_embedded_redis(folder)
    client = redis.Redis.from_url(redis_url)
    engine = district(url, folder, args.workers)
    workers, grids, lat, lon = workers_and_positions(engine)
    keys = Keys(PREFIX)
    config = load_domain_config(DEFAULT_CONFIG_PATH, __import__("zoneinfo").ZoneInfo("Asia/Shanghai"))

    ingest = Ingest(engine, client, keys, config, IngestOptions(consumer="bench", batch=BATCH, claim_every_s=3600, sweep_every_s=3600))
    ingest.setup()
    ingest.watcher.every_s = 3600
    # Warm-up, not timed: one ping per device, so that the timed part is the steady state
    # of devices already on patrol (the state of every worker exists).
    warm = len(workers)
    rounds = args.pings // len(workers) + 1
    start = utc_now() - timedelta(seconds=5 * (rounds + 1) + 60)
    fill_gps(client, keys.patrol_gps, warm, workers, lat, lon, start)
    drain_rate(ingest, client, keys.patrol_gps, warm)
    fill_gps(client, keys.patrol_gps, args.pings, workers, lat, lon, start + timedelta(seconds=5))
    fill_gps(client, "bench:raw-gps", args.pings, workers, lat, lon, start + timedelta(seconds=5))
    raw_gps = raw_read_rate(client, "bench:raw-gps", args.pings)
    gps = drain_rate(ingest, client, keys.patrol_gps, args.pings, already=warm)
    print(f"GPS pings:   raw XREADGROUP+XACK {raw_gps:10,.0f}/s   ingest {gps:10,.0f}/s   ratio {gps / raw_gps:.2f}   ({args.pings:,} pings, {len(workers):,} workers, {args.database})", flush=True)

    fill_cases(client, keys.case_events, args.events, grids, workers, lat, lon)
    fill_cases(client, "bench:raw-cases", args.events, grids, workers, lat, lon)
    raw_cases = raw_read_rate(client, "bench:raw-cases", args.events)
    cases = drain_rate(ingest, client, keys.case_events, args.events)
    print(f"case events: raw XREADGROUP+XACK {raw_cases:10,.0f}/s   ingest {cases:10,.0f}/s   ratio {cases / raw_cases:.2f}   ({args.events:,} events, {args.database})", flush=True)
    target = 20_000
    print(f"target {target:,} pings/s: {'met' if gps >= target else 'NOT met'} ({gps / target:.2f} of it)")
    server.shutdown()


if __name__ == "__main__":
    main()
