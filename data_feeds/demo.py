"""The demo district: 吴中区 (Wuzhong, Suzhou) with 90 days of history.

Reference data goes through the real importers (departments, catalogue, the DataV
boundary subdivided into the 12 real towns and streets, a generated staff file), and the
history through the lifecycle rules of ``gridrules.lifecycle``: every case is a sequence
of feed events applied by ``apply_event``, exactly as the feed consumer applies them.
Written with bulk inserts; deterministic for a seed.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from data_feeds import db, reference, rollups, schema
from data_feeds.case_model import (
    CASES_PER_DAY,
    DAY_PROFILE,
    PATROL_PROFILE,
    POINTS_PER_GRID,
    REFERENCE_GRIDS,
    SOURCE_MIX,
    District,
    arrival_times,
    case_script,
    draw_district,
    next_step_at,
    points_inside,
    step_event,
)
from data_feeds.case_store import case_row, event_row
from data_feeds.case_texts import SURNAMES
from data_feeds.importers.catalogue import import_catalogue
from data_feeds.importers.departments import import_departments
from data_feeds.importers.grids import SubdivideOptions, import_grids
from data_feeds.importers.workers import import_workers
from data_feeds.patrol_rounds import (
    DILIGENCE_BETA,
    EBIKE_SHARE,
    REST_DAY_SECOND_ROUND,
    ROUND_JITTER_MIN,
    ROUND_LENGTH_FACTOR,
    ROUND_MINUTES,
    ROUND_STARTS,
    WALK_SPEED_MPS,
)
from data_feeds.reference import load_rules
from gridrules.config import DomainConfig
from gridrules.lifecycle import Case, Rules, apply_event
from gridrules.patrol import summarise_tracks

log = logging.getLogger(__name__)

PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"  # the default catalogue, departments, towns, the demo's outline
DEMO_BOUNDARY = PACKAGE_DATA_DIR / "boundaries" / "320506.geojson"
DEMO_TOWNS = PACKAGE_DATA_DIR / "towns.csv"
DEFAULT_DEPARTMENTS = PACKAGE_DATA_DIR / "departments.csv"
DEFAULT_CATALOGUE = PACKAGE_DATA_DIR / "catalogue.csv"

HISTORY_DAYS = 90
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华玉兰志强海燕红梅文斌晓东晓明丹丹婷婷雪梅国庆卫东永刚立新春梅"


@dataclass(frozen=True)
class DemoSize:
    communities: int = 200
    grids: int = REFERENCE_GRIDS
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
    rollups.rebuild(engine, config.calendar.tz)
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


def _load_district(engine: Engine, rules: Rules, rng) -> District:
    """The demo's district as ``case_model`` draws cases from it."""
    with engine.connect() as connection:
        grids = connection.execute(
            select(schema.grids.c.code, schema.grids.c.geometry, schema.grids.c.population).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)
        ).all()
        staff = connection.execute(select(schema.workers.c.id, schema.workers.c.grid).where(schema.workers.c.role == "worker")).all()
        departments = list(connection.execute(select(schema.departments.c.code).order_by(schema.departments.c.code)).scalars())
    polygons = shapely.from_geojson(np.array([row.geometry for row in grids], dtype=object))
    points = points_inside(polygons, POINTS_PER_GRID, rng)
    return draw_district([row.code for row in grids], [row.population for row in grids], points, staff, rules, departments, rng,
                         places=reference.grid_places(engine))


def play_case(case_id: str, reported_at: datetime, script, rules: Rules, now: datetime, rng) -> tuple[Case | None, list[dict]]:
    """Apply a case's events up to ``now`` through the lifecycle; returns the case and event rows."""
    case = None
    events = []
    ts = reported_at
    for number, (fields, fraction) in enumerate(script):
        if number:
            ts = next_step_at(case, ts, fraction, rng)
        if ts > now:
            break
        event = step_event(case, fields, f"{case_id}-{number}", case_id, ts, rng)
        before, case = case, apply_event(case, event, rules)
        events.append(event_row(event, before, case, ts))
    return case, events


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
            script = case_script(source, district, rules, rng)
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
    diligence = {worker: float(rng.beta(*DILIGENCE_BETA)) for _, worker in workers}  # share of rounds walked
    ebike = {worker: rng.random() < EBIKE_SHARE for _, worker in workers}
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
            rounds = int((rng.random() < diligence[worker]) + (rng.random() < diligence[worker] * (1.0 if working else REST_DAY_SECOND_ROUND)))
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


TRACK_STEP_S = 30
TRACK_EBIKE_SPEED_MPS = 3.0  # the simulator's e-bikes ride at 4 m/s (simulator.patrol_gps.EBIKE_SPEED_MPS)


def today_tracks(district: District, workers, now: datetime, tz, rng, ebike: dict) -> pd.DataFrame:
    """Today's rounds up to ``now``: a point every 30 s, walking inside the worker's own grid."""
    frames = []
    today = now.astimezone(tz).date()
    for round_start in ROUND_STARTS:
        begin = datetime.combine(today, round_start, tzinfo=tz)
        if begin >= now:
            continue
        for grid, worker in workers:
            offset = timedelta(minutes=float(rng.uniform(-ROUND_JITTER_MIN, ROUND_JITTER_MIN)))
            first = begin + offset
            last = min(now, first + timedelta(minutes=ROUND_MINUTES * float(rng.uniform(*ROUND_LENGTH_FACTOR))))
            steps = int((last - first).total_seconds() // TRACK_STEP_S)
            if steps < 2:
                continue
            anchors = district.grid_points[grid]
            path = _walk(anchors, steps, rng, speed_mps=TRACK_EBIKE_SPEED_MPS if ebike[worker] else WALK_SPEED_MPS)
            stamps = pd.date_range(first.astimezone(UTC).replace(tzinfo=None), periods=steps, freq=f"{TRACK_STEP_S}s")
            frames.append(pd.DataFrame({
                "worker": worker, "ts": stamps, "lat": path[:, 1].round(6), "lon": path[:, 0].round(6), "grid": grid,
                "speed": TRACK_EBIKE_SPEED_MPS if ebike[worker] else WALK_SPEED_MPS, "heading": _headings(path),
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
