"""Benchmark: the video wall in headless Chromium against the real server and consumer.

    .venv/bin/python bench/bench_wall.py            # latency, map cost, heap after 5 and 30 minutes
    .venv/bin/python bench/bench_wall.py --quick    # the same, heap after 1 and 6 minutes (< 10 min in all)
    .venv/bin/python bench/bench_wall.py --early 5 --late 60 --events 200

Builds a fresh small demo district (``ensure_demo``, SQLite in a temporary folder) with 5,000
extra grid workers imported from a CSV, starts an embedded Redis, ``python app.py ingest`` and
``python app.py serve``, opens /wall at 1920×1080 and keeps 1,000 GPS pings/s flowing in the
background (every worker pings every 5 s, so all 5,000 are online). Prints three figures and
asserts nothing:

1. Event-to-screen latency, over N ``report`` events XADDed one a second: from the XADD
   (``time.time()`` just before it) to the first moment the case's pin — the Leaflet marker
   element ``.case-pin`` whose ``title`` starts with the case id — is in the page's DOM. The
   map is zoomed to the one grid every report lies in (zoom 16, above the cluster layer's
   maxZoom, so each case is a marker of its own); a MutationObserver stamps ``Date.now()``
   when a pin first appears (same machine clock as the XADD). A fresh report is not an alert
   (the ticker lists due-soon and overdue cases only), so the pin is its row. The time the
   case reaches the Dash store (the ``wall-cases`` layer data) is printed beside it; a report
   whose pin never appears within 15 s of the last XADD counts as lost.
2. The map's update cost with 5,000 workers online, on a fresh wall at the district view: body
   bytes of each response of the wall's refresh callback (``/_dash-update-component`` whose
   outputs include ``wall-delta.data``; its Content-Length), its round trip, the browser's frame
   time (``requestAnimationFrame`` deltas over 10 s) with long tasks, and the CPU of the server
   and the consumer.
3. JS heap: ``performance.memory.usedJSHeapSize`` (Chromium with --enable-precise-memory-info),
   right after a forced garbage collection (median of three readings), of a fresh wall in a
   Chromium of its own driven over a bare DevTools connection (Playwright's Network
   instrumentation keeps every response body, which is not the wall's memory), after
   ``--early`` and ``--late`` minutes of fast refresh: ``--heap-gps-rate`` pings/s published in
   one burst a second (so the wall pulls about once a second and keeps up; at 1,000 pings/s
   it does not), a report every 2 s and the closing of earlier ones; and the growth in
   percent. V8's own used heap size (CDP Runtime.getHeapUsage) is printed beside it, and the
   trail points a worker has on the page: trails hold 10 points, one per ping at this rate,
   and at 50 pings/s over 5,000 workers each pings every 100 s, so the trails are full only
   after about 17 minutes. Heap that grows while they fill is data; growth once they are full
   would be a leak (``--early 20 --late 45`` shows which).

4. Who is nearest (就近调度): as many extra workers as make ``--nearest-online`` (default 10,000)
   online, spread over the district, written straight into the live positions; then the case panel's
   nearest-worker query (``dashboard.nearest.nearest_workers``: the geo index, the online and
   scope checks, the staff lookup) at ``--nearest-queries`` random places, in-process as the
   server runs it; p50/p95 against a full scan of every position for the same answer.

Every phase prints the page's state: how many deltas it has applied, how old the last one is,
and the "stale since" banner if it shows.

Targets (the issue): p95 latency ≤ 1 s; heap growth ≤ 10 %; nearest workers p95 ≤ 50 ms at 10,000 online.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from dashboard import nearest  # noqa: E402
from dashboard.context import current_context  # noqa: E402
from dashboard.settings import DEFAULT_CONFIG_PATH, Settings  # noqa: E402
from data_feeds import live_state  # noqa: E402
from data_feeds.db import make_engine  # noqa: E402
from data_feeds.demo import DemoSize, ensure_demo  # noqa: E402
from data_feeds.embedded_redis import start_embedded_redis  # noqa: E402
from data_feeds.importers.workers import import_workers  # noqa: E402
from data_feeds.keys import Keys  # noqa: E402
from gridrules.access import Principal, Scope  # noqa: E402
from gridrules.clock import utc_now  # noqa: E402
from gridrules.config import load_domain_config  # noqa: E402
from gridrules.coords import gcj02_to_wgs84  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, FIND_LEAFLET_MAP_JS, app_process, chromium, running_server  # noqa: E402

KEYS = Keys("gridops:")
CATEGORY = "E050101"  # grade C, working hours: a fresh report is neither due soon nor overdue
DEMO = DemoSize(communities=24, grids=72, days=5, cases_per_day=240, seed=11)

PIN_WATCH_JS = """() => {
  window.__pinSeen = {}; window.__storeSeen = {};
  new MutationObserver(records => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes) {
      if (node.nodeType !== 1) continue;
      const pins = node.classList && node.classList.contains('case-pin') ? [node] : node.querySelectorAll ? node.querySelectorAll('.case-pin') : [];
      for (const pin of pins) {
        const id = (pin.title || '').split(' ')[0];
        if (id && !(id in window.__pinSeen)) window.__pinSeen[id] = now;
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
  setInterval(() => {
    const state = window.store.getState(); const path = state.paths.strs['wall-cases'];
    let node = state.layout; for (const key of path) node = node[key];
    const now = Date.now();
    for (const f of (node.props.data || {}).features || []) if (!(f.id in window.__storeSeen)) window.__storeSeen[f.id] = now;
  }, 50);
}"""

FRAMES_JS = """(ms) => new Promise(resolve => {
  const deltas = []; const long = [];
  const observer = new PerformanceObserver(list => { for (const e of list.getEntries()) long.push(e.duration); });
  try { observer.observe({entryTypes: ['longtask']}); } catch (e) {}
  let last = performance.now(); const start = last;
  function frame(t) { deltas.push(t - last); last = t; if (t - start < ms) requestAnimationFrame(frame); else { observer.disconnect(); resolve({deltas, long}); } }
  requestAnimationFrame(frame);
})"""

APPLIED_JS = """() => {
  window.__applied = []; let last = null;
  setInterval(() => {
    const s = window.store.getState(); let n = s.layout; for (const k of s.paths.strs['wall-last-ok']) n = n[k];
    if (n.props.data && n.props.data !== last) { last = n.props.data; window.__applied.push(last); }
  }, 100);
}"""

PAGE_STATE_JS = """() => {
  const s = window.store.getState(); let n = s.layout; for (const k of s.paths.strs['wall-last-ok']) n = n[k];
  let w = s.layout; for (const k of s.paths.strs['wall-workers']) w = w[k];
  const workers = (w.props.data || {}).features || [];
  const trail = workers.reduce((sum, f) => sum + ((f.properties || {}).trail || []).length, 0) / Math.max(1, workers.length);
  return {applied: (window.__applied || []).length, age: n.props.data ? (Date.now() - n.props.data) / 1000 : null,
          stale: document.querySelector('#wall-stale').innerText, trail};
}"""

STORE_COUNT_JS = """(id) => { const s = window.store.getState(); let n = s.layout; for (const k of s.paths.strs[id]) n = n[k];
  return ((n.props.data || {}).features || []).length; }"""


def pct(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, int(np.ceil(q / 100 * len(values))) - 1))]  # nearest rank: ∞ stays ∞


def fmt_ms(values) -> str:
    if not len(values):
        return "—"
    return f"p50 {pct(values, 50) * 1000:.0f} ms, p95 {pct(values, 95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


# ------------------------------------------------------------------ set-up


def build_district(folder: Path, workers: int):
    """A fresh small demo (history up to now) plus ``workers`` grid workers; returns the engine,
    the worker ids and their home positions (WGS-84) and the basic grids (code, GCJ-02 centroid)."""
    engine = make_engine(f"sqlite:///{folder / 'grid.db'}", writer=True)
    config = load_domain_config(DEFAULT_CONFIG_PATH, ZoneInfo("Asia/Shanghai"))
    ensure_demo(engine, config, utc_now(), folder, DEMO)
    with engine.connect() as connection:
        grids = connection.execute(text("SELECT code, centroid_lat, centroid_lon FROM grids WHERE level = 4 ORDER BY code")).all()
    staff = folder / "bench-workers.csv"
    lines = ["id,name,grid,role"] + [f"B{n:05d},巡查员{n},{grids[n % len(grids)][0]},worker" for n in range(workers)]
    staff.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"  {import_workers(engine, staff)}")
    lat, lon = gcj02_to_wgs84(np.array([grids[n % len(grids)][1] for n in range(workers)]), np.array([grids[n % len(grids)][2] for n in range(workers)]))
    ids = [f"B{n:05d}" for n in range(workers)]
    return engine, ids, np.asarray(lat, dtype=float), np.asarray(lon, dtype=float), grids


class GpsPublisher(threading.Thread):
    """``rate`` pings/s, round robin over the workers, each a few metres from its last position."""

    def __init__(self, client, workers, lat, lon, rate: int):
        super().__init__(daemon=True)
        self.client, self.workers, self.rate = client, workers, rate
        self.lat, self.lon = lat.copy(), lon.copy()
        self.stop = threading.Event()
        self.sent = 0
        self.rng = np.random.default_rng(7)
        self.index = 0

    def burst(self, count: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        now_ms = str(int(time.time() * 1000))
        for _ in range(count):
            i = self.index % len(self.workers)
            self.index += 1
            self.lat[i] += self.rng.normal(0, 0.00003)
            self.lon[i] += self.rng.normal(0, 0.00003)
            pipe.xadd(KEYS.patrol_gps, {"worker": self.workers[i], "ts": now_ms, "lat": f"{self.lat[i]:.7f}", "lon": f"{self.lon[i]:.7f}",
                                        "speed": "1.1", "heading": f"{self.rng.uniform(0, 360):.0f}", "accuracy": "6"})
        pipe.execute()
        self.sent += count

    tick = 0.1  # seconds between bursts: devices are not synchronised, the feed is continuous

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.burst(max(1, int(self.rate * self.tick)))
            next_at += self.tick
            time.sleep(max(0.0, next_at - time.monotonic()))


def consumer_lag(client) -> str:
    parts = []
    for stream in (KEYS.case_events, KEYS.patrol_gps):
        for group in client.xinfo_groups(stream):
            parts.append(f"{stream.split(':')[-1]} lag {group.get('lag')}, pending {group.get('pending')}")
    return "; ".join(parts)


def report_message(case_id: str, grid, rng, when=None) -> dict:
    code, glat, glon = grid
    lat, lon = gcj02_to_wgs84(glat + rng.normal(0, 0.0002), glon + rng.normal(0, 0.0002))
    ts = (when or utc_now()).isoformat()
    return {"event_id": f"{case_id}-r", "case_id": case_id, "action": "report", "ts": ts, "grid": code, "category": CATEGORY,
            "source": "hotline", "lat": f"{float(lat):.7f}", "lon": f"{float(lon):.7f}"}


def open_wall(browser, base: str):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(base + "/wall", wait_until="domcontentloaded")
    page.wait_for_selector("#wall-board table", timeout=60_000)
    page.wait_for_selector("[data-kpi='reported']")
    page.evaluate(APPLIED_JS)
    page.wait_for_timeout(2000)
    return page


def page_state(page) -> str:
    """How many deltas the page applied since it opened, how old the last is, and the stale banner."""
    state = page.evaluate(PAGE_STATE_JS)
    age = "—" if state["age"] is None else f"{state['age']:.1f} s"
    return (f"deltas applied so far {state['applied']}, last one {age} ago, {state['trail']:.1f} trail points a worker"
            + (f", banner '{state['stale']}'" if state["stale"] else ""))


def child_pid(pattern: str) -> int | None:
    """The pid of this process's child whose command line contains ``pattern``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and pattern in command:
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ phases


def zoom_to_grid(page, grid) -> None:
    assert page.evaluate(FIND_LEAFLET_MAP_JS, "#wall-map")
    page.evaluate("([lat, lon]) => { window.__leafletMaps['#wall-map'].setView([lat, lon], 16, {animate: false}); }", [grid[1], grid[2]])
    page.evaluate(PIN_WATCH_JS)
    page.wait_for_timeout(1000)


def latency_phase(page, client, grids, events: int, spacing_s: float, tag: str) -> None:
    grid = grids[len(grids) // 2]
    rng = np.random.default_rng(3)
    sent: dict[str, float] = {}
    run = int(time.time())
    for n in range(events):
        case_id = f"B{tag}{run % 100000:05d}{n:04d}"
        message = report_message(case_id, grid, rng)
        sent[case_id] = time.time()
        client.xadd(KEYS.case_events, message)
        time.sleep(spacing_s)
    page.wait_for_timeout(15_000)
    pins = page.evaluate("() => window.__pinSeen")
    store = page.evaluate("() => window.__storeSeen")
    pin_latency = [(pins[c] / 1000 - t) for c, t in sent.items() if c in pins]
    store_latency = [(store[c] / 1000 - t) for c, t in sent.items() if c in store]
    lost = [c for c in sent if c not in pins]
    print(f"  XADD → pin in the DOM ({len(pin_latency)} of {events} arrived): {fmt_ms(pin_latency)}")
    print(f"  XADD → case in the Dash store: {fmt_ms(store_latency)}")
    print(f"  lost (no pin 15 s after the last XADD): {len(lost)} of {events}" + (f", e.g. {lost[:3]}" if lost else ""))
    if lost:
        in_live = sum(1 for c in lost if client.hexists(KEYS.open_cases, c))
        print(f"    of the lost, {in_live} are open cases in the live state (applied by the consumer, missing on the screen)")
    print(f"  page: {page_state(page)}")
    everything = pin_latency + [float("inf")] * len(lost)
    print(f"  p50 / p95 over all {events} (lost = ∞): {pct(everything, 50):.2f} s / {pct(everything, 95):.2f} s   (target p95 ≤ 1 s)")


def map_cost_phase(browser, base: str, seconds: int) -> None:
    """A fresh wall at the district view: frame timing in the page while the refresh responses
    are logged (Playwright pumps its events while it waits for the evaluation, so their times
    are real)."""
    page = open_wall(browser, base)
    log = attach_refresh_log(page)
    page.wait_for_timeout(3000)
    log.clear()
    server, consumer = child_pid("app.py serve"), child_pid("app.py ingest")
    cpu_before = (cpu_seconds(server), cpu_seconds(consumer), time.monotonic())
    frames = page.evaluate(FRAMES_JS, seconds * 1000)
    elapsed = time.monotonic() - cpu_before[2]
    cpu = ((cpu_seconds(server) - cpu_before[0]) / elapsed * 100, (cpu_seconds(consumer) - cpu_before[1]) / elapsed * 100)
    done = [entry for entry in log if "bytes" in entry]
    sizes = [entry["bytes"] for entry in done]
    trips = [entry["trip"] for entry in done]
    deltas = frames["deltas"][1:]
    workers = page.evaluate(STORE_COUNT_JS, "wall-workers")
    trails = page.evaluate(STORE_COUNT_JS, "wall-trails")
    print(f"  on the map: {workers} worker markers, {trails} trails")
    print(f"  refresh requests in {seconds} s: {len(log)}, answered: {len(done)}; body bytes per update p50 {pct(sizes, 50) / 1024:.0f} KiB, "
          f"p95 {pct(sizes, 95) / 1024:.0f} KiB, max {max(sizes, default=0) / 1024:.0f} KiB; {sum(sizes) / seconds / 1024:.0f} KiB/s into the page")
    print(f"  refresh round trip: {fmt_ms(trips)}")
    print(f"  frame time over {seconds} s: {len(deltas)} frames, p50 {pct(deltas, 50):.1f} ms, p95 {pct(deltas, 95):.1f} ms, "
          f"max {max(deltas, default=0):.0f} ms; long tasks {len(frames['long'])} ({sum(frames['long']):.0f} ms in all)")
    print(f"  CPU: server {cpu[0]:.0f} %, consumer {cpu[1]:.0f} % (of one core; {os.cpu_count()} cores)")
    print(f"  page: {page_state(page)}")
    page.close()


class KioskPage:
    """The wall in a Chromium of its own, driven over a bare DevTools connection.

    Playwright enables DevTools' Network domain, which keeps every response body (up to
    100 MB) for the inspector: under fast refresh that alone "grows" the heap. A wall's
    kiosk browser has no inspector attached, so the heap is measured the same way: only
    Runtime, HeapProfiler and Performance are used, never Network.
    """

    def __init__(self, url: str):
        import websocket  # websocket-client: the DevTools protocol without Playwright's instrumentation

        self.profile = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", *CHROMIUM_ARGS, "--enable-precise-memory-info", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--window-size=1920,1080", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            target = next(t for t in json.load(answer) if t["type"] == "page")
        self.socket = websocket.create_connection(target["webSocketDebuggerUrl"], suppress_origin=True, timeout=120)
        self.next_id = 0
        self.send("Performance.enable")

    def send(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, function_js: str):
        result = self.send("Runtime.evaluate", {"expression": f"({function_js})()", "returnByValue": True, "awaitPromise": True})
        return result["result"].get("value")

    def wait_for(self, function_js: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(function_js):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the wall did not get ready: {function_js}")
            time.sleep(0.25)

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def heap_mb(page: KioskPage, samples: int = 3) -> tuple[float, float, str]:
    """usedJSHeapSize in MB right after a forced GC: the median of ``samples`` readings 2 s apart
    (the wall allocates in bursts; one reading can land in one); V8's own used size beside it,
    and the DOM's size (nodes and event listeners) and what lives outside V8's heap."""
    readings, v8 = [], []
    for n in range(samples):
        if n:
            time.sleep(2)
        page.send("HeapProfiler.collectGarbage")
        readings.append(page.evaluate("() => performance.memory.usedJSHeapSize") / 1e6)
        v8.append(page.send("Runtime.getHeapUsage")["usedSize"] / 1e6)
    metrics = {m["name"]: m["value"] for m in page.send("Performance.getMetrics")["metrics"]}
    usage = page.send("Runtime.getHeapUsage")
    history = page.evaluate("() => window.store.getState().history.past.length")
    dom = (f"{int(metrics.get('Nodes', 0)):,} DOM nodes, {int(metrics.get('JSEventListeners', 0)):,} listeners, "
           f"Blink heap {usage.get('embedderHeapUsedSize', 0) / 1e6:.1f} MB, array buffers and external strings "
           f"{usage.get('backingStorageSize', 0) / 1e6:.1f} MB, {history:,} Dash history entries")
    return statistics.median(readings), statistics.median(v8), dom


def heap_phase(base: str, client, grids, early_min: float, late_min: float) -> None:
    page = KioskPage(base + "/wall")
    try:
        page.wait_for("() => !!document.querySelector('#wall-board table') && !!window.store")
        page.evaluate(APPLIED_JS)
        time.sleep(2)
        _heap_samples(page, client, grids, early_min, late_min)
    finally:
        page.close()


def _heap_samples(page: KioskPage, client, grids, early_min: float, late_min: float) -> None:
    rng = np.random.default_rng(5)
    opened = time.monotonic()
    samples = {}
    start_heap = heap_mb(page)
    print(f"  at open: usedJSHeapSize {start_heap[0]:.1f} MB after GC (V8 used {start_heap[1]:.1f} MB; {start_heap[2]})")
    open_cases: list[str] = []
    n = 0
    for label, minutes in (("early", early_min), ("late", late_min)):
        while time.monotonic() - opened < minutes * 60:
            case_id = f"BH{int(opened) % 100000:05d}{n:05d}"
            n += 1
            grid = grids[n % len(grids)]
            client.xadd(KEYS.case_events, report_message(case_id, grid, rng))
            open_cases.append(case_id)
            if len(open_cases) > 20:  # keep the map's case count steady: close the oldest
                old = open_cases.pop(0)
                client.xadd(KEYS.case_events, {"event_id": f"{old}-c", "case_id": old, "action": "close", "ts": utc_now().isoformat()})
            time.sleep(2)
        samples[label] = heap_mb(page)
        print(f"  after {minutes:g} min: usedJSHeapSize {samples[label][0]:.1f} MB after GC (V8 used {samples[label][1]:.1f} MB; {samples[label][2]}); "
              f"{page_state(page)}; {consumer_lag(client)}")
    early, late = samples["early"][0], samples["late"][0]
    print(f"  heap growth {early_min:g} → {late_min:g} min: {(late - early) / early * 100:+.1f} %   (target ≤ 10 %); "
          f"V8 used {(samples['late'][1] - samples['early'][1]) / samples['early'][1] * 100:+.1f} %")


def attach_refresh_log(page) -> list:
    """Every request of the wall's refresh callback: its start, and once answered its body bytes
    (Content-Length) and round trip."""
    log: list = []
    pending: dict = {}

    def sent(request):
        if "_dash-update-component" in request.url and "wall-delta.data" in (request.post_data or ""):
            entry = {"start": time.monotonic()}
            log.append(entry)
            pending[id(request)] = (request, entry)

    def answered(response):
        item = pending.pop(id(response.request), None)
        if item:
            item[1].update(bytes=int(response.headers.get("content-length") or 0), trip=time.monotonic() - item[1]["start"])

    page.on("request", sent)
    page.on("response", answered)
    return log


# ------------------------------------------------------------------ main


def nearest_phase(env: dict, client, grids, online_target: int, queries: int) -> None:
    """The nearest-worker query of the case panel at ``queries`` random places, with as many more
    workers online as make ``online_target`` (written into the live positions as the consumer writes them)."""
    workers = max(0, online_target - client.zcount(KEYS.workers_seen, time.time() - 600, "+inf"))
    rng = np.random.default_rng(5)
    homes = rng.integers(0, len(grids), workers)
    frame = pd.DataFrame({
        "worker": [f"N{n:06d}" for n in range(workers)], "ts": pd.Timestamp.now(tz="UTC").tz_localize(None),
        "lat": [grids[h][1] + rng.normal(0, 0.004) for h in homes], "lon": [grids[h][2] + rng.normal(0, 0.004) for h in homes],
        "grid": [grids[h][0] for h in homes], "speed": 1.1, "heading": 90.0,
    })
    pipe = client.pipeline(transaction=False)
    live_state.record_positions(pipe, KEYS, frame)
    pipe.execute()
    online = client.zcount(KEYS.workers_seen, time.time() - 600, "+inf")
    app = create_app(Settings.from_env(env))
    operator = Principal("bench", "operator", Scope())
    places = [(grids[g][1] + rng.normal(0, 0.004), grids[g][2] + rng.normal(0, 0.004), grids[g][0]) for g in rng.integers(0, len(grids), queries)]
    indexed, scanned = [], []
    with app.server.test_request_context():
        ctx = current_context()
        for lat, lon, grid in places:
            started = time.perf_counter()
            found = nearest.nearest_workers(ctx, operator, {"lat": lat, "lon": lon, "grid": grid}, utc_now(), "zh")
            indexed.append(time.perf_counter() - started)
        for lat, lon, _ in places[: max(1, queries // 10)]:
            started = time.perf_counter()  # the same question by reading every position
            everyone = live_state.worker_positions(ctx.redis, KEYS, utc_now(), ctx.config.offline_after_minutes)
            sorted((math_distance(lat, lon, p["lat"], p["lon"]), p["worker"]) for p in everyone if p["online"])[:5]
            scanned.append(time.perf_counter() - started)
    print(f"  online workers: {online:,}; {queries} queries, {len(found)} workers listed for the last one")
    print(f"  nearest workers (geo index): {fmt_ms(indexed)}   (target p95 ≤ 50 ms)")
    print(f"  the same by scanning every position: {fmt_ms(scanned)}; ratio of medians {statistics.median(scanned) / statistics.median(indexed):.0f}×")


def math_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres (haversine)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return float(2 * 6_371_008.8 * np.arcsin(np.sqrt(a)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="heap after 1 and 6 minutes instead of 5 and 30")
    parser.add_argument("--early", type=float, help="minutes of the first heap sample (default 5, quick 1)")
    parser.add_argument("--late", type=float, help="minutes of the second heap sample (default 30, quick 6)")
    parser.add_argument("--events", type=int, default=100, help="reports timed one by one (default 100)")
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between two timed reports (default 1)")
    parser.add_argument("--workers", type=int, default=5000, help="grid workers online (default 5000)")
    parser.add_argument("--gps-rate", type=int, default=1000, help="GPS pings per second behind the latency and map figures (default 1000)")
    parser.add_argument("--heap-gps-rate", type=int, default=50,
                        help="GPS pings per second during the heap run, published once a second so the wall refreshes about once a second (default 50)")
    parser.add_argument("--phases", default="latency,map,heap,nearest", help="which figures to measure (default latency,map,heap,nearest)")
    parser.add_argument("--nearest-online", type=int, default=10_000, help="workers online for the nearest-worker figure (default 10000)")
    parser.add_argument("--nearest-queries", type=int, default=500, help="nearest-worker queries timed (default 500)")
    parser.add_argument("--frames", type=int, default=10, help="seconds of frame timing (default 10)")
    parser.add_argument("--baseline", type=int, default=20, help="reports timed first with no GPS traffic, for comparison (default 20; 0: none)")
    args = parser.parse_args()
    early = args.early or (1 if args.quick else 5)
    late = args.late or (6 if args.quick else 30)

    folder = Path(tempfile.mkdtemp(prefix="bench-wall-"))
    began = time.monotonic()
    print(f"district: small demo {DEMO} in {folder}, {args.workers} workers; {args.gps_rate} GPS pings/s")
    engine, workers, lat, lon, grids = build_district(folder, args.workers)
    redis_server, redis_url = start_embedded_redis(folder)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    env = {"DATABASE_URL": f"sqlite:///{folder / 'grid.db'}", "REDIS_URL": redis_url, "GRIDOPS_SIMULATE": "0", "GRIDOPS_AUTH": "off",
           "GRIDOPS_VAR_DIR": str(folder / "var")}
    gps = GpsPublisher(client, workers, lat, lon, args.gps_rate)
    try:
        with app_process(["ingest", "--consumer", "bench"], env, folder / "ingest.log"), running_server(env, log_path=folder / "server.log") as base:
            print(f"  set-up {time.monotonic() - began:.0f} s; server {base}, logs in {folder}")
            gps.burst(len(workers))  # everyone online from the start
            time.sleep(3)
            phases = set(args.phases.split(","))
            if phases & {"latency", "map", "heap"}:
                with chromium(("--enable-precise-memory-info",)) as browser:
                    page = open_wall(browser, base)
                    zoom_to_grid(page, grids[len(grids) // 2])
                    if args.baseline and "latency" in phases:
                        print(f"\n0. baseline: {args.baseline} reports {args.spacing:g} s apart, no GPS traffic")
                        latency_phase(page, client, grids, args.baseline, args.spacing, "Q")
                    gps.start()
                    page.wait_for_timeout(5000)
                    if "latency" in phases:
                        print(f"\n1. event → screen latency, {args.events} reports {args.spacing:g} s apart, {args.gps_rate} pings/s behind")
                        print(f"  consumer: {consumer_lag(client)}")
                        latency_phase(page, client, grids, args.events, args.spacing, "L")
                        print(f"  consumer: {consumer_lag(client)}; GPS published so far {gps.sent:,}")
                    page.close()
                    if "map" in phases:
                        print(f"\n2. map update cost, {args.workers} workers online, {args.gps_rate} pings/s: a fresh wall, 3 s after it opened")
                        map_cost_phase(browser, base, args.frames)
                    if "heap" in phases:
                        gps.rate, gps.tick = args.heap_gps_rate, 1.0
                        print(f"\n3. JS heap of a fresh wall after {early:g} and {late:g} minutes of fast refresh "
                              f"({args.heap_gps_rate} pings/s in one burst a second, a report every 2 s)")
                        heap_phase(base, client, grids, early, late)
            if "nearest" in phases:
                print(f"\n4. who is nearest: {args.nearest_online:,} workers online, the case panel's query at {args.nearest_queries} places")
                nearest_phase(env, client, grids, args.nearest_online, args.nearest_queries)
            gps.stop.set()
            if gps.is_alive():
                gps.join(timeout=5)
            print(f"\nGPS pings published: {gps.sent:,}; consumed: {client.hget(KEYS.feed_metrics, 'consumed:gps')}; "
                  f"dead letters: {client.xlen(KEYS.dead_letter)}; total {time.monotonic() - began:.0f} s")
    finally:
        gps.stop.set()
        client.close()
        redis_server.shutdown()
        engine.dispose()


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, also into a log file
    main()
