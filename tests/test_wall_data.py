"""The wall's pure builders: pins, grid shading, dispatch board, alerts, and the layout pieces."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd

from gridrules import wall_rules
from gridrules.access import Scope
from layouts import wall
from tests.support import utc

NOW = utc(2026, 11, 27, 6, 0)


def record(case_id: str, status: str = "dispatched", grade: str = "B", dept: str = "CGJ", grid: str = "G1",
           deadline_in: float | None = 60, due_soon_in: float | None = 30, reported_ago: float = 120, supervise_count: int = 0) -> dict:
    """An open-case record as live_state.open_case_record writes it (minutes relative to NOW)."""
    def at(minutes):
        return None if minutes is None else (NOW + timedelta(minutes=minutes)).isoformat()

    return {
        "id": case_id, "status": status, "stage": {"reported": "register", "registered": "dispatch", "dispatched": "handle", "handled": "verify"}[status],
        "grid": grid, "category": "E050101", "grade": grade, "dept": dept, "source": "patrol", "lat": 31.2, "lon": 120.6,
        "reported_at": at(-reported_ago), "stage_started_at": at(-10), "stage_deadline": at(deadline_in), "stage_due_soon_at": at(due_soon_in),
        "deadline": at(deadline_in), "rework_count": 0, "supervise_count": supervise_count,
    }


def test_stage_state_thresholds():
    assert wall_rules.stage_state(record("a", deadline_in=60, due_soon_in=30), NOW) == "ok"
    assert wall_rules.stage_state(record("a", deadline_in=10, due_soon_in=-1), NOW) == "due_soon"
    assert wall_rules.stage_state(record("a", deadline_in=0, due_soon_in=-5), NOW) == "overdue"
    assert wall_rules.stage_state(record("a", deadline_in=None, due_soon_in=None), NOW) == "ok"


def test_case_feature_carries_what_the_pin_needs():
    feature = wall_rules.case_feature(record("C1", grade="A"), NOW, {"E050101": "无照经营游商"})
    assert feature["id"] == "C1" and feature["geometry"]["coordinates"] == [120.6, 31.2]
    props = feature["properties"]
    assert props["grade"] == "A" and props["state"] == "ok" and props["label"] == ["C1 · 无照经营游商 · A"]
    assert props["reported"] == int((NOW - timedelta(minutes=120)).timestamp() * 1000)
    assert wall_rules.case_feature({**record("C2"), "lat": None}, NOW, {}) is None


def test_grid_and_area_counts():
    records = [record("a", grid="G1"), record("b", grid="G1", deadline_in=-5, due_soon_in=-20), record("c", grid="G2")]
    counts = wall_rules.grid_counts(records, NOW)
    assert counts == {"G1": [2, 1], "G2": [1, 0]}
    ancestors = {"G1": ("D", "T1", "C1", "G1"), "G2": ("D", "T2", "C2", "G2")}
    assert wall_rules.area_counts(counts, ancestors, {"T1", "T2"}) == {"T1": [2, 1], "T2": [1, 0]}


def test_dispatch_board_counts_and_orders_worst_first():
    records = [
        record("a", status="registered", dept="SWJ"),
        record("b", status="dispatched", dept="SWJ", deadline_in=-1, due_soon_in=-10),
        record("c", status="dispatched", dept="CGJ", deadline_in=5, due_soon_in=-1),
        record("d", status="handled", dept="CGJ"),
        record("e", status="reported", dept="CGJ"),  # not registered yet: not a department's
    ]
    board = wall_rules.dispatch_board(records, NOW)
    assert [row["dept"] for row in board] == ["SWJ", "CGJ"]
    none = {"supervised": 0, "redispatched": 0, "declined": 0, "extended": 0}
    assert board[0] == {"dept": "SWJ", "waiting": 1, "in_hand": 1, "due_soon": 0, "overdue": 1, **none}
    assert board[1] == {"dept": "CGJ", "waiting": 0, "in_hand": 1, "due_soon": 1, "overdue": 0, **none}


def test_the_board_shows_open_cases_under_supervision_and_todays_interventions():
    records = [record("a", status="dispatched", dept="SWJ", supervise_count=2), record("b", status="dispatched", dept="SWJ")]
    today = {"SWJ": {"supervised": 3, "redispatched": 1, "declined": 0, "extended": 2},
             "GAJ": {"supervised": 0, "redispatched": 0, "declined": 1, "extended": 0},  # declined its only case: still on the board
             "XFJ": {"supervised": 1, "redispatched": 0, "declined": 0, "extended": 0}}  # supervised, since closed: nothing open to show
    board = {row["dept"]: row for row in wall_rules.dispatch_board(records, NOW, today)}
    assert set(board) == {"SWJ", "GAJ"}
    assert {k: board["SWJ"][k] for k in ("in_hand", "supervised", "redispatched", "declined", "extended")} == \
        {"in_hand": 2, "supervised": 1, "redispatched": 1, "declined": 0, "extended": 2}
    assert board["GAJ"]["declined"] == 1 and board["GAJ"]["in_hand"] == 0


def test_alerts_put_overdue_a_grade_first_then_the_longest_late():
    records = [
        record("soon", deadline_in=5, due_soon_in=-1, grade="A"),
        record("b-late", deadline_in=-120, due_soon_in=-200, grade="B"),
        record("a-late", deadline_in=-10, due_soon_in=-30, grade="A"),
        record("a-later", deadline_in=-60, due_soon_in=-90, grade="A"),
        record("fine"),
    ]
    rows = wall_rules.alert_rows(records, NOW)
    assert [row["id"] for row in rows] == ["a-later", "a-late", "b-late", "soon"]
    assert rows[0]["late_s"] == 3600 and rows[-1]["state"] == "due_soon" and rows[-1]["late_s"] == -300


def test_the_ticker_leads_with_what_fell_due_last():
    records = [
        record("soon-later", deadline_in=20, due_soon_in=-1),
        record("a-old", deadline_in=-600, due_soon_in=-700, grade="A"),
        record("soon-next", deadline_in=3, due_soon_in=-1),
        record("c-new", deadline_in=-1, due_soon_in=-30, grade="C"),
    ]
    rows = wall_rules.alert_rows(records, NOW, limit=None, newest_first=True)
    assert [row["id"] for row in rows] == ["c-new", "a-old", "soon-next", "soon-later"]


def alert_list(ticker):
    """The ticker's list of rows (under its line of counts)."""
    return ticker.children[1]


