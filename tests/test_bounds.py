"""Every request is bounded: parameters (limits, dates, window length, the week), request
bodies and the time any query may take. Out of bounds answers 400 (413 for a body) with a
clear message on the API, and a clear notice on the screens, before any work is done; a
query past the statement timeout answers 503 (API) or a notice (screens).

Each check is about behaviour: the answer and its message, never how long it took.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import text

from app import create_app
from dashboard import api
from dashboard.settings import Settings
from data_feeds.db import QueryTimeout, make_engine
from tests.dash_support import callback_body, same_site_client

SLOW_SQLITE = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) SELECT count(*) FROM n"
SLOW_POSTGRESQL = "SELECT pg_sleep(60)"


def slow_statement(engine) -> str:
    """A query that takes a minute or more: pg_sleep on PostgreSQL, a recursive count on SQLite."""
    return SLOW_POSTGRESQL if engine.dialect.name == "postgresql" else SLOW_SQLITE


def app_for(demo_engine, redis_url, tmp_path, **settings):
    url = demo_engine.url.render_as_string(hide_password=False)
    return create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=False, **settings))


@pytest.fixture
def app(demo_engine, redis_url, tmp_path):
    return app_for(demo_engine, redis_url, tmp_path)


@pytest.fixture
def client(app):
    return same_site_client(app)


# ---------------------------------------------------------------- API parameters


@pytest.mark.parametrize("limit", ["-1", "0", "1001", "many"])
def test_a_case_limit_outside_1_to_1000_is_refused(client, limit):
    response = client.get("/api/cases", query_string={"limit": limit})
    assert response.status_code == 400
    assert "limit must be a whole number from 1 to 1000" in response.get_json()["error"]


def test_a_case_limit_within_bounds_answers(client):
    assert client.get("/api/cases", query_string={"limit": "1000"}).status_code == 200
    assert len(client.get("/api/cases", query_string={"limit": "1", "start": "2026-11-20", "end": "2026-11-26"}).get_json()) == 1


@pytest.mark.parametrize("path", ["/api/indicators", "/api/cases"])
@pytest.mark.parametrize("query,message", [
    ({"start": "2001-01-01", "end": "2026-11-26"}, "at most 366 days"),
    ({"start": "1900-01-01", "end": "2026-11-26"}, "before 2000-01-01"),
    ({"start": "0001-01-01"}, "before 2000-01-01"),
    ({"start": "0001-01-01T00:00:00+08:00", "end": "0001-01-02"}, "before 2000-01-01"),
    ({"end": "9999-12-31"}, "more than a year ahead"),
    ({"start": "9999-12-31"}, "more than a year ahead"),
    ({"start": "9999-12-31T23:59:59-12:00"}, "more than a year ahead"),
])
def test_dates_and_windows_out_of_bounds_are_refused(client, path, query, message):
    response = client.get(path, query_string=query)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert message in response.get_json()["error"]


def test_a_window_of_a_year_is_allowed_and_the_maximum_is_configurable(demo_engine, redis_url, tmp_path, client):
    assert client.get("/api/indicators", query_string={"start": "2025-11-26", "end": "2026-11-26"}).status_code == 200
    narrow = same_site_client(app_for(demo_engine, redis_url, tmp_path, max_window_days=31))
    response = narrow.get("/api/indicators", query_string={"start": "2026-10-01", "end": "2026-11-26"})
    assert response.status_code == 400 and "at most 31 days" in response.get_json()["error"]


def test_an_area_code_that_cannot_be_one_is_not_looked_up(client):
    response = client.get("/api/indicators", query_string={"area": "3" * 5000})
    assert response.status_code == 400 and "unknown area code" in response.get_json()["error"]
    assert len(response.get_json()["error"]) < 200  # the answer does not echo the whole parameter


# ---------------------------------------------------------------- request bodies


BIG_BODY = b'{"output": "' + b"x" * (3 * 1024 * 1024) + b'"}'


def test_a_big_body_to_a_dash_callback_is_refused_with_413(client):
    response = client.post("/_dash-update-component", data=BIG_BODY, content_type="application/json")
    assert response.status_code == 413
    assert "request body is larger than 2 MiB" in response.get_json()["error"]


def test_a_big_body_to_the_api_is_refused_with_413(client):
    response = client.post("/api/cases/ANY/contact", data=BIG_BODY, content_type="application/json")
    assert response.status_code == 413
    assert "request body is larger than 2 MiB" in response.get_json()["error"]


def test_a_small_callback_body_still_reaches_dash(client):
    response = client.post("/_dash-update-component", data=b"{}", content_type="application/json")
    assert response.status_code != 413


# ---------------------------------------------------------------- statement timeout


def test_a_query_past_the_statement_timeout_is_stopped_and_the_engine_goes_on(database_url):
    engine = make_engine(database_url, statement_timeout_s=0.3)
    try:
        with pytest.raises(QueryTimeout, match="longer than 0.3 s"), engine.connect() as connection:
            connection.execute(text(slow_statement(engine))).all()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_the_timeout_runs_per_statement_not_per_connection(database_url):
    """A transaction longer than the timeout, made of quick statements, commits."""
    engine = make_engine(database_url, statement_timeout_s=0.2)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS bounds_probe (n integer)"))
            time.sleep(0.3)  # past the timeout since the last statement began (not a wait for a condition)
            connection.execute(text("INSERT INTO bounds_probe VALUES (1)"))
            time.sleep(0.3)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM bounds_probe")).scalar() == 1
            connection.execute(text("DROP TABLE bounds_probe"))
            connection.commit()
    finally:
        engine.dispose()


def test_postgresql_sessions_carry_the_timeout_and_writers_none(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no session setting to read")
    dashboard = make_engine(database_url, statement_timeout_s=15)
    writer = make_engine(database_url, writer=True)
    try:
        with dashboard.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "15s"
            assert connection.execute(text("SHOW search_path")).scalar().startswith("t_")  # the URL's own options are kept
        with writer.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"
    finally:
        dashboard.dispose()
        writer.dispose()


def test_the_dashboard_engine_has_the_configured_timeout(app, demo_engine):
    if demo_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no session setting to read (the slow queries below cover it)")
    with app.server.extensions["gridops"].engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "15s"


def test_a_slow_api_query_answers_503_with_the_reason(demo_engine, redis_url, tmp_path, monkeypatch):
    app = app_for(demo_engine, redis_url, tmp_path, statement_timeout_s=0.3)
    engine = app.server.extensions["gridops"].engine

    def slow_list_cases(*_args, **_kwargs):
        with engine.connect() as connection:
            return connection.execute(text(slow_statement(engine))).all()

    monkeypatch.setattr(api.queries, "list_cases", slow_list_cases)
    response = same_site_client(app).get("/api/cases")
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("the query took longer than 0.3 s")


def test_when_every_place_is_at_work_a_request_is_refused_at_once_with_503_and_retry_after(demo_engine, redis_url, tmp_path, monkeypatch):
    """One place, taken by a query that runs until its timeout: the next request waits its half
    second and is refused, saying so; health still answers; once the place is free, all is well."""
    app = app_for(demo_engine, redis_url, tmp_path, statement_timeout_s=4.0, busy_places=1, busy_wait_s=0.5)
    engine = app.server.extensions["gridops"].engine
    working = threading.Event()

    def slow_list_cases(*_args, **_kwargs):
        working.set()
        with engine.connect() as connection:
            return connection.execute(text(slow_statement(engine))).all()

    monkeypatch.setattr(api.queries, "list_cases", slow_list_cases)
    busy = threading.Thread(target=lambda: same_site_client(app).get("/api/cases"), daemon=True)
    busy.start()
    assert working.wait(30)
    refused = same_site_client(app).get("/api/indicators")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.get_json()["busy"] and "the server is busy" in refused.get_json()["error"]
    assert not (same_site_client(app).get("/healthz").get_json() or {}).get("busy"), "health answers however busy the server is"
    busy.join(60)
    assert not busy.is_alive()
    assert same_site_client(app).get("/api/indicators").status_code == 200


# ---------------------------------------------------------------- the screens


def render(app, client, path: str, search: str):
    """The page the router renders for ``path?search`` (what a browser opening the URL gets)."""
    body = callback_body(app, "app-page.children", [{"id": "app-url", "property": "pathname", "value": path}],
                         [{"id": "app-url", "property": "search", "value": search}])
    return client.post("/_dash-update-component", json=body)


def notice_of(response) -> str:
    """The text of the screen's notice in a callback answer ('' when there is none)."""
    side = (response.get_json() or {}).get("sideUpdate", {}).get("app-notice", {})
    return json.dumps(side.get("children"), ensure_ascii=False) if side.get("children") else ""


