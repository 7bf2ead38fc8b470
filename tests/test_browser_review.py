"""The situational review (/review) and the weekly meeting (/weekly) in headless Chromium against
the real server: drill-down by the map and the breadcrumb, filters, the case timeline and its
audit entry, the CSV, PDF and XLSX exports, and the four screens (wall, review, weekly,
/api/indicators) agreeing on the same area and window.

One server for the module on the small demo district (SQLite only: the data layer runs on
both databases elsewhere). The demo's history ends at DEMO_NOW (2026-11-25 15:10 local) while
the server reads the real clock, so custom windows of those November days are closed and
their numbers stable. Every request of every page is recorded: the last test checks that
none left this machine.
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlparse
from urllib.request import urlopen

import openpyxl
import pytest
import redis as redis_lib
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from shapely.geometry import shape
from sqlalchemy import func, select

from dashboard import area_reports, weekly_report
from dashboard.formatting import format_value
from dashboard.i18n import t
from dashboard.review_screen import CASE_LIST
from dashboard.weekly_columns import period_name
from data_feeds import schema
from data_feeds.queries import CaseFilter
from data_feeds.reference import root_grid
from gridrules.access import EVERYTHING
from gridrules.clock import utc_now
from gridrules.lifecycle import SOURCES
from gridrules.timewindows import last_complete_period, period_shift, recent_periods, today, week_of
from layouts.review import DEPARTMENT_COLUMNS, REVIEW_TILES
from layouts.wall import WALL_TILES
from layouts.weekly import WEEKLY_TILES
from tests.browser import (
    FIND_LEAFLET_MAP_JS,
    chromium,
    dash_prop,
    is_local,
    running_server,
)
from tests.support import ARTIFACTS, TZ

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("demo_engine", ["sqlite"], indirect=True)]

CUSTOM = {"window": "custom", "start": "2026-11-20", "end": "2026-11-26"}  # inclusive dates in the URL …
CUSTOM_API = {"start": "2026-11-20", "end": "2026-11-27"}  # … the API's end is exclusive
WEEK = "2026-11-16"  # a closed Monday-to-Sunday week holding demo days (the 21st and 22nd)
WEEK_API = {"start": "2026-11-16", "end": "2026-11-23"}
REQUESTS: list[tuple[str, str]] = []  # (the page's path, the URL it requested)
TIMEOUT_S = 20


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(demo_engine, redis_base_url, redis_db, tmp_path_factory):
    url = f"{redis_base_url}/{redis_db}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()  # no cached numbers of another module's database
    client.close()
    env = {"DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "REDIS_URL": url, "GRIDOPS_SIMULATE": "0", "GRIDOPS_AUTH": "off"}
    with running_server(env, log_path=tmp_path_factory.mktemp("review") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def context():
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
        ctx.on("request", lambda request: REQUESTS.append((urlparse(request.frame.page.url).path if request.frame else "", request.url)))
        yield ctx
        ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], errors


# ---------------------------------------------------------------- helpers


def api(base: str, **params) -> dict:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    with urlopen(f"{base}/api/indicators{'?' + query if query else ''}", timeout=30) as answer:
        return json.load(answer)


def tiles(page, container: str) -> dict[str, str]:
    return dict(page.eval_on_selector_all(f"{container} [data-kpi]", "els => els.map(e => [e.dataset.kpi, e.dataset.value])"))


def mismatches(shown: dict[str, str], expected: dict) -> dict:
    wrong = {}
    for name, raw in shown.items():
        value = expected.get(name, "missing")
        same = (raw == "" and value is None) or (raw != "" and isinstance(value, (int, float)) and float(raw) == pytest.approx(value, rel=1e-12, abs=1e-12))
        if not same:
            wrong[name] = (raw, value)
    return wrong


def wait_for_tiles(page, container: str, expected: dict, names: tuple) -> dict[str, str]:
    """The tiles, once they show ``expected`` (a callback may still be on its way); fails with the difference."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        shown = tiles(page, container)
        if set(shown) == set(names) and not mismatches(shown, expected):
            return shown
        if time.monotonic() > deadline:
            assert set(shown) == set(names)
            assert mismatches(shown, expected) == {}
        page.wait_for_timeout(100)


def query_of(page) -> dict:
    return {key: values[-1] for key, values in parse_qs(urlparse(page.url).query).items()}


def wait_for_query(page, **wanted) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        query = query_of(page)
        if all(query.get(key) == value for key, value in wanted.items()):
            return query
        assert time.monotonic() < deadline, f"the URL {page.url} never held {wanted}"
        page.wait_for_timeout(100)


def open_review(page, base: str, **params):
    page.goto(f"{base}/review?{urlencode(params)}", wait_until="networkidle")
    page.wait_for_selector("#review-tiles [data-kpi]")
    page.wait_for_selector("#review-map path.leaflet-interactive")


def open_weekly(page, base: str, query: str = ""):
    page.goto(f"{base}/weekly{query}", wait_until="networkidle")
    page.wait_for_selector(".weekly-tiles [data-kpi]")


def area_features(page) -> list[dict]:
    return (dash_prop(page, "review-areas", "data") or {}).get("features", [])


