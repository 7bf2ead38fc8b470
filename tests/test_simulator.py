"""The traffic simulator: pure model functions, its output through the real consumer, the command.

Simulated time is always forced (a ``start`` in daytime, a fake clock), so patrol rounds
are on whatever the hour CI runs at. Runs that go through the consumer use the most recent
past morning round, because the consumer refuses timestamps in the future.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
import shapely
from sqlalchemy import func, select

from data_feeds import schema
from data_feeds.feed_contract import Reference, load_reference, validate_case_event, validate_gps_batch
from data_feeds.grid_locator import GridLocator
from data_feeds.keys import Keys
from data_feeds.patrol_rounds import round_schedule
from data_feeds.reference import load_rules
from data_feeds.simulator import patrol_gps
from data_feeds.simulator.command_line import parse_start
from data_feeds.simulator.patrol_gps import Pings, gps_messages
from data_feeds.simulator.publishing import RunOptions, publish, run
from data_feeds.simulator.simulation import SimOptions, Simulation
from data_feeds.simulator.world import SimulatorError, build_world, department_paces, load_open_cases, load_paces, load_world
from gridrules.clock import utc_now
from gridrules.coords import wgs84_to_gcj02
from gridrules.lifecycle import CaseEvent, Rules, apply_event
from gridrules.patrol import haversine_m
from tests.feed_support import basic_grids, case_event, drain, make_ingest, report
from tests.support import PROJECT, TZ, fresh_database, import_small_district, local

KEYS = Keys("gridops:")
AFTERNOON = local(2026, 11, 25, 14, 40)  # a Wednesday (working day), second patrol round about to begin
SETTING_NAMES = ("DATABASE_URL", "REDIS_URL", "PORT", "HOST", "SECRET_KEY", "TILE_URL")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """The small test district (24 basic grids, one grid worker each) in a SQLite file, for the pure tests."""
    from data_feeds.db import init_db, make_engine

    folder = tmp_path_factory.mktemp("simdistrict")
    with fresh_database("sqlite", folder) as url:
        engine = make_engine(url)
        init_db(engine)
        yield import_small_district(engine, folder)
        engine.dispose()


@pytest.fixture(scope="module")
def rules(district, domain_config):
    return load_rules(district, domain_config)


@pytest.fixture(scope="module")
def world(district, rules, domain_config):
    return load_world(district, rules, domain_config.calendar, np.random.default_rng(1))


@pytest.fixture(scope="module")
def locator(district):
    """The consumer's own point-in-grid lookup over the exact (unshrunk) polygons."""
    return GridLocator.from_database(district)


def simulate(world, start, minutes, step_s=60.0, **options) -> tuple[Simulation, Pings, list, list]:
    """Advance a simulation in steps; returns it, every ping, every event message and case state."""
    sim = Simulation(world, start, SimOptions(**{"seed": 7, "run_id": "t", **options}))
    pings, events, cases = [], [], []
    moment = start
    end = start + timedelta(minutes=minutes)
    while moment < end:
        moment = min(end, moment + timedelta(seconds=step_s))
        out = sim.advance(moment)
        assert (out.pings.ts <= moment.timestamp()).all()
        assert all(datetime.fromisoformat(m["ts"]) <= moment for m in out.events)
        pings.append(out.pings)
        events += out.events
        cases += out.cases
    return sim, Pings.concat(pings), events, cases


def table_counts(engine) -> dict:
    with engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table)).scalar() for name, table in schema.metadata.tables.items()}


def last_morning_round(minutes: float, calendar) -> datetime:
    """09:00 local of the latest working day whose 09:00 + ``minutes`` is already past (within
    the consumer's 90 days): on a rest day departments do not move cases along."""
    now_local = utc_now().astimezone(TZ)
    day = now_local.date()
    while True:
        moment = datetime.combine(day, time(9, 0), tzinfo=TZ)
        if moment + timedelta(minutes=minutes) <= now_local and calendar.is_working_day(day):
            return moment
        day -= timedelta(days=1)


