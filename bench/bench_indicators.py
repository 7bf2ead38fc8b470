"""Benchmark: every case indicator for the whole district and for one town over 1,000,000
(or 10,000,000) cases, through the rollups, row-level, and a bare count as the floor.

    .venv/bin/python bench/bench_indicators.py [--cases 1000000] [--databases postgresql,sqlite] [--keep]

Builds the demo district's grids (real Wuzhong outline, 900 basic grids), generates a year
of cases in bulk (vectorised; realistic stage times and deadlines; 500,000 at a time), loads
them (COPY on PostgreSQL), builds the rollups (``rebuild-rollups``), then times for district
and town × today / 7 days / 30 days / quarter / year: ``area_reports.case_indicators``
(through the rollups), the row-level path (every case of the window in pandas), and
``SELECT count(*)`` of the window's cases; prints each with the ratios and whether both paths
gave the same numbers. ``--keep`` keeps the generated database for the next run with as many
cases (PostgreSQL schema ``bench_indicators_N``, SQLite file in the temporary folder).
Prints the times; no targets are asserted here.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import area_reports  # noqa: E402
from dashboard.settings import DEFAULT_CONFIG_PATH  # noqa: E402
from data_feeds import db, queries, rollups, schema  # noqa: E402
from data_feeds.db import init_db, make_engine  # noqa: E402
from data_feeds.demo import DEFAULT_CATALOGUE, DEFAULT_DEPARTMENTS, DEMO_BOUNDARY, DEMO_TOWNS  # noqa: E402
from data_feeds.importers.catalogue import import_catalogue  # noqa: E402
from data_feeds.importers.departments import import_departments  # noqa: E402
from data_feeds.importers.grids import SubdivideOptions, import_grids  # noqa: E402
from data_feeds.queries import CaseFilter  # noqa: E402
from data_feeds.reference import load_categories, load_children, root_grid  # noqa: E402
from gridrules import indicators  # noqa: E402
from gridrules.access import EVERYTHING  # noqa: E402
from gridrules.config import load_domain_config  # noqa: E402
from gridrules.indicators import Window  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 15:00 in Suzhou
REPEATS = 3
GENERATE_CHUNK = 500_000  # cases generated and loaded at a time (memory stays flat up to 10,000,000)
WINDOWS = {"today": 1, "7 days": 7, "30 days": 30, "quarter": 91, "year": 365}


def generate_cases(engine, count: int, seed: int = 1, first_id: int = 0) -> pd.DataFrame:
    """``count`` cases over the year before NOW, with the columns of the cases table."""
    rng = np.random.default_rng(seed)
    with engine.connect() as connection:
        grids = np.array([row[0] for row in connection.execute(text("SELECT code FROM grids WHERE level = 4 ORDER BY code"))])
    categories = load_categories(engine)
    details = [c for c in categories.values() if c.is_detail]
    detail_codes = np.array([c.code for c in details])
    detail_dept = np.array([c.dept for c in details])
    detail_grade = np.array([c.grade for c in details])
    handle_hours = np.array([{"A": 2.0, "B": 24.0, "C": 72.0}[c.grade] for c in details])
    now = pd.Timestamp(NOW).tz_convert(None)
    reported = now - pd.to_timedelta(rng.uniform(0, 365 * 86400, count), unit="s")
    which = rng.integers(len(details), size=count)
    minutes = lambda scale: pd.to_timedelta(rng.lognormal(np.log(scale), 0.6, count), unit="m")  # noqa: E731
    registered = reported + minutes(8)
    dispatched = registered + minutes(6)
    deadline = dispatched + pd.to_timedelta(handle_hours[which], unit="h")
    handled = dispatched + pd.to_timedelta(handle_hours[which] * rng.lognormal(np.log(0.6), 0.5, count), unit="h")
    closed = handled + minutes(60)
    evaluated = closed + minutes(600)
    invalid = rng.random(count) < 0.06
    reworked = (rng.random(count) < 0.07) & ~invalid

    def until_now(values):
        series = pd.Series(values)
        return series.where(series <= now)

    frame = pd.DataFrame({
        "id": [f"B{i:08d}" for i in range(first_id, first_id + count)],
        "grid": grids[rng.integers(len(grids), size=count)],
        "category": detail_codes[which],
        "dept": detail_dept[which],
        "grade": detail_grade[which],
        "source": rng.choice(["patrol", "hotline", "police", "wechat", "video"], size=count, p=[0.55, 0.25, 0.05, 0.08, 0.07]),
        "reported_at": reported,
        "registered_at": until_now(registered).where(~invalid),
        "invalid_at": until_now(registered).where(invalid),
        "dispatched_at": until_now(dispatched).where(~invalid),
        "handled_at": until_now(handled).where(~invalid),
        "closed_at": until_now(closed).where(~invalid),
        "evaluated_at": until_now(evaluated).where(~invalid & (rng.random(count) < 0.7)),
        "register_deadline": reported + pd.Timedelta(minutes=30),
        "dispatch_deadline": registered + pd.Timedelta(minutes=30),
        "deadline": pd.Series(deadline).where(~invalid & (pd.Series(dispatched) <= now)),
        "rework_count": reworked.astype(int),
    })
    frame["last_dispatched_at"] = frame["dispatched_at"]
    frame["first_returned_at"] = frame["handled_at"].where(reworked)
    frame["returned_at"] = frame["first_returned_at"]
    frame["verify_deadline"] = frame["handled_at"] + pd.Timedelta(hours=4)
    frame["satisfaction"] = np.where(frame["evaluated_at"].notna(), rng.choice(["satisfied", "basic", "unsatisfied"], size=count, p=[0.8, 0.14, 0.06]), None)
    status = np.select(
        [frame["invalid_at"].notna(), frame["evaluated_at"].notna(), frame["closed_at"].notna(), frame["handled_at"].notna(), frame["dispatched_at"].notna(), frame["registered_at"].notna()],
        ["invalid", "evaluated", "closed", "handled", "dispatched", "registered"],
        default="reported",
    )
    frame["status"] = status
    frame["is_open"] = ~pd.Series(status).isin(["invalid", "evaluated", "closed"])
    frame["self_handled"] = False
    times = frame[["reported_at", "registered_at", "invalid_at", "dispatched_at", "handled_at", "closed_at", "evaluated_at"]]
    frame["updated_at"] = times.max(axis=1)
    return frame


def load(engine, frame: pd.DataFrame) -> float:
    """Bulk-load the cases; returns seconds."""
    started = time.perf_counter()
    if engine.url.get_backend_name() == "postgresql":
        columns = list(frame.columns)
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor, cursor.copy(f"COPY cases ({', '.join(columns)}) FROM STDIN") as copy:
                for row in frame.itertuples(index=False, name=None):
                    copy.write_row([None if (isinstance(v, float) and np.isnan(v)) or v is pd.NaT else v for v in row])
            raw.commit()
        finally:
            raw.close()
    else:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        with engine.begin() as connection:
            for start in range(0, len(records), 50_000):
                connection.execute(schema.cases.insert(), records[start : start + 50_000])
    with engine.begin() as connection:
        if engine.url.get_backend_name() == "postgresql":
            connection.execute(text("ANALYZE cases"))
        else:
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def timed(function, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def database_url(database: str, count: int, keep: bool, folder: Path) -> tuple[str, bool, object]:
    """The database to run on, whether it already holds ``count`` generated cases (kept from an
    earlier ``--keep`` run), and a cleanup (None to keep it)."""
    if database == "sqlite":
        path = (Path(tempfile.gettempdir()) / f"gridops-bench-{count}.db") if keep else folder / "bench.db"
        return f"sqlite:///{path}", keep and path.exists(), None if keep else (lambda: None)
    name = f"bench_indicators_{count}"
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        exists = connection.execute(text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"), {"n": name}).first() is not None
        if exists and not keep:
            connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
            exists = False
        if not exists:
            connection.execute(text(f"CREATE SCHEMA {name}"))

    def cleanup():
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {name} CASCADE"))

    return f"{PG_URL}?options=-csearch_path%3D{name}", exists, None if keep else cleanup


def floor_count(engine, area, start: datetime, end: datetime) -> int:
    """A bare count of the window's cases (reported in it, in the area): the floor of any query."""
    with engine.connect() as connection:
        codes = [row[0] for row in connection.execute(text("SELECT code FROM grids WHERE path LIKE :p AND level = 4"), {"p": area.path + "%"})]
        statement = select(func.count()).select_from(schema.cases).where(
            schema.cases.c.grid.in_(codes), schema.cases.c.reported_at >= db.to_db_time(start), schema.cases.c.reported_at < db.to_db_time(end))
        return int(connection.execute(statement).scalar())


