"""Import the event catalogue (事部件清单) from CSV.

Columns: ``code, name, parent, dept, grade, register_limit, dispatch_limit, handle_limit,
verify_limit, calendar`` (optional ``name_en``). Major and sub-classes leave the last
seven empty; every detail class (a class without sub-classes) names one department, a
grade A/B/C, four stage limits (``30m``, ``2h``, ``1d``, ``1wd``) and its calendar.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.importers.common import ImportFileError, ImportSummary, check_code, check_text, read_csv_rows, upsert
from gridrules.lifecycle import GRADES
from gridrules.limits import CALENDAR_KINDS, STAGES, Limit, LimitError

COLUMNS = ("code", "name", "parent", "dept", "grade", "register_limit", "dispatch_limit", "handle_limit", "verify_limit", "calendar")
LIMIT_MAX_LENGTH = 16  # the width of the limit columns
DETAIL_FIELDS = ("dept", "grade", "register_limit", "dispatch_limit", "handle_limit", "verify_limit", "calendar")


def read_catalogue(path, known_departments: set[str], existing: dict[str, tuple[str | None, int]]) -> list[dict]:
    """Validated catalogue rows; ``existing`` maps codes already stored to (parent, level)."""
    parsed: list[tuple[str, dict]] = []
    lines: dict[str, int] = {}
    for line, row in read_csv_rows(path, COLUMNS, ("name_en",)):
        where = f"line {line}"
        code = check_code(path, where, "code", row["code"])
        if code in lines:
            raise ImportFileError(path, where, f"code {code!r} repeats line {lines[code]}", "code")
        lines[code] = line
        check_text(path, where, "name", row["name"])
        if row["parent"]:
            check_code(path, where, "parent", row["parent"])
        parsed.append((where, row))

    has_children = {row["parent"] for _, row in parsed if row["parent"]}
    parents = {row["code"]: row["parent"] or None for _, row in parsed}
    rows = []
    for where, row in parsed:
        code, parent = row["code"], row["parent"] or None
        if parent is not None and parent not in parents and parent not in existing:
            raise ImportFileError(path, where, f"parent {parent!r} is neither in this file nor in the database", "parent")
        level = _level(code, parents, existing, path, where)
        if level > 4:
            raise ImportFileError(path, where, f"class {code!r} is {level} levels deep; the catalogue has at most 4", "parent")
        filled = [name for name in DETAIL_FIELDS if row[name]]
        name_en = row.get("name_en") or None
        if name_en:
            check_text(path, where, "name_en", name_en, 200)
        record = {"code": code, "name": row["name"], "name_en": name_en, "parent": parent, "level": level}
        if code in has_children:
            if filled:
                raise ImportFileError(path, where, f"class {code!r} has sub-classes, so it cannot carry {filled[0]} (only detail classes do)", filled[0])
            rows.append({**record, **dict.fromkeys(DETAIL_FIELDS)})
            continue
        rows.append({**record, **_detail_fields(path, where, code, row, known_departments)})
    return rows


def _detail_fields(path, where: str, code: str, row: dict, known_departments: set[str]) -> dict:
    if not row["dept"]:
        raise ImportFileError(path, where, f"detail class {code!r} has no responsible department", "dept")
    if row["dept"] not in known_departments:
        raise ImportFileError(path, where, f"department {row['dept']!r} is not in the database (import departments first)", "dept")
    if row["grade"] not in GRADES:
        raise ImportFileError(path, where, f"grade {row['grade']!r} is not A, B or C", "grade")
    for stage in STAGES:
        field = f"{stage}_limit"
        if not row[field]:
            raise ImportFileError(path, where, "is empty; a detail class needs all four stage limits", field)
        try:
            Limit.parse(row[field])
        except LimitError as exc:
            raise ImportFileError(path, where, str(exc), field) from None
        if len(row[field]) > LIMIT_MAX_LENGTH:
            raise ImportFileError(path, where, f"{row[field]!r} is longer than {LIMIT_MAX_LENGTH} characters; write it shorter, e.g. 90m", field)
    if row["calendar"] not in CALENDAR_KINDS:
        raise ImportFileError(path, where, f"{row['calendar']!r} is not a calendar (natural or working)", "calendar")
    return {name: row[name] for name in DETAIL_FIELDS}


def _level(code: str, parents: dict, existing: dict, path, where: str) -> int:
    """Depth of ``code`` through the file's parent links, falling back to the stored ones."""
    level, current, seen = 1, code, {code}
    while True:
        parent = parents[current] if current in parents else existing.get(current, (None, 1))[0]
        if parent is None:
            return level
        if parent in seen:
            raise ImportFileError(path, where, f"class {code!r} would be its own ancestor (a cycle through {parent!r})", "parent")
        seen.add(parent)
        level += 1
        current = parent


def import_catalogue(engine: Engine, path) -> ImportSummary:
    """Validate the file against the departments, then insert or update in one transaction."""
    with engine.begin() as connection:
        known_departments = set(connection.execute(select(schema.departments.c.code)).scalars())
        existing = {
            code: (parent, level)
            for code, parent, level in connection.execute(
                select(schema.categories.c.code, schema.categories.c.parent, schema.categories.c.level)
            )
        }
        rows = read_catalogue(path, known_departments, existing)
        # Parents first, so the self-referencing foreign key holds at every insert.
        rows.sort(key=lambda row: row["level"])
        inserted, updated = upsert(connection, schema.categories, "code", rows)
    return ImportSummary("catalogue", inserted, updated)
