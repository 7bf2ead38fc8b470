"""Masking personal data: reporter names, contact numbers, and phone or ID numbers inside free text.

Pure functions. ``138****1234`` for mobile numbers, the area code and last four digits of
landlines, the first six and last four characters of an ID card number, the surname of a
name.
"""
from __future__ import annotations

import re

MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
ID_CARD = re.compile(r"(?<![\dXx])(\d{6})(\d{8})(\d{3}[\dXx])(?![\dXx])")
LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?!\d)")


def mask_phone(text: str | None) -> str | None:
    """138****1234 for a mobile number; for anything else every digit but the last four."""
    if not text:
        return text
    masked = mask_free_text(text)
    if masked != text:
        return masked
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    hidden = set(digits[:-4]) if len(digits) > 4 else set(digits)
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def staff_phone(phone: str | None, personal_data: bool) -> str | None:
    """A grid worker's phone as a caller sees it: whole where the role sees personal data."""
    return phone if personal_data else mask_phone(phone)


def mask_name(name: str | None) -> str | None:
    """Keep the first and last character: 张*丰 for 张三丰, 张*生 for 张先生, 张* for 张三."""
    if not name:
        return name
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 2) + name[-1] if len(name) > 2 else name[0] + "*"


def mask_free_text(text: str | None) -> str | None:
    """Hide mobile, landline and ID card numbers written anywhere in a description."""
    if not text:
        return text
    text = ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(3)}", text)
    text = MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    return text
