"""The review screen's pure parts: what the tables and charts hold, in which order."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from layouts.review import department_rows
from layouts.weekly import red_black


def test_departments_are_listed_worst_first_and_those_with_nothing_due_last():
    departments = pd.DataFrame({
        "dept": ["GOOD", "ONE", "LATE", "IDLE", "LATER"],
        "name": ["好", "一件", "迟", "闲", "更迟"],
        "due_to_close": [40, 1, 30, 0, 12],
        "overdue": [0, 0, 9, 0, 9],
        "score": [96.0, 100.0, 61.5, float("nan"), 61.5],
    })
    rows = department_rows(departments)
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
