"""Replay recorded real data through the feed: ``python app.py replay FILE``.

Two kinds of recording, recognised by their header line, are turned into the messages of
DESIGN §3 and published to the Redis streams exactly as the field apps and the hotline
publish theirs; the feed consumer then validates and applies them like any other traffic
(what it refuses goes to the dead-letter stream, as in production). The replay reads the
grid database (grids, workers, catalogue, departments) and never writes it.

GeoLife GPS trajectories → ``patrol-gps``
=========================================
Header ``lat,lng,datetime,uid`` (plain or gzipped; WGS-84; ``datetime`` in UTC, as the
GeoLife user guide says). Each device keeps its real timing, jitter and gaps:

- **Who.** Each ``uid`` becomes one grid worker of the database (role ``worker``), chosen
  by a stable hash of the uid over the workers sorted by id (the next free worker on a
  collision), so a replay against the same database always drives the same workers.
- **When.** Per user, the most recent ``--days`` local days that have data
  (``DEFAULT_GPS_DAYS``, at most the consumer's age limit less one day) are moved, each
  by a whole number of days, onto the most recent calendar days: the user's last recorded
  day becomes today (or yesterday, when its last point's time of day is later than now's),
  the one before it the day before, and so on. Time of day and every interval inside a day
  are kept; consecutive days stay consecutive (a walk over midnight stays one walk); longer
  gaps between recorded days are closed up. The latest point is never after now.
- **Where.** Each user-day is moved so that its first point lands on the centroid of the
  worker's grid (the database's centroids are in the map datum, GCJ-02; they are converted
  to WGS-84 first). The move is a translation in a local east/north plane around the first
  point, so walked distances are kept (a plain degree offset from Beijing to a southern
  district would shrink east-west distances by ~10%). Pings are sent in WGS-84 like real
  devices (``crs`` omitted); points that wander out of the district are sent anyway and
  the consumer dead-letters them, as it would for a real device.

LA 311 service requests → ``case-events``
=========================================
Header ``request_id,srnumber,created_date,closed_date,type_id,agency_id,source_id,
council_id,...`` with ``types.csv``, ``agencies.csv`` and ``sources.csv`` beside the file.
Every request becomes one case (``la311-<srnumber>``) whose events have deterministic ids
(``la311-<srnumber>-<action>``), so replaying a file again yields only duplicates.

- **When.** LA wall-clock times are read as local times of the district, and the whole
  file moves by a whole number of weeks so that its latest ``created_date`` is at or before
  now: weekday and hour-of-day rhythm are kept. ``report`` at created; ``register`` and
  ``dispatch`` ``REGISTER_DELAY`` and ``DISPATCH_DELAY`` after it; when ``closed_date``
  exists and is not before ``created_date``, ``feedback`` ``FEEDBACK_LEAD`` before close and
  ``close`` at ``closed_date`` (for short cases the delays shrink to fractions of the span, so
  the timeline never runs backwards). An event later than now is not sent: a request whose
  moved close is still in the future stays open (dispatched, or handled when its feedback is
  already past). A request without a usable close stays open after dispatch. Requests
  whose report would be older than the consumer's age limit are skipped and counted.
- **What.** ``TYPE_CATEGORY``: request type → detail class of the catalogue (unknown types
  → ``GENERAL_CATEGORY``). ``SOURCE_CHANNEL``: LA source → channel (unknown sources by the
  keywords of ``SOURCE_KEYWORDS``, else hotline).
- **Who handles it.** ``AGENCY_DEPT``: LA agency (by its data code) → department. The table
  is chosen so that each agency's department is the catalogue's responsible department of
  the classes it handles; ``TYPE_DEPT`` names the types where the catalogue's department is
  kept whatever LA's agency (homeless encampments go to civil affairs, not to sanitation);
  an agency missing from the table leaves the category's department.
- **Where.** The district's basic grids are grouped by their parent (community); the LA
  neighbourhood council picks a community by a stable hash (so a council's requests stay
  together, like a neighbourhood's), and the request number picks a basic grid in it. The
  position sent is a point inside that grid (drawn by a stable hash of the request number
  inside the grid polygon), in the map datum (``crs=gcj02``), with the grid's code.
  Requests from patrol channels carry the grid's worker as reporter (``worker``).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from sqlalchemy import select

from data_feeds import redis_client, schema
from data_feeds.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE_ERROR
from data_feeds.importers.common import ImportFileError
from data_feeds.keys import Keys
from gridrules.clock import utc_now
from gridrules.coords import convert

PIPELINE_CHUNK = 1000  # XADDs per pipeline round trip
DEFAULT_SHOW = 10  # messages printed by --dry-run
PACE_MIN_SLEEP_S = 0.02  # with --pace, gaps shorter than this are published without sleeping
AGE_MARGIN_S = 3600  # keep this far inside the consumer's age limit (the consumer may run later)
EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = math.pi / 180.0 * EARTH_RADIUS_M

# ---- GeoLife
GEOLIFE_COLUMNS = ("lat", "lng", "datetime", "uid")
DEFAULT_GPS_DAYS = 7  # a week of patrols per device

# ---- LA 311
LA_COLUMNS = ("srnumber", "created_date", "closed_date", "type_id", "agency_id", "source_id", "council_id")
LA_LOOKUPS = {"types.csv": ("type_id", "type_name"), "agencies.csv": ("agency_id", "data_code"), "sources.csv": ("source_id", "source_name")}
REGISTER_DELAY = timedelta(minutes=3)  # the hotline desk registers the request
DISPATCH_DELAY = timedelta(minutes=8)  # and dispatches it to the department
FEEDBACK_LEAD = timedelta(minutes=30)  # the department reports back this long before the close
REGISTER_SPAN_FRACTION = 0.25  # for short cases: register within the first quarter of the span
DISPATCH_SPAN_FRACTION = 0.5  # dispatch within the first half
FEEDBACK_SPAN_FRACTION = 0.25  # feedback within the last quarter
CASE_PREFIX = "la311-"
ACTOR = "replay:la311"

# LA request type → detail class of the default catalogue (data_feeds/data/catalogue.csv).
GENERAL_CATEGORY = "G050501"  # 社区服务中心设施损坏: the catalogue has no catch-all "other" class
TYPE_CATEGORY = {
    "Graffiti": "E020102",  # 宣传广告 / 非法小广告 / 涂写刻画 (CGJ)
    "Homeless Encampment": "E050501",  # 街面秩序 / 流浪乞讨 / 流浪乞讨人员 (MZJ)
    "Animal Remains": "E010303",  # 市容环境 / 道路不洁 / 动物尸体 (HWC)
    "Dead Animal Removal": "E010303",
    "Bulky Items": "E010103",  # 市容环境 / 暴露垃圾 / 大件垃圾乱堆 (HWC)
    "Metal/Appliances": "E010103",  # 大件垃圾乱堆: fridges, dryers, air conditioners
    "Metal/Household Appliances": "E010103",
    "Illegal Dumping": "E010101",  # 市容环境 / 暴露垃圾 / 暴露垃圾 (HWC)
    "Illegal Dumping Pickup": "E010101",
    "Electronic Waste": "E010104",  # 生活垃圾混投: e-waste left with household waste (HWC)
    "Single Streetlight": "B010301",  # 公用设施 / 路灯照明 / 路灯不亮 (SZSS)
    "Multiple Streetlights": "B010301",
    "Water Waste": "E040101",  # 道路积水: runoff and over-watering onto the street (SWJ)
    "Other": GENERAL_CATEGORY,
    "Feedback": GENERAL_CATEGORY,
}

# LA agency (agencies.csv data_code) → department (data_feeds/data/departments.csv).
AGENCY_DEPT = {
    "BSL": "SZSS",  # Street Lighting Bureau → 市政设施管理处
    "BOS": "HWC",  # Sanitation Bureau → 环境卫生管理处
    "LASAN": "HWC",  # Sanitation Bureau → 环境卫生管理处
    "OCB": "CGJ",  # Office of Community Beautification (graffiti) → 城市管理局
    "ITA": "SDZJ",  # Information Technology Agency (the 311 centre's own "Other") → 属地镇（街道）
    "LADWP": "SWJ",  # Department of Water & Power (water waste enforcement) → 水务局
    "BSS": "SZSS",  # Bureau of Street Services → 市政设施管理处
    "LADOT": "JTJ",  # Transportation Department → 交通运输局
    "LAAS": "GAJ",  # Animal Services (stray animals are police work in China) → 公安分局
    "RAP": "YLLH",  # Recreation & Parks → 园林和绿化管理局
    "BOE": "ZJJ",  # Engineering Bureau → 住房和城乡建设局
    "LADBS": "ZJJ",  # Department of Building and Safety → 住房和城乡建设局
    "BPW": "CGJ",  # Board of Public Works → 城市管理局
}
# Types whose catalogue department takes the case whatever LA's agency.
TYPE_DEPT = {"Homeless Encampment": "MZJ"}  # LA sends sanitation crews; here civil affairs (民政局) takes it

# LA source (sources.csv source_name) → channel of the feed contract.
SOURCE_CHANNEL = {
    "City Attorney": "leader",
    "Council's Office": "leader",
    "Mayor's Office": "leader",
    "Email": "wechat",
    "Mobile App": "wechat",
    "Social": "wechat",
    "Twitter": "wechat",
    "Web Form": "wechat",
    "Website": "wechat",  # "Self Service"
    "Phone Call": "hotline",
    "Queue-Initiated": "hotline",
    "Voicemail": "hotline",
    "TTY": "hotline",
    "Fax": "hotline",
    "Letter": "hotline",
    "Walk-in": "hotline",
    "Radio": "patrol",  # city crews calling in by radio
    "Work Crew": "patrol",  # "Driver Self Report"
}
SOURCE_KEYWORDS = (  # for sources not in the table, first match wins
    (("driver", "crew", "self report", "radio"), "patrol"),
    (("mayor", "council", "attorney"), "leader"),
    (("app", "mobile", "email", "web", "self service", "social", "twitter", "wechat"), "wechat"),
    (("phone", "call", "voicemail", "tty", "fax", "letter", "walk"), "hotline"),
)
DEFAULT_CHANNEL = "hotline"


class ReplayError(ValueError):
    """A replay that cannot run (options, database contents); the message says what to do."""


# ====================================================================== pure helpers


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def detect_format(header: list[str]) -> str | None:
    """``geolife`` or ``la311`` from a header line's column names; None when neither."""
    names = {name.strip().lower() for name in header}
    if set(GEOLIFE_COLUMNS) <= names:
        return "geolife"
    if set(LA_COLUMNS) <= names:
        return "la311"
    return None


