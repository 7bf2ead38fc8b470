"""The review screen's pure parts: what the tables and charts hold, in which order."""
from __future__ import annotations

import pandas as pd

from layouts.review import department_rows


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
