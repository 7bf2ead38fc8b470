"""The district as the simulator sees it (``World``), read once from the grid database and never written:
basic grids with their polygons and waypoints, the patrolling grid workers, and what
``data_feeds.case_model`` draws cases from, with each department's pace taken from its record.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from data_feeds import db, reference, schema
from data_feeds.case_model import POINTS_PER_GRID, District, draw_district, points_inside
from data_feeds.case_store import case_from_row
from gridrules.lifecycle import Case, Rules
from gridrules.workcalendar import WorkCalendar

INNER_MARGIN_M = 2.0  # workers stay this far inside their polygon, so GPS rounding never crosses it
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_EQUATOR = 111_320.0
PACE_WINDOW_DAYS = 30  # a department's pace is read from its cases dispatched in this window...
PACE_MIN_CASES = 20  # ...when it handled at least this many of them without rework
PACE_RANGE = (0.1, 2.0)  # share of the handling time, clipped


class SimulatorError(RuntimeError):
    """The simulator cannot run; the message says what to do."""


@dataclass(frozen=True)
class World:
    """The district as the simulator sees it: read once from the database, never written."""

    calendar: WorkCalendar
    rules: Rules
    grid_codes: np.ndarray  # basic grids (deepest level)
    polygons: np.ndarray  # each grid's polygon shrunk by INNER_MARGIN_M (GCJ-02, prepared)
    waypoints: np.ndarray  # (grids, POINTS_PER_GRID, 2): lon, lat inside each polygon
    metres_per_deg_lon: np.ndarray  # per grid, at its latitude
    workers: np.ndarray  # ids of the patrolling grid workers
    worker_grid: np.ndarray  # index of each worker's grid
    staff_size: int  # grid workers of the district; patrol reports scale with the share patrolling
    script_district: District  # what ``case_model.case_script`` draws grids, categories and departments from

    @property
    def tz(self):
        return self.calendar.tz

    @property
    def departments(self) -> tuple:
        return tuple(self.script_district.departments)

    @property
    def dept_speed(self) -> dict:
        """Department -> median share of the handling time it takes."""
        return self.script_district.dept_speed


def build_world(
    grids: Sequence[tuple[str, object, float | None]],
    staff: Sequence[tuple[str, str]],
    rules: Rules,
    departments: Sequence[str],
    calendar: WorkCalendar,
    rng,
    worker_limit: int | None = None,
    paces: dict | None = None,
    places: dict | None = None,
) -> World:
    """The simulator's district from basic grids (code, GCJ-02 shapely geometry, population)
    and grid workers (id, grid code); pure, so tests and benchmarks build one in memory.

    ``paces``: departments' known share of the handling time (``department_paces``), which
    replace the random draw so the departments late in the record stay late.
    """
    codes = np.array([code for code, _, _ in grids], dtype=object)
    outer = np.array([geometry for _, geometry, _ in grids], dtype=object)
    if not len(codes):
        raise SimulatorError("the database has no basic grids with a polygon")
    centre_lat = (shapely.bounds(outer)[:, 1] + shapely.bounds(outer)[:, 3]) / 2.0
    mx = METRES_PER_DEGREE_EQUATOR * np.cos(np.radians(centre_lat))
    inner = shapely.buffer(outer, -INNER_MARGIN_M / mx)
    usable = ~shapely.is_empty(inner) & (shapely.area(inner) > 0)
    polygons = np.where(usable, inner, outer)
    shapely.prepare(polygons)
    waypoints = points_inside(polygons, POINTS_PER_GRID, rng)
    # Where the other channels' cases happen, the categories and the departments' pace.
    district = draw_district(codes.tolist(), [population for _, _, population in grids], waypoints, staff, rules, departments, rng, paces, places)

    index_of = {code: i for i, code in enumerate(codes)}
    patrolling = sorted((worker, grid) for worker, grid in staff if grid in index_of)
    staff_size = len(patrolling)
    if worker_limit is not None and worker_limit < len(patrolling):
        chosen = np.sort(rng.choice(len(patrolling), size=worker_limit, replace=False))
        patrolling = [patrolling[i] for i in chosen]
    workers = np.array([worker for worker, _ in patrolling], dtype=object)
    worker_grid = np.array([index_of[grid] for _, grid in patrolling], dtype=np.int64)
    return World(
        calendar=calendar, rules=rules, grid_codes=codes, polygons=polygons, waypoints=waypoints,
        metres_per_deg_lon=mx, workers=workers, worker_grid=worker_grid, staff_size=staff_size, script_district=district,
    )


def check_tables(engine: Engine) -> None:
    """Refuse a database without the schema (an empty file, a wrong URL) with what to do."""
    if not inspect(engine).has_table(schema.grids.name):
        raise SimulatorError(f"the database at {db.describe(engine)} has no tables: run `python app.py` for the demo, or init-db and the imports")


def department_paces(rows: Iterable[tuple]) -> dict[str, float]:
    """Each department's median share of the handling time it took to feed back, from
    (dept, dispatched_at, handled_at, deadline) of cases handled without rework; only
    departments with at least PACE_MIN_CASES such cases."""
    shares: dict[str, list] = {}
    for dept, dispatched, handled, deadline in rows:
        if dept and dispatched and handled and deadline and deadline > dispatched:
            shares.setdefault(dept, []).append((handled - dispatched) / (deadline - dispatched))
    return {dept: float(np.clip(np.median(values), *PACE_RANGE)) for dept, values in shares.items() if len(values) >= PACE_MIN_CASES}


def load_paces(engine: Engine, now: datetime | None = None) -> dict[str, float]:
    """``department_paces`` of the database's record (the last PACE_WINDOW_DAYS before ``now``; all when None)."""
    c = schema.cases.c
    statement = select(c.dept, c.dispatched_at, c.handled_at, c.deadline).where(
        c.handled_at.is_not(None), c.dispatched_at.is_not(None), c.deadline.is_not(None), c.rework_count == 0
    )
    if now is not None:
        statement = statement.where(c.dispatched_at >= db.to_db_time(now - timedelta(days=PACE_WINDOW_DAYS)))
    with engine.connect() as connection:
        return department_paces(connection.execute(statement).all())


