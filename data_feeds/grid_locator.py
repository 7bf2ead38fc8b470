"""Place positions in basic grids: vectorised point-in-polygon over an STRtree.

Positions are in the map datum (GCJ-02 by default, like the grid polygons).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema

NO_GRID = -1
METRES_PER_DEGREE = 111_320.0
GRID_MISMATCH_TOLERANCE_M = 300.0  # a given grid may be this far off the position (GPS error, border walks)


@dataclass(frozen=True)
class GridLocator:
    """The basic grids (deepest level) of the database, indexed for point queries."""

    codes: np.ndarray  # code of each polygon
    polygons: np.ndarray  # shapely geometries, same order
    tree: STRtree
    district: object  # union of every polygon: "inside the district"
    index_of: dict

    @classmethod
    def from_database(cls, engine: Engine) -> GridLocator:
        with engine.connect() as connection:
            deepest = connection.execute(select(schema.grids.c.level).order_by(schema.grids.c.level.desc()).limit(1)).scalar()
            rows = connection.execute(
                select(schema.grids.c.code, schema.grids.c.geometry).where(schema.grids.c.level == deepest).order_by(schema.grids.c.code)
            ).all() if deepest is not None else []
        return cls.from_geometries([(code, shape(json.loads(geometry))) for code, geometry in rows if geometry])

    @classmethod
    def from_geometries(cls, items) -> GridLocator:
        codes = np.array([code for code, _ in items], dtype=object)
        polygons = np.array([polygon for _, polygon in items], dtype=object)
        for polygon in polygons:
            shapely.prepare(polygon)
        district = shapely.union_all(polygons) if len(polygons) else shapely.Polygon()
        shapely.prepare(district)
        return cls(codes, polygons, STRtree(polygons), district, {code: i for i, code in enumerate(codes)})

    def locate(self, lat, lon) -> np.ndarray:
        """The basic grid of each position (``None`` where it lies in no grid)."""
        lat = np.atleast_1d(np.asarray(lat, dtype=float))
        lon = np.atleast_1d(np.asarray(lon, dtype=float))
        result = np.full(lat.shape, None, dtype=object)
        if not len(self.codes) or not lat.size:
            return result
        finite = np.isfinite(lat) & np.isfinite(lon)
        points = shapely.points(lon[finite], lat[finite])
        point_index, polygon_index = self.tree.query(points, predicate="intersects")
        found = np.full(points.shape, NO_GRID)
        # A point on a shared border intersects two grids: the first (lowest code) wins.
        found[point_index[::-1]] = polygon_index[::-1]
        located = np.full(points.shape, None, dtype=object)
        hit = found != NO_GRID
        located[hit] = self.codes[found[hit]]
        result[finite] = located
        return result

    def distance_m(self, code: str, lat: float, lon: float) -> float:
        """Roughly how far (metres) a position lies outside a grid; 0 inside it."""
        polygon = self.polygons[self.index_of[code]]
        degrees = polygon.distance(shapely.Point(lon, lat))
        return degrees * METRES_PER_DEGREE * max(np.cos(np.radians(lat)), 0.2) if degrees else 0.0
