"""What both replay formats share: the error, stable hashing, reading CSV tables (plain or
gzipped) with line-exact errors, the reference data read from the grid database, and the plan
of messages to publish. The replay is described in docs/replay.md.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry import shape
from sqlalchemy import select

from data_feeds import schema
from data_feeds.importers.common import ImportFileError

AGE_MARGIN_S = 3600  # keep this far inside the consumer's age limit (the consumer may run later)


class ReplayError(ValueError):
    """A replay that cannot run (options, database contents); the message says what to do."""


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def iso(moment: datetime, tz) -> str:
    """ISO 8601 with the local offset, seconds precision (``2026-11-22T09:15:03+08:00``)."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


# ====================================================================== reading files


def _open_text(path: Path):
    """A text stream of a plain or gzipped UTF-8 file."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(2)
    except OSError as exc:
        raise ImportFileError(path, "", f"cannot read the file: {exc.strerror}") from None
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of every non-blank row; refuses malformed CSV."""
    stream = _open_text(path)
    reader = csv.reader(stream, strict=True)
    try:
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ImportFileError(path, "line 1", "empty file") from None
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise ImportFileError(path, f"line {reader.line_num}", f"{len(values)} fields where the header has {len(header)}")
            rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise ImportFileError(path, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(path, f"line {reader.line_num + 1}", "not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise ImportFileError(path, f"line {reader.line_num + 1}", f"cannot read the file: {exc}") from None
    finally:
        stream.close()
    return header, rows


def read_header(path: Path) -> list[str]:
    """The column names of the first line (to tell the format before reading the file)."""
    stream = _open_text(path)
    try:
        line = stream.readline()
    except (UnicodeDecodeError, OSError, EOFError):
        raise ImportFileError(path, "line 1", "not a UTF-8 CSV text file (plain or gzipped)") from None
    finally:
        stream.close()
    return next(csv.reader([line]), [])


def pick_columns(header: list[str], rows, names) -> dict[str, list[str]]:
    """The stripped values of the named columns (header names matched case-insensitively) of ``read_table``'s rows."""
    position = {name.strip().lower(): i for i, name in enumerate(header)}
    return {name: [values[position[name]].strip() for _, values in rows] for name in names}


def first_bad(path: Path, lines: np.ndarray, bad: np.ndarray, values, field_name: str, message: str):
    """Refuse the file at the first row where ``bad`` holds, naming its line, field and value."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ImportFileError(path, f"line {lines[i]}", f"{values[i]!r} {message}", field_name)


# ====================================================================== the database


@dataclass(frozen=True)
class ReplayReference:
    """What the replay reads from the grid database."""

    workers: pd.DataFrame  # id, grid, role, centroid_lat, centroid_lon (map datum)
    grids: pd.DataFrame  # basic grids: code, parent, centroid_lat, centroid_lon, geometry (shapely, map datum)
    categories: dict  # code -> Category
    departments: frozenset


def load_replay_reference(engine) -> ReplayReference:
    """Workers, basic grids, catalogue and departments (SELECTs only)."""
    from data_feeds.reference import load_categories

    g, w = schema.grids.c, schema.workers.c
    with engine.connect() as connection:
        deepest = connection.execute(select(g.level).order_by(g.level.desc()).limit(1)).scalar()
        grid_rows = connection.execute(
            select(g.code, g.parent, g.centroid_lat, g.centroid_lon, g.geometry).where(g.level == deepest).order_by(g.code)
        ).all() if deepest is not None else []
        worker_rows = connection.execute(
            select(w.id, w.grid, w.role, g.centroid_lat, g.centroid_lon).select_from(schema.workers.join(schema.grids, g.code == w.grid)).order_by(w.id)
        ).all()
        departments = frozenset(connection.execute(select(schema.departments.c.code)).scalars())
    grids = pd.DataFrame(
        [(code, parent, lat, lon, shape(json.loads(geometry)) if geometry else None) for code, parent, lat, lon, geometry in grid_rows],
        columns=["code", "parent", "centroid_lat", "centroid_lon", "geometry"],
    )
    workers = pd.DataFrame([tuple(row) for row in worker_rows], columns=["id", "grid", "role", "centroid_lat", "centroid_lon"])
    return ReplayReference(workers, grids, load_categories(engine), departments)


# ====================================================================== plans


@dataclass
class Plan:
    """The messages of one replay, in publishing order, and what to say about them."""

    kind: str
    stream: str
    messages: list  # dicts of str → str
    times: np.ndarray  # epoch seconds of each message's ts (for --pace)
    summary: str
    counts: dict = field(default_factory=dict)