def load_world(engine: Engine, rules: Rules, calendar: WorkCalendar, rng, worker_limit: int | None = None, now: datetime | None = None) -> World:
    """The district from the grid database (read only): deepest-level grids, role-``worker``
    staff, and departments' paces from their record up to ``now``."""
    check_tables(engine)
    grids, workers = schema.grids.c, schema.workers.c
    with engine.connect() as connection:
        deepest = connection.execute(select(func.max(grids.level))).scalar()
        rows = connection.execute(
            select(grids.code, grids.geometry, grids.population).where(grids.level == deepest, grids.geometry.is_not(None)).order_by(grids.code)
        ).all() if deepest is not None else []
        staff = connection.execute(select(workers.id, workers.grid).where(workers.role == "worker").order_by(workers.id)).all()
        departments = list(connection.execute(select(schema.departments.c.code)).scalars())
    if not rows:
        raise SimulatorError(f"the database at {db.describe(engine)} has no grids: import a district (import-grids) or run `python app.py` for the demo")
    if not any(category.is_detail for category in rules.categories.values()):
        raise SimulatorError(f"the database at {db.describe(engine)} has no event catalogue: import one (import-catalog)")
    geometries = shapely.from_geojson(np.array([row.geometry for row in rows], dtype=object))
    return build_world(
        [(row.code, geometry, row.population) for row, geometry in zip(rows, geometries)],
        [(worker, grid) for worker, grid in staff], rules, departments, calendar, rng, worker_limit, load_paces(engine, now), reference.grid_places(engine),
    )


def load_open_cases(engine: Engine) -> list[Case]:
    """The cases still open in the database (read only), oldest change first."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.cases).where(schema.cases.c.is_open.is_(True)).order_by(schema.cases.c.updated_at, schema.cases.c.id)).mappings().all()
    return [case_from_row(row) for row in rows]
