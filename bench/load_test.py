"""Load test: many walls and review desks at once against the README's gunicorn command, with Locust.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/load_test.py                               # 50, 100, 200 viewers, 10 minutes each
    .venv/bin/python bench/load_test.py --quick                       # 10 viewers for 1 minute (smoke)
    .venv/bin/python bench/load_test.py --viewers 20,40 --minutes 3

It sets up everything itself and takes it all down at the end, on Ctrl-C too:

* a fresh PostgreSQL schema on 127.0.0.1:5432 (user postgres, database ``test``) with the demo
  district (``ensure_demo``: the full 900-grid demo; ``--demo small`` or ``--quick``: the tests'
  72 grids), dropped afterwards;
* Redis: ``REDIS_URL`` when set, else a free database of redis://127.0.0.1:6379 (claimed with
  the tests' lock key), flushed before and after;
* ``python app.py ingest --consumer load``, ``python app.py simulate`` (real time) and the
  dashboard under gunicorn with exactly the options of the README's "Serving" command,
  ``GRIDOPS_AUTH=off`` and ``GRIDOPS_MAX_STREAMS`` large (every viewer is the same signed-out
  operator); each in a process group of its own, ended as a group.

Patrol GPS, most of a wall's traffic, flows only on the district's patrol rounds (from about
08:30 and 14:30 local time). So that it flows whatever the hour, every process runs with
``GRIDOPS_TZ`` set to the whole-hour UTC offset that puts the start at about 08:55 local time,
in the morning round (``--tz Asia/Shanghai`` keeps the real zone: at night, no GPS).

Two kinds of Locust users, 1 wall for 3 review desks (FastHttpUser, in this process):

* a wall renders ``/wall?kiosk=1`` through the Dash router callback, holds one
  ``/stream/changes`` open in a greenlet of its own and, on each change signal, does what
  assets/wall.js does: POSTs the wall's pull callback (``callbacks/wall.py`` ``refresh``) with
  its cursor and takes the new cursor from the answer, one pull in flight at a time (signals
  heard meanwhile become one pull after it); and the page's 10-second fallback poll;
* a review desk renders ``/review`` through the router, then, a human 5 to 15 s apart,
  drills down and changes window and filters (the review's ``follow_url`` callback, as the
  page does when its URL changes), asks ``/api/indicators`` for a town, window and filter,
  lists ``/api/cases?limit=50`` and opens one ``/api/cases/ID``, or renders a fresh
  ``/review?...`` (a shared link).

Phases: idle (no viewer, the simulator running; 30 s), walls only (the largest level's walls
alone, 2 minutes: the cost of a wall), then each level of ``--viewers`` for ``--minutes``. Users
ramp up at 5 a second and warm up for 30 s before the measured minutes (a wall's page and stream,
opened once, are timed in the ramp-up). For each phase it prints, per kind of request, count,
rate, p50/p95/p99, mean body size and errors (a refused or dropped stream, a 503 from a busy
server, a timeout); the CPU of the server (gunicorn master and workers, utime+stime deltas from
/proc, % of one core) and its RSS (MB, sum); the CPU per wall above idle; and for context the
consumer's, the simulator's and this load generator's own CPU (on two cores it competes with
the server: above ~90 % its own queueing adds to the latencies), the GPS rate and the change
signals per wall a second (a wall pulls once per signal). Then a table of all levels.
``--quick``: idle 15 s, walls only 30 s, warm-up 10 s, one level of 10 viewers for 1 minute.

Targets, checked at the end (exit 1 when one fails): p95 ≤ 1 s for every kind at 200 viewers
(the largest level when 200 is not run), no errors, and CPU per added wall < 1 % of a core
(walls-only phase against idle).
"""
# ruff: noqa: E402
from __future__ import annotations

# Locust runs its users as greenlets: the standard library must be patched before anything
# (http.client, ssl, redis-py's sockets) is imported, or those would block every user at once.
from gevent import monkey

monkey.patch_all()

import argparse
import itertools
import json
import logging
import math
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import gevent
import gevent.event
import redis
from locust import FastHttpUser, between, constant, task
from locust.env import Environment
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.settings import DEFAULT_CONFIG_PATH
from data_feeds.db import make_engine
from data_feeds.demo import DemoSize, ensure_demo
from data_feeds.embedded_redis import free_port
from data_feeds.keys import Keys
from data_feeds.parent_death import stop_with_parent
from gridrules.clock import utc_now
from gridrules.config import load_domain_config
from gridrules.lifecycle import GRADES, SOURCES
from gridrules.selection import Selection
from layouts import ids