def test_the_ticker_shows_a_page_and_hides_the_rest_for_the_browser_to_turn():
    rows = wall_rules.alert_rows([record(f"c{i}", deadline_in=-i - 1, due_soon_in=-60) for i in range(wall.TICKER_ROWS + 3)], NOW, limit=None)
    listed = alert_list(wall.ticker(rows, {}, {}, {}, "en"))
    shown = [li for li in listed.children if "paged-out" not in li.className]
    assert len(shown) == wall.TICKER_PAGE + 1 and shown[-1].children[1].children == f"{wall.TICKER_ROWS + 3} in all"
    assert len(listed.children) == wall.TICKER_ROWS + 1
    assert [getattr(li, "data-row") for li in listed.children[:2]] == ["0", "1"]
    assert getattr(listed, "data-page") == str(wall.TICKER_PAGE)
    full_list = alert_list(wall.ticker(rows, {}, {}, {}, "en", limit=wall.OVERDUE_LIST_ROWS, page=None))
    assert not any("paged-out" in li.className for li in full_list.children) and not hasattr(full_list, "data-page")


def test_the_ticker_lists_the_overdue_and_counts_the_due_soon_apart():
    rows = wall_rules.alert_rows([record("late", deadline_in=-5, due_soon_in=-20), record("soon", deadline_in=5, due_soon_in=-1),
                                  record("soon2", deadline_in=9, due_soon_in=-1), record("fine")], NOW, limit=None)
    ticker = wall.ticker(rows, {}, {}, {}, "zh")
    overdue, due_soon = ticker.children[0].children
    assert (overdue.children, getattr(overdue, "data-count"), due_soon.children, getattr(due_soon, "data-count")) == ("超期 1 件", "1", "即将超期 2 件", "2")
    assert [getattr(li, "data-case") for li in alert_list(ticker).children] == ["late"]


def test_scope_keeps_area_and_department():
    paths = {"G1": "/D/T1/C1/G1/", "G2": "/D/T2/C2/G2/"}
    leader = Scope(area_path="/D/T1/", area_code="T1")
    department = Scope(dept="SWJ")
    assert wall_rules.in_scope(record("a", grid="G1"), paths, leader)
    assert not wall_rules.in_scope(record("a", grid="G2"), paths, leader)
    assert not wall_rules.in_scope(record("a", dept="CGJ"), paths, department)
    assert not wall_rules.in_scope(record("a", grid="unknown"), paths, Scope())


def test_late_text_in_both_languages():
    assert wall.late_text(3900, "zh") == "超期 1小时05分"
    assert wall.late_text(3900, "en") == "overdue 1 h 05 min"
    assert wall.late_text(-300, "zh") == "剩余 5分"


