"""The case rollups in the grid database: kept with every case change, rebuilt from the
cases, read for a window (the counts themselves: ``gridrules.rollups``).

Each case counts in the rollups of its grid and of every area above it (district, town,
community…), per local day and per calendar month, in each grouping of
``gridrules.rollups.GROUPINGS``: the totals of a district for a day are one row, for a year
twelve; a question with filters reads the "full" grouping, a few thousand rows a day.

The rollups are complete for one time zone (their local days): the ``meta`` row
``rollups_tz`` names it, and readers use them only then. A rebuild writes it; a grid
import that moves grids to other parents removes it (the counts sit with the old parents)
until the consumer or ``rebuild-rollups`` builds them again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

import pandas as pd
from sqlalchemy import and_, delete, false, func, or_, select, text, tuple_
from sqlalchemy.engine import Engine

from data_feeds import db, schema
from data_feeds.queries import case_rows_frame, filtered, load_recent_cases
from gridrules import rollups
from gridrules.access import Scope, effective_path
from gridrules.indicators import COUNT_KEYS

log = logging.getLogger(__name__)

MARKER = "rollups_tz"
KEYS = ("area", "grouping", "period_kind", "period", "category", "dept", "source", "grade", "is_dispatched")
REBUILD_CHUNK = 50_000  # cases read and counted at a time by a rebuild
GROUP_KEYS = ("dept", "category", "source", "grade")  # what a window's counts can be grouped by


def tz_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


# ---------------------------------------------------------------- areas


def ancestors(connection, grids: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Each grid's areas from the root down to itself (of ``grids``, or of all), from its materialised path."""
    statement = select(schema.grids.c.code, schema.grids.c.path)
    if grids is not None:
        statement = statement.where(schema.grids.c.code.in_(sorted(set(grids))))
    rows = connection.execute(statement).all()
    return {code: tuple(part for part in path.strip("/").split("/") if part) for code, path in rows}


def rollup_rows(contributions: pd.DataFrame, areas: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Contributions (per day and grid) as rows of case_rollups: per grouping (the dimensions
    it sums away blank), per area above the grid and the grid itself, per day ("D") and per
    month ("M"), summed; rows whose values are all zero left out."""
    if contributions.empty:
        return pd.DataFrame(columns=[*KEYS, *rollups.VALUE_COLUMNS])
    values = list(rollups.VALUE_COLUMNS)
    parts = []
    for grouping, dimensions in rollups.GROUPINGS.items():
        depth = rollups.GROUPING_DEPTH[grouping]
        pairs = pd.DataFrame([(grid, area) for grid, chain in areas.items() for area in chain[:depth]], columns=["grid", "area"])
        kept = contributions.groupby(["day", "grid", *dimensions], sort=False)[values].sum().reset_index() if dimensions != rollups.DIMENSIONS else contributions
        blank = {name: ("" if name != "is_dispatched" else False) for name in rollups.DIMENSIONS if name not in dimensions}
        kept = kept.merge(pairs, on="grid", how="inner").drop(columns="grid")
        parts.append(kept.assign(grouping=grouping, **blank))
    keys = [name for name in KEYS if name not in ("period_kind", "period")]
    daily = pd.concat(parts, ignore_index=True).groupby([*keys, "day"], sort=False)[values].sum().reset_index()
    days = pd.to_datetime(daily["day"]).to_numpy().astype("datetime64[D]")
    monthly = daily.assign(day=days.astype("datetime64[M]").astype("datetime64[D]")).groupby([*keys, "day"], sort=False)[values].sum().reset_index()
    summed = pd.concat([daily.assign(period_kind="D", day=days), monthly.assign(period_kind="M")], ignore_index=True).rename(columns={"day": "period"})
    counts = summed[list(rollups.COUNTERS)].to_numpy()
    nonzero = (counts != 0).any(axis=1) | (summed[rollups.CLOSE_SECONDS].abs() > 1e-9).to_numpy()
    summed = summed[nonzero].reset_index(drop=True)
    summed["period"] = pd.to_datetime(summed["period"]).dt.date
    return summed[[*KEYS, *values]]


# ---------------------------------------------------------------- writing


def _upsert(connection, rows: pd.DataFrame) -> None:
    """Add ``rows`` to case_rollups (insert, or add to the counts already there)."""
    if rows.empty:
        return
    table = schema.case_rollups
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"case rollups are kept on PostgreSQL and SQLite, not {dialect}")
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEYS), set_={name: table.c[name] + statement.excluded[name] for name in rollups.VALUE_COLUMNS})
    records = rows.astype(dict.fromkeys(rollups.COUNTERS, "int64")).to_dict("records")
    for record in records:
        record["is_dispatched"] = bool(record["is_dispatched"])
        for name in rollups.COUNTERS:
            record[name] = int(record[name])
        record[rollups.CLOSE_SECONDS] = float(record[rollups.CLOSE_SECONDS])
    for start in range(0, len(records), 5_000):
        connection.execute(statement, records[start : start + 5_000])


def apply_changes(connection, before: list[dict], after: list[dict], tz: tzinfo) -> None:
    """Move the rollups from the cases as they were (``before``: cases-table rows of the
    stored cases) to the cases as they are (``after``), in the caller's transaction."""
    old = rollups.contributions(case_rows_frame(before), tz)
    new = rollups.contributions(case_rows_frame(after), tz)
    if not old.empty:
        old[list(rollups.VALUE_COLUMNS)] = -old[list(rollups.VALUE_COLUMNS)]
    if old.empty and new.empty:
        return
    delta = pd.concat([frame for frame in (old, new) if not frame.empty], ignore_index=True)
    _upsert(connection, rollup_rows(delta, ancestors(connection, list(delta["grid"].unique()))))


def is_complete(connection, tz: tzinfo) -> bool:
    """Whether the rollups hold every case, by local days of ``tz``."""
    marker = connection.execute(select(schema.meta.c.value).where(schema.meta.c.key == MARKER)).scalar()
    return marker == tz_name(tz)


def invalidate(connection) -> None:
    """The rollups no longer match the cases (grids moved): readers go row-level until a rebuild."""
    connection.execute(delete(schema.meta).where(schema.meta.c.key == MARKER))


def _copy_rows(connection, table_name: str, rows: pd.DataFrame) -> None:
    """Append ``rows`` (columns KEYS + VALUE_COLUMNS) to a table without keys: COPY on PostgreSQL."""
    if rows.empty:
        return
    columns = [*KEYS, *rollups.VALUE_COLUMNS]
    frame = rows[columns]
    records = list(zip(*(frame[name].tolist() for name in columns), strict=True))
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
    else:
        placeholders = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({placeholders})",
                                   [tuple(value.isoformat() if isinstance(value, date) else value for value in record) for record in records])


