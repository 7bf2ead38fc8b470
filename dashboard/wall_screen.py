"""The video wall's service: what a wall shows when it opens, and what changed since its
cursor when it pulls. Data only — the callbacks turn it into components and figures.

Every value is limited to the caller's scope (``principal.scope``); a part (counts, board,
alerts, tiles) is sent again only when its digest changed, the charts once a minute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dashboard import cached_reads, wall_live
from dashboard.cases import present_worker
from dashboard.context import AppContext
from dashboard.i18n import t, tf
from data_feeds import accounts, live_state, queries
from data_feeds.keys import Keys
from data_feeds.outages import DATABASE
from data_feeds.reference import GridInfo
from gridrules import wall_rules
from gridrules.access import Principal, Scope
from gridrules.clock import utc_now
from gridrules.timewindows import today

PART_NAMES = ("counts", "town_counts", "board", "alerts", "tiles")


@dataclass(frozen=True)
class Names:
    """Category, basic-grid and department names of the wall's area, in the wall's language."""

    categories: dict
    grids: dict
    departments: dict


def names(ctx: AppContext, lang: str, area: GridInfo) -> Names:
    grids = cached_reads.cached(f"grid-names|{area.code}", cached_reads.REFERENCE_TIMEOUT_S,
                            lambda: {g["code"]: g["name"] for g in cached_reads.map_geometries(ctx, area, level=4)})
    return Names(wall_live.category_names(ctx, lang), grids, wall_live.department_names(ctx, lang))


@dataclass
class Parts:
    """The parts that changed since a cursor (all of them when forced), and the cursor's new digests."""

    changed: dict
    digests: dict
    minute: str
    charts: dict | None = None  # trend, categories and sources data, once a minute or when forced


def parts(ctx: AppContext, scope: Scope, area: GridInfo, lang: str, now: datetime, cursor: dict, force: bool, scale: float = 1.0) -> Parts:
    """Board, alerts, counts, tiles and chart data, each only when it changed (or ``force``).
    The board and the alerts are those of ``area`` (a town while the rotation shows it), the
    map's shading the whole wall's."""
    values = shared_parts(ctx, scope, area, now)
    minute = now.strftime("%Y%m%d%H%M") + f"@{scale:.2f}"
    new_minute = force or cursor.get("minute") != minute or cursor.get("area") != area.code
    digests = dict(cursor.get("digests", {}))
    changed = {}
    for name, (value, digest) in values.items():
        if force or digests.get(name) != digest or (name == "alerts" and new_minute):
            changed[name] = value
            digests[name] = digest
    charts = None
    if new_minute:
        charts = {
            "trend": wall_live.hourly_trend(ctx, area, scope, now),
            "categories": wall_live.major_class_counts(wall_live.breakdown(ctx, area, scope, now, "category"), ctx, lang).head(8),
            "sources": wall_live.breakdown(ctx, area, scope, now, "source"),
        }
    return Parts(changed, digests, minute, charts)


SHARED_PARTS_S = 5  # walls pulling within these seconds of one another after the same change share one computation


