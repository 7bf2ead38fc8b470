"""The HTTP interfaces (README, "HTTP interfaces"), through the real app with a real Redis and database."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app import create_app
from dashboard import area_reports
from dashboard.settings import Settings
from data_feeds.queries import CaseFilter
from data_feeds.reference import load_children, root_grid
from gridrules.access import EVERYTHING
from gridrules.clock import utc_now
from gridrules.indicators import API_KEYS, Window
from tests.support import DEMO_NOW


@pytest.fixture
def client(demo_engine, redis_url, tmp_path):
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=False))
    return app.server.test_client()


def test_healthz_reports_database_and_redis(client, redis_url):
    import redis as redis_lib

    from data_feeds.ingest import ConsumerHealth
    from data_feeds.keys import Keys

    ConsumerHealth().write(redis_lib.Redis.from_url(redis_url), Keys("gridops:"), "alpha")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"]["ok"] and body["redis"]["ok"] and body["feed"]["state"] == "ok"
    assert [c["name"] for c in body["consumers"]] == ["alpha"]


def test_healthz_is_degraded_but_serving_without_a_consumer(client):
    """No consumer alive: nothing reaches the screens. Say so, but keep the dashboard in rotation."""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["serving"] and body["feed"] == {"ok": False, "state": "no_consumer", "consumers_alive": 0}


def test_healthz_and_metrics_say_when_a_consumer_waits_out_an_outage(client, redis_url):
    import redis as redis_lib

    from data_feeds.ingest import ConsumerHealth
    from data_feeds.keys import Keys

    health = ConsumerHealth()
    health.trouble("database", RuntimeError("connection refused"))
    health.write(redis_lib.Redis.from_url(redis_url), Keys("gridops:"), "alpha")
    body = client.get("/healthz").get_json()
    assert body["status"] == "degraded" and body["feed"]["state"] == "degraded"
    assert body["consumers"][0]["state"] == "degraded" and body["consumers"][0]["reason"] == "database"
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gridops_feed_consumer_up{consumer="alpha",state="degraded",reason="database"} 0' in text
    assert 'gridops_feed_ok{state="degraded"} 0' in text


def test_healthz_says_when_redis_is_down(demo_engine, tmp_path):
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url="redis://127.0.0.1:1/0", var_dir=tmp_path, auth=False))
    response = app.server.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["redis"]["ok"] is False and body["database"]["ok"] is True


def test_indicators_default_to_today_for_the_district(client, demo_engine):
    body = client.get("/api/indicators").get_json()
    assert body["area"] == root_grid(demo_engine).code
    for key in API_KEYS:
        assert key in body, key
    assert body["start"].startswith(utc_now().astimezone(Settings().tz).date().isoformat())


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_indicators_answer_for_any_grid_code(client, demo_engine, domain_config, level):
    area = root_grid(demo_engine)
    for _ in range(level - 1):
        area = load_children(demo_engine, area.code)[0]
    start, end = DEMO_NOW - timedelta(days=3), DEMO_NOW
    response = client.get("/api/indicators", query_string={"area": area.code, "start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 200
    body = response.get_json()
    expected = area_reports.area_indicators(demo_engine, domain_config, area, Window.until_now(start, end, utc_now()), CaseFilter(), EVERYTHING).api()
    assert {key: body[key] for key in API_KEYS} == pytest.approx(expected)
    assert all(value is None or 0 <= value <= 1 for key, value in body.items() if key.endswith("_rate"))


def test_indicator_filters_and_dates(client):
    response = client.get("/api/indicators", query_string={"start": "2026-11-20", "end": "2026-11-26", "dept": "CGJ", "grade": "B", "category": "E05", "source": "patrol"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["start"] == "2026-11-20T00:00:00+08:00" and body["filters"]["dept"] == "CGJ"


def test_an_unknown_area_is_a_bad_request(client):
    response = client.get("/api/indicators", query_string={"area": "nope"})
    assert response.status_code == 400 and "unknown area code 'nope'" in response.get_json()["error"]


@pytest.mark.parametrize("query,message", [
    ({"start": "yesterday"}, "is not an ISO 8601"),
    ({"start": "2026-11-20", "end": "2026-11-19"}, "end must be after start"),
    ({"grade": "Z"}, "grade 'Z'"),
    ({"dept": "XX"}, "unknown department 'XX'"),
    ({"category": "Q99"}, "unknown category 'Q99'"),
    ({"source": "pigeon"}, "source 'pigeon'"),
])
def test_bad_parameters_get_400_with_the_reason(client, query, message):
    response = client.get("/api/indicators", query_string=query)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_catalogue_lists_every_class_with_its_limits(client):
    classes = client.get("/api/catalogue").get_json()
    assert len(classes) == 325
    detail = next(c for c in classes if c["level"] == 3)
    assert set(detail) >= {"code", "name", "parent", "level", "dept", "grade", "register_limit", "dispatch_limit", "handle_limit", "verify_limit", "calendar"}
    assert detail["dept"] and detail["grade"] in "ABC"


def test_grids_lists_children_with_centroids(client, demo_engine):
    roots = client.get("/api/grids").get_json()
    assert [g["code"] for g in roots] == ["320506"]
    towns = client.get("/api/grids", query_string={"parent": "320506"}).get_json()
    assert len(towns) == 12
    town = towns[0]
    assert set(town) == {"code", "name", "level", "parent", "centroid"} and town["level"] == 2 and town["parent"] == "320506"
    lat, lon = town["centroid"]
    assert 30.9 < lat < 31.5 and 119.9 < lon < 120.9
    assert client.get("/api/grids", query_string={"parent": "nope"}).status_code == 404


def test_metrics_are_prometheus_text(client):
    client.get("/api/indicators")
    text = client.get("/metrics").get_data(as_text=True)
    assert "gridops_database_up 1" in text and "gridops_redis_up 1" in text
    assert 'gridops_request_seconds_count{kind="api"}' in text
    count = next(line for line in text.splitlines() if line.startswith('gridops_request_seconds_count{kind="api"}'))
    assert int(count.split()[-1]) >= 1
