"""The importers: grids (GeoJSON), catalogue, departments and workers (CSV).

Contract: a bad file is refused whole with one line naming the file, the line or feature
and the field; a good file is applied in one transaction and can be applied again.
Every database test runs on SQLite and on PostgreSQL (the ``engine`` fixture). Bad files
are built in ``tmp_path`` from the real data files, which are never edited.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box, mapping, shape
from sqlalchemy import func, select

from data_feeds import schema
from data_feeds.importers.catalogue import import_catalogue
from data_feeds.importers.common import ImportFileError
from data_feeds.importers.departments import import_departments
from data_feeds.importers.grids import SubdivideOptions, import_grids, read_towns_csv
from data_feeds.importers.workers import import_workers
from data_feeds.subdivide import subdivide_district

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = PROJECT / "data_feeds" / "data"
BOUNDARIES = PROJECT / "tests" / "data" / "boundaries"
# 370600_yantai_districts has a real defect (an island of 芝罘区 whose ring touches itself):
# DataV files load as they are, so the importer repairs such small defects.
BOUNDARY_FILES = [pytest.param(path, id=path.stem) for path in sorted(BOUNDARIES.glob("*.geojson"))]
TOWNS = PACKAGE_DATA / "towns.csv"
CATALOGUE = PACKAGE_DATA / "catalogue.csv"
DEPARTMENTS = PACKAGE_DATA / "departments.csv"
IMPORTED_TABLES = (schema.grids, schema.departments, schema.categories, schema.workers)


# ---------------------------------------------------------------------------------------
# Helpers: database state, the real files, and bad files derived from them
# ---------------------------------------------------------------------------------------


def db_state(engine) -> dict:
    """Row counts of every table, plus the full rows of the tables the importers write."""
    state = {}
    with engine.connect() as connection:
        for table in schema.metadata.sorted_tables:
            state[f"count:{table.name}"] = connection.execute(select(func.count()).select_from(table)).scalar()
        for table in IMPORTED_TABLES:
            rows = connection.execute(select(table)).all()
            state[f"rows:{table.name}"] = sorted(tuple(row) for row in rows)
    return state


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar()


def grid_rows(engine) -> dict[str, dict]:
    with engine.connect() as connection:
        return {row["code"]: dict(row) for row in connection.execute(select(schema.grids)).mappings()}


def expect_refused(engine, importer, path, where: str, field: str | None) -> ImportFileError:
    """Import ``path`` expecting ImportFileError naming the file, ``where`` (the line or
    feature; "" for an error about the whole file) and ``field``; the database must be
    exactly as it was before."""
    before = db_state(engine)
    with pytest.raises(ImportFileError) as info:
        importer(engine, path)
    exc = info.value
    message = str(exc)
    assert "\n" not in message, "the error must be one line"
    assert str(path) in message
    if where:
        assert where in message, f"{where!r} not in {message!r}"
    else:
        assert exc.where == ""
    assert exc.field == field
    if field is not None:
        assert repr(field) in message
    assert db_state(engine) == before, "a refused file must leave the database unchanged"
    return exc


def load_boundary(name: str = "310107.geojson") -> dict:
    return json.loads((BOUNDARIES / name).read_text(encoding="utf-8"))


def district_shape(name: str = "310107.geojson"):
    return shape(load_boundary(name)["features"][0]["geometry"])


def write_json(tmp_path: Path, document, name: str = "grids.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def quadrants(geometry) -> list:
    """Four polygonal pieces of ``geometry``, cut at its centroid; together they tile it."""
    min_x, min_y, max_x, max_y = geometry.bounds
    cx, cy = geometry.centroid.x, geometry.centroid.y
    pad = 0.01
    boxes = [
        box(min_x - pad, min_y - pad, cx, cy),
        box(cx, min_y - pad, max_x + pad, cy),
        box(min_x - pad, cy, cx, max_y + pad),
        box(cx, cy, max_x + pad, max_y + pad),
    ]
    pieces = []
    for cell in boxes:
        parts = [p for p in shapely.get_parts(geometry.intersection(cell)) if p.geom_type == "Polygon"]
        pieces.append(parts[0] if len(parts) == 1 else MultiPolygon(parts))
    return pieces


def feature(code, name, level, parent, geometry, **extra) -> dict:
    properties = {"code": code, "name": name, "level": level, "parent": parent, "households": 1000, "population": 2600, **extra}
    return {"type": "Feature", "properties": properties, "geometry": json.loads(json.dumps(mapping(geometry)))}


def generic_document() -> dict:
    """A generic (non-DataV) file from the real 普陀区 outline: the district (feature 1)
    and four towns cut from it (features 2–5)."""
    district = district_shape()
    features = [feature("310107", "普陀区（网格）", 1, None, district)]
    for index, piece in enumerate(quadrants(district), start=1):
        features.append(feature(f"310107T{index}", f"第{index}片区", 2, "310107", piece))
    return {"type": "FeatureCollection", "features": features}


def towns_of(district: str) -> list[tuple[str, str]]:
    """(code, name) of the district's towns in towns.csv, read independently of the importer."""
    with TOWNS.open(encoding="utf-8-sig", newline="") as handle:
        return [(row["code"], row["name"]) for row in csv.DictReader(handle) if row["parent"] == district]