def run(database: str, count: int, keep: bool, repeats: int = REPEATS, row_repeats: int = REPEATS) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="gridops-bench-"))
    url, ready, cleanup = database_url(database, count, keep, folder)
    engine = make_engine(url)
    tz = ZoneInfo("Asia/Shanghai")
    if ready:
        print(f"[{database}] using the {count:,} cases kept from an earlier run", flush=True)
        init_db(engine)  # brings a kept database to the current schema (its indexes included)
    else:
        init_db(engine)
        import_departments(engine, DEFAULT_DEPARTMENTS)
        import_catalogue(engine, DEFAULT_CATALOGUE)
        import_grids(engine, DEMO_BOUNDARY, SubdivideOptions(DEMO_TOWNS, 200, 900))
        started = time.perf_counter()
        generated, loaded = 0.0, 0.0
        for part in range(0, count, GENERATE_CHUNK):
            begun = time.perf_counter()
            frame = generate_cases(engine, min(GENERATE_CHUNK, count - part), seed=1 + part // GENERATE_CHUNK, first_id=part)
            generated += time.perf_counter() - begun
            loaded += load(engine, frame)
        built = rollups.rebuild(engine, tz)
        print(f"[{database}] generated {count:,} cases in {generated:.0f} s, loaded in {loaded:.0f} s, rollups built in {built['seconds']:.0f} s "
              f"({built['rows']:,} rows); {time.perf_counter() - started:.0f} s in all", flush=True)
    config = load_domain_config(DEFAULT_CONFIG_PATH, tz)
    district = root_grid(engine)
    town = load_children(engine, district.code)[0]
    tomorrow = pd.Timestamp(NOW).tz_convert(tz).normalize().to_pydatetime() + timedelta(days=1)
    windows = {name: (tomorrow - timedelta(days=days), tomorrow) for name, days in WINDOWS.items()}
    results = []
    for area_name, area in (("district", district), ("town", town)):
        for window_name, (start, end) in windows.items():
            window = Window.until_now(start, end, NOW)
            through, summary = timed(lambda: area_reports.case_indicators(engine, config, area, window, CaseFilter(), EVERYTHING), repeats)  # noqa: B023 - called at once
            row, reference = timed(lambda: indicators.summarise(indicators.case_flags(queries.load_cases(engine, area.path, window, CaseFilter(), EVERYTHING), window)), row_repeats)  # noqa: B023
            floor, cases = timed(lambda: floor_count(engine, area, start, end), repeats)  # noqa: B023
            same = all(summary[key] == reference[key] for key in indicators.COUNT_KEYS)
            results.append({"database": database, "area": area_name, "window": window_name, "rollups": through, "row_level": row, "count": floor})
            print(f"[{database}] {area_name:8s} {window_name:8s} rollups {through * 1000:7.0f} ms  row-level {row * 1000:8.0f} ms  count(*) {floor * 1000:6.0f} ms  "
                  f"rollups/count {through / floor:5.1f}×  row/rollups {row / through:6.1f}×  cases {cases:,}  same numbers: {same}", flush=True)
            if not same:
                print(f"  DIFFERENT: { {k: (summary[k], reference[k]) for k in indicators.COUNT_KEYS if summary[k] != reference[k]} }", flush=True)
    engine.dispose()
    if cleanup:
        cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--databases", default="postgresql")
    parser.add_argument("--keep", action="store_true", help="keep the generated database for the next run with as many cases (and use a kept one)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timings per cell (the median is printed)")
    parser.add_argument("--row-repeats", type=int, default=REPEATS, help="timings of the row-level path per cell (at 10,000,000 cases a year takes minutes)")
    args = parser.parse_args()
    results = []
    for database in args.databases.split(","):
        results += run(database, args.cases, args.keep, args.repeats, args.row_repeats)
    print(f"\nmedian of {args.repeats} runs (row-level: {args.row_repeats}), seconds")
    frame = pd.DataFrame(results)
    print(frame.pivot_table(index=["area", "window"], columns="database", values=["rollups", "row_level", "count"], sort=False).round(3).to_string())


if __name__ == "__main__":
    main()