class FakeClock:
    """A wall clock that moves only when the loop sleeps."""

    def __init__(self, start: datetime):
        self.moment = start.astimezone(UTC)

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def checking_publisher(clock: FakeClock, seen: list):
    """Publish for real, after checking that nothing is stamped after the clock."""
    def publisher(client, keys, output, workers, maxlen):
        now = clock.now()
        assert (output.pings.ts <= now.timestamp()).all()
        assert all(datetime.fromisoformat(m["ts"]) <= now for m in output.events)
        seen.append(output)
        return publish(client, keys, output, workers, maxlen)
    return publisher


# ---------------------------------------------------------------- patrol (pure)


def test_rounds_are_twice_a_day_in_local_time(domain_config):
    diligence = np.full(4000, 0.8)
    wednesday, saturday = AFTERNOON.date(), AFTERNOON.date() + timedelta(days=3)
    starts, ends = round_schedule(wednesday, diligence, domain_config.calendar, seed=3)
    local_hours = lambda values: np.array([datetime.fromtimestamp(v, TZ).hour + datetime.fromtimestamp(v, TZ).minute / 60 for v in values])  # noqa: E731
    morning, afternoon = starts[np.isfinite(starts[:, 0]), 0], starts[np.isfinite(starts[:, 1]), 1]
    assert local_hours(morning).min() >= 8.1 and local_hours(morning).max() <= 8.9
    assert local_hours(afternoon).min() >= 14.1 and local_hours(afternoon).max() <= 14.9
    lengths = ends[np.isfinite(starts)] / 60 - starts[np.isfinite(starts)] / 60
    assert lengths.min() >= 60 and lengths.max() <= 110
    assert 0.75 < np.isfinite(starts).mean() < 0.85  # diligence: most rounds are walked
    rest = round_schedule(saturday, diligence, domain_config.calendar, seed=3)[0]
    assert np.isfinite(rest[:, 1]).mean() < 0.35 < np.isfinite(rest[:, 0]).mean()  # 一日双巡 on working days only
    again = round_schedule(wednesday, diligence, domain_config.calendar, seed=3)
    assert np.array_equal(again[0], starts)  # one draw per day and seed


def test_a_demo_abroad_patrols_in_its_viewers_daytime(domain_config, world):
    """Viewed from Berlin in winter (UTC+1), the rounds move seven hours: 08:30 and 14:30 Berlin
    time are 15:30 and 21:30 in the district; from Los Angeles (UTC-8) sixteen hours, which wraps
    into the district's night (00:30 and 06:30). Production (no shift) keeps 08:30 and 14:30."""
    from zoneinfo import ZoneInfo

    from data_feeds.patrol_rounds import daytime_shift_minutes

    winter = local(2026, 12, 3, 12, 0)
    assert daytime_shift_minutes(TZ, ZoneInfo("Europe/Berlin"), winter) == 7 * 60
    assert daytime_shift_minutes(TZ, ZoneInfo("America/Los_Angeles"), winter) == 16 * 60
    assert daytime_shift_minutes(TZ, TZ, winter) == 0
    diligence = np.full(2000, 0.9)
    starts, _ = round_schedule(AFTERNOON.date(), diligence, domain_config.calendar, seed=3, shift_minutes=7 * 60)
    hours = lambda values: np.array([datetime.fromtimestamp(v, ZoneInfo("Europe/Berlin")).hour + datetime.fromtimestamp(v, ZoneInfo("Europe/Berlin")).minute / 60 for v in values])  # noqa: E731
    assert hours(starts[np.isfinite(starts[:, 0]), 0]).min() >= 8.1 and hours(starts[np.isfinite(starts[:, 0]), 0]).max() <= 8.9
    assert hours(starts[np.isfinite(starts[:, 1]), 1]).min() >= 14.1 and hours(starts[np.isfinite(starts[:, 1]), 1]).max() <= 14.9
    # the simulator walks them: at 16:00 in the district (09:00 in Berlin) workers are out, at 09:00 (02:00 in Berlin) none
    sim = Simulation(world, local(2026, 11, 25, 8, 0), SimOptions(seed=1, rate_per_hour=0, rounds_shift_minutes=7 * 60))
    assert len(sim.advance(local(2026, 11, 25, 11, 0)).pings) == 0
    assert len(sim.advance(local(2026, 11, 25, 16, 30)).pings) > 0


