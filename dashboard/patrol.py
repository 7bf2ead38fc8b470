"""Patrol tracks → hours on duty, kilometres walked, grids covered and rounds, per day.

Pure functions over a frame of points (``worker``, ``ts`` naive UTC, ``lat``, ``lon``,
``grid``): the demo generator, the feed consumer and the tests share them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

EARTH_RADIUS_M = 6_371_008.8
SEGMENT_GAP_S = 300  # a gap longer than this is not walked time (device off, indoors)
ROUND_GAP_S = 1200  # a pause longer than this starts a new patrol round
MAX_PATROL_SPEED_MPS = 15.0  # faster than an e-bike: a GPS jump, not a walk


def haversine_scalar_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres of one pair (no numpy overhead, for loops)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (lat1, lon1, lat2, lon2))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (vectorised)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


SUMMARY_COLUMNS = ["day", "worker", "grid", "seconds", "meters", "points", "rounds"]


def _contributions(p: pd.DataFrame, tz) -> pd.DataFrame:
    """Per point (sorted by worker and time): the segment that ends at it, and whether it starts a round."""
    local = p["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    p = p.assign(day=local.dt.date)
    same_worker = p["worker"].eq(p["worker"].shift())
    same_day = p["day"].eq(p["day"].shift())
    gap = (p["ts"] - p["ts"].shift()).dt.total_seconds()
    step = pd.Series(haversine_m(p["lat"].shift(), p["lon"].shift(), p["lat"], p["lon"]), index=p.index).fillna(0.0)
    continuing = same_worker & same_day & (gap > 0) & (gap <= SEGMENT_GAP_S)
    plausible = continuing & (step <= MAX_PATROL_SPEED_MPS * gap.clip(lower=1))
    return p.assign(
        seconds=gap.where(continuing, 0.0).fillna(0.0),
        meters=step.where(plausible, 0.0),
        points=1,
        rounds=(~(same_worker & same_day) | (gap > ROUND_GAP_S)).astype(int),
        grid=p["grid"].fillna(""),
        gap=gap.where(same_worker),
        step=step.where(same_worker),
    )


def _summary(contributions: pd.DataFrame) -> pd.DataFrame:
    if contributions.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = contributions.groupby(["day", "worker", "grid"], as_index=False)[["seconds", "meters", "points", "rounds"]].sum()
    return summary[SUMMARY_COLUMNS]


def summarise_tracks(points: pd.DataFrame, tz) -> pd.DataFrame:
    """Per local day, worker and grid: seconds on patrol, metres walked, points, rounds.

    A segment between two consecutive points of a worker counts when the gap is at most
    SEGMENT_GAP_S and its speed plausible; its time and distance go to the grid of the
    later point. A round starts at a worker's first point of a day and after every pause
    longer than ROUND_GAP_S; it is credited to the grid where it starts.
    """
    if points.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _summary(_contributions(points.sort_values(["worker", "ts"]).reset_index(drop=True), tz))


@dataclass(frozen=True)
class TrackState:
    """A worker's last committed point, and the last point kept for the stored track."""

    ts: pd.Timestamp  # naive UTC
    lat: float
    lon: float
    grid: str | None
    kept_ts: pd.Timestamp
    kept_lat: float
    kept_lon: float


@dataclass
class TrackUpdate:
    accepted: pd.DataFrame  # new points, speed and heading filled in where the device sent none
    late: int  # points at or before the worker's last committed time (replays, redeliveries, stale clocks)
    summary: pd.DataFrame  # increments per day, worker and grid
    kept: pd.DataFrame  # the thinned points to store
    states: dict  # worker -> TrackState after this batch


