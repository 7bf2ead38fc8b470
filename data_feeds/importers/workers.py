"""Import grid staff from CSV: ``id, name, grid, role`` (optional ``phone``)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.importers.common import ImportFileError, ImportSummary, check_code, check_text, read_csv_rows, upsert

# Roles of the "1+1+N" staffing, with the Chinese titles a district's own file may use.
ROLE_ALIASES = {
    "head": "head", "网格长": "head",
    "worker": "worker", "网格员": "worker", "专职网格员": "worker",
    "member": "member", "兼职网格员": "member", "网格助理": "member", "网格协管员": "member",
}


def read_workers(path, known_grids: set[str]) -> list[dict]:
    """Validated worker rows; each grid must exist in the database."""
    seen: dict[str, int] = {}
    rows = []
    for line, row in read_csv_rows(path, ("id", "name", "grid", "role"), ("phone",)):
        where = f"line {line}"
        worker_id = check_code(path, where, "id", row["id"])
        if worker_id in seen:
            raise ImportFileError(path, where, f"id {worker_id!r} repeats line {seen[worker_id]}", "id")
        seen[worker_id] = line
        grid = check_code(path, where, "grid", row["grid"])
        if grid not in known_grids:
            raise ImportFileError(path, where, f"grid {grid!r} is not in the grid database (import the grids first)", "grid")
        role = ROLE_ALIASES.get(row["role"])
        if role is None:
            raise ImportFileError(path, where, f"role {row['role']!r} is not one of head, worker, member (网格长, 网格员, 网格助理)", "role")
        phone = row.get("phone") or None
        if phone and (len(phone) > 32 or not all(ch.isdigit() or ch in "+- " for ch in phone)):
            raise ImportFileError(path, where, f"{phone!r} is not a phone number", "phone")
        rows.append({"id": worker_id, "name": check_text(path, where, "name", row["name"], 80), "grid": grid, "role": role, "phone": phone})
    return rows


def import_workers(engine: Engine, path) -> ImportSummary:
    """Validate the file against the grids, then insert or update in one transaction."""
    with engine.begin() as connection:
        known = set(connection.execute(select(schema.grids.c.code)).scalars())
        rows = read_workers(path, known)
        inserted, updated = upsert(connection, schema.workers, "id", rows)
    return ImportSummary("workers", inserted, updated)
