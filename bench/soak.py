"""Soak: the whole system under simulated traffic at ten times real speed for an hour, with a
wall open, Redis killed and restarted and the database gone for 30 s on a schedule.

    .venv/bin/python bench/soak.py                  # an hour (about 62 minutes with set-up and drain)
    .venv/bin/python bench/soak.py --quick          # 8 minutes, the same schedule scaled
    .venv/bin/python bench/soak.py --quick --database-url postgresql://postgres@127.0.0.1:5432/test

What it runs, each as its own process, in a fresh temporary folder (``--keep`` keeps it, with the
logs of every process in ``logs/``):

* a small demo district (``ensure_demo``, DEMO below; SQLite in the folder, or a PostgreSQL
  database the soak creates on the server of ``--database-url`` and drops at the end);
* its own ``redis-server`` (Debian's, Redis 7) with ``appendonly yes``, on a free port;
* ``python app.py ingest --consumer soak`` (the feed consumer) and ``python app.py serve``
  (``GRIDOPS_AUTH=off``, on a free port);
* ``python app.py simulate --speedup 10 --start T``: simulated time runs ten times faster than
  the clock from T = now − minutes × 9, so that it catches up with the clock when the soak
  ends (the simulator never stamps a message in the future);
* the wall, ``/wall?kiosk=1`` at 1920×1080, in a headless Chromium of its own driven over a bare
  DevTools connection (``bench_wall.KioskPage``: no Playwright, whose Network domain keeps every
  response body), open from before the first message to the end.

The schedule, at about 1/3 and 2/3 of the run: Redis is killed (SIGKILL: no final save), stays
down 5 s and is started again from its append-only file; then the database goes away for 30 s
(SQLite: another connection holds ``BEGIN EXCLUSIVE``; PostgreSQL: ``ALLOW_CONNECTIONS false``
and every session ended). Each outage prints when it begins and ends and, as they change, what
the consumer says of itself in Redis (``Keys.consumer_status``: ok, or degraded with the
reason) and what ``/healthz`` says; then how long the consumer took to be ok again and to catch
up, and its own count of the outage (``outage:*`` in the feed metrics).

Patrol GPS flows only on the district's two daily rounds (from about 08:30 and 14:30 local
time). So that traffic flows whatever the hour the soak starts, every process runs with
``GRIDOPS_TZ`` set to the whole-hour UTC offset at which the first outage falls at about
09:00 local time, in the morning round (``--tz Asia/Shanghai`` runs in the real zone: at
night that is a few cases and no GPS).

Every minute (every 20 s with ``--quick``) one line::

    04:20 sim 09:20 | MB server 200 consumer 154 simulator 142 redis 23 chromium 465 | heap 35.6 MB, 512 pins, wall 2.6 s | lag 1.7 s, pending 0/185, dead 0 | consumed 202 case, 57,601 gps (+253/s) | consumer ok

elapsed since the simulator started; the simulated local time; the resident memory of each
process in MB (10^6 bytes: RSS of the server, the consumer, the simulator and redis-server;
Chromium is the sum of the PSS of all its processes, each shared page counted once); the
wall's JS heap (``usedJSHeapSize`` right after a forced GC), the case pins it holds and how
long ago it applied its last delta (with the "stale" banner if it shows, and how often the page reloaded itself);
the feed lag (seconds the oldest unprocessed message has waited), pending messages of
case-events/patrol-gps, dead letters; the consumed counters and GPS rate since the last line;
the consumer's state.

At the end the simulator is stopped, the consumer drains the streams, and the final exact
counts are printed and checked:

* each stream: entries ever added (``XINFO STREAM`` ``entries-added``) = ``consumed:*``; and
  the simulator's own count of what it published is not more (a pipeline cut by the Redis
  restart is sent again whole: the streams may hold a few more, which come out as duplicates
  and late pings);
* every consumed message counted once as what it came to: patrol-gps consumed = applied + late
  + dead; case-events consumed = applied + duplicates + parked + late + dead − resolved parked.
  A parked event counts in ``parked:case`` when it is parked and again, in ``applied:case`` or
  as a dead letter, when it is resolved; those still waiting are the rows of ``parked_events``,
  so resolved = parked − still parked;
* case events in the database = those the demo wrote before the start + ``applied:case``;
* dead letters by reason: the ``dead:*`` counters add up to the entries of the dead-letter
  stream (and by stream, from each letter's ``dlq_stream``);
* memory of each process from the first line after the warm-up (2 minutes, quick; 5 minutes)
  to the last, in percent, and its lowest and highest; the highest feed lag on the lines and
  during the outages (when messages wait by design). The wall's heap follows what is on it:
  compare lines with the same traffic (patrol rounds or not) and the same number of pins.

It exits 1 if a count does not add up, a process died, the consumer did not recover from an
outage or anything got through the SQLite lock, after printing everything. The simulator
sends only valid traffic, so dead letters are printed as a warning, not a failure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import psutil
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.bench_wall import KioskPage  # noqa: E402
from dashboard.settings import DEFAULT_CONFIG_PATH  # noqa: E402
from data_feeds import schema  # noqa: E402
from data_feeds.db import make_engine  # noqa: E402
from data_feeds.demo import DemoSize, ensure_demo  # noqa: E402
from data_feeds.embedded_redis import free_port  # noqa: E402
from data_feeds.feed_status import feed_status  # noqa: E402
from data_feeds.keys import Keys  # noqa: E402
from data_feeds.parent_death import stop_with_parent  # noqa: E402
from gridrules.clock import utc_now  # noqa: E402
from gridrules.config import load_domain_config  # noqa: E402
from tests.redis_servers import RedisServer  # noqa: E402

KEYS = Keys("gridops:")
CONSUMER = "soak"
# 300 basic grids, one grid worker each: about 250 on a round, so about 250 pings/s at ten
# times real speed; 30 days of history so the wall's charts and board are not empty.
DEMO = DemoSize(communities=60, grids=300, days=30, seed=17)
REDIS_DOWN_S = 5.0
DATABASE_OUTAGE_S = 30.0
RECOVERY_TIMEOUT_S = 180.0
CAUGHT_UP_LAG_S = 10.0
STATUS_FRESH_S = 12.0  # the consumer writes its status every 2 s while it runs, once per retry (at most 10 s apart) in an outage
ROUND_TARGET_MINUTE = 9 * 60 + 10  # local time of the first outage (09:10, ± 30 min): inside the morning patrol round (08:30–10:00)
WALL_JS = """() => {
  const out = {origin: performance.timeOrigin, age: null, stale: '', history: null, pins: null, nodes: document.getElementsByTagName('*').length};
  try {
    const s = window.store.getState(); let n = s.layout; for (const k of s.paths.strs['wall-last-ok']) n = n[k];
    out.age = n.props.data ? (Date.now() - n.props.data) / 1000 : null;
    out.history = s.history.past.length;
    let c = s.layout; for (const k of s.paths.strs['wall-cases']) c = c[k];
    out.pins = ((c.props.data || {}).features || []).length;
  } catch (e) {}
  const banner = document.querySelector('#wall-stale');
  out.stale = banner ? banner.innerText : '';
  return out;
}"""


def say(line: str) -> None:
    print(line, flush=True)


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


# ------------------------------------------------------------------ processes


class Child:
    """``python app.py COMMAND`` as a child process that the kernel stops if the soak is killed
    (``stop_with_parent``; a ``preexec_fn`` is safe here: every child starts before the
    sampling thread does)."""

    def __init__(self, name: str, command: list[str], env: dict, logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "app.py", *command], cwd=PROJECT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, preexec_fn=stop_with_parent)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (each command finishes what it has in hand), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def tail(self, lines: int = 8) -> str:
        try:
            return "\n".join("      " + line for line in self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def rss_mb(pid: int | None) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / 1e6
    except (psutil.Error, TypeError, ValueError):
        return None


def tree_pss_mb(pid: int) -> float | None:
    """The PSS of a process and all its descendants: Chromium's renderer, GPU and utility
    processes share most of their pages, so adding their RSS would count those many times."""
    try:
        root = psutil.Process(pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                pass
        return total / 1e6
    except psutil.Error:
        return None


# ------------------------------------------------------------------ the database


class Database:
    """The soak's own database: a SQLite file in the folder, or a fresh PostgreSQL database
    created on the server of ``--database-url`` (dropped at the end unless ``--keep``)."""

    def __init__(self, folder: Path, server_url: str | None):
        self.admin = None
        self.name = None
        if server_url is None:
            self.path = folder / "grid.db"
            self.url = f"sqlite:///{self.path}"
            self.kind = "sqlite"
            return
        url = make_url(server_url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if not url.drivername.startswith("postgresql"):
            raise SystemExit(f"error: --database-url must be a PostgreSQL server (postgresql://user@host:port/db), not {server_url!r}")
        self.kind = "postgresql"
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
        self.name = f"gridops_soak_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = url.set(database=self.name).render_as_string(hide_password=False)

    def describe(self) -> str:
        return f"SQLite {self.path}" if self.kind == "sqlite" else f"PostgreSQL database {self.name}"

    def refuse_connections(self, refuse: bool) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}'))
            if refuse:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                                   {"name": self.name})

    def drop(self) -> None:
        if self.admin is None:
            return
        self.refuse_connections(True)
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


def count_rows(engine, table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar())


# ------------------------------------------------------------------ looking at the system


def healthz(base: str) -> dict | None:
    """The body of /healthz (also when it answers 503), or None when the server does not answer."""
    try:
        with urlopen(f"{base}/healthz", timeout=10) as answer:
            return json.load(answer)
    except HTTPError as error:
        try:
            return json.loads(error.read() or b"{}")
        except ValueError:
            return None
    except (URLError, OSError, ValueError):
        return None


def describe_health(body: dict | None) -> str:
    if body is None:
        return "/healthz no answer"
    parts = []
    for name in ("database", "redis"):
        if not body.get(name, {}).get("ok", False):
            parts.append(f"{name} unavailable")
    feed = body.get("feed", {}).get("state", "?")
    consumers = ", ".join(f"{c['name']} {c['state']}" + (f" ({c['reason']})" if c.get("reason") else "") for c in body.get("consumers", []))
    parts.append(f"feed {feed}" + (f" [{consumers}]" if consumers else ""))
    return f"/healthz {body.get('status', '?')}: " + ", ".join(parts)


def consumer_state(client, fresh_after: float | None = None) -> tuple[str, str]:
    """(state, reason) the consumer last wrote of itself in Redis (it writes every 2 s between
    two reads); ("stale", …) when it wrote it before ``fresh_after`` (epoch seconds; default
    STATUS_FRESH_S ago): a consumer stuck in a call, or a status restored from the append-only
    file, says nothing of the consumer now."""
    try:
        status = client.hgetall(KEYS.consumer_status(CONSUMER))
    except redis.RedisError:
        return "unknown", "Redis unreachable"
    if not status:
        return "no status", "expired: not reported for 30 s"
    if fresh_after is None:
        fresh_after = time.time() - STATUS_FRESH_S
        why = f"more than {STATUS_FRESH_S:g} s ago"
    else:
        why = "before the outage ended"
    if float(status.get("seen") or 0) < fresh_after:
        return "stale", f"last said {status.get('state')} {why}"
    return status.get("state", "?"), status.get("reason", "")


def describe_consumer(state: tuple[str, str], who: str = "consumer ") -> str:
    return f"{who}{state[0]}" + (f" ({state[1]})" if state[1] else "")


def feed_metrics(client) -> dict:
    return {key: float(value) for key, value in client.hgetall(KEYS.feed_metrics).items()}


def entries_added(client, stream: str) -> int:
    try:
        return int(client.xinfo_stream(stream)["entries-added"])
    except redis.ResponseError:  # no such stream: nothing was ever added
        return 0


class Watch:
    """One outage as seen from outside: what the consumer said of itself and what /healthz
    said, each printed when it changes, with the seconds from the outage's start it was first seen."""

    def __init__(self, name: str, began: float):
        self.name = name
        self.began = began
        self.ended: float | None = None
        self.consumer: dict = {}  # (state, reason) → first seen, seconds from the start
        self.health: dict = {}  # describe_health() → first seen
        self._last = None

    def note(self, consumer: tuple[str, str], health: str) -> None:
        at = time.monotonic() - self.began
        self.consumer.setdefault(consumer, at)
        self.health.setdefault(health, at)
        if (consumer, health) != self._last:
            say(f"    +{at:4.1f} s  {describe_consumer(consumer)} · {health}")
            self._last = (consumer, health)

    def end(self, what: str) -> None:
        self.ended = time.monotonic()
        say(f"    +{self.ended - self.began:4.1f} s  {what}")


