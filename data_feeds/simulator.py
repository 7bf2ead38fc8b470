"""Simulated district traffic on the Redis feeds (``python app.py simulate``).

Reads the district once from the grid database (basic grids with their GCJ-02 polygons,
grid workers, the catalogue, departments and the cases still open) and never writes it.
Then publishes, in real time and through the feed contract (README, "The feeds"), what the
district's systems would publish:

* ``patrol-gps``: every grid worker walks (or rides an e-bike around) their own basic grid
  on the two daily rounds (一日双巡), and the device reports a WGS-84 position every few
  seconds with GPS jitter, speed, heading, sometimes accuracy, and the odd gap of a minute
  or two; outside the rounds the devices are silent;
* ``case-events``: arrivals from patrol (a worker on a round, where they stand), the 12345
  hotline, 110 transfers, WeChat, video analytics and leaders with the demo history's daily
  rhythm, source and category mix (``data_feeds.demo``), then each case's whole life by the
  rules of ``gridrules.lifecycle``: register or reject, on-the-spot closing, dispatch to the
  category's department, feedback at that department's pace (some run late; the pace is
  read from the department's record in the database when there is one), verification
  that sometimes returns the case, close, evaluation. Cases already open in the database
  are picked up and moved along the same way.

The model is a few deterministic functions that take the time as a parameter —
``round_schedule``, ``advance_patrol`` (vectorised over all workers), ``gps_messages``,
``resume_steps``, ``next_due`` and ``Simulation.advance`` — and ``run`` is the thin loop
that reads the clock, advances the simulation to "now" and publishes with pipelined XADD.
Simulated time may run faster than real time (``--speedup`` from a ``--start`` in the
past) but never ahead of the clock: no timestamp is ever in the future.

Everything published is accepted by the consumer; ``--noise`` adds deliberately bad input
(GPS glitches outside the district, multipath jumps, repeated messages).
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import math
import re
import signal
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import redis
import shapely
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine, make_url

from data_feeds import db, redis_client, schema
from data_feeds.case_store import case_from_row
from data_feeds.demo import (
    CASES_PER_DAY,
    DAY_PROFILE,
    ROUND_MINUTES,
    ROUND_STARTS,
    SLOW_DEPARTMENTS,
    SOURCE_MIX,
    DemoSize,
    District,
    actor_of,
    arrival_times,
    case_script,
    lifecycle_steps,
)
from data_feeds.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE_ERROR
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from gridrules.coords import gcj02_to_wgs84
from gridrules.lifecycle import OPEN_STATUSES, Case, CaseEvent, Rules, apply_event
from gridrules.workcalendar import WorkCalendar

log = logging.getLogger(__name__)

# ---- patrol
WALK_SPEED_MPS = 1.2
EBIKE_SPEED_MPS = 4.0
EBIKE_SHARE = 0.3  # grid workers on e-bikes (the rest walk)
PACE_SPREAD = 0.1  # each worker's own pace varies this much around the nominal speed
STEP_SPEED_RANGE = (0.8, 1.2)  # and from step to step
GPS_INTERVAL_S = 10.0  # default device reporting interval
INTERVAL_DRIFT = 0.02  # device timers are not exact
GPS_JITTER_M = 3.0  # standard deviation of the reported position around the true one
ACCURACY_SHARE = 0.6  # pings that carry an accuracy field
ACCURACY_RANGE_M = (3.0, 12.0)
GPS_GAP_PER_PING = 0.002  # chance that the device goes off after a ping (every ~80 min at 10 s)
GPS_GAP_S = (60.0, 150.0)  # how long it stays off
DWELL_SHARE = 0.4  # chance of stopping at a waypoint (a shop front, a building entrance)
DWELL_MEAN_S = 45.0
MAX_STEP_S = 300.0  # longest move applied at once (after a gap)
WAYPOINTS_PER_GRID = 24
INNER_MARGIN_M = 2.0  # workers stay this far inside their polygon, so GPS rounding never crosses it
ROUND_JITTER_MIN = 20.0  # a round starts up to this many minutes before or after its time
ROUND_LENGTH_FACTOR = (0.7, 1.2)  # of ROUND_MINUTES (as the demo's tracks of today)
DILIGENCE_BETA = (6.0, 1.5)  # share of rounds a worker walks (as the demo history)
REST_DAY_SECOND_ROUND = 0.3  # on rest days the afternoon round is mostly skipped
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_EQUATOR = 111_320.0
# Expected hours on round per worker and working day: what patrol reports are spread over.
EXPECTED_DUTY_H = (
    DILIGENCE_BETA[0] / sum(DILIGENCE_BETA) * len(ROUND_STARTS) * ROUND_MINUTES / 60.0 * sum(ROUND_LENGTH_FACTOR) / 2.0
)

# ---- cases
DEMO_GRIDS = DemoSize().grids  # CASES_PER_DAY is the demo district's figure for this many basic grids
LOCATED_SHARE = {"hotline": 0.5, "wechat": 0.5, "police": 0.3}  # reports sent without a grid: located from lat/lon
LEADER_GRADE_A_SHARE = 0.5  # a leader's assignment is often made urgent
EVALUATION_DELAY_H = (0.5, 48.0)  # the phone call after closing (as demo.play_case)
SATISFACTION_ODDS = {False: [0.8, 0.15, 0.05], True: [0.55, 0.25, 0.2]}  # on time / late (as demo.play_case)
MIN_STEP_S = 30.0
NO_DEADLINE_SPAN_S = 1800.0
BACKLOG_SPREAD_S = 3600.0  # open cases already late at start move within about this long, not all at once
PACE_WINDOW_DAYS = 30  # a department's pace is read from its cases dispatched in this window...
PACE_MIN_CASES = 20  # ...when it handled at least this many of them without rework
PACE_RANGE = (0.1, 2.0)  # share of the handling time, clipped
DESCRIPTION = {
    "patrol": "网格员巡查发现：", "hotline": "12345热线市民反映：", "police": "110非警务警情转办：",
    "wechat": "微信随手拍：", "video": "视频智能识别：", "leader": "领导交办：",
}

# ---- noise (``--noise`` only)
NOISE_GLITCH_PER_PING = 2e-4  # null island, swapped coordinates or tens of km away: dead letters
NOISE_JUMP_PER_PING = 1e-3  # multipath: 80-250 m off, may leave the grid or the district
NOISE_JUMP_M = (80.0, 250.0)
NOISE_REPEAT_PER_MESSAGE = 2e-3  # a message sent twice (consumer: late ping / duplicate event)
NOISE_REPEAT_PER_EVENT = 0.01

# ---- publishing
TICK_S = 0.2  # real seconds between publishing rounds
PIPELINE_CHUNK = 5000  # XADDs per round trip
GPS_MAXLEN = 1_000_000  # approximate cap of the GPS stream (XADD MAXLEN ~)
LOG_EVERY_S = 10.0
RETRY_PAUSE_S = 2.0



class SimulatorError(RuntimeError):
    """The simulator cannot run; the message says what to do."""


# ================================================================ the district


@dataclass(frozen=True)
class World:
    """The district as the simulator sees it: read once from the database, never written."""

    calendar: WorkCalendar
    rules: Rules
    grid_codes: np.ndarray  # basic grids (deepest level)
    polygons: np.ndarray  # each grid's polygon shrunk by INNER_MARGIN_M (GCJ-02, prepared)
    waypoints: np.ndarray  # (grids, WAYPOINTS_PER_GRID, 2): lon, lat inside each polygon
    metres_per_deg_lon: np.ndarray  # per grid, at its latitude
    workers: np.ndarray  # ids of the patrolling grid workers
    worker_grid: np.ndarray  # index of each worker's grid
    staff_size: int  # grid workers of the district; patrol reports scale with the share patrolling
    departments: tuple
    dept_speed: dict  # department -> median share of the handling time it takes
    script_district: District  # what ``demo.case_script`` draws grids, categories and departments from

    @property
    def tz(self):
        return self.calendar.tz


def waypoints_inside(polygons: np.ndarray, count: int, rng) -> np.ndarray:
    """``count`` random points inside each polygon, as (len(polygons), count, 2) lon/lat (vectorised)."""
    n = len(polygons)
    result = np.full((n, count, 2), np.nan)
    filled = np.zeros(n, dtype=int)
    bounds = shapely.bounds(polygons).reshape(n, 4)
    todo = np.arange(n)
    for _ in range(30):
        if not todo.size:
            break
        tries = count * 3
        box = bounds[todo]
        xs = rng.uniform(box[:, 0:1], box[:, 2:3], (todo.size, tries))
        ys = rng.uniform(box[:, 1:2], box[:, 3:4], (todo.size, tries))
        inside = shapely.contains_xy(polygons[todo][:, None], xs, ys)
        slot = np.cumsum(inside, axis=1) - 1 + filled[todo][:, None]
        take = inside & (slot < count)
        rows, cols = np.nonzero(take)
        result[todo[rows], slot[rows, cols], 0] = xs[rows, cols]
        result[todo[rows], slot[rows, cols], 1] = ys[rows, cols]
        filled[todo] = np.minimum(count, filled[todo] + inside.sum(axis=1))
        todo = todo[filled[todo] < count]
    for index in todo:  # slivers: repeat what was found, or the polygon's representative point
        if filled[index]:
            result[index, filled[index]:] = result[index, np.arange(count - filled[index]) % filled[index]]
        else:
            point = polygons[index].representative_point() if not polygons[index].is_empty else shapely.Point(np.nan, np.nan)
            result[index, :] = (point.x, point.y)
    return result


def build_world(
    grids: Sequence[tuple[str, object, float | None]],
    staff: Sequence[tuple[str, str]],
    rules: Rules,
    departments: Sequence[str],
    calendar: WorkCalendar,
    rng,
    worker_limit: int | None = None,
    paces: dict | None = None,
) -> World:
    """The simulator's district from basic grids (code, GCJ-02 shapely geometry, population)
    and grid workers (id, grid code); pure, so tests and benchmarks build one in memory.

    ``paces``: departments' known share of the handling time (``department_paces``), which
    replace the random draw so the departments late in the record stay late.
    """
    codes = np.array([code for code, _, _ in grids], dtype=object)
    outer = np.array([geometry for _, geometry, _ in grids], dtype=object)
    if not len(codes):
        raise SimulatorError("the database has no basic grids with a polygon")
    centre_lat = (shapely.bounds(outer)[:, 1] + shapely.bounds(outer)[:, 3]) / 2.0
    mx = METRES_PER_DEGREE_EQUATOR * np.cos(np.radians(centre_lat))
    inner = shapely.buffer(outer, -INNER_MARGIN_M / mx)
    usable = ~shapely.is_empty(inner) & (shapely.area(inner) > 0)
    polygons = np.where(usable, inner, outer)
    shapely.prepare(polygons)
    waypoints = waypoints_inside(polygons, WAYPOINTS_PER_GRID, rng)

    # Where the other channels' cases happen, the categories and the departments' pace:
    # drawn the way the demo history draws them (demo._load_district).
    population = np.array([float(p) if p else 1000.0 for _, _, p in grids])
    hot = rng.choice(len(codes), size=max(1, len(codes) // 40), replace=False)
    population[hot] *= 5
    details = sorted(code for code, category in rules.categories.items() if category.is_detail)
    ranks = rng.permutation(len(details)) + 1
    weights = 1.0 / ranks**0.9 if len(details) else np.array([])
    departments = tuple(sorted(departments))
    speed = {code: float(rng.lognormal(math.log(0.45), 0.25)) for code in departments}
    for code in rng.choice(list(departments), size=min(SLOW_DEPARTMENTS, len(departments)), replace=False) if departments else ():
        speed[str(code)] = float(rng.uniform(0.95, 1.25))
    speed.update({dept: pace for dept, pace in (paces or {}).items() if dept in speed})

    index_of = {code: i for i, code in enumerate(codes)}
    patrolling = sorted((worker, grid) for worker, grid in staff if grid in index_of)
    staff_size = len(patrolling)
    if worker_limit is not None and worker_limit < len(patrolling):
        chosen = np.sort(rng.choice(len(patrolling), size=worker_limit, replace=False))
        patrolling = [patrolling[i] for i in chosen]
    workers = np.array([worker for worker, _ in patrolling], dtype=object)
    worker_grid = np.array([index_of[grid] for _, grid in patrolling], dtype=np.int64)
    worker_of_grid: dict = {}
    for worker, grid in sorted(staff):
        worker_of_grid.setdefault(grid, worker)
    district = District(
        grid_codes=codes.tolist(),
        grid_weights=population / population.sum(),
        grid_points={code: waypoints[i] for i, code in enumerate(codes)},
        worker_of_grid=worker_of_grid,
        detail_codes=details,
        detail_weights=weights / weights.sum() if len(details) else weights,
        departments=list(departments),
        dept_speed=speed,
    )
    return World(
        calendar=calendar, rules=rules, grid_codes=codes, polygons=polygons, waypoints=waypoints,
        metres_per_deg_lon=mx, workers=workers, worker_grid=worker_grid, staff_size=staff_size,
        departments=departments, dept_speed=speed, script_district=district,
    )


def check_tables(engine: Engine) -> None:
    """Refuse a database without the schema (an empty file, a wrong URL) with what to do."""
    if not inspect(engine).has_table(schema.grids.name):
        raise SimulatorError(f"the database at {db.describe(engine)} has no tables: run `python app.py` for the demo, or init-db and the imports")


def department_paces(rows: Iterable[tuple]) -> dict[str, float]:
    """Each department's median share of the handling time it took to feed back, from
    (dept, dispatched_at, handled_at, deadline) of cases handled without rework; only
    departments with at least PACE_MIN_CASES such cases."""
    shares: dict[str, list] = {}
    for dept, dispatched, handled, deadline in rows:
        if dept and dispatched and handled and deadline and deadline > dispatched:
            shares.setdefault(dept, []).append((handled - dispatched) / (deadline - dispatched))
    return {dept: float(np.clip(np.median(values), *PACE_RANGE)) for dept, values in shares.items() if len(values) >= PACE_MIN_CASES}


def load_paces(engine: Engine, now: datetime | None = None) -> dict[str, float]:
    """``department_paces`` of the database's record (the last PACE_WINDOW_DAYS before ``now``; all when None)."""
    c = schema.cases.c
    statement = select(c.dept, c.dispatched_at, c.handled_at, c.deadline).where(
        c.handled_at.is_not(None), c.dispatched_at.is_not(None), c.deadline.is_not(None), c.rework_count == 0
    )
    if now is not None:
        statement = statement.where(c.dispatched_at >= db.to_db_time(now - timedelta(days=PACE_WINDOW_DAYS)))
    with engine.connect() as connection:
        return department_paces(connection.execute(statement).all())


