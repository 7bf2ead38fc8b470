"""Who may see what: sign-in, roles, scope in the data layer, masking, audit, throttling."""
from __future__ import annotations

import base64
import csv
import http.client
import io
import json
import logging
import subprocess
import sys
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import openpyxl
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from werkzeug.serving import make_server

from app import create_app
from dashboard import auth, sessions
from dashboard.settings import DEFAULT_CONFIG_PATH, Settings
from data_feeds import accounts, schema
from data_feeds.keys import Keys
from data_feeds.reference import load_children, root_grid
from tests.dash_support import callback_body
from tests.support import DEMO_NOW, PROJECT

PASSWORD = "correct-horse-7"
PAGES = ("/", "/admin", "/admin/audit", "/wall")


@pytest.fixture(scope="module")
def people(demo_engine):
    """One user of each role; the leader holds the first town, the department user CGJ."""
    district = root_grid(demo_engine)
    towns = load_children(demo_engine, district.code)
    made = {}
    for name, role, scope, dept in (
        ("boss", "admin", None, None), ("duty", "operator", None, None), ("leader", "leader", towns[0].code, None),
        ("cgj", "dept", None, "CGJ"), ("screen", "wall", None, None),
    ):
        if accounts.get_user(demo_engine, name) is None:
            accounts.create_user(demo_engine, name, role, None if role == "wall" else PASSWORD, scope, dept, actor="test")
        made[name] = name
    made["wall_token"] = accounts.create_token(demo_engine, "screen", actor="test")
    made["api_token"] = accounts.create_token(demo_engine, "leader", actor="test")
    made["home_town"], made["other_town"] = towns[0], towns[1]
    return made


@pytest.fixture
def app(demo_engine, redis_url, tmp_path, people):
    url = demo_engine.url.render_as_string(hide_password=False)
    return create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True))


SITE = "http://localhost"  # the test client's own origin
EVIL = "http://evil.example"


def browser(app, address: str = "127.0.0.1"):
    """A test client that sends ``Origin`` with every POST, as a browser does on a page of this site."""
    client = app.server.test_client()
    client.environ_base.update(HTTP_ORIGIN=SITE, REMOTE_ADDR=address)
    return client


def signed_in(app, name: str):
    client = browser(app)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def kiosk_client(app, token):
    client = app.server.test_client()
    assert client.get(f"/kiosk?token={token}&kiosk=1").status_code == 302
    return client


def audit_entries(engine, action: str) -> list[dict]:
    return accounts.search_audit(engine, action=action)


WINDOW = {"start": (DEMO_NOW - timedelta(days=4)).isoformat(), "end": (DEMO_NOW + timedelta(hours=1)).isoformat()}


# ---------------------------------------------------------------- sign-in


