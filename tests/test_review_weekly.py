"""The review and the weekly report over a handful of hand-made cases: combined filters and the
period each number is compared with, counted by hand.

The cases go in through the real feed consumer (``Ingest``) into a small real district, on
SQLite and on PostgreSQL. Window arithmetic alone is tested in ``test_timewindows.py``; here
the question is whether the screens' builders (``review_screen.build``, ``weekly_report.build``) and
``/api/indicators`` put each case in the right period and through the right filters.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import redis

import layouts.review
from app import create_app
from dashboard import cached_reads, review_screen, weekly_report
from dashboard.context import current_context
from dashboard.settings import Settings
from dashboard.weekly_columns import period_text
from data_feeds.reference import load_children, root_grid
from gridrules.access import EVERYTHING
from gridrules.selection import Selection
from tests.feed_support import basic_grids, case_event, drain, make_ingest, report
from tests.support import TZ

LATER = datetime(2027, 6, 1, 12, 0, tzinfo=TZ)  # every window below is closed by then

# Catalogue codes (data_feeds/data/catalogue.csv)
MANHOLE_SEWAGE = "B010102"  # 污水井盖缺失: B01 公用设施, grade A, SWJ
MANHOLE_WATER = "B010101"  # 上水井盖缺失: B01 公用设施, grade A, SWJT
GAS_LEAK = "E040202"  # 燃气泄漏: E04 突发事件, grade A, RQGS
STREET_VENDOR = "E050101"  # 无照经营游商: E05 街面秩序, grade C, CGJ


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


def minutes(moment: datetime, n: int) -> datetime:
    return moment + timedelta(minutes=n)


def closed_loop(case_id: str, at: datetime, grid: dict, category: str, dept: str, source: str = "hotline", **fields) -> list[dict]:
    """Reported, registered, dispatched, handled and closed within an hour."""
    return [
        report(case_id, at, grid, category=category, source=source, **fields),
        case_event(case_id, "register", minutes(at, 3)),
        case_event(case_id, "dispatch", minutes(at, 6), dept=dept),
        case_event(case_id, "feedback", minutes(at, 30)),
        case_event(case_id, "close", minutes(at, 45)),
    ]


def reported_only(case_id: str, at: datetime, grid: dict, category: str = STREET_VENDOR, source: str = "patrol") -> list[dict]:
    return [report(case_id, at, grid, category=category, source=source)]


@pytest.fixture
def district(feed_district, redis_url, domain_config):
    """The small district, its towns, the basic grids of each town, and a way to feed it cases."""
    client = redis.Redis.from_url(redis_url)
    ingest = make_ingest(feed_district, client, domain_config, max_age_days=2000)  # the cases below are older than 90 days
    grids = basic_grids(feed_district)
    root = root_grid(feed_district)
    towns = load_children(feed_district, root.code)
    paths = {g.code: g.path for town in towns for community in load_children(feed_district, town.code) for g in load_children(feed_district, community.code)}
    in_town = {town.code: [g for g in grids if paths[g["code"]].startswith(town.path)] for town in towns}

    def feed(*groups: list[dict]) -> None:
        messages = [message for group in groups for message in group]
        for message in messages:
            client.xadd("gridops:case-events", message)
        totals = drain(ingest)
        assert totals.get("applied") == len(messages) and not totals.get("dead"), totals

    yield {"engine": feed_district, "root": root, "towns": towns, "grids": in_town, "feed": feed, "redis_url": redis_url}
    client.close()


@pytest.fixture
def app(district, tmp_path):
    url = district["engine"].url.render_as_string(hide_password=False)
    return create_app(Settings(database_url=url, redis_url=district["redis_url"], var_dir=tmp_path, auth=False))


def review(app, selection: Selection, now: datetime = LATER) -> review_screen.ReviewData:
    """What the review screen computes for ``selection`` (its data builder, in the app's context)."""
    with app.server.app_context():
        ctx = current_context()
        area = cached_reads.area_in_scope(ctx, selection.area, EVERYTHING)
        return review_screen.build(ctx, area, selection, EVERYTHING, now, "zh")


# ---------------------------------------------------------------- combined filters


def test_combined_filters_give_the_hand_counted_numbers(district, app):
    """grade A + source hotline + major class B01 (公用设施) in one town, 2 – 8 Nov 2026."""
    town, other_town = district["towns"][0], district["towns"][1]
    here, there = district["grids"][town.code][0], district["grids"][other_town.code][0]
    district["feed"](
        closed_loop("F1", local(2026, 11, 3, 9, 0), here, MANHOLE_SEWAGE, "SWJ"),  # counts: reported, registered, dispatched, closed
        [report("F2", local(2026, 11, 4, 10, 0), here, category=MANHOLE_SEWAGE, source="hotline"),  # counts, still open at the end
         case_event("F2", "register", local(2026, 11, 4, 10, 5)), case_event("F2", "dispatch", local(2026, 11, 4, 10, 8), dept="SWJ")],
        closed_loop("F3", local(2026, 11, 3, 11, 0), here, MANHOLE_SEWAGE, "SWJ", source="patrol"),  # other source
        closed_loop("F4", local(2026, 11, 3, 12, 0), there, MANHOLE_SEWAGE, "SWJ"),  # other town
        closed_loop("F5", local(2026, 11, 5, 9, 0), here, STREET_VENDOR, "CGJ"),  # grade C (and class E05)
        closed_loop("F6", local(2026, 11, 5, 10, 0), here, MANHOLE_SEWAGE, "SWJ", grade="C"),  # graded C on report
        [report("F7", local(2026, 11, 6, 9, 0), here, category=MANHOLE_WATER, source="hotline"),  # the other detail class of B01: rejected
         case_event("F7", "reject", local(2026, 11, 6, 9, 20))],
        closed_loop("F9", local(2026, 11, 6, 14, 0), here, GAS_LEAK, "RQGS"),  # grade A, hotline, but class E04
        [report("F8", local(2026, 10, 30, 9, 0), here, category=MANHOLE_SEWAGE, source="hotline"),  # reported before, closed inside
         case_event("F8", "register", local(2026, 10, 30, 9, 5)), case_event("F8", "dispatch", local(2026, 10, 30, 9, 8), dept="SWJ"),
         case_event("F8", "feedback", local(2026, 11, 2, 8, 0)), case_event("F8", "close", local(2026, 11, 2, 9, 0))],
    )
    chosen = Selection(area=town.code, window="custom", start="2026-11-02", end="2026-11-08", grade="A", source="hotline", category="B01")
    expected = {"reported": 3, "registered": 2, "invalid": 1, "dispatched": 2, "handled": 2, "closed": 2, "in_progress": 1}  # F1 F2 F7 / F1 F2 / F7 / F1 F2 / F1 F8 / F1 F8 / F2

    values = review(app, chosen).values
    assert {key: values[key] for key in expected} == expected

    client = app.server.test_client()
    query = f"area={town.code}&start=2026-11-02&end=2026-11-09&grade=A&source=hotline&category=B01"
    api = client.get(f"/api/indicators?{query}").get_json()
    assert {key: api[key] for key in expected} == expected

    # the whole district adds F4; without the class filter F9 comes in; without the grade filter F6
    district_wide = review(app, Selection(window="custom", start="2026-11-02", end="2026-11-08", grade="A", source="hotline", category="B01")).values
    assert (district_wide["reported"], district_wide["closed"]) == (4, 3)
    any_class = review(app, Selection(area=town.code, window="custom", start="2026-11-02", end="2026-11-08", grade="A", source="hotline")).values
    assert (any_class["reported"], any_class["closed"]) == (4, 3)
    any_grade = review(app, Selection(area=town.code, window="custom", start="2026-11-02", end="2026-11-08", source="hotline", category="B01")).values
    assert (any_grade["reported"], any_grade["closed"]) == (4, 3)
    every_source = review(app, Selection(area=town.code, window="custom", start="2026-11-02", end="2026-11-08", grade="A", category="B01")).values
    assert (every_source["reported"], every_source["closed"]) == (4, 3)


# ---------------------------------------------------------------- the period before


def test_the_review_compares_across_a_month_boundary(district, app):
    """2 – 8 Nov against 26 Oct – 1 Nov: the last evening of October and all of 1 November are 'before'."""
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](
        reported_only("M1", local(2026, 10, 25, 23, 50), grid),  # the week before that
        reported_only("M2", local(2026, 10, 31, 23, 30), grid),
        reported_only("M3", local(2026, 11, 1, 23, 50), grid),
        reported_only("M4", local(2026, 11, 2, 0, 10), grid),
        reported_only("M5", local(2026, 11, 8, 23, 59), grid),
        reported_only("M6", local(2026, 11, 9, 0, 0), grid),  # the week after
    )
    data = review(app, Selection(window="custom", start="2026-11-02", end="2026-11-08"))
    assert (data.previous.start, data.previous.end) == (local(2026, 10, 26), local(2026, 11, 2))
    assert (data.values["reported"], data.previous_values["reported"]) == (2, 2)
    trend = data.trend.set_index("label")
    assert list(trend.index) == ["11-02", "11-03", "11-04", "11-05", "11-06", "11-07", "11-08"]
    assert trend.loc["11-02", "reported"] == 1 and trend.loc["11-08", "reported"] == 1
    assert trend.loc["11-07", "reported_before"] == 1 and trend.loc["11-08", "reported_before"] == 1  # 31 Oct and 1 Nov, a week earlier
    assert trend["reported_before"].sum() == 2