PROJECT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MACHINE_REDIS = "redis://127.0.0.1:6379"
SMALL_DEMO = DemoSize(communities=24, grids=72, days=5, cases_per_day=240, seed=11)  # the tests' district
KEYS = Keys("gridops:")
ROUND_TARGET_MINUTE = 8 * 60 + 55  # local time to start at: most workers of the morning round (08:10–08:50 start, 63–108 min) walk from here on
SPAWN_RATE = 5.0  # users started a second: walls open their heavy page one after another, as a control room switches on
PULL_FALLBACK_S = 10.0  # layouts/wall.py PULL_FALLBACK_MS: the wall's poll, whatever the stream says
STREAM_RETRY_S = 3.0  # the stream's "retry: 3000": how long a browser waits before it reconnects after an error
REVIEW_THINK_S = (5.0, 15.0)  # a leader reads a screen before the next click
SAMPLE_S = 5.0  # how often memory is sampled during a measurement
P95_TARGET_S = 1.0
CPU_PER_WALL_TARGET = 1.0  # % of one core
TARGET_VIEWERS = 200
KINDS = ("wall page", "wall stream", "wall stream drop", "wall pull", "review page", "review follow", "api indicators", "api cases", "api case")


def say(line: str = "") -> None:
    print(line, flush=True)


# ------------------------------------------------------------------ what the users share


@dataclass
class Site:
    """What the users need to know of the server, filled in once it runs."""

    callbacks: dict = field(default_factory=dict)  # name -> the callback's entry in /_dash-dependencies
    district: str = ""
    towns: list = field(default_factory=list)
    communities: list = field(default_factory=list)
    departments: list = field(default_factory=list)
    today: date | None = None
    signals: int = 0  # change signals the walls heard while measuring
    measuring: bool = False


SITE = Site()
SEEDS = itertools.count(1)  # each user its own random stream: a rerun asks the same questions


def callback_body(name: str, values: dict, changed: str) -> dict:
    """The body dash-renderer posts to /_dash-update-component for callback ``name``
    (tests/dash_support.py ``callback_body``, built from the server's own dependency list),
    with the inputs and states taken from ``values`` ("id.property" -> value)."""
    spec = SITE.callbacks[name]
    output = spec["output"]
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]} for part in output.strip(".").split("...")]

    def item(dependency: dict) -> dict:
        return {"id": dependency["id"], "property": dependency["property"], "value": values.get(f"{dependency['id']}.{dependency['property']}")}

    # Dash sends a single output as an object, several as a list.
    return {"output": output, "outputs": outputs if output.startswith("..") else outputs[0],
            "inputs": [item(d) for d in spec["inputs"]], "state": [item(d) for d in spec["state"]], "changedPropIds": [changed]}


def find_prop(node, component_id: str, prop: str):
    """A prop of the component ``component_id`` anywhere in a rendered Dash layout (None if absent)."""
    if isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict) and props.get("id") == component_id:
            return props.get(prop)
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_prop(child, component_id, prop)
        if found is not None:
            return found
    return None


def rendered(response) -> dict | None:
    """The JSON of a callback's answer, or None (and the request counted as failed)."""
    if response.status_code != 200:
        return None  # already a failure (non-2xx) or a PreventUpdate (204)
    try:
        return response.json()
    except ValueError as error:
        response.failure(f"not JSON: {error}")
        return None


def render_page(user: FastHttpUser, path: str, search: str, name: str) -> dict | None:
    """The page the router callback renders for ``path?search`` (what a browser opening the URL gets)."""
    body = callback_body("router", {f"{ids.App.URL}.pathname": path, f"{ids.App.URL}.search": search}, f"{ids.App.URL}.pathname")
    with user.client.post("/_dash-update-component", json=body, name=name, catch_response=True) as response:
        answer = rendered(response)
        if answer is None:
            return None
        page = ((answer.get("response") or {}).get(ids.App.PAGE) or {}).get("children")
        if page is None:
            response.failure("the answer holds no page")
        return page


def api_window(rng: random.Random) -> dict:
    """start/end of an API request: today, the last 7 or 30 days, or a few days in the history."""
    today = SITE.today
    days = rng.choice([(0, 1), (6, 1), (29, 1), (rng.randint(3, 4), -1)])
    return {"start": (today - timedelta(days=days[0])).isoformat(), "end": (today + timedelta(days=days[1])).isoformat()}


def a_filter(rng: random.Random) -> dict:
    """No filter half the time, else one of grade, source or department."""
    kind = rng.choice(["none", "none", "none", "grade", "source", "dept"])
    if kind == "grade":
        return {"grade": rng.choice(GRADES)}
    if kind == "source":
        return {"source": rng.choice(SOURCES)}
    if kind == "dept":
        return {"dept": rng.choice(SITE.departments)}
    return {}


def a_selection(rng: random.Random) -> Selection:
    """A review URL as a leader makes it: an area at some depth, a window, maybe a filter."""
    area = rng.choices([SITE.district, rng.choice(SITE.towns), rng.choice(SITE.communities)], weights=[2, 5, 3])[0]
    window = rng.choices(["today", "7d", "30d", "custom"], weights=[4, 3, 2, 1])[0]
    start = end = None
    if window == "custom":
        first = SITE.today - timedelta(days=rng.randint(3, 4))
        start, end = first.isoformat(), (first + timedelta(days=2)).isoformat()
    return Selection(area=area, window=window, start=start, end=end, **a_filter(rng))