def test_without_sign_in_pages_redirect_and_api_says_401(app):
    client = app.server.test_client()
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    for path in ("/api/indicators", "/api/cases", "/api/grids", "/api/catalogue", "/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401, path
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/healthz").status_code == 200 and client.get("/login").status_code == 200


def test_login_page_speaks_both_languages(app):
    client = app.server.test_client()
    assert "登录" in client.get("/login").get_data(as_text=True)
    assert "Sign in" in client.get("/login?lang=en").get_data(as_text=True)


def test_session_cookie_flags(demo_engine, redis_url, tmp_path, people):
    url = demo_engine.url.render_as_string(hide_password=False)
    secure = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, host="0.0.0.0"))
    response = browser(secure).post("/login", data={"name": "duty", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_wrong_password_and_unknown_user_are_refused_and_audited(app, demo_engine):
    client = browser(app)
    assert client.post("/login", data={"name": "duty", "password": "wrong-password-1"}).status_code == 401
    assert client.post("/login", data={"name": "nobody", "password": "whatever-123"}).status_code == 401
    failures = {entry["actor"] for entry in audit_entries(demo_engine, "login.failure")}
    assert {"duty", "nobody"} <= failures


def test_login_and_logout_are_audited_and_logout_ends_the_session(app, demo_engine):
    client = signed_in(app, "duty")
    assert client.get("/api/catalogue").status_code == 200
    client.post("/logout")
    assert client.get("/api/catalogue").status_code == 401
    assert any(entry["actor"] == "duty" for entry in audit_entries(demo_engine, "login.success"))
    assert any(entry["actor"] == "duty" for entry in audit_entries(demo_engine, "logout"))


def test_next_is_only_ever_a_local_path(app):
    client = browser(app)
    response = client.post("/login", data={"name": "duty", "password": PASSWORD, "next": "https://evil.example/steal"})
    assert response.headers["Location"] == "/"


# What browsers turn into another site (tabs and line breaks dropped, "\\" read as "/", "scheme:" absolute),
# what breaks a header, and the same hidden behind percent-encoding.
FOREIGN_NEXT = (
    "//evil.example", "///evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "\t//evil.example",
    " //evil.example", "/\\evil.example", "\\\\evil.example", "\\/evil.example", "/\u2028/evil.example", "/\x00/evil.example",
    "\n", "/\r\nSet-Cookie: a=b", "%0d%0a", "/%0d%0aSet-Cookie:%20a=b", "/%09/evil.example", "/%2F%2Fevil.example",
    "/%2f/evil.example", "/%5Cevil.example", "/%252F%252Fevil.example", "https:evil.example", "http:/evil.example",
    "https://evil.example", "HTTPS://evil.example", "javascript:alert(1)", " javascript:alert(1)", "data:text/html,x",
    "evil.example", "review", "", "/\u3000/evil.example", "/\u200b/evil.example",
)


@pytest.mark.parametrize("target", FOREIGN_NEXT)
def test_next_never_leaves_the_site(app, target):
    response = browser(app).post("/login", data={"name": "duty", "password": PASSWORD, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ("/review?area=320506&window=7d", "/weekly?week=2026-11-23", "/wall?kiosk=1&rotate=30", "/admin/audit", "/"))
def test_next_keeps_local_paths(app, target):
    response = browser(app).post("/login", data={"name": "duty", "password": PASSWORD, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == target


def test_sessions_time_out_when_idle(demo_engine, redis_url, tmp_path, people):
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, session_idle_minutes=1 / 60))
    client = signed_in(app, "duty")
    assert client.get("/api/catalogue").status_code == 200
    time.sleep(2.2)
    assert client.get("/api/catalogue").status_code == 401


ATTACKER, ADMIN_DESK = "203.0.113.9", "198.51.100.7"


def test_brute_force_logins_are_throttled_per_name_and_address(app, monkeypatch):
    monkeypatch.setattr(auth, "LOGIN_DELAY_FIRST_S", 0.01)  # the per-name delay has its own test
    attacker = browser(app, ATTACKER)
    codes = [attacker.post("/login", data={"name": "boss", "password": f"guess-{n}-abc"}).status_code for n in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # This address is held back for this name, even with the right password...
    assert attacker.post("/login", data={"name": "boss", "password": PASSWORD}).status_code == 429
    # ...not for another name...
    assert attacker.post("/login", data={"name": "duty", "password": PASSWORD}).status_code == 302
    # ...and the attacker cannot lock the real admin out: from their own desk they sign in.
    assert browser(app, ADMIN_DESK).post("/login", data={"name": "boss", "password": PASSWORD}).status_code == 302


def test_failures_from_many_addresses_slow_a_name_down_but_never_lock_it(app, monkeypatch):
    monkeypatch.setattr(auth, "LOGIN_DELAY_FIRST_S", 0.05)
    for n in range(auth.LOGIN_FREE_FAILURES + 2):
        assert browser(app, f"203.0.113.{n + 1}").post("/login", data={"name": "Boss ", "password": "guess-guess-1"}).status_code == 401
    started = time.monotonic()
    assert browser(app, ADMIN_DESK).post("/login", data={"name": "boss", "password": PASSWORD}).status_code == 302
    assert time.monotonic() - started >= auth.login_delay_s(auth.LOGIN_FREE_FAILURES + 2) == 0.05 * 4


def test_behind_a_trusted_proxy_each_client_has_its_own_address(demo_engine, redis_url, tmp_path, people, monkeypatch):
    monkeypatch.setattr(auth, "LOGIN_DELAY_FIRST_S", 0.01)
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, trusted_proxies=1))
    proxy = browser(app, "10.0.0.2")
    attempt = lambda client_address, password: proxy.post(  # noqa: E731
        "/login", data={"name": "boss", "password": password}, headers={"X-Forwarded-For": client_address}).status_code
    assert [attempt(ATTACKER, "guess-guess-1") for _ in range(6)] == [401] * 5 + [429]
    assert attempt(ADMIN_DESK, PASSWORD) == 302
    entry = next(entry for entry in audit_entries(demo_engine, "login.success") if entry["actor"] == "boss")
    assert entry["remote_addr"] == ADMIN_DESK


def test_the_sign_in_delay_grows_to_a_cap():
    delays = [auth.login_delay_s(failures) for failures in range(auth.LOGIN_FREE_FAILURES + 12)]
    assert delays[:auth.LOGIN_FREE_FAILURES] == [0] * auth.LOGIN_FREE_FAILURES
    assert delays[auth.LOGIN_FREE_FAILURES] == auth.LOGIN_DELAY_FIRST_S and delays == sorted(delays)
    assert delays[-1] == auth.LOGIN_DELAY_MAX_S <= 10


# ---------------------------------------------------------------- roles × screens and endpoints

EXPECTED_PAGES = {
    "boss": {"/": 200, "/admin": 200, "/admin/audit": 200, "/wall": 200},
    "duty": {"/": 200, "/admin": 403, "/admin/audit": 403, "/wall": 200},
    "leader": {"/": 200, "/admin": 403, "/admin/audit": 403, "/wall": 200},
    "cgj": {"/": 200, "/admin": 403, "/admin/audit": 403, "/wall": 403},
}


@pytest.mark.parametrize("name", list(EXPECTED_PAGES))
def test_each_role_reaches_exactly_its_screens(app, name):
    client = signed_in(app, name)
    for page, status in EXPECTED_PAGES[name].items():
        assert client.get(page).status_code == status, (name, page)
    for path in ("/api/indicators", "/api/catalogue", "/api/grids", "/api/cases"):
        assert client.get(path).status_code == 200, (name, path)


def test_the_wall_token_opens_the_wall_and_nothing_else(app, people):
    client = kiosk_client(app, people["wall_token"])
    assert client.get("/wall").status_code == 200
    for page in ("/", "/admin", "/admin/audit"):
        assert client.get(page).status_code == 403
    for path in ("/api/indicators", "/api/cases", "/api/workers"):
        assert client.get(path).status_code == 403


def test_a_revoked_wall_token_ends_the_wall_session(app, demo_engine, monkeypatch):
    token = accounts.create_token(demo_engine, "screen", actor="test")
    client = kiosk_client(app, token)
    assert client.get("/wall").status_code == 200
    token_id = max(t["id"] for t in accounts.list_tokens(demo_engine) if t["name"] == "screen")
    accounts.revoke_token(demo_engine, token_id, actor="test")
    monkeypatch.setattr(auth, "TOKEN_RECHECK_S", 0)
    assert client.get("/wall").status_code == 302
    assert app.server.test_client().get(f"/kiosk?token={token}").status_code == 401


def test_api_tokens_act_as_their_user(app, people):
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {people['api_token']}"}
    body = client.get("/api/indicators", headers=headers).get_json()
    assert body["area"] == people["home_town"].code
    assert client.get("/api/indicators", headers={"Authorization": "Bearer gro_nonsense"}).status_code == 401


# ---------------------------------------------------------------- scope in the data layer


def test_a_leader_sees_only_their_town(app, people, demo_engine):
    client = signed_in(app, "leader")
    home, other = people["home_town"], people["other_town"]
    assert client.get("/api/indicators").get_json()["area"] == home.code
    for path in ("/api/indicators", "/api/cases", "/api/workers"):
        response = client.get(path, query_string={"area": other.code, **WINDOW})
        assert response.status_code == 403 and "outside your scope" in response.get_json()["error"], path
    assert client.get("/api/indicators", query_string={"area": root_grid(demo_engine).code}).status_code == 403
    cases = client.get("/api/cases", query_string={**WINDOW, "limit": 1000}).get_json()
    assert cases and all(case["grid"].startswith(home.code[:9]) for case in cases)
    workers = client.get("/api/workers").get_json()
    assert workers and all(worker["grid"].startswith(home.code[:9]) for worker in workers)
    children = client.get("/api/grids", query_string={"parent": root_grid(demo_engine).code}).get_json()
    assert [child["code"] for child in children] == [home.code]


def test_a_case_of_another_town_is_not_found_for_a_leader(app, people, demo_engine):
    other = people["other_town"]
    with demo_engine.connect() as connection:
        foreign = connection.execute(
            select(schema.cases.c.id).select_from(schema.cases.join(schema.grids, schema.grids.c.code == schema.cases.c.grid))
            .where(schema.grids.c.path.like(f"{other.path}%")).limit(1)
        ).scalar()
    client = signed_in(app, "leader")
    assert client.get(f"/api/cases/{foreign}").status_code == 404
    assert signed_in(app, "duty").get(f"/api/cases/{foreign}").status_code == 200


def _a_case_of(demo_engine, town) -> str:
    with demo_engine.connect() as connection:
        return connection.execute(
            select(schema.cases.c.id).select_from(schema.cases.join(schema.grids, schema.grids.c.code == schema.cases.c.grid))
            .where(schema.grids.c.path.like(f"{town.path}%")).order_by(schema.cases.c.id).limit(1)
        ).scalar_one()


def test_a_town_leader_can_neither_find_nor_open_a_case_of_another_town(app, people, demo_engine):
    """The review's search, its case panel (forged through the URL callback) and the page with
    ``?case=``: a case of another town is not there, and its opening is not recorded."""
    foreign, own = _a_case_of(demo_engine, people["other_town"]), _a_case_of(demo_engine, people["home_town"])
    client = signed_in(app, "leader")
    state = {"id": "review-state", "property": "data", "value": {"lang": "zh"}}

    def search(text: str) -> str:
        body = callback_body(app, "review-search-hits.children", [{"id": "review-search", "property": "value", "value": text}], [state])
        return client.post("/_dash-update-component", json=body).get_data(as_text=True)

    def show(case_id: str) -> str:
        body = callback_body(app, "review-timeline.children", [{"id": "app-url", "property": "search", "value": f"?case={case_id}"}],
                             [{"id": "app-url", "property": "pathname", "value": "/review"}, {"id": "review-case-shown", "property": "data", "value": None}, state])
        return client.post("/_dash-update-component", json=body).get_data(as_text=True)

    def page(case_id: str) -> str:
        body = callback_body(app, "app-page.children", [{"id": "app-url", "property": "pathname", "value": "/review"},
                                                        {"id": "app-url", "property": "search", "value": f"?case={case_id}"}], [])
        return client.post("/_dash-update-component", json=body).get_data(as_text=True)

    assert foreign not in search(foreign) and own in search(own)
    assert foreign not in show(foreign) and "case-panel open" in show(own)
    assert "case-panel open" not in page(foreign) and "case-panel open" in page(own)  # (the language switch keeps the URL as typed)
    with demo_engine.connect() as connection:
        viewed = set(connection.execute(select(schema.audit_log.c.target).where(schema.audit_log.c.action == "case.view", schema.audit_log.c.actor == "leader")).scalars())
    assert foreign not in viewed and own in viewed


def test_a_phone_number_finds_a_case_only_for_a_role_that_may_unmask_and_is_audited(app, demo_engine):
    case_id = _case_with_contact(demo_engine, "13800003333")
    state = {"id": "review-state", "property": "data", "value": {"lang": "zh"}}
    body = callback_body(app, "review-search-hits.children", [{"id": "review-search", "property": "value", "value": "13800003333"}], [state])
    assert case_id not in signed_in(app, "leader").post("/_dash-update-component", json=body).get_data(as_text=True)
    assert case_id in signed_in(app, "duty").post("/_dash-update-component", json=body).get_data(as_text=True)
    with demo_engine.connect() as connection:
        searches = connection.execute(select(schema.audit_log.c.actor, schema.audit_log.c.detail).where(schema.audit_log.c.action == "case.search")).all()
    assert [(actor, json.loads(detail)["text"]) for actor, detail in searches] == [("duty", "13800003333")]


def test_a_department_user_sees_only_its_cases_and_no_patrol(app):
    client = signed_in(app, "cgj")
    cases = client.get("/api/cases", query_string={**WINDOW, "limit": 1000}).get_json()
    assert cases and {case["dept"] for case in cases} == {"CGJ"}
    assert client.get("/api/workers").get_json() == []
    everything = signed_in(app, "duty").get("/api/indicators", query_string=WINDOW).get_json()
    mine = client.get("/api/indicators", query_string=WINDOW).get_json()
    assert 0 < mine["reported"] < everything["reported"] and mine["patrol_hours"] == 0


def _undispatched_cgj_case(engine) -> str:
    """A case of a CGJ category reported in the window and never dispatched (one made so if none is)."""
    c = schema.cases.c
    with engine.begin() as connection:
        case_id = connection.execute(select(c.id).where(c.dept == "CGJ", c.dispatched_at.is_(None), c.reported_at >= (DEMO_NOW - timedelta(days=4)).replace(tzinfo=None))
                                     .order_by(c.id).limit(1)).scalar()
        if case_id is None:
            case_id = connection.execute(select(c.id).where(c.dept == "CGJ").order_by(c.id.desc()).limit(1)).scalar()
            connection.execute(schema.cases.update().where(c.id == case_id).values(dispatched_at=None))
    return case_id


def test_a_department_sees_the_cases_dispatched_to_it_not_those_waiting_for_dispatch(app, demo_engine):
    """README: departments see the cases dispatched to them. A case of one of its categories that
    is still waiting to be registered or dispatched is the command centre's, not yet theirs."""
    waiting = _undispatched_cgj_case(demo_engine)
    client = signed_in(app, "cgj")
    listed = client.get("/api/cases", query_string={**WINDOW, "limit": 1000}).get_json()
    assert listed and all(case["dispatched_at"] for case in listed)
    assert waiting not in {case["id"] for case in listed}
    assert client.get(f"/api/cases/{waiting}").status_code == 404
    assert signed_in(app, "duty").get(f"/api/cases/{waiting}").status_code == 200


def test_a_department_may_be_configured_to_see_its_categories_from_the_report(demo_engine, redis_url, tmp_path, people):
    config = tmp_path / "gridops.toml"
    config.write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace('department_sees = "dispatched"', 'department_sees = "responsible"'), encoding="utf-8")
    url = demo_engine.url.render_as_string(hide_password=False)
    responsible = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, config_path=config))
    waiting = _undispatched_cgj_case(demo_engine)
    assert signed_in(responsible, "cgj").get(f"/api/cases/{waiting}").status_code == 200


