"""The demo district: 吴中区 (Wuzhong, Suzhou) with 90 days of history.

Reference data goes through the real importers (departments, catalogue, the DataV
boundary subdivided into the 12 real towns and streets, a generated staff file), and the
history through the lifecycle rules of ``gridrules.lifecycle``: every case is a sequence
of feed events applied by ``apply_event``, exactly as the feed consumer applies them.
Written with bulk inserts; deterministic for a seed.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from data_feeds import db, schema
from data_feeds.case_store import case_row
from data_feeds.importers.catalogue import import_catalogue
from data_feeds.importers.departments import import_departments
from data_feeds.importers.grids import SubdivideOptions, import_grids
from data_feeds.importers.workers import import_workers
from data_feeds.reference import load_rules
from gridrules.config import DomainConfig
from gridrules.lifecycle import Case, CaseEvent, Rules, apply_event
from gridrules.patrol import summarise_tracks

log = logging.getLogger(__name__)

PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"  # the default catalogue, departments, towns, the demo's outline
DEMO_BOUNDARY = PACKAGE_DATA_DIR / "boundaries" / "320506.geojson"
DEMO_TOWNS = PACKAGE_DATA_DIR / "towns.csv"
DEFAULT_DEPARTMENTS = PACKAGE_DATA_DIR / "departments.csv"
DEFAULT_CATALOGUE = PACKAGE_DATA_DIR / "catalogue.csv"

HISTORY_DAYS = 90
CASES_PER_DAY = 380
SOURCE_MIX = {"patrol": 0.55, "hotline": 0.24, "police": 0.05, "wechat": 0.07, "video": 0.07, "leader": 0.02}
# Relative arrivals by local hour, per source: patrols report on their rounds, the
# hotline follows the waking day, police transfers lean to the evening.
DAY_PROFILE = np.array([0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 0.9, 1.4, 1.6, 1.5, 1.2, 0.8, 1.0, 1.4, 1.5, 1.4, 1.1, 0.9, 0.8, 0.7, 0.6, 0.4, 0.25])
PATROL_PROFILE = np.array([0, 0, 0, 0, 0, 0, 0, 0.2, 1.5, 2.0, 1.8, 0.6, 0.1, 0.3, 1.6, 2.0, 1.7, 0.5, 0.1, 0, 0, 0, 0, 0], dtype=float)
WEEKDAY_FACTOR = np.array([1.12, 1.08, 1.05, 1.05, 1.0, 0.78, 0.7])  # Monday first
INVALID_RATE = {"patrol": 0.03, "hotline": 0.09, "police": 0.06, "wechat": 0.12, "video": 0.08, "leader": 0.0}
SELF_HANDLED_RATE_PATROL = 0.22
REWORK_RATE = 0.07
EVALUATED_RATE = 0.75
SLOW_DEPARTMENTS = 3  # departments that tend to run late
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华玉兰志强海燕红梅文斌晓东晓明丹丹婷婷雪梅国庆卫东永刚立新春梅"


@dataclass(frozen=True)
class DemoSize:
    communities: int = 200
    grids: int = 900
    days: int = HISTORY_DAYS
    cases_per_day: int = CASES_PER_DAY
    seed: int = 20261127


def is_seeded(engine: Engine) -> bool:
    return db.get_meta(engine, "demo_seeded_at") is not None


def ensure_demo(engine: Engine, config: DomainConfig, now: datetime, var_dir: Path, size: DemoSize = DemoSize()) -> bool:
    """Create and fill the demo district unless the database already holds it; True if it did."""
    db.init_db(engine)
    if is_seeded(engine):
        return False
    seed_reference(engine, var_dir, size)
    rules = load_rules(engine, config)
    generate_history(engine, rules, config, now, size)
    with engine.begin() as connection:
        db.set_meta(connection, "demo_seeded_at", now.astimezone(UTC).isoformat())
    return True


def seed_reference(engine: Engine, var_dir: Path, size: DemoSize) -> None:
    """Departments, catalogue, grids and staff, all through the importers."""
    log.info("%s", import_departments(engine, DEFAULT_DEPARTMENTS))
    log.info("%s", import_catalogue(engine, DEFAULT_CATALOGUE))
    log.info("%s", import_grids(engine, DEMO_BOUNDARY, SubdivideOptions(DEMO_TOWNS, size.communities, size.grids, size.seed)))
    staff_file = Path(var_dir) / "demo" / "workers.csv"
    write_staff_file(engine, staff_file, size.seed)
    log.info("%s", import_workers(engine, staff_file))


def write_staff_file(engine: Engine, path: Path, seed: int) -> None:
    """A staff CSV: one grid worker (网格员) per basic grid, one grid head (网格长) per community."""
    rng = np.random.default_rng(seed + 1)
    with engine.connect() as connection:
        areas = connection.execute(select(schema.grids.c.code, schema.grids.c.level).where(schema.grids.c.level.in_((3, 4))).order_by(schema.grids.c.code)).all()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "grid", "role", "phone"])
        for number, (code, level) in enumerate(areas, start=1):
            name = rng.choice(list(SURNAMES)) + "".join(rng.choice(list(GIVEN), size=int(rng.integers(1, 3))))
            phone = f"1{rng.choice([3, 5, 7, 8, 9])}{rng.integers(0, 10)}{rng.integers(10_000_000, 100_000_000)}"
            writer.writerow([f"W{number:05d}", name, code, "worker" if level == 4 else "head", phone])


# ---------------------------------------------------------------- history


@dataclass
class District:
    grid_codes: list
    grid_weights: np.ndarray
    grid_points: dict  # code -> array of (lon, lat) inside the grid
    worker_of_grid: dict
    detail_codes: list
    detail_weights: np.ndarray
    departments: list
    dept_speed: dict


def _load_district(engine: Engine, rules: Rules, rng) -> District:
    with engine.connect() as connection:
        grids = connection.execute(
            select(schema.grids.c.code, schema.grids.c.geometry, schema.grids.c.population).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)
        ).all()
        staff = connection.execute(select(schema.workers.c.id, schema.workers.c.grid).where(schema.workers.c.role == "worker")).all()
        departments = list(connection.execute(select(schema.departments.c.code).order_by(schema.departments.c.code)).scalars())
    codes = [row.code for row in grids]
    population = np.array([row.population or 1000 for row in grids], dtype=float)
    hot = rng.choice(len(codes), size=max(1, len(codes) // 40), replace=False)
    population[hot] *= 5  # hot spots: markets, stations, old estates
    points = {}
    for row in grids:
        polygon = shape(json.loads(row.geometry))
        points[row.code] = _points_inside(polygon, 24, rng)
    details = sorted(code for code, category in rules.categories.items() if category.is_detail)
    ranks = rng.permutation(len(details)) + 1
    weights = 1.0 / ranks**0.9  # a few categories dominate, as in every bulletin
    speed = {code: float(rng.lognormal(math.log(0.45), 0.25)) for code in departments}
    for code in rng.choice(departments, size=min(SLOW_DEPARTMENTS, len(departments)), replace=False):
        speed[code] = float(rng.uniform(0.95, 1.25))
    return District(
        grid_codes=codes,
        grid_weights=population / population.sum(),
        grid_points=points,
        worker_of_grid={grid: worker for worker, grid in staff},
        detail_codes=details,
        detail_weights=weights / weights.sum(),
        departments=departments,
        dept_speed=speed,
    )


def _points_inside(polygon, count: int, rng) -> np.ndarray:
    min_x, min_y, max_x, max_y = polygon.bounds
    found = []
    for _ in range(50):
        xs = rng.uniform(min_x, max_x, count * 4)
        ys = rng.uniform(min_y, max_y, count * 4)
        inside = shapely.contains_xy(polygon, xs, ys)
        found.extend(zip(xs[inside], ys[inside]))
        if len(found) >= count:
            break
    if not found:
        point = polygon.representative_point()
        found = [(point.x, point.y)]
    return np.array(found[:count])


def arrival_times(start: datetime, end: datetime, per_day: float, profile: np.ndarray, tz, rng) -> list[datetime]:
    """Arrivals of a non-homogeneous Poisson process by local hour profile and weekday."""
    result = []
    hour = start.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    mean_profile = profile.mean()
    while hour < end:
        rate = per_day / 24.0 * profile[hour.hour] / mean_profile * WEEKDAY_FACTOR[hour.weekday()]
        for _ in range(rng.poisson(rate)):
            moment = hour + timedelta(seconds=float(rng.uniform(0, 3600)))
            if start <= moment < end:
                result.append(moment)
        hour += timedelta(hours=1)
    return sorted(result)


def case_script(case_id: str, reported_at: datetime, source: str, district: District, rules: Rules, rng) -> list[dict]:
    """The feed events of one case's whole life, as the field apps would publish them."""
    grid = district.grid_codes[rng.choice(len(district.grid_codes), p=district.grid_weights)]
    category = rules.categories[district.detail_codes[rng.choice(len(district.detail_codes), p=district.detail_weights)]]
    lon, lat = district.grid_points[grid][rng.integers(len(district.grid_points[grid]))]
    report = {
        "action": "report", "grid": grid, "category": category.code, "source": source,
        "lat": round(float(lat), 6), "lon": round(float(lon), 6),
        "worker": district.worker_of_grid.get(grid) if source == "patrol" else None,
    }
    if source != "patrol" and rng.random() < 0.6:
        report["reporter"] = rng.choice(list(SURNAMES)) + "先生" if rng.random() < 0.5 else rng.choice(list(SURNAMES)) + "女士"
        report["contact"] = f"1{rng.choice([3, 5, 8, 9])}{rng.integers(100_000_000, 1_000_000_000)}"
    dept = category.dept if rng.random() > 0.05 else "SDZJ" if "SDZJ" in district.departments else category.dept
    return [(report, 0.0)] + lifecycle_steps("reported", source, category.grade, dept, district.dept_speed.get(dept, 0.5), rng)


