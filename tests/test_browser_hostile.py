"""Hostile text through the real feeds and importers, on every screen, in headless Chromium
(stored XSS: no text a feed or an import file carries may run as script).

Every free-text field of the case stream (description, reporter, contact, actor) carries a
hostile string, and so does every name an import file gives (grids, classes, departments,
workers); hostile ids and codes in either stream must end as dead letters. Then an operator
and an admin open every screen — the login page, the start page (hovering grids), the wall
(hovering and clicking the hostile pins, clicking a worker) and its kiosk view, the review
(hovering towns, the hostile cases' timelines, unmasking their contacts), the weekly
meeting, the administration and the audit log — and download the exports. No dialog may open, the Content-Security-Policy
(dashboard/headers.py) may not be violated, and the hostile text shows as text.

One consumer and one server (sign-in on) for the module, on the small demo district (SQLite
only: the data layer is tested on both databases elsewhere).
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from datetime import timedelta
from urllib.parse import quote

import openpyxl
import pytest
import redis as redis_lib
from shapely.geometry import shape
from sqlalchemy import func, select

from data_feeds import accounts, schema
from data_feeds.feed_contract import MAX_TEXT_CHARS
from data_feeds.importers.catalogue import import_catalogue
from data_feeds.importers.departments import import_departments
from data_feeds.importers.grids import import_grids
from data_feeds.importers.workers import import_workers
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from tests.browser import FIND_LEAFLET_MAP_JS, app_process, chromium, dash_prop, running_server
from tests.feed_support import basic_grids, case_event, gps_ping, publish_case_events, publish_pings, report, wgs84_of
from tests.support import HOSTILE_TEXTS, LONG_NAME, PACKAGE_DATA

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("demo_engine", ["sqlite"], indirect=True)]

LONG = LONG_NAME
HOSTILE = HOSTILE_TEXTS
MARKUP = [text for text in HOSTILE if "<" in text]  # what a browser would run or draw, were it parsed
HOSTILE_USER = "<svg/onload=alert(1)>"  # a user name may hold no spaces, but markup
CGJ = "CGJ"
WEEK = "2026-11-16"  # a closed week of the demo's history
PASSWORD = "hostile-pass-42"
OPERATOR, ADMIN = "h-operator", "h-admin"
TIMEOUT_S = 30
CASE_IDS = [f"XSS-{n}" for n in range(len(HOSTILE))]

# Every CSP violation, reported from the page to the test.
REPORT_VIOLATIONS_JS = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__gridopsViolation({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
                             source: e.sourceFile, line: e.lineNumber, page: location.href});
});
"""