def test_forged_dash_callbacks_cannot_reach_another_town(app, people):
    client = signed_in(app, "leader")
    client.get("/")
    forged = callback_body(
        app, "home-tiles.children",
        [{"id": "home-refresh", "property": "n_intervals", "value": 1}],
        [{"id": "home-state", "property": "data", "value": {"area": people["other_town"].code, "lang": "zh"}}],
    )
    response = client.post("/_dash-update-component", json=forged)
    assert response.status_code == 204  # nothing answered
    honest = callback_body(
        app, "home-tiles.children",
        [{"id": "home-refresh", "property": "n_intervals", "value": 1}],
        [{"id": "home-state", "property": "data", "value": {"area": people["home_town"].code, "lang": "zh"}}],
    )
    assert client.post("/_dash-update-component", json=honest).status_code == 200


def test_forged_page_render_refuses_admin_screens(app):
    client = signed_in(app, "leader")
    body = callback_body(app, "app-page.children", [{"id": "app-url", "property": "pathname", "value": "/admin"}, {"id": "app-url", "property": "search", "value": ""}], [])
    payload = json.dumps(client.post("/_dash-update-component", json=body).get_json(), ensure_ascii=False)
    assert "无权访问" in payload and "admin-users" not in payload


def test_forged_admin_callbacks_are_refused(app):
    client = signed_in(app, "duty")
    body = callback_body(
        app, "admin-message.children",
        [{"id": "admin-create", "property": "n_clicks", "value": 1}],
        [{"id": i, "property": "value", "value": v} for i, v in (("admin-new-name", "mallory"), ("admin-new-role", "admin"), ("admin-new-scope", None), ("admin-new-dept", None), ("admin-new-password", "Secret-secret-1"))]
        + [{"id": "admin-refresh", "property": "data", "value": 0}],
    )
    assert client.post("/_dash-update-component", json=body).status_code == 403
    assert accounts.get_user(app.server.extensions["gridops"].engine, "mallory") is None