def rebuild(engine: Engine, tz: tzinfo, since: date | None = None) -> dict:
    """Count the rollups again from the cases — all of them, or the periods from ``since``'s
    month on — in one transaction; the feed consumer waits for it. Returns what was done.

    Each chunk of cases is counted and appended to a staging table; one grouped INSERT moves
    the sums across at the end (far faster than adding every chunk's rows by upsert)."""
    started = time.perf_counter()
    c = schema.cases.c
    table = schema.case_rollups
    first_month = since.replace(day=1) if since else None
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE case_rollups IN EXCLUSIVE MODE"))
        connection.execute(delete(table).where(table.c.period >= first_month) if first_month else delete(table))
        connection.execute(text("DROP TABLE IF EXISTS rollup_staging"))
        connection.execute(text("CREATE TEMPORARY TABLE rollup_staging AS SELECT * FROM case_rollups WHERE 1 = 0"))
        areas = ancestors(connection)
        condition = None
        if first_month:
            # A case can count on a day from ``first_month`` only if it changed since, is open or falls due since.
            moment = db.to_db_time(rollups.local_midnight(first_month, tz))
            condition = or_(c.updated_at >= moment, c.is_open.is_(True), c.deadline >= moment)
        # In the order of their last change, so that a chunk's cases share their days and
        # sum into few rows before they are staged.
        after, cases_read = None, 0
        while True:
            statement = select(schema.cases).order_by(c.updated_at, c.id).limit(REBUILD_CHUNK)
            if after is not None:
                statement = statement.where(tuple_(c.updated_at, c.id) > tuple_(*after))
            if condition is not None:
                statement = statement.where(condition)
            chunk = [dict(row) for row in connection.execute(statement).mappings()]
            if not chunk:
                break
            after = (chunk[-1]["updated_at"], chunk[-1]["id"])
            cases_read += len(chunk)
            contributions = rollups.contributions(case_rows_frame(chunk), tz)
            if first_month is not None and not contributions.empty:
                contributions = contributions[contributions["day"] >= first_month]
            _copy_rows(connection, "rollup_staging", rollup_rows(contributions, areas))
        columns = ", ".join([*KEYS, *rollups.VALUE_COLUMNS])
        sums = ", ".join([*KEYS, *(f"SUM({name})" for name in rollups.VALUE_COLUMNS)])
        rows_written = connection.execute(text(f"INSERT INTO case_rollups ({columns}) SELECT {sums} FROM rollup_staging GROUP BY {', '.join(KEYS)}")).rowcount
        connection.execute(text("DROP TABLE rollup_staging"))
        db.set_meta(connection, MARKER, tz_name(tz))
    return {"cases": cases_read, "rows": rows_written, "seconds": time.perf_counter() - started, "since": first_month}