def test_the_demo_runs_its_simulator_in_daytime_unless_told_not_to(tmp_path):
    from dashboard.helper_processes import demo_children
    from dashboard.settings import Settings

    on = demo_children(Settings(var_dir=tmp_path), None)
    off = demo_children(Settings(var_dir=tmp_path, demo_daytime=False), None)
    assert on.commands["simulate"] == ["simulate", "--daytime-rounds"] and off.commands["simulate"] == ["simulate"]


def test_devices_are_silent_outside_the_rounds(world):
    night = local(2026, 11, 25, 0, 0)
    sim = Simulation(world, night, SimOptions(seed=1, rate_per_hour=0))
    assert len(sim.advance(local(2026, 11, 25, 7, 45)).pings) == 0
    morning = sim.advance(local(2026, 11, 25, 11, 30)).pings
    assert len(morning) > 0
    hours = {datetime.fromtimestamp(t, TZ).hour for t in morning.ts}
    assert hours <= {8, 9, 10, 11}
    assert len(sim.advance(local(2026, 11, 25, 13, 50)).pings) == 0  # lunch
    assert len(sim.advance(local(2026, 11, 25, 17, 30)).pings) > 0
    assert len(sim.advance(local(2026, 11, 26, 7, 45)).pings) == 0  # evening and night
    assert len(sim.advance(local(2026, 11, 26, 10, 0)).pings) > 0  # the next day's morning round


def test_pings_stay_in_the_workers_own_grid_in_order_in_wgs84(world, locator):
    sim, pings, _, _ = simulate(world, AFTERNOON, minutes=150, step_s=37, rate_per_hour=0)
    assert len(pings) > 5000
    gcj_lat, gcj_lon = wgs84_to_gcj02(pings.lat, pings.lon)
    own = world.grid_codes[world.worker_grid[pings.worker]]
    assert (locator.locate(gcj_lat, gcj_lon) == own).all()
    # Sent as raw GPS: read as GCJ-02 they would land hundreds of metres off.
    assert np.median(haversine_m(pings.lat, pings.lon, gcj_lat, gcj_lon)) > 300
    order = np.lexsort((pings.ts, pings.worker))
    same = pings.worker[order][1:] == pings.worker[order][:-1]
    gaps = np.diff(pings.ts[order])[same]
    by_worker = defaultdict(list)
    for worker, ts in zip(pings.worker.tolist(), pings.ts.tolist()):
        by_worker[worker].append(ts)
    assert all(np.all(np.diff(stamps) > 0) for stamps in by_worker.values())  # strictly in publishing order
    assert 9.5 < np.median(gaps) < 10.5
    assert ((gaps > 55) & (gaps < 200)).sum() > 0  # a device off for a minute or two
    assert (pings.heading >= 0).all() and (pings.heading <= 360).all()
    assert (pings.speed >= 0).all() and pings.speed.max() < 9
    sent_accuracy = np.isfinite(pings.accuracy)
    assert 0.5 < sent_accuracy.mean() < 0.7 and (pings.accuracy[sent_accuracy] >= 3).all()


def test_workers_walk_or_ride_at_their_pace_with_jitter(world):
    sim, pings, _, _ = simulate(world, AFTERNOON, minutes=150, step_s=60, rate_per_hour=0)
    ebike = sim.patrol.ebike[pings.worker]
    moving = pings.speed > 0.3
    assert 0.9 < np.median(pings.speed[moving & ~ebike]) < 1.6
    if (moving & ebike).any():
        assert 3.0 < np.median(pings.speed[moving & ebike]) < 5.0
    # Standing still (dwelling at a waypoint), the reported position still wanders by a few metres.
    order = np.lexsort((pings.ts, pings.worker))
    w, lat, lon, speed = pings.worker[order], pings.lat[order], pings.lon[order], pings.speed[order]
    still = (w[1:] == w[:-1]) & (speed[1:] == 0) & (speed[:-1] == 0)
    wander = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])[still]
    assert 1.0 < np.median(wander) < 12.0


