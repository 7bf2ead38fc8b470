"""The rollups give the numbers of the row-level reference, for any area, window, filter and
scope; kept case by case they equal a rebuild from the cases."""
from __future__ import annotations

import random
from datetime import UTC, date, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from data_feeds import rollups as stored_rollups
from data_feeds import schema
from data_feeds.queries import CaseFilter, load_cases
from data_feeds.reference import load_categories
from gridrules import indicators, rollups
from gridrules.access import EVERYTHING, Scope, effective_path
from gridrules.indicators import Window
from gridrules.timewindows import local_midnight
from tests.support import TZ, assert_same_tables, import_small_district, local, rollup_table

NOW = local(2026, 1, 20, 10, 17)  # a window reaching now has a day still running
FIRST_REPORT = NOW - timedelta(days=430)
SOURCES = ("patrol", "hotline", "police", "wechat", "video")
HOURS = timedelta(hours=1)


def _later(rng: random.Random, moment, hours: float, spread: float = 1.0):
    return moment + timedelta(hours=hours * rng.lognormvariate(0, spread))


def random_case(rng: random.Random, number: int, grids: list[str], details: list, departments: list[str]) -> dict:
    """One case as the lifecycle leaves it at NOW: every path of the loop, with registrations a
    day late, deadlines ahead, reworks once and twice, departments changed and taken away."""
    category = rng.choice(details)
    reported = FIRST_REPORT + timedelta(seconds=rng.uniform(0, (NOW - FIRST_REPORT).total_seconds()))
    # Many reports just before midnight, so that the next step falls on the next day.
    if rng.random() < 0.15:
        day = reported.astimezone(TZ).date()
        reported = local_midnight(day, TZ) + timedelta(hours=23, minutes=rng.uniform(0, 59))
    row = {
        "id": f"K{number:06d}", "grid": rng.choice(grids), "category": category.code, "dept": category.dept, "grade": category.grade,
        "source": rng.choice(SOURCES), "reported_at": reported, "register_deadline": reported + timedelta(minutes=30),
        "rework_count": 0, "self_handled": False, "satisfaction": None,
    }
    times = []

    def happens(name, moment):
        if moment > NOW:
            return False
        row[name] = moment
        times.append(moment)
        return True

    times.append(reported)
    status = "reported"
    step = _later(rng, reported, 0.3 if rng.random() < 0.9 else 30)
    if rng.random() < 0.06:
        if happens("invalid_at", step):
            status = "invalid"
        return _finish(row, status, times)
    if not happens("registered_at", step):
        return _finish(row, status, times)
    status = "registered"
    row["dispatch_deadline"] = step + HOURS
    if rng.random() < 0.03:  # declined: back to registration, no department
        row["dept"] = None
        return _finish(row, status, times)
    step = _later(rng, step, 0.5)
    if not happens("dispatched_at", step):
        return _finish(row, status, times)
    status = "dispatched"
    if rng.random() < 0.05:
        row["dept"] = rng.choice(departments)  # re-dispatched elsewhere
    limit = rng.choice((2, 24, 72, 240))
    row["deadline"] = step + timedelta(hours=limit)
    reworks = rng.choices((0, 1, 2), weights=(85, 10, 5))[0]
    for rework in range(reworks + 1):
        step = _later(rng, step, limit * 0.5, 0.8)
        if not happens("handled_at", step):
            return _finish(row, status, times)
        status = "handled"
        row["verify_deadline"] = step + 4 * HOURS
        if rework == reworks:
            break
        step = _later(rng, step, 3)
        if not happens("returned_at", step):
            return _finish(row, status, times)
        row.setdefault("first_returned_at", step)
        row["rework_count"] += 1
        status = "dispatched"
    step = _later(rng, step, 2, 1.5)
    if not happens("closed_at", step):
        return _finish(row, status, times)
    status = "closed"
    if rng.random() < 0.7:
        step = _later(rng, step, 10)
        if happens("evaluated_at", step):
            status = "evaluated"
            row["satisfaction"] = rng.choices(("satisfied", "basic", "unsatisfied"), weights=(80, 14, 6))[0]
    return _finish(row, status, times)


