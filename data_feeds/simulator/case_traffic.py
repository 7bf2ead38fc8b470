"""The cases on the ``case-events`` stream: arrivals from patrol (a worker on a round, where
they stand), the 12345 hotline, 110 transfers, WeChat, video analytics and leaders, then each
case's whole life, all drawn by ``data_feeds.case_model`` (as the demo's history is) and
applied by the rules of ``gridrules.lifecycle``. Cases already open in the database are
picked up and moved along the same way.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from data_feeds.case_model import (
    CASES_PER_DAY,
    DAY_PROFILE,
    REFERENCE_GRIDS,
    SOURCE_MIX,
    arrival_times,
    case_description,
    case_script,
    next_step_at,
    remaining_steps,
    step_event,
)
from data_feeds.feed_contract import case_message
from data_feeds.patrol_rounds import EXPECTED_DUTY_H
from data_feeds.simulator.patrol_gps import PatrolState
from data_feeds.simulator.world import World
from gridrules.lifecycle import OPEN_STATUSES, Case, apply_event

log = logging.getLogger(__name__)

LOCATED_SHARE = {"hotline": 0.5, "wechat": 0.5, "police": 0.3}  # reports sent without a grid: located from lat/lon
LEADER_GRADE_A_SHARE = 0.5  # a leader's assignment is often made urgent
BACKLOG_SPREAD_S = 3600.0  # open cases already late at start move within about this long, not all at once


@dataclass
class SimCase:
    """A case the simulator drives: its state as the consumer will hold it and the steps to come."""

    case_id: str
    case: Case | None
    steps: list  # remaining (fields, fraction of the stage time) as case_model.case_script makes them
    due: datetime  # when the next step happens
    event_prefix: str
    events: int = 0
    send_grid: bool = True


def default_rate_per_hour(world: World) -> float:
    """The case model's ~380 cases a day, more in a district with more than its 900 grids."""
    return CASES_PER_DAY / 24.0 * max(1.0, len(world.grid_codes) / REFERENCE_GRIDS)


class CaseTraffic:
    """The cases in play: new ones arrive, each step happens when it is due, in time order."""

    def __init__(self, world: World, rng, run_id: str, rate_per_hour: float, backlog_spread_s: float = BACKLOG_SPREAD_S):
        self.world = world
        self.rng = rng
        self.run_id = run_id
        self.rate_per_hour = rate_per_hour
        self.backlog_spread_s = backlog_spread_s
        share = SOURCE_MIX["patrol"] * rate_per_hour * 24.0
        self.patrol_rate_per_worker_h = share / (world.staff_size * EXPECTED_DUTY_H) if world.staff_size else 0.0
        self.active: dict[str, SimCase] = {}
        self.counts: Counter = Counter()
        self._queue: list = []
        self._order = itertools.count()
        self._numbers = itertools.count(1)

    def arrive(self, start: datetime, end: datetime, patrol: PatrolState, on_round: np.ndarray) -> None:
        """The cases reported in (start, end]: other channels by the day's rhythm, patrol reports
        from the workers ``on_round`` (indices), where they stand."""
        rng, tz = self.rng, self.world.tz
        for source, share in SOURCE_MIX.items():
            if source != "patrol" and share > 0:
                # arrival_times keeps arrivals in [start, end): a stamp is never after ``end``.
                for moment in arrival_times(start, end, self.rate_per_hour * 24.0 * share, DAY_PROFILE, tz, rng):
                    self._open(moment, source, None, patrol)
        if on_round.size and self.patrol_rate_per_worker_h > 0:
            hours = (end - start).total_seconds() / 3600.0
            count = rng.poisson(self.patrol_rate_per_worker_h * on_round.size * hours)
            for worker in rng.choice(on_round, size=count):
                rounds = patrol.starts[worker][(patrol.starts[worker] <= end.timestamp()) & (end.timestamp() < patrol.ends[worker])]
                earliest = max(start.timestamp(), float(rounds.max()) if rounds.size else start.timestamp())
                moment = datetime.fromtimestamp(float(rng.uniform(earliest, end.timestamp())), UTC)
                self._open(min(moment, end), "patrol", int(worker), patrol)

    def _open(self, moment: datetime, source: str, worker: int | None, patrol: PatrolState) -> None:
        """A new case from ``source``: its whole script, drawn by the case model."""
        rng, world = self.rng, self.world
        case_id = f"S{moment.astimezone(world.tz):%Y%m%d}-{self.run_id}-{next(self._numbers):05d}"
        script = case_script(source, world.script_district, world.rules, rng)
        report = dict(script[0][0])
        if worker is not None:  # where the worker stands, in the worker's own grid
            report.update(grid=world.grid_codes[world.worker_grid[worker]], lon=float(patrol.x[worker]),
                          lat=float(patrol.y[worker]), worker=str(world.workers[worker]))
        if worker is not None:
            category = world.rules.categories[report["category"]]
            report["description"] = case_description(source, category, report["grid"], (report["lon"], report["lat"]), world.script_district, world.rules)
        if source == "leader" and rng.random() < LEADER_GRADE_A_SHARE:
            report["grade"] = "A"
        send_grid = not (rng.random() < LOCATED_SHARE.get(source, 0.0))
        script[0] = (report, 0.0)
        self._schedule(SimCase(case_id, None, script, moment, event_prefix=case_id, send_grid=send_grid))

    def resume(self, case: Case, now: datetime) -> None:
        """An open case from the database: its next step at its pace, or soon if it is already late."""
        category = self.world.rules.categories.get(case.category)
        if case.status not in OPEN_STATUSES or category is None or not category.is_detail:
            return
        rng = self.rng
        steps = remaining_steps(case, self.world.script_district, self.world.rules, rng)
        due = next_step_at(case, case.updated_at, steps[0][1], rng)
        if due <= now:
            due = now + timedelta(seconds=float(rng.exponential(self.backlog_spread_s)))
        self._schedule(SimCase(case.case_id, case, steps, due, event_prefix=f"{case.case_id}-{self.run_id}"))

    def _schedule(self, item: SimCase) -> None:
        self.active[item.case_id] = item
        heapq.heappush(self._queue, (item.due, next(self._order), item.case_id))

    def play(self, until: datetime) -> tuple[list, list]:
        """Every step due by ``until``, in time order, applied by the lifecycle rules: the
        messages and the case after each."""
        rng, rules, tz = self.rng, self.world.rules, self.world.tz
        messages, cases = [], []
        while self._queue and self._queue[0][0] <= until:
            _, _, case_id = heapq.heappop(self._queue)
            item = self.active[case_id]
            fields, _ = item.steps.pop(0)
            event = step_event(item.case, fields, f"{item.event_prefix}-{item.events}", case_id, item.due, rng)
            try:
                after = apply_event(item.case, event, rules)
            except ValueError as error:  # cannot happen with a consistent script; never publish it
                log.error("simulated case %s stopped: %s", case_id, error)
                del self.active[case_id]
                continue
            messages.append(case_message(event, tz, item.send_grid))
            cases.append(after)
            self.counts[event.action] += 1
            item.case, item.events = after, item.events + 1
            if item.steps:
                item.due = next_step_at(after, event.ts, item.steps[0][1], rng)
                heapq.heappush(self._queue, (item.due, next(self._order), case_id))
            else:
                del self.active[case_id]
        return messages, cases