def test_gps_messages_are_strings_the_contract_reads(world):
    _, pings, _, _ = simulate(world, AFTERNOON, minutes=30, rate_per_hour=0)
    messages = gps_messages(pings, world.workers)
    assert len(messages) == len(pings)
    first = dict(zip(messages[0][::2], messages[0][1::2]))
    assert set(first) >= {"worker", "ts", "lat", "lon", "speed", "heading"} and set(first) <= {"worker", "ts", "lat", "lon", "speed", "heading", "accuracy"}
    assert all(isinstance(value, str) for message in messages for value in message)
    assert first["ts"].isdigit() and int(first["ts"]) <= int(pings.ts[0] * 1000)
    assert "crs" not in first  # devices send WGS-84, the contract's default


# ---------------------------------------------------------------- cases (pure)


def test_cases_go_through_the_lifecycle_in_realistic_proportions(world, rules, locator):
    reference = Reference(
        grids=frozenset(world.grid_codes.tolist()), categories=rules.categories, departments=frozenset(world.departments),
        workers=frozenset(world.workers.tolist()), locator=locator, max_age=timedelta(days=3650),
    )
    sim, pings, events, cases = simulate(world, local(2026, 11, 23, 0, 0), minutes=4 * 24 * 60, step_s=600, rate_per_hour=40, gps_interval_s=60)
    reports = [m for m in events if m["action"] == "report"]
    assert 3000 < len(reports) < 4500  # 40 an hour, shaped by the hour of day
    assert len({m["event_id"] for m in events}) == len(events)
    sources = Counter(m["source"] for m in reports)
    assert 0.45 < sources["patrol"] / len(reports) < 0.65
    assert 0.17 < sources["hotline"] / len(reports) < 0.31
    assert {"police", "wechat", "video", "leader"} <= set(sources)
    # Each case's events replay through the lifecycle in order, from report to its last state.
    final, replayed = {}, {}
    for message, after in zip(events, cases):
        event = validate_case_event(message, reference, utc_now() + timedelta(days=400))
        replayed[event.case_id] = apply_event(replayed.get(event.case_id), event, rules)
        assert replayed[event.case_id].status == after.status
        final[after.case_id] = after
    statuses = Counter(case.status for case in final.values())
    total = len(final)
    assert 0.03 < statuses["invalid"] / total < 0.12
    for status in ("reported", "registered", "dispatched", "handled", "closed", "evaluated"):
        assert statuses[status] > 0, status
    assert (statuses["closed"] + statuses["evaluated"]) / total > 0.35
    self_handled = [c for c in final.values() if c.self_handled]
    assert self_handled and all(c.source == "patrol" and c.grade != "A" for c in self_handled)
    reworked = [c for c in final.values() if c.rework_count]
    assert 0.02 < len(reworked) / total < 0.12
    closed = [c for c in final.values() if c.closed_at and c.deadline]
    late = [c for c in closed if c.closed_at > c.deadline]
    assert 0.03 < len(late) / len(closed) < 0.6  # some departments run late, most do not
    by_dept = defaultdict(list)
    for case in closed:
        by_dept[case.dept].append(case.closed_at > case.deadline)
    slowest = max(by_dept, key=lambda dept: sim.world.dept_speed.get(dept, 0))
    assert np.mean(by_dept[slowest]) > len(late) / len(closed)
    evaluated = Counter(c.satisfaction for c in final.values() if c.status == "evaluated")
    assert evaluated["satisfied"] > evaluated["unsatisfied"] > 0
    for case in final.values():
        routed = case.redispatch_count or case.decline_count  # the centre sent it elsewhere
        assert case.dept == rules.categories[case.category].dept or case.dept == "SDZJ" or routed or case.dept is None
    assert 0.005 < sum(1 for c in final.values() if c.redispatch_count or c.decline_count) / total < 0.08
    assert any(c.supervise_count for c in final.values()) and any(c.extension_count for c in final.values())