def _finish(row: dict, status: str, times: list) -> dict:
    row["status"] = status
    row["is_open"] = status not in ("invalid", "closed", "evaluated")
    row["updated_at"] = max(times)
    for name in indicators.TIME_COLUMNS:
        value = row.get(name)
        row[name] = None if value is None else value.astimezone(UTC).replace(tzinfo=None)
    return row


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def district(request, tmp_path_factory):
    """The small district with 3,000 random cases over 14 months and its rollups."""
    from data_feeds.db import make_engine
    from tests.support import fresh_database

    folder = tmp_path_factory.mktemp("rollups")
    with fresh_database(request.param, folder) as url:
        engine = make_engine(url)
        from data_feeds.db import init_db

        init_db(engine)
        import_small_district(engine)
        rng = random.Random(20260120)
        with engine.connect() as connection:
            grids = list(connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)).scalars())
            departments = list(connection.execute(select(schema.departments.c.code).order_by(schema.departments.c.code)).scalars())
        details = sorted((c for c in load_categories(engine).values() if c.is_detail), key=lambda c: c.code)
        cases = [random_case(rng, number, grids, details, departments) for number in range(3000)]
        with engine.begin() as connection:
            connection.execute(schema.cases.insert(), cases)
        stored_rollups.rebuild(engine, TZ)
        yield engine
        engine.dispose()


def areas(engine) -> dict[int, list]:
    with engine.connect() as connection:
        rows = connection.execute(select(schema.grids.c.code, schema.grids.c.path, schema.grids.c.level).order_by(schema.grids.c.code)).all()
    result: dict[int, list] = {}
    for code, path, level in rows:
        result.setdefault(level, []).append((code, path))
    return result


def row_level(engine, path: str, window: Window, filters: CaseFilter, scope: Scope, key: str | None = None):
    cases = load_cases(engine, path, window, filters, scope)
    flags = indicators.case_flags(cases, window)
    if key is None:
        return indicators.summarise(flags)
    table = indicators.summarise_by(cases, flags, key)
    return table.set_index(key)


def through_rollups(engine, code: str, path: str, window: Window, filters: CaseFilter, scope: Scope, key: str | None = None):
    counts = stored_rollups.window_counts(engine, TZ, code, path, window, filters, scope, key)
    if counts is None:
        return None
    if key is None:
        return indicators.summary(counts.iloc[0])
    return indicators.summaries(counts[counts.index != ""])


def assert_same(expected: dict, actual: dict, where: str) -> None:
    for name in (*indicators.COUNT_KEYS, *indicators.RATE_FUNCTIONS, "p90_close_hours"):
        assert actual[name] == expected[name], f"{name} differs {where}: rollups {actual[name]}, row-level {expected[name]}"
    if expected["mean_close_hours"] is None:
        assert actual["mean_close_hours"] is None, where
    else:
        assert actual["mean_close_hours"] == pytest.approx(expected["mean_close_hours"], rel=1e-9), where


def random_window(rng: random.Random) -> Window:
    length = rng.choice((1, 1, 2, 7, 30, 31, 61, 92, 365, 366))
    special = rng.random()
    if special < 0.15:  # across a year's end
        first = date(2025, 12, 31) - timedelta(days=rng.randrange(0, min(length, 40)))
    elif special < 0.3:  # ending today or later: a window still running
        first = NOW.astimezone(TZ).date() - timedelta(days=rng.randrange(0, length))
    elif special < 0.35:  # entirely ahead
        first = NOW.astimezone(TZ).date() + timedelta(days=rng.randrange(1, 5))
    else:
        first = NOW.astimezone(TZ).date() - timedelta(days=rng.randrange(0, 440))
    return Window.until_now(local_midnight(first, TZ), local_midnight(first + timedelta(days=length), TZ), NOW)


def random_filters(rng: random.Random, engine) -> CaseFilter:
    categories = sorted((c for c in load_categories(engine).values() if c.is_detail), key=lambda c: c.code)
    choice = rng.random()
    if choice < 0.4:
        return CaseFilter()
    if choice < 0.55:
        return CaseFilter(dept=rng.choice(sorted({c.dept for c in load_categories(engine).values() if c.dept})))
    if choice < 0.7:
        major = rng.choice(sorted({c.code[:3] for c in categories}))
        return CaseFilter(categories=frozenset(c.code for c in categories if c.code.startswith(major)))
    if choice < 0.8:
        return CaseFilter(grade=rng.choice("ABC"))
    if choice < 0.9:
        return CaseFilter(source=rng.choice(SOURCES), grade=rng.choice("ABC"))
    return CaseFilter(source=rng.choice(SOURCES))


def random_scope(rng: random.Random, by_level: dict) -> Scope:
    choice = rng.random()
    if choice < 0.6:
        return EVERYTHING
    if choice < 0.8:
        code, path = rng.choice(by_level[2])
        return Scope(area_path=path, area_code=code)
    dept = rng.choice(["CGJ", "GAJ", "SWJ", "STHJ"])
    return Scope(dept=dept, dept_before_dispatch=rng.random() < 0.5)