def test_todays_trend_has_every_hour_and_no_value_for_hours_to_come(district, app):
    """Today at 15:10: 24 hourly slots; 00:00 – 15:00 have counts, 16:00 – 23:00 none (not zero),
    and yesterday, compared up to 15:10, none there either."""
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](reported_only("T1", local(2026, 11, 25, 9, 5), grid), reported_only("T2", local(2026, 11, 24, 9, 30), grid), reported_only("T3", local(2026, 11, 24, 20, 30), grid))
    trend = review(app, Selection(window="today"), now=local(2026, 11, 25, 15, 10)).trend
    assert list(trend["label"]) == [f"{hour:02d}:00" for hour in range(24)]
    assert list(trend["reported"][:16]) == [0] * 9 + [1] + [0] * 6
    assert trend["reported"][16:].isna().all() and trend["closed"][16:].isna().all()
    assert list(trend["reported_before"][:16]) == [0] * 9 + [1] + [0] * 6 and trend["reported_before"][16:].isna().all()


def test_the_trend_figure_reads_day_labels_as_text():
    trend = pd.DataFrame({"label": ["11-26", "11-27"], "reported": [3, None], "closed": [1, None], "reported_before": [2, 2], "closed_before": [1, 1]})
    figure = layouts.review.trend_figure(trend, "zh")
    assert figure.layout.xaxis.type == "category" and list(figure.layout.xaxis.categoryarray) == ["11-26", "11-27"]
    assert list(figure.data[0].y) == [3, None]