def bow_tie(near) -> dict:
    """A self-intersecting polygon (two triangles crossing at one point) near ``near``."""
    x, y = near.centroid.x, near.centroid.y
    d = 0.002
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]]}


# CSV files


def csv_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def csv_rows(source: Path) -> list[dict]:
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # One record per physical line, so row i sits on line i + 2 (the header is line 1).
    assert len(rows) + 1 == len(csv_lines(source))
    return rows


def catalogue_rows() -> list[dict]:
    return csv_rows(CATALOGUE)


def catalogue_line(code: str) -> int:
    """The physical line of ``code`` in the real catalogue."""
    return next(index for index, row in enumerate(catalogue_rows(), start=2) if row["code"] == code)


def detail_codes() -> list[str]:
    rows = catalogue_rows()
    parents = {row["parent"] for row in rows}
    return [row["code"] for row in rows if row["code"] not in parents]


def write_csv(tmp_path: Path, rows: list[dict], fieldnames, name: str) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def csv_with(tmp_path: Path, source: Path, line: int, **changes) -> Path:
    """The real CSV ``source`` with the row on physical ``line`` changed."""
    rows = csv_rows(source)
    rows[line - 2].update(changes)
    return write_csv(tmp_path, rows, list(rows[0]), source.name)


def catalogue_with(tmp_path: Path, line: int, **changes) -> Path:
    return csv_with(tmp_path, CATALOGUE, line, **changes)


def text_file_with(tmp_path: Path, source: Path, line: int, transform, name: str) -> Path:
    """``source`` with physical ``line`` (1-based) replaced by ``transform(old_line)``."""
    lines = csv_lines(source)
    lines[line - 1] = transform(lines[line - 1])
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture
def with_district(engine):
    """The departments and the real 普陀区 district (DataV) in the database."""
    import_departments(engine, DEPARTMENTS)
    import_grids(engine, BOUNDARIES / "310107.geojson")
    return engine


@pytest.fixture
def with_departments(engine):
    import_departments(engine, DEPARTMENTS)
    return engine


def basic_grids(engine, n: int = 3) -> list[str]:
    with engine.connect() as connection:
        codes = connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)).scalars().all()
    assert len(codes) >= n
    return list(codes[:n])


# ---------------------------------------------------------------------------------------
# Grids: the real DataV boundaries
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BOUNDARY_FILES)
def test_every_real_boundary_imports_as_datav_districts(engine, path):
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    summary = import_grids(engine, path)
    rows = grid_rows(engine)
    assert (summary.inserted, summary.updated) == (len(features), 0)
    assert sorted(rows) == sorted(str(f["properties"]["adcode"]) for f in features)
    for f in features:
        row = rows[str(f["properties"]["adcode"])]
        assert row["name"] == f["properties"]["name"]
        assert (row["level"], row["parent"], row["path"]) == (1, None, f"/{row['code']}/"), "each district is a level-1 root"
        assert row["geometry"] and row["centroid_lat"] and row["centroid_lon"]


