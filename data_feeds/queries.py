"""Read cases and patrol records for an area subtree and a window, as DataFrames.

Every query takes the area's materialised path, so a subtree is one indexed
``LIKE 'prefix%'``; filters are bound parameters, never formatted into the SQL.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import and_, case, false, func, literal_column, or_, select, union_all
from sqlalchemy.engine import Engine

from data_feeds import db, schema
from gridrules.access import Scope, effective_path
from gridrules.bounds import MAX_CASE_EVENTS, MAX_CASE_LIMIT, MAX_EXPORT_CASES
from gridrules.indicators import TIME_COLUMNS, Window, empty_cases

CASE_TEXT_COLUMNS = ("id", "status", "grid", "category", "dept", "grade", "source", "worker", "satisfaction", "stage")
REPEATING_TEXT_COLUMNS = ("status", "grid", "category", "dept", "grade", "source", "satisfaction", "stage")
READ_CHUNK = 100_000  # case rows read from the database at a time (a server-side cursor on PostgreSQL)
INDICATOR_TIME_COLUMNS = tuple(name for name in TIME_COLUMNS if not name.startswith("stage_") and name not in ("last_dispatched_at",))


@dataclass(frozen=True)
class CaseFilter:
    """Optional filters: department, category codes (a class and its descendants), grade, source."""

    dept: str | None = None
    categories: frozenset[str] | None = None
    grade: str | None = None
    source: str | None = None
    stage: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def key(self) -> tuple:
        """A stable, hashable description for cache keys."""
        return (self.dept, tuple(sorted(self.categories)) if self.categories else None, self.grade, self.source, self.stage)


def in_subtree(area_path: str):
    """The condition "grid lies in the subtree at ``area_path``" (LIKE with wildcards escaped)."""
    escaped = area_path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return schema.grids.c.path.like(f"{escaped}%", escape="\\")


def grids_in_area(connection, grid_column, area_path: str, scope: Scope):
    """A condition "``grid_column`` lies in the subtree and in the caller's scope", or None
    when that is every grid.

    The subtree's codes are resolved first and matched with IN: planners estimate a LIKE
    on the path badly and would loop over every grid (seen on PostgreSQL with 1M cases).
    """
    area_path = effective_path(area_path, scope)
    if area_path is None:
        return false()
    codes = list(connection.execute(select(schema.grids.c.code).where(in_subtree(area_path))).scalars())
    total = connection.execute(select(func.count()).select_from(schema.grids)).scalar()
    if len(codes) == total:
        return None
    return grid_column.in_(codes)


def in_department(c, scope: Scope):
    """The SQL form of ``Scope.sees_department_case`` over the cases columns ``c`` (None: no limit)."""
    if not scope.dept:
        return None
    if scope.dept_before_dispatch:
        return c.dept == scope.dept
    return and_(c.dept == scope.dept, c.dispatched_at.is_not(None))


def _where(statement, *conditions):
    return statement.where(*(condition for condition in conditions if condition is not None))


def load_cases(engine: Engine, area_path: str, window: Window, filters: CaseFilter, scope: Scope) -> pd.DataFrame:
    """Cases in the subtree that matter for the window.

    A case matters when it was reported before the window's end and either changed during
    or after the window (``updated_at ≥ start``) or is still open: a case finished before
    the window started can no longer add to any count, due or state inside it.
    """
    start, end, _ = window.naive()
    return load_recent_cases(engine, area_path, start.to_pydatetime(), end.to_pydatetime(), filters, scope)


def load_recent_cases(engine: Engine, area_path: str, since: datetime, end: datetime, filters: CaseFilter, scope: Scope) -> pd.DataFrame:
    """Cases in the subtree reported before ``end`` that are open or changed at or after ``since``."""
    since, end = db.to_db_time(since) if since.tzinfo else since, db.to_db_time(end) if end.tzinfo else end
    c = schema.cases.c
    columns = [c[name] for name in CASE_TEXT_COLUMNS] + [c.rework_count, c.self_handled] + [c[name] for name in INDICATOR_TIME_COLUMNS]

    with engine.connect() as connection:
        in_area = grids_in_area(connection, c.grid, area_path, scope)
        in_dept = in_department(c, scope)

        def part(*conditions):
            statement = _where(select(*columns), in_area, in_dept, c.reported_at < end, *conditions)
            return filtered(statement, filters)

        changed = [c.updated_at >= since]
        if engine.dialect.name == "postgresql":
            # Reported before the end and changed since: the spans that overlap [since, end]
            # (closed, so that since == end, a past window's own end, still finds them).
            changed.append(schema.case_lifetime(c).op("&&")(func.tsrange(min(since, end), end, literal_column("'[]'"))))
        # Two index-friendly halves instead of one OR, which would scan every case.
        statement = union_all(part(*changed), part(c.is_open.is_(True), c.updated_at < since))
        result = connection.execution_options(yield_per=READ_CHUNK).execute(statement)
        names = [column.name for column in columns]
        frames = [_shared_texts(pd.DataFrame.from_records([tuple(row) for row in part], columns=names)) for part in result.partitions()]
    if not frames:
        return empty_cases()
    return case_frame(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])


def _shared_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """The repeating text columns with one object per distinct value: a year of a city's cases
    holds millions of copies of a few hundred codes, and a copy each would take gigabytes."""
    for name in REPEATING_TEXT_COLUMNS:
        shared = pd.Series(pd.Categorical(frame[name]), index=frame.index).astype(object)
        frame[name] = shared.where(shared.notna(), None)
    return frame


def case_rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of the cases table (dicts, times naive UTC) as a case frame."""
    if not rows:
        return empty_cases()
    return case_frame(pd.DataFrame.from_records(rows, columns=[*CASE_TEXT_COLUMNS, "rework_count", "self_handled", *INDICATOR_TIME_COLUMNS]))


