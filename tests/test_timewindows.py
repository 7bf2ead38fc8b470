"""Local-time windows and the period every number is compared with."""
from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.i18n import window_error_text
from gridrules import selection
from gridrules.timewindows import WindowError, day_window, parse_moment, previous_period, today, week_from_param, week_of, window_from_params
from tests.support import TZ, local

LATER = local(2027, 6, 1, 12, 0)  # every window below is closed by then


def test_weeks_run_monday_to_sunday_local_time():
    week = week_of(local(2026, 11, 27).date(), TZ, LATER)
    assert week.start == local(2026, 11, 23) and week.end == local(2026, 11, 30)


def test_previous_week_across_a_year_boundary():
    week = week_of(local(2027, 1, 4).date(), TZ, LATER)
    before = previous_period(week, LATER)
    assert (before.start, before.end) == (local(2026, 12, 28), local(2027, 1, 4))
    first = week_of(local(2026, 1, 1).date(), TZ, LATER)  # Thursday: its week begins in 2025
    assert first.start == local(2025, 12, 29)
    assert previous_period(first, LATER).start == local(2025, 12, 22)


def test_thirty_days_across_a_month_boundary():
    now = local(2026, 12, 3, 10, 0)
    window = selection.window_of(selection.Selection(window="30d"), TZ, now)
    assert window.start == local(2026, 11, 4) and window.end == local(2026, 12, 4)
    before = previous_period(window, now)  # still running: the same elapsed part before
    assert before.start == local(2026, 10, 5) and before.end == local(2026, 11, 3, 10, 0)
    closed = selection.window_of(selection.Selection(window="30d"), TZ, now)
    closed = type(closed).until_now(closed.start, closed.end, LATER)
    assert previous_period(closed, LATER).end == local(2026, 11, 4)


def test_a_custom_window_over_a_holiday_compares_with_the_same_number_of_days_before():
    # National Day 2026: 1–7 October are holidays; the window is calendar days, not working days.
    window = selection.window_of(selection.Selection(window="custom", start="2026-10-01", end="2026-10-07"), TZ, LATER)
    assert window.start == local(2026, 10, 1) and window.end == local(2026, 10, 8)
    before = previous_period(window, LATER)
    assert before.start == local(2026, 9, 24) and before.end == local(2026, 10, 1)


def test_a_running_window_is_compared_with_the_same_elapsed_part_before():
    now = local(2026, 11, 27, 10, 30)
    day = today(TZ, now)
    before = previous_period(day, now)
    assert before.start == local(2026, 11, 26) and before.end == local(2026, 11, 26, 10, 30)
    week = week_of(now.date(), TZ, now)
    before = previous_period(week, now)
    assert before.start == local(2026, 11, 16) and before.end == local(2026, 11, 20, 10, 30)


def test_day_windows_and_parameters():
    day = day_window(local(2026, 3, 1).date(), TZ, LATER)
    assert day.end - day.start == timedelta(days=1)
    assert parse_moment("2026-11-22", TZ, LATER) == local(2026, 11, 22)
    assert parse_moment("2026-11-22T09:15:03+08:00", TZ, LATER) == local(2026, 11, 22, 9, 15, 3)
    window = window_from_params("2026-11-20", "2026-11-26", TZ, LATER)
    assert window.start == local(2026, 11, 20) and window.end == local(2026, 11, 26)
    with pytest.raises(WindowError):
        window_from_params("2026-11-26", "2026-11-20", TZ, LATER)


def test_selection_round_trips_through_the_url():
    chosen = selection.Selection(area="320506003000", window="custom", start="2026-11-01", end="2026-11-07", category="E05", grade="A", source="patrol", dept="CGJ", stage="handle")
    assert selection.parse(chosen.query()) == chosen
    assert selection.parse({"window": "bogus", "grade": "Z", "source": "pigeon"}) == selection.Selection()
    assert selection.parse({"window": "custom", "start": "2026-11-09", "end": "2026-11-01"}).window == "7d"
    assert selection.Selection(area="X").search("en") == "?area=X&lang=en"


