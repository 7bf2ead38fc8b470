"""The patrol rounds (一日双巡): when grid workers walk their grids, and how keenly.

One set of figures for the demo's patrol history (``data_feeds.demo``) and the simulator's
devices (``data_feeds.simulator``); ``round_schedule`` draws a day's rounds for every worker.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

import numpy as np

from gridrules.workcalendar import WorkCalendar

ROUND_STARTS = (time(8, 30), time(14, 30))
ROUND_MINUTES = 90
ROUND_JITTER_MIN = 20.0  # a round starts up to this many minutes before or after its time
ROUND_LENGTH_FACTOR = (0.7, 1.2)  # of ROUND_MINUTES
DILIGENCE_BETA = (6.0, 1.5)  # share of rounds a worker walks (beta)
REST_DAY_SECOND_ROUND = 0.3  # on rest days the afternoon round is mostly skipped
EBIKE_SHARE = 0.3  # grid workers on e-bikes (the rest walk)
WALK_SPEED_MPS = 1.2
# Expected hours on round per worker and working day: what patrol reports are spread over.
EXPECTED_DUTY_H = (
    DILIGENCE_BETA[0] / sum(DILIGENCE_BETA) * len(ROUND_STARTS) * ROUND_MINUTES / 60.0 * sum(ROUND_LENGTH_FACTOR) / 2.0
)


def epoch(day: date, clock: time, tz) -> float:
    return datetime.combine(day, clock, tzinfo=tz).timestamp()


def daytime_shift_minutes(district_tz: tzinfo, viewer_tz: tzinfo, at: datetime) -> int:
    """How far to move the rounds (minutes, 0 to 1439) so that they fall at ROUND_STARTS in the
    viewer's time zone: a demo tried abroad then shows workers on patrol in the viewer's day."""
    offset = at.astimezone(district_tz).utcoffset() - at.astimezone(viewer_tz).utcoffset()
    return int(offset / timedelta(minutes=1)) % (24 * 60)


def round_schedule(day: date, diligence: np.ndarray, calendar: WorkCalendar, seed: int, shift_minutes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each worker's round starts and ends (epoch seconds; inf when skipped) on a local day.

    Two rounds a day (ROUND_STARTS, about ROUND_MINUTES each, starting up to
    ROUND_JITTER_MIN early or late); a worker walks a round with probability ``diligence``,
    the afternoon one on rest days much less often. One draw per day and seed. ``shift_minutes``
    moves the rounds' clock times (within the day: see ``daytime_shift_minutes``); 0 in production.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    n = diligence.size
    working = calendar.is_working_day(day)
    starts = np.full((n, len(ROUND_STARTS)), np.inf)
    ends = np.full((n, len(ROUND_STARTS)), np.inf)
    for number, clock in enumerate(ROUND_STARTS):
        minute = (clock.hour * 60 + clock.minute + shift_minutes) % (24 * 60)
        begin = epoch(day, time(minute // 60, minute % 60), calendar.tz)
        offset = rng.uniform(-ROUND_JITTER_MIN, ROUND_JITTER_MIN, n) * 60.0
        length = ROUND_MINUTES * 60.0 * rng.uniform(*ROUND_LENGTH_FACTOR, n)
        chance = diligence if number == 0 or working else diligence * REST_DAY_SECOND_ROUND
        walked = rng.random(n) < chance
        starts[walked, number] = begin + offset[walked]
        ends[walked, number] = starts[walked, number] + length[walked]
    return starts, ends


def in_round(starts: np.ndarray, ends: np.ndarray, t) -> np.ndarray:
    """Whether each worker is inside one of its rounds at ``t`` (scalar or per worker)."""
    t = np.asarray(t, dtype=float)
    t = t[:, None] if t.ndim else t
    return ((starts <= t) & (t < ends)).any(axis=1)