@pytest.mark.parametrize("path", BOUNDARY_FILES)
def test_reimporting_a_boundary_updates_every_row_and_adds_none(engine, path):
    first = import_grids(engine, path)
    before = grid_rows(engine)
    again = import_grids(engine, path)
    assert (again.inserted, again.updated) == (0, first.inserted)
    assert grid_rows(engine) == before


# ---------------------------------------------------------------------------------------
# Grids: --subdivide
# ---------------------------------------------------------------------------------------

SUBDIVIDE_CASES = [("310107", 12, 30), ("340223", 20, 60)]  # district, communities, grids


@pytest.fixture(params=SUBDIVIDE_CASES, ids=[case[0] for case in SUBDIVIDE_CASES])
def subdivided(request, engine):
    district, communities, grids = request.param
    path = BOUNDARIES / f"{district}.geojson"
    summary = import_grids(engine, path, SubdivideOptions(TOWNS, communities=communities, grids=grids, seed=7))
    return engine, path, district, communities, grids, summary


def test_subdivide_makes_the_towns_of_towns_csv(subdivided):
    engine, _, district, _, _, _ = subdivided
    towns = sorted((row["code"], row["name"]) for row in grid_rows(engine).values() if row["level"] == 2)
    assert towns == sorted(towns_of(district))
    assert len(towns) > 1


def test_subdivide_makes_the_requested_communities_and_grids(subdivided):
    engine, _, _, communities, grids, summary = subdivided
    levels = [row["level"] for row in grid_rows(engine).values()]
    assert levels.count(1) == 1
    assert levels.count(3) == communities
    assert levels.count(4) == grids
    assert summary.inserted == len(levels)


def test_subdivided_parents_have_the_level_above(subdivided):
    engine = subdivided[0]
    rows = grid_rows(engine)
    for row in rows.values():
        if row["level"] == 1:
            assert row["parent"] is None
        else:
            assert rows[row["parent"]]["level"] == row["level"] - 1


def test_subdivided_path_is_the_chain_of_codes(subdivided):
    engine = subdivided[0]
    rows = grid_rows(engine)
    for code, row in rows.items():
        chain, node = [], code
        while node is not None:
            chain.append(node)
            node = rows[node]["parent"]
        assert row["path"] == "/" + "/".join(reversed(chain)) + "/"
        assert len(chain) == row["level"]


def test_subdivision_before_storage_tiles_each_parent():
    """The generated (unrounded) areas tile their parent to 1e-6 relative."""
    district = district_shape("340223.geojson")
    areas = subdivide_district("340223", district, read_towns_csv(TOWNS, "340223"), communities=20, grids=60, seed=7)
    shapes = {"340223": district, **{a.code: a.geometry for a in areas}}
    for code, parent_shape in shapes.items():
        children = [a.geometry for a in areas if a.parent == code]
        if children:
            assert sum(c.area for c in children) == pytest.approx(parent_shape.area, rel=1e-6), code


def _tiling_errors(engine) -> dict[str, float]:
    rows = grid_rows(engine)
    shapes = {code: shape(json.loads(row["geometry"])) for code, row in rows.items()}
    errors = {}
    for code in rows:
        children = [c for c, row in rows.items() if row["parent"] == code]
        if children:
            total = sum(shapes[c].area for c in children)
            errors[code] = abs(total - shapes[code].area) / shapes[code].area
    return errors


def test_stored_children_tile_their_parent_roughly(subdivided):
    """Stored geometries are rounded to 6 decimals (~0.1 m), so allow 1e-4 relative."""
    errors = _tiling_errors(subdivided[0])
    assert errors and max(errors.values()) < 1e-4


def test_stored_children_tile_their_parent_to_1e_6(subdivided):
    errors = _tiling_errors(subdivided[0])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-6, f"{worst}: children's area differs by {errors[worst]:.2e} relative"