def area_spot(page, code: str) -> tuple[float, float]:
    """A point of the page inside the area's polygon, once the map stands still."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        features = {f["properties"]["code"]: f for f in area_features(page)}
        if code in features and page.locator("#review-map path.leaflet-interactive").count() == len(features):
            break
        assert time.monotonic() < deadline, f"{code} is not on the map"
        page.wait_for_timeout(100)
    inside = shape(features[code]["geometry"]).representative_point()
    assert page.evaluate(FIND_LEAFLET_MAP_JS, "#review-map"), "the Leaflet map behind #review-map was not found"
    to_pixels = "([lat, lon]) => { const p = window.__leafletMaps['#review-map'].latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }"
    spot = None
    while True:  # the map fits its new bounds after a drill-down: wait until it stops moving
        page.wait_for_timeout(150)
        now = page.evaluate(to_pixels, [inside.y, inside.x])
        if now == spot:
            break
        spot = now
        assert time.monotonic() < deadline, "the map never stood still"
    box = page.locator("#review-map").bounding_box()
    assert 0 < spot[0] < box["width"] and 0 < spot[1] < box["height"], (spot, box)
    return box["x"] + spot[0], box["y"] + spot[1]


def click_area(page, code: str) -> None:
    page.mouse.click(*area_spot(page, code))


def wait_for_map_to_fit(page) -> None:
    """The map shows the whole of the areas it draws (the selected area's children), and
    fills itself with them: their extent spans at least half the map's width or height."""
    assert page.evaluate(FIND_LEAFLET_MAP_JS, "#review-map"), "the Leaflet map behind #review-map was not found"
    read_bounds = "() => { const b = window.__leafletMaps['#review-map'].getBounds(); return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]; }"
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        features = area_features(page)
        extents = [shape(f["geometry"]).bounds for f in features]  # west, south, east, north
        west, south = min(e[0] for e in extents), min(e[1] for e in extents)
        east, north = max(e[2] for e in extents), max(e[3] for e in extents)
        map_south, map_west, map_north, map_east = page.evaluate(read_bounds)
        inside = map_west <= west and map_south <= south and east <= map_east and north <= map_north
        filled = max((east - west) / (map_east - map_west), (north - south) / (map_north - map_south))
        if inside and filled >= 0.5:
            return
        assert time.monotonic() < deadline, f"the map {[map_south, map_west, map_north, map_east]} does not fit the area {[south, west, north, east]} (fills {filled:.0%})"
        page.wait_for_timeout(150)


def wait_for_breadcrumb(page, *names: str) -> None:
    expected = " › ".join(names)
    page.wait_for_function("(text) => document.querySelector('#review-breadcrumb').innerText.trim() === text", arg=expected, timeout=TIMEOUT_S * 1000)


def choose(page, dropdown: str, value: str) -> None:
    """Pick an option of a Dash dropdown as a user does: open it, click the option."""
    page.click(f"#{dropdown}")
    page.click(f"[role=option]:has(input[value='{value}'])")
    page.keyboard.press("Escape")


def local_text(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- the review


def test_drill_down_by_map_and_breadcrumb_shows_the_api_numbers(server, page):
    open_review(page, server, **CUSTOM)
    assert page.inner_text("#review-period").strip() == "本期 2026-11-20 – 2026-11-26 · 上期 2026-11-13 – 2026-11-19"
    district = api(server, **CUSTOM_API)
    assert district["reported"] > 500 and district["end"].startswith("2026-11-27T00:00:00")
    wait_for_tiles(page, "#review-tiles", district, REVIEW_TILES)
    wait_for_breadcrumb(page, "吴中区")

    town = max(area_features(page), key=lambda f: f["properties"]["reported"])["properties"]
    click_area(page, town["code"])
    wait_for_query(page, area=town["code"], **CUSTOM)
    wait_for_breadcrumb(page, "吴中区", town["name"])
    wait_for_map_to_fit(page)
    town_numbers = api(server, area=town["code"], **CUSTOM_API)
    assert 0 < town_numbers["reported"] < district["reported"] and town_numbers["reported"] == town["reported"]
    wait_for_tiles(page, "#review-tiles", town_numbers, REVIEW_TILES)

    community = max(area_features(page), key=lambda f: f["properties"]["reported"])["properties"]
    assert community["code"] != town["code"]
    click_area(page, community["code"])
    wait_for_query(page, area=community["code"], **CUSTOM)
    wait_for_breadcrumb(page, "吴中区", town["name"], community["name"])
    wait_for_map_to_fit(page)
    community_numbers = api(server, area=community["code"], **CUSTOM_API)
    assert 0 < community_numbers["reported"] < town_numbers["reported"]
    shown = wait_for_tiles(page, "#review-tiles", community_numbers, REVIEW_TILES)
    assert all(f["properties"]["code"].startswith(community["code"]) for f in area_features(page))  # its basic grids

    # shareable: the same URL, reloaded, shows the same numbers
    page.reload(wait_until="networkidle")
    page.wait_for_selector("#review-tiles [data-kpi]")
    assert tiles(page, "#review-tiles") == shown
    wait_for_breadcrumb(page, "吴中区", town["name"], community["name"])

    page.click("#review-breadcrumb a:text-is('吴中区')")
    wait_for_breadcrumb(page, "吴中区")
    assert "area" not in query_of(page) or query_of(page)["area"] == district["area"]
    wait_for_query(page, **CUSTOM)
    wait_for_tiles(page, "#review-tiles", district, REVIEW_TILES)
    assert len(area_features(page)) == 12  # the towns again
    wait_for_map_to_fit(page)  # zoomed out again


def ranking_shown(page) -> list[list[str]]:
    """The sub-area ranking's rows as drawn, top to bottom: [code, name, overdue, score]."""
    page.wait_for_selector("#review-ranking .ag-center-cols-container .ag-row")
    return page.eval_on_selector_all("#review-ranking .ag-center-cols-container .ag-row", """rows => rows
        .sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))
        .map(r => [r.getAttribute('row-id'), ...['name', 'overdue', 'score'].map(f => r.querySelector(`[col-id="${f}"]`).textContent.trim())])""")


def test_the_sub_area_ranking_lists_every_town_worst_first_and_a_click_drills_down(server, page):
    open_review(page, server, **CUSTOM)
    towns = {f["properties"]["code"]: f["properties"]["name"] for f in area_features(page)}
    shown = ranking_shown(page)
    assert {code: name for code, name, _, _ in shown} == towns  # every town, by name
    scores = [float(score) for _, _, _, score in shown if score != "—"]
    assert scores and scores == sorted(scores), shown
    assert page.get_by_text(t("areas_worst_first", "zh")).is_visible()
    worst_code, worst_name = shown[0][0], shown[0][1]
    page.locator("#review-ranking .ag-center-cols-container .ag-row[row-index='0'] [col-id='name']").click()
    wait_for_query(page, area=worst_code, **CUSTOM)
    wait_for_breadcrumb(page, "吴中区", worst_name)
    wait_for_map_to_fit(page)
    communities = {f["properties"]["code"] for f in area_features(page)}
    deadline = time.monotonic() + TIMEOUT_S
    while {code for code, _, _, _ in ranking_shown(page)} != communities:  # the town's communities now
        assert time.monotonic() < deadline, "the ranking did not follow the drill-down"
        page.wait_for_timeout(100)


def test_the_map_names_its_areas_explains_its_shading_and_labels_its_numbers(server, page):
    open_review(page, server, **CUSTOM)
    towns = {f["properties"]["code"]: f["properties"] for f in area_features(page)}
    page.wait_for_selector("#review-map .area-name span")
    names = page.eval_on_selector_all("#review-map .leaflet-marker-icon.area-name", """els => els.filter(e => e.style.display !== 'none')
        .map(e => [e.textContent, parseFloat(getComputedStyle(e.firstChild).fontSize)])""")
    assert len(names) >= len(towns) // 2, names  # most towns are wide enough for their name at the district's zoom
    assert {name for name, _ in names} <= {p["name"] for p in towns.values()} and all(size >= 12 for _, size in names), names
    boxes = page.eval_on_selector_all("#review-map .leaflet-marker-icon.area-name", """els => els.filter(e => e.style.display !== 'none')
        .map(e => { const b = e.firstChild.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })""")
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]
    assert not overlapping, overlapping  # no name written over another
    # the legend: a step for every shade drawn, with the overdue outline explained
    legend = page.locator("#review-legend")
    assert legend.is_visible() and t("legend_reported", "zh") in legend.inner_text() and t("legend_overdue", "zh") in legend.inner_text()
    swatches = set(page.eval_on_selector_all("#review-legend .swatch[class*='ramp-']", "els => els.map(e => getComputedStyle(e).backgroundColor)"))
    fills = set(page.eval_on_selector_all("#review-map path.leaflet-interactive", """els => els.map(e => {
        const probe = document.createElement('div'); probe.style.color = e.getAttribute('fill'); document.body.appendChild(probe);
        const colour = getComputedStyle(probe).color; probe.remove(); return colour; })"""))
    assert fills and fills <= swatches, (fills, swatches)
    # a tooltip says what its numbers are
    busiest = max(towns.values(), key=lambda p: p["reported"])
    page.mouse.move(*area_spot(page, busiest["code"]))
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for(timeout=TIMEOUT_S * 1000)
    lines = tooltip.inner_text().splitlines()
    assert lines[0] == busiest["name"] and f"上报数 {busiest['reported']}" in lines and f"超期数 {busiest['overdue']}" in lines, lines


def test_grade_and_source_filters_go_into_the_url_and_the_numbers(server, page):
    town = json.load(urlopen(f"{server}/api/grids?parent=320506", timeout=30))[0]
    open_review(page, server, area=town["code"], **CUSTOM)
    choose(page, "review-grade", "B")
    wait_for_query(page, area=town["code"], grade="B", **CUSTOM)
    choose(page, "review-source", "hotline")
    query = wait_for_query(page, area=town["code"], grade="B", source="hotline", **CUSTOM)
    assert "category" not in query and "dept" not in query
    filtered = api(server, area=town["code"], grade="B", source="hotline", **CUSTOM_API)
    unfiltered = api(server, area=town["code"], **CUSTOM_API)
    assert 0 < filtered["reported"] < unfiltered["reported"]
    shown = wait_for_tiles(page, "#review-tiles", filtered, REVIEW_TILES)
    page.reload(wait_until="networkidle")  # the filters travel with the URL
    page.wait_for_selector("#review-tiles [data-kpi]")
    assert tiles(page, "#review-tiles") == shown
    assert page.inner_text("#review-grade").strip() == "B" and page.inner_text("#review-source").strip() == t("source_hotline", "zh")


def test_the_change_on_each_tile_is_against_the_period_before(server, page):
    """24–25 Nov against 22–23 Nov (both in the demo's history): every tile's change equals the
    API's number for this window minus the API's number for the one before."""
    open_review(page, server, window="custom", start="2026-11-24", end="2026-11-25")
    assert page.inner_text("#review-period").strip() == "本期 2026-11-24 – 2026-11-25 · 上期 2026-11-22 – 2026-11-23"
    now, before = api(server, start="2026-11-24", end="2026-11-26"), api(server, start="2026-11-22", end="2026-11-24")
    wait_for_tiles(page, "#review-tiles", now, REVIEW_TILES)
    changes = dict(page.eval_on_selector_all("#review-tiles [data-kpi]", "els => els.map(e => [e.dataset.kpi, e.querySelector('.change').innerText.trim()])"))
    for name in REVIEW_TILES:
        value, previous = now[name], before[name]
        if value is None or previous is None:
            expected = "—"
        elif value == previous:
            expected = "持平"  # the words of the weekly PDF and spreadsheet too (dashboard/formatting.py)
        elif "rate" in name:
            expected = f"{'▲' if value > previous else '▼'} {abs(value - previous) * 100:.1f} 个百分点"
        elif isinstance(value, float):
            expected = f"{'▲' if value > previous else '▼'} {abs(value - previous):.1f}"
        else:
            expected = f"{'▲' if value > previous else '▼'} {abs(value - previous):,}"
        assert changes[name] == expected, (name, value, previous)
    assert before["reported"] > 0 and changes["reported"] != "—"


@pytest.fixture(scope="module")
def reworked_case(demo_engine) -> tuple[str, str]:
    """A closed and evaluated case that was returned for rework (the longest story: report …
    feedback, return, feedback … close, evaluate) and the local day it was reported, chosen
    among the newest cases of its day so that the review's case list (newest CASE_LIST of
    the day) holds it whatever the demo's hour."""
    c = schema.cases.c
    with demo_engine.connect() as connection:
        candidates = connection.execute(
            select(c.id, c.reported_at).where(c.rework_count > 0, c.status == "evaluated").order_by(c.reported_at.desc()).limit(50)
        ).all()
        for case_id, reported_at in candidates:
            day = reported_at.replace(tzinfo=UTC).astimezone(TZ).date()
            day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), TZ).astimezone(UTC).replace(tzinfo=None)
            newer = connection.execute(select(func.count()).where(c.reported_at > reported_at, c.reported_at < day_end)).scalar_one()
            if newer < CASE_LIST // 2:
                return case_id, day.isoformat()
    pytest.fail("the demo has no reworked case among the newest of its day")


