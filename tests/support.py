"""What tests share besides fixtures: paths, the test time zone and moments, the PostgreSQL
server and fresh databases on it, the small district's staff. Tests import from here, never
from conftest."""
from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parent.parent


TEST_DATA = PROJECT / "tests" / "data"


PACKAGE_DATA = PROJECT / "data_feeds" / "data"


PG_URL = os.environ.get("GRIDOPS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


MACHINE_REDIS = os.environ.get("GRIDOPS_TEST_REDIS", "redis://127.0.0.1:6379")


TEST_REDIS_DB = 9


TZ = ZoneInfo("Asia/Shanghai")


ARTIFACTS = PROJECT / "test-artifacts"


_pg_status: dict = {}


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once)."""
    if "reason" not in _pg_status:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            _pg_status["reason"] = None
        except Exception as exc:  # any failure means: run on SQLite only, and say so
            _pg_status["reason"] = f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"
    return _pg_status["reason"]


@contextmanager
def fresh_database(kind: str, folder: Path):
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'grid.db'}"
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema_name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


DEMO_NOW = datetime(2026, 11, 25, 15, 10, tzinfo=TZ)  # a Wednesday afternoon, in the second patrol round

LONG_NAME = "超长文本" * 29 + "尾部"  # 118 characters: as long as every name may be
# what an attacker puts in a text field: markup, script URLs, templates, spreadsheet formulas,
# a right-to-left override, entities, and the longest name
HOSTILE_TEXTS = [
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
    "{{7*7}}",
    '=HYPERLINK("http://x")',
    "<svg onload=alert(1)>",
    "\u202e右至左覆盖 gnp.exe",
    "网格员<b>张三</b>&amp;李四",
    LONG_NAME,
]


def import_small_staff(engine, folder: Path) -> None:
    """One grid worker (W0001…) per basic grid and one head per community, through the importer."""
    from sqlalchemy import select as _select

    from data_feeds import schema as _schema
    from data_feeds.importers.workers import import_workers

    with engine.connect() as connection:
        areas = connection.execute(_select(_schema.grids.c.code, _schema.grids.c.level).where(_schema.grids.c.level.in_((3, 4))).order_by(_schema.grids.c.code)).all()
    staff = folder / "workers.csv"
    lines = ["id,name,grid,role"] + [f"W{n:04d},网格员{n},{code},{'worker' if level == 4 else 'head'}" for n, (code, level) in enumerate(areas, start=1)]
    staff.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_workers(engine, staff)


def import_small_district(engine, staff_folder: Path | None = None):
    """A real district outline (普陀区, Shanghai) cut into 4 towns, 8 communities and 24 grids,
    with the default departments and catalogue, through the importers; with ``staff_folder``
    also its staff (``import_small_staff``). Returns the engine."""
    from data_feeds.importers.catalogue import import_catalogue
    from data_feeds.importers.departments import import_departments
    from data_feeds.importers.grids import SubdivideOptions, import_grids

    import_departments(engine, PACKAGE_DATA / "departments.csv")
    import_catalogue(engine, PACKAGE_DATA / "catalogue.csv")
    import_grids(engine, TEST_DATA / "boundaries" / "310107.geojson", SubdivideOptions(PACKAGE_DATA / "towns.csv", communities=8, grids=24, seed=7))
    if staff_folder is not None:
        import_small_staff(engine, staff_folder)
    return engine


def rollup_table(engine):
    """case_rollups as a frame in key order, rows of zeros left out."""
    import pandas as pd
    from sqlalchemy import select as _select

    from data_feeds import rollups as stored
    from data_feeds import schema as _schema
    from gridrules import rollups

    with engine.connect() as connection:
        frame = pd.read_sql(_select(_schema.case_rollups), connection)
    frame = frame[(frame[list(rollups.COUNTERS)] != 0).any(axis=1)].copy()
    frame["period"] = pd.to_datetime(frame["period"])
    frame["is_dispatched"] = frame["is_dispatched"].astype(bool)
    return frame.sort_values(list(stored.KEYS)).reset_index(drop=True)


def assert_same_tables(kept, rebuilt) -> None:
    import pandas as pd

    from gridrules import rollups

    assert len(kept) == len(rebuilt)
    pd.testing.assert_frame_equal(kept.drop(columns=rollups.CLOSE_SECONDS), rebuilt.drop(columns=rollups.CLOSE_SECONDS), check_dtype=False)
    assert (kept[rollups.CLOSE_SECONDS] - rebuilt[rollups.CLOSE_SECONDS]).abs().max() < 1e-3


def assert_rollups_match_cases(engine) -> None:
    """The rollups the consumer kept equal a rebuild from the cases (and hold every case)."""
    from sqlalchemy import func
    from sqlalchemy import select as _select

    from data_feeds import rollups as stored
    from data_feeds import schema as _schema

    kept = rollup_table(engine)
    with engine.connect() as connection:
        roots = set(connection.execute(_select(_schema.grids.c.code).where(_schema.grids.c.parent.is_(None))).scalars())
        cases = connection.execute(_select(func.count()).select_from(_schema.cases)).scalar()
    assert int(kept[(kept["period_kind"] == "D") & (kept["grouping"] == "all") & kept["area"].isin(roots)]["reported"].sum()) == cases
    stored.rebuild(engine, TZ)
    assert_same_tables(kept, rollup_table(engine))


def wait_for(condition, timeout_s: float = 90.0, every_s: float = 0.05, what: object = "condition") -> bool:
    """Wait until ``condition()`` holds, checking every ``every_s``; fails after ``timeout_s``
    saying ``what`` (or what ``what()`` returns then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    raise AssertionError(f"{what() if callable(what) else what} not reached within {timeout_s} s")