def shared_parts(ctx: AppContext, scope: Scope, area: GridInfo, now: datetime) -> dict[str, tuple[object, str]]:
    """Each part of the walls of ``scope`` showing ``area`` with its digest, computed once per
    change batch (and acknowledgement, and a few seconds of the clock) for every wall that pulls
    it, in every worker: fifty walls of the district cost about one."""
    acknowledged = wall_live.acknowledged(ctx)
    key = (f"wall-parts|{scope.key()}|{area.code}|{wall_live.latest_change_id(ctx)}|{wall_live.digest(sorted(acknowledged))}"
           f"|{int(now.timestamp()) // SHARED_PARTS_S}")

    def compute() -> dict:
        records = wall_live.open_records(ctx, scope)
        paths = wall_live.grid_paths(ctx)
        in_area = [r for r in records if paths.get(r["grid"], "").startswith(area.path)]
        towns = {g["code"] for g in cached_reads.map_geometries(ctx, area, level=2)} if area.level < 2 else set()
        counts = wall_rules.grid_counts(records, now)
        values = {
            "counts": counts,
            "town_counts": wall_rules.area_counts(counts, wall_live.ancestors(ctx), towns),
            "board": wall_rules.dispatch_board(in_area, now, cached_reads.intervention_counts(ctx, area, today(ctx.settings.tz, now), now, scope)),
            "alerts": wall_rules.alert_rows(in_area, now, limit=None, rules=cached_reads.rules(ctx)),
            "tiles": wall_live.tiles(ctx, area, scope, now),
            "attention": wall_rules.attention_items(in_area, now, acknowledged),
        }
        # alerts: which cases and in what state. Their order and a lateness in working time (written
        # by the server) move on with the clock: sent again once a minute, not on every pull, for
        # the ticker is hundreds of rows and a busy feed pulls several times a second.
        return {name: (value, wall_live.digest(value if name != "alerts" else sorted((r["id"], r["state"], r["supervised"]) for r in value)))
                for name, value in values.items()}

    return cached_reads.cached(key, 2 * SHARED_PARTS_S, compute)


@dataclass
class Opening:
    """What a wall shows when it opens: its area and the layers of its map, every part, its state."""

    area: object
    names: Names
    grids: list
    towns: list
    outline: list
    cases: list
    workers: list
    parts: Parts
    state: dict = field(default_factory=dict)


def opening(ctx: AppContext, principal: Principal, lang: str, query: dict, page_ids: dict, browser: dict) -> Opening:
    """The wall as it opens for ``principal`` (``?kiosk=1``, ``?rotate=S`` in ``query``); ``page_ids`` and
    ``browser`` (timing, words) go into the page state for the browser's code."""
    now = utc_now()
    scope = principal.scope
    area = cached_reads.home_area(ctx, scope)
    try:
        rotate = max(0, int(query.get("rotate", "0")))
    except ValueError:
        rotate = 0
    change_id = wall_live.latest_change_id(ctx)  # before reading state: nothing falls between
    records = wall_live.open_records(ctx, scope)
    area_names = names(ctx, lang, area)
    towns = cached_reads.map_geometries(ctx, area, level=2) if area.level < 2 else []
    opened = parts(ctx, scope, area, lang, now, {}, force=True)
    cursor = {"changes": change_id, "gps": now.timestamp(), "digests": opened.digests, "minute": opened.minute, "area": area.code}
    state = {
        "area": area.code, "lang": lang, "kiosk": query.get("kiosk") == "1", "rotate": rotate, "tz": ctx.settings.tz_name,
        "sound": query.get("sound") == "1", "attention": [item["key"] for item in opened.changed["attention"]],
        "towns": [g["code"] for g in towns], "cursor": cursor, "trail_points": wall_live.TRAIL_POINTS,
        "ids": page_ids,  # for set_props and the selectors of wall.js
        "feed": feed_signal(ctx, now, lang),
        **browser,  # the page's timing and words for wall.js
    }
    return Opening(
        area=area, names=area_names, grids=cached_reads.map_geometries(ctx, area, level=4), towns=towns,
        outline=cached_reads.map_geometries(ctx, area, level=area.level),
        cases=[f for f in (wall_rules.case_feature(r, now, area_names.categories) for r in records) if f],
        workers=wall_live.worker_features(ctx, scope, wall_live.all_workers(ctx), now), parts=opened, state=state,
    )


def feed_signal(ctx: AppContext, now: datetime, lang: str) -> dict:
    """What the wall's header shows of the feed: when the consumer last received a message
    (the page ages it every second), and — when the feed is not ok — the state and what to say
    (no consumer, a consumer waiting out an outage, lagging): red or amber from the first render,
    whenever the trouble began."""
    health = wall_live.feed_health(ctx, now)
    replica = cached_reads.replica_notice(ctx, lang)
    if replica and health["state"] == "ok":
        return {"last_ms": health["last_ms"], "state": "lagging", "text": replica}
    return {"last_ms": health["last_ms"], "state": health["state"], "text": feed_text(health, lang)}