def load_interventions(engine: Engine, area_path: str, window: Window, filters: CaseFilter, scope: Scope) -> pd.DataFrame:
    """The centre's interventions in the window on cases of the subtree: one row per event
    with ``kind`` (a key of ``indicators.INTERVENTION_OF_KIND``), the department it counts against (``dept``), the
    case and whether the case has closed by its deadline (``closed_on_time``). The department
    filter and a department's scope select by that department; the other filters by the case."""
    start, end, _ = window.naive()
    e, c = schema.case_events.c, schema.cases.c
    redispatch = and_(e.action == "dispatch", e.from_status == "dispatched")
    kind = case((redispatch, "redispatch"), else_=e.action)
    on_time = and_(c.closed_at.is_not(None), c.deadline.is_not(None), c.closed_at <= c.deadline)
    with engine.connect() as connection:
        statement = _where(
            select(kind.label("kind"), e.dept, e.case_id, case((on_time, True), else_=False).label("closed_on_time"))
            .select_from(schema.case_events.join(schema.cases, c.id == e.case_id)),
            e.ts >= start.to_pydatetime(), e.ts < end.to_pydatetime(),
            or_(e.action.in_(("supervise", "decline", "extend")), redispatch),
            grids_in_area(connection, c.grid, area_path, scope),
            e.dept == scope.dept if scope.dept else None,
        )
        statement = filtered(statement, replace(filters, dept=None))
        if filters.dept:
            statement = statement.where(e.dept == filters.dept)
        rows = connection.execute(statement).all()
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=["kind", "dept", "case_id", "closed_on_time"])


def filtered(statement, filters: CaseFilter, c=None):
    """``statement`` within the filters, over the columns ``c`` (the cases', or any table's
    with the same names: the rollups, which have no stage)."""
    c = schema.cases.c if c is None else c
    if filters.dept:
        statement = statement.where(c.dept == filters.dept)
    if filters.categories is not None:
        statement = statement.where(c.category.in_(sorted(filters.categories)))
    if filters.grade:
        statement = statement.where(c.grade == filters.grade)
    if filters.source:
        statement = statement.where(c.source == filters.source)
    if filters.stage and "stage" in c:
        statement = statement.where(c.stage == filters.stage)
    return statement


