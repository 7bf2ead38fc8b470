"""The situational review's data: one area, one window and filters, against the period before.

Every number comes from ``gridrules.indicators`` (through ``reports`` and ``queries``), the
same functions as the wall, the weekly report and ``/api/indicators``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo

import pandas as pd

from dashboard import area_reports, cached_reads, wall_live
from dashboard.context import AppContext
from data_feeds import queries, reference, rollups
from data_feeds.queries import CaseFilter
from data_feeds.reference import descendant_categories, load_categories
from gridrules import indicators
from gridrules import rollups as gridrules_rollups
from gridrules.access import Scope
from gridrules.indicators import Window
from gridrules.selection import Selection, comparison, window_of
from gridrules.timewindows import today, week_of

HOT_SPOTS = 12
CASE_LIST = 200


class WindowCounts:
    """The counts of the review's area in one window: through the rollups when they answer
    it (``data_feeds.rollups``; the recent cases they need are read once per request, in
    ``rolled``), else from the window's cases, read once and shared by every panel."""

    def __init__(self, ctx: AppContext, area: reference.GridInfo, window: Window, filters: CaseFilter, scope: Scope, rolled: rollups.AreaRollups):
        self.ctx, self.area, self.window, self.filters, self.scope, self.rolled = ctx, area, window, filters, scope, rolled
        self.through_rollups = rolled.usable(window) is not None
        self._cases: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def cases(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The window's cases and their flags (row-level), read on first use."""
        if self._cases is None:
            cases = queries.load_cases(self.ctx.reader, self.area.path, self.window, self.filters, self.scope)
            self._cases = cases, indicators.case_flags(cases, self.window)
        return self._cases

    def by(self, key: str) -> pd.DataFrame:
        """Counts and rates per value of ``key`` (a dimension of the rollups), indexed by it."""
        counts = self.rolled.counts(self.window, key) if self.through_rollups else None
        if counts is not None:
            return indicators.summaries(counts[counts.index != ""])
        cases, flags = self.cases()
        return indicators.summarise_by(cases, flags, key).set_index(key)

    def by_area(self, areas: dict[str, str], paths: dict[str, str]) -> pd.DataFrame:
        """Counts and rates of each of ``areas`` (code → path, parts of the area), indexed by code;
        ``paths``: every grid's path, to place the cases row-level."""
        counts = self.rolled.counts_by_area(self.window, areas) if self.through_rollups else None
        if counts is not None:
            return indicators.summaries(counts)
        cases, flags = self.cases()
        ordered = sorted(areas.items(), key=lambda item: -len(item[1]))

        def area_of(grid: str) -> str | None:
            path = paths.get(grid, "")
            return next((code for code, prefix in ordered if path.startswith(prefix)), None)

        return indicators.summarise_by(cases.assign(area=cases["grid"].map(area_of)), flags, "area").set_index("area")

    def reported_and_closed(self, slots: list[Window]) -> list[tuple[int, int]]:
        """Reported and closed in each slot of the window (whole local days through the rollups)."""
        daily = None
        if self.through_rollups and all(rollups_day(slot, self.ctx.settings.tz) for slot in slots):
            daily = self.rolled.daily(self.window, ("reported", "closed"))
        if daily is not None:
            daily.index = [str(day) for day in daily.index]
            return [(int(daily["reported"].get(str(rollups_day(slot, self.ctx.settings.tz)), 0)), int(daily["closed"].get(str(rollups_day(slot, self.ctx.settings.tz)), 0)))
                    for slot in slots]
        cases, _ = self.cases()
        return [(int(indicators.reported(cases, slot).sum()), int(indicators.closed(cases, slot).sum())) for slot in slots]


def rollups_day(slot: Window, tz: tzinfo) -> date | None:
    """The local day a one-day slot covers, or None when it is not a whole local day."""
    plan = gridrules_rollups.day_plan(slot, tz)
    return plan.first if plan is not None and (plan.end - plan.first).days == 1 else None


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
        catalogue = load_categories(ctx.reader)
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


def _trend(counts: WindowCounts, previous_counts: WindowCounts, tz: tzinfo, now: datetime) -> pd.DataFrame:
    """Reported and closed per hour (windows of two days or less) or per day, beside the period
    before. Every slot of the window has a row, in order; a slot that has not begun yet has no
    values (NaN), nor has the period before there, which is compared up to the same point."""
    window, previous = counts.window, previous_counts.window
    hourly = window.end - window.start <= timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    label = "%H:00" if hourly else "%m-%d" if window.end - window.start <= timedelta(days=366) else "%Y-%m-%d"
    shift = window.start - previous.start
    starts = []
    slot = window.start
    while slot < window.end:
        starts.append(slot)
        slot += step
    current = counts.reported_and_closed([Window.until_now(start, start + step, now) for start in starts])
    before = previous_counts.reported_and_closed([Window.until_now(start - shift, start - shift + step, now) for start in starts])
    rows = []
    for start, (reported, closed), (reported_before, closed_before) in zip(starts, current, before, strict=True):
        begun, begun_before = start <= now, start - shift < previous.end
        rows.append({
            "label": start.astimezone(tz).strftime(label),
            "reported": reported if begun else None,
            "closed": closed if begun else None,
            "reported_before": reported_before if begun_before else None,
            "closed_before": closed_before if begun_before else None,
        })
    return pd.DataFrame(rows, columns=["label", "reported", "closed", "reported_before", "closed_before"])


def _categories(ctx: AppContext, counts: WindowCounts, previous_counts: WindowCounts, selection: Selection, names: dict) -> pd.DataFrame:
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

    def reported(source: WindowCounts) -> pd.Series:
        table = source.by("category")
        if table.empty:
            return pd.Series(dtype=int)
        return table["reported"].groupby(table.index.map(bucket)).sum()

    now_counts, before = reported(counts), reported(previous_counts)
    codes = sorted((c for c in set(now_counts.index) | set(before.index) if now_counts.get(c, 0) or before.get(c, 0)), key=lambda c: (-now_counts.get(c, 0), c))
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
    week_patrol = queries.load_patrol(ctx.reader, area.path, first, last, scope)
    today_date = now.astimezone(tz).date()
    walked = week_patrol[week_patrol["seconds"] > 0] if not week_patrol.empty else week_patrol
    first, last = queries.local_days(window, tz)
    patrol = queries.load_patrol(ctx.reader, area.path, first, last, scope)
    workers = pd.DataFrame(queries.list_workers(ctx.reader, area.path, scope))
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
    rolled = rollups.AreaRollups(ctx.reader, tz, area.code, area.path, filters, scope)
    counts, previous_counts = WindowCounts(ctx, area, window, filters, scope, rolled), WindowCounts(ctx, area, before, filters, scope, rolled)
    departments = area_reports.scored_departments(ctx.reader, ctx.config, area, window, filters, scope, counts.by("dept").reset_index(names="dept"))
    if not departments.empty:
        departments["name"] = departments["dept"].map(lambda code: names["departments"].get(code, code))
    paths = wall_live.grid_paths(ctx)
    grids = counts.by_area({code: paths.get(code, "") for code in _basic_grids(ctx, area)}, paths)
    children = _children(ctx, area, counts, paths)
    hot = grids.sort_values(["reported", "overdue"], ascending=False).head(HOT_SPOTS) if not grids.empty else grids
    hot = hot[(hot["reported"] > 0) | (hot["in_progress"] > 0)] if not hot.empty else hot
    hot_spots = pd.DataFrame({
        "grid": list(hot.index), "name": [names["grids"].get(code, code) for code in hot.index],
        "reported": hot.get("reported", []), "in_progress": hot.get("in_progress", []), "overdue": hot.get("overdue", []),
    }).reset_index(drop=True)
    case_rows = queries.list_cases(ctx.reader, area.path, window, filters, scope, CASE_LIST)
    return ReviewData(
        area=area, breadcrumb=breadcrumb(ctx, area, scope), children=children, window=window, previous=before,
        values=values, previous_values=previous_values, trend=_trend(counts, previous_counts, tz, now),
        categories=_categories(ctx, counts, previous_counts, selection, names),
        departments=departments, hot_spots=hot_spots, patrol=_patrol(ctx, area, window, scope, now), cases=case_rows,
    )


SHARED_REVIEW_S = 5  # leaders opening the same selection within these seconds of one another share one computation


def shared(ctx: AppContext, area: reference.GridInfo, selection: Selection, scope: Scope, now: datetime, lang: str) -> ReviewData:
    """``build``, computed once per change batch (and a few seconds of the clock) for every
    leader of the same scope asking the same selection in the same language, in every worker:
    the leaders who open the review together before a meeting cost about one."""
    asked = sorted(replace(selection, case=None).query().items())
    key = (f"review|{area.code}|{asked}|{scope.key()}|{scope.personal_data}|{lang}|{wall_live.latest_change_id(ctx)}"
           f"|{int(now.timestamp()) // SHARED_REVIEW_S}")
    return cached_reads.cached(key, 2 * SHARED_REVIEW_S, lambda: build(ctx, area, selection, scope, now, lang))


def _basic_grids(ctx: AppContext, area: reference.GridInfo) -> list[str]:
    """The basic grids (level 4) of the area; a basic grid: itself."""
    if area.level >= 4:
        return [area.code]
    return [shape["code"] for shape in cached_reads.map_geometries(ctx, area, level=4)]


CHILD_COLUMNS = ("reported", "in_progress", "overdue", "due_to_close", "closure_rate", "on_time_closure_rate", "satisfaction_rate", "score", "grade")


def _children(ctx: AppContext, area: reference.GridInfo, counts: WindowCounts, paths: dict[str, str]) -> list[dict]:
    """The area's child areas (towns of a district, communities of a town, grids of a
    community; a basic grid: itself), each with its shape, counts, rates, score and grade
    (scored as a grid is: on what fell due in the window, none when nothing did)."""
    level = area.level + 1 if area.level < 4 else area.level
    shapes = cached_reads.map_geometries(ctx, area, level=level)
    table = counts.by_area({shape["code"]: paths.get(shape["code"], "") for shape in shapes}, paths)
    table = area_reports.scored(table.rename_axis("child").reset_index(), ctx.config, "grid").set_index("child")
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