def name_for(n: int, limit: int = 120) -> str:
    return HOSTILE[n % len(HOSTILE)][:limit]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hostile_names(demo_engine, tmp_path_factory) -> dict:
    """Every grid, class, department and worker renamed to a hostile text, through the importers."""
    folder = tmp_path_factory.mktemp("imports")
    with demo_engine.connect() as connection:
        grids = connection.execute(select(schema.grids).order_by(schema.grids.c.level, schema.grids.c.code)).mappings().all()
        departments = connection.execute(select(schema.departments).order_by(schema.departments.c.code)).mappings().all()
        workers = connection.execute(select(schema.workers).order_by(schema.workers.c.id)).mappings().all()
    names: dict = {"grids": {}, "departments": {}, "workers": {}, "categories": {}, "detail_class": {}}

    features = []
    for n, grid in enumerate(grids):
        names["grids"][grid["code"]] = name_for(n)
        features.append({"type": "Feature", "geometry": json.loads(grid["geometry"]), "properties": {
            "code": grid["code"], "name": name_for(n), "parent": grid["parent"] or "", "level": grid["level"],
            "households": grid["households"], "population": grid["population"]}})
    (folder / "grids.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8")
    import_grids(demo_engine, folder / "grids.geojson")

    with (folder / "departments.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "name", "name_en"])
        for n, department in enumerate(departments):
            names["departments"][department["code"]] = name_for(n + 3)
            writer.writerow([department["code"], name_for(n + 3), name_for(n + 3)])
    import_departments(demo_engine, folder / "departments.csv")

    with (PACKAGE_DATA / "catalogue.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (folder / "catalogue.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for n, row in enumerate(rows):
            names["categories"][row["code"]] = name_for(n + 5)
            if row["dept"]:  # a detail class, which a report names: one (code, grade) for each hostile name
                names["detail_class"].setdefault(name_for(n + 5), (row["code"], row["grade"]))
            writer.writerow({**row, "name": name_for(n + 5), **({"name_en": name_for(n + 5)} if "name_en" in row else {})})
    import_catalogue(demo_engine, folder / "catalogue.csv")

    with (folder / "workers.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "grid", "role", "phone"])
        for n, worker in enumerate(workers):
            names["workers"][worker["id"]] = name_for(n + 7, limit=80)
            writer.writerow([worker["id"], name_for(n + 7, limit=80), worker["grid"], worker["role"], worker["phone"] or ""])
    import_workers(demo_engine, folder / "workers.csv")

    for name, role in ((OPERATOR, "operator"), (ADMIN, "admin"), (HOSTILE_USER, "operator")):
        if accounts.get_user(demo_engine, name) is None:
            accounts.create_user(demo_engine, name, role, PASSWORD, actor="test")
    return names


@pytest.fixture(scope="module")
def env(demo_engine, hostile_names, redis_base_url, redis_db) -> dict:
    url = f"{redis_base_url}/{redis_db}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()  # no cached names of another module's database
    client.close()
    return {"DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "REDIS_URL": url, "GRIDOPS_SIMULATE": "0", "GRIDOPS_AUTH": "on"}


@pytest.fixture(scope="module")
def feed(env, demo_engine, hostile_names, tmp_path_factory) -> dict:
    """The consumer running, the hostile messages published through the streams and consumed."""
    client = redis_lib.Redis.from_url(env["REDIS_URL"], decode_responses=True)
    keys = Keys()
    with app_process(["ingest", "--consumer", "hostile-test"], env, tmp_path_factory.mktemp("ingest") / "ingest.log") as consumer:
        with demo_engine.connect() as connection:
            open_cases = connection.execute(select(func.count()).select_from(schema.cases).where(schema.cases.c.is_open.is_(True))).scalar()
        wait_until(lambda: client.hlen(keys.open_cases) >= open_cases, "the consumer did not rebuild the live state", consumer)
        grids = basic_grids(demo_engine)
        published = publish_hostile(client, grids, hostile_names["detail_class"])
        wait_until(lambda: set(published["bad"]) <= {(entry["dlq_stream"], entry["dlq_id"]) for _, entry in client.xrange(keys.dead_letter)},
                   "not every hostile id became a dead letter", consumer)
        wait_until(lambda: cases_dispatched(demo_engine) == len(CASE_IDS), "the hostile cases were not applied", consumer)
        wait_until(lambda: client.hget(keys.workers, published["worker"]["worker"]) is not None, "the worker's pings were not applied", consumer)
        yield {"client": client, "grids": grids, **published}
    client.close()


@pytest.fixture(scope="module")
def server(env, feed, tmp_path_factory):
    with running_server(env, log_path=tmp_path_factory.mktemp("hostile") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


class Watch:
    """What must not happen in a browser context: a dialog, a CSP violation, a page error, a
    page without the policy. Each dialog is dismissed (and recorded)."""

    def __init__(self, browser):
        self.dialogs, self.violations, self.errors, self.unprotected = [], [], [], []
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
        self.context.expose_function("__gridopsViolation", lambda violation: self.violations.append(violation))
        self.context.add_init_script(REPORT_VIOLATIONS_JS)
        self.context.on("page", self._watch_page)
        self.context.on("response", self._check_document)

    def _watch_page(self, page) -> None:
        page.on("dialog", lambda dialog: (self.dialogs.append(f"{page.url}: {dialog.type} {dialog.message}"), dialog.dismiss()))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        # Chromium also says it on the console (a violation in a worker has no event on the page)
        page.on("console", lambda message: self.violations.append(message.text) if "Content Security Policy" in message.text else None)

    def _check_document(self, response) -> None:
        if response.request.resource_type == "document" and "content-security-policy" not in response.headers:
            self.unprotected.append(response.url)

    def new_page(self):
        return self.context.new_page()

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.violations == [], self.violations
        assert self.errors == [], self.errors
        assert self.unprotected == [], self.unprotected


@pytest.fixture
def watch(browser):
    watched = Watch(browser)
    yield watched
    watched.context.close()


# ---------------------------------------------------------------- helpers


def wait_until(condition, message: str, process=None, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process is None or process.poll() is None, f"{message}: the process exited"
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def cases_dispatched(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(schema.cases).where(
            schema.cases.c.id.in_(CASE_IDS), schema.cases.c.status == "dispatched")).scalar()


def publish_hostile(client, grids: list[dict], detail_class: dict) -> dict:
    """The hostile cases (hostile free text, each of a class named with its text) and a worker's
    pings, and messages with a hostile id or code in each field; returns the stream ids of the
    latter with the field poisoned."""
    start = utc_now() - timedelta(minutes=10)  # long enough ago that no pin is still flashing
    messages = []
    for n, text in enumerate(HOSTILE):
        description = (text * 20)[:2000] if text == LONG else text  # as long as the contract allows
        messages += [
            report(CASE_IDS[n], start, grids[2 * n], category=detail_class[text][0], description=description,
                   reporter=text[: MAX_TEXT_CHARS["reporter"]], contact=text[: MAX_TEXT_CHARS["contact"]], actor=text),
            case_event(CASE_IDS[n], "register", start + timedelta(minutes=1), actor=text),
            case_event(CASE_IDS[n], "dispatch", start + timedelta(minutes=2), dept=CGJ, actor=text),
        ]
    publish_case_events(client, messages)
    worker = grids[1]
    lat, lon = wgs84_of(worker)
    publish_pings(client, [gps_ping(worker["worker"], utc_now() - timedelta(seconds=s), lat + s * 1e-6, lon) for s in (30, 20, 10)])

    keys = Keys()
    bad: dict[tuple[str, str], str] = {}  # (stream, id) → the field that carries the hostile id or code (two streams may give the same id)
    base_time = start + timedelta(minutes=3)
    for n, text in enumerate(t for t in HOSTILE if t != LONG):  # LONG is letters only: a valid id
        reports = {
            "event_id": report(f"BAD-{n}-e", base_time, grids[30], event_id=text),
            "case_id": report(text, base_time, grids[30]),
            "grid": {**report(f"BAD-{n}-g", base_time, grids[30]), "grid": text},
            "category": report(f"BAD-{n}-c", base_time, grids[30], category=text),
            "worker": report(f"BAD-{n}-w", base_time, grids[30], worker=text),
            "dept": case_event(CASE_IDS[0], "dispatch", base_time, dept=text),
        }
        for field, message in reports.items():
            bad[(keys.case_events, client.xadd(keys.case_events, message))] = field
        bad[(keys.patrol_gps, client.xadd(keys.patrol_gps, gps_ping(text, utc_now(), lat, lon)))] = "worker"
    return {"bad": bad, "worker": worker}


def leaflet_map(page, selector: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not page.evaluate(FIND_LEAFLET_MAP_JS, selector):
        assert time.monotonic() < deadline, f"the Leaflet map behind {selector} was not found"
        page.wait_for_timeout(100)


def set_view(page, selector: str, lat: float, lon: float, zoom: float) -> None:
    leaflet_map(page, selector)
    page.evaluate("([s, lat, lon, z]) => { window.__leafletMaps[s].setView([lat, lon], z, {animate: false}); }", [selector, lat, lon, zoom])


def screen_point(page, selector: str, lat: float, lon: float) -> tuple[float, float]:
    x, y = page.evaluate("([s, lat, lon]) => { const p = window.__leafletMaps[s].latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
                         [selector, lat, lon])
    box = page.locator(selector).bounding_box()
    assert 0 < x < box["width"] and 0 < y < box["height"], (x, y, box)
    return box["x"] + x, box["y"] + y


def inside_points(geometry: dict):
    """(lat, lon) of points inside a polygon: a representative point, then towards each corner."""
    polygon = shape(geometry)
    middle = polygon.representative_point()
    yield middle.y, middle.x
    corners = polygon.exterior.coords if polygon.geom_type == "Polygon" else max(polygon.geoms, key=lambda g: g.area).exterior.coords
    for fraction in (0.3, 0.6):
        for x, y in corners:
            candidate = type(middle)(middle.x + fraction * (x - middle.x), middle.y + fraction * (y - middle.y))
            if polygon.contains(candidate):
                yield candidate.y, candidate.x


def free_point(page, selector: str, geometry: dict, accept: str) -> tuple[float, float]:
    """A screen point inside ``geometry`` where the topmost element matches ``accept`` (no pin in the way)."""
    for lat, lon in inside_points(geometry):
        x, y = screen_point(page, selector, lat, lon)
        if page.evaluate("([x, y, accept]) => { const e = document.elementFromPoint(x, y); return !!e && e.matches(accept); }", [x, y, accept]):
            return x, y
    raise AssertionError(f"no free point inside the polygon on {selector}")


def tooltip_lines(page, expected_first_line: str) -> list[str]:
    """The lines of the open tooltip that starts with ``expected_first_line``; each a text node in a <div>."""
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('.leaflet-tooltip')].some(t => t.innerText.split('\\n')[0] === text)",
        arg=expected_first_line, timeout=TIMEOUT_S * 1000)
    shape_of = page.evaluate("""(text) => {
      const tip = [...document.querySelectorAll('.leaflet-tooltip')].find(t => t.innerText.split('\\n')[0] === text);
      return {tags: [...tip.querySelectorAll('*')].map(e => e.tagName), lines: [...tip.firstElementChild.children].map(e => e.textContent)};
    }""", expected_first_line)
    # built from text: a box of one <div> per line, no element from the text
    assert set(shape_of["tags"]) == {"DIV"}, shape_of
    return shape_of["lines"]


def worker_position(page, worker: str) -> tuple[float, float]:
    """(lat, lon) of a worker's marker as the wall holds it."""
    features = (dash_prop(page, "wall-workers", "data") or {}).get("features", [])
    lon, lat = next(f["geometry"]["coordinates"] for f in features if f["id"] == worker)
    return lat, lon


def grid_geometry(engine, code: str) -> dict:
    with engine.connect() as connection:
        return json.loads(connection.execute(select(schema.grids.c.geometry).where(schema.grids.c.code == code)).scalar_one())


def sign_in(watch: Watch, base: str, name: str):
    page = watch.new_page()
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-kpi='reported']", timeout=TIMEOUT_S * 1000)
    return page


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text(timeout=TIMEOUT_S * 1000)


# ---------------------------------------------------------------- the feeds


def test_hostile_ids_and_codes_end_as_dead_letters(feed, demo_engine):
    letters = {(entry["dlq_stream"], entry["dlq_id"]): entry for _, entry in feed["client"].xrange(Keys().dead_letter)}
    for stream_and_id, field in feed["bad"].items():
        letter = letters[stream_and_id]
        assert (letter["dlq_reason"], letter["dlq_field"]) == ("bad_identifier", field), letter
    with demo_engine.connect() as connection:
        ids = connection.execute(select(schema.cases.c.id)).scalars().all()
        actors = set(connection.execute(select(schema.case_events.c.actor).where(schema.case_events.c.case_id.in_(CASE_IDS))).scalars())
    assert not any(char in case_id for case_id in ids for char in "<>\"'(){}= ")
    assert actors == {text[:80] for text in HOSTILE}  # free text kept as it came (an actor's first 80 characters)


# ---------------------------------------------------------------- the screens


def test_the_policy_stops_injected_script_and_the_watch_sees_it(server, watch):
    """Were markup ever injected, the browser would refuse to run it, and these tests would know."""
    page = watch.new_page()
    page.goto(f"{server}/login", wait_until="domcontentloaded")
    page.evaluate("""() => {
      document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__ran = 1">');
      const script = document.createElement('script');
      script.textContent = 'window.__ran = 2';
      document.body.appendChild(script);
    }""")
    deadline = time.monotonic() + TIMEOUT_S
    while len(watch.violations) < 2:
        assert time.monotonic() < deadline, watch.violations
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.__ran") is None
    assert {v["directive"] for v in watch.violations if isinstance(v, dict)} >= {"script-src-attr", "script-src-elem"}


def test_the_login_page_shows_hostile_input_as_text(server, watch):
    page = watch.new_page()
    target = '/"><script>alert(1)</script>'
    response = page.goto(f"{server}/login?next={quote(target)}", wait_until="domcontentloaded")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.input_value("input[name=next]") == target
    for text in HOSTILE[:2]:
        page.fill("#name", text)
        page.fill("#password", "wrong-password-1")
        page.click("button[type=submit]")
        page.wait_for_selector(".error")
        assert page.input_value("#name") == text
    watch.assert_clean()


def test_the_start_page_shows_hostile_grid_names_as_text(server, watch, feed, hostile_names, demo_engine):
    page = sign_in(watch, server, OPERATOR)
    for text in MARKUP:  # hover a grid of each name that would run or draw, were it parsed
        grid = next(g for g in feed["grids"] if hostile_names["grids"][g["code"]] == text)
        set_view(page, "#home-map", grid["lat"], grid["lon"], 15)
        page.mouse.move(*free_point(page, "#home-map", grid_geometry(demo_engine, grid["code"]), "path.leaflet-interactive"))
        lines = tooltip_lines(page, text)
        assert len(lines) == 2, lines
    assert text_of(page, "h1 .area-name") == next(iter(hostile_names["grids"].values()))  # the district's name
    watch.assert_clean()


def open_wall(watch: Watch, base: str, query: str = ""):
    page = sign_in(watch, base, OPERATOR)
    page.goto(f"{base}/wall{query}", wait_until="domcontentloaded")
    page.wait_for_selector("#wall-board table", timeout=TIMEOUT_S * 1000)
    return page


def test_the_wall_shows_hostile_pins_and_workers_as_text(server, watch, feed, hostile_names, demo_engine):
    page = open_wall(watch, server)
    for n, case_id in enumerate(CASE_IDS):
        grid = feed["grids"][2 * n]
        label = f"{case_id} · {HOSTILE[n]} · {hostile_names['detail_class'][HOSTILE[n]][1]}"  # id, class, grade
        set_view(page, "#wall-map", grid["lat"], grid["lon"], 16)  # single pins from zoom 15 on
        pin = page.locator(f".leaflet-marker-icon.case-pin[title^='{case_id} ']")
        pin.wait_for(timeout=TIMEOUT_S * 1000)
        assert pin.get_attribute("title") == label
        pin.hover()
        assert tooltip_lines(page, label) == [label]
        pin.click()
    # a worker (an arrow on the workers' canvas, above everything): a click shows who it is,
    # the hostile name as text
    worker = feed["worker"]
    position = worker_position(page, worker["worker"])
    set_view(page, "#wall-map", *position, 16)
    page.mouse.click(*screen_point(page, "#wall-map", *position))
    panel = page.locator(f"#wall-grid-info .worker-facts[data-worker='{worker['worker']}']")
    panel.wait_for(timeout=TIMEOUT_S * 1000)
    assert hostile_names["workers"][worker["worker"]] in text_of(page, "#wall-grid-info .info-title")
    # the dispatch board names the (hostile) departments as text
    board = text_of(page, "#wall-board")
    assert hostile_names["departments"][CGJ] in board
    watch.assert_clean()


def test_the_kiosk_wall_runs_under_the_policy(server, watch, feed):
    page = open_wall(watch, server, "?kiosk=1")
    grid = feed["grids"][0]
    set_view(page, "#wall-map", grid["lat"], grid["lon"], 16)
    page.locator(f".leaflet-marker-icon.case-pin[title^='{CASE_IDS[0]} ']").wait_for(timeout=TIMEOUT_S * 1000)
    watch.assert_clean()


def select_case(page, case_id: str) -> None:
    rows = dash_prop(page, "review-cases", "rowData")
    index = next(i for i, row in enumerate(rows) if row["id"] == case_id)
    page.evaluate("(i) => dash_ag_grid.getApi('review-cases').ensureIndexVisible(i, 'middle')", index)
    page.locator(f"#review-cases .ag-center-cols-container .ag-row[row-index='{index}'] .ag-cell").first.click()
    page.wait_for_function("(id) => document.querySelector('#review-timeline h3') && document.querySelector('#review-timeline h3').innerText.startsWith(id + ' ')",
                           arg=case_id, timeout=TIMEOUT_S * 1000)


def test_the_review_shows_hostile_cases_as_text_and_unmasks_them(server, watch, feed, hostile_names, tmp_path):
    page = sign_in(watch, server, OPERATOR)
    page.goto(f"{server}/review", wait_until="networkidle")
    page.wait_for_selector("#review-map path.leaflet-interactive", timeout=TIMEOUT_S * 1000)
    # the map's areas (towns) by their hostile names
    leaflet_map(page, "#review-map")
    towns = [f for f in dash_prop(page, "review-areas", "data")["features"] if f["properties"]["name"] in MARKUP]
    assert towns
    for town in towns:
        page.mouse.move(*free_point(page, "#review-map", town["geometry"], "path.leaflet-interactive"))
        lines = tooltip_lines(page, hostile_names["grids"][town["properties"]["code"]])
        now_shown = {f["properties"]["code"]: f["properties"] for f in dash_prop(page, "review-areas", "data")["features"]}  # cases keep arriving
        assert lines[1] == f"上报数 {now_shown[town['properties']['code']]['reported']}", lines
    page.mouse.move(0, 0)
    # every hostile case: its timeline, then its reporter and contact unmasked
    page.wait_for_function("(n) => (document.querySelectorAll('#review-cases .ag-row') || []).length >= n", arg=1, timeout=TIMEOUT_S * 1000)
    for case_id, text in zip(CASE_IDS, HOSTILE):
        select_case(page, case_id)
        description = (text * 20)[:2000] if text == LONG else text
        assert text_of(page, "#review-timeline .description") == description
        actors = page.eval_on_selector_all("#review-timeline table.timeline tbody tr", "rows => rows.map(r => r.querySelectorAll('td')[2].textContent)")
        assert actors == [text[:80]] * 3
        masked = text_of(page, "#review-personal")  # an operator sees the reporter masked until unmasking
        page.click("#review-unmask")
        # reporter and contact both in full (a contact without digits was never masked)
        # (each as long as the contract allows: the contact, the shorter, is also the start of the reporter)
        reporter, contact = text[: MAX_TEXT_CHARS["reporter"]], text[: MAX_TEXT_CHARS["contact"]]
        page.wait_for_function("([r, c]) => { const t = document.querySelector('#review-personal').textContent; return t.includes(r) && t.split(c).length >= 3; }",
                               arg=[reporter, contact], timeout=TIMEOUT_S * 1000)
        unmasked = text_of(page, "#review-personal")
        assert unmasked != masked and reporter in unmasked and unmasked.count(contact) >= 2, (masked, unmasked)  # as they came
    page.click("#review-close-case")  # the case panel lies over the page's right side
    page.wait_for_function("() => !document.querySelector('#review-timeline.open')", timeout=TIMEOUT_S * 1000)
    # the department table's CSV: the hostile names as text, none a formula
    with page.expect_download(timeout=TIMEOUT_S * 1000) as download:
        page.click("#review-export")
    path = tmp_path / "departments.csv"
    download.value.save_as(path)
    names = [line[0] for line in list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))[1:]]
    assert names and set(names) <= {("'" + name) if name.startswith("=") else name for name in hostile_names["departments"].values()}
    watch.assert_clean()


def test_the_weekly_meeting_and_its_exports_show_hostile_names_as_text(server, watch, hostile_names, tmp_path):
    page = sign_in(watch, server, OPERATOR)
    page.goto(f"{server}/weekly?week={WEEK}", wait_until="networkidle")
    page.wait_for_selector(".weekly-tiles [data-kpi]", timeout=TIMEOUT_S * 1000)
    body = text_of(page, "#weekly-body")
    shown = [text for text in HOSTILE if text in body]
    assert len(shown) >= len(HOSTILE) - 1, shown  # department, class, grid and worker names, as written
    with page.expect_download(timeout=TIMEOUT_S * 1000) as download:
        page.click("#weekly-xlsx")
    download.value.save_as(tmp_path / "weekly.xlsx")
    book = openpyxl.load_workbook(tmp_path / "weekly.xlsx")
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert [cell.coordinate for cell in cells if cell.data_type == "f"] == []
    values = {cell.value for cell in cells}
    assert '=HYPERLINK("http://x")' in values and "<img src=x onerror=alert(1)>" in values
    with page.expect_download(timeout=120_000) as download:
        page.click("#weekly-pdf")
    download.value.save_as(tmp_path / "weekly.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "weekly.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "<img src=x onerror=alert(1)>" in text and "{{7*7}}" in text
    watch.assert_clean()


def test_administration_and_the_audit_log_show_hostile_names_as_text(server, watch, hostile_names):
    # a failed sign-in with a hostile name: anyone may put that into the audit log
    page = watch.new_page()
    page.goto(server + "/login", wait_until="domcontentloaded")
    page.fill("#name", HOSTILE[0])
    page.fill("#password", "wrong-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    page = sign_in(watch, server, ADMIN)
    page.goto(f"{server}/admin", wait_until="networkidle")
    page.wait_for_selector("#admin-users table", timeout=TIMEOUT_S * 1000)
    assert HOSTILE_USER in text_of(page, "#admin-users")
    page.click("#admin-new-dept")
    page.wait_for_selector("[role=option]", timeout=TIMEOUT_S * 1000)
    options = page.eval_on_selector_all("[role=option]", "options => options.map(o => o.textContent)")
    assert f"{hostile_names['departments'][CGJ]} ({CGJ})" in options
    page.keyboard.press("Escape")
    page.goto(f"{server}/admin/audit", wait_until="networkidle")
    page.wait_for_selector("#admin-audit-results table", timeout=TIMEOUT_S * 1000)
    page.fill("#admin-audit-text", HOSTILE[0])
    page.keyboard.press("Enter")
    page.wait_for_function("(text) => [...document.querySelectorAll('#admin-audit-results td')].some(td => td.textContent === text)",
                           arg=HOSTILE[0], timeout=TIMEOUT_S * 1000)
    watch.assert_clean()