def case_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame of case rows the dtypes the indicator functions expect."""
    if frame.empty:
        return empty_cases()
    for name in INDICATOR_TIME_COLUMNS:
        frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    frame["rework_count"] = frame["rework_count"].fillna(0).astype("int64")
    frame["self_handled"] = frame["self_handled"].fillna(False).astype(bool)
    for name in CASE_TEXT_COLUMNS:
        frame[name] = frame[name].astype("object")
    return frame


def local_days(window: Window, tz) -> tuple[date, date]:
    """The first and last local day the window touches (asof bounds the last)."""
    first = window.start.astimezone(tz).date()
    last_moment = max(window.start, min(window.end, window.asof) - timedelta(microseconds=1))
    return first, last_moment.astimezone(tz).date()


def load_patrol(engine: Engine, area_path: str, first_day: date, last_day: date, scope: Scope, worker: str | None = None) -> pd.DataFrame:
    """Patrol per day, worker and grid for grids in the subtree, days inclusive (none for
    department users: grid patrol is not a department's business)."""
    p = schema.patrol_days.c
    with engine.connect() as connection:
        statement = _where(
            select(p.day, p.worker, p.grid, p.seconds, p.meters, p.points, p.rounds),
            grids_in_area(connection, p.grid, area_path, scope),
            false() if scope.dept else None,
            p.day >= first_day,
            p.day <= last_day,
            p.worker == worker if worker else None,
        )
        rows = connection.execute(statement).all()
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=["day", "worker", "grid", "seconds", "meters", "points", "rounds"])


def workers_online(engine: Engine, area_path: str, asof: datetime, offline_after_minutes: float, scope: Scope) -> int:
    """Staff of the subtree with a track point in the last ``offline_after`` minutes before asof."""
    until = db.to_db_time(asof)
    since = until - timedelta(minutes=offline_after_minutes)
    w = schema.workers.c
    t = schema.patrol_points.c
    with engine.connect() as connection:
        statement = _where(
            select(func.count(func.distinct(t.worker))).select_from(schema.patrol_points.join(schema.workers, w.id == t.worker)),
            grids_in_area(connection, w.grid, area_path, scope),
            false() if scope.dept else None,
            t.ts > since,
            t.ts <= until,
        )
        return int(connection.execute(statement).scalar() or 0)


def count_patrol_workers(engine: Engine, area_path: str, scope: Scope) -> int:
    """Grid workers (网格员, who are expected to patrol) in the subtree."""
    w = schema.workers.c
    with engine.connect() as connection:
        statement = _where(
            select(func.count()).select_from(schema.workers), grids_in_area(connection, w.grid, area_path, scope),
            false() if scope.dept else None, w.role == "worker",
        )
        return int(connection.execute(statement).scalar() or 0)


CASE_LIST_LIMIT = MAX_CASE_LIMIT


def list_cases(engine: Engine, area_path: str, window: Window, filters: CaseFilter, scope: Scope, limit: int = 200, status: str | None = None) -> list[dict]:
    """Cases of the subtree and scope reported in the window, newest first, with names; at
    most ``limit``, from 1 to CASE_LIST_LIMIT (anything else is a caller's bug: SQLite reads
    LIMIT -1 as "every row")."""
    if not 1 <= limit <= CASE_LIST_LIMIT:
        raise ValueError(f"limit {limit} is outside 1..{CASE_LIST_LIMIT}")
    return _case_list(engine, area_path, window, filters, scope, limit, status)


def export_cases(engine: Engine, area_path: str, window: Window, filters: CaseFilter, scope: Scope) -> tuple[list[dict], bool]:
    """The cases of ``list_cases`` for an export: the newest ``MAX_EXPORT_CASES`` and whether
    there were more (one row more is read to know)."""
    rows = _case_list(engine, area_path, window, filters, scope, MAX_EXPORT_CASES + 1, None)
    return rows[:MAX_EXPORT_CASES], len(rows) > MAX_EXPORT_CASES


def _case_list(engine: Engine, area_path: str, window: Window, filters: CaseFilter, scope: Scope, limit: int, status: str | None) -> list[dict]:
    start, end, _ = window.naive()
    c = schema.cases.c
    with engine.connect() as connection:
        statement = _where(
            select(schema.cases, schema.grids.c.name.label("grid_name"), schema.categories.c.name.label("category_name"),
                   schema.categories.c.name_en.label("category_name_en"))
            .select_from(schema.cases.join(schema.grids, schema.grids.c.code == c.grid).join(schema.categories, schema.categories.c.code == c.category)),
            grids_in_area(connection, c.grid, area_path, scope),
            in_department(c, scope),
            c.status == status if status else None,
            c.reported_at >= start.to_pydatetime(),
            c.reported_at < end.to_pydatetime(),
        )
        statement = filtered(statement, filters).order_by(c.reported_at.desc()).limit(limit)
        return [dict(row) for row in connection.execute(statement).mappings()]


SEARCH_HITS = 20
SEARCH_CHARS = 64
PHONE_DIGITS = re.compile(r"\d{7,}")


