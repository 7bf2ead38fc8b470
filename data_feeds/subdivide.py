"""Generate towns, communities and basic grids inside a district polygon, for a demo.

No public town-level polygons exist, so a demo cuts the real district outline into a
plausible hierarchy: seed points are drawn denser near the urban centre, grouped by
k-means, and each group's Voronoi cell is clipped to its parent. Children therefore tile
their parent exactly, and urban grids come out smaller than rural ones, as in real life.
Deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry

SAMPLE_POINTS = 24_000
KMEANS_ROUNDS = 12
URBAN_WEIGHT = 6.0  # how much denser the urban core is sampled than the countryside
COMMUNITY_SYLLABLES_1 = "东西南北新翠花湖兰桂金银石枫清盛龙凤长永和安宝福溪泽香越旺尧蠡望秀苏胥渡澄江横"
COMMUNITY_SYLLABLES_2 = ["苑", "园", "湾", "港", "桥", "浜", "塘", "庄", "湖", "墅", "山", "泾", "溪", "里", "坊", "埠", "岸", "城", "华", "宁"]


@dataclass(frozen=True)
class TownName:
    code: str
    name: str


@dataclass(frozen=True)
class GeneratedArea:
    code: str
    name: str
    level: int
    parent: str
    geometry: BaseGeometry
    households: int
    population: int


def subdivide_district(
    district_code: str,
    polygon: BaseGeometry,
    towns: list[TownName],
    communities: int = 200,
    grids: int = 900,
    default_towns: int = 10,
    urban_centre: tuple[float, float] | None = None,
    seed: int = 20261127,
) -> list[GeneratedArea]:
    """Towns, communities and basic grids (levels 2–4) tiling ``polygon`` (lon/lat)."""
    rng = np.random.default_rng(seed)
    centre = urban_centre or (polygon.centroid.x, polygon.centroid.y)
    points = _sample_points(polygon, SAMPLE_POINTS, centre, rng)
    town_count = len(towns) or default_towns
    town_names = towns or [TownName(f"{district_code}{i + 1:03d}000", f"第{i + 1}街镇") for i in range(town_count)]
    communities = max(communities, town_count)
    grids = max(grids, communities)

    town_cells = _cells(polygon, points, town_count, rng)
    # Streets (街道) come first in the statistical list and are the urban ones: give them
    # the cells nearest the urban centre.
    town_cells.sort(key=lambda cell: Point(centre).distance(cell[0].centroid))
    areas: list[GeneratedArea] = []
    community_quota = _apportion([len(members) for _, members in town_cells], communities)
    grid_quota = _apportion([len(members) for _, members in town_cells], grids, minimums=community_quota)
    for (town_shape, town_points), town, n_communities, n_grids in zip(town_cells, town_names, community_quota, grid_quota):
        is_street = town.name.endswith("街道")
        community_cells = _cells(town_shape, town_points, n_communities, rng)
        community_names = _community_names(town.name, len(community_cells), is_street, rng)
        per_community = _apportion([len(members) for _, members in community_cells], n_grids)
        town_households = 0
        town_areas = []
        for index, ((shape, members), name, n) in enumerate(zip(community_cells, community_names, per_community), start=1):
            prefix = town.code[:9] if len(town.code) >= 12 else town.code
            community_code = f"{prefix}{(index if is_street else 200 + index):03d}"
            grid_cells = _cells(shape, members, max(1, n), rng)
            grid_areas = []
            for grid_index, (grid_shape, _) in enumerate(grid_cells, start=1):
                households = int(rng.integers(300, 601))
                grid_areas.append(
                    GeneratedArea(
                        code=f"{community_code}{grid_index:03d}",
                        name=f"{name}第{grid_index}网格",
                        level=4,
                        parent=community_code,
                        geometry=grid_shape,
                        households=households,
                        population=int(households * rng.uniform(2.3, 3.0)),
                    )
                )
            households = sum(area.households for area in grid_areas)
            population = sum(area.population for area in grid_areas)
            town_households += households
            town_areas.append(GeneratedArea(community_code, name, 3, town.code, shape, households, population))
            town_areas.extend(grid_areas)
        town_population = sum(area.population for area in town_areas if area.level == 3)
        areas.append(GeneratedArea(town.code, town.name, 2, district_code, town_shape, town_households, town_population))
        areas.extend(town_areas)
    return areas


def _sample_points(polygon: BaseGeometry, count: int, centre: tuple[float, float], rng) -> np.ndarray:
    """Points inside the polygon, denser near the urban centre (rejection sampling)."""
    min_x, min_y, max_x, max_y = polygon.bounds
    scale = max(max_x - min_x, max_y - min_y) / 6.0
    shapely.prepare(polygon)
    chosen = []
    total = 0
    while total < count:
        xs = rng.uniform(min_x, max_x, count * 2)
        ys = rng.uniform(min_y, max_y, count * 2)
        distance2 = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2
        keep_probability = (1.0 + URBAN_WEIGHT * np.exp(-distance2 / (2 * scale**2))) / (1.0 + URBAN_WEIGHT)
        keep = rng.random(xs.size) < keep_probability
        xs, ys = xs[keep], ys[keep]
        inside = shapely.contains_xy(polygon, xs, ys)
        batch = np.column_stack([xs[inside], ys[inside]])
        chosen.append(batch)
        total += len(batch)
    return np.concatenate(chosen)[:count]


def _cells(shape: BaseGeometry, points: np.ndarray, k: int, rng) -> list[tuple[BaseGeometry, np.ndarray]]:
    """Split ``shape`` into ``k`` Voronoi cells around k-means centres of ``points``."""
    if k <= 1 or len(points) < 2:
        return [(shape, points)]
    k = min(k, len(points))
    centres = _kmeans(points, k, rng)
    cells = shapely.voronoi_polygons(MultiPoint(centres), extend_to=shape.envelope.buffer(0.01), ordered=True)
    result = []
    labels = _nearest(points, centres)
    for index, cell in enumerate(shapely.get_parts(cells)):
        clipped = shapely.make_valid(cell.intersection(shape))
        clipped = _polygonal(clipped)
        if clipped is None or clipped.area <= 0:
            continue
        result.append((clipped, points[labels == index]))
    return result


def _polygonal(geometry: BaseGeometry) -> BaseGeometry | None:
    """Keep only the polygon parts of an intersection (drop stray lines and points)."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [part for part in shapely.get_parts(geometry) if part.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    return shapely.union_all(parts)


