"""The review screen's pure parts: what the tables and charts hold, in which order."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from layouts.review import area_collection, department_rows, legend_steps, ranking_rows
from layouts.weekly import red_black


def test_departments_are_listed_worst_first_and_those_with_nothing_due_last():
    departments = pd.DataFrame({
        "dept": ["GOOD", "ONE", "LATE", "IDLE", "LATER"],
        "name": ["好", "一件", "迟", "闲", "更迟"],
        "due_to_close": [40, 1, 30, 0, 12],
        "overdue": [0, 0, 9, 0, 9],
        "score": [96.0, 100.0, 61.5, float("nan"), 61.5],
    })
    rows = department_rows(departments, "zh")
    assert [row["dept"] for row in rows] == ["LATE", "LATER", "GOOD", "ONE", "IDLE"]
    assert rows[-1]["score"] is None


def test_the_red_list_numbers_each_department_by_its_rank_and_states_its_rule():
    """Rank 2 has too few cases due for the lists: the red list reads 1, 3, 4, as the ranking does."""
    red = pd.DataFrame({"dept": ["A", "C", "D"], "name": ["甲", "丙", "丁"], "score": [99.0, 97.5, 96.0], "rank": [1, 3, 4]})
    black = pd.DataFrame({"dept": ["Z"], "name": ["末"], "score": [40.0], "rank": [12]})
    shown = red_black(SimpleNamespace(red=red, black=black), "zh", min_due=5)
    items = [item for card in shown.children[0].children for item in card.children[1].children]
    assert [(item.children[0].children, item.children[1].children) for item in items] == [("1", "甲"), ("3", "丙"), ("4", "丁"), ("12", "末")]
    assert "不少于 5 件" in shown.children[1].children


SQUARE = {"type": "Polygon", "coordinates": [[[120.6, 31.2], [120.7, 31.2], [120.7, 31.3], [120.6, 31.3], [120.6, 31.2]]]}


def child(code: str, score: float | None, overdue: int, reported: int) -> dict:
    return {"code": code, "name": f"区域{code}", "geometry": SQUARE, "reported": reported, "in_progress": 3, "overdue": overdue,
            "closure_rate": 0.5, "on_time_closure_rate": 0.4, "satisfaction_rate": None, "score": score, "grade": None if score is None else "C"}


def test_the_sub_area_ranking_lists_the_worst_first():
    children = [child("A", 91.0, 0, 50), child("B", None, 0, 2), child("C", 55.0, 3, 40), child("D", 55.0, 7, 10), child("E", 70.0, 0, 80)]
    assert [row["code"] for row in ranking_rows(children)] == ["D", "C", "E", "A", "B"]


def test_an_areas_tooltip_says_what_each_number_is():
    feature = area_collection([child("A", 72.25, 5, 198)], "zh")["features"][0]
    assert feature["properties"]["label"] == ["区域A", "上报数 198", "处置中 3", "超期数 5", "综合得分 72.2 · 等级 C"]
    english = area_collection([child("A", None, 5, 198)], "en")["features"][0]
    assert english["properties"]["label"] == ["区域A", "Reported 198", "In progress 3", "Overdue 5"]


def test_the_legend_covers_every_count_once_as_the_map_shades_it():
    """gridops.map.shareColour: 0 → step 0; a share of the largest under ¼ → 1, under ½ → 2, under ¾ → 3, the rest → 4."""
    for largest in (1, 2, 3, 4, 5, 7, 198, 1000):
        steps = dict(legend_steps(largest))
        assert steps[0] == "0"
        for value in range(1, largest + 1):
            share = value / largest
            expected = 1 if share < 0.25 else 2 if share < 0.5 else 3 if share < 0.75 else 4
            low, _, high = steps[expected].partition("–")
            assert int(low) <= value <= int(high or low), (largest, value, steps)
    assert legend_steps(198) == [(0, "0"), (1, "1–49"), (2, "50–98"), (3, "99–148"), (4, "149–198")]