def select_case(page, base: str, case_id: str, day: str) -> None:
    """Open the review on the day the case was reported and click its row in the case list."""
    open_review(page, base, window="custom", start=day, end=day)
    rows = dash_prop(page, "review-cases", "rowData")
    index = next(i for i, row in enumerate(rows) if row["id"] == case_id)
    page.evaluate("(i) => dash_ag_grid.getApi('review-cases').ensureIndexVisible(i, 'middle')", index)
    page.locator(f"#review-cases .ag-center-cols-container .ag-row[row-index='{index}']").wait_for()
    page.locator(f"#review-cases .ag-center-cols-container .ag-row[row-index='{index}'] .ag-cell").first.click()
    deadline = time.monotonic() + TIMEOUT_S
    while [row["id"] for row in dash_prop(page, "review-cases", "selectedRows") or []] != [case_id]:
        assert time.monotonic() < deadline, "the case was not selected"
        page.wait_for_timeout(100)


def test_opening_a_case_is_audited(server, page, demo_engine, reworked_case):
    case_id, day = reworked_case
    select_case(page, server, case_id, day)
    statement = select(schema.audit_log.c.actor, schema.audit_log.c.detail).where(schema.audit_log.c.action == "case.view", schema.audit_log.c.target == case_id)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        with demo_engine.connect() as connection:
            audit = connection.execute(statement).all()
        if audit:
            break
        assert time.monotonic() < deadline, "no case.view entry in the audit log"
        time.sleep(0.2)
    assert len(audit) == 1 and json.loads(audit[0].detail) == {"screen": "review"}, audit


