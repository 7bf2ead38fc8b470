"""What every importer shares: the error that names file, line and field; CSV reading."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from gridrules.identifiers import is_identifier


class ImportFileError(ValueError):
    """A bad import file, refused whole; the message says file, where and which field."""

    def __init__(self, path, where: str, message: str, field: str | None = None):
        self.path = str(path)
        self.where = where
        self.field = field
        location = f"{self.path}, {where}" if where else self.path
        if field:
            location += f", field {field!r}"
        super().__init__(f"{location}: {message}")


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, for the command line."""

    kind: str
    inserted: int
    updated: int

    def __str__(self) -> str:
        return f"{self.kind}: {self.inserted} added, {self.updated} updated"


def read_csv_rows(path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[tuple[int, dict]]:
    """Rows of a UTF-8 CSV file as (line number, {column: stripped text}); checks the header."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(path, "", f"cannot read the file: {exc.strerror}") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFileError(path, f"line {line}", "not UTF-8 text (save the file as UTF-8)") from None
    if "\x00" in content:
        raise ImportFileError(path, f"line {content[: content.index(chr(0))].count(chr(10)) + 1}", "binary data (NUL byte) in a CSV file")
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(path, "line 1", f"empty file; expected a header {', '.join(required)}") from None
    except csv.Error as exc:
        raise ImportFileError(path, "line 1", f"malformed CSV: {exc}") from None
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFileError(path, "line 1", f"header lacks column(s) {', '.join(missing)}; expected {', '.join(required)}")
    unknown = [name for name in header if name not in required and name not in optional]
    if unknown:
        raise ImportFileError(path, "line 1", f"unknown column(s) {', '.join(unknown)}")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise ImportFileError(path, f"line {line}", f"{len(values)} fields where the header has {len(header)}")
            rows.append((line, {name: value.strip() for name, value in zip(header, values)}))
    except csv.Error as exc:
        raise ImportFileError(path, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    return rows


def check_code(path, where: str, field: str, value: str, max_length: int = 32) -> str:
    """A code: an identifier of the feed contract (letters, digits, ``-_.:``) without the
    slash, which separates the codes of a grid's path; not too long."""
    if not value:
        raise ImportFileError(path, where, "is empty", field)
    if len(value) > max_length or "/" in value or not is_identifier(value):
        raise ImportFileError(path, where, f"{value!r} is not a code (at most {max_length} letters, digits or -_.:)", field)
    return value


def check_text(path, where: str, field: str, value: str, max_length: int = 120) -> str:
    if not value:
        raise ImportFileError(path, where, "is empty", field)
    if len(value) > max_length:
        raise ImportFileError(path, where, f"longer than {max_length} characters", field)
    return value


def upsert(connection, table, key: str, rows: list[dict]) -> tuple[int, int]:
    """Insert new rows and update existing ones by primary key, portably; returns counts."""
    from sqlalchemy import bindparam, select

    if not rows:
        return 0, 0
    key_column = table.c[key]
    wanted = [row[key] for row in rows]
    existing = set()
    for start in range(0, len(wanted), 500):
        existing.update(connection.execute(select(key_column).where(key_column.in_(wanted[start : start + 500]))).scalars())
    new_rows = [row for row in rows if row[key] not in existing]
    old_rows = [row for row in rows if row[key] in existing]
    if new_rows:
        connection.execute(table.insert(), new_rows)
    if old_rows:
        columns = [name for name in old_rows[0] if name != key]
        statement = (
            table.update()
            .where(key_column == bindparam("_key"))
            .values({name: bindparam(f"_v_{name}") for name in columns})
        )
        connection.execute(
            statement,
            [{"_key": row[key], **{f"_v_{name}": row[name] for name in columns}} for row in old_rows],
        )
    return len(new_rows), len(old_rows)