@pytest.mark.parametrize("start,end,reason", [
    ("1999-12-31", "2000-01-02", "too_early"),
    ("0001-01-01", None, "too_early"),
    ("2026-01-01", "2028-06-03", "too_late"),  # LATER + a year is 2028-06-01
    ("9999-12-31", None, "too_late"),
    ("2026-01-01", "2027-01-03", "too_long"),  # 367 days
    ("2026-11-26", "2026-11-20", "end_before_start"),
    ("26/11/2026", None, "not_a_moment"),
])
def test_windows_from_parameters_are_bounded(start, end, reason):
    with pytest.raises(WindowError) as refused:
        window_from_params(start, end, TZ, LATER)
    assert refused.value.reason == reason
    # words in both languages, for the API and the screens
    assert window_error_text(refused.value, "zh") != window_error_text(refused.value, "en") != refused.value.reason


def test_the_bounds_themselves_are_allowed():
    assert window_from_params("2000-01-01", "2000-12-31", TZ, LATER).start == local(2000, 1, 1)
    year = window_from_params("2026-01-01", "2027-01-02", TZ, LATER)  # 366 days
    assert year.end - year.start == timedelta(days=366)
    assert window_from_params("2028-05-01", "2028-06-02", TZ, LATER).end == local(2028, 6, 2)  # the end of the last day one may name
    assert window_from_params("2026-11-01", "2026-11-08", TZ, LATER, max_days=7).end == local(2026, 11, 8)
    with pytest.raises(WindowError) as refused:
        window_from_params("2026-11-01", "2026-11-09", TZ, LATER, max_days=7)
    assert "at most 7 days" in window_error_text(refused.value, "en")


def test_a_custom_review_window_is_bounded_like_the_api():
    def custom(start, end):
        return selection.window_of(selection.Selection(window="custom", start=start, end=end), TZ, LATER)

    assert custom("2026-01-01", "2027-01-01").end == local(2027, 1, 2)  # 366 days, the last inclusive
    for start, end in (("1900-01-01", "2026-11-26"), ("2020-01-01", "2026-11-26"), ("9999-12-01", "9999-12-31"), ("0001-01-01", "0001-01-07")):
        with pytest.raises(WindowError):
            custom(start, end)


@pytest.mark.parametrize("text,monday", [(None, "2027-05-31"), ("2026-11-26", "2026-11-23"), ("2000-01-03", "2000-01-03")])
def test_a_week_parameter_gives_its_monday(text, monday):
    assert week_from_param(text, TZ, LATER).isoformat() == monday


@pytest.mark.parametrize("text", ["0001-01-01", "1999-12-27", "2000-01-01", "9999-12-31", "2028-06-05", "next week"])
def test_a_week_out_of_bounds_is_refused(text):
    with pytest.raises(WindowError):
        week_from_param(text, TZ, LATER)


# ---------------------------------------------------------------- assessment periods


def test_months_and_quarters_are_calendar_periods_and_cross_the_year_end():
    from gridrules.timewindows import period_before, period_window

    december = period_window("month", local(2026, 12, 1).date(), TZ, LATER)
    assert (december.start, december.end) == (local(2026, 12, 1), local(2027, 1, 1))
    january = period_window("month", local(2027, 1, 1).date(), TZ, LATER)
    assert (period_before("month", january, LATER).start, period_before("month", january, LATER).end) == (local(2026, 12, 1), local(2027, 1, 1))
    first_quarter = period_window("quarter", local(2027, 1, 1).date(), TZ, LATER)
    assert (first_quarter.start, first_quarter.end) == (local(2027, 1, 1), local(2027, 4, 1))
    before = period_before("quarter", first_quarter, LATER)
    assert (before.start, before.end) == (local(2026, 10, 1), local(2027, 1, 1))
    march = period_window("month", local(2026, 3, 1).date(), TZ, LATER)
    assert period_before("month", march, LATER).start == local(2026, 2, 1)  # the calendar month, not 31 days back
    last_week_of_year = period_window("week", local(2026, 12, 28).date(), TZ, LATER)
    assert (last_week_of_year.start, last_week_of_year.end) == (local(2026, 12, 28), local(2027, 1, 4))