def lifecycle_steps(status: str, source: str, grade: str, dept: str, speed: float, rng) -> list[tuple[dict, float]]:
    """The rest of a case's life from ``status``: feed events and, for each, the share of its
    stage's time it takes (-1: an evaluation, hours after closing). Rejection, on-the-spot
    handling, department speed, rework and evaluation follow the module's rates."""
    steps: list[tuple[dict, float]] = []
    if status == "reported":
        if rng.random() < INVALID_RATE.get(source, 0.05):
            return [({"action": "reject"}, stage_fraction(rng, 0.4, 0.5))]
        if source == "patrol" and grade != "A" and rng.random() < SELF_HANDLED_RATE_PATROL:
            return [({"action": "close"}, stage_fraction(rng, 0.5, 0.4))]
        steps.append(({"action": "register"}, stage_fraction(rng, 0.35, 0.6)))
        status = "registered"
    if status == "registered":
        steps.append(({"action": "dispatch", "dept": dept}, stage_fraction(rng, 0.3, 0.6)))
        status = "dispatched"
    if status == "dispatched":
        steps.append(({"action": "feedback"}, stage_fraction(rng, speed, 0.5)))
    while rng.random() < REWORK_RATE and len(steps) < 12:
        steps += [({"action": "return"}, stage_fraction(rng, 0.4, 0.5)), ({"action": "feedback"}, stage_fraction(rng, speed * 0.5, 0.5))]
    steps.append(({"action": "close"}, stage_fraction(rng, 0.3, 0.5)))
    if rng.random() < EVALUATED_RATE:
        steps.append(({"action": "evaluate", "satisfaction": None}, -1.0))
    return steps


