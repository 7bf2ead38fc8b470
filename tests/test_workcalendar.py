"""Working calendar: weekends, public holidays, make-up working days, working hours."""
from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest

from gridrules.limits import Limit, LimitError, StageLimits, add_limit, stage_state
from gridrules.workcalendar import CalendarError, WorkCalendar, calendar_from_config
from tests.support import TZ, local


@pytest.fixture
def cal(domain_config) -> WorkCalendar:
    return domain_config.calendar


def test_working_day_rules(cal):
    assert cal.is_working_day(date(2026, 11, 27))  # Friday
    assert not cal.is_working_day(date(2026, 11, 28))  # Saturday
    assert not cal.is_working_day(date(2026, 10, 5))  # National Day holiday, a Monday
    assert cal.is_working_day(date(2026, 10, 10))  # make-up Saturday after National Day
    assert cal.is_working_day(date(2026, 9, 20))  # make-up Sunday before it
    assert not cal.is_working_day(date(2026, 2, 16))  # Spring Festival
    assert cal.is_working_day(date(2026, 2, 14))  # make-up Saturday before it
    assert not cal.is_working_day(date(2026, 1, 1))


def test_minutes_per_day_follow_the_periods(cal):
    assert cal.minutes_per_day == 210 + 240  # 08:30–12:00 and 13:30–17:30


def test_adding_within_one_period(cal):
    assert cal.add_working_minutes(local(2026, 11, 23, 9, 0), 60) == local(2026, 11, 23, 10, 0)


def test_lunch_break_is_skipped(cal):
    assert cal.add_working_minutes(local(2026, 11, 23, 11, 30), 60) == local(2026, 11, 23, 14, 0)


def test_outside_hours_starts_at_the_next_period(cal):
    assert cal.add_working_minutes(local(2026, 11, 23, 6, 0), 30) == local(2026, 11, 23, 9, 0)
    assert cal.add_working_minutes(local(2026, 11, 23, 20, 0), 30) == local(2026, 11, 24, 9, 0)


def test_weekend_is_skipped(cal):
    assert cal.add_working_minutes(local(2026, 11, 27, 17, 0), 60) == local(2026, 11, 30, 9, 0)


def test_national_day_holiday_and_make_up_saturday(cal):
    # Wed 30 Sep 17:00 + 1 working day: 30 min on Sep 30, then Oct 1–7 holiday, Oct 8 (Thu) 08:30 + 420 min.
    start = local(2026, 9, 30, 17, 0)
    assert cal.add_working_minutes(start, cal.minutes_per_day) == local(2026, 10, 8, 17, 0)
    # Fri 9 Oct 17:00 + 1 h: the next working day is the make-up Saturday 10 Oct.
    assert cal.add_working_minutes(local(2026, 10, 9, 17, 0), 60) == local(2026, 10, 10, 9, 0)


def test_spring_festival_nine_days(cal):
    # Fri 13 Feb 17:00 + 1 h → make-up Sat 14 Feb 09:00; then 15–23 Feb rest.
    assert cal.add_working_minutes(local(2026, 2, 13, 17, 0), 60) == local(2026, 2, 14, 9, 0)
    assert cal.add_working_minutes(local(2026, 2, 14, 17, 0), 60) == local(2026, 2, 24, 9, 0)


def test_zero_minutes_is_the_start(cal):
    start = local(2026, 11, 28, 3, 0)
    assert cal.add_working_minutes(start, 0) == start


def test_negative_is_refused(cal):
    with pytest.raises(ValueError):
        cal.add_working_minutes(local(2026, 11, 23, 9), -1)


def test_working_minutes_between_inverts_adding(cal):
    start = local(2026, 9, 29, 10, 17)
    for minutes in (1, 59, 450, 1000, 3000):
        end = cal.add_working_minutes(start, minutes)
        assert cal.working_minutes_between(start, end) == pytest.approx(minutes)


def test_working_minutes_between_empty_and_reversed(cal):
    assert cal.working_minutes_between(local(2026, 11, 28, 9), local(2026, 11, 29, 18)) == 0
    assert cal.working_minutes_between(local(2026, 11, 23, 10), local(2026, 11, 23, 9)) == 0


def test_results_are_in_the_callers_instant_any_zone(cal):

    start_utc = local(2026, 11, 23, 9, 0).astimezone(UTC)
    assert cal.add_working_minutes(start_utc, 60) == local(2026, 11, 23, 10, 0)


def test_calendar_config_errors():
    with pytest.raises(CalendarError, match="both holiday and make-up"):
        calendar_from_config({"holidays": {"2026": ["2026-10-10"]}, "makeup_workdays": {"2026": ["2026-10-10"]}}, TZ)
    with pytest.raises(CalendarError, match="listed under year"):
        calendar_from_config({"holidays": {"2025": ["2026-10-01"]}}, TZ)
    with pytest.raises(CalendarError):
        calendar_from_config({"working_periods": ["12:00-08:00"]}, TZ)
    with pytest.raises(CalendarError):
        calendar_from_config({"working_periods": ["25:00-26:00"]}, TZ)


# ---------------------------------------------------------------- limits

@pytest.mark.parametrize("text,amount,unit", [("30m", 30, "m"), ("2h", 2, "h"), ("1d", 1, "d"), ("1wd", 1, "wd"), (" 3 wd ", 3, "wd"), ("1.5h", 1.5, "h")])
def test_limits_parse(text, amount, unit):
    assert Limit.parse(text) == Limit(amount, unit)


@pytest.mark.parametrize("text", ["2x", "", "h", "0h", "-1h", "2 hours", "1w", "wd1"])
def test_bad_limits_are_refused_with_the_text(text):
    with pytest.raises(LimitError, match="is not a limit"):
        Limit.parse(text)


def test_bad_calendar_kind_is_refused():
    with pytest.raises(LimitError, match="lunar"):
        StageLimits.parse("1h", "1h", "1h", "1h", "lunar")


def test_add_limit_natural_working_days_and_days(cal):
    friday = local(2026, 11, 27, 16, 0)
    assert add_limit(friday, Limit(2, "h"), "natural", cal) == local(2026, 11, 27, 18, 0)
    assert add_limit(friday, Limit(2, "h"), "working", cal) == local(2026, 11, 30, 9, 0)
    assert add_limit(friday, Limit(1, "d"), "working", cal) == friday + timedelta(days=1)  # d is always natural
    assert add_limit(friday, Limit(1, "wd"), "natural", cal) == local(2026, 11, 30, 16, 0)  # wd is always working
    assert add_limit(friday, Limit(2, "h"), "natural", cal, fraction=0.8) == friday + timedelta(minutes=96)


def test_stage_state_thresholds():
    start = local(2026, 11, 23, 9, 0)
    deadline = start + timedelta(hours=1)
    due_soon = start + timedelta(minutes=48)
    assert stage_state(start + timedelta(minutes=47), deadline, due_soon) == "ok"
    assert stage_state(start + timedelta(minutes=48), deadline, due_soon) == "due_soon"
    assert stage_state(deadline, deadline, due_soon) == "overdue"
    assert stage_state(deadline, None, None) == "ok"