def test_every_centroid_lies_in_its_own_and_its_parents_polygon(subdivided):
    rows = grid_rows(subdivided[0])
    shapes = {code: shape(json.loads(row["geometry"])) for code, row in rows.items()}
    for code, row in rows.items():
        centroid = Point(row["centroid_lon"], row["centroid_lat"])
        assert shapes[code].distance(centroid) < 1e-6, code
        if row["parent"]:
            assert shapes[row["parent"]].distance(centroid) < 1e-6, code


def test_reimporting_a_subdivided_district_is_idempotent(subdivided):
    engine, path, _, communities, grids, first = subdivided
    before = grid_rows(engine)
    again = import_grids(engine, path, SubdivideOptions(TOWNS, communities=communities, grids=grids, seed=7))
    assert (again.inserted, again.updated) == (0, first.inserted)
    assert grid_rows(engine) == before


def test_subdivide_honours_a_grid_count_just_above_the_community_count(engine):
    import_grids(engine, BOUNDARIES / "310107.geojson", SubdivideOptions(TOWNS, communities=11, grids=13, seed=20261127))
    levels = [row["level"] for row in grid_rows(engine).values()]
    assert (levels.count(3), levels.count(4)) == (11, 13)


def test_a_towns_file_with_a_short_row_is_refused(engine, tmp_path):
    towns = text_file_with(tmp_path, TOWNS, 2, lambda line: line.rsplit(",", 1)[0], "towns.csv")
    before = db_state(engine)
    with pytest.raises(ImportFileError) as info:
        import_grids(engine, BOUNDARIES / "310107.geojson", SubdivideOptions(towns, communities=12, grids=30))
    assert str(towns) in str(info.value) and "line 2" in str(info.value)
    assert db_state(engine) == before


def test_a_towns_file_that_is_not_utf8_is_refused(engine, tmp_path):
    towns = tmp_path / "towns.csv"
    towns.write_bytes(TOWNS.read_text(encoding="utf-8").encode("gb18030"))
    before = db_state(engine)
    with pytest.raises(ImportFileError) as info:
        import_grids(engine, BOUNDARIES / "310107.geojson", SubdivideOptions(towns, communities=12, grids=30))
    assert str(towns) in str(info.value)
    assert db_state(engine) == before


# ---------------------------------------------------------------------------------------
# Grids: generic files (code, name, parent, level)
# ---------------------------------------------------------------------------------------


def test_a_generic_file_imports_with_paths(engine, tmp_path):
    summary = import_grids(engine, write_json(tmp_path, generic_document()))
    rows = grid_rows(engine)
    assert (summary.inserted, summary.updated) == (5, 0)
    assert rows["310107"]["path"] == "/310107/"
    assert rows["310107T3"]["level"] == 2
    assert rows["310107T3"]["parent"] == "310107"
    assert rows["310107T3"]["path"] == "/310107/310107T3/"
    assert rows["310107T3"]["households"] == 1000 and rows["310107T3"]["population"] == 2600


def test_a_generic_child_may_name_a_parent_from_an_earlier_import(with_district, tmp_path):
    town = feature("310107T1", "第1片区", 2, "310107", quadrants(district_shape())[0])
    summary = import_grids(with_district, write_json(tmp_path, {"type": "FeatureCollection", "features": [town]}))
    assert (summary.inserted, summary.updated) == (1, 0)
    assert grid_rows(with_district)["310107T1"]["path"] == "/310107/310107T1/"


def test_a_generic_file_may_list_children_before_parents(engine, tmp_path):
    document = generic_document()
    town = document["features"][1]
    community = feature("310107T1C1", "第1社区", 3, town["properties"]["code"], shape(town["geometry"]))
    document["features"] = [community, *reversed(document["features"])]
    import_grids(engine, write_json(tmp_path, document))
    assert grid_rows(engine)["310107T1C1"]["path"] == "/310107/310107T1/310107T1C1/"


def test_reimporting_a_generic_file_updates_in_place(engine, tmp_path):
    path = write_json(tmp_path, generic_document())
    import_grids(engine, path)
    document = generic_document()
    document["features"][2]["properties"]["name"] = "新名字"
    again = import_grids(engine, write_json(tmp_path, document))
    assert (again.inserted, again.updated) == (0, 5)
    assert count(engine, schema.grids) == 5
    assert grid_rows(engine)["310107T2"]["name"] == "新名字"