def test_departments_keep_the_pace_of_their_record(district, rules, domain_config):
    t0 = datetime(2026, 11, 2, 1, 0)
    rows = [("SWJ", t0, t0 + timedelta(hours=hours), t0 + timedelta(hours=10)) for hours in np.linspace(9, 13, 25)]
    rows += [("CGJ", t0, t0 + timedelta(hours=3), t0 + timedelta(hours=10))] * 25
    rows += [("JTJ", t0, t0 + timedelta(hours=1), t0 + timedelta(hours=10))] * 3  # too few to tell
    paces = department_paces(rows)
    assert paces == pytest.approx({"SWJ": 1.1, "CGJ": 0.3})
    assert load_paces(district) == {}  # no record yet: random paces, SLOW_DEPARTMENTS of them slow
    grids = [(f"G{i}", shapely.box(121.0 + i * 0.01, 31.0, 121.005 + i * 0.01, 31.005), 500) for i in range(3)]
    world = build_world(grids, [], rules, ["SWJ", "CGJ", "JTJ"], domain_config.calendar, np.random.default_rng(0), paces=paces)
    assert world.dept_speed["SWJ"] == pytest.approx(1.1) and world.dept_speed["CGJ"] == pytest.approx(0.3)
    assert world.script_district.dept_speed is world.dept_speed  # what case_model.case_script reads


def test_patrol_reports_come_from_a_worker_on_a_round_in_their_grid(world, locator):
    sim, pings, events, _ = simulate(world, AFTERNOON, minutes=120, step_s=30, rate_per_hour=60)
    patrol = [m for m in events if m["action"] == "report" and m["source"] == "patrol"]
    assert len(patrol) > 10
    grid_of = dict(zip(world.workers.tolist(), world.grid_codes[world.worker_grid].tolist()))
    index_of = {worker: i for i, worker in enumerate(world.workers.tolist())}
    for message in patrol:
        assert message["grid"] == grid_of[message["worker"]]
        lat, lon = wgs84_to_gcj02(float(message["lat"]), float(message["lon"]))
        assert locator.locate(lat, lon)[0] == message["grid"]
        ts = datetime.fromisoformat(message["ts"]).timestamp()
        own = pings.ts[pings.worker == index_of[message["worker"]]]
        assert np.abs(own - ts).min() < 200  # the worker's device was reporting around then
    others = [m for m in events if m["action"] == "report" and m["source"] != "patrol"]
    assert others and all("worker" not in m for m in others)
    assert any("grid" not in m for m in others)  # some channels only know the position
    for message in others:
        lat, lon = wgs84_to_gcj02(float(message["lat"]), float(message["lon"]))
        located = locator.locate(lat, lon)[0]
        assert located is not None and located == message.get("grid", located)


def test_no_cases_without_workers_on_patrol_come_from_patrol(world):
    _, _, events, _ = simulate(world, local(2026, 11, 25, 0, 0), minutes=6 * 60, step_s=300, rate_per_hour=60)
    sources = Counter(m["source"] for m in events if m["action"] == "report")
    assert sources["patrol"] == 0 and sources["hotline"] > 0  # the hotline runs all night, patrols do not