# ------------------------------------------------------------------ the users


class WallUser(FastHttpUser):
    """One video wall: its page once, its change stream always open, a pull per signal and every 10 s."""

    wait_time = constant(0)  # the task itself waits for the next signal or poll

    def on_start(self) -> None:
        self.signalled = gevent.event.Event()
        self.message = None
        self.state = self.cursor = None
        self.polls = 0
        self.next_poll = time.monotonic() + PULL_FALLBACK_S
        self.stream = None

    def on_stop(self) -> None:
        if self.stream is not None:
            self.stream.kill(block=False)

    def open_page(self) -> None:
        page = render_page(self, "/wall", "?kiosk=1", "wall page")
        if page is None:
            gevent.sleep(STREAM_RETRY_S)  # the page's own retry after an unavailable answer
            return
        self.state = find_prop(page, ids.Wall.STATE, "data")
        self.cursor = find_prop(page, ids.Wall.CURSOR, "data")
        self.stream = gevent.spawn(self.listen, find_prop(page, ids.Wall.STREAM, "url"))
        self.pull(f"{ids.Wall.SCALE}.data")  # the page measures its width once open: the first pull

    @task
    def follow(self) -> None:
        if self.state is None:
            self.open_page()
            return
        if self.signalled.wait(max(0.0, self.next_poll - time.monotonic())):
            self.signalled.clear()  # signals heard during the pull below become one pull after it
            self.pull(f"{ids.Wall.SIGNAL}.data")
        else:
            self.polls += 1
            self.next_poll += PULL_FALLBACK_S
            self.pull(f"{ids.Wall.PULL}.n_intervals")

    def pull(self, changed: str) -> None:
        values = {f"{ids.Wall.SIGNAL}.data": self.message, f"{ids.Wall.PULL}.n_intervals": self.polls or None,
                  f"{ids.Wall.VIEW}.data": {"index": 0}, f"{ids.Wall.SCALE}.data": 1,
                  f"{ids.Wall.STATE}.data": self.state, f"{ids.Wall.CURSOR}.data": self.cursor}
        with self.client.post("/_dash-update-component", json=callback_body("wall pull", values, changed), name="wall pull", catch_response=True) as response:
            answer = rendered(response)
            cursor = ((answer or {}).get("response") or {}).get(ids.Wall.CURSOR, {}).get("data")
            if cursor is not None:  # an outage answers the feed's state alone: the cursor stays
                self.cursor = cursor

    def listen(self, path: str) -> None:
        """The wall's change stream: each ``seq`` message is a signal; reconnect when it ends (the
        server recycles streams), a few seconds after an error as EventSource does."""
        host = urlsplit(self.host)
        while True:
            began, started = time.perf_counter(), time.time()
            connection = HTTPConnection(host.hostname, host.port, timeout=30)  # a heartbeat comes every 5 s
            error, connected = None, False
            try:
                connection.request("GET", path, headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"})
                response = connection.getresponse()
                if response.status != 200:
                    error = HTTPException(f"HTTP {response.status}: {response.read(200).decode(errors='replace')}")
                self.stream_event("wall stream", (time.perf_counter() - began) * 1000, started, path, error)
                connected = error is None
                if connected:
                    for line in response:
                        if line.startswith(b"data: ") and b'"seq"' in line:
                            self.message = line[6:].decode().strip()
                            self.signalled.set()
                            if SITE.measuring:
                                SITE.signals += 1
                    continue  # the stream ended as it does every 10 minutes: a new one at once
            except (OSError, HTTPException) as broken:
                # Refused or not answered: a failed open. Broken once open (a timeout between
                # heartbeats, a reset): a drop, whose "time" would only be how long it lived.
                if connected:
                    self.stream_event("wall stream drop", 0.0, started, path, broken)
                else:
                    self.stream_event("wall stream", (time.perf_counter() - began) * 1000, started, path, broken)
            finally:
                connection.close()
            gevent.sleep(STREAM_RETRY_S)

    def stream_event(self, name: str, response_time_ms: float, started: float, path: str, error: Exception | None) -> None:
        """The stream as one request (its time: until its headers), so its refusals and drops count as errors."""
        self.environment.events.request.fire(request_type="GET", name=name, response_time=response_time_ms, response_length=0,
                                             response=None, context={}, exception=error, start_time=started, url=path)


class ReviewUser(FastHttpUser):
    """A leader at the situational review, clicking every 5 to 15 s."""

    wait_time = between(*REVIEW_THINK_S)

    def on_start(self) -> None:
        self.rng = random.Random(next(SEEDS))
        self.state = None
        self.search = ""

    def open_review(self) -> None:
        self.search = a_selection(self.rng).search()
        page = render_page(self, "/review", self.search, "review page")
        self.state = find_prop(page, ids.Review.STATE, "data") if page is not None else None

    @task(1)
    def shared_link(self) -> None:
        self.open_review()

    @task(4)
    def change_selection(self) -> None:
        """Drill down, another window, a filter: the URL changes and every panel follows it."""
        if self.state is None:
            self.open_review()
            return
        self.search = a_selection(self.rng).search()
        values = {f"{ids.App.URL}.search": self.search, f"{ids.App.URL}.pathname": "/review", f"{ids.Review.STATE}.data": self.state}
        with self.client.post("/_dash-update-component", json=callback_body("review follow", values, f"{ids.App.URL}.search"),
                              name="review follow", catch_response=True) as response:
            answer = rendered(response)
            state = ((answer or {}).get("response") or {}).get(ids.Review.STATE, {}).get("data")
            if state is not None:
                self.state = state

    @task(2)
    def indicators(self) -> None:
        area = self.rng.choices([SITE.district, self.rng.choice(SITE.towns)], weights=[1, 4])[0]
        query = {"area": area, **api_window(self.rng), **a_filter(self.rng)}
        self.client.get(f"/api/indicators?{urlencode(query)}", name="api indicators")

    @task(2)
    def cases(self) -> None:
        query = {"area": self.rng.choice(SITE.towns), **api_window(self.rng), "limit": 50}
        with self.client.get(f"/api/cases?{urlencode(query)}", name="api cases", catch_response=True) as response:
            listed = rendered(response) or []
        if listed:
            case_id = self.rng.choice(listed)["id"]
            self.client.get(f"/api/cases/{case_id}", name="api case")


# ------------------------------------------------------------------ measuring


class Recorder:
    """Every request's time, size and outcome by kind during a phase: its ramp-up and warm-up
    ("ramp": a wall opens its page and its stream there, once) apart from its measured minutes."""

    def __init__(self) -> None:
        self.begin()

    def begin(self) -> None:
        self.stage: str | None = "ramp"
        self.times: dict[str, dict[str, list[float]]] = {"ramp": defaultdict(list), "measure": defaultdict(list)}
        self.bytes: Counter = Counter()  # measured only
        self.failures: Counter = Counter()  # ramp-up and measured: an error is an error
        self.errors: Counter = Counter()  # (kind, what went wrong)

    def __call__(self, name: str, response_time: float, response_length: int = 0, exception: BaseException | None = None, **_ignored) -> None:
        if self.stage is None:
            return
        self.times[self.stage][name].append(response_time / 1000)
        if self.stage == "measure":
            self.bytes[name] += response_length or 0
        if exception is not None:
            self.failures[name] += 1
            self.errors[(name, str(exception)[:90])] += 1


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * q / 100) - 1))]


