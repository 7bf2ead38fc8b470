"""Local-time windows: today, a week (Monday to Sunday), the period before, API parameters."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from dashboard.indicators import Window


class WindowError(ValueError):
    """A start or end parameter that cannot be understood."""


def local_midnight(day: date, tz) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def day_window(day: date, tz, now: datetime) -> Window:
    """One local calendar day."""
    start = local_midnight(day, tz)
    return Window.until_now(start, local_midnight(day + timedelta(days=1), tz), now)


def today(tz, now: datetime) -> Window:
    """Today, local time, with states read now."""
    return day_window(now.astimezone(tz).date(), tz, now)


def week_of(day: date, tz, now: datetime) -> Window:
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


def parse_moment(text: str, tz) -> datetime:
    """ISO 8601 date or date-time; a naive value is local time, a bare date its local midnight."""
    try:
        if len(text) == 10:
            return local_midnight(date.fromisoformat(text), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-22 or 2026-11-22T09:15:03+08:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def window_from_params(start: str | None, end: str | None, tz, now: datetime) -> Window:
    """The window of ``?start=&end=``; both default to today (local)."""
    default = today(tz, now)
    begin = parse_moment(start, tz) if start else default.start
    finish = parse_moment(end, tz) if end else (default.end if not start else max(default.end, begin + timedelta(days=1)))
    if finish <= begin:
        raise WindowError("end must be after start")
    return Window.until_now(begin, finish, now)
