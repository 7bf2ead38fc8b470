"""What the screens and the API ask for, assembled from the database and the indicator functions.

Every number of every screen comes through here, so they agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import pandas as pd
from sqlalchemy.engine import Engine

from data_feeds import queries, rollups
from data_feeds.queries import CaseFilter
from data_feeds.reference import GridInfo
from gridrules import indicators
from gridrules.access import Scope
from gridrules.config import DomainConfig
from gridrules.indicators import Window


@dataclass(frozen=True)
class AreaReport:
    """The indicators of one area and window, keyed as ``/api/indicators`` documents them."""

    area: GridInfo
    window: Window
    values: dict

    def api(self) -> dict:
        return {key: self.values.get(key) for key in indicators.API_KEYS}


def working_days_in(window: Window, config: DomainConfig) -> int:
    """Working days the window has touched so far (what patrol norms are counted against)."""
    first, last = queries.local_days(window, config.calendar.tz)
    days = pd.date_range(first, last, freq="D").date
    return sum(1 for day in days if config.calendar.is_working_day(day))


def case_indicators(engine: Engine, config: DomainConfig, area: GridInfo, window: Window, filters: CaseFilter, scope: Scope) -> dict:
    """The case counts, rates and close times of an area and window: through the rollups
    where they answer (``data_feeds.rollups``), else from the window's cases."""
    counts = rollups.window_counts(engine, config.calendar.tz, area.code, area.path, window, filters, scope)
    if counts is not None:
        return indicators.summary(counts.iloc[0])
    return indicators.summarise(indicators.case_flags(queries.load_cases(engine, area.path, window, filters, scope), window))


def area_indicators(engine: Engine, config: DomainConfig, area: GridInfo, window: Window, filters: CaseFilter, scope: Scope) -> AreaReport:
    """Every indicator of gridrules.indicators for an area subtree and a window, within the caller's scope."""
    values = case_indicators(engine, config, area, window, filters, scope)
    first, last = queries.local_days(window, config.calendar.tz)
    patrol = queries.load_patrol(engine, area.path, first, last, scope)
    values.update(indicators.patrol_totals(patrol))
    expected = config.expected_hours_per_day * working_days_in(window, config) * queries.count_patrol_workers(engine, area.path, scope)
    values["patrol_attainment"] = indicators.patrol_attainment(values["patrol_hours"], expected)
    values["workers_online"] = queries.workers_online(engine, area.path, window.asof, config.offline_after_minutes, scope)
    return AreaReport(area, window, values)


def scored(table: pd.DataFrame, config: DomainConfig, kind: str) -> pd.DataFrame:
    """Add ``score`` and ``grade`` columns to a per-department/grid/worker table. A department
    or grid with no case due in the window has no score: there is nothing to judge it on."""
    weights = config.score_weights[kind]
    needs_due = kind in ("department", "grid") and "due_to_close" in table.columns
    scores = [None if needs_due and not row["due_to_close"] else indicators.composite_score(row, weights) for row in table.to_dict("records")]
    table = table.copy()
    table["score"] = scores
    table["grade"] = [indicators.grade_of(score, config.grade_thresholds) for score in scores]
    return table


def table_by(engine: Engine, area: GridInfo, window: Window, key: str, filters: CaseFilter, scope: Scope, tz: tzinfo | None = None) -> pd.DataFrame:
    """Counts and rates per value of ``key`` (dept, grid, worker, category, source): through
    the rollups for the keys they hold when ``tz`` (their local days) is given."""
    counts = rollups.window_counts(engine, tz, area.code, area.path, window, filters, scope, key) if tz is not None else None
    if counts is not None:
        return indicators.summaries(counts[counts.index != ""]).rename_axis(key).reset_index()
    cases = queries.load_cases(engine, area.path, window, filters, scope)
    return indicators.summarise_by(cases, indicators.case_flags(cases, window), key)


def department_table(engine: Engine, config: DomainConfig, area: GridInfo, window: Window, filters: CaseFilter, scope: Scope,
                     cases: pd.DataFrame | None = None, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per department: the case counts and rates, the centre's interventions, composite score
    and grade (``cases`` and their ``flags``: the window's, when the caller has them already)."""
    if cases is None:
        table = table_by(engine, area, window, "dept", filters, scope, config.calendar.tz)
    else:
        table = indicators.summarise_by(cases, flags, "dept")
    return scored_departments(engine, config, area, window, filters, scope, table)


def scored_departments(engine: Engine, config: DomainConfig, area: GridInfo, window: Window, filters: CaseFilter, scope: Scope, table: pd.DataFrame) -> pd.DataFrame:
    """A per-department table of counts and rates with the centre's interventions, score and grade."""
    counts = indicators.intervention_counts(queries.load_interventions(engine, area.path, window, filters, scope))
    return scored(indicators.with_interventions(table, counts), config, "department")


def grid_table(engine: Engine, area: GridInfo, window: Window, filters: CaseFilter, scope: Scope) -> pd.DataFrame:
    """Per basic grid: the case counts and rates (open and overdue at asof among them)."""
    return table_by(engine, area, window, "grid", filters, scope)
