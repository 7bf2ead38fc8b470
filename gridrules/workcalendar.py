"""The working calendar: working days, working hours, public holidays and make-up days.

Chinese calendars move working days around public holidays (调休): a Saturday or Sunday
can be a working day and a weekday a holiday. Limits counted in working time use this.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_SEARCH_DAYS = 3660  # a limit that does not fit in ten years of calendar is a configuration error


class CalendarError(ValueError):
    """The calendar configuration is malformed."""


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods (minutes after local midnight) on working days in one time zone."""

    tz: ZoneInfo
    periods: tuple[tuple[int, int], ...] = ((510, 720), (810, 1050))
    weekend: frozenset[int] = frozenset({6, 7})
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()

    def __post_init__(self):
        previous_end = -1
        for begin, end in self.periods:
            if not 0 <= begin < end <= 1440 or begin < previous_end:
                raise CalendarError(f"working periods must be ordered, non-overlapping and within a day: {self.periods}")
            previous_end = end
        if not self.periods:
            raise CalendarError("a working calendar needs at least one working period")

    @property
    def minutes_per_day(self) -> int:
        """Working minutes in one working day (the length of ``1wd``)."""
        return sum(end - begin for begin, end in self.periods)

    def is_working_day(self, day: date) -> bool:
        """Make-up days work, holidays rest, otherwise the weekend rests."""
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.isoweekday() not in self.weekend

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant after ``minutes`` of working time from ``start`` (aware datetimes)."""
        if minutes < 0:
            raise ValueError("cannot add negative working time")
        local = start.astimezone(self.tz)
        day = local.date()
        minute_of_day = (local - _midnight(day, self.tz)).total_seconds() / 60.0
        remaining = float(minutes)
        if remaining == 0:
            return start
        for _ in range(MAX_SEARCH_DAYS):
            if self.is_working_day(day):
                for begin, end in self.periods:
                    open_from = max(begin, minute_of_day)
                    if open_from >= end:
                        continue
                    available = end - open_from
                    if remaining <= available:
                        return _midnight(day, self.tz) + timedelta(minutes=open_from + remaining)
                    remaining -= available
            day += timedelta(days=1)
            minute_of_day = 0.0
        raise CalendarError(f"{minutes} working minutes from {start} do not fit in {MAX_SEARCH_DAYS} days")

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end); zero when end is not after start."""
        if end <= start:
            return 0.0
        first = start.astimezone(self.tz)
        last = end.astimezone(self.tz)
        total = 0.0
        day = first.date()
        while day <= last.date():
            if self.is_working_day(day):
                midnight = _midnight(day, self.tz)
                lo = (first - midnight).total_seconds() / 60.0 if day == first.date() else 0.0
                hi = (last - midnight).total_seconds() / 60.0 if day == last.date() else 1440.0
                for begin, end_minute in self.periods:
                    total += max(0.0, min(end_minute, hi) - max(begin, lo))
            day += timedelta(days=1)
        return total


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def calendar_from_config(config: dict, tz: ZoneInfo) -> WorkCalendar:
    """Build the calendar from the ``[calendar]`` table of the configuration file."""
    try:
        periods = tuple(_parse_period(text) for text in config.get("working_periods", ["08:30-12:00", "13:30-17:30"]))
        weekend = frozenset(int(d) for d in config.get("weekend", [6, 7]))
        holidays = frozenset(_dates(config.get("holidays", {})))
        makeup = frozenset(_dates(config.get("makeup_workdays", {})))
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"[calendar] in the configuration file: {exc}") from None
    clash = holidays & makeup
    if clash:
        raise CalendarError(f"[calendar] dates both holiday and make-up working day: {sorted(clash)}")
    return WorkCalendar(tz=tz, periods=periods, weekend=weekend, holidays=holidays, makeup_workdays=makeup)


def _parse_period(text: str) -> tuple[int, int]:
    begin, end = text.split("-")
    return _minutes(begin), _minutes(end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 1440:
        raise ValueError(f"{hhmm!r} is not a time of day")
    return value


def _dates(by_year: dict):
    for year, days in by_year.items():
        for text in days:
            day = date.fromisoformat(text)
            if str(day.year) != str(year):
                raise ValueError(f"{text} is listed under year {year}")
            yield day
