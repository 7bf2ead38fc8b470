"""Import the grid tree from a GeoJSON FeatureCollection.

Properties ``code, name, parent, level`` (1 = district … 4 = basic grid, 5 = an optional
level below), optional ``households, population``. DataV files (``adcode``, ``name``,
``parent.adcode``, ``level: "district"``) load as they are. With ``subdivide`` the
importer also generates towns, communities and basic grids inside each district polygon.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine

from data_feeds import rollups, schema
from data_feeds.importers.common import ImportFileError, ImportSummary, check_code, check_text, read_csv_rows, upsert
from data_feeds.subdivide import TownName, subdivide_district

MAX_LEVEL = 5
DATAV_LEVELS = {"district": 1, "street": 2}
COORDINATE_DECIMALS = 6  # ~0.1 m, for centroids
REPAIR_AREA_TOLERANCE = 0.001  # a repair may move at most 0.1% of a polygon's area
MAX_COUNT = 2**31 - 1  # households and population fit a 32-bit integer column


@dataclass(frozen=True)
class GridFeature:
    code: str
    name: str
    level: int
    parent: str | None
    geometry: BaseGeometry
    households: int | None = None
    population: int | None = None
    centre: tuple[float, float] | None = None  # lon, lat of the urban centre when the file says


@dataclass(frozen=True)
class SubdivideOptions:
    towns_csv: Path | None = None
    communities: int = 200
    grids: int = 900
    seed: int = 20261127


def read_grid_features(path, existing_levels: dict[str, int]) -> list[GridFeature]:
    """Validated features; ``existing_levels`` maps codes in the database to their level."""
    path = Path(path)
    document = _load_json(path)
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFileError(path, "", "not a GeoJSON FeatureCollection", "type")
    raw_features = document.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise ImportFileError(path, "", "the FeatureCollection has no features", "features")
    features: list[GridFeature] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(raw_features, start=1):
        feature = _read_feature(path, number, raw)
        if feature.code in first_seen:
            raise ImportFileError(path, f"feature {number}", f"code {feature.code!r} repeats feature {first_seen[feature.code]}", "code")
        first_seen[feature.code] = number
        features.append(feature)
    for number, feature in enumerate(features, start=1):
        stored = existing_levels.get(feature.code)
        if stored is not None and stored != feature.level:
            raise ImportFileError(
                path, f"feature {number} ({feature.code})",
                f"grid {feature.code!r} is level {stored} in the database; an import cannot change a grid's level", "level",
            )
    levels = {**existing_levels, **{f.code: f.level for f in features}}
    for number, feature in enumerate(features, start=1):
        if feature.level == 1:
            continue
        where = f"feature {number} ({feature.code})"
        if feature.parent not in levels:
            raise ImportFileError(path, where, f"parent {feature.parent!r} is neither in this file nor in the database", "parent")
        if levels[feature.parent] != feature.level - 1:
            raise ImportFileError(path, where, f"level {feature.level} under parent {feature.parent!r} of level {levels[feature.parent]}", "level")
    return features


def _load_json(path: Path):
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(path, "", f"cannot read the file: {exc.strerror}") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportFileError(path, f"byte {exc.start}", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}") from None


def _read_feature(path, number: int, raw) -> GridFeature:
    where = f"feature {number}"
    if not isinstance(raw, dict) or raw.get("type") != "Feature":
        raise ImportFileError(path, where, "not a GeoJSON Feature")
    props = raw.get("properties")
    if not isinstance(props, dict):
        raise ImportFileError(path, where, "has no properties object", "properties")
    if "adcode" in props and "code" not in props:
        code, parent, level, centre = _datav_identity(path, where, props)
    else:
        code = check_code(path, where, "code", _text(props.get("code")))
        parent = _text(props.get("parent")) or None
        level = _level(path, where, props.get("level"))
        centre = None
    where = f"feature {number} ({code})"
    name = check_text(path, where, "name", _text(props.get("name")))
    if level > 1 and not parent:
        raise ImportFileError(path, where, f"a level-{level} area needs a parent code", "parent")
    if parent:
        check_code(path, where, "parent", parent)
    geometry = _geometry(path, where, raw.get("geometry"))
    return GridFeature(
        code=code,
        name=name,
        level=level,
        parent=None if level == 1 else parent,
        geometry=geometry,
        households=_count(path, where, "households", props.get("households")),
        population=_count(path, where, "population", props.get("population")),
        centre=centre,
    )


def _datav_identity(path, where: str, props: dict):
    code = check_code(path, where, "adcode", _text(props.get("adcode")))
    level_name = props.get("level")
    if level_name not in DATAV_LEVELS:
        raise ImportFileError(path, where, f"DataV level {level_name!r} is not one of {', '.join(DATAV_LEVELS)}", "level")
    parent = props.get("parent")
    parent_code = _text(parent.get("adcode")) if isinstance(parent, dict) else _text(parent)
    centre = props.get("center")
    if not (isinstance(centre, list) and len(centre) == 2 and all(isinstance(v, (int, float)) for v in centre)):
        centre = None
    return code, parent_code or None, DATAV_LEVELS[level_name], tuple(centre) if centre else None


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return repr(value)
    return str(value).strip()


def _level(path, where: str, value) -> int:
    try:
        level = int(value)
    except (TypeError, ValueError):
        raise ImportFileError(path, where, f"{value!r} is not a level 1–{MAX_LEVEL}", "level") from None
    if isinstance(value, float) and value != level or not 1 <= level <= MAX_LEVEL:
        raise ImportFileError(path, where, f"{value!r} is not a level 1–{MAX_LEVEL}", "level")
    return level


def _count(path, where: str, field: str, value) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ImportFileError(path, where, f"{value!r} is not a whole number", field) from None
    if number < 0 or number != float(value) or number > MAX_COUNT:
        raise ImportFileError(path, where, f"{value!r} is not a whole number between 0 and {MAX_COUNT}", field)
    return number


def _geometry(path, where: str, raw) -> BaseGeometry:
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        kind = raw.get("type") if isinstance(raw, dict) else raw
        raise ImportFileError(path, where, f"geometry must be a Polygon or MultiPolygon, not {kind!r}", "geometry")
    try:
        geometry = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise ImportFileError(path, where, f"malformed coordinates: {exc}", "geometry") from None
    coordinates = shapely.get_coordinates(geometry)
    if geometry.is_empty or not len(coordinates):
        raise ImportFileError(path, where, "empty polygon", "geometry")
    if not all(math.isfinite(v) for v in coordinates.ravel()):
        raise ImportFileError(path, where, "coordinates that are not finite numbers", "geometry")
    lon, lat = coordinates[:, 0], coordinates[:, 1]
    if lon.min() < -180 or lon.max() > 180 or lat.min() < -90 or lat.max() > 90:
        raise ImportFileError(path, where, "coordinates outside longitude −180…180 / latitude −90…90 (are lon and lat swapped?)", "geometry")
    if not geometry.is_valid:
        repaired = _repaired(geometry)
        if repaired is None:
            raise ImportFileError(path, where, f"invalid polygon: {explain_validity(geometry)}", "geometry")
        return repaired
    return geometry


def _repaired(geometry: BaseGeometry) -> BaseGeometry | None:
    """A real boundary's small defect (a ring touching itself at an island's tip) made valid,
    or None when repair would change the area noticeably (a bow-tie, a folded ring)."""
    fixed = shapely.make_valid(geometry)
    polygons = [part for part in shapely.get_parts(fixed) if part.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        return None
    fixed = shapely.union_all(polygons)
    if fixed.is_empty or abs(fixed.area - abs(geometry.area)) > REPAIR_AREA_TOLERANCE * fixed.area:
        return None
    return fixed


def read_towns_csv(path, district_code: str) -> list[TownName]:
    """Town and street names (code, parent, name) of one district, in file order."""
    towns = []
    for line, row in read_csv_rows(path, ("code", "parent", "name")):
        if row["parent"] == district_code:
            towns.append(TownName(check_code(path, f"line {line}", "code", row["code"]), check_text(path, f"line {line}", "name", row["name"])))
    return towns


def feature_row(feature: GridFeature) -> dict:
    """The database row of a feature (path is filled in afterwards)."""
    # Full precision: rounding each grid on its own would open gaps between siblings.
    geometry = feature.geometry
    centroid = geometry.centroid
    if not geometry.contains(centroid):
        centroid = geometry.representative_point()
    return {
        "code": feature.code,
        "name": feature.name,
        "level": feature.level,
        "parent": feature.parent,
        "path": "",
        "geometry": json.dumps(mapping(geometry), separators=(",", ":")),
        "centroid_lat": round(centroid.y, COORDINATE_DECIMALS),
        "centroid_lon": round(centroid.x, COORDINATE_DECIMALS),
        "households": feature.households,
        "population": feature.population,
    }


def import_grids(engine: Engine, path, subdivide: SubdivideOptions | None = None) -> ImportSummary:
    """Validate the file (and generate subdivisions), then write everything in one transaction."""
    with engine.begin() as connection:
        existing = dict(connection.execute(select(schema.grids.c.code, schema.grids.c.level)).all())
        features = read_grid_features(path, existing)
        if subdivide is not None:
            features = _subdivisions(path, features, subdivide)
        rows = [feature_row(f) for f in sorted(features, key=lambda f: f.level)]
        inserted, updated = upsert(connection, schema.grids, "code", rows)
        refresh_paths(connection)
    return ImportSummary("grids", inserted, updated)


def _subdivisions(path, features: list[GridFeature], options: SubdivideOptions) -> list[GridFeature]:
    """The features with generated towns, communities and grids added under each district."""
    roots = [f for f in features if f.level == 1]
    if not roots:
        raise ImportFileError(path, "", "--subdivide needs at least one level-1 (district) feature")
    result = [f for f in features if f.level != 1]
    for root in roots:
        towns = read_towns_csv(options.towns_csv, root.code) if options.towns_csv else []
        areas = subdivide_district(
            root.code,
            root.geometry,
            towns,
            communities=max(1, options.communities // len(roots)),
            grids=max(1, options.grids // len(roots)),
            urban_centre=root.centre,
            seed=options.seed,
        )
        towns_made = [a for a in areas if a.level == 2]
        result.append(
            replace(
                root,
                households=root.households if root.households is not None else sum(a.households for a in towns_made),
                population=root.population if root.population is not None else sum(a.population for a in towns_made),
            )
        )
        result.extend(GridFeature(a.code, a.name, a.level, a.parent, a.geometry, a.households, a.population) for a in areas)
    return result


def refresh_paths(connection) -> None:
    """Recompute every grid's materialised path from the parent links."""
    parents = dict(connection.execute(select(schema.grids.c.code, schema.grids.c.parent)).all())
    current = dict(connection.execute(select(schema.grids.c.code, schema.grids.c.path)).all())
    paths: dict[str, str] = {}

    def path_of(code: str) -> str:
        if code not in paths:
            chain = []
            node = code
            while node is not None and node not in paths:
                chain.append(node)
                node = parents.get(node)
                if len(chain) > MAX_LEVEL + 1:
                    raise ValueError(f"grid {code!r} sits in a parent cycle")
            prefix = paths[node] if node is not None else "/"
            for item in reversed(chain):
                prefix = f"{prefix}{item}/"
                paths[item] = prefix
        return paths[code]

    changed = [{"_key": code, "_v_path": path_of(code)} for code in parents if current.get(code) != path_of(code)]
    if any(current.get(row["_key"]) for row in changed):
        rollups.invalidate(connection)  # grids moved: their cases count under other areas now
    if changed:
        connection.execute(
            schema.grids.update().where(schema.grids.c.code == bindparam("_key")).values(path=bindparam("_v_path")),
            changed,
        )
