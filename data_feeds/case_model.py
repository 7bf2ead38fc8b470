"""How cases arise and move through their life: one model for the demo's history
(``data_feeds.demo``) and the simulator's live traffic (``data_feeds.simulator``).

* arrivals: a non-homogeneous Poisson process by local hour and weekday (``arrival_times``),
  ``CASES_PER_DAY`` in a district of ``REFERENCE_GRIDS`` basic grids, split by channel
  (``SOURCE_MIX``);
* where and what (``draw_district``): grids weighted by population with a few hot spots,
  detail categories by a Zipf-like rank, departments each at their own pace, a few of them slow;
* a case's script (``case_script``, ``lifecycle_steps``): rejection, closing on the spot by
  the patrol, register, dispatch, feedback at the department's pace, rework, close and
  evaluation; each step takes a lognormal share of its stage's time;
* when each step happens (``next_step_at``) and the event it makes (``step_event``), which
  ``gridrules.lifecycle.apply_event`` applies.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import shapely

from data_feeds.case_texts import SURNAMES, describe
from gridrules.lifecycle import Case, CaseEvent, Rules

# ---- arrivals
CASES_PER_DAY = 380
REFERENCE_GRIDS = 900  # CASES_PER_DAY is the figure of a district of this many basic grids (the demo's)
SOURCE_MIX = {"patrol": 0.55, "hotline": 0.24, "police": 0.05, "wechat": 0.07, "video": 0.07, "leader": 0.02}
# Relative arrivals by local hour, per source: patrols report on their rounds, the
# hotline follows the waking day, police transfers lean to the evening.
DAY_PROFILE = np.array([0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 0.9, 1.4, 1.6, 1.5, 1.2, 0.8, 1.0, 1.4, 1.5, 1.4, 1.1, 0.9, 0.8, 0.7, 0.6, 0.4, 0.25])
PATROL_PROFILE = np.array([0, 0, 0, 0, 0, 0, 0, 0.2, 1.5, 2.0, 1.8, 0.6, 0.1, 0.3, 1.6, 2.0, 1.7, 0.5, 0.1, 0, 0, 0, 0, 0], dtype=float)
WEEKDAY_FACTOR = np.array([1.12, 1.08, 1.05, 1.05, 1.0, 0.78, 0.7])  # Monday first

# ---- where and what
POINTS_PER_GRID = 24  # places in each grid where cases are reported (and patrols walk between)
DEFAULT_POPULATION = 1000.0  # of a grid without one
HOT_SPOT_EVERY = 40  # one grid in this many is a hot spot: a market, a station, an old estate...
HOT_SPOT_FACTOR = 5.0  # ...with this many times its population's share of cases
CATEGORY_RANK_EXPONENT = 0.9  # a few categories dominate, as in every bulletin
DEPT_PACE = (0.45, 0.25)  # median and sigma (lognormal) of the share of the handling time a department takes
SLOW_DEPARTMENTS = 3  # departments that tend to run late...
SLOW_PACE = (0.95, 1.25)  # ...taking this share of the handling time (uniform)
DEFAULT_PACE = 0.5  # of a department the district does not know
LOCAL_DEPT = "SDZJ"  # the town or street office (属地镇街), which some cases go to...
LOCAL_DEPT_SHARE = 0.05  # ...instead of the category's department
CONTACT_SHARE = 0.6  # reports from other channels than the patrol that leave a name and a number

# ---- a case's life
INVALID_RATE = {"patrol": 0.03, "hotline": 0.09, "police": 0.06, "wechat": 0.12, "video": 0.08, "leader": 0.0}
DEFAULT_INVALID_RATE = 0.05
SELF_HANDLED_RATE_PATROL = 0.22  # patrol reports (not grade A) closed on the spot
REWORK_RATE = 0.07  # chance, after each feedback, that verification returns the case
REWORK_PACE = 0.5  # feedback after a return takes this share of the department's pace
MAX_SCRIPT_STEPS = 12
EVALUATED_RATE = 0.75
# The centre's interventions (each once at most per case): a department declines a case as
# not its own and the centre routes it to another (退单 + 改派), the centre re-routes a case
# straight away (改派), a department is granted more time (延期), the centre presses a slow
# department (督办; mostly those that run late).
DECLINE_RATE = 0.02
REDISPATCH_RATE = 0.02
EXTENSION_RATE = 0.03
EXTENSION_DAYS = (1, 5)  # an extension adds this many days to the deadline (uniform, whole days)
SUPERVISE_RATE = {False: 0.01, True: 0.12}  # by whether the department is one of the slow ones
SLOW_PACE_FROM = 0.9  # a department this slow (share of the handling time) counts as slow
NOTES = {
    "decline": ("不属于本部门职责范围", "权属不清，请中心重新派遣", "应由属地镇街处置"),
    "extend": ("需协调多个部门，申请延期", "等待材料配件到位", "涉及施工审批，需延长处置时限"),
    "supervise": ("请加快处置进度", "群众多次反映，请尽快办结", "已临近时限，请优先处置"),
}
# Each step's share of its stage's time: (median, sigma) of a lognormal; feedback at the department's pace.
STEP_SHARE = {
    "reject": (0.4, 0.5), "close_on_the_spot": (0.5, 0.4), "register": (0.35, 0.6), "dispatch": (0.3, 0.6),
    "return": (0.4, 0.5), "close": (0.3, 0.5),
}
FEEDBACK_SIGMA = 0.5
EVALUATION = -1.0  # the share of an evaluation: it comes hours after closing instead
EVALUATION_DELAY_H = (0.5, 48.0)  # the phone call after closing (uniform)
SATISFACTION_LEVELS = ["satisfied", "basic", "unsatisfied"]
SATISFACTION_ODDS = {False: [0.8, 0.15, 0.05], True: [0.55, 0.25, 0.2]}  # closed on time / late
MIN_STEP_S = 30.0
NO_DEADLINE_SPAN_S = 1800.0  # the stage time a step is a share of when the stage has no deadline (or it has passed)


@dataclass
class District:
    """What cases are drawn from: where they happen, their category, the department and its pace."""

    grid_codes: list
    grid_weights: np.ndarray
    grid_points: dict  # code -> (POINTS_PER_GRID, 2) lon/lat inside the grid
    worker_of_grid: dict
    detail_codes: list
    detail_weights: np.ndarray
    departments: list
    dept_speed: dict  # department -> median share of the handling time it takes
    places: dict = field(default_factory=dict)  # basic grid code -> names of its community and town (for descriptions)

    def pace_of(self, dept: str) -> float:
        return self.dept_speed.get(dept, DEFAULT_PACE)


def points_inside(polygons: np.ndarray, count: int, rng) -> np.ndarray:
    """``count`` random points inside each polygon, as (len(polygons), count, 2) lon/lat (vectorised)."""
    n = len(polygons)
    result = np.full((n, count, 2), np.nan)
    filled = np.zeros(n, dtype=int)
    bounds = shapely.bounds(polygons).reshape(n, 4)
    todo = np.arange(n)
    for _ in range(30):
        if not todo.size:
            break
        tries = count * 3
        box = bounds[todo]
        xs = rng.uniform(box[:, 0:1], box[:, 2:3], (todo.size, tries))
        ys = rng.uniform(box[:, 1:2], box[:, 3:4], (todo.size, tries))
        inside = shapely.contains_xy(polygons[todo][:, None], xs, ys)
        slot = np.cumsum(inside, axis=1) - 1 + filled[todo][:, None]
        take = inside & (slot < count)
        rows, cols = np.nonzero(take)
        result[todo[rows], slot[rows, cols], 0] = xs[rows, cols]
        result[todo[rows], slot[rows, cols], 1] = ys[rows, cols]
        filled[todo] = np.minimum(count, filled[todo] + inside.sum(axis=1))
        todo = todo[filled[todo] < count]
    for index in todo:  # slivers: repeat what was found, or the polygon's representative point
        if filled[index]:
            result[index, filled[index]:] = result[index, np.arange(count - filled[index]) % filled[index]]
        else:
            point = polygons[index].representative_point() if not polygons[index].is_empty else shapely.Point(np.nan, np.nan)
            result[index, :] = (point.x, point.y)
    return result


def draw_district(
    grid_codes,
    populations,
    grid_points: np.ndarray,
    staff,
    rules: Rules,
    departments,
    rng,
    paces: dict | None = None,
    places: dict | None = None,
) -> District:
    """The district cases are drawn from: basic grids (codes, populations, their
    ``points_inside``), grid workers (id, grid code), the catalogue and departments.

    ``paces``: departments' known share of the handling time, which replace the random draw
    so the departments late in the record stay late. ``places``: each grid's community and
    town names, which the cases' descriptions name their streets after.
    """
    codes = list(grid_codes)
    population = np.array([float(p) if p else DEFAULT_POPULATION for p in populations])
    hot = rng.choice(len(codes), size=max(1, len(codes) // HOT_SPOT_EVERY), replace=False)
    population[hot] *= HOT_SPOT_FACTOR
    details = sorted(code for code, category in rules.categories.items() if category.is_detail)
    ranks = rng.permutation(len(details)) + 1
    weights = 1.0 / ranks**CATEGORY_RANK_EXPONENT if len(details) else np.array([])
    departments = sorted(departments)
    speed = {code: float(rng.lognormal(math.log(DEPT_PACE[0]), DEPT_PACE[1])) for code in departments}
    for code in rng.choice(departments, size=min(SLOW_DEPARTMENTS, len(departments)), replace=False) if departments else ():
        speed[str(code)] = float(rng.uniform(*SLOW_PACE))
    speed.update({dept: pace for dept, pace in (paces or {}).items() if dept in speed})
    worker_of_grid: dict = {}
    for worker, grid in sorted(staff):
        worker_of_grid.setdefault(grid, worker)
    return District(
        grid_codes=codes,
        grid_weights=population / population.sum(),
        grid_points={code: grid_points[i] for i, code in enumerate(codes)},
        worker_of_grid=worker_of_grid,
        detail_codes=details,
        detail_weights=weights / weights.sum() if len(details) else weights,
        departments=departments,
        dept_speed=speed,
        places=dict(places or {}),
    )


def arrival_times(start: datetime, end: datetime, per_day: float, profile: np.ndarray, tz, rng) -> list[datetime]:
    """Arrivals in [start, end) of a non-homogeneous Poisson process by local hour profile and weekday."""
    result = []
    hour = start.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    mean_profile = profile.mean()
    while hour < end:
        rate = per_day / 24.0 * profile[hour.hour] / mean_profile * WEEKDAY_FACTOR[hour.weekday()]
        for _ in range(rng.poisson(rate)):
            moment = hour + timedelta(seconds=float(rng.uniform(0, 3600)))
            if start <= moment < end:
                result.append(moment)
        hour += timedelta(hours=1)
    return sorted(result)


def case_script(source: str, district: District, rules: Rules, rng) -> list[tuple[dict, float]]:
    """A new case's whole life: its report (where, what, who) and the ``lifecycle_steps`` after it."""
    grid = district.grid_codes[rng.choice(len(district.grid_codes), p=district.grid_weights)]
    category = rules.categories[district.detail_codes[rng.choice(len(district.detail_codes), p=district.detail_weights)]]
    lon, lat = district.grid_points[grid][rng.integers(len(district.grid_points[grid]))]
    report = {
        "action": "report", "grid": grid, "category": category.code, "source": source,
        "lat": round(float(lat), 6), "lon": round(float(lon), 6),
        "worker": district.worker_of_grid.get(grid) if source == "patrol" else None,
    }
    if source != "patrol" and rng.random() < CONTACT_SHARE:
        report["reporter"] = rng.choice(list(SURNAMES)) + "先生" if rng.random() < 0.5 else rng.choice(list(SURNAMES)) + "女士"
        report["contact"] = f"1{rng.choice([3, 5, 8, 9])}{rng.integers(100_000_000, 1_000_000_000)}"
    report["description"] = case_description(source, category, grid, (lon, lat), district, rules)
    local = rng.random() <= LOCAL_DEPT_SHARE and LOCAL_DEPT in district.departments
    dept = LOCAL_DEPT if local else category.dept
    return [(report, 0.0)] + lifecycle_steps("reported", source, category.grade, dept, district.pace_of(dept), rng, district.departments)