# ---------------------------------------------------------------------------------------
# Grids: bad files are refused whole
# ---------------------------------------------------------------------------------------


def test_invalid_json_names_line_and_column(with_district, tmp_path):
    text = json.dumps(generic_document(), indent=1)
    path = tmp_path / "broken.geojson"
    path.write_text(text + "\n}\n", encoding="utf-8")
    expected_line = len(text.splitlines()) + 1
    exc = expect_refused(with_district, import_grids, path, f"line {expected_line} column 1", None)
    assert "not valid JSON" in str(exc)


def test_a_document_that_is_not_a_feature_collection_is_refused(with_district, tmp_path):
    path = write_json(tmp_path, generic_document()["features"][0])
    exc = expect_refused(with_district, import_grids, path, "", "type")
    assert "not a GeoJSON FeatureCollection" in str(exc)


def test_a_feature_collection_without_features_is_refused(with_district, tmp_path):
    path = write_json(tmp_path, {"type": "FeatureCollection", "features": []})
    exc = expect_refused(with_district, import_grids, path, "", "features")
    assert "has no features" in str(exc)


def test_an_unknown_parent_is_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][2]["properties"]["parent"] = "999999"
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 3 (310107T2)", "parent")
    assert "'999999'" in str(exc)


def test_a_level_that_does_not_follow_the_parent_is_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][3]["properties"]["level"] = 3
    expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 4 (310107T3)", "level")


@pytest.mark.parametrize("level", [0, 6, "x"])
def test_a_level_outside_1_to_5_is_refused(with_district, tmp_path, level):
    document = generic_document()
    document["features"][1]["properties"]["level"] = level
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 2", "level")
    assert repr(level) in str(exc)


def test_a_self_intersecting_polygon_is_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][1]["geometry"] = bow_tie(district_shape())
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 2 (310107T1)", "geometry")
    assert "invalid polygon" in str(exc)


def test_a_point_geometry_is_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][4]["geometry"] = {"type": "Point", "coordinates": [121.39, 31.25]}
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 5 (310107T4)", "geometry")
    assert "'Point'" in str(exc)


@pytest.mark.parametrize(
    "vertex, words",
    [((math.nan, math.nan), "not finite"), ((200.0, 31.2), "outside"), ((121.4, -95.0), "outside")],
    ids=["nan", "longitude-200", "latitude-minus-95"],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_bad_coordinates_are_refused(with_district, tmp_path, vertex, words):
    document = generic_document()
    ring = document["features"][1]["geometry"]["coordinates"]
    while isinstance(ring[0][0], list):  # down to the first ring of a (Multi)Polygon
        ring = ring[0]
    ring[1] = list(vertex)
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False, allow_nan=True), encoding="utf-8")
    exc = expect_refused(with_district, import_grids, path, "feature 2 (310107T1)", "geometry")
    assert words in str(exc)


def test_a_repeated_code_is_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][4]["properties"]["code"] = "310107T2"
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 5", "code")
    assert "repeats feature 3" in str(exc)


def test_a_missing_name_is_refused(with_district, tmp_path):
    document = generic_document()
    del document["features"][3]["properties"]["name"]
    expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 4 (310107T3)", "name")


def test_negative_households_are_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][2]["properties"]["households"] = -5
    exc = expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 3 (310107T2)", "households")
    assert "-5" in str(exc)


def test_a_bad_fifth_feature_leaves_nothing_of_the_first_four(with_district, tmp_path):
    """Feature 1 would rename the stored district and 2–4 add towns: none of it may stick."""
    document = generic_document()
    document["features"][4]["properties"]["name"] = ""
    expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 5 (310107T4)", "name")
    rows = grid_rows(with_district)
    assert sorted(rows) == ["310107"]
    assert rows["310107"]["name"] == "普陀区"


def test_a_bad_datav_feature_in_a_city_file_leaves_nothing(engine, tmp_path):
    document = load_boundary("310000_shanghai_districts.geojson")
    document["features"][-1]["properties"]["level"] = "province"
    number = len(document["features"])
    expect_refused(engine, import_grids, write_json(tmp_path, document), f"feature {number}", "level")
    assert count(engine, schema.grids) == 0


