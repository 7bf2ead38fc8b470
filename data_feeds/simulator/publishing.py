"""Publishing the simulation in real time: ``run`` reads the clock, advances the simulation to
"now" and XADDs what it produced (``publish``, pipelined), every ``tick_s``, waiting out
Redis outages.

Simulated time may run faster than real time (a ``speedup`` from a start in the past) but
never ahead of the clock: no timestamp is ever in the future.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import redis

from data_feeds.keys import Keys
from data_feeds.simulator.patrol_gps import gps_messages
from data_feeds.simulator.simulation import Output, Simulation
from gridrules.clock import utc_now

log = logging.getLogger(__name__)

TICK_S = 0.2  # real seconds between publishing rounds
PIPELINE_CHUNK = 5000  # XADDs per round trip
GPS_MAXLEN = 1_000_000  # approximate cap of the GPS stream (XADD MAXLEN ~)
LOG_EVERY_S = 10.0
RETRY_PAUSE_S = 2.0


def publish(client: redis.Redis, keys: Keys, output: Output, workers: np.ndarray, maxlen: int = GPS_MAXLEN) -> int:
    """XADD everything of ``output`` in pipelined round trips; returns how many messages."""
    pipe = client.pipeline(transaction=False)
    trim = ("MAXLEN", "~", maxlen) if maxlen else ()
    count = 0
    for message in output.events:
        pipe.execute_command("XADD", keys.case_events, "*", *itertools.chain.from_iterable(message.items()))
    count += len(output.events)
    for fields in gps_messages(output.pings, workers):
        pipe.execute_command("XADD", keys.patrol_gps, *trim, "*", *fields)
        count += 1
        if len(pipe) >= PIPELINE_CHUNK:
            pipe.execute()
    if len(pipe):
        pipe.execute()
    return count


@dataclass(frozen=True)
class RunOptions:
    duration_s: float | None = None  # wall-clock seconds; None: until stopped
    speedup: float = 1.0
    tick_s: float = TICK_S
    maxlen: int = GPS_MAXLEN
    log_every_s: float = LOG_EVERY_S


@dataclass
class RunStats:
    pings: int = 0
    events: int = 0
    rounds: int = 0
    wall_s: float = 0.0
    counts: Counter = field(default_factory=Counter)


def run(
    sim: Simulation,
    client: redis.Redis,
    keys: Keys,
    options: RunOptions = RunOptions(),
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
    publisher: Callable = publish,
) -> RunStats:
    """Advance the simulation to the clock and publish, every ``tick_s``, until stopped.

    Simulated time runs ``speedup`` times faster than the clock from where the simulation
    stands, but never past the clock. Redis outages are waited out (what piled up is sent
    afterwards, as devices do with buffered points).
    """
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    wall_start = clock()
    sim_start = sim.now
    stats = RunStats()
    next_log = wall_start + timedelta(seconds=options.log_every_s)
    window = (0, 0.0)
    try:
        while True:
            wall = clock()
            target = min(sim_start + (wall - wall_start) * options.speedup, wall)
            if target > sim.now:
                output = sim.advance(target)
                _publish_until_done(publisher, client, keys, output, sim.world.workers, options.maxlen, stop)
                stats.pings += len(output.pings)
                stats.events += len(output.events)
                stats.rounds += 1
            elapsed = (wall - wall_start).total_seconds()
            if wall >= next_log:
                log.info(
                    "simulated %s: %d workers on round, %.0f pings/s, %d case events so far, %d cases open",
                    sim.now.astimezone(sim.world.tz).strftime("%Y-%m-%d %H:%M:%S"), sim.on_round().size,
                    (stats.pings - window[0]) / max(elapsed - window[1], 1e-9), stats.events, len(sim.active),
                )
                window = (stats.pings, elapsed)
                next_log = wall + timedelta(seconds=options.log_every_s)
            if stop.is_set() or (options.duration_s is not None and elapsed >= options.duration_s):
                break
            sleep(options.tick_s)
    except KeyboardInterrupt:
        pass
    stats.wall_s = (clock() - wall_start).total_seconds()
    stats.counts = Counter(sim.counts)
    return stats


def _publish_until_done(publisher, client, keys, output, workers, maxlen, stop) -> None:
    while True:
        try:
            publisher(client, keys, output, workers, maxlen)
            return
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("Redis unavailable (%s); retrying in %.0f s", error, RETRY_PAUSE_S)
            if stop.wait(RETRY_PAUSE_S):
                return
