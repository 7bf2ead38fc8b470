"""Identifiers of the feed contract and the import files (README, "The feeds" and "Import
formats"): case and event ids, worker ids, grid, class and department codes.

They are letters of any script, digits and ``-_.:/`` — nothing that means something to
HTML, a spreadsheet, a shell or a log line — so an identifier can never carry markup or a
formula into a screen or an export, whatever a publisher sends.
"""
from __future__ import annotations

import re
import unicodedata

IDENTIFIER_PUNCTUATION = frozenset("-_.:/")
_ASCII_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:/-]+")
_LETTER_OR_DIGIT = ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd")


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a non-empty identifier: letters of any script (Unicode L*), decimal
    digits (Nd) and ``-_.:/``, nothing else (no spaces, no markup, no control characters)."""
    if _ASCII_IDENTIFIER.fullmatch(text):
        return True
    return bool(text) and all(ch in IDENTIFIER_PUNCTUATION or unicodedata.category(ch) in _LETTER_OR_DIGIT for ch in text)
