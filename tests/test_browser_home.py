"""The start page in headless Chromium: real outline and grids, tiles equal to /api/indicators."""
from __future__ import annotations

import json
from urllib.request import urlopen

import pytest

from tests.browser import chromium, is_local, running_server
from tests.support import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(demo_engine, redis_base_url, redis_db, tmp_path_factory):
    if demo_engine.url.get_backend_name() != "sqlite":
        pytest.skip("one browser run is enough; the data layer is tested on both databases")
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {"DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "REDIS_URL": f"{redis_base_url}/{redis_db}", "GRIDOPS_SIMULATE": "0"}
    with running_server(env, log_path=log) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def test_home_shows_the_district_grids_and_the_api_numbers(server, browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server + "/", wait_until="networkidle")
    page.wait_for_selector("[data-kpi='reported']")
    page.wait_for_selector("path.leaflet-interactive")
    api = json.load(urlopen(server + "/api/indicators"))
    tiles = page.eval_on_selector_all("[data-kpi]", "els => els.map(e => [e.dataset.kpi, e.dataset.value])")
    assert len(tiles) >= 10
    for name, raw in tiles:
        expected = api[name]
        assert (raw == "" and expected is None) or float(raw) == pytest.approx(expected), name
    # 72 basic grids, filled; the district outline is the one path without fill
    assert page.locator("path.leaflet-interactive:not([fill='none'])").count() == 72
    assert page.locator("path[fill='none']").count() == 1
    assert page.locator("h1").inner_text().startswith("吴中区")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-1920x1080.png"))
    outside = [url for url in requests if not is_local(url)]
    assert outside == []


def test_language_switch_to_english(server, browser):
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    page.goto(server + "/", wait_until="networkidle")
    page.click("a.lang-switch")
    page.wait_for_function("() => document.querySelector('h1') && document.querySelector('h1').innerText.includes('Command Centre')")
    assert "Reported" in page.locator("[data-kpi='reported']").inner_text()
    assert "lang=en" in page.url


def test_unknown_path_says_so(server, browser):
    page = browser.new_page()
    page.goto(server + "/nowhere", wait_until="networkidle")
    page.wait_for_selector(".page-missing")
    assert "页面不存在" in page.inner_text("body")