# ---------------------------------------------------------------- cross-site requests (CSRF)


def _create_user_callback(app, name: str) -> dict:
    return callback_body(
        app, "admin-message.children",
        [{"id": "admin-create", "property": "n_clicks", "value": 1}],
        [{"id": i, "property": "value", "value": v} for i, v in (("admin-new-name", name), ("admin-new-role", "operator"), ("admin-new-scope", None), ("admin-new-dept", None), ("admin-new-password", "Secret-secret-1"))]
        + [{"id": "admin-refresh", "property": "data", "value": 0}],
    )


def test_forged_cross_site_unmasking_is_refused_and_not_audited(app, demo_engine):
    case_id = _case_with_contact(demo_engine, "13800002222")
    client = signed_in(app, "duty")
    unmask = f"/api/cases/{case_id}/contact"
    assert client.post(unmask, headers={"Origin": EVIL}).status_code == 403
    assert client.post(unmask, headers={"Origin": "null"}).status_code == 403
    assert client.post(unmask, headers={"Origin": "http://localhost.evil.example"}).status_code == 403
    del client.environ_base["HTTP_ORIGIN"]
    assert client.post(unmask, headers={"Referer": EVIL + "/page"}).status_code == 403
    assert client.post(unmask).status_code == 403  # a browser sends Origin or Referer: neither is not a browser's page
    assert not [entry for entry in audit_entries(demo_engine, "case.unmask") if entry["target"] == case_id]
    assert client.post(unmask, headers={"Referer": SITE + "/review"}).status_code == 200
    assert client.post(unmask, headers={"Origin": SITE}).get_json()["contact"] == "13800002222"
    assert len([entry for entry in audit_entries(demo_engine, "case.unmask") if entry["target"] == case_id]) == 2