def test_a_running_month_is_compared_with_the_same_elapsed_part_of_the_month_before_never_past_its_end():
    from gridrules.timewindows import period_before, period_window

    now = local(2026, 12, 3, 10, 0)
    running = period_window("month", local(2026, 12, 1).date(), TZ, now)
    assert running.asof == now
    before = period_before("month", running, now)
    assert (before.start, before.end) == (local(2026, 11, 1), local(2026, 11, 3, 10, 0))
    late = local(2026, 3, 31, 12, 0)  # 30 days and 12 hours into March: February has 28
    before = period_before("month", period_window("month", local(2026, 3, 1).date(), TZ, late), late)
    assert (before.start, before.end) == (local(2026, 2, 1), local(2026, 3, 1))
    quarter = period_window("quarter", local(2026, 10, 1).date(), TZ, now)
    assert period_before("quarter", quarter, now).end == local(2026, 7, 1) + (now - local(2026, 10, 1))


@pytest.mark.parametrize(("kind", "start", "first"), [
    ("week", "2026-12-31", "2026-12-28"),  # a Thursday: its week began on Monday
    ("month", "2026-02-28", "2026-02-01"),
    ("quarter", "2026-11-15", "2026-10-01"),
    ("quarter", "2027-03-31", "2027-01-01"),
])
def test_any_day_names_the_period_that_contains_it(kind, start, first):
    from gridrules.timewindows import period_from_params

    assert period_from_params(kind, start, TZ, local(2026, 12, 3, 10, 0)) == (kind, local(*map(int, first.split("-"))).date())


def test_the_default_is_the_last_complete_period_and_bad_parameters_are_refused():
    from gridrules.timewindows import period_from_params, recent_periods

    now = local(2026, 12, 3, 10, 0)  # Thursday of week 49, in December, in the fourth quarter
    assert period_from_params(None, None, TZ, now) == ("week", local(2026, 11, 23).date())
    assert period_from_params("month", None, TZ, now) == ("month", local(2026, 11, 1).date())
    assert period_from_params("quarter", None, TZ, now) == ("quarter", local(2026, 7, 1).date())
    new_year = local(2027, 1, 1, 0, 30)
    assert period_from_params("month", None, TZ, new_year) == ("month", local(2026, 12, 1).date())
    assert period_from_params("quarter", None, TZ, new_year) == ("quarter", local(2026, 10, 1).date())
    for kind, start in (("year", None), ("<script>", None), ("month", "2026-13-01"), ("month", "1999-12-01"), ("quarter", "9999-01-01")):
        with pytest.raises(WindowError):
            period_from_params(kind, start, TZ, now)
    assert window_error_text(WindowError("not_a_period", text="'year'"), "zh") == "'year' 不是考核周期（周、月或季度）"
    months = recent_periods("month", local(2026, 2, 1).date(), 12)
    assert (months[0], months[-1], len(set(months))) == (local(2025, 3, 1).date(), local(2026, 2, 1).date(), 12)
    quarters = recent_periods("quarter", local(2026, 10, 1).date(), 12)
    assert quarters[0] == local(2024, 1, 1).date() and quarters[4] == local(2025, 1, 1).date()  # three whole years


def test_working_days_of_a_month_and_a_quarter_follow_the_holiday_calendar(domain_config):
    """October 2026: 22 weekdays, National Day takes five of them (1, 2, 5, 6, 7), Saturday 10 is
    worked: 18. The fourth quarter adds November (21) and December (23): 62."""
    from dashboard.area_reports import working_days_in
    from gridrules.timewindows import period_window

    assert working_days_in(period_window("month", local(2026, 10, 1).date(), TZ, LATER), domain_config) == 18
    assert working_days_in(period_window("quarter", local(2026, 10, 1).date(), TZ, LATER), domain_config) == 62
