"""The patrol on the ``patrol-gps`` stream: every grid worker walks (or rides an e-bike
around) their own basic grid on the rounds of ``data_feeds.patrol_rounds``, and the device
reports a WGS-84 position every few seconds with GPS jitter, speed, heading, sometimes
accuracy, and the odd gap of a minute or two; outside the rounds the devices are silent.

Vectorised over all workers (``advance_patrol``); ``gps_noise`` adds real devices' bad
moments (``--noise``) and ``gps_messages`` turns pings into stream messages.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import numpy as np
import shapely

from data_feeds.case_model import POINTS_PER_GRID
from data_feeds.patrol_rounds import DILIGENCE_BETA, EBIKE_SHARE, ROUND_STARTS, WALK_SPEED_MPS, epoch, in_round, round_schedule
from data_feeds.simulator.world import METRES_PER_DEGREE_EQUATOR, METRES_PER_DEGREE_LAT, World
from gridrules.coords import gcj02_to_wgs84
from gridrules.workcalendar import WorkCalendar

EBIKE_SPEED_MPS = 4.0
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

# ---- noise (``--noise`` only)
NOISE_GLITCH_PER_PING = 2e-4  # null island, swapped coordinates or tens of km away: dead letters
NOISE_JUMP_PER_PING = 1e-3  # multipath: 80-250 m off, may leave the grid or the district
NOISE_JUMP_M = (80.0, 250.0)
NOISE_REPEAT_PER_MESSAGE = 2e-3  # a message sent twice (consumer: late ping / duplicate event)


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
    shift_minutes: int = 0  # the rounds moved to a viewer's daytime (the demo abroad); 0 in production


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


def _next_start(starts: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.where(starts > t[:, None], starts, np.inf).min(axis=1)


def _start_day(state: PatrolState, calendar: WorkCalendar, moment: float, interval_s: float, rng) -> None:
    """Load the round schedule of the local day of ``moment``; wake the devices with no round left."""
    day = datetime.fromtimestamp(moment, calendar.tz).date()
    state.starts, state.ends = round_schedule(day, state.diligence, calendar, state.seed, state.shift_minutes)
    state.day_end = epoch(day + timedelta(days=1), time(0), calendar.tz)
    idle = np.flatnonzero(~np.isfinite(state.next_t))
    if idle.size:
        first = _next_start(state.starts[idle], np.full(idle.size, moment))
        state.next_t[idle] = first + rng.uniform(0, interval_s, idle.size)
        state.on_round[idle] = False


def new_patrol_state(world: World, start: float, interval_s: float, rng, seed: int, shift_minutes: int = 0) -> PatrolState:
    """Workers at the start time: those inside a round report within one interval, the others at their next round."""
    n = len(world.workers)
    ebike = rng.random(n) < EBIKE_SHARE
    pace = np.where(ebike, EBIKE_SPEED_MPS, WALK_SPEED_MPS) * np.clip(rng.normal(1.0, PACE_SPREAD, n), 0.6, 1.4)
    grid = world.worker_grid
    here = world.waypoints[grid, rng.integers(POINTS_PER_GRID, size=n)]
    there = world.waypoints[grid, rng.integers(POINTS_PER_GRID, size=n)]
    state = PatrolState(
        x=here[:, 0].copy(), y=here[:, 1].copy(), tx=there[:, 0].copy(), ty=there[:, 1].copy(),
        heading=rng.uniform(0, 360, n), pace=pace, ebike=ebike, diligence=rng.beta(*DILIGENCE_BETA, n),
        on_round=np.zeros(n, dtype=bool), last_t=np.full(n, start), next_t=np.full(n, np.inf),
        off_until=np.zeros(n), dwell_until=np.zeros(n),
        starts=np.empty((n, len(ROUND_STARTS))), ends=np.empty((n, len(ROUND_STARTS))), day_end=start, seed=seed,
        shift_minutes=shift_minutes,
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
        start = world.waypoints[g, rng.integers(POINTS_PER_GRID, size=f.size)]
        target = world.waypoints[g, rng.integers(POINTS_PER_GRID, size=f.size)]
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
        target = world.waypoints[grid[retarget], rng.integers(POINTS_PER_GRID, size=r.size)]
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