def test_the_review_compares_a_week_after_national_day_with_the_holiday(district, app):
    """8 – 14 Oct 2026 against 1 – 7 Oct (the National Day holiday): calendar days, not working days."""
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](
        reported_only("H1", local(2026, 9, 30, 23, 0), grid),
        reported_only("H2", local(2026, 10, 1, 8, 0), grid),
        reported_only("H3", local(2026, 10, 7, 22, 0), grid),
        reported_only("H4", local(2026, 10, 8, 9, 0), grid),
        reported_only("H5", local(2026, 10, 10, 9, 0), grid),  # a Saturday, but a make-up working day
    )
    data = review(app, Selection(window="custom", start="2026-10-08", end="2026-10-14"))
    assert (data.previous.start, data.previous.end) == (local(2026, 10, 1), local(2026, 10, 8))
    assert (data.values["reported"], data.previous_values["reported"]) == (2, 2)
    assert "上期 2026-10-01 – 2026-10-07" in _period(app, data)


def _period(app, data) -> str:
    from callbacks.review import _period_text

    return _period_text(data, TZ, "zh")


def test_the_weekly_report_compares_the_first_week_of_the_year_with_the_last_of_the_old(district, app, domain_config):
    """Week of Mon 5 Jan 2026 against 29 Dec 2025 – 4 Jan 2026 (New Year holiday 1 – 3 Jan, Sunday 4 Jan worked)."""
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](
        reported_only("Y1", local(2025, 12, 28, 23, 59), grid),
        reported_only("Y2", local(2025, 12, 31, 12, 0), grid),
        reported_only("Y3", local(2026, 1, 1, 10, 0), grid),
        reported_only("Y4", local(2026, 1, 4, 23, 59), grid),
        reported_only("Y5", local(2026, 1, 5, 0, 1), grid),
    )
    engine = district["engine"]
    with app.server.app_context():
        names = cached_reads.names(current_context(), "zh")
    built = weekly_report.build(engine, domain_config, district["root"], "week", date(2026, 1, 5), EVERYTHING, LATER, names)
    assert (built.previous.start, built.previous.end) == (local(2025, 12, 29), local(2026, 1, 5))
    assert (built.totals["reported"], built.previous_totals["reported"]) == (1, 3)
    daily = built.daily
    assert [d.isoformat() for d in daily["previous_date"]] == ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    assert list(daily["previous_reported"]) == [0, 0, 1, 1, 0, 0, 1]
    assert list(daily["reported"]) == [1, 0, 0, 0, 0, 0, 0]
    # the review of the same seven days says the same
    same_week = review(app, Selection(window="custom", start="2026-01-05", end="2026-01-11"))
    assert (same_week.values["reported"], same_week.previous_values["reported"]) == (1, 3)