def test_forged_cross_site_dash_callbacks_are_refused(app, demo_engine):
    client = signed_in(app, "boss")
    client.get("/admin")
    response = client.post("/_dash-update-component", json=_create_user_callback(app, "csrf-victim"), headers={"Origin": EVIL})
    assert response.status_code == 403
    assert accounts.get_user(demo_engine, "csrf-victim") is None
    assert not accounts.search_audit(demo_engine, text="csrf-victim")
    assert client.post("/_dash-update-component", json=_create_user_callback(app, "csrf-honest")).status_code == 200
    assert accounts.get_user(demo_engine, "csrf-honest") is not None


def test_sign_out_is_a_post_from_this_site(app, demo_engine):
    client = signed_in(app, "duty")
    logouts = len(audit_entries(demo_engine, "logout"))
    page = client.get("/logout")  # a link or an image on any page must not sign anyone out
    assert page.status_code == 200 and '<form method="post" action="/logout">' in page.get_data(as_text=True)
    assert client.get("/api/catalogue").status_code == 200
    assert client.post("/logout", headers={"Origin": EVIL}).status_code == 403
    assert client.get("/api/catalogue").status_code == 200
    assert len(audit_entries(demo_engine, "logout")) == logouts
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/api/catalogue").status_code == 401


def test_sign_in_from_another_site_is_refused(app):
    client = app.server.test_client()
    assert client.post("/login", data={"name": "duty", "password": PASSWORD}, headers={"Origin": EVIL}).status_code == 403
    assert client.post("/login", data={"name": "duty", "password": PASSWORD}, headers={"Origin": SITE}).status_code == 302


def test_bearer_requests_need_no_origin(app, demo_engine):
    """Scripts send their token in a header, which a page of another site cannot add: no cookie, no CSRF."""
    token = accounts.create_token(demo_engine, "duty", actor="test")
    case_id = _case_with_contact(demo_engine, "13800003333")
    response = app.server.test_client().post(f"/api/cases/{case_id}/contact", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["contact"] == "13800003333"


PUBLIC = "https://gridops.example.gov.cn"
PROXIED = {"Origin": PUBLIC, "X-Forwarded-Host": "gridops.example.gov.cn", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"}


@pytest.mark.parametrize("extra,allowed", [
    ({}, False),  # X-Forwarded-Host is anybody's header unless a proxy is trusted
    ({"allowed_origins": (PUBLIC + "/",)}, True),
    ({"trusted_proxies": 1}, True),
])
def test_behind_a_reverse_proxy(demo_engine, redis_url, tmp_path, people, extra, allowed):
    url = demo_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, **extra))
    client = signed_in(app, "duty")
    assert client.post("/logout", headers=PROXIED).status_code == (302 if allowed else 403)
    # the app's own origin, as a TLS-terminating proxy that keeps the Host header shows it
    assert signed_in(app, "duty").post("/logout", headers={"Origin": "https://localhost"}).status_code == 302