def ensure(engine: Engine, tz: tzinfo) -> bool:
    """Build the rollups when they are not complete for ``tz`` (a database migrated from a
    release without them, a grid import that moved grids, another time zone). True when built."""
    with engine.connect() as connection:
        if is_complete(connection, tz):
            return False
    log.info("building the case rollups from the cases (time zone %s)", tz_name(tz))
    result = rebuild(engine, tz)
    log.info("case rollups built: %(cases)d cases, %(rows)d rows in %(seconds).1f s", result)
    return True


# ---------------------------------------------------------------- reading


def area_code_of(area_code: str, area_path: str, scope: Scope) -> str | None:
    """The area whose rollups answer for ``area_code`` within ``scope``: itself, or the scope's
    own area inside it; None when nothing of it is in scope."""
    path = effective_path(area_path, scope)
    if path is None:
        return None
    if path == area_path:
        return area_code
    return path.strip("/").split("/")[-1]


def _range_condition(column_kind, column_period, first: date, end: date):
    days, months = rollups.periods(first, end)
    parts = [and_(column_kind == "D", column_period >= a, column_period < b) for a, b in days]
    parts += [and_(column_kind == "M", column_period >= a, column_period < b) for a, b in months]
    return or_(*parts) if parts else false()


def grouping_of(filters, scope: Scope, key: str | None) -> str:
    """The grouping of the rollups that holds what a question filters on and groups by."""
    needed = {key} if key in rollups.DIMENSIONS else set()
    needed |= {name for name, value in (("dept", filters.dept), ("category", filters.categories), ("grade", filters.grade), ("source", filters.source)) if value is not None}
    needed |= {"dept", "is_dispatched"} if scope.dept else set()
    return rollups.grouping_for(needed)


def holds_cases(connection, areas: list[str]) -> bool:
    """Whether cases sit on any of ``areas`` itself (a basic grid): those count only in its totals."""
    c = schema.cases.c
    return connection.execute(select(c.id).where(c.grid.in_(sorted(set(areas)))).limit(1)).first() is not None


def sums(connection, areas: list[str], first: date, end: date, names: tuple[str, ...], filters, scope: Scope, key: str | None = None) -> pd.DataFrame:
    """``names`` summed over days ``[first, end)`` of the ``areas``, within the filters and the
    scope's department, per value of ``key`` (index "key"; one row "" without a key): a
    dimension, "area", or "period" (per day, from the daily rows)."""
    r = schema.case_rollups.c
    group = [r[key].label("key")] if key else []
    periods = and_(r.period_kind == "D", r.period >= first, r.period < end) if key == "period" else _range_condition(r.period_kind, r.period, first, end)
    statement = select(*group, *(func.coalesce(func.sum(r[name]), 0).label(name) for name in names)).where(
        r.area.in_(sorted(set(areas))) if len(areas) > 1 else r.area == areas[0], r.grouping == grouping_of(filters, scope, key), periods)
    statement = filtered(statement, filters, r)
    if scope.dept:
        statement = statement.where(r.dept == scope.dept)
        if not scope.dept_before_dispatch:
            statement = statement.where(r.is_dispatched.is_(True))
    if key:
        statement = statement.group_by(r[key])
    rows = connection.execute(statement).all()
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=[*(["key"] if key else []), *names])
    if not key:
        frame.index = pd.Index([""], name="key")
        return frame
    return frame.set_index("key")


