"""Identifiers of the feed contract: letters of any script, digits and -_.:/, nothing else."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridrules.identifiers import is_identifier


@pytest.mark.parametrize("text", ["C-2026-000123", "ev_1.2:3/4", "网格-长桥-001", "Ωмир123", "٣٤٥", "case"])
def test_letters_of_any_script_digits_and_the_five_marks_are_identifiers(text):
    assert is_identifier(text)


@pytest.mark.parametrize("text", [
    "", " ", "a b", "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\")", "a\"b", "a'b", "a&b", "a;b",
    "a\nb", "a\tb", "a\x00b", "+1", "@SUM(1)", "x%20y", "a\\b", "\u200bzero-width", "a\u0301",  # a combining mark
])
def test_markup_formulas_spaces_and_controls_are_not(text):
    assert not is_identifier(text)


@given(st.text(max_size=30))
def test_an_identifier_never_carries_markup_or_a_formula(text):
    if is_identifier(text):
        assert not set(text) & set("<>&\"'= \t\r\n;,()@+%\\`")
