"""The situational review's data: one area, one window and filters, against the period before.

Every number comes from ``gridrules.indicators`` (through ``reports`` and ``queries``), the
same functions as the wall, the weekly report and ``/api/indicators``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import pandas as pd

from dashboard import area_reports, cached_reads, wall_live
from dashboard.context import AppContext
from data_feeds import queries, reference
from data_feeds.queries import CaseFilter
from data_feeds.reference import descendant_categories, load_categories
from gridrules import indicators
from gridrules.access import Scope
from gridrules.indicators import Window
from gridrules.selection import Selection, comparison, window_of
from gridrules.timewindows import today, week_of

HOT_SPOTS = 12
CASE_LIST = 200


@dataclass
class ReviewData:
    area: reference.GridInfo
    breadcrumb: list  # [(code, name)] from the caller's home area down to this one
    children: list  # child areas: code, name, geometry and the CHILD_COLUMNS
    window: Window
    previous: Window
    values: dict
    previous_values: dict
    trend: pd.DataFrame  # label, reported, closed, reported_before, closed_before
    categories: pd.DataFrame  # code, name, reported, previous
    departments: pd.DataFrame
    hot_spots: pd.DataFrame  # grid, name, reported, in_progress, overdue
    patrol: dict
    cases: list


def filters_of(ctx: AppContext, selection: Selection) -> CaseFilter:
    categories = None
    if selection.category:
        catalogue = load_categories(ctx.engine)
        if selection.category in catalogue:
            categories = frozenset(descendant_categories(catalogue, selection.category))
    return CaseFilter(dept=selection.dept, categories=categories, grade=selection.grade, source=selection.source, stage=selection.stage)


def breadcrumb(ctx: AppContext, area: reference.GridInfo, scope: Scope) -> list[tuple[str, str]]:
    """The chain from the caller's home area down to ``area`` (higher levels are out of scope)."""
    chain = []
    codes = [code for code in area.path.split("/") if code]
    for code in codes:
        node = cached_reads.grid(ctx, code)
        if node is not None and scope.covers(node.path):
            chain.append((node.code, node.name))
    return chain


def _trend(cases: pd.DataFrame, previous_cases: pd.DataFrame, window: Window, previous: Window, tz: tzinfo, now: datetime) -> pd.DataFrame:
    """Reported and closed per hour (windows of two days or less) or per day, beside the period
    before. Every slot of the window has a row, in order; a slot that has not begun yet has no
    values (NaN), nor has the period before there, which is compared up to the same point."""
    hourly = window.end - window.start <= timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    label = "%H:00" if hourly else "%m-%d" if window.end - window.start <= timedelta(days=366) else "%Y-%m-%d"
    rows = []
    slot = window.start
    shift = window.start - previous.start
    while slot < window.end:
        current = Window.until_now(slot, slot + step, now)
        before = Window.until_now(slot - shift, slot - shift + step, now)
        begun, begun_before = slot <= now, slot - shift < previous.end
        rows.append({
            "label": slot.astimezone(tz).strftime(label),
            "reported": int(indicators.reported(cases, current).sum()) if begun else None,
            "closed": int(indicators.closed(cases, current).sum()) if begun else None,
            "reported_before": int(indicators.reported(previous_cases, before).sum()) if begun_before else None,
            "closed_before": int(indicators.closed(previous_cases, before).sum()) if begun_before else None,
        })
        slot += step
    return pd.DataFrame(rows, columns=["label", "reported", "closed", "reported_before", "closed_before"])


def _categories(ctx: AppContext, cases: pd.DataFrame, flags: pd.DataFrame, previous_cases: pd.DataFrame, previous_flags: pd.DataFrame, selection: Selection, names: dict) -> pd.DataFrame:
    """Reported by the level just below the selected category (major classes when none)."""
    catalogue = cached_reads.names(ctx, "zh")["category_parents"]

    def bucket(code: str) -> str:
        chain = [code]
        while catalogue.get(chain[-1]):
            chain.append(catalogue[chain[-1]])
        chain.reverse()  # major … detail
        if selection.category and selection.category in chain:
            position = chain.index(selection.category)
            return chain[min(position + 1, len(chain) - 1)]
        return chain[0]

    def counts(frame: pd.DataFrame, frame_flags: pd.DataFrame) -> pd.Series:
        if frame.empty:
            return pd.Series(dtype=int)
        return frame.loc[frame_flags["reported"].to_numpy(), "category"].map(bucket).value_counts()

    now_counts, before = counts(cases, flags), counts(previous_cases, previous_flags)
    codes = sorted(set(now_counts.index) | set(before.index), key=lambda c: (-now_counts.get(c, 0), c))
    return pd.DataFrame(
        [{"code": c, "name": names["categories_all"].get(c, c), "reported": int(now_counts.get(c, 0)), "previous": int(before.get(c, 0))} for c in codes],
        columns=["code", "name", "reported", "previous"],
    )


