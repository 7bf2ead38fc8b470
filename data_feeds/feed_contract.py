"""The feed contract (README, "The feeds"): validate raw stream messages into typed events.

Every field arrives as bytes. A message that cannot be applied raises ``FeedError`` with a
machine-readable ``reason`` (one of ``Reason``) and a human ``detail``; the consumer moves
it to the dead-letter stream. Nothing here touches Redis or the database.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import schema
from data_feeds.grid_locator import GRID_MISMATCH_TOLERANCE_M, GridLocator
from data_feeds.reference import load_categories
from gridrules.coords import CRS_NAMES, convert, gcj02_to_wgs84
from gridrules.identifiers import is_identifier
from gridrules.lifecycle import ACTIONS, GRADES, NOTE_ACTIONS, SATISFACTION, SOURCES, CaseEvent, Category

MAX_FIELDS = 40
MAX_FIELD_CHARS = 200
# Fields stored in a column of limited length are limited to it here, so that the database
# never refuses what validation let through (PostgreSQL would, SQLite would not).
MAX_TEXT_CHARS = {
    "description": 2000,
    "event_id": schema.case_events.c.event_id.type.length,
    "case_id": schema.cases.c.id.type.length,
    "reporter": schema.cases.c.reporter.type.length,
    "contact": schema.cases.c.contact.type.length,
    "worker": schema.workers.c.id.type.length,
}
MAX_FUTURE_S = 300  # device clocks run a little fast; beyond this a timestamp is wrong
MAX_SPEED_MPS = 100.0
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and newlines are fine in free text
SOURCE_ALIASES = {"12345": "hotline", "110": "police", "grid": "patrol", "app": "patrol", "weixin": "wechat"}


class Reason:
    """Machine-readable dead-letter reasons."""

    NOT_TEXT = "not_text"
    BAD_IDENTIFIER = "bad_identifier"
    TOO_MANY_FIELDS = "too_many_fields"
    OVERSIZED_FIELD = "oversized_field"
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    UNKNOWN_ACTION = "unknown_action"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    BAD_COORDINATES = "bad_coordinates"
    OUT_OF_DISTRICT = "out_of_district"
    UNKNOWN_GRID = "unknown_grid"
    GRID_MISMATCH = "grid_mismatch"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_WORKER = "unknown_worker"
    ILLEGAL_TRANSITION = "illegal_transition"
    BEFORE_PREVIOUS = "before_previous_transition"
    UNKNOWN_CASE = "unknown_case"
    OUT_OF_ORDER_TIMEOUT = "out_of_order_timeout"
    VALIDATION_ERROR = "validation_error"  # validating it failed in a way nobody foresaw
    APPLY_ERROR = "apply_error"  # the database refused it, alone, for what it holds
    POISON = "poison"  # delivered again and again without ever being finished (it may crash consumers)


class FeedError(ValueError):
    """A message that cannot be applied: ``reason`` for machines, ``detail`` for people."""

    def __init__(self, reason: str, detail: str, field: str | None = None):
        self.reason = reason
        self.detail = detail
        self.field = field
        super().__init__(f"{reason}: {detail}")


def unexpected(error: Exception) -> FeedError:
    """A FeedError for an exception nobody foresaw while validating one message."""
    return FeedError(Reason.VALIDATION_ERROR, f"{type(error).__name__}: {str(error)[:300]}")


@dataclass(frozen=True)
class Reference:
    """What validation checks codes against; loaded from the database, refreshed by the consumer."""

    grids: frozenset
    categories: Mapping[str, Category]
    departments: frozenset
    workers: frozenset
    locator: GridLocator
    map_crs: str = "gcj02"
    max_age: timedelta = timedelta(days=90)


def load_reference(engine: Engine, map_crs: str = "gcj02", max_age_days: float = 90) -> Reference:
    locator = GridLocator.from_database(engine)
    with engine.connect() as connection:
        departments = frozenset(connection.execute(select(schema.departments.c.code)).scalars())
        workers = frozenset(connection.execute(select(schema.workers.c.id)).scalars())
    return Reference(
        grids=frozenset(locator.codes.tolist()),
        categories=load_categories(engine),
        departments=departments,
        workers=workers,
        locator=locator,
        map_crs=map_crs,
        max_age=timedelta(days=max_age_days),
    )


# ---------------------------------------------------------------- fields


def decode_fields(raw: Mapping) -> dict[str, str]:
    """Bytes → text for every field; refuse binary junk, too many or oversized fields."""
    if len(raw) > MAX_FIELDS:
        raise FeedError(Reason.TOO_MANY_FIELDS, f"{len(raw)} fields; at most {MAX_FIELDS}")
    try:  # the common case, fast: clean UTF-8 of ordinary length
        fields = {key.decode(): value.decode() for key, value in raw.items()}
    except (UnicodeDecodeError, AttributeError):
        return _decode_carefully(raw)
    if CONTROL_CHARACTERS.search("".join(fields) + "".join(fields.values())) or any(
        len(text) > MAX_TEXT_CHARS.get(name, MAX_FIELD_CHARS) for name, text in fields.items()
    ):
        return _decode_carefully(raw)
    return fields


def _decode_carefully(raw: Mapping) -> dict[str, str]:
    """Field by field, to name the one at fault."""
    fields = {}
    for key, value in raw.items():
        name = _text(key, "field name")
        text = _text(value, name)
        limit = MAX_TEXT_CHARS.get(name, MAX_FIELD_CHARS)
        if len(text) > limit:
            raise FeedError(Reason.OVERSIZED_FIELD, f"{name} has {len(text)} characters; at most {limit}", name)
        fields[name] = text
    return fields


def _text(value, name: str) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = bytes(value).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            raise FeedError(Reason.NOT_TEXT, f"{name} is not UTF-8 text", name) from None
    if CONTROL_CHARACTERS.search(text):
        raise FeedError(Reason.NOT_TEXT, f"{name} contains control characters", name)
    return text


def required(fields: dict, name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise FeedError(Reason.MISSING_FIELD, f"{name} is missing or empty", name)
    return value


def required_identifier(fields: dict, name: str) -> str:
    """A required identifier field (ids and codes): letters, digits and ``-_.:/`` only."""
    return identifier(required(fields, name), name)


def identifier(value: str, name: str) -> str:
    if not is_identifier(value):
        raise FeedError(Reason.BAD_IDENTIFIER, f"{name} may hold only letters, digits and -_.:/", name)
    return value


EARLIEST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DEADLINE_DAYS = 366  # an explicit deadline further than this after its dispatch is a typo, not a plan


def parse_time(text: str, name: str = "ts") -> datetime:
    """ISO 8601 with an offset, or epoch milliseconds, between 2000 and 2100 (UTC).

    Anything outside that range is refused here, before it reaches a conversion or the
    database: years like 33658 (``999999999999999`` ms) or 9999-12-31 with a negative offset
    overflow Python's and the databases' date types."""
    text = text.strip()
    try:
        if text.isdigit():
            if len(text) > 15:
                raise ValueError
            moment = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise FeedError(Reason.BAD_TIMESTAMP, f"{name}={text[:40]!r} is neither ISO 8601 nor epoch milliseconds between 2000 and 2100", name) from None
    if moment.tzinfo is None:
        raise FeedError(Reason.BAD_TIMESTAMP, f"{name}={text[:40]!r} has no UTC offset (e.g. +08:00)", name)
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise FeedError(Reason.BAD_TIMESTAMP, f"{name}={text[:40]!r} is not between 2000 and 2100", name)
    return moment


def check_recent(moment: datetime, now: datetime, max_age: timedelta, name: str = "ts") -> datetime:
    if moment > now + timedelta(seconds=MAX_FUTURE_S):
        raise FeedError(Reason.TIMESTAMP_IN_FUTURE, f"{name} {moment.isoformat()} is {(moment - now).total_seconds():.0f} s in the future", name)
    if moment < now - max_age:
        raise FeedError(Reason.TIMESTAMP_TOO_OLD, f"{name} {moment.isoformat()} is older than {max_age.days} days", name)
    return moment


def parse_number(text: str, name: str, low: float | None = None, high: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FeedError(Reason.BAD_VALUE, f"{name}={text!r} is not a number", name) from None
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise FeedError(Reason.BAD_VALUE, f"{name}={text!r} is out of range", name)
    return value


def raw_position(fields: dict) -> tuple[float, float, str]:
    """lat, lon and datum as sent; refuse the impossible (NaN, infinite, off the globe)."""
    lat_text, lon_text = required(fields, "lat"), required(fields, "lon")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise FeedError(Reason.BAD_COORDINATES, f"lat={lat_text!r}, lon={lon_text!r} are not numbers", "lat") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise FeedError(Reason.BAD_COORDINATES, f"lat={lat_text!r}, lon={lon_text!r} are not a position", "lat")
    crs = (fields.get("crs") or "wgs84").strip().lower()
    if crs not in CRS_NAMES:
        raise FeedError(Reason.BAD_VALUE, f"crs={crs!r} is not one of {', '.join(CRS_NAMES)}", "crs")
    return lat, lon, crs


def parse_position(fields: dict, reference: Reference) -> tuple[float, float]:
    """lat/lon in the message's datum → the map datum."""
    lat, lon, crs = raw_position(fields)
    map_lat, map_lon = convert(lat, lon, crs, reference.map_crs)
    return float(map_lat), float(map_lon)


