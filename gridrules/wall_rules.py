"""What the video wall shows, computed from the live state: pins, grid shading, the dispatch
board, the overdue alerts and worker markers. Pure functions: records in, plain data out,
``now`` a parameter.

Open-case records are those of ``data_feeds.live_state.open_case_record`` (times ISO 8601).
"""
from __future__ import annotations

from datetime import datetime

from gridrules.access import Scope
from gridrules.geometry import feature_collection
from gridrules.lifecycle import GRADES, Rules
from gridrules.limits import elapsed_amount

GRADE_ORDER = {grade: index for index, grade in enumerate(GRADES)}
NEW_CASE_S = 10  # a pin flashes this long after its report
ATTENTION_NEW_S = 30 * 60  # a grade-A report asks for attention this long, unless acknowledged


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def stage_state(record: dict, now: datetime) -> str:
    """ok, due_soon or overdue for the stage the case is in now."""
    deadline = _moment(record.get("stage_deadline"))
    if deadline is None:
        return "ok"
    if now >= deadline:
        return "overdue"
    due_soon = _moment(record.get("stage_due_soon_at"))
    return "due_soon" if due_soon is not None and now >= due_soon else "ok"


def in_scope(record: dict, paths: dict, scope: Scope) -> bool:
    """Whether an open case lies in the caller's area and department."""
    path = paths.get(record.get("grid"))
    if path is None or not scope.covers(path):
        return False
    return scope.sees_department_case(record.get("dept"), record.get("dispatched_at"))


def case_feature(record: dict, now: datetime, category_names: dict) -> dict | None:
    """A map pin: where, grade, stage, state; ``new`` while the report is fresh."""
    if record.get("lat") is None or record.get("lon") is None:
        return None
    reported = _moment(record["reported_at"])
    state = stage_state(record, now)
    return {
        "type": "Feature",
        "id": record["id"],
        "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
        "properties": {
            "id": record["id"], "grade": record["grade"], "stage": record.get("stage"), "status": record["status"],
            "state": state, "reported": int(reported.timestamp() * 1000), "supervised": bool(record.get("supervise_count")),
            # plain text: the map shows it with text nodes (assets/gridops_map.js)
            "label": [f"{record['id']} · {category_names.get(record['category'], record['category'])} · {record['grade']}"],
        },
    }


def grid_counts(records: list[dict], now: datetime) -> dict[str, list[int]]:
    """Per basic grid: [open cases, overdue cases]."""
    counts: dict[str, list[int]] = {}
    for record in records:
        entry = counts.setdefault(record["grid"], [0, 0])
        entry[0] += 1
        if stage_state(record, now) == "overdue":
            entry[1] += 1
    return counts


def area_counts(counts: dict[str, list[int]], ancestors: dict[str, tuple], level_codes: set) -> dict[str, list[int]]:
    """The grid counts summed up to the areas in ``level_codes`` (e.g. the towns)."""
    result: dict[str, list[int]] = {}
    for grid, (open_cases, overdue) in counts.items():
        for area in ancestors.get(grid, ()):
            if area in level_codes:
                entry = result.setdefault(area, [0, 0])
                entry[0] += open_cases
                entry[1] += overdue
    return result


BOARD_INTERVENTIONS = ("redispatched", "declined", "extended")  # today's, beside the open cases under supervision