@pytest.mark.parametrize("search,message", [
    ("?window=custom&start=1900-01-01&end=2026-11-26", "1900-01-01 早于 2000-01-01"),
    ("?window=custom&start=2001-01-01&end=2026-11-26", "所选时段超过 366 天"),
    ("?window=custom&start=0001-01-01&end=0001-01-07", "早于 2000-01-01"),
    ("?window=custom&start=9999-12-01&end=9999-12-31", "一年以后"),
    ("?window=custom&start=2026-11-01&end=2026-11-07&lang=en", None),
])
def test_the_review_shows_a_notice_for_a_window_out_of_bounds(app, client, search, message):
    response = render(app, client, "/review", search)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    if message is None:
        assert notice_of(response) == ""
    else:
        assert message in notice_of(response)
        assert "review-tiles" in response.get_data(as_text=True)  # the default selection is shown instead


def test_the_review_follows_a_url_out_of_bounds_with_a_notice_and_keeps_its_panels(app, client):
    client.get("/")
    body = callback_body(app, "review-breadcrumb.children",
                         [{"id": "app-url", "property": "search", "value": "?window=custom&start=1990-01-01&end=2026-11-26&lang=en"}],
                         [{"id": "app-url", "property": "pathname", "value": "/review"}, {"id": "review-state", "property": "data", "value": {"lang": "en"}}])
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "before 2000-01-01" in notice_of(response)
    assert not response.get_json().get("response")  # every panel keeps what it shows