# ---------------------------------------------------------------- case events


def validate_case_event(raw: Mapping, reference: Reference, now: datetime) -> CaseEvent:
    """A typed, checked CaseEvent, or FeedError naming what is wrong."""
    fields = decode_fields(raw)
    event_id = required_identifier(fields, "event_id")
    case_id = required_identifier(fields, "case_id")
    action = required(fields, "action").lower()
    if action not in ACTIONS:
        raise FeedError(Reason.UNKNOWN_ACTION, f"action={action!r} is not one of {', '.join(ACTIONS)}", "action")
    ts = check_recent(parse_time(required(fields, "ts")), now, reference.max_age)
    values: dict = {"event_id": event_id, "case_id": case_id, "action": action, "ts": ts, "actor": fields.get("actor", "")[:80]}
    grade = fields.get("grade", "").strip().upper() or None
    if grade is not None and grade not in GRADES:
        raise FeedError(Reason.BAD_VALUE, f"grade={grade!r} is not A, B or C", "grade")
    if action == "report":
        values.update(_report_fields(fields, reference))
        values["grade"] = grade
    elif action == "register":
        values["grade"] = grade
    elif action == "dispatch":
        values["dept"] = _department(fields, reference, needed=True)
        if fields.get("deadline", "").strip():
            values["deadline"] = _deadline(fields, ts, "dispatch")
    elif action == "decline":
        values["dept"] = _department(fields, reference, needed=False)
    elif action == "extend":
        values["deadline"] = _deadline(fields, ts, "extension")
    elif action == "evaluate":
        satisfaction = required(fields, "satisfaction").lower()
        if satisfaction not in SATISFACTION:
            raise FeedError(Reason.BAD_VALUE, f"satisfaction={satisfaction!r} is not one of {', '.join(SATISFACTION)}", "satisfaction")
        values["satisfaction"] = satisfaction
    if action in NOTE_ACTIONS:
        values["note"] = _note(fields)
    return CaseEvent(**values)


