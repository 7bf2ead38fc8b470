"""GeoLife GPS trajectories replayed as patrol-gps pings: reading the file, choosing a grid
worker for each device, moving each device's recorded days onto the latest days, and moving
each day's track onto the worker's grid. The replay is described in docs/replay.md.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from data_feeds.keys import Keys
from data_feeds.replay_common import AGE_MARGIN_S, Plan, ReplayError, ReplayReference, first_bad, pick_columns, read_table, stable_hash
from gridrules.coords import convert
from gridrules.patrol import EARTH_RADIUS_M

GEOLIFE_COLUMNS = ("lat", "lng", "datetime", "uid")
DEFAULT_GPS_DAYS = 7  # a week of patrols per device
METRES_PER_DEGREE = math.pi / 180.0 * EARTH_RADIUS_M


def assign_workers(uids, worker_ids) -> dict[str, str]:
    """Each uid → a distinct worker, by a stable hash over the workers sorted by id."""
    workers = sorted(worker_ids)
    if len(set(uids)) > len(workers):
        raise ReplayError(f"{len(set(uids))} GPS devices but only {len(workers)} grid workers (role worker) in the database; import more workers")
    taken: set[int] = set()
    result = {}
    for uid in sorted(set(uids)):
        index = stable_hash(f"geolife:{uid}") % len(workers)
        while index in taken:
            index = (index + 1) % len(workers)
        taken.add(index)
        result[uid] = workers[index]
    return result


def shift_user_days(points: pd.DataFrame, tz, now: datetime, days: int) -> pd.DataFrame:
    """The points of each user's last ``days`` recorded local days, moved onto the latest days.

    ``points``: ``uid``, ``ts`` (naive UTC). Returns the selected rows (same index) with
    ``shift_days`` (whole days added), ``ts`` moved, and ``day`` (the new local date).
    Per user the last recorded day lands on today, or yesterday when its last time of day
    is later than now's; each earlier recorded day on the calendar day before the next.
    """
    if points.empty:
        return points.assign(shift_days=pd.Series(dtype="int64"), day=pd.Series(dtype="datetime64[s]"))
    local = points["ts"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    source_day = local.dt.floor("D")
    time_of_day = local - source_day
    now_local = pd.Timestamp(now.astimezone(tz).replace(tzinfo=None))
    today = now_local.floor("D")
    frames = []
    for index in points.groupby("uid", sort=True).groups.values():
        user_days = np.sort(source_day.loc[index].unique())
        chosen = user_days[-days:]
        last = chosen[-1]
        last_time = time_of_day.loc[index][source_day.loc[index] == last].max()
        anchor = today if last_time <= now_local - today else today - pd.Timedelta(days=1)
        targets = anchor - pd.to_timedelta(np.arange(len(chosen))[::-1], unit="D")
        shift_of_day = pd.Series(((targets - pd.DatetimeIndex(chosen)) // pd.Timedelta(days=1)).astype("int64"), index=pd.DatetimeIndex(chosen))
        selected = index[source_day.loc[index].isin(chosen)]
        shifts = source_day.loc[selected].map(shift_of_day).astype("int64")
        frames.append(pd.DataFrame({"shift_days": shifts}, index=selected))
    shifts = pd.concat(frames)["shift_days"]
    result = points.loc[shifts.index].copy()
    result["shift_days"] = shifts
    result["ts"] = result["ts"] + pd.to_timedelta(shifts, unit="D")
    result["day"] = (source_day.loc[shifts.index] + pd.to_timedelta(shifts, unit="D")).to_numpy()
    return result


def translate_tracks(lat, lon, first_lat, first_lon, target_lat, target_lon):
    """Move points so (first_lat, first_lon) lands on the target, keeping east/north metres."""
    lat, lon, first_lat, first_lon, target_lat, target_lon = (np.asarray(v, dtype=float) for v in (lat, lon, first_lat, first_lon, target_lat, target_lon))
    north_m = (lat - first_lat) * METRES_PER_DEGREE
    east_m = (lon - first_lon) * METRES_PER_DEGREE * np.cos(np.radians(first_lat))
    return target_lat + north_m / METRES_PER_DEGREE, target_lon + east_m / (METRES_PER_DEGREE * np.cos(np.radians(target_lat)))


def read_geolife(path: Path) -> pd.DataFrame:
    """``line``, ``uid``, ``ts`` (naive UTC), ``lat``, ``lon`` (WGS-84) of every point, sorted by uid and time."""
    header, rows = read_table(path)
    columns = pick_columns(header, rows, GEOLIFE_COLUMNS)
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    lat = pd.to_numeric(pd.Series(columns["lat"], dtype=object), errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(pd.Series(columns["lng"], dtype=object), errors="coerce").to_numpy(dtype=float)
    first_bad(path, lines, ~(np.abs(lat) <= 90), columns["lat"], "lat", "is not a latitude")
    first_bad(path, lines, ~(np.abs(lon) <= 180), columns["lng"], "lng", "is not a longitude")
    ts = pd.to_datetime(pd.Series(columns["datetime"], dtype=object), format="ISO8601", errors="coerce", utc=True)
    first_bad(path, lines, ts.isna().to_numpy(), columns["datetime"], "datetime", "is not a date and time (YYYY-MM-DD HH:MM:SS, UTC)")
    uid = np.array(columns["uid"], dtype=object)
    first_bad(path, lines, uid == "", columns["uid"], "uid", "is not a user id")
    frame = pd.DataFrame({"line": lines, "uid": uid, "ts": ts.dt.tz_localize(None).astype("datetime64[us]").to_numpy(), "lat": lat, "lon": lon})
    return frame.sort_values(["uid", "ts", "line"], kind="stable").reset_index(drop=True)


def plan_geolife(points: pd.DataFrame, name: str, reference: ReplayReference, keys: Keys, tz, now: datetime, days: int, limit: int | None, max_age: timedelta, map_crs: str) -> Plan:
    """GeoLife points (``read_geolife``) → patrol-gps pings of real workers, in the recent past, in the district."""
    workers = reference.workers[reference.workers["role"] == "worker"]
    if workers.empty:
        raise ReplayError("the database has no grid workers (role worker); import workers first (python app.py import-workers FILE)")
    if workers["centroid_lat"].isna().any():
        raise ReplayError(f"grid {workers.loc[workers['centroid_lat'].isna(), 'grid'].iloc[0]} has no centroid; re-import the grids")
    assignment = assign_workers(points["uid"].unique().tolist(), workers["id"].tolist())
    chosen = shift_user_days(points[["uid", "ts"]], tz, now, days)
    p = points.loc[chosen.index].assign(ts=chosen["ts"], day=chosen["day"]).sort_values(["uid", "ts", "line"], kind="stable")
    too_old = p["ts"] < pd.Timestamp((now - max_age).astimezone(UTC).replace(tzinfo=None)) + pd.Timedelta(seconds=AGE_MARGIN_S)
    p = p[~too_old]
    # Each user-day starts at its worker's grid centroid (map datum → WGS-84, like a device).
    by_worker = workers.set_index("id")
    p = p.assign(worker=p["uid"].map(assignment))
    centroid_lat, centroid_lon = convert(
        by_worker.loc[p["worker"], "centroid_lat"].to_numpy(dtype=float), by_worker.loc[p["worker"], "centroid_lon"].to_numpy(dtype=float), map_crs, "wgs84"
    )
    first = p.groupby(["uid", "day"], sort=False)[["lat", "lon"]].transform("first")
    lat, lon = translate_tracks(p["lat"], p["lon"], first["lat"], first["lon"], centroid_lat, centroid_lon)
    p = p.assign(lat=lat, lon=lon).sort_values(["ts", "worker"], kind="stable")
    if limit is not None:
        p = p.head(limit)
    aware = p["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    messages = [
        {"worker": worker, "ts": moment.isoformat(timespec="seconds"), "lat": f"{la:.7f}", "lon": f"{lo:.7f}"}
        for worker, moment, la, lo in zip(p["worker"], aware, p["lat"], p["lon"])
    ]
    times = (p["ts"].astype("datetime64[us]").astype("int64") / 1e6).to_numpy()
    users = ", ".join(f"{uid}→{worker}" for uid, worker in sorted(assignment.items()))
    span = f"{aware.iloc[0]:%Y-%m-%d %H:%M}…{aware.iloc[-1]:%Y-%m-%d %H:%M}" if len(aware) else "nothing"
    summary = (
        f"geolife {name}: {len(assignment)} devices ({users}), last {days} recorded days each → "
        f"{len(messages)} pings to {keys.patrol_gps}, {span}; {int(too_old.sum())} too old skipped"
    )
    return Plan("geolife", keys.patrol_gps, messages, times, summary, {"pings": len(messages), "too_old": int(too_old.sum())})
