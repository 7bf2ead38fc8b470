"""The domain configuration file (calendar, stage warnings, patrol norms, score weights)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gridrules.limits import LimitError, StageLimits
from gridrules.workcalendar import CalendarError, WorkCalendar, calendar_from_config

SCORE_KINDS = ("department", "grid", "worker")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message says which and how to fix it."""


DEPARTMENT_VIEWS = ("dispatched", "responsible")


@dataclass(frozen=True)
class DomainConfig:
    """Parsed ``gridops.toml``."""

    calendar: WorkCalendar
    due_soon_fraction: float
    escalate_multiple: float
    offline_after_minutes: float
    expected_rounds_per_day: float
    expected_hours_per_day: float
    expected_valid_reports_per_day: float
    min_ranked_patrol_hours: float  # a worker with less patrol in the period is listed, not ranked
    score_weights: dict  # kind -> {indicator name (optionally "1-" prefixed): weight}
    grade_thresholds: tuple  # ((grade, min score), ...) best first; below the last is "E"
    red_count: int
    black_count: int
    min_due: int
    grade_limits: dict  # grade -> StageLimits, used when an event overrides a category's grade
    department_sees: str = "dispatched"  # or "responsible": see [access] in gridops.toml


def load_domain_config(path: Path, tz: ZoneInfo) -> DomainConfig:
    """Read and validate the configuration file; errors name the file and the table."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"configuration file {path} not found (GRIDOPS_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    try:
        calendar = calendar_from_config(raw.get("calendar", {}), tz)
    except CalendarError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    stages = raw.get("stages", {})
    patrol = raw.get("patrol", {})
    score = raw.get("score", {})
    weights = {}
    for kind in SCORE_KINDS:
        table = score.get(kind, {})
        if not table or any(float(w) < 0 for w in table.values()) or sum(float(w) for w in table.values()) <= 0:
            raise SettingsError(f"{path}: [score.{kind}] needs positive weights")
        weights[kind] = {name: float(w) for name, w in table.items()}
    grades = score.get("grades", {"A": 90, "B": 75, "C": 60, "D": 40})
    thresholds = tuple(sorted(((g, float(v)) for g, v in grades.items()), key=lambda item: -item[1]))
    redblack = raw.get("redblack", {})
    fraction = float(stages.get("due_soon_fraction", 0.8))
    if not 0 < fraction < 1:
        raise SettingsError(f"{path}: [stages] due_soon_fraction must be between 0 and 1")
    try:
        grade_limits = {
            grade: StageLimits.parse(t["register"], t["dispatch"], t["handle"], t["verify"], t.get("calendar", "natural"))
            for grade, t in raw.get("grade_limits", {}).items()
        }
    except (KeyError, LimitError) as exc:
        raise SettingsError(f"{path}: [grade_limits]: {exc}") from None
    department_sees = str(raw.get("access", {}).get("department_sees", "dispatched"))
    if department_sees not in DEPARTMENT_VIEWS:
        raise SettingsError(f"{path}: [access] department_sees must be one of {', '.join(DEPARTMENT_VIEWS)}")
    return DomainConfig(
        calendar=calendar,
        due_soon_fraction=fraction,
        escalate_multiple=float(stages.get("escalate_multiple", 2.0)),
        offline_after_minutes=float(patrol.get("offline_after_minutes", 10)),
        expected_rounds_per_day=float(patrol.get("expected_rounds_per_day", 2)),
        expected_hours_per_day=float(patrol.get("expected_hours_per_day", 3.0)),
        expected_valid_reports_per_day=float(patrol.get("expected_valid_reports_per_day", 2.0)),
        min_ranked_patrol_hours=float(patrol.get("min_ranked_patrol_hours", 3.0)),
        score_weights=weights,
        grade_thresholds=thresholds,
        red_count=int(redblack.get("red_count", 3)),
        black_count=int(redblack.get("black_count", 3)),
        min_due=int(redblack.get("min_due", 5)),
        grade_limits=grade_limits,
        department_sees=department_sees,
    )