def stage_fraction(rng, median: float, sigma: float) -> float:
    """How much of the current stage's time the next step takes (lognormal)."""
    return float(rng.lognormal(math.log(median), sigma))


def play_case(case_id: str, reported_at: datetime, script, rules: Rules, now: datetime, rng) -> tuple[Case | None, list[dict]]:
    """Apply a case's events up to ``now`` through the lifecycle; returns the case and event rows."""
    case = None
    events = []
    ts = reported_at
    for number, (fields, fraction) in enumerate(script):
        if number:
            if fraction < 0:  # evaluation: hours after closing, by phone
                ts = ts + timedelta(hours=float(rng.uniform(0.5, 48)))
            else:
                span = (case.stage_deadline - ts) if case.stage_deadline and case.stage_deadline > ts else timedelta(minutes=30)
                ts = ts + max(timedelta(seconds=30), span * fraction)
        if ts > now:
            break
        fields = dict(fields)
        if fields["action"] == "evaluate":
            late = case.deadline is not None and case.closed_at > case.deadline
            fields["satisfaction"] = str(rng.choice(["satisfied", "basic", "unsatisfied"], p=[0.55, 0.25, 0.2] if late else [0.8, 0.15, 0.05]))
        event = CaseEvent(event_id=f"{case_id}-{number}", case_id=case_id, ts=ts, actor=actor_of(fields, case), **fields)
        before = case.status if case else None
        case = apply_event(case, event, rules)
        events.append({
            "event_id": event.event_id, "case_id": case_id, "action": event.action, "ts": db.to_db_time(ts),
            "actor": event.actor, "from_status": before, "to_status": case.status, "dept": event.dept,
            "detail": None, "received_at": db.to_db_time(ts),
        })
    return case, events


