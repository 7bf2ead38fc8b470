"""Local-time windows: today, a week (Monday to Sunday), the period before, API parameters.

Every window built from a caller's input (``?start=&end=``, the review's custom dates, the
weekly ``?week=``) goes through ``bounded``: dates from 2000-01-01 to a year ahead, windows of
at most ``max_days`` (gridrules.bounds), so no request can ask for a century or overflow a date.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, tzinfo

from gridrules import bounds
from gridrules.indicators import Window


class WindowError(ValueError):
    """A start, end or week the caller got wrong: ``reason`` (not_a_moment, not_a_week,
    end_before_start, too_early, too_late, too_long) and the ``values`` its message names.
    The words, in the caller's language, are the interface's (``dashboard.i18n.window_error_text``)."""

    def __init__(self, reason: str, **values):
        self.reason, self.values = reason, values
        super().__init__(f"{reason}: {values}")


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def day_window(day: date, tz: tzinfo, now: datetime) -> Window:
    """One local calendar day."""
    start = local_midnight(day, tz)
    return Window.until_now(start, local_midnight(day + timedelta(days=1), tz), now)


def today(tz: tzinfo, now: datetime) -> Window:
    """Today, local time, with states read now."""
    return day_window(now.astimezone(tz).date(), tz, now)


def week_of(day: date, tz: tzinfo, now: datetime) -> Window:
    """The Monday-to-Sunday week containing ``day``, local time."""
    monday = day - timedelta(days=day.weekday())
    return Window.until_now(local_midnight(monday, tz), local_midnight(monday + timedelta(days=7), tz), now)


def previous_period(window: Window, now: datetime) -> Window:
    """The window of the same length just before ``window`` (calendar days when day-aligned).

    A window still running is compared with the same elapsed part of the one before (today
    until 10:00 with yesterday until 10:00), not with the whole of it.
    """
    length = window.end - window.start
    start = window.start - length
    end = window.start if window.asof >= window.end else start + (window.asof - window.start)
    return Window.until_now(start, max(end, start + timedelta(seconds=1)), now)


def earliest(tz: tzinfo) -> datetime:
    return local_midnight(bounds.EARLIEST_DAY, tz)


def latest_day(tz: tzinfo, now: datetime) -> date:
    """The last day a caller may name: a year (``FUTURE_DAYS``) after today, local time."""
    return now.astimezone(tz).date() + timedelta(days=bounds.FUTURE_DAYS)


def latest(tz: tzinfo, now: datetime) -> datetime:
    """The last moment a caller may name: the end of ``latest_day`` (a window's exclusive end)."""
    return local_midnight(latest_day(tz, now) + timedelta(days=1), tz)


def check_moment(moment: datetime, tz: tzinfo, now: datetime) -> datetime:
    """``moment`` when it lies from 2000-01-01 to a year ahead (local), else WindowError.

    Compared as instants, so an offset cannot carry a date past the bounds; and checked
    before any arithmetic on it, which could overflow near year 1 or 9999.
    """
    text = _shown(moment)
    if moment < earliest(tz):
        raise WindowError("too_early", moment=text, earliest=bounds.EARLIEST_DAY.isoformat())
    if moment > latest(tz, now):
        raise WindowError("too_late", moment=text, latest=latest_day(tz, now).isoformat())
    return moment


def _shown(moment: datetime) -> str:
    """A moment for a message, in its own wall time (a conversion could overflow near year 1)."""
    return moment.date().isoformat() if moment.time() == time(0) else f"{moment.date().isoformat()} {moment:%H:%M}"


def parse_moment(text: str, tz: tzinfo, now: datetime) -> datetime:
    """ISO 8601 date or date-time within the bounds; a naive value is local time, a bare date
    its local midnight."""
    try:
        if len(text) == 10:
            moment = local_midnight(date.fromisoformat(text), tz)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError("not_a_moment", text=repr(text[:40])) from None
    return check_moment(moment if moment.tzinfo else moment.replace(tzinfo=tz), tz, now)


def bounded(start: datetime, end: datetime, tz: tzinfo, now: datetime, max_days: int) -> Window:
    """The window [start, end) when both ends lie within the bounds and it is at most
    ``max_days`` long; WindowError otherwise."""
    check_moment(start, tz, now)
    check_moment(end, tz, now)
    if end <= start:
        raise WindowError("end_before_start")
    if end - start > timedelta(days=max_days):
        raise WindowError("too_long", days=max_days, asked=math.ceil((end - start) / timedelta(days=1)))
    return Window.until_now(start, end, now)


def window_from_params(start: str | None, end: str | None, tz: tzinfo, now: datetime, max_days: int = bounds.MAX_WINDOW_DAYS) -> Window:
    """The window of ``?start=&end=``; both default to today (local); bounded."""
    default = today(tz, now)
    begin = parse_moment(start, tz, now) if start else default.start
    finish = parse_moment(end, tz, now) if end else (default.end if not start else max(default.end, begin + timedelta(days=1)))
    return bounded(begin, finish, tz, now, max_days)


def week_from_param(text: str | None, tz: tzinfo, now: datetime) -> date:
    """The Monday of ``?week=YYYY-MM-DD`` (any day of the week), within the bounds; this
    week when empty."""
    if not text:
        return week_start(now.astimezone(tz).date())
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise WindowError("not_a_week", text=repr(text[:40])) from None
    monday = week_start(check_moment(local_midnight(day, tz), tz, now).date())
    check_moment(local_midnight(monday, tz), tz, now)  # 2000-01-01 is a Saturday: its week began before
    return monday


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


# ---------------------------------------------------------------- assessment periods (考核周期)

PERIOD_KINDS = ("week", "month", "quarter")


def period_start(kind: str, day: date) -> date:
    """The first day of the week (Monday), month or quarter that contains ``day``."""
    if kind == "week":
        return week_start(day)
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise WindowError("not_a_period", text=repr(str(kind)[:40]))


def period_shift(kind: str, first: date, periods: int) -> date:
    """The first day of the period ``periods`` after (negative: before) the one starting ``first``."""
    if kind == "week":
        return first + timedelta(weeks=periods)
    months = (first.month - 1) + periods * (3 if kind == "quarter" else 1)
    return date(first.year + months // 12, months % 12 + 1, 1)


def period_window(kind: str, first: date, tz: tzinfo, now: datetime) -> Window:
    """The period starting ``first`` (local midnight to the next period's), states read now."""
    return Window.until_now(local_midnight(first, tz), local_midnight(period_shift(kind, first, 1), tz), now)


def period_before(kind: str, window: Window, now: datetime) -> Window:
    """The period of the same kind just before ``window`` (the calendar month or quarter, not the
    same number of days). A period still running is compared with the same elapsed part of the
    one before, never past that one's end (the 31st of a month against a 30-day month)."""
    first = window.start.date()
    start = local_midnight(period_shift(kind, first, -1), window.start.tzinfo)
    end = window.start if window.asof >= window.end else min(start + (window.asof - window.start), window.start)
    return Window.until_now(start, max(end, start + timedelta(seconds=1)), now)


def period_from_params(kind: str | None, start: str | None, tz: tzinfo, now: datetime) -> tuple[str, date]:
    """``?period=week|month|quarter&start=YYYY-MM-DD``: the kind (``week`` when empty) and the
    first day of the period containing ``start`` (the last complete period when empty), within
    the bounds; WindowError otherwise."""
    kind = kind or "week"
    if kind not in PERIOD_KINDS:
        raise WindowError("not_a_period", text=repr(kind[:40]))
    if not start:
        return kind, last_complete_period(kind, tz, now)
    try:
        day = date.fromisoformat(start)
    except ValueError:
        raise WindowError("not_a_week", text=repr(start[:40])) from None
    first = period_start(kind, check_moment(local_midnight(day, tz), tz, now).date())
    check_moment(local_midnight(first, tz), tz, now)  # 2000-01-01 is a Saturday: its week began before
    return kind, first


def last_complete_period(kind: str, tz: tzinfo, now: datetime) -> date:
    """The first day of the last period of ``kind`` that has ended (what a meeting looks back on)."""
    return period_shift(kind, period_start(kind, now.astimezone(tz).date()), -1)


def recent_periods(kind: str, first: date, count: int) -> list[date]:
    """The first days of ``count`` periods ending with the one starting ``first``, oldest first."""
    return [period_shift(kind, first, back) for back in range(1 - count, 1)]