# ---------------------------------------------------------------- password changes, throttling, kiosk tokens


def _user_action_body(app, action: str, name: str) -> dict:
    """The admin page's per-user button callback, as dash-renderer posts it for one click."""
    output = next(key for key, spec in app.callback_map.items() if any("admin-user-action" in str(i["id"]) for i in spec["inputs"]))
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]} for part in output.strip(".").split("...")]
    button = {"action": action, "name": name, "type": "admin-user-action"}
    return {"output": output, "outputs": outputs, "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
            "state": [{"id": "admin-refresh", "property": "data", "value": 0}],
            "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"]}


def _reset_password(app, admin, name: str) -> str:
    response = admin.post("/_dash-update-component", json=_user_action_body(app, "password", name))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return json.dumps(response.get_json(), ensure_ascii=False)


def test_a_password_change_ends_every_session_of_that_user(app, demo_engine):
    if accounts.get_user(demo_engine, "pw-user") is None:
        accounts.create_user(demo_engine, "pw-user", "operator", PASSWORD, actor="test")
    else:
        accounts.set_password(demo_engine, "pw-user", PASSWORD, actor="test")
    phone, laptop, bystander = signed_in(app, "pw-user"), signed_in(app, "pw-user"), signed_in(app, "duty")
    admin = signed_in(app, "boss")
    admin.get("/admin")
    assert "只显示一次" in _reset_password(app, admin, "pw-user")
    assert phone.get("/api/catalogue").status_code == 401 and laptop.get("/api/catalogue").status_code == 401
    assert bystander.get("/api/catalogue").status_code == 200 and admin.get("/api/catalogue").status_code == 200
    # an admin who resets their own password keeps the session they did it in, and only that one
    other_desk = signed_in(app, "boss")
    _reset_password(app, admin, "boss")
    assert admin.get("/api/catalogue").status_code == 200 and other_desk.get("/api/catalogue").status_code == 401
    accounts.set_password(demo_engine, "boss", PASSWORD, actor="test")


def test_a_wall_signs_in_by_post(app, people):
    client = browser(app)
    form = client.get("/kiosk?kiosk=1&rotate=30")  # no token in the URL: a form to type it into
    page = form.get_data(as_text=True)
    assert form.status_code == 200 and '<form method="post" action="/kiosk">' in page and 'name="token"' in page
    assert 'name="rotate" value="30"' in page
    assert '"><b>' not in client.get('/kiosk?rotate="><b>x').get_data(as_text=True)
    response = client.post("/kiosk", data={"token": people["wall_token"], "kiosk": "1", "rotate": "30"})
    assert response.status_code == 302 and response.headers["Location"] == "/wall?kiosk=1&rotate=30"
    assert client.get("/wall").status_code == 200
    assert browser(app).post("/kiosk", data={"token": "gro_not-a-token"}).status_code == 401
    assert app.server.test_client().post("/kiosk", data={"token": people["wall_token"]}, headers={"Origin": EVIL}).status_code == 403


def _werkzeug_access_lines(app, path: str, caplog) -> list[str]:
    """The access-log lines of one request through werkzeug's real server (what ``python app.py serve`` runs)."""
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("GET", path)
            assert connection.getresponse().status == 302
            connection.close()
    finally:
        server.shutdown()
        thread.join()
    return [record.getMessage() for record in caplog.records if record.name == "werkzeug"]


def test_kiosk_tokens_stay_out_of_werkzeugs_access_log(app, people, caplog):
    token = people["wall_token"]
    lines = _werkzeug_access_lines(app, f"/kiosk?token={token}&kiosk=1", caplog)
    assert any("/kiosk?token=" in line and "kiosk=1" in line for line in lines), lines
    assert not any(token in line or token[4:] in line for line in lines), lines