def test_ticker_marks_severe_rows_and_carries_deadlines():
    rows = wall_rules.alert_rows([record("x", grade="A", deadline_in=-30, due_soon_in=-60), record("y", grade="C", deadline_in=-5, due_soon_in=-20)], NOW)
    ticker = alert_list(wall.ticker(rows, {"E050101": "无照经营游商"}, {"G1": "第1网格"}, {"CGJ": "城市管理局"}, "zh"))
    first, second = ticker.children
    assert "severe" in first.className and "severe" not in second.className
    late = first.children[4]
    assert late.className == "late" and int(getattr(late, "data-deadline")) == rows[0]["deadline"]
    assert alert_list(wall.ticker([], {}, {}, {}, "en")).children[0].children == "No overdue cases"


def test_figures_are_built_from_plain_data():
    trend = wall.trend_figure(pd.DataFrame({"hour": ["08:00", "09:00"], "reported": [3, 5], "closed": [1, 4]}), "zh")
    assert list(trend.data[0].y) == [3, 5] and list(trend.data[1].y) == [1, 4]
    sources = wall.source_figure(pd.DataFrame({"source": ["patrol", "hotline", "video"], "reported": [4, 0, 2]}), "en")
    assert list(sources.data[0].labels) == ["Patrol", "Video"]
    bars = wall.bar_figure(["市容环境", "公用设施"], [7, 2], "#3aa0ff")
    assert list(bars.data[0].y) == ["公用设施", "市容环境"] and list(bars.data[0].x) == [2, 7]  # the largest on top
    assert bars.data[0].textangle == 0 and bars.data[0].textposition == "outside"  # counts stay upright


def test_a_moved_worker_is_a_short_row_with_the_newest_trail_point():
    position = {"lon": 120.61, "lat": 31.26, "heading": 90.0, "speed": 1.3}
    move = wall_rules.worker_move("W1", position, True, [[120.6, 31.25]])
    assert move == ["W1", 120.61, 31.26, 90.0, 1.3, True, 120.6, 31.25]
    assert wall_rules.worker_move("W2", {"lon": 1.0, "lat": 2.0}, False, [])[5:] == [False, None, None]


def test_moved_workers_come_from_the_gps_changes_each_once():
    changes = [{"kind": "gps", "workers": "W2,W1"}, {"kind": "case", "case_id": "C1"}, {"kind": "gps", "workers": "W1,W3"}, {"kind": "gps", "workers": ""}]
    assert wall_rules.moved_workers(changes) == ["W1", "W2", "W3"]


def test_a_batch_of_changes_names_only_cases_of_the_scope():
    paths = {"G1": "/D/T1/C1/G1/", "G2": "/D/T2/C2/G2/"}
    changes = [
        {"kind": "case", "case_id": "A", "action": "report", "grid": "G1", "dept": ""},
        {"kind": "case", "case_id": "B", "action": "report", "grid": "G2", "dept": ""},
        {"kind": "case", "case_id": "A", "action": "dispatch", "grid": "G1", "dept": "CGJ", "dispatched_at": "2026-11-25T02:00:00+00:00"},
        {"kind": "case", "case_id": "B", "action": "close", "grid": "G2", "dept": "SWJ"},
        {"kind": "case", "case_id": "C", "action": "close", "grid": "unknown", "dept": ""},
        {"kind": "gps", "workers": "W1"},
    ]
    leader = Scope(area_path="/D/T1/", area_code="T1")
    visible = wall_rules.case_changes_in_scope(changes, paths, leader)
    assert [c["case_id"] for c in visible] == ["A", "A"] and wall_rules.new_reports(visible) == ["A"]
    assert {c["case_id"] for c in wall_rules.case_changes_in_scope(changes, paths, Scope())} == {"A", "B"}
    # a department knows a case from the change that gave it to the department on
    assert [c["action"] for c in wall_rules.case_changes_in_scope(changes, paths, Scope(dept="CGJ"))] == ["dispatch"]


def test_a_small_counts_bar_chart_ticks_only_whole_numbers():
    figure = wall.bar_figure(["甲", "乙"], [3, 1], "#3aa0ff")
    assert figure.layout.xaxis.dtick == 1
    assert wall.bar_figure(["甲"], [40], "#3aa0ff").layout.xaxis.dtick is None