def load_world(engine: Engine, rules: Rules, calendar: WorkCalendar, rng, worker_limit: int | None = None, now: datetime | None = None) -> World:
    """The district from the grid database (read only): deepest-level grids, role-``worker``
    staff, and departments' paces from their record up to ``now``."""
    check_tables(engine)
    grids, workers = schema.grids.c, schema.workers.c
    with engine.connect() as connection:
        deepest = connection.execute(select(func.max(grids.level))).scalar()
        rows = connection.execute(
            select(grids.code, grids.geometry, grids.population).where(grids.level == deepest, grids.geometry.is_not(None)).order_by(grids.code)
        ).all() if deepest is not None else []
        staff = connection.execute(select(workers.id, workers.grid).where(workers.role == "worker").order_by(workers.id)).all()
        departments = list(connection.execute(select(schema.departments.c.code)).scalars())
    if not rows:
        raise SimulatorError(f"the database at {db.describe(engine)} has no grids: import a district (import-grids) or run `python app.py` for the demo")
    if not any(category.is_detail for category in rules.categories.values()):
        raise SimulatorError(f"the database at {db.describe(engine)} has no event catalogue: import one (import-catalog)")
    geometries = shapely.from_geojson(np.array([row.geometry for row in rows], dtype=object))
    return build_world(
        [(row.code, geometry, row.population) for row, geometry in zip(rows, geometries)],
        [(worker, grid) for worker, grid in staff], rules, departments, calendar, rng, worker_limit, load_paces(engine, now),
    )