def test_households_too_large_for_the_column_are_refused(with_district, tmp_path):
    document = generic_document()
    document["features"][2]["properties"]["households"] = 3_000_000_000
    expect_refused(with_district, import_grids, write_json(tmp_path, document), "feature 3 (310107T2)", "households")


def test_relevelling_a_grid_into_a_parent_cycle_is_refused(engine, tmp_path):
    import_grids(engine, write_json(tmp_path, generic_document(), "first.geojson"))
    district = generic_document()["features"][0]
    district["properties"].update(level=3, parent="310107T1")  # under its own town
    path = write_json(tmp_path, {"type": "FeatureCollection", "features": [district]})
    expect_refused(engine, import_grids, path, "feature 1 (310107)", "level")


def test_relevelling_a_grid_with_stored_children_is_refused(engine, tmp_path):
    document = generic_document()
    town = document["features"][1]
    document["features"].append(feature("310107T1C1", "第1社区", 3, "310107T1", shape(town["geometry"])))
    import_grids(engine, write_json(tmp_path, document, "first.geojson"))
    new_root = feature("NEWROOT", "新区", 1, None, district_shape())
    town["properties"].update(level=3, parent="NEWTOWN")  # the stored community stays level 3
    new_town = feature("NEWTOWN", "新镇", 2, "NEWROOT", shape(town["geometry"]))
    path = write_json(tmp_path, {"type": "FeatureCollection", "features": [new_root, new_town, town]})
    expect_refused(engine, import_grids, path, "(310107T1)", "level")


# ---------------------------------------------------------------------------------------
# Departments
# ---------------------------------------------------------------------------------------


def test_the_default_departments_import(engine):
    summary = import_departments(engine, DEPARTMENTS)
    assert (summary.inserted, summary.updated) == (23, 0)
    assert count(engine, schema.departments) == 23


def test_reimporting_departments_is_idempotent(engine):
    import_departments(engine, DEPARTMENTS)
    before = db_state(engine)
    again = import_departments(engine, DEPARTMENTS)
    assert (again.inserted, again.updated) == (0, 23)
    assert db_state(engine) == before


def test_a_repeated_department_code_is_refused(with_departments, tmp_path):
    path = csv_with(tmp_path, DEPARTMENTS, 6, code=csv_rows(DEPARTMENTS)[0]["code"])
    exc = expect_refused(with_departments, import_departments, path, "line 6", "code")
    assert "repeats line 2" in str(exc)


@pytest.mark.parametrize("code", ["<b>CG</b>", "=1+2", "C G", "CG;DROP", "a/b"])
def test_a_department_code_with_markup_spaces_or_slashes_is_refused(engine, tmp_path, code):
    path = csv_with(tmp_path, DEPARTMENTS, 4, code=code)
    expect_refused(engine, import_departments, path, "line 4", "code")
    assert count(engine, schema.departments) == 0


def test_an_empty_department_name_is_refused(engine, tmp_path):
    path = csv_with(tmp_path, DEPARTMENTS, 9, name="")
    expect_refused(engine, import_departments, path, "line 9", "name")
    assert count(engine, schema.departments) == 0


def test_a_department_english_name_too_long_for_the_column_is_refused(engine, tmp_path):
    path = csv_with(tmp_path, DEPARTMENTS, 3, name_en="x" * 250)
    expect_refused(engine, import_departments, path, "line 3", "name_en")


# ---------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------


def test_the_default_catalogue_imports(with_departments):
    summary = import_catalogue(with_departments, CATALOGUE)
    assert (summary.inserted, summary.updated) == (325, 0)
    with with_departments.connect() as connection:
        rows = connection.execute(select(schema.categories)).mappings().all()
    assert len(rows) == 325
    assert {row["level"] for row in rows} == {1, 2, 3}
    details = set(detail_codes())
    assert 0 < len(details) < 325
    for row in rows:
        if row["code"] in details:
            assert row["dept"] and row["grade"] in ("A", "B", "C") and row["calendar"] in ("natural", "working")
            assert all(row[f"{stage}_limit"] for stage in ("register", "dispatch", "handle", "verify"))
        else:
            assert row["dept"] is None and row["grade"] is None and row["handle_limit"] is None