def test_a_cases_timeline_shows_its_transitions_in_order(server, page, demo_engine, reworked_case):
    case_id, day = reworked_case
    select_case(page, server, case_id, day)
    page.wait_for_function("(id) => document.querySelector('#review-timeline h3') && document.querySelector('#review-timeline h3').innerText.startsWith(id)",
                           arg=case_id, timeout=8000)
    shown = page.eval_on_selector_all("#review-timeline table.timeline tbody tr", "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))")
    with urlopen(f"{server}/api/cases/{case_id}", timeout=30) as answer:
        timeline = json.load(answer)["timeline"]
    actions = [event["action"] for event in timeline]
    assert actions[0] == "report" and "return" in actions and actions[-1] == "evaluate"
    expected = [[local_text(e["ts"]), t("action_" + e["action"], "zh"),
                 f"{t('status_' + (e['from_status'] or 'new'), 'zh')} → {t('status_' + e['to_status'], 'zh')}"] for e in timeline]
    assert [[cells[0], cells[1], cells[3]] for cells in shown] == expected
    assert [cells[0] for cells in shown] == sorted(cells[0] for cells in shown)  # in time order
    # actors as people and departments by name, the centre and the channels in words
    with demo_engine.connect() as connection:
        people = dict(connection.execute(select(schema.workers.c.id, schema.workers.c.name)).all())
        departments = dict(connection.execute(select(schema.departments.c.code, schema.departments.c.name)).all())
    words = {"centre": "指挥中心", "citizen": "市民", **{source: t("source_" + source, "zh") for source in SOURCES}}
    for event, cells in zip(timeline, shown):
        assert cells[2] == {**people, **departments, **words}.get(event["actor"], event["actor"]), (event, cells)
        assert cells[2] != event["actor"] or not event["actor"], (event, cells)


def test_the_case_panel_shows_each_stage_against_its_limit_in_its_own_unit(server, page, reworked_case):
    case_id, day = reworked_case
    select_case(page, server, case_id, day)
    page.wait_for_selector("#review-timeline .stage-table tbody tr")
    rows = page.eval_on_selector_all("#review-timeline .stage-table tbody tr", """rows => rows.map(r => [r.dataset.stage,
        ...[...r.querySelectorAll('td')].map(td => td.innerText.trim())])""")
    stages = [row[0] for row in rows]
    assert stages[:4] == ["register", "dispatch", "handle", "verify"] and stages.count("handle") >= 2  # a round per rework
    units = {t(f"unit_{u}", "zh") for u in ("m", "h", "d", "wd", "working_m", "working_h")}
    for stage, _, started, due, limit, took, result in rows:
        limit_unit, took_unit = limit.split(" ", 1)[1], took.split(" ", 1)[1]
        assert limit_unit in units and took_unit == limit_unit, (stage, limit, took)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", started) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", due)
        assert result == "按时" or (result.startswith("超时 ") and result.endswith(limit_unit)), (stage, result)
    # the panel opens in view, carries the case's category path, and is a link that can be sent on
    box = page.locator("#review-timeline").bounding_box()
    assert box["y"] <= 1 and box["height"] >= 600 and box["x"] + box["width"] <= 1601
    assert " → " in page.locator("#review-timeline .facts").inner_text()
    assert query_of(page)["case"] == case_id
    page.goto(page.url, wait_until="networkidle")
    page.wait_for_function("(id) => document.querySelector('#review-timeline.open h3') && document.querySelector('#review-timeline h3').innerText.startsWith(id)",
                           arg=case_id, timeout=TIMEOUT_S * 1000)
    page.click("#review-close-case")
    page.wait_for_function("() => !document.querySelector('#review-timeline.open')", timeout=TIMEOUT_S * 1000)
    assert "case" not in query_of(page)


def test_a_search_finds_a_case_by_its_words_and_opens_its_panel_with_a_link(server, page, demo_engine):
    """Search → hit → panel → URL → reload: the same case, with its description."""
    with demo_engine.connect() as connection:
        case_id, description = connection.execute(
            select(schema.cases.c.id, schema.cases.c.description).where(schema.cases.c.source == "hotline").order_by(schema.cases.c.reported_at.desc()).limit(1)
        ).one()
    words = description.split("：", 1)[1][:14]  # the place and the start of the complaint, without the channel's words
    open_review(page, server, **CUSTOM)
    page.fill("#review-search", words)
    page.press("#review-search", "Enter")
    hit = page.locator(f"#review-search-hits .search-hit:has(.hit-id:text-is('{case_id}'))")
    hit.wait_for(timeout=TIMEOUT_S * 1000)
    assert words in hit.inner_text().replace("\n", "")
    hit.click()
    page.wait_for_function("(id) => document.querySelector('#review-timeline.open h3') && document.querySelector('#review-timeline h3').innerText.startsWith(id)",
                           arg=case_id, timeout=TIMEOUT_S * 1000)
    assert query_of(page)["case"] == case_id and page.locator("#review-search-hits .search-hit").count() == 0
    assert page.inner_text("#review-timeline .description") == description
    link = page.url
    page.goto("about:blank")
    page.goto(link, wait_until="networkidle")
    page.wait_for_selector("#review-timeline.open .stage-table tbody tr", timeout=TIMEOUT_S * 1000)
    assert page.inner_text("#review-timeline .description") == description


def test_an_unknown_case_in_the_url_opens_nothing(server, page):
    """A forged link: the panel stays shut and says only that there is no such case to see."""
    open_review(page, server, case="NO-SUCH-CASE-1")
    assert page.locator("#review-timeline.open").count() == 0
    page.wait_for_selector("text=" + t("case_not_found", "zh"), timeout=TIMEOUT_S * 1000)


def test_a_case_with_one_transition_opens(server, page, demo_engine):
    """The newest case of the demo (only reported): its panel opens and matches the API."""
    open_review(page, server, **CUSTOM)
    page.locator("#review-cases .ag-center-cols-container .ag-row[row-index='0'] .ag-cell").first.click()
    page.wait_for_selector("#review-timeline h3", timeout=TIMEOUT_S * 1000)
    case_id = dash_prop(page, "review-cases", "selectedRows")[0]["id"]
    with urlopen(f"{server}/api/cases/{case_id}", timeout=30) as answer:
        case = json.load(answer)
    assert page.inner_text("#review-timeline h3").startswith(case_id)
    shown = page.eval_on_selector_all("#review-timeline table.timeline tbody tr", "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))")
    assert [cells[:2] for cells in shown] == [[local_text(e["ts"]), t("action_" + e["action"], "zh")] for e in case["timeline"]]


def test_clicking_a_case_row_opens_its_timeline(server, page):
    open_review(page, server, **CUSTOM)
    page.locator("#review-cases .ag-center-cols-container .ag-row[row-index='0'] .ag-cell[col-id='category_name']").click()
    page.wait_for_function("() => document.querySelector('#review-timeline h3')", timeout=5000)


