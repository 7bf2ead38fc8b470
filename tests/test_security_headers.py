"""The Content-Security-Policy and hardening headers on every response (defence in depth
against stored XSS).

Through the real app with a real Redis and an empty SQLite database; the browser test
(tests/test_browser_hostile.py) shows that every screen runs under the policy.
"""
from __future__ import annotations

import base64
import hashlib
import re

import pytest

from app import create_app
from dashboard.headers import content_security_policy, tile_source
from dashboard.settings import Settings, SettingsError
from data_feeds.db import init_db, make_engine
from tests.support import fresh_database

HARDENING = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


@pytest.fixture
def make_client(redis_url, tmp_path):
    """A test client of the app on an empty SQLite database, with sign-in on or off."""
    engines = []

    def make(auth: bool, tile_url: str | None = None):
        with fresh_database("sqlite", tmp_path) as url:
            engine = make_engine(url)
            init_db(engine)
            engines.append(engine)
            app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path / "var", auth=auth, tile_url=tile_url))
            return app, app.server.test_client()

    yield make
    for engine in engines:
        engine.dispose()


def directives(policy: str) -> dict[str, list[str]]:
    return {parts[0]: parts[1:] for parts in (item.split() for item in policy.split(";")) if parts}


def inline_script_hashes(page: str) -> list[str]:
    """sha256 sources of every inline script the browser would run (JSON data blocks do not run)."""
    found = []
    page = re.sub(r"<!--.*?-->", "", page, flags=re.S)  # Dash's <!--[if IE]> warning is a comment to Chromium
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S):
        if "src=" in attributes or "application/json" in attributes:
            continue
        found.append("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'")
    return found


def assert_hardened(response) -> dict[str, list[str]]:
    for name, value in HARDENING.items():
        assert response.headers.get(name) == value, (response.request.path, name)
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    script = policy["script-src"]
    assert script[0] == "'self'" and all(source.startswith("'sha256-") for source in script[1:]), script  # no unsafe-inline, no unsafe-eval
    return policy


def test_every_kind_of_response_carries_the_headers(make_client):
    _, client = make_client(auth=True)
    for path, status in (("/login", 200), ("/", 302), ("/admin", 302), ("/healthz", 200), ("/metrics", 200),
                         ("/api/indicators", 401), ("/_dash-layout", 401), ("/assets/wall.js", 200)):
        response = client.get(path)
        assert response.status_code == status, path
        assert_hardened(response)
    response = client.post("/login", data={"name": "<img src=x onerror=alert(1)>", "password": "wrong"}, headers={"Origin": "http://localhost"})
    assert response.status_code == 401
    assert_hardened(response)
    # the login page escapes what it echoes (Jinja autoescapes templates from strings)
    assert b"<img src=x" not in response.data and b"&lt;img src=x onerror=alert(1)&gt;" in response.data


def test_the_policy_allows_exactly_the_dash_pages_inline_scripts(make_client):
    app, client = make_client(auth=False)
    # errors too: a missing file (404), and Dash's failure on an unknown package (500)
    for path in ("/assets/no-such-file.js", "/_dash-component-suites/no_such_package/x.js"):
        response = client.get(path)
        assert response.status_code >= 400, path
        assert_hardened(response)
    response = client.get("/wall")
    assert response.status_code == 200 and b"DashRenderer" in response.data
    policy = assert_hardened(response)
    inline = inline_script_hashes(response.get_data(as_text=True))
    assert inline, "Dash's index has its renderer script inline"
    assert sorted(set(policy["script-src"][1:])) == sorted(set(inline)) == sorted(set(app.csp_hashes()))


def test_tiles_from_the_configured_server_only(make_client):
    _, client = make_client(auth=False, tile_url="https://{s}.tiles.example.gov.cn:8443/wuzhong/{z}/{x}/{y}.png")
    policy = assert_hardened(client.get("/"))
    assert policy["img-src"] == ["'self'", "data:", "blob:", "https://*.tiles.example.gov.cn:8443"]


def test_tile_sources():
    assert tile_source(None) is None
    assert tile_source("/tiles/{z}/{x}/{y}.png") is None  # this server
    assert tile_source("http://tiles.local/{z}/{x}/{y}.png") == "http://tiles.local"
    assert tile_source("http://{s}.tiles.local/{z}/{x}/{y}.png") == "http://*.tiles.local"
    for bad in ("ftp://tiles.local/{z}", "http://tiles{s}.local/{z}", "javascript:alert(1)", "http://a.b; script-src *"):
        with pytest.raises(SettingsError):
            tile_source(bad)
    assert "img-src 'self' data: blob:;" in content_security_policy([], None)
