"""``python app.py simulate``: its options, and the command that reads the district and
publishes until interrupted or ``--duration``."""
from __future__ import annotations

import argparse
import logging
import math
import re
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import redis
from sqlalchemy.engine import make_url

from data_feeds import db, redis_client
from data_feeds.case_model import CASES_PER_DAY, REFERENCE_GRIDS
from data_feeds.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE_ERROR
from data_feeds.keys import Keys
from data_feeds.patrol_rounds import daytime_shift_minutes
from data_feeds.simulator.patrol_gps import GPS_INTERVAL_S
from data_feeds.simulator.publishing import GPS_MAXLEN, RunOptions, run
from data_feeds.simulator.simulation import SimOptions, Simulation
from data_feeds.simulator.world import SimulatorError, check_tables, load_open_cases, load_world
from gridrules.clock import utc_now

log = logging.getLogger(__name__)

_AGO = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*([smhd])(?:\s+ago)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_start(text: str, now: datetime, tz, max_age_days: float) -> datetime:
    """``--start``: ISO 8601 (local time without an offset) or a time ago (``2h``, ``90m``, ``-2h``); never in the future."""
    text = text.strip()
    match = _AGO.match(text)
    if match:
        moment = now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise SimulatorError(f"--start {text!r} is neither ISO 8601 (2026-11-25T08:30) nor a time ago such as 2h or 90m") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
    if moment > now:
        raise SimulatorError(f"--start {text!r} is in the future; the simulator never stamps a message after now")
    if moment < now - timedelta(days=max_age_days):
        raise SimulatorError(f"--start {text!r} is older than {max_age_days:g} days: the consumer would refuse every message")
    return moment


def _number(kind, low: float, inclusive: bool):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise _argument_error(f"{text!r} is not a number") from None
        if value < low or (not inclusive and value == low) or (isinstance(value, float) and not math.isfinite(value)):
            raise _argument_error(f"{text!r} must be {'at least' if inclusive else 'more than'} {low:g}")
        return value
    return parse


def _argument_error(message: str):
    return argparse.ArgumentTypeError(message)


def add_arguments(parser) -> None:
    """The options of ``python app.py simulate``."""
    parser.add_argument("--duration", type=_number(float, 0, False), metavar="SECONDS", help="stop after this many seconds (default: run until interrupted)")
    parser.add_argument("--seed", type=int, help="random seed, for the same district behaviour run after run (default: a new one each run)")
    parser.add_argument("--workers", type=_number(int, 0, True), metavar="N", help="how many grid workers patrol (default: every grid worker, role 'worker', of the database); patrol reports scale with them")
    parser.add_argument(
        "--rate", type=_number(float, 0, True), metavar="R",
        help=f"cases per hour, on average over the day, shaped by the hour of day and weekday (default: {CASES_PER_DAY} a day "
        f"per {REFERENCE_GRIDS} basic grids, at least {CASES_PER_DAY} a day)",
    )
    parser.add_argument("--gps-interval", type=_number(float, 0, False), default=GPS_INTERVAL_S, metavar="SECONDS", help=f"how often a patrol device reports its position (default {GPS_INTERVAL_S:g})")
    parser.add_argument(
        "--speedup", type=_number(float, 0, False), default=1.0, metavar="FACTOR",
        help="run simulated time FACTOR times faster than real time from --start until it catches up with now (timestamps are never in the future)",
    )
    parser.add_argument("--start", metavar="TIME", help="simulated start: ISO 8601 (local time unless it has an offset) or a time ago such as 2h or 90m (default: now)")
    parser.add_argument("--noise", action="store_true", help="add realistic bad input: GPS glitches outside the district, multipath jumps, repeated messages (some become dead letters)")
    parser.add_argument("--daytime-rounds", action="store_true",
                        help="move the patrol rounds (08:30 and 14:30 in the district) to the same hours of this machine's time zone, so a demo "
                             "tried abroad shows workers on patrol in its viewer's day (the demo passes it; production leaves the rounds where they are)")
    parser.add_argument("--maxlen", type=_number(int, 0, True), default=GPS_MAXLEN, metavar="N", help=f"keep the GPS stream to about N entries (XADD MAXLEN ~; 0: no cap; default {GPS_MAXLEN}); case events are never trimmed")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def command(settings, args) -> int:
    """``python app.py simulate``: read the district, then publish until interrupted or ``--duration``."""
    from data_feeds.reference import load_rules
    from gridrules.config import load_domain_config

    config = load_domain_config(settings.config_path, settings.tz)
    now = utc_now()
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    try:
        start = parse_start(args.start, now, settings.tz, settings.max_event_age_days) if args.start else now
        url = make_url(settings.database_url)
        if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:") and not Path(url.database).exists():
            raise SimulatorError(f"no database at {url.database}: run `python app.py` for the demo, or init-db and the imports")
        engine = db.make_engine(settings.database_url)
        try:
            db.check_reachable(engine)
            check_tables(engine)
            rules = load_rules(engine, config)
            world = load_world(engine, rules, config.calendar, np.random.default_rng(seed), args.workers, now)
            open_cases = load_open_cases(engine)
        finally:
            engine.dispose()
    except SimulatorError as error:
        return _fail(str(error), EXIT_USAGE_ERROR)
    if args.workers is not None and args.workers > len(world.workers):
        log.warning("--workers %d: the database has %d grid workers in basic grids; all of them patrol", args.workers, len(world.workers))
    if args.speedup > 1 and not args.start:
        log.warning("--speedup without --start in the past has no effect: simulated time never runs ahead of the clock")
    shift = daytime_shift_minutes(settings.tz, datetime.now().astimezone().tzinfo, now) if args.daytime_rounds else 0
    if shift:
        log.info("patrol rounds moved by %d minutes to this machine's daytime (--daytime-rounds)", shift)
    options = SimOptions(seed=seed, rate_per_hour=args.rate, gps_interval_s=args.gps_interval, noise=args.noise, rounds_shift_minutes=shift)
    sim = Simulation(world, start, options, open_cases)
    client = redis_client.connect(settings, socket_timeout=30, health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as error:
        return _fail(f"cannot reach Redis at {redis_client.describe(settings)}: {error}", EXIT_UNAVAILABLE)
    log.info(
        "simulating %d basic grids, %d patrolling workers, %.1f cases/h, %d open cases picked up; seed %d, run %s",
        len(world.grid_codes), len(world.workers), sim.rate_per_hour, len(sim.active), seed, sim.run_id,
    )
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    keys = Keys(settings.prefix)
    try:
        stats = run(sim, client, keys, RunOptions(duration_s=args.duration, speedup=args.speedup, maxlen=args.maxlen), stop=stop)
    except redis.RedisError as error:
        return _fail(f"Redis refused a message: {error}", EXIT_UNAVAILABLE)
    finally:
        client.close()
    actions = ", ".join(f"{action} {count}" for action, count in sorted(stats.counts.items())) or "none"
    print(f"simulate: {stats.pings} pings and {stats.events} case events in {stats.wall_s:.1f} s (actions: {actions})")
    return 0