def feed_text(health: dict, lang: str) -> str:
    state = health["state"]
    if state == "ok":
        return ""
    if state == "degraded":
        return t({"database": "feed_database_down", "redis": "feed_redis_down"}.get(health.get("reason"), "feed_fault"), lang)
    if state == "lagging":
        return tf("feed_lagging", lang, seconds=f"{health.get('lag_s') or 0:.0f}")
    return t("feed_no_consumer" if state == "no_consumer" else "feed_fault", lang)


def unavailable_signal(service: str, lang: str) -> dict:
    """The header when the wall's own pull cannot reach the database or Redis."""
    return {"last_ms": None, "state": "unavailable", "text": t("feed_database_down" if service == DATABASE else "feed_redis_down", lang)}


def view_area(ctx: AppContext, scope: Scope, state: dict, view: dict | None) -> tuple[GridInfo, int]:
    """The area of the rotation's current view (the wall's own area, or one of its towns), and the view's index."""
    index = (view or {}).get("index", 0)
    towns = state.get("towns", [])
    code = towns[index - 1] if 1 <= index <= len(towns) else state["area"]
    return cached_reads.area_in_scope(ctx, code, scope), index


@dataclass
class Pull:
    """What changed since a wall's cursor: the map's delta, the new cursor, the changed parts."""

    delta: dict
    cursor: dict
    parts: Parts
    names: Names


def pull(ctx: AppContext, principal: Principal, state: dict, cursor: dict, view: dict | None, scale: float = 1.0) -> Pull:
    """Everything that changed since ``cursor``, within the caller's scope, and the new cursor."""
    now = utc_now()
    scope = principal.scope
    area, _ = view_area(ctx, scope, state, view)
    lang = state["lang"]
    delta: dict = {"feed": feed_signal(ctx, now, lang)}
    entries = wall_live.change_entries(ctx, cursor.get("changes", "0-0"))
    changes = [fields for _, fields in entries]
    wall_names = names(ctx, lang, cached_reads.area_in_scope(ctx, state["area"], scope))
    # Too many changes to name one by one, or the live state rebuilt: every case anew.
    reset = len(entries) > wall_live.MAX_CHANGES or any(fields.get("kind") == "rebuild" for fields in changes)
    if reset:
        records = wall_live.open_records(ctx, scope)
        delta.update(reset_cases=True, cases=[f for f in (wall_rules.case_feature(r, now, wall_names.categories) for r in records) if f])
    elif entries:
        # Only changes the caller may know of name a case, whatever follows from them.
        visible = wall_rules.case_changes_in_scope(changes, wall_live.grid_paths(ctx), scope)
        changed_ids = sorted({fields["case_id"] for fields in visible})
        if changed_ids:
            in_scope = wall_live.open_records_by_id(ctx, changed_ids, scope)
            upserts = [f for f in (wall_rules.case_feature(in_scope[i], now, wall_names.categories) for i in changed_ids if i in in_scope) if f]
            delta.update(cases=upserts, cases_remove=[i for i in changed_ids if i not in in_scope], new=wall_rules.new_reports(visible))
    new_change_id = entries[-1][0] if entries else cursor.get("changes", "0-0")
    moved = wall_live.all_workers(ctx) if reset else wall_rules.moved_workers(changes)
    if moved:
        delta["worker_moves"] = wall_live.worker_moves(ctx, scope, moved, now)
    offline = wall_live.gone_offline(ctx, scope, cursor.get("gps", now.timestamp()) - 1.0, now)
    if offline:
        delta["workers_offline"] = offline
    changed = parts(ctx, scope, area, lang, now, cursor, force=False, scale=scale)
    if "counts" in changed.changed:
        delta["grid_counts"] = changed.changed["counts"]
    if "town_counts" in changed.changed:
        delta["town_counts"] = changed.changed["town_counts"]
    if "attention" in changed.changed:
        delta["attention"] = [item["key"] for item in changed.changed["attention"]]
    new_cursor = {"changes": new_change_id, "gps": now.timestamp(), "digests": changed.digests, "minute": changed.minute, "area": area.code}
    return Pull(delta, new_cursor, changed, wall_names)


