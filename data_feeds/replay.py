"""``python app.py replay FILE``: publish a recorded file to the Redis streams through the
feed contract. This module is the command: its options, telling the format by the header,
building the plan (replay_geolife, replay_la311) and publishing it, paced or not.
The replay is described in docs/replay.md.
"""
from __future__ import annotations

import json
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from data_feeds import redis_client
from data_feeds.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE_ERROR
from data_feeds.importers.common import ImportFileError
from data_feeds.keys import Keys
from data_feeds.replay_common import Plan, ReplayError, load_replay_reference, read_header
from data_feeds.replay_geolife import DEFAULT_GPS_DAYS, GEOLIFE_COLUMNS, plan_geolife, read_geolife
from data_feeds.replay_la311 import LA_COLUMNS, plan_la311, read_la311
from gridrules.clock import utc_now

PIPELINE_CHUNK = 1000  # XADDs per pipeline round trip
DEFAULT_SHOW = 10  # messages printed by --dry-run
PACE_MIN_SLEEP_S = 0.02  # with --pace, gaps shorter than this are published without sleeping


def detect_format(header: list[str]) -> str | None:
    """``geolife`` or ``la311`` from a header line's column names; None when neither."""
    names = {name.strip().lower() for name in header}
    if set(GEOLIFE_COLUMNS) <= names:
        return "geolife"
    if set(LA_COLUMNS) <= names:
        return "la311"
    return None


# ====================================================================== publishing


def publish(client, stream: str, messages: list, times: np.ndarray, pace: float = 0.0, chunk: int = PIPELINE_CHUNK, sleep=time.sleep, clock=time.monotonic) -> int:
    """XADD every message, pipelined in chunks; with ``pace`` > 0 wait pace × the gap between messages."""
    published = 0
    pipe = client.pipeline(transaction=False)
    pending = 0
    started = clock()
    for index, message in enumerate(messages):
        if pace > 0 and index:
            due = (times[index] - times[0]) * pace
            wait = due - (clock() - started)
            if wait > PACE_MIN_SLEEP_S:
                if pending:
                    pipe.execute()
                    published += pending
                    pending = 0
                sleep(wait)
        pipe.xadd(stream, message)
        pending += 1
        if pending >= chunk:
            pipe.execute()
            published += pending
            pending = 0
    if pending:
        pipe.execute()
        published += pending
    return published


# ====================================================================== command line


def add_arguments(parser) -> None:
    parser.add_argument("file", type=Path, help="GeoLife points (lat,lng,datetime,uid; .txt or .txt.gz) or LA 311 service_requests.csv")
    parser.add_argument("--pace", type=float, default=0.0, help="wait this many times the recorded gap between messages: 1 = real time, 0.1 = ten times faster; 0 (default) = as fast as possible")
    parser.add_argument("--limit", type=int, help="publish at most N messages (GPS: the earliest N pings of the selection) or N requests (LA 311: the first N of the file)")
    parser.add_argument("--days", type=int, help=f"GPS: replay each device's last N recorded days (default {DEFAULT_GPS_DAYS}, at most the event age limit less one day)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be published and the counts; touch no Redis")
    parser.add_argument("--show", type=int, default=DEFAULT_SHOW, help=f"with --dry-run, print the first N messages (default {DEFAULT_SHOW}; -1 = all)")
    parser.add_argument("--chunk", type=int, default=PIPELINE_CHUNK, help=f"messages per pipelined round trip (default {PIPELINE_CHUNK})")
    parser.add_argument("--now", help="replay as if the clock read this moment (ISO 8601 with offset; not later than the clock), for reproducible runs")


def _resolve_now(text: str | None) -> datetime:
    clock = utc_now()
    if not text:
        return clock
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"--now {text!r} is not ISO 8601 (e.g. 2026-11-22T09:15:03+08:00)") from None
    if moment.tzinfo is None:
        raise ReplayError(f"--now {text!r} has no UTC offset (e.g. +08:00)")
    if moment > clock + timedelta(seconds=1):
        raise ReplayError(f"--now {text!r} is in the future: the consumer would refuse every message")
    return moment.astimezone(UTC)


def _gps_days(requested: int | None, max_age_days: float) -> int:
    allowed = max(1, math.floor(max_age_days) - 1)
    if requested is None:
        return min(DEFAULT_GPS_DAYS, allowed)
    if requested < 1 or requested > allowed:
        raise ReplayError(f"--days {requested} must be between 1 and {allowed} (the event age limit is {max_age_days:g} days)")
    return requested


def _check_options(args) -> None:
    if args.pace < 0 or not math.isfinite(args.pace):
        raise ReplayError(f"--pace {args.pace} must be 0 or positive")
    if args.limit is not None and args.limit < 1:
        raise ReplayError(f"--limit {args.limit} must be at least 1")
    if args.chunk < 1:
        raise ReplayError(f"--chunk {args.chunk} must be at least 1")


def _engine(settings):
    """An engine on the existing grid database (never creating it)."""
    from sqlalchemy.engine import make_url

    from data_feeds.db import DatabaseUnavailable, check_reachable, make_engine

    try:
        url = make_url(settings.database_url)
    except Exception:
        url = None
    if url is not None and url.drivername.startswith("sqlite") and url.database and url.database != ":memory:" and not Path(url.database).exists():
        raise DatabaseUnavailable(f"no grid database at {url.database}: run python app.py init-db and import the grids, catalogue, departments and workers first")
    engine = make_engine(settings.database_url)
    check_reachable(engine)
    return engine


def build_plan(settings, args, now: datetime) -> Plan:
    """Read the file and the reference data, and compute every message (no Redis)."""
    path = Path(args.file)
    if not path.is_file():
        raise ImportFileError(path, "", "no such file")
    kind = detect_format(read_header(path))
    if kind is None:
        raise ImportFileError(
            path, "line 1",
            f"unrecognised header; expected GeoLife ({','.join(GEOLIFE_COLUMNS)}) or LA 311 service requests ({','.join(LA_COLUMNS)},...)",
        )
    keys = Keys(settings.prefix)
    max_age = timedelta(days=settings.max_event_age_days)
    days = _gps_days(args.days, settings.max_event_age_days) if kind == "geolife" else None
    records = read_geolife(path) if kind == "geolife" else read_la311(path)  # a bad file is refused before the database is read
    engine = _engine(settings)
    try:
        reference = load_replay_reference(engine)
    finally:
        engine.dispose()
    if kind == "geolife":
        return plan_geolife(records, path.name, reference, keys, settings.tz, now, days, args.limit, max_age, settings.map_crs)
    return plan_la311(records, path.name, reference, keys, settings.tz, now, args.limit, max_age, settings.map_crs)


def command(settings, args) -> int:
    """``python app.py replay FILE``: publish a recorded file to the streams; one summary line."""
    import redis

    try:
        _check_options(args)
        now = _resolve_now(args.now)
        plan = build_plan(settings, args, now)
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    if args.dry_run:
        shown = plan.messages if args.show < 0 else plan.messages[: args.show]
        for message in shown:
            print(f"{plan.stream} {json.dumps(message, ensure_ascii=False)}")
        print(f"dry run, nothing published: {plan.summary}")
        return 0
    client = redis_client.connect(settings, socket_timeout=30)
    try:
        published = publish(client, plan.stream, plan.messages, plan.times, args.pace, args.chunk)
    except redis.RedisError as exc:
        print(f"error: cannot publish to Redis at {redis_client.describe(settings)}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        client.close()
    print(f"published {published}: {plan.summary}")
    return 0