def advance_tracks(points: pd.DataFrame, states: dict, tz, min_interval_s: float = 30.0, min_distance_m: float = 20.0) -> TrackUpdate:
    """Extend each worker's track with a batch of pings, continuing from its committed state.

    ``points``: worker, ts (naive UTC), lat, lon, grid, speed, heading. A ping not newer
    than the worker's committed last point adds nothing, so replaying a batch is harmless.
    """
    p = points.sort_values(["worker", "ts"], kind="stable").drop_duplicates(["worker", "ts"], keep="first")
    last = pd.to_datetime(p["worker"].map({worker: state.ts for worker, state in states.items()})).astype("datetime64[us]")
    fresh = last.isna() | (p["ts"] > last)
    late = len(points) - int(fresh.sum())
    p = p[fresh].reset_index(drop=True)
    if p.empty:
        empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
        return TrackUpdate(p, late, empty, p, dict(states))
    batch_workers = set(p["worker"])
    previous = pd.DataFrame(
        [{"worker": w, "ts": s.ts, "lat": s.lat, "lon": s.lon, "grid": s.grid, "previous": True} for w, s in states.items() if w in batch_workers],
        columns=["worker", "ts", "lat", "lon", "grid", "previous"],
    )
    combined = pd.concat([previous, p.assign(previous=False)], ignore_index=True) if not previous.empty else p.assign(previous=False)
    combined["ts"] = combined["ts"].astype("datetime64[us]")
    combined = combined.sort_values(["worker", "ts"], kind="stable").reset_index(drop=True)
    contributions = _contributions(combined, tz)
    new = contributions[~contributions["previous"].astype(bool)].reset_index(drop=True)
    derived_speed = (new["step"] / new["gap"].where(new["gap"] > 0)).clip(upper=MAX_PATROL_SPEED_MPS)
    new["speed"] = new["speed"].where(new["speed"].notna(), derived_speed)
    new["heading"] = new["heading"].where(new["heading"].notna(), _bearing(contributions))
    kept_mask, new_states = _thin(new, states, min_interval_s, min_distance_m)
    accepted = new[["worker", "ts", "lat", "lon", "grid", "speed", "heading"]]
    return TrackUpdate(accepted, late, _summary(new), accepted[kept_mask], new_states)


def _bearing(contributions: pd.DataFrame) -> pd.Series:
    c = contributions
    same = c["worker"].eq(c["worker"].shift())
    lat1, lat2 = np.radians(c["lat"].shift()), np.radians(c["lat"])
    dlon = np.radians(c["lon"] - c["lon"].shift())
    x = np.sin(dlon) * np.cos(lat2)
    y = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    bearing = (np.degrees(np.arctan2(x, y)) % 360).where(same)
    return bearing[~c["previous"].astype(bool)].reset_index(drop=True)


def _thin(new: pd.DataFrame, states: dict, min_interval_s: float, min_distance_m: float):
    """Which new points to store (30 s or 20 m from the last stored one), and the new states."""
    keep = np.zeros(len(new), dtype=bool)
    result = dict(states)
    workers = new["worker"].to_numpy()
    ts = new["ts"].to_numpy()
    lat = new["lat"].to_numpy()
    lon = new["lon"].to_numpy()
    grid = new["grid"].to_numpy()
    for index in range(len(new)):
        state = result.get(workers[index])
        if state is None:
            stored = True
        else:
            elapsed = (ts[index] - np.datetime64(state.kept_ts)) / np.timedelta64(1, "s")
            stored = elapsed >= min_interval_s or haversine_scalar_m(state.kept_lat, state.kept_lon, lat[index], lon[index]) >= min_distance_m
        keep[index] = stored
        moment = pd.Timestamp(ts[index])
        if stored:
            result[workers[index]] = TrackState(moment, float(lat[index]), float(lon[index]), grid[index], moment, float(lat[index]), float(lon[index]))
        else:
            result[workers[index]] = TrackState(moment, float(lat[index]), float(lon[index]), grid[index], state.kept_ts, state.kept_lat, state.kept_lon)
    return keep, result


def thin_track(points: pd.DataFrame, min_interval_s: float = 30.0, min_distance_m: float = 20.0) -> pd.DataFrame:
    """Keep a worker's point when 30 s have passed or it moved 20 m since the last kept one."""
    if points.empty:
        return points
    kept_rows = []
    for _, track in points.sort_values(["worker", "ts"]).groupby("worker", sort=False):
        ts = track["ts"].to_numpy()
        lat = track["lat"].to_numpy()
        lon = track["lon"].to_numpy()
        keep = np.zeros(len(track), dtype=bool)
        last = 0
        keep[0] = True
        for index in range(1, len(track)):
            elapsed = (ts[index] - ts[last]) / np.timedelta64(1, "s")
            if elapsed >= min_interval_s or haversine_m(lat[last], lon[last], lat[index], lon[index]) >= min_distance_m:
                keep[index] = True
                last = index
        kept_rows.append(track[keep])
    return pd.concat(kept_rows)
