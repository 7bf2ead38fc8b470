"""Indicators read from the database equal the pure functions over every case, for any area and filter."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from dashboard import area_reports
from data_feeds import schema
from data_feeds.queries import CaseFilter, case_frame
from data_feeds.reference import descendant_categories, load_categories, load_children, root_grid
from gridrules import indicators as ind
from gridrules.access import EVERYTHING
from gridrules.indicators import Window
from tests.support import DEMO_NOW


def all_cases(engine) -> pd.DataFrame:
    """Every case with its area path, no relevance filter."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.cases, schema.grids.c.path).select_from(schema.cases.join(schema.grids, schema.grids.c.code == schema.cases.c.grid))
        ).mappings().all()
    return case_frame(pd.DataFrame([dict(row) for row in rows]))


WINDOWS = {
    "today": (DEMO_NOW.replace(hour=0, minute=0), DEMO_NOW.replace(hour=0, minute=0) + timedelta(days=1)),
    "yesterday": (DEMO_NOW.replace(hour=0, minute=0) - timedelta(days=1), DEMO_NOW.replace(hour=0, minute=0)),
    "three-days": (DEMO_NOW - timedelta(days=3), DEMO_NOW),
    "everything": (DEMO_NOW - timedelta(days=30), DEMO_NOW + timedelta(days=1)),
}


@pytest.mark.parametrize("window_name", WINDOWS)
def test_district_indicators_equal_the_pure_computation_over_all_cases(demo_engine, domain_config, window_name):
    start, end = WINDOWS[window_name]
    window = Window.until_now(start, end, DEMO_NOW)
    district = root_grid(demo_engine)
    report = area_reports.area_indicators(demo_engine, domain_config, district, window, CaseFilter(), EVERYTHING).values
    expected = ind.summarise(ind.case_flags(all_cases(demo_engine), window))
    for key, value in expected.items():
        assert report[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert report["reported"] > 0 or window_name == "today"


def test_towns_add_up_to_the_district(demo_engine, domain_config):
    window = Window.until_now(*WINDOWS["three-days"], DEMO_NOW)
    district = root_grid(demo_engine)
    total = area_reports.area_indicators(demo_engine, domain_config, district, window, CaseFilter(), EVERYTHING).values
    towns = [area_reports.area_indicators(demo_engine, domain_config, town, window, CaseFilter(), EVERYTHING).values for town in load_children(demo_engine, district.code)]
    assert len(towns) == 12
    for key in ("reported", "registered", "invalid", "dispatched", "handled", "closed", "in_progress", "overdue", "reworked", "due_to_close", "closed_on_time"):
        assert sum(town[key] for town in towns) == total[key], key
    assert sum(town["patrol_hours"] for town in towns) == pytest.approx(total["patrol_hours"])


def test_a_community_and_a_basic_grid_answer(demo_engine, domain_config):
    window = Window.until_now(*WINDOWS["everything"], DEMO_NOW)
    everything = all_cases(demo_engine)
    town = load_children(demo_engine, root_grid(demo_engine).code)[0]
    community = load_children(demo_engine, town.code)[0]
    grid = load_children(demo_engine, community.code)[0]
    for area in (community, grid):
        report = area_reports.area_indicators(demo_engine, domain_config, area, window, CaseFilter(), EVERYTHING).values
        subset = everything[everything["path"].str.startswith(area.path)]
        assert report["reported"] == int(ind.reported(subset, window).sum())
        assert report["in_progress"] == int(ind.in_progress(subset, window).sum())


@pytest.mark.parametrize("filter_name", ["dept", "grade", "source", "category-major", "category-detail", "combined"])
def test_filters_equal_filtering_every_case(demo_engine, domain_config, filter_name):
    window = Window.until_now(*WINDOWS["everything"], DEMO_NOW)
    everything = all_cases(demo_engine)
    catalogue = load_categories(demo_engine)
    busiest_category = everything["category"].value_counts().index[0]
    major = busiest_category[:3]
    filters, mask = {
        "dept": (CaseFilter(dept="CGJ"), everything["dept"] == "CGJ"),
        "grade": (CaseFilter(grade="A"), everything["grade"] == "A"),
        "source": (CaseFilter(source="hotline"), everything["source"] == "hotline"),
        "category-major": (CaseFilter(categories=frozenset(descendant_categories(catalogue, major))), everything["category"].str.startswith(major)),
        "category-detail": (CaseFilter(categories=frozenset({busiest_category})), everything["category"] == busiest_category),
        "combined": (
            CaseFilter(grade=catalogue[busiest_category].grade, source="patrol", categories=frozenset(descendant_categories(catalogue, major))),
            (everything["grade"] == catalogue[busiest_category].grade) & (everything["source"] == "patrol") & everything["category"].str.startswith(major),
        ),
    }[filter_name]
    report = area_reports.area_indicators(demo_engine, domain_config, root_grid(demo_engine), window, filters, EVERYTHING).values
    expected = ind.summarise(ind.case_flags(everything[mask], window))
    assert expected["reported"] > 0
    for key in ("reported", "closed", "due_to_close", "closed_on_time", "overdue", "in_progress", "on_time_closure_rate", "satisfaction_rate"):
        assert report[key] == (pytest.approx(expected[key]) if isinstance(expected[key], float) else expected[key]), key


def test_patrol_and_workers_online(demo_engine, domain_config):
    window = Window.until_now(*WINDOWS["today"], DEMO_NOW)
    report = area_reports.area_indicators(demo_engine, domain_config, root_grid(demo_engine), window, CaseFilter(), EVERYTHING).values
    with demo_engine.connect() as connection:
        days = pd.DataFrame(connection.execute(select(schema.patrol_days)).mappings().all())
        points = pd.DataFrame(connection.execute(select(schema.patrol_points.c.worker, schema.patrol_points.c.ts)).mappings().all())
    today = days[days["day"] == DEMO_NOW.date()]
    assert report["patrol_hours"] == pytest.approx(today["seconds"].sum() / 3600)
    assert report["patrol_km"] == pytest.approx(today["meters"].sum() / 1000)
    asof = pd.Timestamp(DEMO_NOW).tz_convert("UTC").tz_localize(None)
    recent = points[(points["ts"] > asof - pd.Timedelta(minutes=domain_config.offline_after_minutes)) & (points["ts"] <= asof)]
    assert report["workers_online"] == recent["worker"].nunique() > 0
    assert report["grids_patrolled"] == today[today["seconds"] > 0]["grid"].nunique()


def test_department_table_scores_and_grades(demo_engine, domain_config):
    window = Window.until_now(*WINDOWS["everything"], DEMO_NOW)
    table = area_reports.department_table(demo_engine, domain_config, root_grid(demo_engine), window, CaseFilter(), EVERYTHING)
    assert set(table["grade"].dropna()) <= set("ABCDE")
    row = table.sort_values("due_to_close").iloc[-1].to_dict()
    expected = ind.composite_score(row, domain_config.score_weights["department"])
    assert row["score"] == pytest.approx(expected)
