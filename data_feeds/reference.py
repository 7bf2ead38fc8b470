"""Reference data read from the grid database: the catalogue, departments, grids and staff."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.queries import in_subtree
from gridrules.config import DomainConfig
from gridrules.lifecycle import Category, Rules
from gridrules.limits import StageLimits


def load_categories(engine: Engine) -> dict[str, Category]:
    """Every class of the catalogue by code; detail classes carry their limits."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.categories)).mappings().all()
    result = {}
    for row in rows:
        limits = None
        if row["dept"]:
            limits = StageLimits.parse(row["register_limit"], row["dispatch_limit"], row["handle_limit"], row["verify_limit"], row["calendar"])
        result[row["code"]] = Category(
            code=row["code"], name=row["name"], parent=row["parent"], level=row["level"],
            dept=row["dept"], grade=row["grade"], limits=limits, name_en=row["name_en"],
        )
    return result


def load_rules(engine: Engine, config: DomainConfig) -> Rules:
    """The rule book for applying events: catalogue, calendar and grade limits."""
    return Rules(
        categories=load_categories(engine),
        calendar=config.calendar,
        grade_limits=config.grade_limits,
        due_soon_fraction=config.due_soon_fraction,
    )


def descendant_categories(categories: dict[str, Category], code: str) -> set[str]:
    """``code`` and every class below it."""
    children: dict[str, list[str]] = {}
    for category in categories.values():
        if category.parent:
            children.setdefault(category.parent, []).append(category.code)
    result, stack = set(), [code]
    while stack:
        current = stack.pop()
        result.add(current)
        stack.extend(children.get(current, ()))
    return result


@dataclass(frozen=True)
class GridInfo:
    code: str
    name: str
    level: int
    parent: str | None
    path: str
    centroid: tuple[float, float] | None  # lat, lon
    households: int | None
    population: int | None


GRID_INFO_COLUMNS = ("code", "name", "level", "parent", "path", "centroid_lat", "centroid_lon", "households", "population")


def _grid_info_select():
    return select(*(schema.grids.c[name] for name in GRID_INFO_COLUMNS))


def load_grid(engine: Engine, code: str) -> GridInfo | None:
    """One grid's identity, or None if the code is unknown."""
    with engine.connect() as connection:
        row = connection.execute(_grid_info_select().where(schema.grids.c.code == code)).first()
    return _grid_info(row) if row else None


def load_children(engine: Engine, parent: str | None) -> list[GridInfo]:
    """The children of a grid (the roots when ``parent`` is None), ordered by code."""
    condition = schema.grids.c.parent.is_(None) if parent is None else schema.grids.c.parent == parent
    with engine.connect() as connection:
        rows = connection.execute(_grid_info_select().where(condition).order_by(schema.grids.c.code)).all()
    return [_grid_info(row) for row in rows]


def _grid_info(row) -> GridInfo:
    centroid = (row.centroid_lat, row.centroid_lon) if row.centroid_lat is not None else None
    return GridInfo(row.code, row.name, row.level, row.parent, row.path, centroid, row.households, row.population)


def root_grid(engine: Engine) -> GridInfo | None:
    """The first district (level 1) in the database."""
    roots = load_children(engine, None)
    return roots[0] if roots else None


def grid_geometries(engine: Engine, level: int, within_path: str | None = None) -> pd.DataFrame:
    """Grids of one level (optionally inside a subtree): code, name, parent, geometry (dict)."""
    statement = select(schema.grids.c.code, schema.grids.c.name, schema.grids.c.parent, schema.grids.c.geometry).where(
        schema.grids.c.level == level
    )
    if within_path:
        statement = statement.where(in_subtree(within_path))
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(statement.order_by(schema.grids.c.code)).all(), columns=["code", "name", "parent", "geometry"])
    frame["geometry"] = [json.loads(text) if text else None for text in frame["geometry"]]
    return frame


def grid_outline(engine: Engine, code: str) -> dict | None:
    """One grid's geometry (GeoJSON), None when it has none or is unknown."""
    with engine.connect() as connection:
        text = connection.execute(select(schema.grids.c.geometry).where(schema.grids.c.code == code)).scalar()
    return json.loads(text) if text else None


def grid_places(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Each grid's ancestors' names, nearest first (a basic grid: its community, its town …)."""
    g = schema.grids.c
    with engine.connect() as connection:
        rows = {code: (parent, name) for code, parent, name in connection.execute(select(g.code, g.parent, g.name))}
    places = {}
    for code, (parent, _) in rows.items():
        names, seen = [], {code}
        while parent in rows and parent not in seen and len(names) < 4:
            seen.add(parent)
            parent, name = rows[parent]
            names.append(name)
        places[code] = tuple(names)
    return places


def grid_names(engine: Engine) -> dict[str, str]:
    """Every grid's name by code."""
    with engine.connect() as connection:
        return dict(connection.execute(select(schema.grids.c.code, schema.grids.c.name)).all())


def load_departments(engine: Engine) -> pd.DataFrame:
    """Departments: code, name, name_en."""
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(select(schema.departments).order_by(schema.departments.c.code)).all(), columns=["code", "name", "name_en"])