def _like_text(text: str) -> str:
    """``text`` for a LIKE pattern, its wildcards taken literally (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_cases(engine: Engine, area_path: str, text: str, scope: Scope, phones: bool) -> list[dict]:
    """The newest SEARCH_HITS cases of the subtree and scope whose id starts with ``text`` or
    whose description holds it; with ``phones`` (a role that may see personal data unmasked)
    also those whose contact holds it. Without ``phones``, a text with a phone number in it is
    looked up as a case id only: a search must not tell who called."""
    text = " ".join(str(text or "").split())[:SEARCH_CHARS]
    if not text:
        return []
    c = schema.cases.c
    pattern = _like_text(text)
    matches = [c.id.like(pattern + "%", escape="\\")]
    if phones or not PHONE_DIGITS.search(text):
        matches.append(c.description.like("%" + pattern + "%", escape="\\"))
    if phones and PHONE_DIGITS.search(text):
        matches.append(c.contact.like("%" + pattern + "%", escape="\\"))
    with engine.connect() as connection:
        statement = _where(
            select(c.id, c.status, c.grade, c.reported_at, c.description, schema.grids.c.name.label("grid_name"), schema.categories.c.name.label("category_name"),
                   schema.categories.c.name_en.label("category_name_en"))
            .select_from(schema.cases.join(schema.grids, schema.grids.c.code == c.grid).join(schema.categories, schema.categories.c.code == c.category)),
            grids_in_area(connection, c.grid, area_path, scope),
            in_department(c, scope),
            or_(*matches),
        ).order_by(c.reported_at.desc()).limit(SEARCH_HITS)
        return [dict(row) for row in connection.execute(statement).mappings()]


def case_detail(engine: Engine, case_id: str, scope: Scope) -> dict | None:
    """One case with its area path and names, or None when unknown or outside the scope."""
    c = schema.cases.c
    with engine.connect() as connection:
        row = connection.execute(
            select(schema.cases, schema.grids.c.path, schema.grids.c.name.label("grid_name"),
                   schema.categories.c.name.label("category_name"), schema.categories.c.name_en.label("category_name_en"))
            .select_from(schema.cases.join(schema.grids, schema.grids.c.code == c.grid).join(schema.categories, schema.categories.c.code == c.category))
            .where(c.id == case_id)
        ).mappings().first()
    if row is None or not scope.covers(row["path"]) or not scope.sees_department_case(row["dept"], row["dispatched_at"]):
        return None
    return dict(row)


def case_timeline(engine: Engine, case_id: str) -> list[dict]:
    """The transitions of a case in order (the first MAX_CASE_EVENTS): action, time, actor,
    states, department, and ``detail`` (an intervention's note, a re-dispatch's new
    department, an extension's deadlines)."""
    e = schema.case_events.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(e.action, e.ts, e.actor, e.from_status, e.to_status, e.dept, e.detail).where(e.case_id == case_id).order_by(e.ts, e.id).limit(MAX_CASE_EVENTS)
        ).mappings().all()
    return [{**row, "detail": _json_object(row["detail"])} for row in rows]


def _json_object(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def worker_names(engine: Engine, ids: list[str]) -> dict[str, str]:
    """The names of those of ``ids`` that are grid staff (at most MAX_CASE_EVENTS ids looked up)."""
    return {worker: record["name"] for worker, record in worker_records(engine, ids).items()}


def worker_records(engine: Engine, ids: list[str]) -> dict[str, dict]:
    """Name, responsible grid and phone of those of ``ids`` that are grid staff (at most MAX_CASE_EVENTS ids looked up)."""
    ids = list(ids)[:MAX_CASE_EVENTS]
    if not ids:
        return {}
    w = schema.workers.c
    with engine.connect() as connection:
        rows = connection.execute(select(w.id, w.name, w.grid, w.phone).where(w.id.in_(ids))).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def list_workers(engine: Engine, area_path: str, scope: Scope) -> list[dict]:
    """Grid staff of the subtree (none for department users)."""
    w = schema.workers.c
    with engine.connect() as connection:
        statement = _where(
            select(w.id, w.name, w.grid, w.role, w.phone, schema.grids.c.name.label("grid_name"))
            .select_from(schema.workers.join(schema.grids, schema.grids.c.code == w.grid)),
            grids_in_area(connection, w.grid, area_path, scope),
            false() if scope.dept else None,
        ).order_by(w.id)
        return [dict(row) for row in connection.execute(statement).mappings()]