def test_open_cases_from_the_database_are_moved_along(world, rules):
    start = local(2026, 11, 25, 10, 0)
    grid = world.grid_codes[0]
    lat, lon = world.waypoints[0, 0, 1], world.waypoints[0, 0, 0]
    open_cases = []
    for number, actions in enumerate([("report",), ("report", "register"), ("report", "register", "dispatch"),
                                      ("report", "register", "dispatch", "feedback")] * 5):
        case = None
        ts = start - timedelta(days=1, hours=number)
        for step, action in enumerate(actions):
            fields = {"grid": grid, "category": "E050101", "source": "hotline", "lat": lat, "lon": lon} if action == "report" else {}
            if action == "dispatch":
                fields["dept"] = rules.categories["E050101"].dept
            case = apply_event(case, CaseEvent(f"OLD{number}-{step}", f"OLD{number}", action, ts + timedelta(minutes=10 * step), **fields), rules)
        open_cases.append(case)
    sim = Simulation(world, start, SimOptions(seed=4, rate_per_hour=0, backlog_spread_s=1800, run_id="r1"), open_cases)
    assert len(sim.active) == 20
    events = []
    moment = start
    while moment < start + timedelta(days=3):
        moment += timedelta(minutes=10)
        events += sim.advance(moment).events
    by_case = defaultdict(list)
    for message in events:
        by_case[message["case_id"]].append(message)
    assert set(by_case) == {case.case_id for case in open_cases}
    for case in open_cases:
        first = by_case[case.case_id][0]
        assert datetime.fromisoformat(first["ts"]) >= start
        expected = {"reported": {"register", "reject"}, "registered": {"dispatch"}, "dispatched": {"feedback"}, "handled": {"close", "return"}}
        assert first["action"] in expected[case.status]
        assert all(m["event_id"].startswith(f"{case.case_id}-r1-") for m in by_case[case.case_id])
    assert len({m["event_id"] for m in events}) == len(events)


def test_timestamps_follow_the_clock_and_never_run_ahead(world):
    clock = FakeClock(AFTERNOON + timedelta(minutes=30))
    sim = Simulation(world, AFTERNOON, SimOptions(seed=2, rate_per_hour=120, run_id="sp"))
    seen = []

    def publisher(client, keys, output, workers, maxlen):
        now = clock.now()
        assert (output.pings.ts <= now.timestamp()).all()
        assert all(datetime.fromisoformat(m["ts"]) <= now for m in output.events)
        seen.append((now, sim.now))

    stats = run(sim, None, KEYS, RunOptions(duration_s=120, speedup=60, tick_s=1.0), clock=clock.now, sleep=clock.sleep, publisher=publisher)
    # 30 simulated minutes behind, 60 times faster: caught up after about 31 s, then in step with the clock.
    assert sim.now == clock.now()
    caught_up = [wall for wall, simulated in seen if simulated == wall]
    assert caught_up and (caught_up[0] - (AFTERNOON + timedelta(minutes=30))).total_seconds() == pytest.approx(31, abs=1.5)
    assert stats.pings > 0 and stats.events > 0


# ---------------------------------------------------------------- noise


def test_noise_is_opt_in_and_only_the_noise_is_refused(world, district, monkeypatch):
    reference = load_reference(district)
    clean = simulate(world, AFTERNOON, minutes=40, rate_per_hour=0)[1]
    now = AFTERNOON + timedelta(hours=1)
    raws = [dict(zip(m[::2], m[1::2])) for m in gps_messages(clean, world.workers)]
    assert validate_gps_batch(raws, reference, now).errors == {}
    monkeypatch.setattr(patrol_gps, "NOISE_GLITCH_PER_PING", 0.01)
    monkeypatch.setattr(patrol_gps, "NOISE_JUMP_PER_PING", 0.02)
    noisy = simulate(world, AFTERNOON, minutes=40, rate_per_hour=0, noise=True)[1]
    assert len(noisy) > len(clean)  # repeated sends
    raws = [dict(zip(m[::2], m[1::2])) for m in gps_messages(noisy, world.workers)]
    reasons = Counter(error.reason for error in validate_gps_batch(raws, reference, now).errors.values())
    assert reasons and set(reasons) <= {"out_of_district", "bad_coordinates"}
    assert sum(reasons.values()) < 0.05 * len(raws)


# ---------------------------------------------------------------- through the consumer