def _department(fields: dict, reference: Reference, needed: bool) -> str | None:
    if not needed and not fields.get("dept", "").strip():
        return None
    dept = required_identifier(fields, "dept")
    if dept not in reference.departments:
        raise FeedError(Reason.UNKNOWN_DEPARTMENT, f"dept={dept!r} is not a known department", "dept")
    return dept


def _deadline(fields: dict, ts: datetime, what: str) -> datetime:
    deadline = parse_time(required(fields, "deadline"), "deadline")
    if deadline <= ts:
        raise FeedError(Reason.BAD_VALUE, f"deadline is not after the {what} time", "deadline")
    if deadline > ts + timedelta(days=MAX_DEADLINE_DAYS):
        raise FeedError(Reason.BAD_VALUE, f"deadline is more than {MAX_DEADLINE_DAYS} days after the {what}", "deadline")
    return deadline


def _note(fields: dict) -> str:
    return note_text(required(fields, "note"))


def note_text(text: object) -> str:
    """The operator's words (a supervision's note, a decline's or an extension's reason) on one
    line, runs of white space one space."""
    return " ".join(str(text or "").split())


def case_message(event: CaseEvent, tz, send_grid: bool = True) -> dict:
    """The feed message of an event (every field a string, positions WGS-84)."""
    message = {
        "event_id": event.event_id, "case_id": event.case_id, "action": event.action,
        "ts": event.ts.astimezone(tz).isoformat(timespec="milliseconds"), "actor": event.actor,
    }
    if event.action == "report":
        lat, lon = gcj02_to_wgs84(event.lat, event.lon)
        message.update(category=event.category, source=event.source, lat=f"{lat:.7f}", lon=f"{lon:.7f}")
        if send_grid:
            message["grid"] = event.grid
        for name in ("worker", "grade", "description", "reporter", "contact"):
            if getattr(event, name):
                message[name] = str(getattr(event, name))
    elif event.action == "evaluate":
        message["satisfaction"] = event.satisfaction
    if event.dept and event.action in ("dispatch", "decline"):
        message["dept"] = event.dept
    if event.deadline and event.action in ("dispatch", "extend"):
        message["deadline"] = event.deadline.astimezone(tz).isoformat(timespec="seconds")
    if event.note:
        message["note"] = event.note
    return message


