"""How numbers and their changes are written, on the screens, in the PDF and in the spreadsheet.

One definition each: an indicator's kind of number and its format (rates as percentages,
hours and km with one decimal, scores with one decimal, counts with thousands separators),
which way it should move (higher or lower is better; volumes such as ``reported`` are not
judged), and how a change is written (``▲ 2.3 个百分点`` / ``▲ 2.3 pp``, ``持平`` / ``no change``).
"""
from __future__ import annotations

import html
import math
from collections.abc import Iterable

import pandas as pd

from dashboard.i18n import t, tf
from gridrules.indicators import RATE_KEYS

HOURS_KEYS = ("mean_close_hours", "p90_close_hours", "patrol_hours")
KM_KEYS = ("patrol_km",)
PERCENT_KEYS = RATE_KEYS + ("patrol_attainment", "report_attainment")

# Which way an indicator should move; the rest (volumes such as reported) are not judged.
HIGHER_IS_BETTER = frozenset({
    "closed_on_time", "closure_rate", "on_time_closure_rate", "on_time_handling_rate", "timely_registration_rate",
    "valid_report_rate", "satisfaction_rate", "patrol_hours", "patrol_km", "grids_patrolled", "workers_online", "patrol_attainment", "report_attainment",
})
LOWER_IS_BETTER = frozenset({
    "overdue", "reworked", "rework_rate", "mean_close_hours", "p90_close_hours", "invalid", "overdue_pending_rate",
})
TONES = ("good", "bad", "neutral")


def plain_number(value: object) -> int | float | None:
    """A plain Python number, or None for None/NaN/NA/infinite (what a cell or a label needs)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def kind_of(name: str) -> str:
    """The kind of number an indicator holds: ``rate`` (a fraction), ``hours`` (hours or km) or ``count``."""
    if name in PERCENT_KEYS:
        return "rate"
    if name in HOURS_KEYS or name in KM_KEYS:
        return "hours"
    return "count"


def format_number(kind: str, value: object) -> str:
    """A number of a kind: ``rate`` as a percentage, ``hours`` with one decimal and thousands separators,
    ``score`` with one decimal, ``count`` as a whole number with thousands separators; missing as ``—``."""
    value = plain_number(value)
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:,.1f}"
    if kind == "score":
        return f"{value:.1f}"
    return f"{int(value):,}"


def format_value(name: str, value: object, lang: str = "zh") -> str:
    """An indicator as every screen and export shows it: rates as percentages, hours and km with one decimal."""
    return format_number(kind_of(name), value)


def tone_of(name: str, delta: float) -> str:
    """good, bad or neutral: whether a change of ``name`` by ``delta`` is for the better."""
    if name in HIGHER_IS_BETTER:
        return "good" if delta > 0 else "bad"
    if name in LOWER_IS_BETTER:
        return "bad" if delta > 0 else "good"
    return "neutral"


def change_parts(name: str, current: object, previous: object, lang: str = "zh") -> tuple[str, str]:
    """(text, tone) of an indicator's change against the period before: ``▲ 12``,
    ``▼ 2.3 个百分点`` (a rate changes in percentage points, not percent), ``持平``, ``—``."""
    current, previous = plain_number(current), plain_number(previous)
    if current is None or previous is None:
        return "—", "neutral"
    delta = current - previous
    if abs(delta) < 1e-12:
        return t("unchanged", lang), "neutral"
    arrow = "▲" if delta > 0 else "▼"
    if name in PERCENT_KEYS:
        magnitude = format_value(name, abs(delta), lang).rstrip("%") + " " + t("percentage_points", lang)
    elif isinstance(delta, float) and not float(delta).is_integer() and name not in HOURS_KEYS + KM_KEYS:
        magnitude = f"{abs(delta):,.1f}"
    else:
        magnitude = format_value(name, abs(delta), lang)
    return f"{arrow} {magnitude}", tone_of(name, delta)


def chart_text(names: Iterable[object]) -> list[str]:
    """Names for a plotly chart (axis labels, legend, hover), shown as written.

    Plotly reads a subset of HTML in its texts (``<b>``, ``<br>``, ``<a href>``, entities);
    a class or grid name from an import file is escaped so that it shows literally.
    Plotly turns ``&lt;``, ``&gt;`` and ``&amp;`` back into characters, and not quotes,
    so quotes stay as they are.
    """
    return [html.escape(str(name), quote=False) for name in names]


def unique_labels(names: list[str], codes: list[str]) -> list[str]:
    """Names for an axis, with the code added where two classes share a name (CJ/T 214 has a
    市容环境 among components and among events)."""
    repeated = {name for name in names if names.count(name) > 1}
    return [f"{name} ({code})" if name in repeated else name for name, code in zip(names, codes)]


def amount_text(amount: float, unit: str, calendar_kind: str, lang: str = "zh") -> str:
    """A time in a stage limit's own unit, as the catalogue writes it: ``2 工作小时``,
    ``1.5 工作日``, ``30 分钟`` (minutes and hours count working time on a working calendar)."""
    shown = f"{amount:.1f}".rstrip("0").rstrip(".") if unit != "m" else f"{amount:.0f}"
    word = t(f"unit_working_{unit}" if calendar_kind == "working" and unit in ("m", "h") else f"unit_{unit}", lang)
    return f"{shown} {word}"


def distance_text(metres: float, lang: str = "zh") -> str:
    """``350 米``, ``1.2 公里``."""
    return tf("metres", lang, n=round(metres)) if metres < 1000 else tf("kilometres", lang, n=f"{metres / 1000:.1f}")


def age_text(seconds: float, lang: str = "zh") -> str:
    """How long ago: ``40 秒前``, ``12 分钟前``, ``3 小时前``."""
    if seconds < 90:
        return tf("seconds_ago", lang, n=round(seconds))
    if seconds < 90 * 60:
        return tf("minutes_ago", lang, n=round(seconds / 60))
    return tf("hours_ago", lang, n=round(seconds / 3600))


def interventions_text(row: dict, lang: str) -> str:
    """A department's interventions in a few words, only those it has: 督办 2（按期 1）· 延期 3."""
    parts = []
    if row.get("supervised"):
        parts.append(tf("supervised_part", lang, n=row["supervised"], on_time=row.get("supervised_on_time") or 0))
    parts += [tf(f"{key}_part", lang, n=row[key]) for key in ("redispatched", "declined", "extended") if row.get(key)]
    return " · ".join(parts)