def _kmeans(points: np.ndarray, k: int, rng) -> np.ndarray:
    centres = points[rng.choice(len(points), size=k, replace=False)]
    for _ in range(KMEANS_ROUNDS):
        labels = _nearest(points, centres)
        for index in range(k):
            members = points[labels == index]
            if len(members):
                centres[index] = members.mean(axis=0)
    return centres


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    labels = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), 4096):
        chunk = points[start : start + 4096]
        distances = ((chunk[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels[start : start + 4096] = distances.argmin(axis=1)
    return labels


def _apportion(weights: list[int], total: int, minimums: list[int] | None = None) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), each part at least
    its minimum (1 by default); the parts sum to ``total`` when the minimums allow it."""
    weights = np.maximum(np.asarray(weights, dtype=float), 1.0)
    floor = np.asarray(minimums if minimums is not None else [1] * len(weights), dtype=int)
    spare = max(0, total - int(floor.sum()))
    shares = weights / weights.sum() * spare
    parts = floor + np.floor(shares).astype(int)
    order = np.argsort(-(shares - np.floor(shares)))
    index = 0
    while parts.sum() < total:
        parts[order[index % len(parts)]] += 1
        index += 1
    return parts.tolist()


def _community_names(town_name: str, count: int, is_street: bool, rng) -> list[str]:
    names: list[str] = []
    used = set()
    while len(names) < count:
        stem = rng.choice(list(COMMUNITY_SYLLABLES_1)) + rng.choice(COMMUNITY_SYLLABLES_2)
        if stem in used:
            if len(used) >= len(COMMUNITY_SYLLABLES_1) * len(COMMUNITY_SYLLABLES_2):
                stem = f"{stem}{len(names)}"
            else:
                continue
        used.add(stem)
        suffix = "社区" if is_street or rng.random() < 0.3 else "村"
        names.append(f"{stem}{suffix}")
    return names