def actor_of(fields: dict, case: Case | None) -> str:
    action = fields["action"]
    if action == "report":
        return fields.get("worker") or fields["source"]
    if action == "feedback":
        return case.dept or "dept"
    if action == "evaluate":
        return "citizen"
    return "centre"


def generate_history(engine: Engine, rules: Rules, config: DomainConfig, now: datetime, size: DemoSize) -> None:
    """Cases of ``size.days`` days up to ``now`` and the patrol record of every worker."""
    rng = np.random.default_rng(size.seed + 2)
    tz = config.calendar.tz
    district = _load_district(engine, rules, rng)
    start = datetime.combine((now.astimezone(tz) - timedelta(days=size.days - 1)).date(), time(0), tzinfo=tz)
    case_rows, event_rows = [], []
    for source, share in SOURCE_MIX.items():
        profile = PATROL_PROFILE if source == "patrol" else DAY_PROFILE
        for reported_at in arrival_times(start, now, size.cases_per_day * share, profile, tz, rng):
            case_id = f"{reported_at.astimezone(tz):%Y%m%d}-{len(case_rows) + 1:06d}"
            script = case_script(case_id, reported_at, source, district, rules, rng)
            case, events = play_case(case_id, reported_at, script, rules, now, rng)
            if case is not None:
                case_rows.append(case_row(case))
                event_rows.extend(events)
    with engine.begin() as connection:
        _bulk_insert(connection, schema.cases, case_rows)
        _bulk_insert(connection, schema.case_events, event_rows)
        patrol_days, points = patrol_history(engine, district, start, now, tz, rng)
        _bulk_insert(connection, schema.patrol_days, patrol_days)
        _bulk_insert(connection, schema.patrol_points, points)
    log.info("demo history: %d cases, %d events, %d patrol days, %d track points", len(case_rows), len(event_rows), len(patrol_days), len(points))


def _bulk_insert(connection, table, rows: list[dict], chunk: int = 20_000) -> None:
    for begin in range(0, len(rows), chunk):
        connection.execute(table.insert(), rows[begin : begin + chunk])


# ---------------------------------------------------------------- patrol