def test_the_month_and_the_quarter_across_the_year_end_count_each_case_once(district, app, domain_config):
    """January 2026 against December 2025 and the first quarter against the fourth: the per-day
    (per-7-day) counts add up to the totals, the trend's last period is the report's own numbers."""
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](
        reported_only("M1", local(2025, 11, 30, 23, 59), grid),  # November: the quarter before, not the month before
        reported_only("M2", local(2025, 12, 31, 23, 59), grid),
        reported_only("M3", local(2026, 1, 1, 10, 0), grid),  # New Year's Day, a holiday: still counted on its day
        reported_only("M4", local(2026, 1, 31, 23, 59), grid),
        reported_only("M5", local(2026, 3, 31, 12, 0), grid),
    )
    engine = district["engine"]
    with app.server.app_context():
        names = cached_reads.names(current_context(), "zh")
    month = weekly_report.build(engine, domain_config, district["root"], "month", date(2026, 1, 1), EVERYTHING, LATER, names)
    assert (month.window.start, month.window.end, month.previous.start) == (local(2026, 1, 1), local(2026, 2, 1), local(2025, 12, 1))
    assert (month.totals["reported"], month.previous_totals["reported"]) == (2, 1)
    assert len(month.daily) == 31 and month.daily["date"].iloc[-1] == date(2026, 1, 31)
    # 22 weekdays; New Year takes 1 and 2 January, Sunday 4 January is worked: 21, and the screen, PDF and XLSX say so
    assert month.working_days == 21
    assert period_text(month, "zh") == "统计周期 2026年1月 2026-01-01 – 2026-01-31 (工作日 21 天) · 对比上月 2025-12-01 – 2025-12-31"
    assert period_text(month, "en") == "Month 2026-01 2026-01-01 – 2026-01-31 (21 working days) · compared with 2025-12-01 – 2025-12-31"
    assert month.daily["reported"].sum() == 2 and month.daily["reported"].iloc[0] == 1 and month.daily["reported"].iloc[30] == 1
    assert month.daily["previous_reported"].iloc[30] == 1  # 31 December
    assert len(month.trend) == 12 and month.trend["start"].iloc[-1] == date(2026, 1, 1) and month.trend["start"].iloc[0] == date(2025, 2, 1)
    assert month.trend["reported"].iloc[-1] == month.totals["reported"] and month.trend["reported"].iloc[-2] == month.previous_totals["reported"]

    quarter = weekly_report.build(engine, domain_config, district["root"], "quarter", date(2026, 2, 14), EVERYTHING, LATER, names)
    assert (quarter.window.start, quarter.window.end) == (local(2026, 1, 1), local(2026, 4, 1))
    assert (quarter.totals["reported"], quarter.previous_totals["reported"]) == (3, 2)
    assert len(quarter.daily) == 14  # the fourth quarter's 92 days take 14 steps of 7; the first's 90 take 13
    assert quarter.daily["date"].iloc[-1] is None and quarter.daily["previous_date"].iloc[-1] == date(2025, 12, 31)
    assert quarter.daily["reported"].sum() == 3 and quarter.daily["previous_reported"].sum() == 2
    assert list(quarter.trend["reported"].iloc[-2:]) == [2, 3]
    assert period_text(quarter, "zh").startswith("统计周期 2026年第1季度 2026-01-01 – 2026-03-31 (") and "对比上季度 2025-10-01 – 2025-12-31" in period_text(quarter, "zh")