@pytest.mark.parametrize("week", ["0001-01-01", "1999-12-27", "9999-12-31", "2999-01-01"])
def test_the_weekly_screen_shows_a_notice_for_a_week_out_of_bounds(app, client, week):
    response = render(app, client, "/weekly", f"?week={week}")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert notice_of(response)
    assert "weekly-body" in response.get_data(as_text=True)  # this week is shown instead


def test_a_query_past_the_timeout_on_a_screen_shows_a_notice(demo_engine, redis_url, tmp_path, monkeypatch):
    from dashboard import review_screen

    app = app_for(demo_engine, redis_url, tmp_path, statement_timeout_s=0.3)
    engine = app.server.extensions["gridops"].engine

    def slow_build(*_args, **_kwargs):
        with engine.connect() as connection:
            connection.execute(text(slow_statement(engine))).all()

    monkeypatch.setattr(review_screen, "build", slow_build)
    client = same_site_client(app)
    response = render(app, client, "/review", "?window=7d")
    assert response.status_code == 200
    assert "查询超时（超过 0.3 秒）" in notice_of(response)
    assert "page-unavailable" in response.get_data(as_text=True)

    # any other callback: the same notice, in both languages, and every output kept
    body = callback_body(app, "review-breadcrumb.children", [{"id": "app-url", "property": "search", "value": "?window=30d"}],
                         [{"id": "app-url", "property": "pathname", "value": "/review"}, {"id": "review-state", "property": "data", "value": {"lang": "en"}}])
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "查询超时" in notice_of(response) and "the query took longer than 0.3 s" in notice_of(response)
    assert not response.get_json().get("response")


def test_the_audit_search_refuses_dates_out_of_bounds_with_a_notice(app, client):
    client.get("/admin/audit")
    body = callback_body(
        app, "admin-audit-results.children",
        [{"id": "admin-audit-search", "property": "n_clicks", "value": 1}, {"id": "admin-audit-text", "property": "value", "value": ""}],
        [{"id": "admin-audit-action", "property": "value", "value": None}, {"id": "admin-audit-start", "property": "start_date", "value": "0001-01-01"},
         {"id": "admin-audit-start", "property": "end_date", "value": "9999-12-31"}],
    )
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "早于 2000-01-01" in notice_of(response)
