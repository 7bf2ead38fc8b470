"""WGS-84 / GCJ-02 / BD-09 conversion against published reference points, both ways.

Expectations come from two places: values published by widely used libraries (the
wandergis/coordtransform README examples at (39.915, 116.404)), and an independent
straightforward scalar transcription of the textbook formula written below with `math`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridrules import coords
from gridrules.coords import (
    CRS_NAMES,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

EARTH_RADIUS_M = 6371008.8
ALL_FUNCTIONS = (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84)

TIANANMEN_WGS = (39.908823, 116.397470)
TIANANMEN_GCJ_APPROX = (39.910227, 116.403712)
# wandergis/coordtransform README, input (lng 116.404, lat 39.915), reordered to (lat, lon).
SAMPLE = (39.915, 116.404)
SAMPLE_GCJ_TO_BD = (39.92133699351021, 116.41036949371029)
SAMPLE_WGS_TO_GCJ = (39.91640428150164, 116.41024449916938)
SAMPLE_BD_TO_GCJ_ONE_STEP = (39.90865673957631, 116.39762729119315)
SUZHOU_WUZHONG = (31.27, 120.62)
SHANGHAI = (31.23, 121.47)
LOS_ANGELES = (34.05, -118.24)
LONDON = (51.5074, -0.1278)


# Independent scalar reference, transcribed from the textbook formula.
def ref_wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
        return lat, lon
    a, ee, pi = 6378245.0, 0.00669342162296594323, math.pi
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat += (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * math.sin(y / 12.0 * pi) + 320 * math.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lon += (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1 - ee * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (a / sqrt_magic * math.cos(rad_lat) * pi)
    return lat + d_lat, lon + d_lon


def ref_gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (floats or arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))


def random_china_points(n: int, seed: int = 20261101) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(18.0, 53.0, n), rng.uniform(73.0, 135.0, n)


# (1) Tiananmen / Beijing sample, WGS-84 <-> GCJ-02.
def test_tiananmen_wgs84_to_gcj02_matches_published_and_reference():
    lat, lon = wgs84_to_gcj02(*TIANANMEN_WGS)
    assert lat == pytest.approx(TIANANMEN_GCJ_APPROX[0], abs=1e-5)
    assert lon == pytest.approx(TIANANMEN_GCJ_APPROX[1], abs=1e-5)
    ref = ref_wgs84_to_gcj02(*TIANANMEN_WGS)
    assert (lat, lon) == pytest.approx(ref, abs=1e-10)


def test_tiananmen_offset_is_in_the_well_known_range():
    offset = haversine_m(*TIANANMEN_WGS, *wgs84_to_gcj02(*TIANANMEN_WGS))
    assert 300.0 < offset < 700.0


def test_tiananmen_gcj02_back_to_wgs84():
    lat, lon = gcj02_to_wgs84(*ref_wgs84_to_gcj02(*TIANANMEN_WGS))
    assert haversine_m(lat, lon, *TIANANMEN_WGS) < 0.001


def test_coordtransform_readme_wgs84_to_gcj02():
    assert wgs84_to_gcj02(*SAMPLE) == pytest.approx(SAMPLE_WGS_TO_GCJ, abs=1e-10)
    assert ref_wgs84_to_gcj02(*SAMPLE) == pytest.approx(SAMPLE_WGS_TO_GCJ, abs=1e-10)


# (2) BD-09.
def test_coordtransform_readme_gcj02_to_bd09():
    result = gcj02_to_bd09(*SAMPLE)
    assert result == pytest.approx(SAMPLE_GCJ_TO_BD, abs=1e-5)
    assert result == pytest.approx(ref_gcj02_to_bd09(*SAMPLE), abs=1e-12)


def test_bd09_to_gcj02_refines_the_published_one_step_inverse():
    lat, lon = bd09_to_gcj02(*SAMPLE)
    # The one-step formula is within ~0.1 m of the exact inverse.
    assert haversine_m(lat, lon, *SAMPLE_BD_TO_GCJ_ONE_STEP) < 0.15
    assert gcj02_to_bd09(lat, lon) == pytest.approx(SAMPLE, abs=1e-10)


def test_beijing_railway_station_gcj02_bd09_pair():
    gcj, bd = (39.90245, 116.42703), (39.90851, 116.43351)  # pair quoted to 5 decimals
    assert gcj02_to_bd09(*gcj) == pytest.approx(bd, abs=1e-5)
    assert bd09_to_gcj02(*bd) == pytest.approx(gcj, abs=1e-5)


@pytest.mark.parametrize("point", [SAMPLE, TIANANMEN_WGS, SUZHOU_WUZHONG, SHANGHAI])
def test_bd09_round_trips(point):
    assert haversine_m(*bd09_to_gcj02(*gcj02_to_bd09(*point)), *point) < 0.001
    assert haversine_m(*gcj02_to_bd09(*bd09_to_gcj02(*point)), *point) < 0.001
    assert haversine_m(*bd09_to_wgs84(*wgs84_to_bd09(*point)), *point) < 0.001


def test_wgs84_to_bd09_matches_reference_composition():
    expected = ref_gcj02_to_bd09(*ref_wgs84_to_gcj02(*SAMPLE))
    assert wgs84_to_bd09(*SAMPLE) == pytest.approx(expected, abs=1e-12)


# (3) Suzhou Wuzhong and Shanghai round trips.
@pytest.mark.parametrize("point", [SUZHOU_WUZHONG, SHANGHAI], ids=["suzhou-wuzhong", "shanghai"])
@pytest.mark.parametrize(
    "forward, inverse",
    [(wgs84_to_gcj02, gcj02_to_wgs84), (gcj02_to_wgs84, wgs84_to_gcj02),
     (wgs84_to_bd09, bd09_to_wgs84), (bd09_to_wgs84, wgs84_to_bd09)],
    ids=["wgs-gcj-wgs", "gcj-wgs-gcj", "wgs-bd-wgs", "bd-wgs-bd"],
)
def test_forward_then_inverse_returns_within_a_decimetre(point, forward, inverse):
    moved = forward(*point)
    assert haversine_m(*moved, *point) > 100.0  # the conversion did shift it
    assert haversine_m(*inverse(*moved), *point) < 0.1


def test_suzhou_and_shanghai_match_reference():
    for point in (SUZHOU_WUZHONG, SHANGHAI):
        assert wgs84_to_gcj02(*point) == pytest.approx(ref_wgs84_to_gcj02(*point), abs=1e-10)


# (4) Outside China nothing moves.
@pytest.mark.parametrize("point", [LOS_ANGELES, LONDON, (-33.8688, 151.2093), (55.7558, 37.6173)],
                         ids=["los-angeles", "london", "sydney", "moscow"])
@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_outside_china_is_unchanged(point, function):
    assert function(*point) == point


@pytest.mark.parametrize("source", CRS_NAMES)
@pytest.mark.parametrize("target", CRS_NAMES)
def test_outside_china_unchanged_by_convert(source, target):
    assert convert(*LOS_ANGELES, source, target) == LOS_ANGELES
    lat, lon = convert(np.array([LONDON[0]]), np.array([LONDON[1]]), source, target)
    np.testing.assert_array_equal(lat, [LONDON[0]])
    np.testing.assert_array_equal(lon, [LONDON[1]])


# (5) Vectorised path equals the scalar path.
def test_scalar_in_scalar_out_array_in_array_out():
    lat, lon = wgs84_to_gcj02(*SHANGHAI)
    assert type(lat) is float and type(lon) is float
    lat, lon = wgs84_to_gcj02(np.array([SHANGHAI[0]]), np.array([SHANGHAI[1]]))
    assert isinstance(lat, np.ndarray) and lat.shape == (1,)


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_vectorised_matches_scalar_path(function):
    lats, lons = random_china_points(10_000)
    vec_lat, vec_lon = function(lats, lons)
    scalar = np.array([function(float(a), float(b)) for a, b in zip(lats, lons)])
    # Inverses stop iterating when every point has converged, a scalar when it alone has.
    np.testing.assert_allclose(vec_lat, scalar[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(vec_lon, scalar[:, 1], rtol=0, atol=1e-8)


def test_vectorised_forward_matches_independent_reference():
    lats, lons = random_china_points(10_000, seed=7)
    gcj_lat, gcj_lon = wgs84_to_gcj02(lats, lons)
    bd_lat, bd_lon = wgs84_to_bd09(lats, lons)
    ref_gcj = np.array([ref_wgs84_to_gcj02(a, b) for a, b in zip(lats, lons)])
    ref_bd = np.array([ref_gcj02_to_bd09(a, b) for a, b in ref_gcj])
    np.testing.assert_allclose(gcj_lat, ref_gcj[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(gcj_lon, ref_gcj[:, 1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bd_lat, ref_bd[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bd_lon, ref_bd[:, 1], rtol=0, atol=1e-10)


def test_vectorised_round_trip_error_is_sub_millimetre():
    lats, lons = random_china_points(10_000, seed=11)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lats, lons))
    assert haversine_m(*back, lats, lons).max() < 0.001
    back = bd09_to_wgs84(*wgs84_to_bd09(lats, lons))
    assert haversine_m(*back, lats, lons).max() < 0.001


def test_arrays_broadcast_against_scalars():
    lats = np.array([31.0, 31.1, 31.2])
    lat, lon = wgs84_to_gcj02(lats, 120.62)
    assert lat.shape == lon.shape == (3,)
    assert (lat[1], lon[1]) == pytest.approx(ref_wgs84_to_gcj02(31.1, 120.62), abs=1e-10)


# (6) convert routing.
DIRECT = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


@pytest.mark.parametrize("source", CRS_NAMES)
@pytest.mark.parametrize("target", CRS_NAMES)
def test_convert_routes_every_pair(source, target):
    result = convert(*SUZHOU_WUZHONG, source, target)
    expected = SUZHOU_WUZHONG if source == target else DIRECT[(source, target)](*SUZHOU_WUZHONG)
    assert result == pytest.approx(expected, abs=1e-12)
    if source != target:
        assert haversine_m(*result, *SUZHOU_WUZHONG) > 100.0
    lats, lons = random_china_points(50)
    vec_lat, vec_lon = convert(lats, lons, source, target)
    exp_lat, exp_lon = (lats, lons) if source == target else DIRECT[(source, target)](lats, lons)
    np.testing.assert_allclose(vec_lat, exp_lat, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vec_lon, exp_lon, rtol=0, atol=1e-12)


def test_convert_same_datum_does_not_alias_the_input():
    lats, lons = random_china_points(5)
    lat, _ = convert(lats, lons, "gcj02", "gcj02")
    lat[0] = 0.0
    assert lats[0] != 0.0


@pytest.mark.parametrize("source, target, bad", [("wgs", "gcj02", "wgs"), ("gcj02", "BD09", "BD09"),
                                                 ("epsg:4326", "bd09", "epsg:4326")])
def test_convert_rejects_unknown_datum_by_name(source, target, bad):
    with pytest.raises(ValueError, match=repr(bad)):
        convert(*SHANGHAI, source, target)


def test_crs_names():
    assert CRS_NAMES == ("wgs84", "gcj02", "bd09")


# (7) NaN propagation, with warnings escalated to errors.
@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_nan_propagates_without_warnings(function):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lat, lon = function(math.nan, math.nan)
        assert math.isnan(lat) and math.isnan(lon)
        lat, lon = function(math.nan, 116.4)
        assert math.isnan(lat)
        lats = np.array([np.nan, SHANGHAI[0], SUZHOU_WUZHONG[0]])
        lons = np.array([np.nan, SHANGHAI[1], np.nan])
        out_lat, out_lon = function(lats, lons)
        assert np.isnan(out_lat[0]) and np.isnan(out_lon[0])
        assert np.isnan(out_lon[2])
        assert (out_lat[1], out_lon[1]) == pytest.approx(function(*SHANGHAI), abs=1e-8)
        assert np.isfinite(out_lat[1]) and np.isfinite(out_lon[1])


def test_nan_does_not_stall_the_inverse_for_other_points():
    lats = np.array([np.nan, *random_china_points(100)[0]])
    lons = np.array([np.nan, *random_china_points(100)[1]])
    back_lat, back_lon = gcj02_to_wgs84(*wgs84_to_gcj02(lats, lons))
    assert haversine_m(back_lat[1:], back_lon[1:], lats[1:], lons[1:]).max() < 0.001


# Property: the iterative inverse is exact to centimetres anywhere in China.
@settings(max_examples=500, deadline=None)
@given(lat=st.floats(min_value=18.0, max_value=53.0), lon=st.floats(min_value=73.0, max_value=135.0))
def test_property_wgs84_gcj02_round_trip(lat, lon):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
    assert haversine_m(*back, lat, lon) < 0.05


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(min_value=18.0, max_value=53.0), lon=st.floats(min_value=73.0, max_value=135.0))
def test_property_wgs84_bd09_round_trip(lat, lon):
    back = bd09_to_wgs84(*wgs84_to_bd09(lat, lon))
    assert haversine_m(*back, lat, lon) < 0.05


def test_inverse_iteration_limits_are_as_documented():
    assert coords.INVERSE_TOLERANCE_DEG <= 1e-9
    assert coords.INVERSE_MAX_ITERATIONS <= 20