def test_the_department_csv_holds_the_department_tables_rows(server, page, tmp_path):
    open_review(page, server, **CUSTOM)
    page.wait_for_selector("#review-departments .ag-row")
    rows = dash_prop(page, "review-departments", "rowData")
    assert len(rows) > 5
    with page.expect_download() as download:
        page.click("#review-export")
    assert download.value.suggested_filename == "departments-320506.csv"
    path = tmp_path / "departments.csv"
    download.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a byte-order mark: spreadsheet programs read the Chinese
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == [t(label, "zh") for _, label, _ in DEPARTMENT_COLUMNS]
    assert len(table) - 1 == len(rows)
    for line, row in zip(table[1:], rows):
        for cell, (field, _, kind) in zip(line, DEPARTMENT_COLUMNS):
            value = row.get(field)
            if value is None:
                assert cell == "", (field, row)
            elif kind is None:
                assert cell == str(value), (field, row)
            else:
                assert float(cell) == pytest.approx(value, rel=1e-12), (field, row)
    # and the grid on the screen shows the same rows, in the same order
    shown = page.eval_on_selector_all("#review-departments .ag-center-cols-container .ag-row", """rows => rows.map(r => [
        +r.getAttribute('row-index'), ...['name', 'due_to_close', 'due_closed', 'overdue', 'on_time_closure_rate'].map(
            f => (r.querySelector(`[col-id="${f}"]`) || {textContent: null}).textContent.trim())])""")
    assert len(shown) >= 5
    for index, name, due, closed, overdue, rate in shown:
        line = dict(zip([field for field, _, _ in DEPARTMENT_COLUMNS], table[index + 1]))
        assert [name, due, closed, overdue] == [line["name"], line["due_to_close"], line["due_closed"], line["overdue"]]
        assert rate == ("—" if line["on_time_closure_rate"] == "" else f"{float(line['on_time_closure_rate']) * 100:.1f}%")


def test_the_department_table_shows_the_worst_first(server, page):
    """The lowest score on top (the late departments), those with nothing due at the bottom;
    the rule is written above the table."""
    open_review(page, server, **CUSTOM)
    page.wait_for_selector("#review-departments .ag-row")
    shown = page.eval_on_selector_all("#review-departments .ag-center-cols-container .ag-row", """rows => rows
        .map(r => [+r.getAttribute('row-index'), r.querySelector('[col-id="score"]').textContent.trim(), r.querySelector('[col-id="overdue"]').textContent.trim()])
        .sort((a, b) => a[0] - b[0])""")
    assert len(shown) >= 5
    scores = [float(score) for _, score, _ in shown if score != "—"]
    assert scores == sorted(scores) and scores[0] < 100, shown
    assert all(score == "—" for _, score, _ in shown[len(scores):]), shown  # no score: at the end
    assert page.locator("#review-departments").locator("xpath=..").get_by_text(t("departments_worst_first", "zh")).is_visible()


def test_the_category_chart_draws_one_row_per_category(server, page):
    open_review(page, server, **CUSTOM)
    figure = dash_prop(page, "review-categories", "figure")
    bars = figure["data"][1]
    rows_drawn = page.locator("#review-categories .ytick").count()
    assert len(bars["y"]) == 10
    assert rows_drawn == len(bars["y"])


def trend_ticks(page) -> list[str]:
    """The x-axis labels the trend chart draws, left to right."""
    page.wait_for_selector("#review-trend .xtick text")
    return page.eval_on_selector_all("#review-trend .xtick text", "els => els.map(e => [e.getBoundingClientRect().x, e.textContent]).sort((a, b) => a[0] - b[0]).map(p => p[1])")


def window_days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=n)).strftime("%m-%d") for n in range((end - start).days + 1)]


@pytest.mark.parametrize("window", ["custom", "7d", "30d"])
def test_the_trend_shows_exactly_the_windows_days_in_order(server, page, window):
    """Day labels are text on a category axis, not dates plotly places on a time axis (where
    ``11-26`` landed in 2012 and five of seven days vanished)."""
    if window == "custom":
        open_review(page, server, **CUSTOM)
        expected = window_days(date(2026, 11, 20), date(2026, 11, 26))
    else:
        open_review(page, server, window=window)
        last = utc_now().astimezone(TZ).date()
        expected = window_days(last - timedelta(days=int(window[:-1]) - 1), last)
    figure = dash_prop(page, "review-trend", "figure")
    assert figure["layout"]["xaxis"]["type"] == "category"
    assert [list(trace["x"]) for trace in figure["data"]] == [expected] * len(figure["data"])
    ticks = trend_ticks(page)
    if len(expected) <= 7:
        assert ticks == expected
    else:  # plotly leaves out labels where they would overlap, never adds or reorders any
        assert ticks[0] == expected[0] and len(ticks) >= 5
        assert [tick for tick in expected if tick in ticks] == ticks
    assert all(re.fullmatch(r"\d\d-\d\d", tick) for tick in ticks), ticks


def test_todays_trend_shows_the_days_hours_and_stops_at_now(server, page):
    begun_before = utc_now().astimezone(TZ).hour + 1  # the hours that have begun, this one included
    open_review(page, server, window="today")
    figure = dash_prop(page, "review-trend", "figure")
    begun_after = utc_now().astimezone(TZ).hour + 1
    hours = [f"{hour:02d}:00" for hour in range(24)]
    bars = figure["data"][0]
    assert list(bars["x"]) == hours and figure["layout"]["xaxis"]["categoryarray"] == hours
    drawn = [n for n, value in enumerate(bars["y"]) if value is not None]
    assert drawn == list(range(len(drawn))) and begun_before <= len(drawn) <= begun_after
    assert [n for n, value in enumerate(figure["data"][1]["y"]) if value is not None] == drawn  # yesterday up to the same hour
    ticks = trend_ticks(page)
    assert ticks[0] == "00:00" and [hour for hour in hours if hour in ticks] == ticks


def test_the_custom_dates_are_readable(server, page):
    open_review(page, server, **CUSTOM)
    colours = page.evaluate("""() => [...document.querySelectorAll('#review-dates-wrapper input')].map(input => {
        let node = input, background = 'rgba(0, 0, 0, 0)';
        while (node && (background === 'rgba(0, 0, 0, 0)' || background === 'transparent')) { background = getComputedStyle(node).backgroundColor; node = node.parentElement; }
        return [getComputedStyle(input).color, background]; })""")
    assert len(colours) == 2
    for text, background in colours:
        assert contrast(text, background) >= 4.5, (text, background)


def test_the_case_list_shows_whole_case_ids_at_1600_px(server, page):
    open_review(page, server, **CUSTOM)
    page.wait_for_selector("#review-cases .ag-cell[col-id='id']")
    widths = page.eval_on_selector("#review-cases .ag-cell[col-id='id']", "c => [c.scrollWidth, c.clientWidth, c.textContent]")
    assert widths[0] <= widths[1], widths