def _report_fields(fields: dict, reference: Reference) -> dict:
    category = required_identifier(fields, "category")
    found = reference.categories.get(category)
    if found is None or not found.is_detail:
        raise FeedError(Reason.UNKNOWN_CATEGORY, f"category={category!r} is not a detail class of the catalogue", "category")
    source_text = required(fields, "source").lower()
    source = SOURCE_ALIASES.get(source_text, source_text)
    if source not in SOURCES:
        raise FeedError(Reason.BAD_VALUE, f"source={fields['source']!r} is not one of {', '.join(SOURCES)}", "source")
    lat, lon = parse_position(fields, reference)
    located = reference.locator.locate(lat, lon)[0]
    grid = fields.get("grid", "").strip()
    if grid:
        identifier(grid, "grid")
        if grid not in reference.grids:
            raise FeedError(Reason.UNKNOWN_GRID, f"grid={grid!r} is not a basic grid of the district", "grid")
        if located is None and not reference.locator.district.contains(_point(lat, lon)):
            raise FeedError(Reason.OUT_OF_DISTRICT, f"position {lat:.6f},{lon:.6f} lies outside the district", "lat")
        if located != grid and reference.locator.distance_m(grid, lat, lon) > GRID_MISMATCH_TOLERANCE_M:
            raise FeedError(Reason.GRID_MISMATCH, f"position {lat:.6f},{lon:.6f} is not in grid {grid} but in {located}", "grid")
    else:
        if located is None:
            raise FeedError(Reason.OUT_OF_DISTRICT, f"position {lat:.6f},{lon:.6f} lies in no grid of the district", "lat")
        grid = located
    worker = fields.get("worker", "").strip() or None
    if worker is not None and identifier(worker, "worker") not in reference.workers:
        raise FeedError(Reason.UNKNOWN_WORKER, f"worker={worker!r} is not known", "worker")
    return {
        "grid": grid, "category": category, "source": source, "lat": round(lat, 6), "lon": round(lon, 6), "worker": worker,
        "description": fields.get("description") or None, "reporter": fields.get("reporter") or None, "contact": fields.get("contact") or None,
    }


def _point(lat: float, lon: float):
    return shapely.Point(lon, lat)


# ---------------------------------------------------------------- GPS


@dataclass
class GpsBatch:
    """Valid pings of a batch as parallel arrays (map datum), and the refused ones."""

    index: list  # position of each valid ping in the input batch
    worker: np.ndarray
    ts: np.ndarray  # datetime64[us], naive UTC
    lat: np.ndarray
    lon: np.ndarray
    grid: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    errors: dict  # input position -> FeedError


GPS_FIELDS = frozenset({b"worker", b"ts", b"lat", b"lon", b"crs", b"speed", b"heading", b"accuracy"})
CRS_BYTES = {name.encode(): name for name in CRS_NAMES}