def test_published_traffic_is_all_accepted_and_the_database_is_never_written(feed_district, redis_url, domain_config):
    client = redis.Redis.from_url(redis_url)
    grids = basic_grids(feed_district)
    start = last_morning_round(minutes=20, calendar=domain_config.calendar)
    # Cases already open in the database (through the consumer), for the simulator to move along.
    before = start - timedelta(hours=3)
    client.xadd(KEYS.case_events, report("OPEN1", before, grids[0]))
    client.xadd(KEYS.case_events, report("OPEN2", before, grids[1]))
    client.xadd(KEYS.case_events, case_event("OPEN2", "register", before + timedelta(minutes=5)))
    client.xadd(KEYS.case_events, report("OPEN3", before, grids[2]))
    client.xadd(KEYS.case_events, case_event("OPEN3", "register", before + timedelta(minutes=5)))
    client.xadd(KEYS.case_events, case_event("OPEN3", "dispatch", before + timedelta(minutes=9), dept="CGJ"))
    ingest = make_ingest(feed_district, client, domain_config)
    assert drain(ingest)["applied"] == 6
    counts = table_counts(feed_district)

    rules = load_rules(feed_district, domain_config)
    world = load_world(feed_district, rules, domain_config.calendar, np.random.default_rng(5))
    open_cases = load_open_cases(feed_district)
    assert {case.case_id for case in open_cases} == {"OPEN1", "OPEN2", "OPEN3"}
    sim = Simulation(world, start, SimOptions(seed=9, rate_per_hour=150, backlog_spread_s=300, run_id="e2e"), open_cases)
    clock = FakeClock(start)
    seen = []
    stats = run(sim, client, KEYS, RunOptions(duration_s=20 * 60, tick_s=5.0), clock=clock.now, sleep=clock.sleep, publisher=checking_publisher(clock, seen))
    assert stats.pings > 1000 and stats.events > 20
    assert table_counts(feed_district) == counts  # the simulator only read

    published = client.xrange(KEYS.case_events)
    event_ids = [fields[b"event_id"] for _, fields in published]
    assert len(set(event_ids)) == len(event_ids)
    totals = drain(ingest, rounds=200)
    assert totals["dead"] == 0 and client.xlen(KEYS.dead_letter) == 0
    assert totals["applied"] == stats.pings + stats.events
    with feed_district.connect() as connection:
        statuses = Counter(dict(connection.execute(select(schema.cases.c.status, func.count()).group_by(schema.cases.c.status)).all()))
        resumed = dict(connection.execute(select(schema.cases.c.id, schema.cases.c.status).where(schema.cases.c.id.in_(["OPEN1", "OPEN2", "OPEN3"]))).all())
        wrong_grid = connection.execute(
            select(func.count()).select_from(schema.patrol_points.join(schema.workers, schema.workers.c.id == schema.patrol_points.c.worker))
            .where(schema.patrol_points.c.grid != schema.workers.c.grid)
        ).scalar()
        patrolled = connection.execute(select(func.count(func.distinct(schema.patrol_days.c.worker)))).scalar()
        patrol_cases = connection.execute(select(func.count()).select_from(schema.cases).where(schema.cases.c.source == "patrol", schema.cases.c.worker.is_not(None))).scalar()
    assert wrong_grid == 0 and patrolled >= 12
    assert statuses["registered"] + statuses["dispatched"] > 0 and statuses["reported"] > 0
    assert resumed != {"OPEN1": "reported", "OPEN2": "registered", "OPEN3": "dispatched"}
    assert patrol_cases > 0


def test_noise_through_the_consumer_becomes_dead_letters_with_reasons(feed_district, redis_url, domain_config, monkeypatch):
    monkeypatch.setattr(patrol_gps, "NOISE_GLITCH_PER_PING", 0.02)
    client = redis.Redis.from_url(redis_url)
    start = last_morning_round(minutes=10, calendar=domain_config.calendar)
    rules = load_rules(feed_district, domain_config)
    world = load_world(feed_district, rules, domain_config.calendar, np.random.default_rng(5))
    sim = Simulation(world, start, SimOptions(seed=3, rate_per_hour=300, noise=True, run_id="noisy"))
    clock = FakeClock(start)
    run(sim, client, KEYS, RunOptions(duration_s=10 * 60, tick_s=5.0), clock=clock.now, sleep=clock.sleep)
    totals = drain(make_ingest(feed_district, client, domain_config), rounds=200)
    reasons = Counter(fields[b"dlq_reason"].decode() for _, fields in client.xrange(KEYS.dead_letter))
    assert totals["dead"] == sum(reasons.values()) > 0
    assert set(reasons) <= {"out_of_district", "bad_coordinates"}


