"""The wall's data, read from Redis live state and the indicator service, as a snapshot for
the first render and as deltas afterwards (only what changed since the client's cursor).

A cursor is a small dict the page keeps: the last change-stream id it has seen, the time of
the newest worker position it has, and digests of the parts it last received.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pandas as pd

from dashboard import area_reports, cached_reads
from dashboard.context import AppContext
from dashboard.extensions import cache
from dashboard.formatting import unique_labels
from data_feeds import live_state
from data_feeds.feed_status import feed_status
from data_feeds.keys import Keys
from data_feeds.queries import CaseFilter
from data_feeds.redis_client import text
from data_feeds.reference import GridInfo
from gridrules import wall_rules
from gridrules.access import Scope
from gridrules.timewindows import today

OPEN_CACHE_S = 10
MAX_CHANGES = 2000  # more changes than this since the cursor: resend everything instead
TRAIL_POINTS = 10


def digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _keys(ctx: AppContext) -> Keys:
    return Keys(ctx.settings.prefix)


def grid_paths(ctx: AppContext) -> dict[str, str]:
    """Every grid's materialised path (cached; the tree changes only on import)."""
    def compute():
        return {code: "/" + "/".join(chain) + "/" for code, chain in live_state.grid_ancestors(ctx.reader).items()}

    return cached_reads.cached("grid-paths", cached_reads.REFERENCE_TIMEOUT_S, compute)


def ancestors(ctx: AppContext) -> dict[str, tuple]:
    return cached_reads.cached("grid-ancestors", cached_reads.REFERENCE_TIMEOUT_S, lambda: live_state.grid_ancestors(ctx.reader))


def category_names(ctx: AppContext, lang: str) -> dict[str, str]:
    return cached_reads.names(ctx, lang)["categories_all"]


def department_names(ctx: AppContext, lang: str) -> dict[str, str]:
    return cached_reads.names(ctx, lang)["departments"]


def open_records(ctx: AppContext, scope: Scope) -> list[dict]:
    """Open cases in the caller's scope, from the live state: read once per change batch for
    every wall (they change only with an entry of the change stream; read after its id, so
    never older than it)."""
    key = f"wall-open|{latest_change_id(ctx)}"
    every = cache.get(key)
    if every is None:
        every = live_state.open_cases(ctx.redis, _keys(ctx))
        cache.set(key, every, timeout=OPEN_CACHE_S)
    paths = grid_paths(ctx)
    return [record for record in every if wall_rules.in_scope(record, paths, scope)]


def acknowledged(ctx: AppContext) -> set[str]:
    """The attention items an operator has acknowledged (for every wall)."""
    return live_state.acknowledged(ctx.redis, _keys(ctx))


def open_records_by_id(ctx: AppContext, case_ids: list[str], scope: Scope) -> dict[str, dict]:
    """The current live records of these cases (read now, not from the shared snapshot: a case
    reported a moment ago must not be mistaken for a closed one), those in scope and open."""
    records = live_state.open_cases_by_id(ctx.redis, _keys(ctx), case_ids)
    paths = grid_paths(ctx) if records else {}
    return {case_id: record for case_id, record in records.items() if wall_rules.in_scope(record, paths, scope)}


def worker_in_scope(position: dict, paths: dict, scope: Scope) -> bool:
    """The rule for every worker on the wall (marker, move, offline): their last position lies
    in the caller's area; departments see no patrol."""
    path = paths.get(position.get("grid"))
    return path is not None and scope.covers(path) and not scope.dept


def workers_in_scope(ctx: AppContext, scope: Scope, workers: list[str]) -> list[str]:
    """Those of ``workers`` the scope allows (by ``worker_in_scope``), in the given order."""
    if not workers or scope.dept:
        return []
    raw = ctx.redis.hmget(_keys(ctx).workers, workers)
    paths = grid_paths(ctx)
    return [worker for worker, line in zip(workers, raw)
            if line is not None and worker_in_scope(live_state.parse_position(worker, text(line)), paths, scope)]


def _worker_positions(ctx: AppContext, scope: Scope, workers: list[str], now: datetime, trail_points: int):
    """(worker, position, online, trail oldest first) of the given workers the scope allows."""
    if not workers or scope.dept:
        return []
    keys = _keys(ctx)
    raw = ctx.redis.hmget(keys.workers, workers)
    seen = ctx.redis.zmscore(keys.workers_seen, workers)
    pipe = ctx.redis.pipeline(transaction=False)
    for worker in workers:
        pipe.lrange(keys.trail(worker), 0, trail_points - 1)
    trails = pipe.execute()
    cutoff = now.timestamp() - ctx.config.offline_after_minutes * 60
    paths = grid_paths(ctx)
    found = []
    for worker, line, score, trail in zip(workers, raw, seen, trails):
        if line is None:
            continue
        position = live_state.parse_position(worker, line if isinstance(line, str) else line.decode())
        if not worker_in_scope(position, paths, scope):
            continue
        points = [[float(lon), float(lat)] for lat, lon in (p.split(",") for p in reversed([x if isinstance(x, str) else x.decode() for x in trail]))]
        found.append((worker, position, (score or 0) >= cutoff, points))
    return found


def worker_features(ctx: AppContext, scope: Scope, workers: list[str], now: datetime) -> list[dict]:
    """Markers (with trails) of the given workers, as far as the scope allows."""
    return [wall_rules.worker_feature(*row) for row in _worker_positions(ctx, scope, workers, now, TRAIL_POINTS)]


