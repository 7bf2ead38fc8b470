"""Patrol tracks → hours on duty, kilometres walked, grids covered and rounds, per day.

Pure functions over a frame of points (``worker``, ``ts`` naive UTC, ``lat``, ``lon``,
``grid``): the demo generator, the feed consumer and the tests share them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

EARTH_RADIUS_M = 6_371_008.8
SEGMENT_GAP_S = 300  # a gap longer than this is not walked time (device off, indoors)
ROUND_GAP_S = 1200  # a pause longer than this starts a new patrol round
MAX_PATROL_SPEED_MPS = 15.0  # faster than an e-bike: a GPS jump, not a walk


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> float | np.ndarray:
    """Great-circle distance in metres (vectorised)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


SUMMARY_COLUMNS = ["day", "worker", "grid", "seconds", "meters", "points", "rounds"]


def _contributions(p: pd.DataFrame, tz: tzinfo) -> pd.DataFrame:
    """Per point (sorted by worker and time): the segment that ends at it, and whether it starts a round."""
    # Local midnight as a datetime64 (not Python dates: one object per ping is slow).
    local = p["ts"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    p = p.assign(day=local.dt.floor("D"))
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
    summary["day"] = summary["day"].dt.date
    return summary[SUMMARY_COLUMNS]


def summarise_tracks(points: pd.DataFrame, tz: tzinfo) -> pd.DataFrame:
    """Per local day, worker and grid: seconds on patrol, metres walked, points, rounds.

    A segment between two consecutive points of a worker counts when the gap is at most
    SEGMENT_GAP_S and its speed plausible; its time and distance go to the grid of the
    later point. A round starts at a worker's first point of a day and after every pause
    longer than ROUND_GAP_S; it is credited to the grid where it starts.
    """
    if points.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _summary(_contributions(points.sort_values(["worker", "ts"]).reset_index(drop=True), tz))


STATE_COLUMNS = ["worker", "ts", "lat", "lon", "grid", "odometer"]


def empty_states() -> pd.DataFrame:
    """Track states: each worker's last committed point and odometer (metres walked)."""
    return pd.DataFrame({
        "worker": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[us]"), "lat": pd.Series(dtype=float),
        "lon": pd.Series(dtype=float), "grid": pd.Series(dtype=object), "odometer": pd.Series(dtype=float),
    })


@dataclass
class TrackUpdate:
    accepted: pd.DataFrame  # new points, speed and heading filled in where the device sent none
    late: int  # points at or before the worker's last committed time (replays, redeliveries, stale clocks)
    summary: pd.DataFrame  # increments per day, worker and grid
    kept: pd.DataFrame  # the thinned points to store
    states: pd.DataFrame  # the new track state of each worker in the batch
    accepted_rows: np.ndarray  # index labels of ``points`` that were accepted (the others were late)


def advance_tracks(points: pd.DataFrame, states: pd.DataFrame, tz: tzinfo, keep_every_s: float = 30.0, keep_every_m: float = 20.0) -> TrackUpdate:
    """Extend each worker's track with a batch of pings, continuing from its committed state.

    ``points``: worker, ts (naive UTC), lat, lon, grid, speed, heading; ``states``: the
    STATE_COLUMNS of workers seen before. A ping not newer than the worker's committed
    last point adds nothing, so replaying a batch is harmless. Thinning keeps the first
    point of every ``keep_every_s`` time slot and of every ``keep_every_m`` of the
    odometer: about a point per 30 s, or per 20 m when moving fast.
    """
    p = points.sort_values(["worker", "ts"], kind="stable").drop_duplicates(["worker", "ts"], keep="first")
    last = p["worker"].map(states.set_index("worker")["ts"]) if len(states) else pd.Series(pd.NaT, index=p.index)
    last = last.astype("datetime64[us]")
    fresh = last.isna() | (p["ts"] > last)
    late = len(points) - int(fresh.sum())
    p = p[fresh]
    accepted_rows = p.index.to_numpy()
    if p.empty:
        return TrackUpdate(p, late, pd.DataFrame(columns=SUMMARY_COLUMNS), p, empty_states(), accepted_rows)
    previous = states[states["worker"].isin(p["worker"])].assign(previous=True)
    combined = pd.concat([previous, p.assign(previous=False, odometer=np.nan)], ignore_index=True)
    combined["ts"] = combined["ts"].astype("datetime64[us]")
    combined["previous"] = combined["previous"].astype(bool)
    combined = combined.sort_values(["worker", "ts"], kind="stable").reset_index(drop=True)
    c = _contributions(combined, tz)
    first_of_worker = ~c["worker"].eq(c["worker"].shift())
    base = c["odometer"].where(first_of_worker).ffill().fillna(0.0)
    walked = c["meters"].where(~first_of_worker, 0.0)
    c["odometer"] = base + walked.groupby(c["worker"], sort=False).cumsum()
    slot = (c["ts"].astype("int64") // int(keep_every_s * 1_000_000)).to_numpy()
    stretch = np.floor(c["odometer"].to_numpy() / keep_every_m)
    same_worker = ~first_of_worker.to_numpy()
    keep = ~same_worker | (slot != np.roll(slot, 1)) | (stretch != np.roll(stretch, 1))
    new_rows = ~c["previous"].to_numpy()
    c["speed"] = c["speed"].where(c["speed"].notna(), (c["step"] / c["gap"].where(c["gap"] > 0)).clip(upper=MAX_PATROL_SPEED_MPS))
    c["heading"] = c["heading"].where(c["heading"].notna(), _bearing(c))
    new = c[new_rows].reset_index(drop=True)
    accepted = new[["worker", "ts", "lat", "lon", "grid", "speed", "heading"]]
    new_states = new.drop_duplicates("worker", keep="last")[STATE_COLUMNS].reset_index(drop=True)
    return TrackUpdate(accepted, late, _summary(new), accepted[keep[new_rows]], new_states, accepted_rows)


def _bearing(c: pd.DataFrame) -> pd.Series:
    """Direction of travel from the previous point of the same worker, degrees from north."""
    same = c["worker"].eq(c["worker"].shift())
    lat1, lat2 = np.radians(c["lat"].shift()), np.radians(c["lat"])
    dlon = np.radians(c["lon"] - c["lon"].shift())
    x = np.sin(dlon) * np.cos(lat2)
    y = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    return (np.degrees(np.arctan2(x, y)) % 360).where(same)