# ------------------------------------------------------------------ the soak


class Soak:
    def __init__(self, args):
        self.args = args
        self.minutes = args.minutes if args.minutes is not None else (8.0 if args.quick else 60.0)
        self.duration_s = self.minutes * 60
        self.every_s = 20.0 if args.quick else 60.0
        self.warmup_s = min(300.0, self.duration_s / 4)
        self.speedup = args.speedup
        self.folder = Path(tempfile.mkdtemp(prefix="gridops-soak-"))
        self.logs = self.folder / "logs"
        self.logs.mkdir()
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.samples: list[dict] = []
        self.children: dict[str, Child] = {}
        self.redis_server: RedisServer | None = None
        self.page: KioskPage | None = None
        self.database: Database | None = None
        self.engine = None
        self.launched = None  # monotonic time the simulator started: the soak's zero
        self.sim_start = None
        self.origins: set = set()  # performance.timeOrigin of each page load of the wall
        self.outages: list[dict] = []
        self.simulator_stopped = False
        self.outage_lag = 0.0  # the highest feed lag /healthz reported during and after the outages
        self.lock = threading.Lock()  # one line at a time (the sampler's, or the last one)

    # ---------------------------------------------------------- set-up

    def pick_zone(self) -> str:
        """The zone of every process: ``--tz``, or the whole-hour UTC offset at which the first
        outage falls at about ROUND_TARGET_MINUTE local time (set-up takes a minute or so)."""
        if self.args.tz != "auto":
            ZoneInfo(self.args.tz)
            return self.args.tz
        launch = utc_now() + timedelta(seconds=60)
        first_outage_sim = launch - timedelta(seconds=self.duration_s * (self.speedup - 1)) + timedelta(seconds=self.duration_s / 3 * self.speedup)
        minutes = ROUND_TARGET_MINUTE - (first_outage_sim.hour * 60 + first_outage_sim.minute)
        offset = round(minutes / 60) % 24
        if offset > 14:
            offset -= 24  # Etc/GMT zones run from UTC−12 to UTC+14
        return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX sign: Etc/GMT-7 is UTC+7

    def set_up(self) -> None:
        began = time.monotonic()
        self.tz_name = self.pick_zone()
        self.tz = ZoneInfo(self.tz_name)
        self.database = Database(self.folder, self.args.database_url)
        say(f"soak: {self.minutes:g} minutes at {self.speedup:g}× real speed, a line every {self.every_s:.0f} s, warm-up {self.warmup_s / 60:g} min; "
            f"{self.database.describe()}; GRIDOPS_TZ={self.tz_name}; folder {self.folder}")
        config = load_domain_config(DEFAULT_CONFIG_PATH, self.tz)
        self.engine = make_engine(self.database.url, writer=True)
        ensure_demo(self.engine, config, utc_now(), self.folder / "var", DEMO)
        self.history_events = count_rows(self.engine, schema.case_events)
        say(f"  demo district {DEMO}: {count_rows(self.engine, schema.workers)} staff, {count_rows(self.engine, schema.cases):,} cases, "
            f"{self.history_events:,} case events of history ({time.monotonic() - began:.0f} s)")
        # appendfsync always: an entry Redis acknowledged is on disk before the reply, so the
        # kill loses nothing the simulator was told it published and the counts must be exact.
        self.redis_server = RedisServer(self.folder / "redis", ("--appendonly", "yes", "--appendfsync", "always"))
        self.redis = redis.Redis.from_url(self.redis_server.url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("REDIS_SENTINELS", "REDIS_MASTER_NAME", "GRIDOPS_PREFIX", "GRIDOPS_CONFIG", "GRIDOPS_CHROMIUM")}
        self.env.update({"DATABASE_URL": self.database.url, "REDIS_URL": self.redis_server.url, "GRIDOPS_TZ": self.tz_name, "GRIDOPS_AUTH": "off",
                         "GRIDOPS_SIMULATE": "0", "GRIDOPS_VAR_DIR": str(self.folder / "var"), "HOST": "127.0.0.1", "PORT": str(self.port),
                         "PYTHONUNBUFFERED": "1"})
        self.children["consumer"] = Child("consumer", ["ingest", "--consumer", CONSUMER], self.env, self.logs)
        self.children["server"] = Child("server", ["serve"], self.env, self.logs)
        self.wait(lambda: consumer_state(self.redis)[0] == "ok", 120, "the consumer to say it is ok")
        self.wait(lambda: healthz(self.base) is not None, 120, "the server to answer /healthz")
        self.page = KioskPage(f"{self.base}/wall?kiosk=1")
        self.page.wait_for("() => !!document.querySelector('#wall-board table') && !!window.store", 120)
        say(f"  redis-server {self.redis_server.port} (AOF), consumer, server {self.base}, wall open in Chromium: set-up {time.monotonic() - began:.0f} s")
        now = utc_now()
        self.sim_start = now - timedelta(seconds=self.duration_s * (self.speedup - 1))
        self.children["simulator"] = Child("simulator", ["simulate", "--speedup", f"{self.speedup:g}", "--start", self.sim_start.isoformat(),
                                                         "--seed", str(self.args.seed)], self.env, self.logs)
        self.launched = time.monotonic()
        self.launched_wall = now
        say(f"  simulator from {self.sim_start.astimezone(self.tz):%H:%M} local at {self.speedup:g}×: catches up with the clock at about "
            f"{(now + timedelta(seconds=self.duration_s)).astimezone(self.tz):%H:%M} local, when the soak ends")

    def wait(self, condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for child in self.children.values():
                if not child.alive():
                    raise RuntimeError(f"the {child.name} exited with {child.process.returncode} while waiting for {what}:\n{child.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.5)

    # ---------------------------------------------------------- one line

    def elapsed(self) -> float:
        return time.monotonic() - self.launched if self.launched else 0.0

    def sim_now(self) -> datetime:
        wall = self.launched_wall + timedelta(seconds=self.elapsed())
        return min(self.sim_start + timedelta(seconds=self.elapsed() * self.speedup), wall)

    def memory(self) -> dict:
        redis_pid = self.redis_server.process.pid if self.redis_server and self.redis_server.process.poll() is None else None
        return {
            "server": rss_mb(self.children["server"].pid), "consumer": rss_mb(self.children["consumer"].pid),
            "simulator": rss_mb(self.children["simulator"].pid) if self.children["simulator"].alive() else None,
            "redis": rss_mb(redis_pid), "chromium": tree_pss_mb(self.page.process.pid),
        }

    def wall(self, gc: bool = True) -> dict:
        """The wall's JS heap after a forced GC, how long ago it applied its last delta, its banner."""
        try:
            if gc:
                self.page.send("HeapProfiler.collectGarbage")
            heap = self.page.evaluate("() => performance.memory.usedJSHeapSize") / 1e6
            state = self.page.evaluate(WALL_JS) or {}
        except Exception as error:  # noqa: BLE001 — a wall that cannot be read is a line's data, not the soak's end
            return {"heap": None, "error": f"{type(error).__name__}: {error}"}
        self.origins.add(state.get("origin"))
        return {"heap": heap, "age": state.get("age"), "stale": state.get("stale") or "", "history": state.get("history"),
                "pins": state.get("pins"), "nodes": state.get("nodes")}

    def sample(self) -> dict:
        with self.lock:
            sample = {"t": self.elapsed(), "sim": self.sim_now(), "mem": self.memory(), "wall": self.wall()}
            try:
                status = feed_status(self.redis, KEYS, utc_now())
                sample["feed"] = status
                sample["consumer"] = consumer_state(self.redis)
            except redis.RedisError as error:
                sample["feed"] = None
                sample["consumer"] = ("unknown", f"Redis unreachable: {type(error).__name__}")
            for child in self.children.values():
                if not child.alive() and not (child.name == "simulator" and self.simulator_stopped):
                    message = f"the {child.name} died (exit {child.process.returncode}) at {clock(sample['t'])}"
                    if message not in self.failures:
                        self.failures.append(message)
                        say(f"  !! {message}; its log ends:\n{child.tail()}")
            if self.page.process.poll() is not None and "Chromium died" not in self.failures:
                self.failures.append("Chromium died")
                say("  !! Chromium (the wall) died")
            self.samples.append(sample)
            say(self.line(sample))
            return sample

    def line(self, sample: dict) -> str:
        mem = " ".join(f"{name} {'—' if value is None else f'{value:.0f}'}" for name, value in sample["mem"].items())
        wall = sample["wall"]
        if wall.get("heap") is None:
            wall_text = f"wall unreadable ({wall.get('error', '')[:60]})"
        else:
            age = "—" if wall.get("age") is None else f"{wall['age']:.1f} s"
            wall_text = f"heap {wall['heap']:.1f} MB, {wall.get('pins')} pins, wall {age}" + (f" '{wall['stale']}'" if wall["stale"] else "")
            if len(self.origins) > 1:
                wall_text += f", reloaded {len(self.origins) - 1}×"
        feed = sample["feed"]
        if feed is None:
            feed_text = "Redis unreachable"
        else:
            streams, counters = feed["streams"], feed["counters"]
            lag = "—" if feed["lag_seconds"] is None else f"{feed['lag_seconds']:.1f} s"
            previous = next((s for s in reversed(self.samples[:-1]) if s.get("feed")), None)
            gps = counters.get("consumed:gps", 0)
            rate = ""
            if previous:
                rate = f" (+{(gps - previous['feed']['counters'].get('consumed:gps', 0)) / max(1e-9, sample['t'] - previous['t']):.0f}/s)"
            feed_text = (f"lag {lag}, pending {streams['case-events']['pending']}/{streams['patrol-gps']['pending']}, dead {feed['dead_letters']} | "
                         f"consumed {counters.get('consumed:case', 0):,} case, {gps:,} gps{rate}")
        return f"{clock(sample['t'])} sim {sample['sim'].astimezone(self.tz):%H:%M} | MB {mem} | {wall_text} | {feed_text} | {describe_consumer(sample['consumer'])}"

    # ---------------------------------------------------------- outages

    def observe(self, watch: Watch, seconds: float, stop_when=None) -> None:
        """Look once a second for ``seconds``: print what the consumer says of itself and what
        /healthz says whenever either changes, and note when each was first seen."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            consumer = consumer_state(self.redis)
            body = healthz(self.base)
            watch.note(consumer, describe_health(body))
            if body and body.get("feed_lag_seconds") is not None:  # the lines, a minute apart, may miss the peak
                self.outage_lag = max(self.outage_lag, body["feed_lag_seconds"])
            if stop_when and stop_when():
                return
            time.sleep(max(0.0, 1.0 - (time.monotonic() - watch.began) % 1.0))

    def recover(self, watch: Watch, kind: str, before: dict) -> dict:
        """After an outage: when the consumer says it is ok again (a status written after the
        outage ended) and when it has caught up (lag under CAUGHT_UP_LAG_S)."""
        ended_epoch = time.time() - (time.monotonic() - watch.ended)

        def ok() -> bool:
            return consumer_state(self.redis, fresh_after=ended_epoch)[0] == "ok"

        self.observe(watch, RECOVERY_TIMEOUT_S, stop_when=ok)
        result = {"ok_after": None, "caught_up_after": None}
        if ok():
            result["ok_after"] = time.monotonic() - watch.ended
            deadline = time.monotonic() + RECOVERY_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    lag = feed_status(self.redis, KEYS, utc_now())["lag_seconds"]
                except redis.RedisError:
                    lag = None
                if lag is not None and lag < CAUGHT_UP_LAG_S:
                    result["caught_up_after"] = time.monotonic() - watch.ended
                    break
                time.sleep(1)
        after = feed_metrics(self.redis)
        result["counted"] = int(after.get(f"outage:{kind}", 0) - before.get(f"outage:{kind}", 0))
        result["counted_s"] = after.get(f"outage_seconds:{kind}", 0) - before.get(f"outage_seconds:{kind}", 0)
        return result

    def report_outage(self, watch: Watch, kind: str, result: dict, extra: dict | None = None) -> None:
        lasted = watch.ended - watch.began
        said = ", ".join(f"{describe_consumer(state, who='')} +{at:.1f} s" for state, at in watch.consumer.items())
        degraded_at = min((at for (state, reason), at in watch.consumer.items() if state == "degraded" and reason == kind), default=None)
        # While Redis is down the consumer cannot write its status there: /healthz saying so, and
        # the consumer counting the outage once back, is what it can do.
        healthz_said = any(f"{kind} unavailable" in health and at <= lasted for health, at in watch.health.items())
        during = degraded_at is not None and degraded_at <= lasted
        reported = during or (kind == "redis" and healthz_said and result["counted"] > 0)
        record = {"name": watch.name, "at": watch.began - self.launched, "lasted": lasted, "reported": reported,
                  "degraded_at": degraded_at, **result, **(extra or {})}
        self.outages.append(record)
        ok_after = "NOT within 180 s" if result["ok_after"] is None else f"{result['ok_after']:.1f} s"
        caught = "—" if result["caught_up_after"] is None else f"{result['caught_up_after']:.1f} s"
        say(f"  {watch.name} {clock(watch.began - self.launched)}–{clock(watch.ended - self.launched)} ({lasted:.0f} s): the consumer said {said}; "
            f"it counted outage:{kind} +{result['counted']} ({result['counted_s']:.0f} s); ok again {ok_after} and lag under "
            f"{CAUGHT_UP_LAG_S:g} s {caught} after the end")
        if result["ok_after"] is None:
            self.failures.append(f"the consumer did not recover from the {watch.name} within {RECOVERY_TIMEOUT_S:.0f} s")
        if not reported:
            when = "never said so" if degraded_at is None else f"said so only at +{degraded_at:.1f} s, after the {lasted:.0f} s outage had ended"
            shown = ", ".join(f"'{health}' +{at:.1f} s" for health, at in watch.health.items() if at <= lasted)
            self.warnings.append(f"the consumer did not say it was degraded ({kind}) while the {watch.name} lasted: it {when}; "
                                 f"/healthz showed {shown}")

    def redis_restart(self) -> None:
        before = feed_metrics(self.redis)
        began = time.monotonic()
        say(f"{clock(self.elapsed())} >> Redis restart: SIGKILL redis-server (pid {self.redis_server.process.pid}), down {REDIS_DOWN_S:g} s, "
            "then started again from its append-only file")
        watch = Watch("Redis restart", began)
        self.redis_server.kill()
        self.observe(watch, REDIS_DOWN_S)
        self.redis_server.start()
        watch.end(f"redis-server answers again (pid {self.redis_server.process.pid})")
        self.report_outage(watch, "redis", self.recover(watch, "redis", before))

    def database_outage(self) -> None:
        before = feed_metrics(self.redis)
        extra = {}
        if self.database.kind == "sqlite":
            holder = sqlite3.connect(self.database.path, isolation_level=None, timeout=60)
            holder.execute("BEGIN EXCLUSIVE")  # waits for the consumer's transaction in hand, then no other writer gets in
            watch = Watch("database outage", time.monotonic())
            say(f"{clock(self.elapsed())} >> database outage: another connection holds BEGIN EXCLUSIVE on the SQLite file for {DATABASE_OUTAGE_S:g} s")
            events_before = holder.execute("SELECT count(*) FROM case_events").fetchone()[0]
            self.observe(watch, DATABASE_OUTAGE_S)
            events_after = holder.execute("SELECT count(*) FROM case_events").fetchone()[0]
            holder.execute("ROLLBACK")
            holder.close()
            extra["through_lock"] = events_after - events_before
            if events_after != events_before:
                self.failures.append(f"{events_after - events_before} case events were written while another connection held the SQLite lock")
        else:
            self.engine.dispose()
            self.database.refuse_connections(True)
            watch = Watch("database outage", time.monotonic())
            say(f"{clock(self.elapsed())} >> database outage: PostgreSQL refuses connections to {self.database.name} and every session is ended, "
                f"for {DATABASE_OUTAGE_S:g} s")
            self.observe(watch, DATABASE_OUTAGE_S)
            self.database.refuse_connections(False)
        watch.end("the database is back")
        self.report_outage(watch, "database", self.recover(watch, "database", before), extra)

    # ---------------------------------------------------------- the run

    def run(self) -> None:
        sampler_stop = threading.Event()
        schedule = [(self.duration_s / 3, self.redis_restart), (self.duration_s * 2 / 3, self.database_outage)]

        def sampler():
            next_at = 0.0
            while not sampler_stop.wait(max(0.0, next_at - self.elapsed())):
                try:
                    self.sample()
                except Exception as error:  # noqa: BLE001 — a line that fails is printed, the soak goes on
                    say(f"{clock(self.elapsed())} a line failed: {type(error).__name__}: {error}")
                next_at += self.every_s

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            while self.elapsed() < self.duration_s and not self.failures:
                if schedule and self.elapsed() >= schedule[0][0]:
                    schedule.pop(0)[1]()
                time.sleep(0.5)
        finally:
            sampler_stop.set()
            thread.join(timeout=60)

    def finish(self) -> None:
        """Stop the simulator, let the consumer drain, take the last line and check the counts."""
        simulator = self.children["simulator"]
        self.simulator_stopped = True
        simulator.stop(timeout_s=60)
        summary = re.search(r"simulate: (\d+) pings and (\d+) case events", simulator.log_path.read_text(errors="replace"))
        self.published = {"gps": int(summary.group(1)), "case": int(summary.group(2))} if summary else None
        say(f"{clock(self.elapsed())} simulator stopped (exit {simulator.process.returncode}): "
            + (f"it published {self.published['case']:,} case events and {self.published['gps']:,} pings" if summary else "no summary in its log"))
        began = time.monotonic()
        drained = False
        while time.monotonic() - began < 300 and self.children["consumer"].alive():
            try:
                metrics = feed_metrics(self.redis)
                status = feed_status(self.redis, KEYS, utc_now())
                drained = (all(entries_added(self.redis, stream) == metrics.get(f"consumed:{kind}", 0)
                               for stream, kind in ((KEYS.case_events, "case"), (KEYS.patrol_gps, "gps")))
                           and all(s["pending"] == 0 for s in status["streams"].values()))
            except redis.RedisError:
                drained = False
            if drained:
                break
            time.sleep(1)
        say(f"{clock(self.elapsed())} {'drained' if drained else 'NOT drained'} after {time.monotonic() - began:.0f} s")
        if not drained:
            self.failures.append("the consumer did not drain the streams within 300 s of the simulator's end")
        self.sample()
        self.counts()
        self.memory_growth()
        self.outage_summary()

    # ---------------------------------------------------------- the figures

    def counts(self) -> None:
        metrics = {key: int(value) for key, value in feed_metrics(self.redis).items() if not key.startswith("outage_seconds")}
        letters = self.redis.xrange(KEYS.dead_letter) if self.redis.exists(KEYS.dead_letter) else []
        by_stream = Counter(fields.get("dlq_stream", "?") for _, fields in letters)
        by_reason = Counter((fields.get("dlq_stream", "?").split(":")[-1], fields.get("dlq_reason", "?")) for _, fields in letters)
        still_parked = count_rows(self.engine, schema.parked_events)
        events_in_db = count_rows(self.engine, schema.case_events)
        say("\nfinal counts")

        def check(ok: bool, what: str) -> None:
            say(f"  {'OK  ' if ok else 'FAIL'} {what}")
            if not ok:
                self.failures.append(what)

        for stream, kind in ((KEYS.case_events, "case"), (KEYS.patrol_gps, "gps")):
            added = entries_added(self.redis, stream)
            consumed = metrics.get(f"consumed:{kind}", 0)
            applied, duplicates, parked, late = (metrics.get(f"{name}:{kind}", 0) for name in ("applied", "duplicates", "parked", "late"))
            dead = by_stream.get(stream, 0)
            name = stream.split(":")[-1]
            check(added == consumed, f"{name}: entries added {added:,} = consumed:{kind} {consumed:,}")
            if self.published:
                check(self.published[kind] <= added, f"{name}: the simulator published {self.published[kind]:,} ≤ entries added {added:,} "
                      f"({added - self.published[kind]:,} sent again after the Redis restart)")
            if kind == "case":
                resolved = parked - still_parked
                total = applied + duplicates + parked + late + dead - resolved
                check(consumed == total, f"{name}: consumed {consumed:,} = applied {applied:,} + duplicates {duplicates:,} + parked {parked:,} "
                      f"+ late {late:,} + dead {dead:,} − resolved parked {resolved:,} (parked {parked:,} − still parked {still_parked:,}) = {total:,}")
            else:
                total = applied + duplicates + parked + late + dead
                check(consumed == total, f"{name}: consumed {consumed:,} = applied {applied:,} + late {late:,} + dead {dead:,}"
                      + (f" + duplicates {duplicates:,} + parked {parked:,}" if duplicates or parked else "") + f" = {total:,}")
        applied_case = metrics.get("applied:case", 0)
        check(events_in_db == self.history_events + applied_case,
              f"case events in the database {events_in_db:,} = history {self.history_events:,} + applied:case {applied_case:,}")
        dead_counted = sum(value for key, value in metrics.items() if key.startswith("dead:"))
        dead_added = entries_added(self.redis, KEYS.dead_letter)
        check(dead_counted == dead_added == len(letters), f"dead letters: dead:* counters {dead_counted:,} = entries added {dead_added:,} "
              f"= in the stream {len(letters):,}")
        if letters:
            reasons = ", ".join(f"{stream} {reason} {n}" for (stream, reason), n in by_reason.most_common())
            say(f"       by stream and reason: {reasons}")
            first = letters[0][1]
            say(f"       e.g. {first.get('dlq_reason')}: {first.get('dlq_detail', '')[:200]} (action {first.get('action', '—')}, case {first.get('case_id', '—')})")
            self.warnings.append(f"{len(letters)} dead letters from a simulator that sends only valid traffic ({reasons})")
        outages = {key: value for key, value in metrics.items() if key.startswith("outage:")}
        say(f"  outages the consumer counted: {outages or 'none'}")

    def memory_growth(self) -> None:
        after = [s for s in self.samples if s["t"] >= self.warmup_s]
        if len(after) < 2:
            say("\nmemory growth: too few lines after the warm-up")
            return
        first, last = after[0], after[-1]
        say(f"\nmemory from {clock(first['t'])} (first line after the {self.warmup_s / 60:g}-minute warm-up) to {clock(last['t'])} (MB)")
        say(f"  {'':12} {'start':>8} {'first':>8} {'last':>8} {'growth':>8} {'min':>8} {'max':>8}")
        rows = [(name, [s["mem"].get(name) for s in self.samples]) for name in first["mem"]]
        rows.append(("wall heap", [s["wall"].get("heap") for s in self.samples]))
        for name, values in rows:
            start = next((v for v in values if v is not None), None)
            # from the first line after the warm-up to the last that knows the process (the
            # simulator is gone on the very last line)
            known = [v for s, v in zip(self.samples, values) if s["t"] >= self.warmup_s and v is not None]
            begin, end = (known[0], known[-1]) if known else (None, None)
            growth = "—" if not known else f"{(end - begin) / begin * 100:+.1f} %"
            note = " (restarted at the Redis outage)" if name == "redis" else ""
            say(f"  {name:12} {fmt(start):>8} {fmt(begin):>8} {fmt(end):>8} {growth:>8} {fmt(min(known, default=None)):>8} {fmt(max(known, default=None)):>8}{note}")
        lags = [s["feed"]["lag_seconds"] for s in self.samples if s.get("feed") and s["feed"]["lag_seconds"] is not None]
        history = [s["wall"].get("history") for s in self.samples if s["wall"].get("history") is not None]
        say(f"  feed lag: max {max(lags, default=0):.1f} s on the lines, {self.outage_lag:.1f} s during the outages; the wall reloaded itself {max(0, len(self.origins) - 1)}×; "
            f"Dash undo history {history[-1] if history else '—'} entries at the end")
        # What the wall holds, to tell a heap that grows with the data on it from a leak.
        say(f"  the wall held {first['wall'].get('pins')} case pins and {first['wall'].get('nodes')} DOM elements at {clock(first['t'])}, "
            f"{last['wall'].get('pins')} and {last['wall'].get('nodes')} at {clock(last['t'])}")

    def outage_summary(self) -> None:
        say("\noutages")
        for o in self.outages:
            ok_after = "did NOT recover" if o["ok_after"] is None else f"ok again {o['ok_after']:.1f} s after it"
            said = "never said degraded" if o["degraded_at"] is None else f"said degraded at +{o['degraded_at']:.1f} s"
            through = f"; {o['through_lock']} case events through the lock" if "through_lock" in o else ""
            say(f"  {clock(o['at'])} {o['name']} ({o['lasted']:.0f} s): the consumer {said}, counted it {o['counted']}× "
                f"({o['counted_s']:.0f} s), reported it while it lasted: {'yes' if o['reported'] else 'NO'}; {ok_after}{through}")
        say(f"\nresult: {'FAILED' if self.failures else 'OK'}; {len(self.warnings)} warning(s)")
        for failure in self.failures:
            say(f"  failure: {failure}")
        for warning in self.warnings:
            say(f"  warning: {warning}")

    # ---------------------------------------------------------- clean-up

    def close(self) -> None:
        if self.page is not None:
            try:
                self.page.close()
            except Exception:  # noqa: BLE001
                self.page.process.kill()
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.database is not None and self.database.kind == "postgresql":
            if self.args.keep:
                say(f"kept the PostgreSQL database {self.database.name}")
            else:
                self.database.drop()
        if self.args.keep:
            say(f"kept {self.folder} (logs in {self.logs})")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def fmt(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="how long the simulator runs (default 60; 8 with --quick)")
    parser.add_argument("--quick", action="store_true", help="8 minutes, a line every 20 s, the same schedule scaled")
    parser.add_argument("--speedup", type=float, default=10.0, help="simulated time runs this many times faster than the clock (default 10)")
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql://user@host:port/db) on which the soak creates its own database "
                        "and drops it at the end; default a SQLite file in the folder")
    parser.add_argument("--tz", default="auto", help="GRIDOPS_TZ of every process (default auto: the whole-hour offset at which the first outage "
                        "falls at about 09:00 local time, in the morning patrol round)")
    parser.add_argument("--seed", type=int, default=1, help="the simulator's random seed (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the folder (database, Redis files, logs) and the PostgreSQL database")
    args = parser.parse_args()
    if args.speedup <= 1:
        parser.error("--speedup must be more than 1: simulated time must catch up with the clock")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # clean up as on Ctrl-C
    soak = Soak(args)
    try:
        soak.set_up()
        soak.run()
        soak.finish()
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 — print what happened, clean up, fail
        say(f"error: {type(error).__name__}: {error}")
        for child in soak.children.values():
            say(f"  {child.name} log ends:\n{child.tail()}")
        return 1
    finally:
        soak.close()
    return 1 if soak.failures else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, also into a log file
    sys.exit(main())