def test_kiosk_tokens_stay_out_of_gunicorns_access_log(app, people, tmp_path):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    token = people["wall_token"]
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    config.set("access_log_format", '%(h)s "%(r)s" %(s)s q=%(q)s referer="%(f)s"')
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/kiosk?token={token}&kiosk=1", "PATH_INFO": "/kiosk", "QUERY_STRING": f"token={token}&kiosk=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.8", "HTTP_REFERER": f"http://wall.local/login?next=%2Fkiosk%3Ftoken%3D{token}"}
    logger = Logger(config)
    try:
        logger.access(SimpleNamespace(status="302 FOUND", headers=[], sent=0), SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    finally:
        for handler in list(logger.access_log.handlers):
            handler.close()
            logger.access_log.removeHandler(handler)
    line = (tmp_path / "access.log").read_text()
    assert "/kiosk?token=" in line and "10.0.0.8" in line and token not in line and token[4:] not in line, line


# ---------------------------------------------------------------- personal data


def _case_with_contact(engine, phone="13912345678") -> str:
    with engine.begin() as connection:
        case_id = connection.execute(select(schema.cases.c.id).where(schema.cases.c.dept == "CGJ", schema.cases.c.dispatched_at.is_not(None)).order_by(schema.cases.c.id).limit(1)).scalar()
        connection.execute(schema.cases.update().where(schema.cases.c.id == case_id).values(
            reporter="王建国", contact=phone, description=f"占道经营，联系电话{phone}，身份证110105199001011234",
        ))
    return case_id


def test_personal_data_is_masked_for_operators_and_open_to_admins(app, demo_engine):
    case_id = _case_with_contact(demo_engine)
    masked = signed_in(app, "duty").get(f"/api/cases/{case_id}").get_json()
    assert masked["reporter"] == "王*国" and masked["contact"] == "139****5678" and masked["masked"]
    assert "139****5678" in masked["description"] and "110105********1234" in masked["description"]
    assert "13912345678" not in json.dumps(masked) and "199001011234" not in json.dumps(masked)
    full = signed_in(app, "boss").get(f"/api/cases/{case_id}").get_json()
    assert full["contact"] == "13912345678" and full["reporter"] == "王建国"
    listed = signed_in(app, "cgj").get("/api/cases", query_string={**WINDOW, "limit": 1000}).get_json()
    assert all("13912345678" not in json.dumps(case) for case in listed)


def test_unmasking_is_allowed_to_some_roles_and_always_audited(app, demo_engine):
    case_id = _case_with_contact(demo_engine, "13800001111")
    response = signed_in(app, "duty").post(f"/api/cases/{case_id}/contact")
    assert response.status_code == 200 and response.get_json()["contact"] == "13800001111"
    assert signed_in(app, "leader").post(f"/api/cases/{case_id}/contact").status_code in (403, 404)
    entries = [e for e in audit_entries(demo_engine, "case.unmask") if e["target"] == case_id]
    assert entries and entries[0]["actor"] == "duty" and entries[0]["remote_addr"]


def test_cases_are_audited(app, demo_engine):
    case_id = _case_with_contact(demo_engine)
    signed_in(app, "cgj").get(f"/api/cases/{case_id}")
    assert any(e["target"] == case_id and e["actor"] == "cgj" for e in audit_entries(demo_engine, "case.view"))


def test_worker_phones_are_masked_below_admin(app):
    workers = signed_in(app, "duty").get("/api/workers").get_json()
    assert workers and all("****" in (worker["phone"] or "****") for worker in workers)


# ---------------------------------------------------------------- audit log


def test_user_and_token_changes_are_audited(demo_engine):
    accounts.create_user(demo_engine, "temp-user", "operator", "temporary-pass-1", actor="boss", remote_addr="10.0.0.9")
    token = accounts.create_token(demo_engine, "temp-user", actor="boss")
    token_id = accounts.user_for_token(demo_engine, token)[1]
    accounts.revoke_token(demo_engine, token_id, actor="boss")
    accounts.set_disabled(demo_engine, "temp-user", True, actor="boss")
    actions = [e["action"] for e in accounts.search_audit(demo_engine, text="temp-user")]
    assert {"user.create", "token.create", "token.revoke", "user.disable"} <= set(actions)
    created = next(e for e in accounts.search_audit(demo_engine, text="temp-user") if e["action"] == "user.create")
    assert created["actor"] == "boss" and created["remote_addr"] == "10.0.0.9" and created["ts"]
    assert accounts.authenticate(demo_engine, "temp-user", "temporary-pass-1") is None  # disabled


def test_the_audit_log_can_only_be_appended_to(demo_engine):
    accounts.audit(demo_engine, "someone", "case.view", "X1")
    for statement in ("UPDATE audit_log SET actor = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), demo_engine.begin() as connection:
            connection.execute(text(statement))
    assert accounts.search_audit(demo_engine, text="someone")


def test_the_audit_view_searches(app):
    client = signed_in(app, "boss")
    client.get("/admin/audit")
    body = callback_body(
        app, "admin-audit-results.children",
        [{"id": "admin-audit-search", "property": "n_clicks", "value": 1}, {"id": "admin-audit-text", "property": "value", "value": "duty"}],
        [{"id": "admin-audit-action", "property": "value", "value": "login"}, {"id": "admin-audit-start", "property": "start_date", "value": None}, {"id": "admin-audit-start", "property": "end_date", "value": None}],
    )
    payload = json.dumps(client.post("/_dash-update-component", json=body).get_json(), ensure_ascii=False)
    assert "login.success" in payload and "duty" in payload


# ---------------------------------------------------------------- command line


@pytest.mark.slow  # starts the command line twice
def test_create_user_and_token_from_the_command_line(demo_engine, tmp_path):
    if demo_engine.url.get_backend_name() != "sqlite":
        pytest.skip("the command line is tested on SQLite")
    env = {"DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "GRIDOPS_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run([sys.executable, "app.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    made = run("create-user", "clerk", "--role", "leader", "--scope", "320506003000", "--password", "a-good-password-1")
    assert made.returncode == 0 and "user clerk created" in made.stdout
    token = run("create-token", "clerk")
    assert token.returncode == 0 and token.stdout.strip().startswith("gro_")
    assert accounts.user_for_token(demo_engine, token.stdout.strip())[0].name == "clerk"
    bad = run("create-user", "nobody", "--role", "leader", "--password", "a-good-password-1")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "--scope" in bad.stderr
    weak = run("create-user", "weak", "--role", "operator", "--password", "short")
    assert weak.returncode == 2 and "at least" in weak.stderr


def test_passwords_are_stored_as_memory_hard_hashes(demo_engine):
    stored = accounts.get_user(demo_engine, "duty").password_hash
    assert stored.startswith("scrypt$32768$8$1$") and PASSWORD not in stored


def test_the_per_user_session_index_stays_tidy(redis_client):
    keys = Keys("tidy:")
    record = {"user_id": 7, "name": "someone", "role": "operator"}
    first, second = (sessions.create(redis_client, keys, record, 60, 600) for _ in range(2))
    redis_client.delete(keys.session(first))  # as Redis expires an idle session
    third = sessions.create(redis_client, keys, record, 60, 600)
    assert redis_client.smembers(keys.user_sessions(7)) == {second, third}
    sessions.delete(redis_client, keys, second)
    assert redis_client.smembers(keys.user_sessions(7)) == {third}
    fourth = sessions.create(redis_client, keys, record, 60, 600)
    assert sessions.delete_user_sessions(redis_client, keys, 7, keep=fourth) == 1
    assert redis_client.smembers(keys.user_sessions(7)) == {fourth} and sessions.load(redis_client, keys, fourth)
    assert sessions.delete_user_sessions(redis_client, keys, 7) == 1 and not redis_client.exists(keys.user_sessions(7))


# ---------------------------------------------------------------- the case list export


def _export_cases(app, client, search: str, kind: str = "csv"):
    clicks = [{"id": "review-cases-csv", "property": "n_clicks", "value": 1 if kind == "csv" else None},
              {"id": "review-cases-xlsx", "property": "n_clicks", "value": 1 if kind == "xlsx" else None}]
    if kind == "xlsx":
        clicks.reverse()
    body = callback_body(app, "review-cases-download.data", clicks,
                         [{"id": "app-url", "property": "search", "value": search}, {"id": "review-state", "property": "data", "value": {"lang": "zh"}}])
    return client.post("/_dash-update-component", json=body)


def _exported_rows(response) -> list[list[str]]:
    content = response.get_json()["response"]["review-cases-download"]["data"]["content"]
    lines = list(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    return lines[1:]  # the title line first


def test_the_case_list_export_holds_the_callers_town_masked_and_is_audited(app, people, demo_engine):
    """A town leader's export holds their town's cases with contacts masked; a forged selection of
    another town exports nothing and records nothing; the admin's export is whole and unmasked."""
    home, other = people["home_town"], people["other_town"]
    window = f"window=custom&start={(DEMO_NOW - timedelta(days=2)).date()}&end={DEMO_NOW.date()}"
    leader = signed_in(app, "leader")
    response = _export_cases(app, leader, f"?area={home.code}&{window}")
    assert response.status_code == 200
    header, *rows = _exported_rows(response)
    assert header[:3] == ["案件编号", "上报时间", "来源"] and "联系方式" in header
    code, contact = header.index("网格编码"), header.index("联系方式")
    assert rows and all(row[code].startswith(home.code[:9]) for row in rows)
    contacts = [row[contact] for row in rows if row[contact]]
    assert contacts and all("*" in value for value in contacts)
    assert _export_cases(app, leader, f"?area={other.code}&{window}").status_code == 204
    with demo_engine.connect() as connection:
        exports = connection.execute(select(schema.audit_log.c.actor, schema.audit_log.c.target, schema.audit_log.c.detail)
                                     .where(schema.audit_log.c.action == "export", schema.audit_log.c.target.like("cases-%"))).all()
    assert [(actor, target) for actor, target, _ in exports] == [("leader", f"cases-{home.code}-{(DEMO_NOW - timedelta(days=2)).date():%Y%m%d}.csv")]
    assert json.loads(exports[0].detail)["rows"] == len(rows) and json.loads(exports[0].detail)["masked"] is True

    boss = signed_in(app, "boss")
    whole = _exported_rows(_export_cases(app, boss, f"?{window}"))[1:]
    assert len(whole) > len(rows) and any(row[contact] and "*" not in row[contact] for row in whole)
    xlsx = _export_cases(app, boss, f"?area={home.code}&{window}", "xlsx").get_json()["response"]["review-cases-download"]["data"]
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(xlsx["content"])))
    sheet = book["案件列表"]
    assert [cell.value for cell in sheet[3]][:2] == ["案件编号", "上报时间"] and sheet.max_row - 3 == len(rows)


def test_an_export_past_its_bound_is_cut_to_the_newest_and_says_so(app, demo_engine, monkeypatch):
    from data_feeds import queries

    monkeypatch.setattr(queries, "MAX_EXPORT_CASES", 5)
    response = _export_cases(app, signed_in(app, "boss"), f"?window=custom&start={(DEMO_NOW - timedelta(days=2)).date()}&end={DEMO_NOW.date()}")
    content = response.get_json()["response"]["review-cases-download"]["data"]["content"]
    lines = list(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    assert "仅导出最新" in lines[1][0] and len(lines) == 3 + 5
    reported = [line[1] for line in lines[3:]]
    assert reported == sorted(reported, reverse=True)