def load_open_cases(engine: Engine) -> list[Case]:
    """The cases still open in the database (read only), oldest change first."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.cases).where(schema.cases.c.is_open.is_(True)).order_by(schema.cases.c.updated_at, schema.cases.c.id)).mappings().all()
    return [case_from_row(row) for row in rows]


# ================================================================ patrol


@dataclass
class PatrolState:
    """Every patrolling worker's walk and device, as parallel arrays (times in epoch seconds)."""

    x: np.ndarray  # true position, GCJ-02 lon
    y: np.ndarray  # true position, GCJ-02 lat
    tx: np.ndarray  # waypoint walked to
    ty: np.ndarray
    heading: np.ndarray  # degrees from north, clockwise
    pace: np.ndarray  # the worker's own speed, m/s
    ebike: np.ndarray
    diligence: np.ndarray  # share of rounds the worker walks
    on_round: np.ndarray  # the device has reported in the current round
    last_t: np.ndarray  # time of the last move
    next_t: np.ndarray  # when the device reports next (inf: no more rounds today)
    off_until: np.ndarray  # device switched off until then
    dwell_until: np.ndarray  # standing still until then
    starts: np.ndarray  # (workers, rounds): today's round starts (inf: round skipped)
    ends: np.ndarray
    day_end: float  # next local midnight
    seed: int  # of the round schedules (one draw per local day)