CUT_CELLS = """grid => [...document.querySelectorAll(grid + ' .ag-cell, ' + grid + ' .ag-header-cell-text')]
    .filter(c => c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1).map(c => c.textContent)"""


SPLIT_WORDS = """grid => [...document.querySelectorAll(grid + ' .ag-header-cell-text')].flatMap(el => {
    const node = el.firstChild; if (!node || node.nodeType !== Node.TEXT_NODE) return [];
    const split = []; let at = 0;
    for (const word of node.textContent.split(' ')) {
        const range = document.createRange(); range.setStart(node, at); range.setEnd(node, at + word.length);
        const chinese = /[\u3400-\u9fff]/.test(word);  // Chinese may wrap between any two characters
        if (!chinese && new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1) split.push(word);
        at += word.length + 1;
    }
    return split; })"""


@pytest.mark.parametrize(("size", "lang"), [((1920, 1080), "en"), ((1366, 768), "en"), ((1920, 1080), "zh")])
def test_no_name_or_header_of_the_review_tables_is_cut(server, page, size, lang):
    """English names are long (``Human Resources and Social Security Bureau``): they wrap between
    words, no header breaks inside a word, no column hides to the right, and a simulator's case id
    of 22 characters stays whole."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_review(page, server, **CUSTOM, lang=lang)
    page.wait_for_selector("#review-cases .ag-cell[col-id='id']")
    page.wait_for_selector("#review-departments .ag-cell[col-id='name']")
    for grid in ("#review-departments", "#review-cases", "#review-ranking"):
        page.locator(grid).scroll_into_view_if_needed()  # as a person reads it: rows that wrap grow once shown
        try:
            page.wait_for_function(f"() => ({CUT_CELLS})('{grid}').length === 0", timeout=10_000)
        except PlaywrightTimeout:
            pass  # the assertion below says what is cut
        assert page.evaluate(f"({CUT_CELLS})('{grid}')") == [], grid
        assert page.evaluate(f"({SPLIT_WORDS})('{grid}')") == [], grid  # "Satisfactio / n"
        sideways = page.eval_on_selector(f"{grid} .ag-center-cols-viewport", "v => v.scrollWidth - v.clientWidth")
        assert sideways <= 1, f"{grid} hides {sideways} px of its columns to the right"
    id_width = page.eval_on_selector("#review-cases .ag-cell[col-id='id']", "c => c.clientWidth")
    assert id_width >= page.evaluate("() => { const s = document.createElement('span'); s.style.font = getComputedStyle(document.querySelector('#review-cases .ag-cell')).font;"
                                     " s.textContent = 'S20261203-50ea7d-00001'; document.body.appendChild(s); const w = s.offsetWidth; s.remove(); return w; }")


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    def luminance(colour: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"[\d.]+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# ---------------------------------------------------------------- the weekly meeting


def test_weekly_tiles_and_both_exports_show_the_weeks_numbers(server, page, tmp_path):
    open_weekly(page, server, f"?week={WEEK}")
    numbers = api(server, **WEEK_API)
    assert numbers["reported"] > 100
    shown = wait_for_tiles(page, ".weekly-tiles", numbers, WEEKLY_TILES)
    assert "统计周期 2026年第47周 2026-11-16 – 2026-11-22 (工作日 5 天) · 对比上周 2026-11-09 – 2026-11-15" in page.inner_text(".weekly-period")

    with page.expect_download() as download:
        page.click("#weekly-xlsx")
    assert download.value.suggested_filename == "weekly-320506-2026-11-16.xlsx"
    download.value.save_as(tmp_path / "weekly_report.xlsx")
    book = openpyxl.load_workbook(tmp_path / "weekly_report.xlsx")
    summary = book[t("sheet_summary", "zh")]
    header = [cell.value for cell in summary[3]]
    assert header[:2] == [t("indicator", "zh"), t("this_week", "zh")]
    in_sheet = {row[0]: row[1] for row in summary.iter_rows(min_row=4, values_only=True) if row[0]}
    for name, raw in shown.items():
        cell = in_sheet[t(name, "zh")]
        assert (raw == "" and cell is None) or float(raw) == pytest.approx(cell, rel=1e-12), name

    with page.expect_download(timeout=60_000) as download:
        page.click("#weekly-pdf")
    assert download.value.suggested_filename == "weekly-320506-2026-11-16.pdf"
    pdf = tmp_path / "weekly_report.pdf"
    download.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(ARTIFACTS / "weekly-export-page1")],
                   check=True, timeout=60)
    assert (ARTIFACTS / "weekly-export-page1.png").stat().st_size > 10_000
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60).stdout
    assert "吴中区" in text and "周例会报告" in text and "2026-11-16 – 2026-11-22" in text
    for name in ("reported", "closed", "closure_rate"):
        assert format_value(name, numbers[name]) in text, name


def test_the_red_and_black_lists_show_each_departments_rank_and_their_rule(server, page, domain_config):
    open_weekly(page, server, f"?week={WEEK}")
    listed = page.eval_on_selector_all(".list-card li[data-dept]", "items => items.map(li => [li.dataset.dept, li.querySelector('.place').innerText])")
    ranks = dict(page.eval_on_selector_all(".weekly-row table tr[data-dept]", "rows => rows.map(r => [r.dataset.dept, r.cells[0].innerText])"))
    assert len(listed) >= 2
    assert all(place == ranks[dept] for dept, place in listed), (listed, ranks)
    rule = page.locator(".red-black-rule")
    assert rule.is_visible() and f"不少于 {domain_config.min_due} 件" in rule.inner_text()


def test_the_worker_ranking_states_its_rule_and_separates_people(server, page):
    open_weekly(page, server, f"?week={WEEK}")
    rule = page.locator(".worker-rule")
    assert rule.is_visible() and "不排名" in rule.inner_text() and "巡查达标率" in rule.inner_text()
    table = page.locator(".worker-rule").locator("xpath=following-sibling::table[1]")
    rows = table.locator("tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    ranked = [row for row in rows if row[0] != "未排名"]
    assert [int(row[0]) for row in ranked] == list(range(1, len(ranked) + 1))
    scores = [float(row[-2]) for row in ranked]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) >= 0.8 * len(scores) and scores[0] - scores[-1] >= 5


def test_weekly_opens_on_the_last_whole_week_and_marks_the_running_one(server, page):
    open_weekly(page, server)
    page.click("#weekly-week")
    options = page.eval_on_selector_all("[role=option]:not(.period-kinds *)", "els => els.map(e => [e.querySelector('input').value, e.innerText.trim()])")
    (running, running_label), (last_week, last_label) = options[0], options[1]
    assert date.fromisoformat(running) - date.fromisoformat(last_week) == timedelta(days=7)
    assert "进行中" in running_label and "进行中" not in last_label
    monday = date.fromisoformat(last_week)
    shown_period = page.inner_text(".weekly-period")
    assert f"{monday:%Y-%m-%d} – {monday + timedelta(days=6):%Y-%m-%d}" in shown_period and "截至" not in shown_period
    numbers = api(server, start=last_week, end=(monday + timedelta(days=7)).isoformat())
    wait_for_tiles(page, ".weekly-tiles", numbers, WEEKLY_TILES)
    # the running week, picked on purpose, says how far it has run
    page.click(f"[role=option]:has(input[value='{running}'])")
    wait_for_query(page, period="week", start=running, area="320506")
    page.wait_for_function("() => document.querySelector('.weekly-period').innerText.includes('截至')", timeout=TIMEOUT_S * 1000)
    running_numbers = api(server, start=running, end=(date.fromisoformat(running) + timedelta(days=7)).isoformat())
    wait_for_tiles(page, ".weekly-tiles", running_numbers, WEEKLY_TILES)


# ---------------------------------------------------------------- four screens, one set of numbers


def stable_api(base: str, read_screens, **params) -> tuple[dict, list]:
    """The API's numbers and the screens' tiles read between two equal API answers (a deadline
    passing in between would change in_progress/overdue of a running window)."""
    for _ in range(3):
        before = api(base, **params)
        screens = read_screens()
        after = api(base, **params)
        if {k: v for k, v in before.items() if k != "asof"} == {k: v for k, v in after.items() if k != "asof"}:
            return after, screens
    raise AssertionError("the API's numbers kept changing")


def test_wall_review_and_api_agree_on_today(server, context, demo_engine, domain_config):
    wall, review = context.new_page(), context.new_page()
    wall.set_viewport_size({"width": 1920, "height": 1080})
    wall.goto(f"{server}/wall", wait_until="domcontentloaded")  # the wall holds a stream open: never network-idle
    wall.wait_for_selector(".wall-tiles [data-kpi='in_progress']", timeout=30_000)
    open_review(review, server, window="today")

    def read_screens():
        review.reload(wait_until="networkidle")
        review.wait_for_selector("#review-tiles [data-kpi]")
        return [tiles(wall, ".wall-tiles"), tiles(review, "#review-tiles")]

    numbers, (on_wall, on_review) = stable_api(server, read_screens)
    local_today = utc_now().astimezone(TZ).date()
    assert numbers["start"] == f"{local_today.isoformat()}T00:00:00+08:00"
    assert set(on_wall) == set(WALL_TILES) and set(on_review) == set(REVIEW_TILES)
    assert numbers["in_progress"] > 0 and numbers["overdue"] > 0  # states at now: the demo's open cases
    assert mismatches(on_wall, numbers) == {}
    assert mismatches(on_review, numbers) == {}
    shared = set(WALL_TILES) & set(REVIEW_TILES)
    assert {"reported", "closed", "in_progress", "overdue", "closure_rate"} <= shared
    assert {name: on_wall[name] for name in shared} == {name: on_review[name] for name in shared}
    # and the same functions run here, outside the server, give them too
    now = utc_now()
    direct = area_reports.area_indicators(demo_engine, domain_config, root_grid(demo_engine), today(TZ, now), CaseFilter(), EVERYTHING).values
    for name in ("reported", "registered", "closed", "in_progress", "overdue", "closure_rate"):
        assert direct[name] == numbers[name], name
    wall.close()
    review.close()


def test_weekly_review_and_api_agree_on_a_closed_week(server, page, context, demo_engine, domain_config):
    open_weekly(page, server, f"?week={WEEK}")
    review = context.new_page()
    open_review(review, server, window="custom", start="2026-11-16", end="2026-11-22")
    numbers = api(server, **WEEK_API)
    on_weekly, on_review = tiles(page, ".weekly-tiles"), tiles(review, "#review-tiles")
    assert mismatches(on_weekly, numbers) == {} and mismatches(on_review, numbers) == {}
    shared = set(WEEKLY_TILES) & set(REVIEW_TILES)
    assert len(shared) >= 9
    assert {name: on_weekly[name] for name in shared} == {name: on_review[name] for name in shared}
    monday = date.fromisoformat(WEEK)
    built = weekly_report.build(demo_engine, domain_config, root_grid(demo_engine), "week", monday, EVERYTHING, utc_now(), {})
    assert mismatches(on_weekly, built.totals) == {}
    assert built.window == week_of(monday, TZ, utc_now())
    review.close()


# ---------------------------------------------------------------- how it looks, and where it reaches


def test_screenshots_at_1600_by_1000(server, page):
    ARTIFACTS.mkdir(exist_ok=True)
    open_review(page, server, **CUSTOM)
    page.wait_for_selector("#review-departments .ag-row")
    page.wait_for_selector("#review-trend .bars, #review-trend .trace")
    assert page.get_attribute(".page-review", "lang") == "zh-CN"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1600  # no sideways scrolling
    for section in ("#review-hot-spots tr", "#review-patrol tr", "#review-cases .ag-row", "#review-categories .bars path"):
        assert page.locator(section).count() > 0, section
    page.screenshot(path=str(ARTIFACTS / "review-1600x1000.png"))

    open_weekly(page, server, f"?week={WEEK}")
    page.wait_for_selector(".red-black li")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1600
    assert "周例会" in page.inner_text("h1")
    page.screenshot(path=str(ARTIFACTS / "weekly-1600x1000.png"))


@pytest.mark.parametrize("width, height", [(1920, 1080), (1366, 768)])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_review_and_its_case_panel_at_desk_and_laptop_sizes(server, context, reworked_case, width, height, lang):
    """What a leader sees at a 1920 desk and a 1366 laptop, in both languages (the screenshots
    go to test-artifacts/ to be looked at): no sideways scrolling, the case panel in view."""
    case_id, day = reworked_case
    page = context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": height})
        open_review(page, server, window="custom", start=day, end=day, case=case_id, **({"lang": lang} if lang != "zh" else {}))
        page.wait_for_selector("#review-timeline.open .stage-table tbody tr")
        page.wait_for_selector("#review-ranking .ag-row")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        panel = page.locator("#review-timeline").bounding_box()
        assert panel["y"] <= 1 and panel["x"] + panel["width"] <= width + 1 and panel["width"] >= min(560, width * 0.4)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"review-case-{lang}-{width}x{height}.png"))
        page.click("#review-close-case")
        page.wait_for_function("() => !document.querySelector('#review-timeline.open')", timeout=TIMEOUT_S * 1000)
        page.locator("#review-cases").scroll_into_view_if_needed()
        page.wait_for_selector("#review-cases .ag-center-cols-container .ag-row")
        page.screenshot(path=str(ARTIFACTS / f"review-{lang}-{width}x{height}.png"), full_page=True)
    finally:
        page.close()


def test_review_and_weekly_reach_nothing_outside_this_machine(server):
    pages = {path for path, _ in REQUESTS}
    assert {"/review", "/weekly"} <= pages
    outside = [(path, url) for path, url in REQUESTS if not is_local(url)]  # the wall's page included
    assert outside == []


def weekly_trend_ticks(page) -> list[str]:
    return page.eval_on_selector_all(".weekly-trend .xtick text", "ticks => ticks.map(t => t.textContent)")


def test_the_assessment_screen_takes_a_month_and_a_quarter_with_twelve_periods_of_trend(server, page):
    """The period switch opens the last whole month; the trend names twelve months in order, the
    last the month shown; a quarter from the URL across the year end and its holidays."""
    now = utc_now()
    open_weekly(page, server)
    assert page.inner_text("#weekly-title") == "周例会"
    weeks = weekly_trend_ticks(page)
    assert len(weeks) == 12 and weeks[-1] == period_name("week", last_complete_period("week", TZ, now), "zh")

    page.click(".period-kinds label:has-text('月度')")
    month = last_complete_period("month", TZ, now)
    wait_for_query(page, period="month", start=month.isoformat(), area="320506")
    page.wait_for_function("() => document.querySelector('#weekly-title').innerText === '月度考核'", timeout=TIMEOUT_S * 1000)
    period_line = page.inner_text(".weekly-period")
    assert f"统计周期 {period_name('month', month, 'zh')} {month.isoformat()} – " in period_line and "对比上月" in period_line
    end = period_shift("month", month, 1)
    wait_for_tiles(page, ".weekly-tiles", api(server, start=month.isoformat(), end=end.isoformat()), WEEKLY_TILES)
    expected = [period_name("month", first, "zh") for first in recent_periods("month", month, 12)]
    page.wait_for_function(f"() => [...document.querySelectorAll('.weekly-trend .xtick text')].map(t => t.textContent).join('|') === {json.dumps('|'.join(expected))}",
                           timeout=TIMEOUT_S * 1000)
    page.click("#weekly-week")
    options = page.eval_on_selector_all("[role=option]:not(.period-kinds *)", "els => els.map(e => [e.querySelector('input').value, e.innerText.trim()])")
    assert options[0][0] == period_shift("month", month, 1).isoformat() and "进行中" in options[0][1]
    assert options[1][0] == month.isoformat() and len(options) == 12
    page.keyboard.press("Escape")
    headers = page.eval_on_selector_all(".weekly-row.even table th", "ths => ths.map(th => th.innerText)")
    assert "本月" in headers and "上月" in headers

    # the first quarter of 2026, from a link: compared with the last quarter of 2025; New Year and Spring Festival off
    open_weekly(page, server, "?period=quarter&start=2026-02-14&lang=en")
    assert page.inner_text("#weekly-title") == "Quarterly assessment"
    period_line = page.inner_text(".weekly-period")
    assert "Quarter 2026 Q1 2026-01-01 – 2026-03-31 (" in period_line and "compared with 2025-10-01 – 2025-12-31" in period_line
    working = int(re.search(r"\((\d+) working days\)", period_line).group(1))
    assert working == 59  # 64 weekdays less New Year (2) and Spring Festival (6), plus 4 January, 14 and 28 February worked
    ticks = weekly_trend_ticks(page)
    assert ticks[-1] == "2026 Q1" and ticks[-5] == "2025 Q1" and ticks[0] == "2023 Q2"
    wait_for_tiles(page, ".weekly-tiles", api(server, start="2026-01-01", end="2026-04-01"), WEEKLY_TILES)


def test_a_wrong_period_is_refused_with_a_notice_and_the_last_whole_week_shown(server, page):
    open_weekly(page, server, "?period=year&start=2026-01-01")
    page.wait_for_function("() => document.querySelector('#app-notice').innerText.includes('不是考核周期')", timeout=TIMEOUT_S * 1000)
    assert page.inner_text("#weekly-title") == "周例会"


def test_the_case_list_exports_the_selections_cases_as_csv_and_xlsx(server, page, tmp_path):
    """Filtered to grade A: the file holds every case of the selection, the same as the API's case
    list and as many as the reported tile says."""
    open_review(page, server, **CUSTOM, grade="A")
    with page.expect_download(timeout=60_000) as download:
        page.click("#review-cases-csv")
    assert download.value.suggested_filename == "cases-320506-20261120.csv"
    path = tmp_path / "cases.csv"
    download.value.save_as(path)
    title, header, *rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert "吴中区" in title[0] and "2026-11-20 – 2026-11-26" in title[0]
    with urlopen(f"{server}/api/cases?{urlencode({**CUSTOM_API, 'grade': 'A', 'limit': 1000})}", timeout=30) as answer:
        listed = json.load(answer)
    assert 0 < len(listed) < 1000
    assert [row[0] for row in rows] == [case["id"] for case in listed]
    assert {row[header.index("等级")] for row in rows} == {"A"}
    assert len(rows) == api(server, **CUSTOM_API, grade="A")["reported"]
    with page.expect_download(timeout=60_000) as download:
        page.click("#review-cases-xlsx")
    assert download.value.suggested_filename == "cases-320506-20261120.xlsx"
    download.value.save_as(tmp_path / "cases.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "cases.xlsx").active
    assert [sheet.cell(row=4 + index, column=1).value for index in range(len(rows))] == [row[0] for row in rows]


def test_a_hot_spot_opens_the_review_of_its_grid_with_its_cases(server, page):
    open_review(page, server, **CUSTOM)
    link = page.locator("#review-hot-spots a.hot-spot-link").first
    name, grid = link.inner_text(), link.evaluate("a => a.closest('tr').dataset.grid")
    link.click()
    wait_for_query(page, area=grid)
    page.wait_for_function("name => document.querySelector('#review-breadcrumb').innerText.includes(name)", arg=name, timeout=TIMEOUT_S * 1000)
    page.locator("#review-cases").scroll_into_view_if_needed()  # as a person would: wrapped rows are laid out once shown
    grid_cells = "[...document.querySelectorAll(`#review-cases .ag-cell[col-id='grid_name']`)]"
    page.wait_for_function(f"name => {grid_cells}.length > 0 && {grid_cells}.every(c => c.innerText === name)", arg=name, timeout=TIMEOUT_S * 1000)
    page.locator("#review-cases .ag-cell[col-id='id']").first.click()
    page.wait_for_selector("#review-timeline.open", timeout=TIMEOUT_S * 1000)
