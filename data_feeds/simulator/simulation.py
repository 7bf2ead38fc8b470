"""The simulated district at a moment: its patrol and its cases, moved on together by
``Simulation.advance`` (time is a parameter; nothing here reads the clock or publishes)."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from data_feeds.patrol_rounds import in_round
from data_feeds.simulator.case_traffic import BACKLOG_SPREAD_S, CaseTraffic, SimCase, default_rate_per_hour
from data_feeds.simulator.patrol_gps import GPS_INTERVAL_S, Pings, advance_patrol, gps_noise, new_patrol_state
from data_feeds.simulator.world import World
from gridrules.lifecycle import Case

NOISE_REPEAT_PER_EVENT = 0.01  # ``--noise``: a case event sent twice (the consumer: a duplicate)


@dataclass(frozen=True)
class SimOptions:
    seed: int = 0
    rate_per_hour: float | None = None  # mean over the day; None: default_rate_per_hour
    gps_interval_s: float = GPS_INTERVAL_S
    noise: bool = False
    backlog_spread_s: float = BACKLOG_SPREAD_S
    run_id: str | None = None  # makes case and event ids unique across runs; random when None
    rounds_shift_minutes: int = 0  # patrol rounds moved to the viewer's daytime (--daytime-rounds)


@dataclass
class Output:
    """What one advance produced, in publishing order."""

    pings: Pings
    events: list  # case-event messages (dicts of strings)
    cases: list  # the case after each (non-repeated) event, as the consumer will hold it


class Simulation:
    """The district's state at ``now``; ``advance(until)`` moves it on and returns what was sent."""

    def __init__(self, world: World, start: datetime, options: SimOptions = SimOptions(), open_cases: Iterable[Case] = ()):
        if start.tzinfo is None:
            raise ValueError("start needs a time zone")
        self.world = world
        self.options = options
        self.now = start.astimezone(UTC)
        patrol_seq, case_seq, noise_seq, schedule_seq = np.random.SeedSequence(options.seed).spawn(4)
        self.patrol_rng = np.random.default_rng(patrol_seq)
        self.noise_rng = np.random.default_rng(noise_seq)
        schedule_seed = int(schedule_seq.generate_state(1)[0])
        self.patrol = new_patrol_state(world, self.now.timestamp(), options.gps_interval_s, self.patrol_rng, schedule_seed,
                                        options.rounds_shift_minutes)
        self.run_id = options.run_id or uuid.uuid4().hex[:6]
        self.rate_per_hour = default_rate_per_hour(world) if options.rate_per_hour is None else options.rate_per_hour
        self.cases = CaseTraffic(world, np.random.default_rng(case_seq), self.run_id, self.rate_per_hour, options.backlog_spread_s)
        self.pings_sent = 0
        for case in open_cases:
            self.cases.resume(case, self.now)

    @property
    def active(self) -> dict[str, SimCase]:
        """The cases in play, by id."""
        return self.cases.active

    @property
    def counts(self):
        """Case events sent so far, by action."""
        return self.cases.counts

    def advance(self, until: datetime) -> Output:
        """Everything that happens after ``now`` up to ``until`` (inclusive); nothing is stamped later."""
        until = until.astimezone(UTC)
        if until <= self.now:
            return Output(Pings.empty(), [], [])
        pings = advance_patrol(self.patrol, self.world, until.timestamp(), self.options.gps_interval_s, self.patrol_rng)
        if self.options.noise:
            pings = gps_noise(pings, self.noise_rng)
        self.cases.arrive(self.now, until, self.patrol, self.on_round(until))
        events, cases = self.cases.play(until)
        if self.options.noise and events:
            repeat = self.noise_rng.random(len(events)) < NOISE_REPEAT_PER_EVENT
            events = [m for message, twice in zip(events, repeat) for m in ((message, message) if twice else (message,))]
        self.now = until
        self.pings_sent += len(pings)
        return Output(pings, events, cases)

    def on_round(self, at: datetime | None = None) -> np.ndarray:
        """Indices of the workers on a round whose device has reported in it."""
        moment = (at or self.now).timestamp()
        state = self.patrol
        return np.flatnonzero(state.on_round & in_round(state.starts, state.ends, moment))