def case_description(source: str, category, grid: str, point, district: District, rules: Rules) -> str:
    """The report's description (``case_texts.describe``), drawn from a generator of its own
    seeded by the case's place, so that the texts change nothing else the model draws."""
    major = category
    while major.parent and major.parent in rules.categories:
        major = rules.categories[major.parent]
    text_rng = np.random.default_rng(zlib.crc32(f"{grid}|{category.code}|{point[0]:.6f}|{point[1]:.6f}".encode()))
    return describe(source, category.name, major.name, district.places.get(grid, ()), text_rng)


def remaining_steps(case: Case, district: District, rules: Rules, rng) -> list[tuple[dict, float]]:
    """The rest of an open case's life from its status."""
    dept = case.dept or rules.categories[case.category].dept
    return lifecycle_steps(case.status, case.source, case.grade, dept, district.pace_of(dept), rng, district.departments)


def lifecycle_steps(status: str, source: str, grade: str, dept: str, speed: float, rng, departments=()) -> list[tuple[dict, float]]:
    """The rest of a case's life from ``status``: feed events and, for each, the share of its
    stage's time it takes (``EVALUATION``: hours after closing). Rejection, on-the-spot
    handling, department speed, rework, the centre's interventions (with other ``departments``
    to re-route to) and evaluation follow the module's rates."""
    steps: list[tuple[dict, float]] = []
    if status == "reported":
        if rng.random() < INVALID_RATE.get(source, DEFAULT_INVALID_RATE):
            return [({"action": "reject"}, stage_fraction(rng, *STEP_SHARE["reject"]))]
        if source == "patrol" and grade != "A" and rng.random() < SELF_HANDLED_RATE_PATROL:
            return [({"action": "close"}, stage_fraction(rng, *STEP_SHARE["close_on_the_spot"]))]
        steps.append(({"action": "register"}, stage_fraction(rng, *STEP_SHARE["register"])))
        status = "registered"
    if status == "registered":
        steps.append(({"action": "dispatch", "dept": dept}, stage_fraction(rng, *STEP_SHARE["dispatch"])))
        status = "dispatched"
    if status == "dispatched":
        steps += intervention_steps(dept, speed, rng, [d for d in departments if d != dept])
        steps.append(({"action": "feedback"}, stage_fraction(rng, speed, FEEDBACK_SIGMA)))
    while rng.random() < REWORK_RATE and len(steps) < MAX_SCRIPT_STEPS:
        steps += [
            ({"action": "return"}, stage_fraction(rng, *STEP_SHARE["return"])),
            ({"action": "feedback"}, stage_fraction(rng, speed * REWORK_PACE, FEEDBACK_SIGMA)),
        ]
    steps.append(({"action": "close"}, stage_fraction(rng, *STEP_SHARE["close"])))
    if rng.random() < EVALUATED_RATE:
        steps.append(({"action": "evaluate", "satisfaction": None}, EVALUATION))
    return steps