def test_a_running_month_is_compared_with_the_same_part_of_the_month_before(district, app, domain_config):
    grid = district["grids"][district["towns"][0].code][0]
    district["feed"](
        reported_only("R1", local(2026, 11, 3, 9, 0), grid),
        reported_only("R2", local(2026, 11, 3, 11, 0), grid),  # after the hour the running month has reached
        reported_only("R3", local(2026, 12, 2, 9, 0), grid),
    )
    now = local(2026, 12, 3, 10, 0)
    built = weekly_report.build(district["engine"], domain_config, district["root"], "month", date(2026, 12, 1), EVERYTHING, now, {})
    assert (built.totals["reported"], built.previous_totals["reported"]) == (1, 1)
    assert built.daily["reported"].isna().sum() == 28  # 4 to 31 December have not begun
    assert bool(built.trend["running"].iloc[-1]) and not built.trend["running"].iloc[:-1].any()


# ---------------------------------------------------------------- many leaders at once


def test_leaders_asking_the_same_selection_share_one_computation_until_the_next_change(district, app, monkeypatch):
    computed = []
    build = review_screen.build
    monkeypatch.setattr(review_screen, "build", lambda *args: computed.append(args[2]) or build(*args))
    town = district["towns"][0]
    district["feed"](closed_loop("S1", local(2026, 11, 3, 9, 0), district["grids"][town.code][0], MANHOLE_SEWAGE, "SWJ"))
    week = Selection(area=town.code, window="custom", start="2026-11-02", end="2026-11-08")
    now = datetime.now(UTC)
    with app.server.app_context():
        ctx = current_context()
        area = cached_reads.area_in_scope(ctx, town.code, EVERYTHING)
        seen = [review_screen.shared(ctx, area, replace(week, case=f"S{n}"), EVERYTHING, now, "zh") for n in range(20)]
        assert len(computed) == 1 and all(data.values == seen[0].values for data in seen)  # the open case panel is not part of it
        review_screen.shared(ctx, area, week, EVERYTHING, now, "en")
        review_screen.shared(ctx, area, replace(week, grade="A"), EVERYTHING, now, "zh")
        assert len(computed) == 3, "another language or filter is another computation"
        district["feed"](closed_loop("S2", local(2026, 11, 4, 9, 0), district["grids"][town.code][0], MANHOLE_SEWAGE, "SWJ"))
        review_screen.shared(ctx, area, week, EVERYTHING, now, "zh")
    assert len(computed) == 4, "a change batch is computed anew"