def proc_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces): state is [0], pgrp [2], utime [11], stime [12], rss [21]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_pids(pgid: int) -> list[int]:
    """Every live process of a process group (gunicorn's master and the workers it forked)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_fields(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        fields = proc_fields(pid)
        if fields:
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def rss_mb(pids: list[int]) -> float:
    pages = sum(int(fields[21]) for fields in map(proc_fields, pids) if fields)
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_percent(before: dict[int, int], after: dict[int, int], seconds: float) -> float:
    """% of one core between two readings; a process born in between counts from 0 (a worker
    that died in between loses its last ticks: ``run_phase`` says so)."""
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    return ticks / os.sysconf("SC_CLK_TCK") / seconds * 100


@dataclass
class Result:
    name: str
    viewers: int
    walls: int
    reviewers: int
    seconds: float
    times: dict  # kind -> seconds of each request in the measured minutes
    ramp_times: dict  # kind -> the same during ramp-up and warm-up
    bytes: Counter
    failures: Counter
    errors: Counter
    cpu: dict  # "server", "consumer", "simulator", "load generator" -> % of one core
    rss_mb: float
    rss_peak_mb: float
    signals: int
    gps_per_s: float
    notes: list

    def errors_total(self) -> int:
        return sum(self.failures.values())

    def shown(self, kind: str) -> tuple[list[float], bool]:
        """The times of a kind: the measured ones, else (a wall's page and stream, opened once) the ramp-up's; and whether those."""
        if self.times.get(kind):
            return self.times[kind], False
        return self.ramp_times.get(kind, []), True


# ------------------------------------------------------------------ processes and set-up


class Child:
    """A command in a process group of its own (so that it ends with everything it started),
    which the kernel also stops if this process is killed (``stop_with_parent``)."""

    def __init__(self, name: str, argv: list[str], env: dict, logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, *argv], cwd=PROJECT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=stop_with_parent)
        self.pgid = self.process.pid

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM to the whole group (each process finishes what it has in hand), SIGKILL to what is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout_s
            while group_pids(self.pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not group_pids(self.pgid):
                break
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()

    def tail(self, lines: int = 10) -> str:
        try:
            return "\n".join("    " + line for line in self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def readme_gunicorn_options() -> list[str]:
    """The options of the README's "Serving" command without its address and application
    (tests/test_gunicorn.py parses it the same way)."""
    command = re.search(r"`(gunicorn -k [^`]+)`", (PROJECT / "README.md").read_text()).group(1)
    options, words = [], iter(shlex.split(command)[1:])
    for word in words:
        if word == "-b":
            next(words)  # the address: ours is a free loopback port
        elif word != "wsgi:server":
            options.append(word)
    return options


def pick_zone(arg: str) -> str:
    """``--tz``, or the whole-hour UTC offset that puts now plus the set-up at about ROUND_TARGET_MINUTE local."""
    if arg != "auto":
        ZoneInfo(arg)
        return arg
    start = utc_now() + timedelta(minutes=2)
    offset = round((ROUND_TARGET_MINUTE - (start.hour * 60 + start.minute)) / 60) % 24
    if offset > 14:
        offset -= 24  # Etc/GMT zones run from UTC−12 to UTC+14
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX sign: Etc/GMT-7 is UTC+7


def get_json(url: str, timeout_s: float = 10):
    with urlopen(url, timeout=timeout_s) as answer:
        return json.load(answer)


def wait_for(condition, timeout_s: float, what: str, children: list[Child]) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        for child in children:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode} while waiting for {what}:\n{child.tail()}")
        try:
            if condition():
                return
        except (OSError, URLError, ValueError, KeyError, redis.RedisError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout_s:.0f} s")
        time.sleep(0.5)


class Bench:
    """Everything the load test starts, so that ``close`` can take it all down whatever happened."""

    def __init__(self, args):
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="gridops-load-"))
        self.logs = self.folder / "logs"
        self.logs.mkdir()
        self.schema = f"load_{uuid.uuid4().hex[:10]}"
        self.admin = None  # the engine that made the schema
        self.redis = None
        self.redis_lock = None  # (client of db 0, lock key) when we claimed a database
        self.children: dict[str, Child] = {}
        self.env = None  # Locust's Environment
        self.recorder = Recorder()
        self.idle: Result | None = None  # the idle phase: the server's CPU without viewers

    # ---------------------------------------------------------- set-up

    def set_up(self) -> None:
        began = time.monotonic()
        self.tz_name = pick_zone(self.args.tz)
        tz = ZoneInfo(self.tz_name)
        size = SMALL_DEMO if self.args.demo == "small" else DemoSize()
        self.admin = create_engine(PG_URL)
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        database_url = f"{PG_URL}?options=-csearch_path%3D{self.schema}"
        engine = make_engine(database_url, writer=True)
        try:
            ensure_demo(engine, load_domain_config(DEFAULT_CONFIG_PATH, tz), utc_now(), self.folder / "var", size)
            with engine.connect() as connection:
                areas = connection.execute(text("SELECT code, level FROM grids WHERE level <= 3 ORDER BY code")).all()
                SITE.departments = [row[0] for row in connection.execute(text("SELECT code FROM departments ORDER BY code"))]
                cases = connection.execute(text("SELECT count(*) FROM cases")).scalar()
        finally:
            engine.dispose()
        SITE.district = next(code for code, level in areas if level == 1)
        SITE.towns = [code for code, level in areas if level == 2]
        SITE.communities = [code for code, level in areas if level == 3]
        SITE.today = datetime.now(tz).date()
        say(f"  demo district in schema {self.schema}: {len(SITE.towns)} towns, {len(SITE.communities)} communities, {size.grids} basic grids, "
            f"{cases:,} cases ({time.monotonic() - began:.0f} s); GRIDOPS_TZ={self.tz_name} (local time now {datetime.now(tz):%H:%M})")

        redis_url = self.claim_redis()
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.redis.flushdb()
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {key: value for key, value in os.environ.items()
               if key not in ("REDIS_SENTINELS", "REDIS_MASTER_NAME", "GRIDOPS_PREFIX", "DATABASE_READ_URL", "GRIDOPS_CONFIG")}
        env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "GRIDOPS_TZ": self.tz_name, "GRIDOPS_AUTH": "off",
                    "GRIDOPS_MAX_STREAMS": "100000", "GRIDOPS_SIMULATE": "0", "GRIDOPS_VAR_DIR": str(self.folder / "var"), "PYTHONUNBUFFERED": "1"})
        options = readme_gunicorn_options()
        self.children["consumer"] = Child("consumer", ["app.py", "ingest", "--consumer", "load"], env, self.logs)
        self.children["server"] = Child("server", ["-m", "gunicorn", *options, "-b", f"127.0.0.1:{port}", "wsgi:server"], env, self.logs)
        children = list(self.children.values())
        wait_for(lambda: get_json(f"{self.base}/healthz", 2)["feed"]["consumers_alive"] >= 1, 180, "answer from /healthz with the consumer alive", children)
        self.children["simulator"] = Child("simulator", ["app.py", "simulate", "--seed", "1"], env, self.logs)
        dependencies = get_json(f"{self.base}/_dash-dependencies")
        for name, fragment in (("router", f"{ids.App.PAGE}.children"), ("wall pull", f"{ids.Wall.DELTA}.data"),
                               ("review follow", f"{ids.Review.BREADCRUMB}.children")):
            SITE.callbacks[name] = next(d for d in dependencies if fragment in d["output"] and not d.get("clientside_function"))
        workers = len(group_pids(self.children["server"].pgid)) - 1
        say(f"  Redis {redis_url}; consumer, simulator and gunicorn {' '.join(options)} on {self.base} ({workers} workers; "
            f"GRIDOPS_AUTH=off, GRIDOPS_MAX_STREAMS=100000); logs in {self.logs}; set-up {time.monotonic() - began:.0f} s")
        # Dash refuses a POST without an Origin of this site (dashboard/csrf.py), as a browser on the page sends it.
        WallUser.default_headers = ReviewUser.default_headers = {"Origin": self.base}
        self.env = Environment(user_classes=[WallUser, ReviewUser], host=self.base, stop_timeout=0)
        self.env.events.request.add_listener(self.recorder)
        self.env.create_local_runner()

    def claim_redis(self) -> str:
        """REDIS_URL as given, else a database of the machine's Redis that is empty and that no
        test session holds (the tests' lock key, so that they skip it too)."""
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        admin = redis.Redis.from_url(f"{MACHINE_REDIS}/0")
        for number in range(1, 16):
            key = f"gridops-test-db-lock:{number}"
            if admin.set(key, f"load_test {os.getpid()}", nx=True, ex=6 * 3600):
                if redis.Redis.from_url(f"{MACHINE_REDIS}/{number}").dbsize() == 0:
                    self.redis_lock = (admin, key)
                    return f"{MACHINE_REDIS}/{number}"
                admin.delete(key)  # someone's data without a lock: leave it alone
        raise RuntimeError(f"no free database on {MACHINE_REDIS} (set REDIS_URL)")

    # ---------------------------------------------------------- one phase

    def run_phase(self, name: str, walls: int, reviewers: int, seconds: float, warmup_s: float) -> Result:
        viewers = walls + reviewers
        say(f"\n{name}: {walls} walls, {reviewers} review desks; ramp-up at {SPAWN_RATE:g}/s, warm-up {warmup_s:.0f} s, measured {seconds / 60:g} min")
        runner = self.env.runner
        self.recorder.begin()
        if viewers:
            WallUser.fixed_count, ReviewUser.fixed_count = walls, reviewers
            runner.start(viewers, spawn_rate=SPAWN_RATE, user_classes=[c for c, n in ((WallUser, walls), (ReviewUser, reviewers)) if n])
            deadline = time.monotonic() + viewers / SPAWN_RATE + 60
            while runner.user_count < viewers and time.monotonic() < deadline:
                gevent.sleep(0.5)
        gevent.sleep(warmup_s)
        server = self.children["server"]
        server_pids = group_pids(server.pgid)
        others = {who: group_pids(self.children[who].pgid) for who in ("consumer", "simulator")}
        before = {"server": cpu_ticks(server_pids), **{who: cpu_ticks(pids) for who, pids in others.items()}, "load generator": cpu_ticks([os.getpid()])}
        gps_before = self.redis.xinfo_stream(KEYS.patrol_gps).get("entries-added", 0) if self.redis.exists(KEYS.patrol_gps) else 0
        self.recorder.stage = "measure"
        SITE.signals = 0
        SITE.measuring = True
        started = time.monotonic()
        memory = []
        while time.monotonic() - started < seconds:
            gevent.sleep(min(SAMPLE_S, max(0.0, seconds - (time.monotonic() - started))))
            memory.append(rss_mb(group_pids(server.pgid)))
        SITE.measuring = False
        self.recorder.stage = None
        elapsed = time.monotonic() - started
        server_after = group_pids(server.pgid)
        after = {"server": cpu_ticks(server_after), **{who: cpu_ticks(group_pids(self.children[who].pgid)) for who in others}, "load generator": cpu_ticks([os.getpid()])}
        gps_after = self.redis.xinfo_stream(KEYS.patrol_gps).get("entries-added", 0) if self.redis.exists(KEYS.patrol_gps) else 0
        notes = []
        if set(server_after) != set(server_pids):
            notes.append(f"gunicorn's processes changed during the measurement ({sorted(server_pids)} → {sorted(server_after)}): a worker died")
        if runner.user_count < viewers:
            notes.append(f"only {runner.user_count} of {viewers} users were running")
        if viewers:
            runner.stop()
        recorded = self.recorder
        result = Result(name, viewers, walls, reviewers, elapsed, dict(recorded.times["measure"]), dict(recorded.times["ramp"]), recorded.bytes,
                        recorded.failures, recorded.errors,
                        {who: cpu_percent(before[who], after[who], elapsed) for who in before}, memory[-1] if memory else float("nan"),
                        max(memory, default=float("nan")), SITE.signals, (gps_after - gps_before) / elapsed, notes)
        print_phase(result, self.idle)
        return result

    # ---------------------------------------------------------- clean-up

    def close(self) -> None:
        if self.env is not None and self.env.runner is not None:
            SITE.measuring = False
            self.env.runner.quit()
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.redis is not None:
            try:
                self.redis.flushdb()
                self.redis.close()
            except redis.RedisError as error:
                say(f"  warning: could not flush Redis: {error}")
        if self.redis_lock is not None:
            self.redis_lock[0].delete(self.redis_lock[1])
            self.redis_lock[0].close()
        if self.admin is not None:
            with self.admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            self.admin.dispose()
        if self.args.keep_logs:
            say(f"logs kept in {self.logs}")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


# ------------------------------------------------------------------ reporting


def ms(seconds: float) -> str:
    return "—" if seconds != seconds else f"{seconds * 1000:,.0f}"  # NaN: no request of the kind


def cpu_per_wall(result: Result, idle: Result | None) -> float:
    """The server's CPU above idle, divided by the walls (the review desks' cost included)."""
    if idle is None or not result.walls:
        return float("nan")
    return (result.cpu["server"] - idle.cpu["server"]) / result.walls


def print_phase(result: Result, idle: Result | None) -> None:
    if result.times or result.ramp_times:
        say(f"  {'kind':17s} {'requests':>8s} {'per s':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'KiB avg':>7s} {'errors':>6s}")
    for kind in KINDS:
        times, ramp = result.shown(kind)
        if times:
            size = f"{result.bytes[kind] / len(times) / 1024:.1f}" if not ramp else ""
            rate = f"{len(times) / result.seconds:.1f}" if not ramp else ""
            say(f"  {kind + (' *' if ramp else ''):17s} {len(times):8,d} {rate:>6s} {ms(percentile(times, 50)):>7s} {ms(percentile(times, 95)):>7s} "
                f"{ms(percentile(times, 99)):>7s} {size:>7s} {result.failures.get(kind, 0):6d}")
    if any(result.shown(kind)[1] and result.shown(kind)[0] for kind in KINDS):
        say("  * opened once per wall, during the ramp-up (not in the measured minutes); errors count ramp-up and measured minutes")
    for (kind, what), count in result.errors.most_common(5):
        say(f"    {count} × {kind}: {what}")
    cpu = result.cpu
    per_wall = cpu_per_wall(result, idle)
    say(f"  server (gunicorn master + workers): CPU {cpu['server']:.0f} % of one core, RSS {result.rss_mb:,.0f} MB (peak {result.rss_peak_mb:,.0f})"
        + (f"; per wall {per_wall:.2f} % above idle" + (", review desks' cost included" if result.reviewers else "") if per_wall == per_wall else ""))
    say(f"  also: consumer {cpu['consumer']:.0f} %, simulator {cpu['simulator']:.0f} %, load generator {cpu['load generator']:.0f} %"
        + (" (saturated: its own queueing is in the latencies)" if cpu["load generator"] > 90 else "")
        + f"; GPS {result.gps_per_s:.0f} pings/s" + (f"; {result.signals / result.walls / result.seconds:.2f} signals/s per wall" if result.walls else ""))
    for note in result.notes:
        say(f"  note: {note}")


def print_summary(levels: list[Result], idle: Result, walls_only: Result) -> bool:
    """The final table and the targets; True when every target holds."""
    say("\nsummary (ms; errors in brackets)")
    header = f"  {'':26s}" + "".join(f"{f'{r.viewers} viewers':>22s}" for r in levels)
    say(header)
    for kind in [kind for kind in KINDS if any(r.shown(kind)[0] for r in levels)]:
        cells = []
        for result in levels:
            times, _ = result.shown(kind)
            cells.append(f"{ms(percentile(times, 50))}/{ms(percentile(times, 95))}/{ms(percentile(times, 99))} ({result.failures.get(kind, 0)})" if times else "—")
        say(f"  {kind + ' p50/95/99':26s}" + "".join(f"{cell:>22s}" for cell in cells))
    rows = {"walls / review desks": [f"{r.walls} / {r.reviewers}" for r in levels],
            "server CPU % core": [f"{r.cpu['server']:.0f}" for r in levels],
            "server RSS MB": [f"{r.rss_mb:,.0f}" for r in levels],
            "CPU % per wall": [f"{cpu_per_wall(r, idle):.2f}" for r in levels],
            "load generator CPU %": [f"{r.cpu['load generator']:.0f}" for r in levels],
            "GPS pings/s": [f"{r.gps_per_s:.0f}" for r in levels]}
    for label, cells in rows.items():
        say(f"  {label:26s}" + "".join(f"{cell:>22s}" for cell in cells))
    say(f"  idle server CPU {idle.cpu['server']:.1f} %, RSS {idle.rss_mb:,.0f} MB")

    target = next((r for r in levels if r.viewers == TARGET_VIEWERS), max(levels, key=lambda r: r.viewers))
    p95 = {kind: percentile(target.shown(kind)[0], 95) for kind in KINDS if target.shown(kind)[0]}
    slowest = max(((value, kind) for kind, value in p95.items()), default=(float("nan"), "—"))
    p95_ok = all(value <= P95_TARGET_S for value in p95.values())
    errors = sum(r.errors_total() for r in [*levels, walls_only])
    per_wall = (walls_only.cpu["server"] - idle.cpu["server"]) / walls_only.walls
    say("\ntargets")
    where = f"{target.viewers} viewers" + ("" if target.viewers == TARGET_VIEWERS else f" (no {TARGET_VIEWERS}-viewer level was run: the largest)")
    say(f"  p95 ≤ {P95_TARGET_S:g} s for every kind at {where}: {'holds' if p95_ok else 'FAILS'} (slowest: {slowest[1]} {ms(slowest[0])} ms)")
    say(f"  no errors: {'holds' if not errors else f'FAILS ({errors} errors)'}")
    say(f"  CPU per added wall < {CPU_PER_WALL_TARGET:g} % of a core: {'holds' if per_wall < CPU_PER_WALL_TARGET else 'FAILS'} "
        f"({per_wall:.2f} %: {walls_only.walls} walls alone {walls_only.cpu['server']:.0f} % against idle {idle.cpu['server']:.0f} %, "
        f"{walls_only.signals / walls_only.walls / walls_only.seconds:.2f} signals/s per wall at {walls_only.gps_per_s:.0f} GPS pings/s)")
    return p95_ok and not errors and per_wall < CPU_PER_WALL_TARGET


# ------------------------------------------------------------------ main


def split(viewers: int) -> tuple[int, int]:
    """1 wall for 3 review desks (at least one wall)."""
    walls = max(1, viewers // 4)
    return walls, viewers - walls


def on_signals_interrupt(main_greenlet) -> None:
    """Ctrl-C and SIGTERM interrupt the main greenlet, wherever it waits, so that ``main`` cleans up.
    A plain handler would raise in whichever greenlet runs (often gevent's hub, which prints a
    traceback first); SIGINT is set too because a shell starts background jobs with it ignored."""
    for number in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(number, gevent.kill, main_greenlet, KeyboardInterrupt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="50,100,200", help="viewer levels run in turn, 1 wall for 3 review desks (default 50,100,200)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes measured per level (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke: 10 viewers for 1 minute, shorter idle and walls-only phases, the small district")
    parser.add_argument("--demo", choices=("full", "small"), help="the demo district: full (900 grids, 90 days; the default) or small (the tests' 72 grids; default with --quick)")
    parser.add_argument("--tz", default="auto", help="GRIDOPS_TZ of every process (default auto: the whole-hour offset that starts at about 08:55 local, in the morning patrol round)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the folder with every process's log")
    args = parser.parse_args()
    if args.quick:
        args.viewers, args.minutes = "10", 1.0
    args.demo = args.demo or ("small" if args.quick else "full")
    levels = [int(part) for part in args.viewers.split(",")]
    if any(level < 1 for level in levels):
        parser.error("--viewers: whole numbers of at least 1")
    measure_s = args.minutes * 60
    idle_s, walls_only_s, warmup_s = (15.0, 30.0, 10.0) if args.quick else (30.0, 120.0, 30.0)

    on_signals_interrupt(gevent.getcurrent())
    logging_quiet()
    say(f"load test: levels {', '.join(map(str, levels))} viewers, {args.minutes:g} min each; {os.cpu_count()} cores")
    bench = Bench(args)
    try:
        bench.set_up()
        bench.idle = bench.run_phase("idle", 0, 0, idle_s, 0.0)
        walls_only = bench.run_phase("walls only", split(max(levels))[0], 0, walls_only_s, warmup_s)
        results = [bench.run_phase(f"level {viewers} viewers", *split(viewers), measure_s, warmup_s) for viewers in levels]
        return 0 if print_summary(results, bench.idle, walls_only) else 1
    except KeyboardInterrupt:
        say("\ninterrupted: cleaning up")
        return 130
    except Exception as error:  # noqa: BLE001 — say what happened and where the logs are, then clean up
        say(f"error: {type(error).__name__}: {error}")
        for child in bench.children.values():
            say(f"  {child.name} log ends:\n{child.tail()}")
        bench.args.keep_logs = True
        return 1
    finally:
        bench.close()


def logging_quiet() -> None:
    """Locust logs every ramp-up step at INFO: only its warnings and errors here."""
    logging.basicConfig(level=logging.WARNING, format="  locust %(levelname)s: %(message)s")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, also into a log file
    sys.exit(main())