def test_reimporting_the_catalogue_is_idempotent(with_departments):
    import_catalogue(with_departments, CATALOGUE)
    before = db_state(with_departments)
    again = import_catalogue(with_departments, CATALOGUE)
    assert (again.inserted, again.updated) == (0, 325)
    assert db_state(with_departments) == before


def test_a_detail_class_without_department_is_refused(with_departments, tmp_path):
    code = detail_codes()[100]
    line = catalogue_line(code)
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, dept=""), f"line {line}", "dept")
    assert repr(code) in str(exc)


def test_a_malformed_limit_is_refused(with_departments, tmp_path):
    line = catalogue_line(detail_codes()[57])
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, handle_limit="2x"), f"line {line}", "handle_limit")
    assert "'2x'" in str(exc)


def test_an_unknown_department_is_refused(with_departments, tmp_path):
    line = catalogue_line(detail_codes()[-1])
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, dept="NOSUCH"), f"line {line}", "dept")
    assert "'NOSUCH'" in str(exc)


def test_grade_d_is_refused(with_departments, tmp_path):
    line = catalogue_line(detail_codes()[10])
    expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, grade="D"), f"line {line}", "grade")


def test_an_unknown_calendar_is_refused(with_departments, tmp_path):
    line = catalogue_line(detail_codes()[20])
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, calendar="lunar"), f"line {line}", "calendar")
    assert "'lunar'" in str(exc)


def test_an_unknown_parent_is_refused_in_the_catalogue(with_departments, tmp_path):
    line = catalogue_line(detail_codes()[30])
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, parent="Z99"), f"line {line}", "parent")
    assert "'Z99'" in str(exc)


def test_a_repeated_catalogue_code_is_refused(with_departments, tmp_path):
    first, second = detail_codes()[40:42]
    line = catalogue_line(second)
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, code=first), f"line {line}", "code")
    assert f"repeats line {catalogue_line(first)}" in str(exc)


def test_a_class_with_sub_classes_carrying_a_department_is_refused(with_departments, tmp_path):
    parent = catalogue_rows()[10]["parent"]  # a sub-class
    line = catalogue_line(parent)
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, line, dept="CGJ"), f"line {line}", "dept")
    assert "sub-classes" in str(exc)


def test_a_wrong_header_is_refused(with_departments, tmp_path):
    path = text_file_with(tmp_path, CATALOGUE, 1, lambda line: line.replace(",dept,", ",department,"), "catalogue.csv")
    exc = expect_refused(with_departments, import_catalogue, path, "line 1", None)
    assert "dept" in str(exc)


def test_non_utf8_bytes_are_refused_with_their_line(with_departments, tmp_path):
    lines = CATALOGUE.read_bytes().split(b"\n")
    row = catalogue_rows()[150]
    lines[151] = lines[151].replace(row["name"].encode("utf-8"), row["name"].encode("gb18030"))
    path = tmp_path / "catalogue.csv"
    path.write_bytes(b"\n".join(lines))
    exc = expect_refused(with_departments, import_catalogue, path, "line 152", None)
    assert "UTF-8" in str(exc)


def test_a_row_with_too_many_fields_is_refused(with_departments, tmp_path):
    path = text_file_with(tmp_path, CATALOGUE, 77, lambda line: line + ",extra", "catalogue.csv")
    exc = expect_refused(with_departments, import_catalogue, path, "line 77", None)
    assert "12 fields" in str(exc)


def test_a_parent_cycle_is_refused(with_departments, tmp_path):
    rows = catalogue_rows()
    top, sub = rows[0]["code"], rows[1]["code"]  # B01 and its sub-class B0101
    assert rows[1]["parent"] == top
    exc = expect_refused(with_departments, import_catalogue, catalogue_with(tmp_path, 2, parent=sub), "line 2", "parent")
    assert "cycle" in str(exc)


