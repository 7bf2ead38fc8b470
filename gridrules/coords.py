"""Datum conversion between WGS-84, GCJ-02 and BD-09 (pure, numpy-vectorised).

GPS devices report WGS-84, while Chinese base maps are drawn in GCJ-02 (Gaode, Tencent,
DataV boundaries) or BD-09 (Baidu). Positions must be converted to the map's datum on the
way in, or markers land 300-700 m off. Every function takes and returns (lat, lon), as
Python floats or numpy arrays (same kind out as in); NaN propagates as NaN.

GCJ-02 uses the widely published obfuscation formula and applies only inside the rough
mainland-China box; outside it every conversion returns the point unchanged. The inverses
are iterative, so round trips are exact to well under a millimetre.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

CRS_NAMES = ("wgs84", "gcj02", "bd09")

Degrees = float | np.ndarray

GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the published formula uses
GCJ_EE = 0.00669342162296594323
BD_X_PI = math.pi * 3000.0 / 180.0
BD_LAT_SHIFT = 0.006
BD_LON_SHIFT = 0.0065

CHINA_LON_MIN, CHINA_LON_MAX = 72.004, 137.8347
CHINA_LAT_MIN, CHINA_LAT_MAX = 0.8293, 55.8271

INVERSE_TOLERANCE_DEG = 1e-9  # ~0.1 mm
INVERSE_MAX_ITERATIONS = 20


def _as_arrays(lat: Degrees, lon: Degrees) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return lat and lon as broadcast float arrays and whether the inputs were scalars."""
    scalar = np.ndim(lat) == 0 and np.ndim(lon) == 0
    lat_arr, lon_arr = np.broadcast_arrays(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
    return lat_arr, lon_arr, scalar


def _result(lat: np.ndarray, lon: np.ndarray, scalar: bool) -> tuple[Degrees, Degrees]:
    """Return the pair as Python floats when the caller passed scalars."""
    if scalar:
        return float(lat), float(lon)
    return lat, lon


def _in_china(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Return a mask of the points inside the box where GCJ-02 applies (NaN counts as inside)."""
    # Written as "not outside" so NaN stays on the computing path and comes out as NaN.
    outside = (lon < CHINA_LON_MIN) | (lon > CHINA_LON_MAX) | (lat < CHINA_LAT_MIN) | (lat > CHINA_LAT_MAX)
    return ~outside


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the GCJ-02 latitude polynomial in metres for offsets x=lon-105, y=lat-35."""
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the GCJ-02 longitude polynomial in metres for offsets x=lon-105, y=lat-35."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_forward(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 position of WGS-84 arrays, ignoring the China box."""
    x, y = lon - 105.0, lat - 35.0
    rad_lat = np.radians(lat)
    magic = 1.0 - GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = _transform_lat(x, y) * 180.0 / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = _transform_lon(x, y) * 180.0 / (GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return lat + dlat, lon + dlon


def _bd_forward(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the BD-09 position of GCJ-02 arrays, ignoring the China box."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * BD_X_PI)
    return z * np.sin(theta) + BD_LAT_SHIFT, z * np.cos(theta) + BD_LON_SHIFT


def _bd_inverse_step(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the published one-step GCJ-02 approximation of BD-09 arrays."""
    x, y = lon - BD_LON_SHIFT, lat - BD_LAT_SHIFT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * BD_X_PI)
    return z * np.sin(theta), z * np.cos(theta)


def _invert(forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], target_lat: np.ndarray, target_lon: np.ndarray, start_lat: np.ndarray, start_lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the point that forward maps onto the target, by fixed-point iteration from the start."""
    lat, lon = start_lat, start_lon
    for _ in range(INVERSE_MAX_ITERATIONS):
        mapped_lat, mapped_lon = forward(lat, lon)
        step_lat, step_lon = target_lat - mapped_lat, target_lon - mapped_lon
        lat, lon = lat + step_lat, lon + step_lon
        steps = np.abs(np.concatenate([step_lat.ravel(), step_lon.ravel()]))
        # NaN points never converge; judge convergence on the finite ones only.
        finite = steps[np.isfinite(steps)]
        if finite.size == 0 or finite.max() < INVERSE_TOLERANCE_DEG:
            break
    return lat, lon


def wgs84_to_gcj02(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert WGS-84 (lat, lon) to GCJ-02."""
    lat, lon, scalar = _as_arrays(lat, lon)
    gcj_lat, gcj_lon = _gcj_forward(lat, lon)
    inside = _in_china(lat, lon)
    return _result(np.where(inside, gcj_lat, lat), np.where(inside, gcj_lon, lon), scalar)


def gcj02_to_wgs84(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert GCJ-02 (lat, lon) to WGS-84 by iterating the forward formula."""
    lat, lon, scalar = _as_arrays(lat, lon)
    # Start from the one-step approximation g - (f(g) - g), already within a few metres.
    once_lat, once_lon = _gcj_forward(lat, lon)
    wgs_lat, wgs_lon = _invert(_gcj_forward, lat, lon, 2.0 * lat - once_lat, 2.0 * lon - once_lon)
    # The box is judged on the given GCJ-02 point so the iteration never flips in and out of it.
    inside = _in_china(lat, lon)
    return _result(np.where(inside, wgs_lat, lat), np.where(inside, wgs_lon, lon), scalar)


def gcj02_to_bd09(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert GCJ-02 (lat, lon) to BD-09."""
    lat, lon, scalar = _as_arrays(lat, lon)
    bd_lat, bd_lon = _bd_forward(lat, lon)
    # Outside China the map datum is WGS-84 for every provider, so leave the point alone.
    inside = _in_china(lat, lon)
    return _result(np.where(inside, bd_lat, lat), np.where(inside, bd_lon, lon), scalar)


def bd09_to_gcj02(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert BD-09 (lat, lon) to GCJ-02 by iterating the forward formula."""
    lat, lon, scalar = _as_arrays(lat, lon)
    # The published one-step inverse is off by up to ~0.1 m; a few iterations remove that.
    step_lat, step_lon = _bd_inverse_step(lat, lon)
    gcj_lat, gcj_lon = _invert(_bd_forward, lat, lon, step_lat, step_lon)
    inside = _in_china(lat, lon)
    return _result(np.where(inside, gcj_lat, lat), np.where(inside, gcj_lon, lon), scalar)


def wgs84_to_bd09(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert WGS-84 (lat, lon) to BD-09 through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: Degrees, lon: Degrees) -> tuple[Degrees, Degrees]:
    """Convert BD-09 (lat, lon) to WGS-84 through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


_TO_GCJ02 = {"wgs84": wgs84_to_gcj02, "gcj02": None, "bd09": bd09_to_gcj02}
_FROM_GCJ02 = {"wgs84": gcj02_to_wgs84, "gcj02": None, "bd09": gcj02_to_bd09}


def convert(lat: Degrees, lon: Degrees, source: str, target: str) -> tuple[Degrees, Degrees]:
    """Convert (lat, lon) from the source datum to the target datum, routing through GCJ-02."""
    for role, name in (("source", source), ("target", target)):
        if name not in CRS_NAMES:
            raise ValueError(f"unknown {role} datum {name!r}; expected one of {', '.join(CRS_NAMES)}")
    if source == target:
        lat, lon, scalar = _as_arrays(lat, lon)
        return _result(lat.copy(), lon.copy(), scalar)
    to_gcj, from_gcj = _TO_GCJ02[source], _FROM_GCJ02[target]
    if to_gcj is not None:
        lat, lon = to_gcj(lat, lon)
    if from_gcj is not None:
        lat, lon = from_gcj(lat, lon)
    return lat, lon