# ---------------------------------------------------------------- city scale (in memory)


def test_a_city_of_workers_advances_in_one_vectorised_pass(domain_config):
    """20,000 workers on 5,000 square grids, built in memory: one step is a few array passes."""
    import time as clock

    side, size_deg = 50, 0.004
    boxes = [(f"G{i:05d}", shapely.box(120.5 + (i % side) * size_deg, 31.0 + (i // side) * size_deg,
                                       120.5 + (i % side + 1) * size_deg, 31.0 + (i // side + 1) * size_deg), 2000)
             for i in range(side * 100)]
    staff = [(f"W{n:06d}", boxes[n % len(boxes)][0]) for n in range(20_000)]
    rules = Rules(categories={}, calendar=domain_config.calendar, grade_limits={})
    world = build_world(boxes, staff, rules, [], domain_config.calendar, np.random.default_rng(0))
    sim = Simulation(world, AFTERNOON + timedelta(minutes=30), SimOptions(seed=1, rate_per_hour=0))
    sim.advance(AFTERNOON + timedelta(minutes=31))
    began = clock.perf_counter()
    pings = sim.advance(AFTERNOON + timedelta(minutes=32)).pings
    elapsed = clock.perf_counter() - began
    on_round = sim.on_round().size
    assert on_round > 10_000 and len(pings) == pytest.approx(on_round * 6, rel=0.1)
    gcj_lat, gcj_lon = wgs84_to_gcj02(pings.lat, pings.lon)
    assert shapely.contains_xy(np.array([box for _, box, _ in boxes])[world.worker_grid[pings.worker]], gcj_lon, gcj_lat).all()
    assert elapsed < 5.0  # ~100,000 pings: vectorised, not a Python loop per worker
    assert len(gps_messages(pings, world.workers)) == len(pings)


# ---------------------------------------------------------------- command line


def test_parse_start(domain_config):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_start("-2h", now, TZ, 90) == now - timedelta(hours=2)
    assert parse_start("-90m", now, TZ, 90) == parse_start("90m", now, TZ, 90) == now - timedelta(minutes=90)
    assert parse_start("1.5d", now, TZ, 90) == now - timedelta(days=1.5)
    assert parse_start("2026-11-27T08:30", now, TZ, 90) == datetime(2026, 11, 27, 8, 30, tzinfo=TZ)
    for bad in ("2026-11-28T08:30", "yesterday", "-200d"):
        with pytest.raises(SimulatorError):
            parse_start(bad, now, TZ, 90)


def run_app(tmp_path: Path, *args, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("GRIDOPS_")}
    env.update(GRIDOPS_VAR_DIR=str(tmp_path / "var"), **env_overrides)
    return subprocess.run([sys.executable, "app.py", *map(str, args)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


def test_simulate_help_lists_the_options(tmp_path):
    result = run_app(tmp_path, "simulate", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--duration", "--seed", "--workers", "--rate", "--gps-interval", "--speedup", "--start", "--noise", "--maxlen"):
        assert option in result.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_simulate_command_runs_and_only_reads(feed_district, database_url, redis_url, tmp_path):
    counts = table_counts(feed_district)
    result = run_app(tmp_path, "simulate", "--duration", "2", "--seed", "5", "--rate", "600",
                     "--start", "1h", "--speedup", "3600", DATABASE_URL=database_url, REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("simulate:") and "Traceback" not in result.stderr
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(KEYS.case_events) > 0
    assert table_counts(feed_district) == counts


def test_simulate_refuses_a_missing_database_with_one_line(tmp_path, redis_url):
    result = run_app(tmp_path, "simulate", "--duration", "1", DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}", REDIS_URL=redis_url)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: no database at")
    assert not (tmp_path / "none.db").exists()