@dataclass
class AreaRollups:
    """One area's counts within a request's filters and scope, through the rollups. The recent
    cases (open, or changed since a window's last day began) are read once per request and
    shared by every window and table asked of it."""

    engine: Engine
    tz: tzinfo
    area_code: str
    area_path: str
    filters: object
    scope: Scope
    _recent: dict = field(default_factory=dict)
    _usable: bool | None = None

    def usable(self, window) -> rollups.DayPlan | None:
        """The window's plan when the rollups can answer it, else None (go row-level)."""
        plan = rollups.day_plan(window, self.tz)
        if plan is None or self.filters.stage or effective_path(self.area_path, self.scope) is None:
            return None
        if self._usable is None:
            with self.engine.connect() as connection:
                self._usable = is_complete(connection, self.tz)
        return plan if self._usable else None

    def recent(self, since: datetime, end: datetime) -> pd.DataFrame:
        key = (db.to_db_time(since), db.to_db_time(end))
        if key not in self._recent:
            self._recent[key] = load_recent_cases(self.engine, self.area_path, since, end, self.filters, self.scope)
        return self._recent[key]

    @staticmethod
    def _kept(connection, areas: list[str], grouping: str) -> bool:
        """Whether the rollups keep ``grouping`` for every one of ``areas``: each lies no deeper
        than the grouping's depth, and (but for the totals) holds no cases on itself."""
        if grouping == "all":
            return True
        rows = connection.execute(select(schema.grids.c.path).where(schema.grids.c.code.in_(sorted(set(areas))))).scalars().all()
        if len(rows) < len(set(areas)) or any(len([p for p in path.split("/") if p]) > rollups.GROUPING_DEPTH[grouping] for path in rows):
            return False
        return not holds_cases(connection, areas)

    def _area(self) -> str:
        return area_code_of(self.area_code, self.area_path, self.scope)

    def counts(self, window, key: str | None = None) -> pd.DataFrame | None:
        """``gridrules.rollups.window_counts`` of the area, per ``key`` (None, or a dimension)."""
        plan = self.usable(window)
        if plan is None or (key is not None and key not in GROUP_KEYS):
            return None
        return self._counts([self._area()], window, plan, key, lambda recent: recent)

    def counts_by_area(self, window, areas: dict[str, str]) -> pd.DataFrame | None:
        """The counts of each of ``areas`` (code → path; disjoint parts of this area), index the code."""
        plan = self.usable(window)
        if plan is None:
            return None
        shown = {}
        for code, path in areas.items():
            inside = effective_path(path, self.scope)
            if inside is not None:
                shown[code] = code if inside == path else inside.strip("/").split("/")[-1]
        if not shown:
            return pd.DataFrame(columns=[*COUNT_KEYS, rollups.CLOSE_SECONDS, *rollups.HISTOGRAM])
        depth = {code: len([p for p in areas[code].strip("/").split("/") if p]) for code in shown}

        def label(recent: pd.DataFrame) -> pd.DataFrame:
            if recent.empty:
                return recent.assign(area=pd.Series(dtype=object))
            with self.engine.connect() as connection:
                above = ancestors(connection, list(recent["grid"].unique()))
            by_depth = sorted(set(depth.values()))

            def area_of(grid: str) -> str | None:
                chain = above.get(grid, ())
                for level in by_depth:
                    if len(chain) >= level and chain[level - 1] in shown:
                        return chain[level - 1]
                return None

            return recent.assign(area=recent["grid"].map(area_of))

        return self._counts(list(shown.values()), window, plan, "area", label, rename={value: code for code, value in shown.items()})

    def _counts(self, areas: list[str], window, plan, key, prepare, rename: dict | None = None) -> pd.DataFrame | None:
        with self.engine.connect() as connection:
            if not self._kept(connection, areas, grouping_of(self.filters, self.scope, key)):
                return None
            events = sums(connection, areas, plan.first, plan.end, (*rollups.EVENT_COUNTERS, *rollups.HISTOGRAM, rollups.CLOSE_SECONDS), self.filters, self.scope, key)
            due = sums(connection, areas, plan.first, plan.due_end, rollups.DUE_COUNTERS, self.filters, self.scope, key)
        if rename:
            events, due = events.rename(index=rename), due.rename(index=rename)
        recent = prepare(self.recent(plan.settled, window.end))
        if rename and not recent.empty:
            recent = recent.assign(area=recent["area"].map(lambda code: rename.get(code, code)))
        return rollups.window_counts(events, due, recent, window, plan, key)

    def daily(self, window, names: tuple[str, ...]) -> pd.DataFrame | None:
        """Event counts ``names`` per local day of the window (index: the day)."""
        plan = self.usable(window)
        if plan is None:
            return None
        with self.engine.connect() as connection:
            if not self._kept(connection, [self._area()], grouping_of(self.filters, self.scope, None)):
                return None
            return sums(connection, [self._area()], plan.first, plan.end, names, self.filters, self.scope, "period")



def window_counts(engine: Engine, tz: tzinfo, area_code: str, area_path: str, window, filters, scope: Scope, key: str | None = None) -> pd.DataFrame | None:
    """The counts of a window per ``key`` (``gridrules.rollups.window_counts``) through the
    rollups; None when they cannot answer (a window not from midnight to midnight, a stage
    filter, rollups not complete) and the row-level path must."""
    return AreaRollups(engine, tz, area_code, area_path, filters, scope).counts(window, key)
