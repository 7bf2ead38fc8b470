"""Patrol tracks → hours on duty, kilometres walked, grids covered and rounds, per day.

Pure functions over a frame of points (``worker``, ``ts`` naive UTC, ``lat``, ``lon``,
``grid``): the demo generator, the feed consumer and the tests share them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

EARTH_RADIUS_M = 6_371_008.8
SEGMENT_GAP_S = 300  # a gap longer than this is not walked time (device off, indoors)
ROUND_GAP_S = 1200  # a pause longer than this starts a new patrol round
MAX_PATROL_SPEED_MPS = 15.0  # faster than an e-bike: a GPS jump, not a walk


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (vectorised)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def summarise_tracks(points: pd.DataFrame, tz) -> pd.DataFrame:
    """Per local day, worker and grid: seconds on patrol, metres walked, points, rounds.

    A segment between two consecutive points of a worker counts when the gap is at most
    SEGMENT_GAP_S and its speed plausible; its time and distance go to the grid of the
    later point. A round starts at a worker's first point and after every pause longer
    than ROUND_GAP_S; it is credited to the grid where it starts.
    """
    columns = ["day", "worker", "grid", "seconds", "meters", "points", "rounds"]
    if points.empty:
        return pd.DataFrame(columns=columns)
    p = points.sort_values(["worker", "ts"]).reset_index(drop=True)
    local = p["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    p["day"] = local.dt.date
    same_worker = p["worker"].eq(p["worker"].shift())
    same_day = p["day"].eq(p["day"].shift())
    gap = (p["ts"] - p["ts"].shift()).dt.total_seconds()
    step = haversine_m(p["lat"].shift(), p["lon"].shift(), p["lat"], p["lon"])
    step = pd.Series(step, index=p.index).fillna(0.0)
    continuing = same_worker & same_day & (gap > 0) & (gap <= SEGMENT_GAP_S)
    plausible = continuing & (step <= MAX_PATROL_SPEED_MPS * gap.clip(lower=1))
    p["seconds"] = gap.where(continuing, 0.0).fillna(0.0)
    p["meters"] = step.where(plausible, 0.0)
    p["points"] = 1
    p["rounds"] = (~(same_worker & same_day) | (gap > ROUND_GAP_S)).astype(int)
    p["grid"] = p["grid"].fillna("")
    summary = p.groupby(["day", "worker", "grid"], as_index=False)[["seconds", "meters", "points", "rounds"]].sum()
    return summary[columns]


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
