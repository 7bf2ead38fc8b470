"""Outages on the screens: a clear degraded state that retries by itself, never a bare 500."""
from __future__ import annotations

import json

from app import create_app
from dashboard.settings import Settings
from tests.dash_support import callback_body, same_site_client

UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_the_api_answers_503_with_the_reason_when_the_database_is_away(redis_url, tmp_path):
    app = create_app(Settings(database_url=UNREACHABLE_DATABASE, redis_url=redis_url, var_dir=tmp_path, auth=False))
    response = same_site_client(app).get("/api/catalogue")
    assert response.status_code == 503
    assert response.get_json() == {"error": "The database is unavailable; retrying", "unavailable": "database"}
    assert response.headers["Retry-After"]


def test_a_page_says_redis_is_away_and_reloads_itself_instead_of_a_500(demo_engine, tmp_path):
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=UNREACHABLE_REDIS, var_dir=tmp_path, auth=True))
    client = same_site_client(app)
    client.set_cookie("gridops_session", "some-session")  # the gate looks the session up in Redis
    response = client.get("/review")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "实时数据服务（Redis）暂不可用，正在重试" in page and 'http-equiv="refresh"' in page
    assert "<script" not in page  # nothing inline: the Content-Security-Policy forbids it


def test_the_screen_shows_the_database_outage_and_tries_again(redis_url, tmp_path):
    app = create_app(Settings(database_url=UNREACHABLE_DATABASE, redis_url=redis_url, var_dir=tmp_path, auth=False))
    body = callback_body(app, "app-page.children", [{"id": "app-url", "property": "pathname", "value": "/review"}],
                         [{"id": "app-url", "property": "search", "value": ""}])
    response = same_site_client(app).post("/_dash-update-component", json=body)
    assert response.status_code == 200
    answer = json.dumps(response.get_json(), ensure_ascii=False)
    assert "数据库暂不可用，正在重试" in answer  # the notice over the page
    assert "正在自动重试" in answer and '"data-retrying": "1"' in answer and "app-retry" in answer


def test_any_callback_in_an_outage_leaves_the_screen_as_it_was_with_a_notice(redis_url, tmp_path):
    app = create_app(Settings(database_url=UNREACHABLE_DATABASE, redis_url=redis_url, var_dir=tmp_path, auth=False))
    body = callback_body(app, "home-tiles.children", [{"id": "home-refresh", "property": "n_intervals", "value": 3}],
                         [{"id": "home-state", "property": "data", "value": {"area": "310107", "lang": "zh"}}])
    response = same_site_client(app).post("/_dash-update-component", json=body)
    assert response.status_code in (200, 204)
    if response.status_code == 200:
        answer = response.get_json()
        assert "数据库暂不可用" in json.dumps(answer.get("sideUpdate", {}), ensure_ascii=False)
        assert "home-tiles" not in answer.get("response", {})