def patrol_history(engine: Engine, district: District, start: datetime, now: datetime, tz, rng) -> tuple[list[dict], list[dict]]:
    """Daily patrol summaries for past days, and today's thinned tracks with their summary."""
    workers = sorted(district.worker_of_grid.items(), key=lambda item: item[1])
    diligence = {worker: float(rng.beta(6, 1.5)) for _, worker in workers}  # share of rounds walked
    ebike = {worker: rng.random() < 0.3 for _, worker in workers}
    calendar_days = []
    day = start.date()
    today = now.astimezone(tz).date()
    rows = []
    while day < today:
        calendar_days.append(day)
        day += timedelta(days=1)
    for day in calendar_days:
        working = day.weekday() < 5
        for grid, worker in workers:
            rounds = int((rng.random() < diligence[worker]) + (rng.random() < diligence[worker] * (1.0 if working else 0.3)))
            if not rounds:
                continue
            hours = float(sum(rng.normal(1.5, 0.3) for _ in range(rounds)))
            speed_kmh = rng.normal(6.0, 1.0) if ebike[worker] else rng.normal(3.2, 0.4)
            rows.append({"day": day, "worker": worker, "grid": grid, "seconds": max(0.0, hours) * 3600, "meters": max(0.0, hours * speed_kmh) * 1000, "points": int(hours * 120), "rounds": rounds})
    points = today_tracks(district, workers, now, tz, rng, ebike)
    if not points.empty:
        summary = summarise_tracks(points, tz)
        rows.extend(summary.to_dict("records"))
        point_rows = points.assign(ts=points["ts"].dt.to_pydatetime()).to_dict("records")
    else:
        point_rows = []
    return rows, point_rows


ROUND_STARTS = (time(8, 30), time(14, 30))
ROUND_MINUTES = 90
TRACK_STEP_S = 30


def today_tracks(district: District, workers, now: datetime, tz, rng, ebike: dict) -> pd.DataFrame:
    """Today's rounds up to ``now``: a point every 30 s, walking inside the worker's own grid."""
    frames = []
    today = now.astimezone(tz).date()
    for round_start in ROUND_STARTS:
        begin = datetime.combine(today, round_start, tzinfo=tz)
        if begin >= now:
            continue
        for grid, worker in workers:
            offset = timedelta(minutes=float(rng.uniform(-20, 20)))
            first = begin + offset
            last = min(now, first + timedelta(minutes=ROUND_MINUTES * float(rng.uniform(0.7, 1.2))))
            steps = int((last - first).total_seconds() // TRACK_STEP_S)
            if steps < 2:
                continue
            anchors = district.grid_points[grid]
            path = _walk(anchors, steps, rng, speed_mps=3.0 if ebike[worker] else 1.2)
            stamps = pd.date_range(first.astimezone(UTC).replace(tzinfo=None), periods=steps, freq=f"{TRACK_STEP_S}s")
            frames.append(pd.DataFrame({
                "worker": worker, "ts": stamps, "lat": path[:, 1].round(6), "lon": path[:, 0].round(6), "grid": grid,
                "speed": 3.0 if ebike[worker] else 1.2, "heading": _headings(path),
            }))
    if not frames:
        return pd.DataFrame(columns=["worker", "ts", "lat", "lon", "grid", "speed", "heading"])
    return pd.concat(frames, ignore_index=True)


def _walk(anchors: np.ndarray, steps: int, rng, speed_mps: float) -> np.ndarray:
    """Walk from anchor to anchor inside the grid at a steady pace (lon/lat degrees)."""
    metres_per_degree = 111_320.0
    step_deg = speed_mps * TRACK_STEP_S / metres_per_degree
    position = anchors[rng.integers(len(anchors))].astype(float)
    result = np.empty((steps, 2))
    target = anchors[rng.integers(len(anchors))]
    for index in range(steps):
        delta = target - position
        distance = float(np.hypot(*delta))
        if distance < step_deg:
            position = target.astype(float)
            target = anchors[rng.integers(len(anchors))]
        else:
            position = position + delta / distance * step_deg
        result[index] = position + rng.normal(0, 0.00002, 2)
    return result


def _headings(path: np.ndarray) -> np.ndarray:
    delta = np.diff(path, axis=0, prepend=path[:1])
    return (np.degrees(np.arctan2(delta[:, 0], delta[:, 1])) % 360).round(1)


def count_rows(engine: Engine, table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar())
