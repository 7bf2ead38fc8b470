"""Import departments from CSV: ``code, name`` (optional ``name_en``)."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.importers.common import ImportFileError, ImportSummary, check_code, check_text, read_csv_rows, upsert


def read_departments(path) -> list[dict]:
    """Validated department rows; raises ImportFileError naming the line and field."""
    seen: dict[str, int] = {}
    rows = []
    for line, row in read_csv_rows(path, ("code", "name"), ("name_en",)):
        where = f"line {line}"
        code = check_code(path, where, "code", row["code"])
        if code in seen:
            raise ImportFileError(path, where, f"code {code!r} repeats line {seen[code]}", "code")
        seen[code] = line
        name_en = row.get("name_en") or None
        if name_en:
            check_text(path, where, "name_en", name_en, 200)
        rows.append({"code": code, "name": check_text(path, where, "name", row["name"]), "name_en": name_en})
    return rows


def import_departments(engine: Engine, path) -> ImportSummary:
    """Validate the file, then insert or update every department in one transaction."""
    rows = read_departments(path)
    with engine.begin() as connection:
        inserted, updated = upsert(connection, schema.departments, "code", rows)
    return ImportSummary("departments", inserted, updated)
