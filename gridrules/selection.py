"""What a desk screen shows, as it travels in the URL: area, window and filters.

``?area=CODE&window=7d&category=E05&grade=A&source=patrol&dept=CGJ&stage=handle`` (and
``start``/``end`` for a custom window; ``case=ID`` for the case open in the review's case
panel), so that a view can be shared and reloaded. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import urlencode

from gridrules import bounds
from gridrules.identifiers import is_identifier
from gridrules.indicators import Window
from gridrules.lifecycle import GRADES, SOURCES
from gridrules.limits import STAGES
from gridrules.timewindows import bounded, local_midnight, parse_moment, previous_period, today

WINDOWS = ("today", "7d", "30d", "custom")
FILTER_KEYS = ("category", "grade", "source", "dept", "stage")


@dataclass(frozen=True)
class Selection:
    area: str | None = None
    window: str = "today"
    start: str | None = None  # ISO date, custom windows only
    end: str | None = None  # ISO date, inclusive, custom windows only
    category: str | None = None
    grade: str | None = None
    source: str | None = None
    dept: str | None = None
    stage: str | None = None
    case: str | None = None  # the case whose panel is open

    def query(self) -> dict:
        """The URL query that reproduces this selection (empty parts left out)."""
        values = {"area": self.area, "window": self.window if self.window != "today" else None}
        if self.window == "custom":
            values.update(start=self.start, end=self.end)
        values.update({key: getattr(self, key) for key in FILTER_KEYS})
        values["case"] = self.case
        return {key: value for key, value in values.items() if value}

    def search(self, lang: str | None = None) -> str:
        query = self.query()
        if lang and lang != "zh":
            query["lang"] = lang
        return "?" + urlencode(query) if query else ""

    def with_area(self, area: str | None) -> Selection:
        """Another area: the open case (of the area left) closes."""
        return replace(self, area=area, case=None)

    def with_case(self, case: str | None) -> Selection:
        return replace(self, case=case)

    def without_case(self) -> Selection:
        return replace(self, case=None)


def parse(query: dict) -> Selection:
    """A selection from URL parameters; unknown values fall back to the defaults."""
    window = query.get("window") if query.get("window") in WINDOWS else "today"
    start, end = query.get("start"), query.get("end")
    case = query.get("case")
    if window == "custom" and not (_is_date(start) and _is_date(end) and start <= end):
        window, start, end = "7d", None, None
    return Selection(
        area=query.get("area") or None,
        window=window,
        start=start if window == "custom" else None,
        end=end if window == "custom" else None,
        category=query.get("category") or None,
        grade=query.get("grade") if query.get("grade") in GRADES else None,
        source=query.get("source") if query.get("source") in SOURCES else None,
        dept=query.get("dept") or None,
        stage=query.get("stage") if query.get("stage") in STAGES else None,
        case=case if isinstance(case, str) and len(case) <= bounds.MAX_CODE_LENGTH and is_identifier(case) else None,
    )


def _is_date(text: str | None) -> bool:
    try:
        date.fromisoformat(text or "")
        return True
    except ValueError:
        return False


def window_of(selection: Selection, tz: tzinfo, now: datetime, max_days: int = bounds.MAX_WINDOW_DAYS) -> Window:
    """Today; the last 7 or 30 local days including today; or the custom dates (inclusive),
    held to the same bounds as the API's ``?start=&end=`` (WindowError otherwise)."""
    if selection.window == "today":
        return today(tz, now)
    if selection.window == "custom":
        start = parse_moment(selection.start, tz, now)
        last_day = parse_moment(selection.end, tz, now).date()
        return bounded(start, local_midnight(last_day + timedelta(days=1), tz), tz, now, max_days)
    days = 7 if selection.window == "7d" else 30
    tomorrow = local_midnight(now.astimezone(tz).date() + timedelta(days=1), tz)
    return Window.until_now(tomorrow - timedelta(days=days), tomorrow, now)


def comparison(window: Window, now: datetime) -> Window:
    """The period before, of the same length (the change every indicator is shown with)."""
    return previous_period(window, now)
