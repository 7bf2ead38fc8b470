"""Who is nearest (就近调度): an open case's nearest online workers, from the live positions
through the real consumer and Redis's geo index, within the caller's scope (SQLite and PostgreSQL)."""
from __future__ import annotations

import math
from datetime import timedelta

import pytest
import redis

from app import create_app
from dashboard import nearest
from dashboard.context import current_context
from dashboard.settings import Settings
from data_feeds.reference import load_children, root_grid
from gridrules.access import Principal, Scope
from gridrules.clock import utc_now
from tests.feed_support import basic_grids, drain, gps_ping, make_ingest, publish_pings

EARTH_RADIUS_M = 6_371_008.8


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def north_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat + metres / EARTH_RADIUS_M * 180 / math.pi, lon


def ping_at(worker: str, when, point: tuple[float, float]) -> dict:
    return gps_ping(worker, when, *point, crs="gcj02")


@pytest.fixture
def district(feed_district, redis_url, domain_config):
    """Two towns' basic grids and a consumer that takes pings."""
    client = redis.Redis.from_url(redis_url)
    ingest = make_ingest(feed_district, client, domain_config)
    paths = {g.code: g.path for town in load_children(feed_district, root_grid(feed_district).code)
             for community in load_children(feed_district, town.code) for g in load_children(feed_district, community.code)}
    towns = [town for town in load_children(feed_district, root_grid(feed_district).code) if sum(p.startswith(town.path) for p in paths.values()) >= 3][:2]
    grids = basic_grids(feed_district)

    def ping(pings: list[dict]) -> None:
        publish_pings(client, pings)
        assert not drain(ingest).get("dead")

    yield {"towns": towns, "ping": ping, "grids": [[g for g in grids if paths.get(g["code"], "").startswith(t.path)] for t in towns]}
    client.close()


@pytest.fixture
def app(feed_district, redis_url, tmp_path):
    return create_app(Settings(database_url=feed_district.url.render_as_string(hide_password=False), redis_url=redis_url, var_dir=tmp_path, auth=False))


def test_the_nearest_online_workers_of_the_scope_nearest_first(app, district):
    home, away = district["grids"]
    here = home[0]
    lat, lon = here["lat"], here["lon"]  # the map's datum (GCJ-02), as cases and positions are stored
    now = utc_now()
    # here's own worker 150 m away, a neighbour's worker 40 m away, one 400 m away, one who
    # stood 20 m away but went silent 11 minutes ago, and the other town's worker at home
    near, own, farther, silent = home[1]["worker"], here["worker"], home[2]["worker"], away[1]["worker"]
    district["ping"]([
        ping_at(near, now - timedelta(seconds=30), north_of(lat, lon, 40)),
        ping_at(own, now - timedelta(seconds=20), north_of(lat, lon, 150)),
        ping_at(farther, now - timedelta(seconds=200), north_of(lat, lon, 400)),
        ping_at(silent, now - timedelta(minutes=11), north_of(lat, lon, 20)),
        ping_at(away[0]["worker"], now - timedelta(seconds=10), (away[0]["lat"], away[0]["lon"])),
    ])
    case = {"lat": lat, "lon": lon, "grid": here["code"]}
    operator = Principal("duty", "operator", Scope())
    leader = Principal("leader", "leader", Scope(area_path=district["towns"][0].path, area_code=district["towns"][0].code))
    department = Principal("swj", "dept", Scope(dept="SWJ"))
    with app.server.test_request_context():
        ctx = current_context()
        seen = nearest.nearest_workers(ctx, operator, case, utc_now(), "zh")
        town = nearest.nearest_workers(ctx, leader, case, utc_now(), "zh", count=10)
        nobody = nearest.nearest_workers(ctx, department, case, utc_now(), "zh")
    assert [w["id"] for w in seen][:3] == [near, own, farther], seen
    assert silent not in {w["id"] for w in seen}, "a worker silent past the offline limit is not near anybody"
    assert seen[0]["metres"] == pytest.approx(great_circle_m(lat, lon, *north_of(lat, lon, 40)), abs=1)
    assert seen[2]["metres"] == pytest.approx(400, abs=2)
    assert 30 <= seen[0]["age_s"] <= 60 and seen[0]["name"]
    assert [w["own_grid"] for w in seen[:3]] == [False, True, False]
    assert all(w["phone"] is None or "*" in w["phone"] for w in seen), "staff phones masked for a role without personal data"
    assert away[0]["worker"] not in {w["id"] for w in town}, "a town leader sees only the town's workers"
    assert nobody == [], "departments see no patrol"


def test_a_case_without_a_place_has_nobody_near(app, district):
    with app.server.test_request_context():
        assert nearest.nearest_workers(current_context(), Principal("duty", "operator", Scope()), {"lat": None, "lon": None, "grid": "x"}, utc_now(), "zh") == []