def worker_moves(ctx: AppContext, scope: Scope, workers: list[str], now: datetime) -> list[list]:
    """Compact moves of the given workers (``wall_rules.worker_move``): the page keeps the trails."""
    return [wall_rules.worker_move(*row) for row in _worker_positions(ctx, scope, workers, now, 1)]


def gone_offline(ctx: AppContext, scope: Scope, since_epoch: float, now: datetime) -> list[str]:
    """Workers of the scope online at ``since_epoch`` whose silence has since passed the offline limit."""
    limit = ctx.config.offline_after_minutes * 60
    found = ctx.redis.zrangebyscore(_keys(ctx).workers_seen, f"({since_epoch - limit}", now.timestamp() - limit)
    return workers_in_scope(ctx, scope, [text(w) for w in found])


def all_workers(ctx: AppContext) -> list[str]:
    return [w if isinstance(w, str) else w.decode() for w in ctx.redis.hkeys(_keys(ctx).workers)]


def tiles(ctx: AppContext, area: GridInfo, scope: Scope, now: datetime) -> dict:
    """Today's indicators of the area: exactly what /api/indicators answers."""
    return cached_reads.area_indicators(ctx, area, today(ctx.settings.tz, now), now, CaseFilter(), scope)


def hourly_trend(ctx: AppContext, area: GridInfo, scope: Scope, now: datetime) -> pd.DataFrame:
    """Reported and closed per hour over the last 24 hours (the same per-case flags as every count)."""
    from data_feeds.queries import load_cases
    from gridrules import indicators
    from gridrules.indicators import Window

    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=24)
    key = f"wall-trend|{area.code}|{scope.key()}|{end.isoformat()}"

    def compute():
        cases = load_cases(ctx.reader, area.path, Window.until_now(start, end, now), CaseFilter(), scope)
        rows = []
        for hour in range(24):
            window = Window.until_now(start + timedelta(hours=hour), start + timedelta(hours=hour + 1), now)
            rows.append({
                "hour": (start + timedelta(hours=hour)).astimezone(ctx.settings.tz).strftime("%H:00"),
                "reported": int(indicators.reported(cases, window).sum()),
                "closed": int(indicators.closed(cases, window).sum()),
            })
        return rows

    return pd.DataFrame(cached_reads.cached(key, 30, compute))


def breakdown(ctx: AppContext, area: GridInfo, scope: Scope, now: datetime, key: str) -> pd.DataFrame:
    """Today's reported cases by ``key`` (category or source), largest first."""
    window = today(ctx.settings.tz, now)
    cache_key = f"wall-breakdown|{key}|{area.code}|{scope.key()}|{window.start.isoformat()}"

    def compute():
        table = area_reports.table_by(ctx.reader, area, window, key, CaseFilter(), scope, ctx.settings.tz)
        return table[[key, "reported"]].sort_values("reported", ascending=False).to_dict("records") if not table.empty else []

    return pd.DataFrame(cached_reads.cached(cache_key, 30, compute), columns=[key, "reported"])


def major_class_counts(frame: pd.DataFrame, ctx: AppContext, lang: str) -> pd.DataFrame:
    """Category counts rolled up to their major class (the first level of the catalogue)."""
    if frame.empty:
        return pd.DataFrame(columns=["name", "reported"])
    reference_names = cached_reads.names(ctx, lang)
    names, parents = reference_names["categories_all"], reference_names["category_parents"]
    frame = frame[frame["reported"] > 0]
    if frame.empty:
        return pd.DataFrame(columns=["name", "reported"])
    frame = frame.assign(major=frame["category"].map(lambda code: cached_reads.major_class(parents, code)))
    rolled = frame.groupby("major", as_index=False)["reported"].sum().sort_values("reported", ascending=False)
    rolled["name"] = unique_labels(list(rolled["major"].map(names)), list(rolled["major"]))
    return rolled[["name", "reported"]]


def change_entries(ctx: AppContext, after_id: str) -> list[tuple[str, dict]]:
    """Entries of the live change stream after ``after_id``."""
    raw = ctx.redis.xrange(_keys(ctx).changes, min=f"({after_id}" if after_id != "0-0" else "-", count=MAX_CHANGES + 1)
    return [(text(entry_id), {text(k): text(v) for k, v in fields.items()}) for entry_id, fields in raw]


def latest_change_id(ctx: AppContext) -> str:
    last = ctx.redis.xrevrange(_keys(ctx).changes, count=1)
    return text(last[0][0]) if last else "0-0"



FEED_HEALTH_CACHE_S = 2


def feed_health(ctx: AppContext, now: datetime) -> dict:
    """How the feed is, for the wall's header (shared by every wall for a moment): the epoch ms
    the consumer last received a message, and the verdict /healthz gives — ok, no_consumer,
    degraded (with the reason: database, redis, error) or lagging (with the lag)."""
    def compute() -> dict:
        status = feed_status(ctx.redis, _keys(ctx), now)
        age = status["last_message_age_seconds"]
        reasons = [c["reason"] for c in status["consumers"] if c["state"] == "degraded"]
        return {"last_ms": None if age is None else int((now.timestamp() - age) * 1000), "state": status["verdict"]["state"],
                "reason": reasons[0] if reasons else "", "lag_s": status["lag_seconds"]}
    return cached_reads.cached("wall-feed-health", FEED_HEALTH_CACHE_S, compute)