def overdue_rows(ctx: AppContext, principal: Principal) -> list[dict]:
    """Every alert of the caller's scope, most urgent first (the rotation's overdue view)."""
    return wall_rules.alert_rows(wall_live.open_records(ctx, principal.scope), utc_now(), limit=None, rules=cached_reads.rules(ctx))


def grid_panel(ctx: AppContext, principal: Principal, code: str | None) -> tuple[dict[str, str], list[dict], list[int]] | None:
    """A clicked grid's name, staff and counts, or None outside the caller's scope."""
    grid = cached_reads.grid(ctx, code) if code else None
    if grid is None or not principal.scope.covers(grid.path):
        return None
    staff = [row for row in queries.list_workers(ctx.reader, grid.path, principal.scope) if row["grid"] == code]
    counts = wall_rules.grid_counts(wall_live.open_records(ctx, principal.scope), utc_now()).get(code, [0, 0])
    return {"code": grid.code, "name": grid.name}, staff, counts


def worker_panel(ctx: AppContext, principal: Principal, worker: str | None, area: GridInfo, lang: str) -> dict | None:
    """A clicked worker: who (phone masked as every staff phone is), the grid they answer for and
    the one they are in, the age of their last ping, today's patrol (km, hours, rounds, from the
    day's totals) and their recent trail; None for a worker the caller may not see."""
    if not worker or len(worker) > 64:
        return None
    keys = Keys(ctx.settings.prefix)
    line = ctx.redis.hget(keys.workers, worker)
    if line is None:
        return None
    position = live_state.parse_position(worker, line if isinstance(line, str) else line.decode())
    if not wall_live.worker_in_scope(position, wall_live.grid_paths(ctx), principal.scope):
        return None
    now = utc_now()
    today = now.astimezone(ctx.settings.tz).date()
    day = queries.load_patrol(ctx.reader, area.path, today, today, principal.scope, worker=worker)
    person = present_worker(queries.worker_records(ctx.reader, [worker]).get(worker, {"id": worker}), principal)
    grids = cached_reads.names(ctx, lang)["grids"]
    return {
        "id": worker, "name": person.get("name"), "phone": person.get("phone"),
        "home_grid": grids.get(person.get("grid"), person.get("grid")), "grid": grids.get(position["grid"], position["grid"]),
        "age_s": max(0.0, now.timestamp() - position["epoch"]),
        "online": now.timestamp() - position["epoch"] <= ctx.config.offline_after_minutes * 60,
        "km": float(day["meters"].sum()) / 1000, "hours": float(day["seconds"].sum()) / 3600, "rounds": int(day["rounds"].sum()),
        "trail": [[lon, lat] for lat, lon in live_state.trail(ctx.redis, keys, worker)],
    }


def acknowledge(ctx: AppContext, principal: Principal, shown: list, remote: str | None) -> int:
    """Acknowledge, for every wall, the attention items a wall showed: those of them still asking
    for attention within the caller's scope (a forged or stale key acknowledges nothing); audited.
    Returns how many were acknowledged."""
    principal.require("command")
    wanted = {key for key in (shown if isinstance(shown, list) else [])[:500] if wall_rules.is_attention_key(key)}
    if not wanted:
        return 0
    now = utc_now()
    current = {item["key"] for item in wall_rules.attention_items(wall_live.open_records(ctx, principal.scope), now, wall_live.acknowledged(ctx))}
    keys = sorted(wanted & current)
    if keys:
        live_state.acknowledge(ctx.redis, Keys(ctx.settings.prefix), keys, now)
        # The target names the cases as far as its column goes; the detail keeps every key (at most 500).
        cases = ",".join(sorted({key.split("|")[0] for key in keys}))
        accounts.audit(ctx.engine, principal.name, "alert.ack", cases if len(cases) <= 200 else cases[:199] + "…", {"items": keys}, remote)
    return len(keys)