def dispatch_board(records: list[dict], now: datetime, today: dict[str, dict] | None = None) -> list[dict]:
    """Per department, worst first: waiting (registered, not yet dispatched to it), in hand
    (dispatched, no feedback yet), due soon and overdue (any stage), its open cases under
    supervision (督办), and from ``today`` (the day's intervention counts per department) its
    re-dispatches, declines and extensions."""
    rows: dict[str, dict] = {}

    def row_of(dept: str) -> dict:
        return rows.setdefault(dept, {"dept": dept, "waiting": 0, "in_hand": 0, "due_soon": 0, "overdue": 0, "supervised": 0,
                                      **dict.fromkeys(BOARD_INTERVENTIONS, 0)})

    for dept, counts in (today or {}).items():
        if dept and any(counts.get(key) for key in BOARD_INTERVENTIONS):
            row_of(dept).update({key: int(counts.get(key) or 0) for key in BOARD_INTERVENTIONS})
    for record in records:
        dept = record.get("dept")
        if not dept or record["status"] == "reported":
            continue  # not yet registered: the centre's matter, not a department's
        row = row_of(dept)
        if record.get("supervise_count"):
            row["supervised"] += 1
        if record["status"] == "registered":
            row["waiting"] += 1
        elif record["status"] == "dispatched":
            row["in_hand"] += 1
        state = stage_state(record, now)
        if state in ("due_soon", "overdue"):
            row[state] += 1
    return sorted(rows.values(), key=lambda r: (-r["overdue"], -r["due_soon"], -(r["waiting"] + r["in_hand"]), r["dept"]))


def _lateness(record: dict, deadline: datetime, now: datetime, rules: Rules | None) -> dict:
    """How late (negative: how much time is left) in the stage limit's own unit and calendar:
    ``late_amount`` and ``late_share`` (of the limit), ``unit``, ``calendar`` and ``working``
    (the limit counts working time, so natural minutes past a 17:30 deadline mean nothing).
    Empty without the rules, or for a category or stage they do not know."""
    category = rules.categories.get(record.get("category")) if rules else None
    if category is None or category.limits is None or record.get("stage") not in ("register", "dispatch", "handle", "verify"):
        return {}
    limits = rules.limits_for(category, record.get("grade"))
    limit = limits.for_stage(record["stage"])
    amount = elapsed_amount(deadline, now, limit, limits.calendar, rules.calendar)
    working = limit.unit == "wd" or (limits.calendar == "working" and limit.unit in ("m", "h"))
    shown, unit = amount, limit.unit
    if unit == "wd" and abs(amount) < 1:  # under a working day: in working hours (0.06 working days reads as nothing)
        shown, unit = amount * rules.calendar.minutes_per_day / 60, "h"
    if unit == "h" and abs(shown) < 1:  # under an hour: in minutes (0.04 hours reads as "0")
        shown, unit = shown * 60, "m"
    return {"late_amount": round(amount, 2), "late_share": amount / limit.amount, "unit": limit.unit, "calendar": limits.calendar, "working": working,
            "shown_amount": round(shown, 1), "shown_unit": unit}


def alert_rows(records: list[dict], now: datetime, limit: int | None = 30, newest_first: bool = False, rules: Rules | None = None) -> list[dict]:
    """Overdue and due-soon cases, overdue first; each with its deadline so the screen can age it live.

    Ranked by severity: grade A first, then the latest relative to the stage's own limit (with
    ``rules``; else the longest late) — or with ``newest_first`` the ones that fell due last first
    (then the due-soon nearest their deadline). With ``rules`` each row says how late it is in
    the limit's unit and calendar (``_lateness``).
    """
    rows = []
    for record in records:
        state = stage_state(record, now)
        if state == "ok":
            continue
        deadline = _moment(record["stage_deadline"])
        rows.append({
            "id": record["id"], "state": state, "grade": record["grade"], "stage": record.get("stage"),
            "category": record["category"], "grid": record["grid"], "dept": record.get("dept"),
            "deadline": int(deadline.timestamp() * 1000), "late_s": int((now - deadline).total_seconds()),
            "supervised": bool(record.get("supervise_count")),
            **_lateness(record, deadline, now, rules),
        })
    if newest_first:
        rows.sort(key=lambda r: (r["state"] != "overdue", r["late_s"] if r["state"] == "overdue" else -r["late_s"]))
    else:
        rows.sort(key=lambda r: (r["state"] != "overdue", GRADE_ORDER.get(r["grade"], 9), -r.get("late_share", r["late_s"]), -r["late_s"], r["id"]))
    return rows[:limit]