def _fast_ping(raw: Mapping, workers: frozenset, earliest_ms: float, latest_ms: float):
    """The common, clean ping parsed quickly as (worker, epoch ms, lat, lon, crs, speed, heading);
    None for anything unusual, which the careful path then explains. It accepts only what
    ``_careful_ping`` accepts, with the same values (a property test holds them to that)."""
    try:
        if not GPS_FIELDS.issuperset(raw):
            return None
        worker = raw[b"worker"].decode()
        ts_text = raw[b"ts"].decode()
        lat = float(raw[b"lat"])
        lon = float(raw[b"lon"])
        if worker not in workers or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return None
        if ts_text.isdigit():
            ms = int(ts_text)
        else:
            moment = datetime.fromisoformat(ts_text)
            if moment.tzinfo is None:
                return None
            ms = moment.timestamp() * 1000
        if not earliest_ms <= ms <= latest_ms:
            return None
        crs = CRS_BYTES.get(raw.get(b"crs", b"wgs84").lower())
        speed_text, heading_text, accuracy_text = raw.get(b"speed"), raw.get(b"heading"), raw.get(b"accuracy")
        speed = float(speed_text) if speed_text else np.nan  # absent: unknown, worked out from the track
        heading = float(heading_text) if heading_text else np.nan
        accuracy = float(accuracy_text) if accuracy_text else 0.0
    except (KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError, OverflowError):
        return None
    # NaN fails every comparison, so a sent "nan" goes to the careful path, which refuses it
    if crs is None or (speed_text and not 0 <= speed <= MAX_SPEED_MPS) or (heading_text and not 0 <= heading <= 360) or not 0 <= accuracy <= 100_000:
        return None
    return worker, ms, lat, lon, crs, speed, heading


def _careful_ping(raw: Mapping, reference: Reference, now: datetime):
    """The same as ``_fast_ping``, field by field, raising FeedError with the reason."""
    fields = decode_fields(raw)
    worker = required_identifier(fields, "worker")
    if worker not in reference.workers:
        raise FeedError(Reason.UNKNOWN_WORKER, f"worker={worker!r} is not known", "worker")
    ts = check_recent(parse_time(required(fields, "ts")), now, reference.max_age)
    lat, lon, crs = raw_position(fields)
    speed = parse_number(fields["speed"], "speed", 0, MAX_SPEED_MPS) if fields.get("speed", "").strip() else np.nan
    heading = parse_number(fields["heading"], "heading", 0, 360) if fields.get("heading", "").strip() else np.nan
    if fields.get("accuracy", "").strip():
        parse_number(fields["accuracy"], "accuracy", 0, 100_000)
    return worker, ts.timestamp() * 1000, lat, lon, crs, speed, heading


def validate_gps_batch(raws: list[Mapping], reference: Reference, now: datetime) -> GpsBatch:
    """Parse a batch of pings; coordinates are converted and located in one vectorised pass."""
    errors: dict[int, FeedError] = {}
    index, parsed = [], []
    earliest_ms = (now - reference.max_age).timestamp() * 1000
    latest_ms = (now.timestamp() + MAX_FUTURE_S) * 1000
    for position, raw in enumerate(raws):
        ping = _fast_ping(raw, reference.workers, earliest_ms, latest_ms)
        if ping is None:
            try:
                ping = _careful_ping(raw, reference, now)
            except FeedError as error:
                errors[position] = error
                continue
            except Exception as error:  # a case nobody foresaw: this ping is refused, the batch goes on
                errors[position] = unexpected(error)
                continue
        index.append(position)
        parsed.append(ping)
    workers, stamps, lats, lons, crss, speeds, headings = (list(column) for column in zip(*parsed)) if parsed else ([], [], [], [], [], [], [])
    stamps = (np.array(stamps, dtype=float) * 1000).astype("int64").astype("datetime64[us]") if stamps else []
    lat = np.array(lats, dtype=float)
    lon = np.array(lons, dtype=float)
    crs_array = np.array(crss, dtype=object)
    for crs in set(crss):
        if crs != reference.map_crs:
            chosen = crs_array == crs
            lat[chosen], lon[chosen] = convert(lat[chosen], lon[chosen], crs, reference.map_crs)
    grid = reference.locator.locate(lat, lon)
    keep = np.array([g is not None for g in grid], dtype=bool)
    for position, (pos_lat, pos_lon) in zip(np.array(index)[~keep], zip(lat[~keep], lon[~keep])):
        errors[int(position)] = FeedError(Reason.OUT_OF_DISTRICT, f"position {pos_lat:.6f},{pos_lon:.6f} lies in no grid of the district", "lat")
    return GpsBatch(
        index=[i for i, k in zip(index, keep) if k],
        worker=np.array(workers, dtype=object)[keep],
        ts=stamps[keep] if len(stamps) else np.array([], dtype="datetime64[us]"),
        lat=lat[keep],
        lon=lon[keep],
        grid=grid[keep],
        speed=np.array(speeds, dtype=float)[keep],
        heading=np.array(headings, dtype=float)[keep],
        errors=errors,
    )