def test_rollups_and_row_level_agree_on_random_areas_windows_filters_and_scopes(district):
    rng = random.Random(7)
    by_level = areas(district)
    compared = 0
    for number in range(120):
        level = rng.choice((1, 2, 3, 4))
        code, path = rng.choice(by_level[level])
        window, filters, scope = random_window(rng), random_filters(rng, district), random_scope(rng, by_level)
        where = f"#{number}: {code} {window.start:%Y-%m-%d}…{window.end:%Y-%m-%d} {filters.key()} {scope.key()}"
        actual = through_rollups(district, code, path, window, filters, scope)
        if effective_path(path, scope) is None:
            assert actual is None, where  # nothing in scope: the row-level path answers at once
            continue
        if actual is None:
            # A finer grouping is not kept for small areas (a basic grid: its totals only): their cases answer.
            assert level > rollups.GROUPING_DEPTH[stored_rollups.grouping_of(filters, scope, None)], where
            continue
        assert_same(row_level(district, path, window, filters, scope), actual, where)
        compared += 1
    assert compared >= 80


@pytest.mark.parametrize("key", ["dept", "category", "source", "grade"])
def test_counts_per_department_category_source_and_grade_agree(district, key):
    rng = random.Random(len(key) * 31 + ord(key[0]))
    by_level = areas(district)
    for _ in range(6):
        code, path = rng.choice(by_level[rng.choice((1, 2))])
        window = random_window(rng)
        expected = row_level(district, path, window, CaseFilter(), EVERYTHING, key)
        actual = through_rollups(district, code, path, window, CaseFilter(), EVERYTHING, key)
        expected = expected[expected.index.notna()]
        # A group with nothing counted may be listed by one path and not the other: compare all, as zeros.
        groups = sorted(set(actual.index) | set(expected.index))
        counts = list(indicators.COUNT_KEYS)
        pd.testing.assert_frame_equal(actual.reindex(groups)[counts].fillna(0).astype("int64"), expected.reindex(groups)[counts].fillna(0).astype("int64"), check_names=False)
        assert actual.reindex(groups)["p90_close_hours"].tolist() == pytest.approx(expected.reindex(groups)["p90_close_hours"].tolist(), nan_ok=True)


def test_windows_that_are_not_whole_days_go_row_level(district):
    by_level = areas(district)
    code, path = by_level[1][0]
    for start, end in ((NOW - HOURS, NOW), (local(2025, 12, 31, 23), local(2026, 1, 1, 1)), (local(2025, 6, 1), local(2025, 6, 1, 12))):
        window = Window.until_now(start, end, NOW)
        assert through_rollups(district, code, path, window, CaseFilter(), EVERYTHING) is None
    # and so is a stage filter
    day = Window.until_now(local(2025, 6, 1), local(2025, 7, 1), NOW)
    assert through_rollups(district, code, path, day, CaseFilter(stage="handle"), EVERYTHING) is None


def test_changes_kept_case_by_case_equal_a_rebuild(district):
    """Move a hundred cases on (closed, re-dispatched, deadline extended, reopened for rework)
    through ``apply_changes``; the table then equals a rebuild from the cases."""
    rng = random.Random(3)
    c = schema.cases.c
    with district.begin() as connection:
        before = [dict(row) for row in connection.execute(select(schema.cases).where(c.is_open.is_(True)).order_by(c.id).limit(100)).mappings()]
        after = []
        for row in before:
            changed = dict(row)
            moment = pd.Timestamp(NOW).tz_convert("UTC").tz_localize(None).to_pydatetime() - timedelta(minutes=rng.randrange(1, 600))
            what = rng.random()
            if what < 0.4 and row["dispatched_at"] is not None:
                changed.update(status="closed", closed_at=moment, handled_at=row["handled_at"] or moment, is_open=False)
            elif what < 0.6 and row["deadline"] is not None:
                changed.update(deadline=row["deadline"] + timedelta(days=2))
            elif what < 0.8:
                changed.update(dept="CGJ" if row["dept"] != "CGJ" else "SWJ", dispatched_at=row["dispatched_at"] or moment)
            else:
                changed.update(status="invalid", invalid_at=moment, is_open=False)
            changed["updated_at"] = max(moment, row["updated_at"])
            after.append(changed)
        for changed in after:
            connection.execute(schema.cases.update().where(c.id == changed["id"]).values(**{k: v for k, v in changed.items() if k != "id"}))
        stored_rollups.apply_changes(connection, before, after, TZ)
    kept = rollup_table(district)
    stored_rollups.rebuild(district, TZ)
    assert_same_tables(kept, rollup_table(district))


def test_a_rebuild_from_a_day_equals_a_whole_rebuild(district):
    whole = rollup_table(district)
    result = stored_rollups.rebuild(district, TZ, since=date(2025, 11, 17))
    assert result["since"] == date(2025, 11, 1)
    assert_same_tables(rollup_table(district), whole)