def worker_feature(worker: str, position: dict, online: bool, trail: list | None = None) -> dict:
    """A worker marker with heading; ``trail`` the last positions as [[lon, lat], …]."""
    return {
        "type": "Feature",
        "id": worker,
        "geometry": {"type": "Point", "coordinates": [position["lon"], position["lat"]]},
        "properties": {
            "id": worker, "online": online, "heading": position.get("heading"), "speed": position.get("speed"),
            "trail": trail or [], "label": [worker],
        },
    }


def worker_move(worker: str, position: dict, online: bool, trail_head: list) -> list:
    """A moved worker as ``[id, lon, lat, heading, speed, online, trail_lon, trail_lat]``.

    Thousands of workers move between two pulls, so a move is a short row rather than a
    feature; the page appends the newest trail point when it differs from its last one,
    which keeps its trails equal to the server's (thinned) ones.
    """
    head = trail_head[-1] if trail_head else [None, None]
    return [worker, position["lon"], position["lat"], position.get("heading"), position.get("speed"), online, head[0], head[1]]


def moved_workers(changes: list[dict]) -> list[str]:
    """Workers with a position in a batch of live changes, each once."""
    found = {worker for change in changes if change.get("kind") == "gps" for worker in change.get("workers", "").split(",") if worker}
    return sorted(found)


def case_changes_in_scope(changes: list[dict], paths: dict, scope: Scope) -> list[dict]:
    """The case changes of a batch that the caller may know of.

    Each change names the case's grid and its department after that change, so a case named
    here was in the caller's scope then: its removal or its report tells the caller nothing
    they could not have seen. A case's grid never changes after its report, so for an area
    scope this is exact; a department scope sees a case dispatched away from it by nothing
    here (it stays on such a wall until the page reloads, rather than a case never in the
    scope being named).
    """
    return [change for change in changes if change.get("kind") == "case" and in_scope(change, paths, scope)]


def new_reports(changes: list[dict]) -> list[str]:
    """Case ids reported in a batch of live changes."""
    return [change["case_id"] for change in changes if change.get("kind") == "case" and change.get("action") == "report"]


def trail_collection(workers: list[dict]) -> dict:
    """Short trails of the online workers, as lines (the browser rebuilds them the same way)."""
    return feature_collection([
        {"type": "Feature", "id": w["id"], "geometry": {"type": "LineString", "coordinates": w["properties"]["trail"]}, "properties": {}}
        for w in workers if w["properties"]["online"] and len(w["properties"]["trail"]) > 1
    ])


def attention_items(records: list[dict], now: datetime, acknowledged: set[str]) -> list[dict]:
    """New danger the room must see (it flashes on every wall until an operator acknowledges it):
    each open grade-A case reported within ``ATTENTION_NEW_S`` (reason ``new``) or past its
    stage's deadline (reason ``overdue``), newest first. ``key`` (case id and reason) is what an
    acknowledgement names, so a new report acknowledged flashes again when it falls overdue."""
    items = []
    for record in records:
        if record.get("grade") != "A":
            continue
        reported = _moment(record.get("reported_at"))
        reasons = []
        if stage_state(record, now) == "overdue":
            reasons.append(("overdue", _moment(record.get("stage_deadline"))))
        elif reported is not None and 0 <= (now - reported).total_seconds() <= ATTENTION_NEW_S:
            reasons.append(("new", reported))
        for reason, since in reasons:
            key = f"{record['id']}|{reason}"
            if key not in acknowledged:
                items.append({"key": key, "id": record["id"], "reason": reason, "since": int(since.timestamp() * 1000) if since else 0,
                              "category": record.get("category"), "grid": record.get("grid")})
    items.sort(key=lambda item: (-item["since"], item["id"]))
    return items


def is_attention_key(key: object) -> bool:
    """An acknowledgement's key as the browser sends it back: ``CASEID|new`` or ``CASEID|overdue``."""
    if not isinstance(key, str) or len(key) > 80 or key.count("|") != 1:
        return False
    case_id, reason = key.split("|")
    return bool(case_id) and reason in ("new", "overdue")
