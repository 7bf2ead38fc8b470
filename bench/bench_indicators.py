"""Benchmark: every indicator for the whole district and for one town over 1,000,000 cases.

    .venv/bin/python bench/bench_indicators.py [--cases 1000000] [--databases sqlite,postgresql]

Builds the demo district's grids (real Wuzhong outline, 900 basic grids), generates a year
of cases in bulk (vectorised; realistic stage times and deadlines), loads them into SQLite
and PostgreSQL, then times ``area_reports.area_indicators`` for windows of a day, a week and a
month, district and town. Prints the times; no targets are asserted here.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import area_reports  # noqa: E402
from dashboard.settings import DEFAULT_CONFIG_PATH  # noqa: E402
from data_feeds import schema  # noqa: E402
from data_feeds.db import init_db, make_engine  # noqa: E402
from data_feeds.demo import DEFAULT_CATALOGUE, DEFAULT_DEPARTMENTS, DEMO_BOUNDARY, DEMO_TOWNS  # noqa: E402
from data_feeds.importers.catalogue import import_catalogue  # noqa: E402
from data_feeds.importers.departments import import_departments  # noqa: E402
from data_feeds.importers.grids import SubdivideOptions, import_grids  # noqa: E402
from data_feeds.queries import CaseFilter  # noqa: E402
from data_feeds.reference import load_categories, load_children, root_grid  # noqa: E402
from gridrules.access import EVERYTHING  # noqa: E402
from gridrules.config import load_domain_config  # noqa: E402
from gridrules.indicators import Window  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 15:00 in Suzhou
REPEATS = 3


def generate_cases(engine, count: int, seed: int = 1) -> pd.DataFrame:
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
        "id": [f"B{i:08d}" for i in range(count)],
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


def run(database: str, count: int) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="gridops-bench-"))
    if database == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        cleanup = None
    else:
        admin = make_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS bench_indicators CASCADE"))
            connection.execute(text("CREATE SCHEMA bench_indicators"))
        url = f"{PG_URL}?options=-csearch_path%3Dbench_indicators"

        def cleanup():
            with admin.begin() as connection:
                connection.execute(text("DROP SCHEMA bench_indicators CASCADE"))

    engine = make_engine(url)
    init_db(engine)
    import_departments(engine, DEFAULT_DEPARTMENTS)
    import_catalogue(engine, DEFAULT_CATALOGUE)
    import_grids(engine, DEMO_BOUNDARY, SubdivideOptions(DEMO_TOWNS, 200, 900))
    started = time.perf_counter()
    frame = generate_cases(engine, count)
    generated = time.perf_counter() - started
    loaded = load(engine, frame)
    print(f"[{database}] generated {count:,} cases in {generated:.1f} s, loaded in {loaded:.1f} s", flush=True)
    config = load_domain_config(DEFAULT_CONFIG_PATH, __import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    district = root_grid(engine)
    town = load_children(engine, district.code)[0]
    local_midnight = pd.Timestamp(NOW).tz_convert("Asia/Shanghai").normalize().to_pydatetime()
    windows = {
        "today": (local_midnight, local_midnight + timedelta(days=1)),
        "7 days": (local_midnight - timedelta(days=6), local_midnight + timedelta(days=1)),
        "30 days": (local_midnight - timedelta(days=29), local_midnight + timedelta(days=1)),
    }
    results = []
    for area_name, area in (("district", district), ("town", town)):
        for window_name, (start, end) in windows.items():
            window = Window.until_now(start, end, NOW)
            seconds, report = timed(lambda: area_reports.area_indicators(engine, config, area, window, CaseFilter(), EVERYTHING))  # noqa: B023 - called at once
            results.append({"database": database, "area": area_name, "window": window_name, "seconds": seconds, "reported": report.values["reported"], "in_progress": report.values["in_progress"]})
            print(f"[{database}] {area_name:8s} {window_name:8s} {seconds * 1000:8.0f} ms   reported={report.values['reported']:,} in_progress={report.values['in_progress']:,}", flush=True)
    engine.dispose()
    if cleanup:
        cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    results = []
    for database in args.databases.split(","):
        results += run(database, args.cases)
    print("\nmedian of", REPEATS, "runs, seconds")
    print(pd.DataFrame(results).pivot_table(index=["area", "window"], columns="database", values="seconds").round(3).to_string())


if __name__ == "__main__":
    main()
