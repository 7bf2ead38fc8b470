"""Geometry helpers shared by the map and the importers (pure)."""
from __future__ import annotations

from collections.abc import Callable

import shapely
from shapely.geometry import mapping, shape

MAP_SIMPLIFY_DEGREES = 0.0002  # ~20 m: invisible at district zoom, halves the payload


def simplify_geometry(geometry: dict, tolerance: float = MAP_SIMPLIFY_DEGREES) -> dict:
    """A lighter copy of a GeoJSON geometry for the map (topology kept)."""
    original = shape(geometry)
    simplified = original.simplify(tolerance, preserve_topology=True)
    if simplified.is_empty:
        return geometry
    return mapping(shapely.set_precision(simplified, 1e-6))


def feature_collection(features: list[dict]) -> dict:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": features}


def area_features(areas: list[dict], properties: Callable[[dict], dict] = lambda area: {"code": area["code"], "name": area["name"]}) -> dict:
    """A FeatureCollection of areas (dicts with ``geometry``), each feature's properties made by ``properties(area)``."""
    return feature_collection([{"type": "Feature", "geometry": area["geometry"], "properties": properties(area)} for area in areas])