def intervention_steps(dept: str, speed: float, rng, others: list) -> list[tuple[dict, float]]:
    """What the centre does to a dispatched case before its feedback, if anything."""
    steps: list[tuple[dict, float]] = []
    draw = rng.random()
    if others and draw < DECLINE_RATE + REDISPATCH_RATE:
        other = str(others[rng.integers(len(others))])
        if draw < DECLINE_RATE:
            steps += [({"action": "decline", "dept": dept, "note": _note("decline", rng)}, stage_fraction(rng, 0.1, 0.5)),
                      ({"action": "dispatch", "dept": other}, stage_fraction(rng, *STEP_SHARE["dispatch"]))]
        else:
            steps.append(({"action": "dispatch", "dept": other}, stage_fraction(rng, 0.1, 0.5)))
    elif draw < DECLINE_RATE + REDISPATCH_RATE + EXTENSION_RATE:
        steps.append(({"action": "extend", "days": int(rng.integers(EXTENSION_DAYS[0], EXTENSION_DAYS[1] + 1)), "note": _note("extend", rng)},
                      stage_fraction(rng, 0.3, 0.5)))
    if rng.random() < SUPERVISE_RATE[speed >= SLOW_PACE_FROM]:
        steps.append(({"action": "supervise", "note": _note("supervise", rng)}, stage_fraction(rng, 0.5, 0.3)))
    return steps