def test_a_parent_cycle_through_stored_classes_is_refused(with_departments, tmp_path):
    import_catalogue(with_departments, CATALOGUE)
    rows = catalogue_rows()
    top = rows[0]
    descendant = next(row for row in rows if row["parent"] == rows[1]["code"])  # B01 > B0101 > B010101
    detail = {name: descendant[name] for name in ("dept", "grade", "register_limit", "dispatch_limit", "handle_limit", "verify_limit", "calendar")}
    path = write_csv(tmp_path, [{**top, **detail, "parent": descendant["code"]}], list(top), "catalogue.csv")
    expect_refused(with_departments, import_catalogue, path, "line 2", "parent")


def test_line_numbers_are_physical_lines_despite_blank_lines_crlf_and_quoted_newlines(with_departments, tmp_path):
    rows = catalogue_rows()
    rows[4]["name_en"] = "two\nlines"  # the record on line 6 now spans lines 6–7
    bad = rows[20]  # was on line 22; +1 for the quoted newline, +1 for the blank line below
    assert bad["code"] in detail_codes()
    bad["calendar"] = "lunar"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    lines = buffer.getvalue().split("\r\n")
    lines.insert(10, "")  # a blank line
    text = "\r\n".join(lines)
    assert text.splitlines()[24 - 1].startswith(bad["code"] + ",")
    path = tmp_path / "catalogue.csv"
    path.write_bytes("\ufeff".encode() + text.encode("utf-8"))
    expect_refused(with_departments, import_catalogue, path, "line 24", "calendar")


# ---------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------

WORKER_FIELDS = ["id", "name", "grid", "role", "phone"]


def workers_file(tmp_path: Path, grids: list[str], **changes_of_line_3) -> Path:
    rows = [
        {"id": "W001", "name": "张伟", "grid": grids[0], "role": "网格长", "phone": "13800000001"},
        {"id": "W002", "name": "李娜", "grid": grids[1], "role": "网格员", "phone": "+86 138-0000-0002"},
        {"id": "W003", "name": "王芳", "grid": grids[2], "role": "member", "phone": ""},
    ]
    rows[1].update(changes_of_line_3)
    return write_csv(tmp_path, rows, WORKER_FIELDS, "workers.csv")


def test_a_valid_workers_file_imports_with_chinese_roles(small_district, tmp_path):
    grids = basic_grids(small_district)
    summary = import_workers(small_district, workers_file(tmp_path, grids))
    assert (summary.inserted, summary.updated) == (3, 0)
    with small_district.connect() as connection:
        rows = {row["id"]: dict(row) for row in connection.execute(select(schema.workers)).mappings()}
    assert {code: row["role"] for code, row in rows.items()} == {"W001": "head", "W002": "worker", "W003": "member"}
    assert [rows[w]["grid"] for w in ("W001", "W002", "W003")] == grids
    assert rows["W003"]["phone"] is None


def test_reimporting_workers_updates_them(small_district, tmp_path):
    grids = basic_grids(small_district)
    import_workers(small_district, workers_file(tmp_path, grids))
    again = import_workers(small_district, workers_file(tmp_path, grids, name="李娜娜", role="worker"))
    assert (again.inserted, again.updated) == (0, 3)
    assert count(small_district, schema.workers) == 3
    with small_district.connect() as connection:
        assert connection.execute(select(schema.workers.c.name).where(schema.workers.c.id == "W002")).scalar() == "李娜娜"


def test_a_worker_in_an_unknown_grid_is_refused(small_district, tmp_path):
    exc = expect_refused(small_district, import_workers, workers_file(tmp_path, basic_grids(small_district), grid="999999999"), "line 3", "grid")
    assert "'999999999'" in str(exc)


def test_an_unknown_worker_role_is_refused(small_district, tmp_path):
    exc = expect_refused(small_district, import_workers, workers_file(tmp_path, basic_grids(small_district), role="队长"), "line 3", "role")
    assert "'队长'" in str(exc)


def test_a_bad_worker_phone_is_refused(small_district, tmp_path):
    exc = expect_refused(small_district, import_workers, workers_file(tmp_path, basic_grids(small_district), phone="call me"), "line 3", "phone")
    assert "'call me'" in str(exc)