def assign_workers(uids, worker_ids) -> dict[str, str]:
    """Each uid → a distinct worker, by a stable hash over the workers sorted by id."""
    workers = sorted(worker_ids)
    if len(set(uids)) > len(workers):
        raise ReplayError(f"{len(set(uids))} GPS devices but only {len(workers)} grid workers (role worker) in the database; import more workers")
    taken: set[int] = set()
    result = {}
    for uid in sorted(set(uids)):
        index = stable_hash(f"geolife:{uid}") % len(workers)
        while index in taken:
            index = (index + 1) % len(workers)
        taken.add(index)
        result[uid] = workers[index]
    return result


def shift_user_days(points: pd.DataFrame, tz, now: datetime, days: int) -> pd.DataFrame:
    """The points of each user's last ``days`` recorded local days, moved onto the latest days.

    ``points``: ``uid``, ``ts`` (naive UTC). Returns the selected rows (same index) with
    ``shift_days`` (whole days added), ``ts`` moved, and ``day`` (the new local date).
    Per user the last recorded day lands on today, or yesterday when its last time of day
    is later than now's; each earlier recorded day on the calendar day before the next.
    """
    if points.empty:
        return points.assign(shift_days=pd.Series(dtype="int64"), day=pd.Series(dtype="datetime64[s]"))
    local = points["ts"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    source_day = local.dt.floor("D")
    time_of_day = local - source_day
    now_local = pd.Timestamp(now.astimezone(tz).replace(tzinfo=None))
    today = now_local.floor("D")
    frames = []
    for index in points.groupby("uid", sort=True).groups.values():
        user_days = np.sort(source_day.loc[index].unique())
        chosen = user_days[-days:]
        last = chosen[-1]
        last_time = time_of_day.loc[index][source_day.loc[index] == last].max()
        anchor = today if last_time <= now_local - today else today - pd.Timedelta(days=1)
        targets = anchor - pd.to_timedelta(np.arange(len(chosen))[::-1], unit="D")
        shift_of_day = pd.Series(((targets - pd.DatetimeIndex(chosen)) // pd.Timedelta(days=1)).astype("int64"), index=pd.DatetimeIndex(chosen))
        selected = index[source_day.loc[index].isin(chosen)]
        shifts = source_day.loc[selected].map(shift_of_day).astype("int64")
        frames.append(pd.DataFrame({"shift_days": shifts}, index=selected))
    shifts = pd.concat(frames)["shift_days"]
    result = points.loc[shifts.index].copy()
    result["shift_days"] = shifts
    result["ts"] = result["ts"] + pd.to_timedelta(shifts, unit="D")
    result["day"] = (source_day.loc[shifts.index] + pd.to_timedelta(shifts, unit="D")).to_numpy()
    return result


def translate_tracks(lat, lon, first_lat, first_lon, target_lat, target_lon):
    """Move points so (first_lat, first_lon) lands on the target, keeping east/north metres."""
    lat, lon, first_lat, first_lon, target_lat, target_lon = (np.asarray(v, dtype=float) for v in (lat, lon, first_lat, first_lon, target_lat, target_lon))
    north_m = (lat - first_lat) * METRES_PER_DEGREE
    east_m = (lon - first_lon) * METRES_PER_DEGREE * np.cos(np.radians(first_lat))
    return target_lat + north_m / METRES_PER_DEGREE, target_lon + east_m / (METRES_PER_DEGREE * np.cos(np.radians(target_lat)))


def week_shift(latest_created: datetime, now_local: datetime) -> int:
    """Whole weeks to add so the latest creation time is at or before now (both naive local)."""
    return math.floor((now_local - latest_created) / timedelta(weeks=1))


def source_channel(name: str, code: str = "") -> str:
    """The feed channel of an LA source (by the table, then by keywords, else hotline)."""
    if name in SOURCE_CHANNEL:
        return SOURCE_CHANNEL[name]
    text = f"{name} {code}".lower()
    for keywords, channel in SOURCE_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return channel
    return DEFAULT_CHANNEL


def category_for_type(type_name: str) -> str:
    """The detail class of an LA request type (unknown types: the general class)."""
    return TYPE_CATEGORY.get(type_name, GENERAL_CATEGORY)


def department_for(type_name: str, agency_code: str | None, category_dept: str) -> str:
    """The department a request is dispatched to: TYPE_DEPT, else its agency's, else the category's."""
    if type_name in TYPE_DEPT:
        return TYPE_DEPT[type_name]
    return AGENCY_DEPT.get(agency_code or "", category_dept)


def case_timeline(created: datetime, closed: datetime | None, now: datetime) -> list[tuple[str, datetime]]:
    """(action, time) of a request's events that are not later than now, in order.

    ``closed`` is ignored when missing or before ``created``. For short cases the delays
    shrink to fractions of the span so the times never run backwards.
    """
    close_ok = closed is not None and closed >= created
    span = (closed - created) if close_ok else None
    register_delay = REGISTER_DELAY if span is None else min(REGISTER_DELAY, span * REGISTER_SPAN_FRACTION)
    dispatch_delay = DISPATCH_DELAY if span is None else min(DISPATCH_DELAY, span * DISPATCH_SPAN_FRACTION)
    events = [("report", created), ("register", created + register_delay), ("dispatch", created + dispatch_delay)]
    if close_ok:
        events += [("feedback", closed - min(FEEDBACK_LEAD, span * FEEDBACK_SPAN_FRACTION)), ("close", closed)]
    result = []
    for action, moment in events:
        if moment > now:
            break
        result.append((action, moment))
    return result


def group_grids(grids: pd.DataFrame) -> dict[str, list[str]]:
    """Basic grid codes by parent code, both sorted (the parent key is '' for orphans)."""
    groups: dict[str, list[str]] = {}
    for code, parent in sorted(zip(grids["code"], grids["parent"].fillna(""))):
        groups.setdefault(parent, []).append(code)
    return groups


def place_request(council: str, request: str, groups: dict[str, list[str]]) -> str:
    """The basic grid of a request: its council picks a community, its number a grid in it."""
    parents = sorted(groups)
    members = groups[parents[stable_hash(f"council:{council}") % len(parents)]]
    return members[stable_hash(f"request:{request}") % len(members)]


def point_inside(polygon, key: str, tries: int = 32) -> tuple[float, float]:
    """A point (lat, lon) inside ``polygon`` (lon/lat coordinates) drawn by a stable hash of ``key``."""
    minx, miny, maxx, maxy = polygon.bounds
    for attempt in range(tries):
        h = stable_hash(f"{key}:{attempt}")
        x = minx + (h & 0xFFFFFFFF) / 2**32 * (maxx - minx)
        y = miny + (h >> 32) / 2**32 * (maxy - miny)
        if polygon.contains(shapely.Point(x, y)):
            return y, x
    point = polygon.point_on_surface()
    return point.y, point.x


def iso(moment: datetime, tz) -> str:
    """ISO 8601 with the local offset, seconds precision (``2026-11-22T09:15:03+08:00``)."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


# ====================================================================== reading files


def _open_text(path: Path):
    """A text stream of a plain or gzipped UTF-8 file."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(2)
    except OSError as exc:
        raise ImportFileError(path, "", f"cannot read the file: {exc.strerror}") from None
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of every non-blank row; refuses malformed CSV."""
    stream = _open_text(path)
    reader = csv.reader(stream, strict=True)
    try:
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ImportFileError(path, "line 1", "empty file") from None
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise ImportFileError(path, f"line {reader.line_num}", f"{len(values)} fields where the header has {len(header)}")
            rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise ImportFileError(path, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(path, f"line {reader.line_num + 1}", "not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise ImportFileError(path, f"line {reader.line_num + 1}", f"cannot read the file: {exc}") from None
    finally:
        stream.close()
    return header, rows


def read_header(path: Path) -> list[str]:
    stream = _open_text(path)
    try:
        line = stream.readline()
    except (UnicodeDecodeError, OSError, EOFError):
        raise ImportFileError(path, "line 1", "not a UTF-8 CSV text file (plain or gzipped)") from None
    finally:
        stream.close()
    return next(csv.reader([line]), [])


def _columns(header: list[str], rows, names) -> dict[str, list[str]]:
    position = {name.strip().lower(): i for i, name in enumerate(header)}
    return {name: [values[position[name]].strip() for _, values in rows] for name in names}


def _first_bad(path: Path, lines: np.ndarray, bad: np.ndarray, values, field_name: str, message: str):
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ImportFileError(path, f"line {lines[i]}", f"{values[i]!r} {message}", field_name)


def read_geolife(path: Path) -> pd.DataFrame:
    """``line``, ``uid``, ``ts`` (naive UTC), ``lat``, ``lon`` (WGS-84) of every point, sorted by uid and time."""
    header, rows = read_table(path)
    columns = _columns(header, rows, GEOLIFE_COLUMNS)
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    lat = pd.to_numeric(pd.Series(columns["lat"], dtype=object), errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(pd.Series(columns["lng"], dtype=object), errors="coerce").to_numpy(dtype=float)
    _first_bad(path, lines, ~(np.abs(lat) <= 90), columns["lat"], "lat", "is not a latitude")
    _first_bad(path, lines, ~(np.abs(lon) <= 180), columns["lng"], "lng", "is not a longitude")
    ts = pd.to_datetime(pd.Series(columns["datetime"], dtype=object), format="ISO8601", errors="coerce", utc=True)
    _first_bad(path, lines, ts.isna().to_numpy(), columns["datetime"], "datetime", "is not a date and time (YYYY-MM-DD HH:MM:SS, UTC)")
    uid = np.array(columns["uid"], dtype=object)
    _first_bad(path, lines, uid == "", columns["uid"], "uid", "is not a user id")
    frame = pd.DataFrame({"line": lines, "uid": uid, "ts": ts.dt.tz_localize(None).astype("datetime64[us]").to_numpy(), "lat": lat, "lon": lon})
    return frame.sort_values(["uid", "ts", "line"], kind="stable").reset_index(drop=True)


def _lookup(folder: Path, name: str, key: str, value: str, extra: tuple = ()) -> dict[str, tuple]:
    path = folder / name
    if not path.exists():
        raise ImportFileError(path, "", "missing: LA 311 service requests need types.csv, agencies.csv and sources.csv beside them")
    header, rows = read_table(path)
    lowered = [h.lower() for h in header]
    for column in (key, value, *extra):
        if column not in lowered:
            raise ImportFileError(path, "line 1", f"header lacks column {column}")
    columns = _columns(header, rows, (key, value, *extra))
    return {k: tuple(columns[c][i] for c in (value, *extra)) for i, k in enumerate(columns[key])}


def read_la311(path: Path) -> pd.DataFrame:
    """One row per request: line, srnumber, created, closed (naive LA wall time), type, agency, source, council."""
    header, rows = read_table(path)
    columns = _columns(header, rows, LA_COLUMNS)
    folder = path.parent
    types = _lookup(folder, "types.csv", "type_id", "type_name")
    agencies = _lookup(folder, "agencies.csv", "agency_id", "data_code", ("agency_name",))
    sources = _lookup(folder, "sources.csv", "source_id", "source_name", ("data_code",))
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    srnumber = np.array(columns["srnumber"], dtype=object)
    _first_bad(path, lines, srnumber == "", columns["srnumber"], "srnumber", "is not a request number")
    _first_bad(path, lines, np.array([len(s) > 40 or " " in s for s in srnumber], dtype=bool), columns["srnumber"], "srnumber", "is not a request number (at most 40 characters, no spaces)")
    created = pd.to_datetime(pd.Series(columns["created_date"], dtype=object), format="ISO8601", errors="coerce")
    _first_bad(path, lines, created.isna().to_numpy(), columns["created_date"], "created_date", "is not a date and time")
    closed_text = pd.Series(columns["closed_date"], dtype=object)
    closed = pd.to_datetime(closed_text.where(closed_text != ""), format="ISO8601", errors="coerce")
    _first_bad(path, lines, (closed.isna() & (closed_text != "")).to_numpy(), columns["closed_date"], "closed_date", "is not a date and time (or empty)")
    for column, table, what in (("type_id", types, "types.csv"), ("agency_id", agencies, "agencies.csv"), ("source_id", sources, "sources.csv")):
        values = columns[column]
        optional = column != "type_id"
        bad = np.array([not ((value == "" or value == "0") and optional) and value not in table for value in values], dtype=bool)
        _first_bad(path, lines, bad, values, column, f"is not in {what}")
    for series in (created, closed):
        if getattr(series.dt, "tz", None) is not None:
            raise ImportFileError(path, "", "times must be local wall-clock times without an offset, as LA 311 exports them")
    return pd.DataFrame({
        "line": lines,
        "srnumber": srnumber,
        "created": created.astype("datetime64[us]").to_numpy(),
        "closed": closed.astype("datetime64[us]").to_numpy(),
        "type_name": [types[value][0] for value in columns["type_id"]],
        "agency_code": [agencies[value][0] if value in agencies else "" for value in columns["agency_id"]],
        "source_name": [sources[value][0] if value in sources else "" for value in columns["source_id"]],
        "source_code": [sources[value][1] if value in sources else "" for value in columns["source_id"]],
        "council": columns["council_id"],
    })


# ====================================================================== the database


@dataclass(frozen=True)
class ReplayReference:
    """What the replay reads from the grid database."""

    workers: pd.DataFrame  # id, grid, role, centroid_lat, centroid_lon (map datum)
    grids: pd.DataFrame  # basic grids: code, parent, centroid_lat, centroid_lon, geometry (shapely, map datum)
    categories: dict  # code -> Category
    departments: frozenset


def load_replay_reference(engine) -> ReplayReference:
    """Workers, basic grids, catalogue and departments (SELECTs only)."""
    from data_feeds.reference import load_categories

    g, w = schema.grids.c, schema.workers.c
    with engine.connect() as connection:
        deepest = connection.execute(select(g.level).order_by(g.level.desc()).limit(1)).scalar()
        grid_rows = connection.execute(
            select(g.code, g.parent, g.centroid_lat, g.centroid_lon, g.geometry).where(g.level == deepest).order_by(g.code)
        ).all() if deepest is not None else []
        worker_rows = connection.execute(
            select(w.id, w.grid, w.role, g.centroid_lat, g.centroid_lon).select_from(schema.workers.join(schema.grids, g.code == w.grid)).order_by(w.id)
        ).all()
        departments = frozenset(connection.execute(select(schema.departments.c.code)).scalars())
    grids = pd.DataFrame(
        [(code, parent, lat, lon, shape(json.loads(geometry)) if geometry else None) for code, parent, lat, lon, geometry in grid_rows],
        columns=["code", "parent", "centroid_lat", "centroid_lon", "geometry"],
    )
    workers = pd.DataFrame([tuple(row) for row in worker_rows], columns=["id", "grid", "role", "centroid_lat", "centroid_lon"])
    return ReplayReference(workers, grids, load_categories(engine), departments)


# ====================================================================== plans


@dataclass
class Plan:
    """The messages of one replay, in publishing order, and what to say about them."""

    kind: str
    stream: str
    messages: list  # dicts of str → str
    times: np.ndarray  # epoch seconds of each message's ts (for --pace)
    summary: str
    counts: dict = field(default_factory=dict)


def plan_geolife(points: pd.DataFrame, name: str, reference: ReplayReference, keys: Keys, tz, now: datetime, days: int, limit: int | None, max_age: timedelta, map_crs: str) -> Plan:
    """GeoLife points (``read_geolife``) → patrol-gps pings of real workers, in the recent past, in the district."""
    workers = reference.workers[reference.workers["role"] == "worker"]
    if workers.empty:
        raise ReplayError("the database has no grid workers (role worker); import workers first (python app.py import-workers FILE)")
    if workers["centroid_lat"].isna().any():
        raise ReplayError(f"grid {workers.loc[workers['centroid_lat'].isna(), 'grid'].iloc[0]} has no centroid; re-import the grids")
    assignment = assign_workers(points["uid"].unique().tolist(), workers["id"].tolist())
    chosen = shift_user_days(points[["uid", "ts"]], tz, now, days)
    p = points.loc[chosen.index].assign(ts=chosen["ts"], day=chosen["day"]).sort_values(["uid", "ts", "line"], kind="stable")
    too_old = p["ts"] < pd.Timestamp((now - max_age).astimezone(UTC).replace(tzinfo=None)) + pd.Timedelta(seconds=AGE_MARGIN_S)
    p = p[~too_old]
    # Each user-day starts at its worker's grid centroid (map datum → WGS-84, like a device).
    by_worker = workers.set_index("id")
    p = p.assign(worker=p["uid"].map(assignment))
    centroid_lat, centroid_lon = convert(
        by_worker.loc[p["worker"], "centroid_lat"].to_numpy(dtype=float), by_worker.loc[p["worker"], "centroid_lon"].to_numpy(dtype=float), map_crs, "wgs84"
    )
    first = p.groupby(["uid", "day"], sort=False)[["lat", "lon"]].transform("first")
    lat, lon = translate_tracks(p["lat"], p["lon"], first["lat"], first["lon"], centroid_lat, centroid_lon)
    p = p.assign(lat=lat, lon=lon).sort_values(["ts", "worker"], kind="stable")
    if limit is not None:
        p = p.head(limit)
    aware = p["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    messages = [
        {"worker": worker, "ts": moment.isoformat(timespec="seconds"), "lat": f"{la:.7f}", "lon": f"{lo:.7f}"}
        for worker, moment, la, lo in zip(p["worker"], aware, p["lat"], p["lon"])
    ]
    times = (p["ts"].astype("datetime64[us]").astype("int64") / 1e6).to_numpy()
    users = ", ".join(f"{uid}→{worker}" for uid, worker in sorted(assignment.items()))
    span = f"{aware.iloc[0]:%Y-%m-%d %H:%M}…{aware.iloc[-1]:%Y-%m-%d %H:%M}" if len(aware) else "nothing"
    summary = (
        f"geolife {name}: {len(assignment)} devices ({users}), last {days} recorded days each → "
        f"{len(messages)} pings to {keys.patrol_gps}, {span}; {int(too_old.sum())} too old skipped"
    )
    return Plan("geolife", keys.patrol_gps, messages, times, summary, {"pings": len(messages), "too_old": int(too_old.sum())})


def check_mappings(reference: ReplayReference) -> None:
    """Every class and department the mapping tables name must exist in the database."""
    for type_name, code in sorted(TYPE_CATEGORY.items()):
        category = reference.categories.get(code)
        if category is None or not category.is_detail:
            raise ReplayError(f"category {code} (for LA type {type_name!r}) is not a detail class of the catalogue in the database; import the default catalogue")
    for name, code in sorted({**AGENCY_DEPT, **TYPE_DEPT}.items()):
        if code not in reference.departments:
            raise ReplayError(f"department {code} (for {name}) is not in the database; import the default departments")


def plan_la311(requests: pd.DataFrame, name: str, reference: ReplayReference, keys: Keys, tz, now: datetime, limit: int | None, max_age: timedelta, map_crs: str) -> Plan:
    """LA 311 requests (``read_la311``) → case events through the contract, in the recent past, in the district."""
    check_mappings(reference)
    grids = reference.grids
    if grids.empty:
        raise ReplayError("the database has no grids; import them first (python app.py import-grids FILE)")
    groups = group_grids(grids)
    geometry = dict(zip(grids["code"], grids["geometry"]))
    centroid = dict(zip(grids["code"], zip(grids["centroid_lat"], grids["centroid_lon"])))
    grid_worker = (
        reference.workers[reference.workers["role"] == "worker"].sort_values("id").drop_duplicates("grid").set_index("grid")["id"].to_dict()
    )
    now_local = now.astimezone(tz).replace(tzinfo=None)
    weeks = week_shift(requests["created"].max().to_pydatetime(), now_local) if len(requests) else 0
    shift = timedelta(weeks=weeks)
    oldest = now - max_age + timedelta(seconds=AGE_MARGIN_S)
    if limit is not None:
        requests = requests.head(limit)
    events = []  # (time, sequence, message)
    counts = dict.fromkeys(("report", "register", "dispatch", "feedback", "close"), 0)
    counts.update(requests=len(requests), never_closed=0, closed_before_reported=0, closes_after_now=0, too_old=0)
    sequence = 0
    for row in requests.itertuples(index=False):
        created = (row.created.to_pydatetime() + shift).replace(tzinfo=tz)
        closed = None if pd.isna(row.closed) else (row.closed.to_pydatetime() + shift).replace(tzinfo=tz)
        if created < oldest:
            counts["too_old"] += 1
            continue
        if closed is None:
            counts["never_closed"] += 1
        elif closed < created:
            counts["closed_before_reported"] += 1
        elif closed > now:
            counts["closes_after_now"] += 1
        category_code = category_for_type(row.type_name)
        category = reference.categories[category_code]
        grid = place_request(row.council, row.srnumber, groups)
        polygon = geometry.get(grid)
        lat, lon = point_inside(polygon, row.srnumber) if polygon is not None else centroid[grid]
        channel = source_channel(row.source_name, row.source_code)
        case_id = f"{CASE_PREFIX}{row.srnumber}"
        for action, moment in case_timeline(created, closed, now):
            message = {"event_id": f"{case_id}-{action}", "case_id": case_id, "action": action, "ts": iso(moment, tz), "actor": ACTOR}
            if action == "report":
                message.update(
                    grid=grid, category=category_code, lat=f"{lat:.7f}", lon=f"{lon:.7f}", crs=map_crs, source=channel,
                    description=f"LA 311 {row.srnumber}: {row.type_name} ({row.source_name or 'unknown source'})",
                )
                if channel == "patrol" and grid in grid_worker:
                    message["worker"] = grid_worker[grid]
            elif action == "dispatch":
                message["dept"] = department_for(row.type_name, row.agency_code, category.dept)
            counts[action] += 1
            events.append((moment.timestamp(), sequence, message))
            sequence += 1
    events.sort(key=lambda item: (item[0], item[1]))
    messages = [message for _, _, message in events]
    times = np.array([moment for moment, _, _ in events], dtype=float)
    summary = (
        f"la311 {name}: {counts['requests']} requests → {len(messages)} case events to {keys.case_events} "
        f"(report {counts['report']}, register {counts['register']}, dispatch {counts['dispatch']}, feedback {counts['feedback']}, close {counts['close']}); "
        f"left open: {counts['never_closed']} never closed, {counts['closed_before_reported']} closed before reported, "
        f"{counts['closes_after_now']} closing after now; {counts['too_old']} too old skipped; moved {weeks:+d} weeks"
    )
    counts["weeks"] = weeks
    return Plan("la311", keys.case_events, messages, times, summary, counts)


# ====================================================================== publishing


def publish(client, stream: str, messages: list, times: np.ndarray, pace: float = 0.0, chunk: int = PIPELINE_CHUNK, sleep=time.sleep, clock=time.monotonic) -> int:
    """XADD every message, pipelined in chunks; with ``pace`` > 0 wait pace × the gap between messages."""
    published = 0
    pipe = client.pipeline(transaction=False)
    pending = 0
    started = clock()
    for index, message in enumerate(messages):
        if pace > 0 and index:
            due = (times[index] - times[0]) * pace
            wait = due - (clock() - started)
            if wait > PACE_MIN_SLEEP_S:
                if pending:
                    pipe.execute()
                    published += pending
                    pending = 0
                sleep(wait)
        pipe.xadd(stream, message)
        pending += 1
        if pending >= chunk:
            pipe.execute()
            published += pending
            pending = 0
    if pending:
        pipe.execute()
        published += pending
    return published


# ====================================================================== command line


def add_arguments(parser) -> None:
    parser.add_argument("file", type=Path, help="GeoLife points (lat,lng,datetime,uid; .txt or .txt.gz) or LA 311 service_requests.csv")
    parser.add_argument("--pace", type=float, default=0.0, help="wait this many times the recorded gap between messages: 1 = real time, 0.1 = ten times faster; 0 (default) = as fast as possible")
    parser.add_argument("--limit", type=int, help="publish at most N messages (GPS: the earliest N pings of the selection) or N requests (LA 311: the first N of the file)")
    parser.add_argument("--days", type=int, help=f"GPS: replay each device's last N recorded days (default {DEFAULT_GPS_DAYS}, at most the event age limit less one day)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be published and the counts; touch no Redis")
    parser.add_argument("--show", type=int, default=DEFAULT_SHOW, help=f"with --dry-run, print the first N messages (default {DEFAULT_SHOW}; -1 = all)")
    parser.add_argument("--chunk", type=int, default=PIPELINE_CHUNK, help=f"messages per pipelined round trip (default {PIPELINE_CHUNK})")
    parser.add_argument("--now", help="replay as if the clock read this moment (ISO 8601 with offset; not later than the clock), for reproducible runs")


def _resolve_now(text: str | None) -> datetime:
    clock = utc_now()
    if not text:
        return clock
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"--now {text!r} is not ISO 8601 (e.g. 2026-11-22T09:15:03+08:00)") from None
    if moment.tzinfo is None:
        raise ReplayError(f"--now {text!r} has no UTC offset (e.g. +08:00)")
    if moment > clock + timedelta(seconds=1):
        raise ReplayError(f"--now {text!r} is in the future: the consumer would refuse every message")
    return moment.astimezone(UTC)


def _gps_days(requested: int | None, max_age_days: float) -> int:
    allowed = max(1, math.floor(max_age_days) - 1)
    if requested is None:
        return min(DEFAULT_GPS_DAYS, allowed)
    if requested < 1 or requested > allowed:
        raise ReplayError(f"--days {requested} must be between 1 and {allowed} (the event age limit is {max_age_days:g} days)")
    return requested


def _check_options(args) -> None:
    if args.pace < 0 or not math.isfinite(args.pace):
        raise ReplayError(f"--pace {args.pace} must be 0 or positive")
    if args.limit is not None and args.limit < 1:
        raise ReplayError(f"--limit {args.limit} must be at least 1")
    if args.chunk < 1:
        raise ReplayError(f"--chunk {args.chunk} must be at least 1")


def _engine(settings):
    """An engine on the existing grid database (never creating it)."""
    from sqlalchemy.engine import make_url

    from data_feeds.db import DatabaseUnavailable, check_reachable, make_engine

    try:
        url = make_url(settings.database_url)
    except Exception:
        url = None
    if url is not None and url.drivername.startswith("sqlite") and url.database and url.database != ":memory:" and not Path(url.database).exists():
        raise DatabaseUnavailable(f"no grid database at {url.database}: run python app.py init-db and import the grids, catalogue, departments and workers first")
    engine = make_engine(settings.database_url)
    check_reachable(engine)
    return engine


def build_plan(settings, args, now: datetime) -> Plan:
    """Read the file and the reference data, and compute every message (no Redis)."""
    path = Path(args.file)
    if not path.is_file():
        raise ImportFileError(path, "", "no such file")
    kind = detect_format(read_header(path))
    if kind is None:
        raise ImportFileError(
            path, "line 1",
            f"unrecognised header; expected GeoLife ({','.join(GEOLIFE_COLUMNS)}) or LA 311 service requests ({','.join(LA_COLUMNS)},...)",
        )
    keys = Keys(settings.prefix)
    max_age = timedelta(days=settings.max_event_age_days)
    days = _gps_days(args.days, settings.max_event_age_days) if kind == "geolife" else None
    records = read_geolife(path) if kind == "geolife" else read_la311(path)  # a bad file is refused before the database is read
    engine = _engine(settings)
    try:
        reference = load_replay_reference(engine)
    finally:
        engine.dispose()
    if kind == "geolife":
        return plan_geolife(records, path.name, reference, keys, settings.tz, now, days, args.limit, max_age, settings.map_crs)
    return plan_la311(records, path.name, reference, keys, settings.tz, now, args.limit, max_age, settings.map_crs)


def command(settings, args) -> int:
    """``python app.py replay FILE``: publish a recorded file to the streams; one summary line."""
    import redis

    try:
        _check_options(args)
        now = _resolve_now(args.now)
        plan = build_plan(settings, args, now)
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    if args.dry_run:
        shown = plan.messages if args.show < 0 else plan.messages[: args.show]
        for message in shown:
            print(f"{plan.stream} {json.dumps(message, ensure_ascii=False)}")
        print(f"dry run, nothing published: {plan.summary}")
        return 0
    client = redis_client.connect(settings, socket_timeout=30)
    try:
        published = publish(client, plan.stream, plan.messages, plan.times, args.pace, args.chunk)
    except redis.RedisError as exc:
        print(f"error: cannot publish to Redis at {redis_client.describe(settings)}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        client.close()
    print(f"published {published}: {plan.summary}")
    return 0