def _note(action: str, rng) -> str:
    return NOTES[action][rng.integers(len(NOTES[action]))]


def stage_fraction(rng, median: float, sigma: float) -> float:
    """How much of the current stage's time the next step takes (lognormal)."""
    return float(rng.lognormal(math.log(median), sigma))


def next_step_at(case: Case, ts: datetime, fraction: float, rng) -> datetime:
    """When a case's next step happens after ``ts``: ``fraction`` of its current stage's time
    (at least MIN_STEP_S), or, for an evaluation, hours after closing."""
    if fraction < 0:
        return ts + timedelta(hours=float(rng.uniform(*EVALUATION_DELAY_H)))
    deadline = case.stage_deadline
    span = deadline - ts if deadline is not None and deadline > ts else timedelta(seconds=NO_DEADLINE_SPAN_S)
    return ts + max(timedelta(seconds=MIN_STEP_S), span * fraction)


def step_event(case: Case | None, fields: dict, event_id: str, case_id: str, ts: datetime, rng) -> CaseEvent:
    """The event of a script's step at ``ts``; an evaluation's satisfaction depends on whether the case closed late."""
    fields = dict(fields)
    if fields["action"] == "extend":  # the approved deadline: days after the current one
        fields["deadline"] = case.deadline + timedelta(days=fields.pop("days"))
    if fields["action"] == "evaluate":
        late = case.deadline is not None and case.closed_at > case.deadline
        fields["satisfaction"] = str(rng.choice(SATISFACTION_LEVELS, p=SATISFACTION_ODDS[late]))
    return CaseEvent(event_id=event_id, case_id=case_id, ts=ts, actor=actor_of(fields, case), **fields)


def actor_of(fields: dict, case: Case | None) -> str:
    action = fields["action"]
    if action == "report":
        return fields.get("worker") or fields["source"]
    if action in ("feedback", "decline"):
        return case.dept or "dept"
    if action == "evaluate":
        return "citizen"
    return "centre"
