"""The cells of every exported table, CSV or spreadsheet: numbers stay numbers, text stays text.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after a
tab, a line break or spaces) as a formula: a case id ``=HYPERLINK(...)`` in an export would
send data away when a leader opens the file (OWASP "CSV injection", ASVS 1.2.10). Text comes
from feeds and import files, so every writer of CSV or XLSX cells goes through this module
(a test holds the rest of the code to that):

- CSV: such text gets a leading single quote (the OWASP way), which spreadsheets read as
  "this is text" and do not show;
- XLSX: text is stored as a string (openpyxl would store it as a formula), with Excel's
  quote prefix on formula-like text so that editing the cell keeps it text.
"""
from __future__ import annotations

import csv
import io
import numbers
import re
from collections.abc import Iterable, Sequence

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = frozenset("=+-@＝＋－＠")  # full-width forms too: CJK input methods type them
FORMULA_LEADS = frozenset("\t\r\n\0")  # a cell starting with one of these is read past it
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
REPLACEMENT = "\ufffd"


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet program could take ``text`` for a formula (a plain number it takes for that number)."""
    if not text or PLAIN_NUMBER.fullmatch(text):
        return False
    return text[0] in FORMULA_LEADS or text.lstrip()[:1] in FORMULA_STARTS


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def csv_value(value: object) -> str | numbers.Number:
    """One CSV cell: numbers as they are, None empty, text with a quote before anything formula-like."""
    if value is None:
        return ""
    if _is_number(value):
        return value
    text = str(value)
    return "'" + text if is_formula_like(text) else text


def csv_text(rows: Iterable[Sequence], byte_order_mark: bool = True) -> str:
    """Rows as CSV text; with a byte-order mark spreadsheet programs read the Chinese as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_value(value) for value in row])
    return ("\ufeff" if byte_order_mark else "") + buffer.getvalue()


def xml_text(value: object) -> str:
    """Text an XLSX file can hold: control characters XML cannot carry (they would spoil the whole file) replaced."""
    return ILLEGAL_CHARACTERS_RE.sub(REPLACEMENT, str(value))


def put_cell(sheet: Worksheet, row: int, column: int, value: object) -> Cell:
    """Write ``value`` into an openpyxl sheet's cell (numbers as numbers, text as text) and return the cell."""
    cell = sheet.cell(row=row, column=column)
    if value is None or _is_number(value):
        cell.value = value
        return cell
    text = xml_text(value)
    cell.value = text
    cell.data_type = "s"  # openpyxl makes a formula of any text starting with "="
    if is_formula_like(text):
        cell.quotePrefix = True
    return cell
