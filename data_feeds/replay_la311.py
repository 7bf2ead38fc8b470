"""LA 311 service requests replayed as case events: the tables that map LA's request types,
agencies and sources onto the catalogue, departments and channels; the week shift; each
request's timeline; placing requests in grids; reading the file and its lookup tables.
The replay is described in docs/replay.md.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from data_feeds.importers.common import ImportFileError
from data_feeds.keys import Keys
from data_feeds.replay_common import AGE_MARGIN_S, Plan, ReplayError, ReplayReference, first_bad, iso, pick_columns, read_table, stable_hash

LA_COLUMNS = ("srnumber", "created_date", "closed_date", "type_id", "agency_id", "source_id", "council_id")
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


def _lookup(folder: Path, name: str, key: str, value: str, extra: tuple = ()) -> dict[str, tuple]:
    path = folder / name
    if not path.exists():
        raise ImportFileError(path, "", "missing: LA 311 service requests need types.csv, agencies.csv and sources.csv beside them")
    header, rows = read_table(path)
    lowered = [h.lower() for h in header]
    for column in (key, value, *extra):
        if column not in lowered:
            raise ImportFileError(path, "line 1", f"header lacks column {column}")
    columns = pick_columns(header, rows, (key, value, *extra))
    return {k: tuple(columns[c][i] for c in (value, *extra)) for i, k in enumerate(columns[key])}


def read_la311(path: Path) -> pd.DataFrame:
    """One row per request: line, srnumber, created, closed (naive LA wall time), type, agency, source, council."""
    header, rows = read_table(path)
    columns = pick_columns(header, rows, LA_COLUMNS)
    folder = path.parent
    types = _lookup(folder, "types.csv", "type_id", "type_name")
    agencies = _lookup(folder, "agencies.csv", "agency_id", "data_code", ("agency_name",))
    sources = _lookup(folder, "sources.csv", "source_id", "source_name", ("data_code",))
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    srnumber = np.array(columns["srnumber"], dtype=object)
    first_bad(path, lines, srnumber == "", columns["srnumber"], "srnumber", "is not a request number")
    first_bad(path, lines, np.array([len(s) > 40 or " " in s for s in srnumber], dtype=bool), columns["srnumber"], "srnumber", "is not a request number (at most 40 characters, no spaces)")
    created = pd.to_datetime(pd.Series(columns["created_date"], dtype=object), format="ISO8601", errors="coerce")
    first_bad(path, lines, created.isna().to_numpy(), columns["created_date"], "created_date", "is not a date and time")
    closed_text = pd.Series(columns["closed_date"], dtype=object)
    closed = pd.to_datetime(closed_text.where(closed_text != ""), format="ISO8601", errors="coerce")
    first_bad(path, lines, (closed.isna() & (closed_text != "")).to_numpy(), columns["closed_date"], "closed_date", "is not a date and time (or empty)")
    for column, table, what in (("type_id", types, "types.csv"), ("agency_id", agencies, "agencies.csv"), ("source_id", sources, "sources.csv")):
        values = columns[column]
        optional = column != "type_id"
        bad = np.array([not ((value == "" or value == "0") and optional) and value not in table for value in values], dtype=bool)
        first_bad(path, lines, bad, values, column, f"is not in {what}")
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