@dataclass
class Pings:
    """Device reports as parallel arrays; ``lat``/``lon`` WGS-84 as sent, ``accuracy`` NaN when not sent."""

    worker: np.ndarray  # index into World.workers
    ts: np.ndarray  # epoch seconds
    lat: np.ndarray
    lon: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    accuracy: np.ndarray

    FIELDS = ("worker", "ts", "lat", "lon", "speed", "heading", "accuracy")

    @classmethod
    def empty(cls) -> Pings:
        return cls(np.array([], dtype=np.int64), *(np.array([], dtype=float) for _ in range(6)))

    @classmethod
    def concat(cls, parts: list[Pings]) -> Pings:
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in cls.FIELDS))

    def take(self, index) -> Pings:
        return Pings(*(getattr(self, name)[index] for name in self.FIELDS))

    def __len__(self) -> int:
        return len(self.ts)


def _epoch(day: date, clock: time, tz) -> float:
    return datetime.combine(day, clock, tzinfo=tz).timestamp()


def round_schedule(day: date, diligence: np.ndarray, calendar: WorkCalendar, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each worker's round starts and ends (epoch seconds; inf when skipped) on a local day.

    Two rounds a day (ROUND_STARTS, about ROUND_MINUTES each, starting up to
    ROUND_JITTER_MIN early or late); a worker walks a round with probability ``diligence``,
    the afternoon one on rest days much less often. One draw per day and seed.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    n = diligence.size
    working = calendar.is_working_day(day)
    starts = np.full((n, len(ROUND_STARTS)), np.inf)
    ends = np.full((n, len(ROUND_STARTS)), np.inf)
    for number, clock in enumerate(ROUND_STARTS):
        begin = _epoch(day, clock, calendar.tz)
        offset = rng.uniform(-ROUND_JITTER_MIN, ROUND_JITTER_MIN, n) * 60.0
        length = ROUND_MINUTES * 60.0 * rng.uniform(*ROUND_LENGTH_FACTOR, n)
        chance = diligence if number == 0 or working else diligence * REST_DAY_SECOND_ROUND
        walked = rng.random(n) < chance
        starts[walked, number] = begin + offset[walked]
        ends[walked, number] = starts[walked, number] + length[walked]
    return starts, ends


def in_round(starts: np.ndarray, ends: np.ndarray, t) -> np.ndarray:
    """Whether each worker is inside one of its rounds at ``t`` (scalar or per worker)."""
    t = np.asarray(t, dtype=float)
    t = t[:, None] if t.ndim else t
    return ((starts <= t) & (t < ends)).any(axis=1)


def _next_start(starts: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.where(starts > t[:, None], starts, np.inf).min(axis=1)


def _start_day(state: PatrolState, calendar: WorkCalendar, moment: float, interval_s: float, rng) -> None:
    """Load the round schedule of the local day of ``moment``; wake the devices with no round left."""
    day = datetime.fromtimestamp(moment, calendar.tz).date()
    state.starts, state.ends = round_schedule(day, state.diligence, calendar, state.seed)
    state.day_end = _epoch(day + timedelta(days=1), time(0), calendar.tz)
    idle = np.flatnonzero(~np.isfinite(state.next_t))
    if idle.size:
        first = _next_start(state.starts[idle], np.full(idle.size, moment))
        state.next_t[idle] = first + rng.uniform(0, interval_s, idle.size)
        state.on_round[idle] = False


def new_patrol_state(world: World, start: float, interval_s: float, rng, seed: int) -> PatrolState:
    """Workers at the start time: those inside a round report within one interval, the others at their next round."""
    n = len(world.workers)
    ebike = rng.random(n) < EBIKE_SHARE
    pace = np.where(ebike, EBIKE_SPEED_MPS, WALK_SPEED_MPS) * np.clip(rng.normal(1.0, PACE_SPREAD, n), 0.6, 1.4)
    grid = world.worker_grid
    here = world.waypoints[grid, rng.integers(WAYPOINTS_PER_GRID, size=n)]
    there = world.waypoints[grid, rng.integers(WAYPOINTS_PER_GRID, size=n)]
    state = PatrolState(
        x=here[:, 0].copy(), y=here[:, 1].copy(), tx=there[:, 0].copy(), ty=there[:, 1].copy(),
        heading=rng.uniform(0, 360, n), pace=pace, ebike=ebike, diligence=rng.beta(*DILIGENCE_BETA, n),
        on_round=np.zeros(n, dtype=bool), last_t=np.full(n, start), next_t=np.full(n, np.inf),
        off_until=np.zeros(n), dwell_until=np.zeros(n),
        starts=np.empty((n, len(ROUND_STARTS))), ends=np.empty((n, len(ROUND_STARTS))), day_end=start, seed=seed,
    )
    _start_day(state, world.calendar, start, interval_s, rng)
    now_in = in_round(state.starts, state.ends, start)
    state.next_t[now_in] = start + rng.uniform(0, interval_s, int(now_in.sum()))
    return state


def advance_patrol(state: PatrolState, world: World, until: float, interval_s: float, rng) -> Pings:
    """Walk every worker up to ``until`` (epoch seconds) and return what their devices sent.

    Updates ``state`` in place. Each turn of the loop handles, vectorised, every device due
    by ``until``, so a long step sends several pings per device, each worker's in time
    order. No ping is stamped after ``until``.
    """
    parts = []
    while True:
        due = np.flatnonzero(state.next_t <= min(until, state.day_end))
        if not due.size:
            if until < state.day_end:
                break
            _start_day(state, world.calendar, state.day_end, interval_s, rng)
            continue
        part = _patrol_turn(state, world, due, interval_s, rng)
        if part is not None:
            parts.append(part)
    return Pings.concat(parts)


def _patrol_turn(state: PatrolState, world: World, due: np.ndarray, interval_s: float, rng) -> Pings | None:
    t = state.next_t[due]
    inside = in_round(state.starts[due], state.ends[due], t)
    if not inside.all():  # the round is over (or not begun): silent until the next one
        idle, t_idle = due[~inside], t[~inside]
        state.next_t[idle] = _next_start(state.starts[idle], t_idle) + rng.uniform(0, interval_s, idle.size)
        state.on_round[idle] = False
    w, t = due[inside], t[inside]
    if not w.size:
        return None
    n = w.size
    grid = world.worker_grid[w]

    fresh = ~state.on_round[w]
    if fresh.any():  # a round begins somewhere in the grid (the community office, a gate...)
        f, g = w[fresh], grid[fresh]
        start = world.waypoints[g, rng.integers(WAYPOINTS_PER_GRID, size=f.size)]
        target = world.waypoints[g, rng.integers(WAYPOINTS_PER_GRID, size=f.size)]
        state.x[f], state.y[f] = start[:, 0], start[:, 1]
        state.tx[f], state.ty[f] = target[:, 0], target[:, 1]
        state.last_t[f] = t[fresh]
        state.dwell_until[f] = 0.0
        state.off_until[f] = 0.0
        state.on_round[f] = True

    # Walk towards the waypoint; a step that would leave the grid is not taken (turn back).
    dt = np.clip(t - state.last_t[w], 0.0, MAX_STEP_S)
    x, y = state.x[w], state.y[w]
    mx = world.metres_per_deg_lon[grid]
    dx_m, dy_m = (state.tx[w] - x) * mx, (state.ty[w] - y) * METRES_PER_DEGREE_LAT
    distance = np.hypot(dx_m, dy_m)
    moving = t >= state.dwell_until[w]
    travel = state.pace[w] * rng.uniform(*STEP_SPEED_RANGE, n) * dt * moving
    arrive = distance <= travel
    share = np.where(arrive, 1.0, travel / np.maximum(distance, 1e-9))
    nx, ny = x + (state.tx[w] - x) * share, y + (state.ty[w] - y) * share
    ok = shapely.contains_xy(world.polygons[grid], nx, ny)
    nx, ny = np.where(ok, nx, x), np.where(ok, ny, y)
    step_x, step_y = (nx - x) * mx, (ny - y) * METRES_PER_DEGREE_LAT
    moved = np.hypot(step_x, step_y)
    walking = moved > 0.5
    heading = np.where(walking, (np.degrees(np.arctan2(step_x, step_y)) + rng.normal(0, 4.0, n)) % 360.0, state.heading[w])
    retarget = arrive | ~ok
    if retarget.any():
        r = w[retarget]
        target = world.waypoints[grid[retarget], rng.integers(WAYPOINTS_PER_GRID, size=r.size)]
        state.tx[r], state.ty[r] = target[:, 0], target[:, 1]
    pause = arrive & ok & (rng.random(n) < DWELL_SHARE)
    state.dwell_until[w[pause]] = t[pause] + rng.exponential(DWELL_MEAN_S, int(pause.sum()))
    state.x[w], state.y[w], state.heading[w], state.last_t[w] = nx, ny, heading, t
    state.next_t[w] = t + interval_s * rng.uniform(1 - INTERVAL_DRIFT, 1 + INTERVAL_DRIFT, n)

    # The device: off for a minute or two now and then; otherwise it reports.
    silent = t < state.off_until[w]
    going_off = ~silent & (rng.random(n) < GPS_GAP_PER_PING)
    state.off_until[w[going_off]] = t[going_off] + rng.uniform(*GPS_GAP_S, int(going_off.sum()))
    send = ~silent
    if not send.any():
        return None
    w, t, grid, mx = w[send], t[send], grid[send], mx[send]
    m = w.size
    px = nx[send] + rng.normal(0, GPS_JITTER_M, m) / mx
    py = ny[send] + rng.normal(0, GPS_JITTER_M, m) / METRES_PER_DEGREE_LAT
    kept = shapely.contains_xy(world.polygons[grid], px, py)  # jitter never leaves the grid
    px, py = np.where(kept, px, nx[send]), np.where(kept, py, ny[send])
    lat, lon = gcj02_to_wgs84(py, px)
    speed = moved[send] / np.where(dt[send] > 0, dt[send], np.inf)
    speed = np.clip(speed + rng.normal(0, 0.15, m) * (speed > 0), 0.0, None)
    accuracy = np.where(rng.random(m) < ACCURACY_SHARE, np.round(rng.uniform(*ACCURACY_RANGE_M, m)), np.nan)
    return Pings(w, t, lat, lon, speed, heading[send], accuracy)


def gps_noise(pings: Pings, rng) -> Pings:
    """Real devices' bad moments (``--noise``): glitches far off, multipath jumps, repeated sends."""
    n = len(pings)
    if not n:
        return pings
    lat, lon = pings.lat.copy(), pings.lon.copy()
    glitch = np.flatnonzero(rng.random(n) < NOISE_GLITCH_PER_PING)
    for i, kind in zip(glitch, rng.integers(3, size=glitch.size)):
        if kind == 0:
            lat[i], lon[i] = 0.0, 0.0  # cold start: "null island"
        elif kind == 1:
            lat[i], lon[i] = lon[i], lat[i]  # a firmware that swaps them
        else:
            lat[i], lon[i] = lat[i] + rng.choice([-1, 1]) * rng.uniform(0.3, 0.6), lon[i] + rng.uniform(-0.6, 0.6)
    jump = np.flatnonzero(rng.random(n) < NOISE_JUMP_PER_PING)
    if jump.size:
        distance = rng.uniform(*NOISE_JUMP_M, jump.size)
        bearing = rng.uniform(0, 2 * np.pi, jump.size)
        lat[jump] += distance * np.cos(bearing) / METRES_PER_DEGREE_LAT
        lon[jump] += distance * np.sin(bearing) / (METRES_PER_DEGREE_EQUATOR * np.cos(np.radians(lat[jump])))
    noisy = Pings(pings.worker, pings.ts, lat, lon, pings.speed, pings.heading, pings.accuracy)
    repeat = rng.random(n) < NOISE_REPEAT_PER_MESSAGE
    if repeat.any():  # the repeat right after the original: same worker, same time
        noisy = noisy.take(np.repeat(np.arange(n), np.where(repeat, 2, 1)))
    return noisy


def gps_messages(pings: Pings, workers: np.ndarray) -> list[list[str]]:
    """Flat XADD field lists (every value a string), as devices send them: epoch milliseconds."""
    ids = workers[pings.worker].tolist()
    stamps = np.floor(pings.ts * 1000.0).astype(np.int64).tolist()  # floor: never after the ping
    lats = [f"{value:.7f}" for value in pings.lat.tolist()]
    lons = [f"{value:.7f}" for value in pings.lon.tolist()]
    speeds = [f"{value:.1f}" for value in pings.speed.tolist()]
    headings = [f"{value:.1f}" for value in pings.heading.tolist()]
    accuracy = pings.accuracy.tolist()
    messages = [
        ["worker", worker, "ts", str(stamp), "lat", lat, "lon", lon, "speed", speed, "heading", heading]
        for worker, stamp, lat, lon, speed, heading in zip(ids, stamps, lats, lons, speeds, headings)
    ]
    for message, value in zip(messages, accuracy):
        if value == value:  # not NaN
            message += ["accuracy", f"{value:.0f}"]
    return messages


# ================================================================ cases


@dataclass
class SimCase:
    """A case the simulator drives: its state as the consumer will hold it and the steps to come."""

    case_id: str
    case: Case | None
    steps: list  # remaining (fields, fraction of the stage time) as demo.case_script makes them
    due: datetime  # when the next step happens
    event_prefix: str
    events: int = 0
    send_grid: bool = True


def resume_steps(case: Case, world: World, rng) -> list[tuple[dict, float]]:
    """The rest of an open case's life from its status, with the odds of the demo history."""
    dept = case.dept or world.rules.categories[case.category].dept
    return lifecycle_steps(case.status, case.source, case.grade, dept, world.dept_speed.get(dept, 0.5), rng)


def next_due(case: Case, ts: datetime, fraction: float, rng) -> datetime:
    """When the next step happens: a share of the current stage's time (as demo.play_case)."""
    if fraction < 0:  # evaluation: hours after closing, by phone
        return ts + timedelta(hours=float(rng.uniform(*EVALUATION_DELAY_H)))
    deadline = case.stage_deadline
    span = deadline - ts if deadline is not None and deadline > ts else timedelta(seconds=NO_DEADLINE_SPAN_S)
    return ts + max(timedelta(seconds=MIN_STEP_S), span * fraction)


def case_message(event: CaseEvent, tz, send_grid: bool = True) -> dict:
    """The feed message of an event (every field a string, positions WGS-84)."""
    message = {
        "event_id": event.event_id, "case_id": event.case_id, "action": event.action,
        "ts": event.ts.astimezone(tz).isoformat(timespec="milliseconds"), "actor": event.actor,
    }
    if event.action == "report":
        lat, lon = gcj02_to_wgs84(event.lat, event.lon)
        message.update(category=event.category, source=event.source, lat=f"{lat:.7f}", lon=f"{lon:.7f}")
        if send_grid:
            message["grid"] = event.grid
        for name in ("worker", "grade", "description", "reporter", "contact"):
            if getattr(event, name):
                message[name] = str(getattr(event, name))
    elif event.action == "dispatch":
        message["dept"] = event.dept
    elif event.action == "evaluate":
        message["satisfaction"] = event.satisfaction
    return message


def default_rate_per_hour(world: World) -> float:
    """The demo district's ~380 cases a day, more in a district with more than its 900 grids."""
    return CASES_PER_DAY / 24.0 * max(1.0, len(world.grid_codes) / DEMO_GRIDS)


# ================================================================ the simulation


@dataclass(frozen=True)
class SimOptions:
    seed: int = 0
    rate_per_hour: float | None = None  # mean over the day; None: default_rate_per_hour
    gps_interval_s: float = GPS_INTERVAL_S
    noise: bool = False
    backlog_spread_s: float = BACKLOG_SPREAD_S
    run_id: str | None = None  # makes case and event ids unique across runs; random when None


@dataclass
class Output:
    """What one advance produced, in publishing order."""

    pings: Pings
    events: list  # case-event messages (dicts of strings)
    cases: list  # the case after each (non-repeated) event, as the consumer will hold it


class Simulation:
    """The district's state at ``now``; ``advance(until)`` moves it on and returns what was sent."""

    def __init__(self, world: World, start: datetime, options: SimOptions = SimOptions(), open_cases: Iterable[Case] = ()):
        if start.tzinfo is None:
            raise ValueError("start needs a time zone")
        self.world = world
        self.options = options
        self.now = start.astimezone(UTC)
        patrol_seq, case_seq, noise_seq, schedule_seq = np.random.SeedSequence(options.seed).spawn(4)
        self.patrol_rng = np.random.default_rng(patrol_seq)
        self.case_rng = np.random.default_rng(case_seq)
        self.noise_rng = np.random.default_rng(noise_seq)
        schedule_seed = int(schedule_seq.generate_state(1)[0])
        self.patrol = new_patrol_state(world, self.now.timestamp(), options.gps_interval_s, self.patrol_rng, schedule_seed)
        self.run_id = options.run_id or uuid.uuid4().hex[:6]
        self.rate_per_hour = default_rate_per_hour(world) if options.rate_per_hour is None else options.rate_per_hour
        share = SOURCE_MIX["patrol"] * self.rate_per_hour * 24.0
        self.patrol_rate_per_worker_h = share / (world.staff_size * EXPECTED_DUTY_H) if world.staff_size else 0.0
        self.active: dict[str, SimCase] = {}
        self._queue: list = []
        self._order = itertools.count()
        self._numbers = itertools.count(1)
        self.counts: Counter = Counter()
        self.pings_sent = 0
        for case in open_cases:
            self._resume(case)

    # ------------------------------------------------------------ public

    def advance(self, until: datetime) -> Output:
        """Everything that happens after ``now`` up to ``until`` (inclusive); nothing is stamped later."""
        until = until.astimezone(UTC)
        if until <= self.now:
            return Output(Pings.empty(), [], [])
        pings = advance_patrol(self.patrol, self.world, until.timestamp(), self.options.gps_interval_s, self.patrol_rng)
        if self.options.noise:
            pings = gps_noise(pings, self.noise_rng)
        self._arrivals(self.now, until)
        events, cases = self._play(until)
        if self.options.noise and events:
            repeat = self.noise_rng.random(len(events)) < NOISE_REPEAT_PER_EVENT
            events = [m for message, twice in zip(events, repeat) for m in ((message, message) if twice else (message,))]
        self.now = until
        self.pings_sent += len(pings)
        return Output(pings, events, cases)

    def on_round(self, at: datetime | None = None) -> np.ndarray:
        """Indices of the workers on a round whose device has reported in it."""
        moment = (at or self.now).timestamp()
        state = self.patrol
        return np.flatnonzero(state.on_round & in_round(state.starts, state.ends, moment))

    # ------------------------------------------------------------ arrivals

    def _arrivals(self, start: datetime, end: datetime) -> None:
        rng, tz = self.case_rng, self.world.tz
        for source, share in SOURCE_MIX.items():
            if source != "patrol" and share > 0:
                # demo.arrival_times keeps arrivals in [start, end): a stamp is never after ``end``.
                for moment in arrival_times(start, end, self.rate_per_hour * 24.0 * share, DAY_PROFILE, tz, rng):
                    self._open(moment, source, None)
        eligible = self.on_round(end)
        if eligible.size and self.patrol_rate_per_worker_h > 0:
            hours = (end - start).total_seconds() / 3600.0
            count = rng.poisson(self.patrol_rate_per_worker_h * eligible.size * hours)
            state = self.patrol
            for worker in rng.choice(eligible, size=count):
                rounds = state.starts[worker][(state.starts[worker] <= end.timestamp()) & (end.timestamp() < state.ends[worker])]
                earliest = max(start.timestamp(), float(rounds.max()) if rounds.size else start.timestamp())
                moment = datetime.fromtimestamp(float(rng.uniform(earliest, end.timestamp())), UTC)
                self._open(min(moment, end), "patrol", int(worker))

    def _open(self, moment: datetime, source: str, worker: int | None) -> None:
        """A new case from ``source``: its whole script, drawn as the demo history draws it."""
        rng, world = self.case_rng, self.world
        case_id = f"S{moment.astimezone(world.tz):%Y%m%d}-{self.run_id}-{next(self._numbers):05d}"
        script = case_script(case_id, moment, source, world.script_district, world.rules, rng)
        report = dict(script[0][0])
        if worker is not None:  # where the worker stands, in the worker's own grid
            report.update(grid=world.grid_codes[world.worker_grid[worker]], lon=float(self.patrol.x[worker]),
                          lat=float(self.patrol.y[worker]), worker=str(world.workers[worker]))
        category = world.rules.categories[report["category"]]
        report["description"] = DESCRIPTION.get(source, "") + category.name
        if source == "leader" and rng.random() < LEADER_GRADE_A_SHARE:
            report["grade"] = "A"
        send_grid = not (rng.random() < LOCATED_SHARE.get(source, 0.0))
        script[0] = (report, 0.0)
        self._schedule(SimCase(case_id, None, script, moment, event_prefix=case_id, send_grid=send_grid))

    def _resume(self, case: Case) -> None:
        """An open case from the database: its next step at its pace, or soon if it is already late."""
        category = self.world.rules.categories.get(case.category)
        if case.status not in OPEN_STATUSES or category is None or not category.is_detail:
            return
        rng = self.case_rng
        steps = resume_steps(case, self.world, rng)
        due = next_due(case, case.updated_at, steps[0][1], rng)
        if due <= self.now:
            due = self.now + timedelta(seconds=float(rng.exponential(self.options.backlog_spread_s)))
        self._schedule(SimCase(case.case_id, case, steps, due, event_prefix=f"{case.case_id}-{self.run_id}"))

    def _schedule(self, item: SimCase) -> None:
        self.active[item.case_id] = item
        heapq.heappush(self._queue, (item.due, next(self._order), item.case_id))

    # ------------------------------------------------------------ lifecycle

    def _play(self, until: datetime) -> tuple[list, list]:
        """Every step due by ``until``, in time order, applied by the lifecycle rules."""
        rng, rules, tz = self.case_rng, self.world.rules, self.world.tz
        messages, cases = [], []
        while self._queue and self._queue[0][0] <= until:
            _, _, case_id = heapq.heappop(self._queue)
            item = self.active[case_id]
            fields, _ = item.steps.pop(0)
            fields = dict(fields)
            if fields["action"] == "evaluate":
                late = item.case.deadline is not None and item.case.closed_at > item.case.deadline
                fields["satisfaction"] = str(rng.choice(["satisfied", "basic", "unsatisfied"], p=SATISFACTION_ODDS[late]))
            event = CaseEvent(event_id=f"{item.event_prefix}-{item.events}", case_id=case_id, ts=item.due, actor=actor_of(fields, item.case), **fields)
            try:
                after = apply_event(item.case, event, rules)
            except ValueError as error:  # cannot happen with a consistent script; never publish it
                log.error("simulated case %s stopped: %s", case_id, error)
                del self.active[case_id]
                continue
            messages.append(case_message(event, tz, item.send_grid))
            cases.append(after)
            self.counts[event.action] += 1
            item.case, item.events = after, item.events + 1
            if item.steps:
                item.due = next_due(after, event.ts, item.steps[0][1], rng)
                heapq.heappush(self._queue, (item.due, next(self._order), case_id))
            else:
                del self.active[case_id]
        return messages, cases


# ================================================================ publishing


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


# ================================================================ command line

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
        f"per {DEMO_GRIDS} basic grids, at least {CASES_PER_DAY} a day)",
    )
    parser.add_argument("--gps-interval", type=_number(float, 0, False), default=GPS_INTERVAL_S, metavar="SECONDS", help=f"how often a patrol device reports its position (default {GPS_INTERVAL_S:g})")
    parser.add_argument(
        "--speedup", type=_number(float, 0, False), default=1.0, metavar="FACTOR",
        help="run simulated time FACTOR times faster than real time from --start until it catches up with now (timestamps are never in the future)",
    )
    parser.add_argument("--start", metavar="TIME", help="simulated start: ISO 8601 (local time unless it has an offset) or a time ago such as 2h or 90m (default: now)")
    parser.add_argument("--noise", action="store_true", help="add realistic bad input: GPS glitches outside the district, multipath jumps, repeated messages (some become dead letters)")
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
    options = SimOptions(seed=seed, rate_per_hour=args.rate, gps_interval_s=args.gps_interval, noise=args.noise)
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