def test_lateness_counts_in_the_stage_limits_own_calendar_and_ranks_by_it(domain_config):
    """A grade-C case whose 3-working-day handling limit ran out at 17:30 yesterday is, at 09:00
    today, half an hour late in working time, not fifteen and a half hours; cases rank grade A
    first, then by how much of their own limit they are past."""
    from gridrules.lifecycle import Category, Rules
    from gridrules.limits import StageLimits

    rules = Rules({"E050101": Category("E050101", "游商", None, 3, dept="CGJ", grade="C", limits=StageLimits.parse("1h", "1h", "3wd", "1wd", "working")),
                   "B010102": Category("B010102", "井盖", None, 3, dept="SWJ", grade="A", limits=StageLimits.parse("10m", "30m", "2h", "1h", "natural"))},
                  domain_config.calendar, domain_config.grade_limits, 0.8)
    now = utc(2026, 11, 26, 1, 0)  # Thursday 09:00 in Suzhou
    yesterday_1730 = utc(2026, 11, 25, 9, 30)

    def late(case_id: str, category: str, grade: str, deadline, status: str = "dispatched") -> dict:
        row = record(case_id, status=status, grade=grade)
        row.update(category=category, stage_deadline=deadline.isoformat(), stage_due_soon_at=(deadline - timedelta(hours=1)).isoformat())
        return row

    rows = wall_rules.alert_rows([late("c-working", "E050101", "C", yesterday_1730), late("a-natural", "B010102", "A", now - timedelta(minutes=30)),
                                  late("c-fresh", "E050101", "C", now - timedelta(minutes=1))], now, limit=None, rules=rules)
    assert [row["id"] for row in rows] == ["a-natural", "c-working", "c-fresh"]
    working = rows[1]
    assert working["working"] and working["unit"] == "wd" and working["late_amount"] == round(30 / domain_config.calendar.minutes_per_day, 2)
    assert working["late_s"] == 15.5 * 3600  # the natural time the wall used to show
    assert not rows[0]["working"] and rows[0]["late_amount"] == 0.5 and rows[0]["late_share"] == 0.25  # half an hour past a 2-hour limit
    cell = wall.late_cell(working, "zh")
    assert cell.children == "超期 30 工作分钟" and not hasattr(cell, "data-deadline")  # under a working day in working hours, under an hour in minutes
    assert wall.late_cell(working, "en").children.startswith("overdue 30 ")
    two_hours = wall_rules.alert_rows([late("c-2h", "E050101", "C", utc(2026, 11, 25, 7, 30))], now, limit=None, rules=rules)[0]
    assert wall.late_cell(two_hours, "zh").children == "超期 2.5 工作小时"  # 15:30 yesterday: two hours to 17:30, half an hour today
    assert getattr(wall.late_cell(rows[0], "zh"), "data-deadline") == str(rows[0]["deadline"])


def test_new_danger_asks_for_attention_until_acknowledged_and_again_when_it_falls_overdue():
    fresh_a = {**record("a-new", status="reported", grade="A", deadline_in=5, due_soon_in=2, reported_ago=3)}
    late_a = record("a-late", grade="A", deadline_in=-10, due_soon_in=-20, reported_ago=200)
    old_a = record("a-old", grade="A", reported_ago=45)  # reported 45 min ago, on time: nothing new
    late_b = record("b-late", grade="B", deadline_in=-10, due_soon_in=-20)
    items = wall_rules.attention_items([fresh_a, late_a, old_a, late_b], NOW, set())
    assert [(item["id"], item["reason"]) for item in items] == [("a-new", "new"), ("a-late", "overdue")]  # the newest danger first
    assert items[1]["key"] == "a-late|overdue" and items[1]["since"] == int((NOW - timedelta(minutes=10)).timestamp() * 1000)
    assert [item["id"] for item in wall_rules.attention_items([fresh_a, late_a], NOW, {"a-new|new"})] == ["a-late"]
    # acknowledged as new, the same case asks again once it is overdue
    fallen = {**fresh_a, "stage_deadline": (NOW - timedelta(minutes=1)).isoformat(), "stage_due_soon_at": (NOW - timedelta(minutes=3)).isoformat()}
    assert [item["key"] for item in wall_rules.attention_items([fallen], NOW, {"a-new|new"})] == ["a-new|overdue"]


def test_an_acknowledgement_names_only_what_an_attention_key_can_be():
    assert wall_rules.is_attention_key("WT12|new") and wall_rules.is_attention_key("2026-1|overdue")
    for bad in ("WT12", "WT12|late", "|new", "a|b|new", 12, None, ["x|new"], "x" * 90 + "|new"):
        assert not wall_rules.is_attention_key(bad), bad