def _patrol(ctx: AppContext, area: reference.GridInfo, window: Window, scope: Scope, now: datetime) -> dict:
    """Grids patrolled today and this week, hours and km per worker in the window, and the
    workers below the expected rounds."""
    config = ctx.config
    tz = config.calendar.tz
    total = len(cached_reads.map_geometries(ctx, area, level=4)) if area.level < 4 else 1
    day = today(tz, now)
    week = week_of(now.astimezone(tz).date(), tz, now)
    first, last = queries.local_days(week, tz)
    week_patrol = queries.load_patrol(ctx.engine, area.path, first, last, scope)
    today_date = now.astimezone(tz).date()
    walked = week_patrol[week_patrol["seconds"] > 0] if not week_patrol.empty else week_patrol
    first, last = queries.local_days(window, tz)
    patrol = queries.load_patrol(ctx.engine, area.path, first, last, scope)
    workers = pd.DataFrame(queries.list_workers(ctx.engine, area.path, scope))
    workers = workers[workers["role"] == "worker"] if not workers.empty else workers
    per_worker = patrol.groupby("worker").agg(seconds=("seconds", "sum"), meters=("meters", "sum"), rounds=("rounds", "sum")) if not patrol.empty else pd.DataFrame(columns=["seconds", "meters", "rounds"])
    days = area_reports.working_days_in(window, config)
    expected_rounds = config.expected_rounds_per_day * days
    rows = []
    for worker in workers.itertuples(index=False) if not workers.empty else []:
        own = per_worker.loc[worker.id] if worker.id in per_worker.index else None
        rounds = int(own["rounds"]) if own is not None else 0
        rows.append({
            "worker": worker.id, "name": worker.name, "grid": worker.grid_name,
            "hours": round(float(own["seconds"]) / 3600, 1) if own is not None else 0.0,
            "km": round(float(own["meters"]) / 1000, 1) if own is not None else 0.0,
            "rounds": rounds, "expected_rounds": expected_rounds, "below": rounds < expected_rounds,
        })
    table = pd.DataFrame(rows, columns=["worker", "name", "grid", "hours", "km", "rounds", "expected_rounds", "below"])
    return {
        "total_grids": total,
        "grids_today": int(walked[walked["day"] == today_date]["grid"].nunique()) if not walked.empty else 0,
        "grids_week": int(walked["grid"].nunique()) if not walked.empty else 0,
        "workers": table.sort_values(["below", "hours"], ascending=[False, True]).reset_index(drop=True),
        "day_window": (day.start, day.end),
    }


def build(ctx: AppContext, area: reference.GridInfo, selection: Selection, scope: Scope, now: datetime, lang: str) -> ReviewData:
    tz = ctx.settings.tz
    window = window_of(selection, tz, now, ctx.settings.max_window_days)
    before = comparison(window, now)
    filters = filters_of(ctx, selection)
    names = cached_reads.names(ctx, lang)
    values = cached_reads.area_indicators(ctx, area, window, now, filters, scope)
    previous_values = cached_reads.area_indicators(ctx, area, before, now, filters, scope)
    cases = queries.load_cases(ctx.engine, area.path, window, filters, scope)
    previous_cases = queries.load_cases(ctx.engine, area.path, before, filters, scope)
    flags = indicators.case_flags(cases, window)
    previous_flags = indicators.case_flags(previous_cases, before)
    departments = area_reports.department_table(ctx.engine, ctx.config, area, window, filters, scope, cases, flags)
    if not departments.empty:
        departments["name"] = departments["dept"].map(lambda code: names["departments"].get(code, code))
    grids = indicators.summarise_by(cases, flags, "grid")
    children = _children(ctx, area, cases, flags)
    hot = grids.sort_values(["reported", "overdue"], ascending=False).head(HOT_SPOTS) if not grids.empty else grids
    hot_spots = pd.DataFrame({
        "grid": hot.get("grid", []), "name": [names["grids"].get(code, code) for code in hot.get("grid", [])],
        "reported": hot.get("reported", []), "in_progress": hot.get("in_progress", []), "overdue": hot.get("overdue", []),
    })
    case_rows = queries.list_cases(ctx.engine, area.path, window, filters, scope, CASE_LIST)
    return ReviewData(
        area=area, breadcrumb=breadcrumb(ctx, area, scope), children=children, window=window, previous=before,
        values=values, previous_values=previous_values, trend=_trend(cases, previous_cases, window, before, tz, now),
        categories=_categories(ctx, cases, flags, previous_cases, previous_flags, selection, names),
        departments=departments, hot_spots=hot_spots, patrol=_patrol(ctx, area, window, scope, now), cases=case_rows,
    )


CHILD_COLUMNS = ("reported", "in_progress", "overdue", "due_to_close", "closure_rate", "on_time_closure_rate", "satisfaction_rate", "score", "grade")


def _children(ctx: AppContext, area: reference.GridInfo, cases: pd.DataFrame, flags: pd.DataFrame) -> list[dict]:
    """The area's child areas (towns of a district, communities of a town, grids of a
    community; a basic grid: itself), each with its shape, counts, rates, score and grade
    (scored as a grid is: on what fell due in the window, none when nothing did)."""
    level = area.level + 1 if area.level < 4 else area.level
    shapes = cached_reads.map_geometries(ctx, area, level=level)
    paths = wall_live.grid_paths(ctx)

    def child_of(code: str) -> str:
        parts = [p for p in paths.get(code, "").split("/") if p]
        return parts[level - 1] if len(parts) >= level else code

    table = indicators.summarise_by(cases.assign(child=cases["grid"].map(child_of)), flags, "child")
    table = area_reports.scored(table, ctx.config, "grid").set_index("child")
    rows = []
    for shape in shapes:
        values = table.loc[shape["code"]].to_dict() if shape["code"] in table.index else {}
        row = {**shape}
        for column in CHILD_COLUMNS:
            value = values.get(column)
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            if column in ("reported", "in_progress", "overdue", "due_to_close"):
                row[column] = 0 if missing else int(value)
            else:
                row[column] = None if missing else (value if column == "grade" else float(value))
        rows.append(row)
    return rows
