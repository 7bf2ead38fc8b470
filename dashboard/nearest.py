"""Who is nearest (就近调度): the online grid workers nearest to an open case, for the operator
to phone. Searched in the live positions' geo index (``live_state.nearest_positions``), within
the caller's scope, by great-circle distance from each worker's last ping."""
from __future__ import annotations

from datetime import datetime

from dashboard import cached_reads, wall_live
from dashboard.context import AppContext
from data_feeds import live_state, queries
from data_feeds.keys import Keys
from gridrules import bounds
from gridrules.access import Principal
from gridrules.privacy import staff_phone


def nearest_workers(ctx: AppContext, principal: Principal, case: dict, now: datetime, lang: str, count: int = bounds.NEAREST_WORKERS) -> list[dict]:
    """Up to ``count`` online workers the caller may see, nearest to the case first: id, name,
    metres, seconds since the last ping, the grid they are in, whether the case lies in the grid
    they are responsible for, and their phone (masked unless the caller may see personal data,
    as every staff phone is: ``privacy.staff_phone``).
    Empty for a case without a place and for department users (they see no patrol)."""
    if case.get("lat") is None or case.get("lon") is None or principal.scope.dept:
        return []
    keys = Keys(ctx.settings.prefix)
    paths = wall_live.grid_paths(ctx)
    cutoff = now.timestamp() - ctx.config.offline_after_minutes * 60
    found: list[tuple[str, float, dict]] = []
    scan = count * 4
    while True:
        # the nearest ``scan`` positions; offline workers and those outside the scope are passed
        # over, so read further until enough are left or there is nothing more to read
        candidates = live_state.nearest_positions(ctx.redis, keys, case["lat"], case["lon"], scan, bounds.NEAREST_RADIUS_M)
        seen = live_state.last_seen(ctx.redis, keys, [worker for worker, _, _ in candidates])
        found = [(worker, metres, position) for worker, metres, position in candidates
                 if seen.get(worker, 0) >= cutoff and wall_live.worker_in_scope(position, paths, principal.scope)]
        if len(found) >= count or len(candidates) < scan or scan >= bounds.MAX_NEAREST_SCAN:
            break
        scan = min(scan * 4, bounds.MAX_NEAREST_SCAN)
    found = found[:count]
    staff = queries.worker_records(ctx.reader, [worker for worker, _, _ in found])
    names = cached_reads.names(ctx, lang)["grids"]
    rows = []
    for worker, metres, position in found:
        person = staff.get(worker, {})
        rows.append({
            "id": worker, "name": person.get("name"), "metres": round(metres),
            "age_s": max(0, round(now.timestamp() - seen[worker])),
            "grid": position.get("grid"), "grid_name": names.get(position.get("grid")),
            "own_grid": person.get("grid") == case.get("grid"),
            "phone": staff_phone(person.get("phone"), principal.scope.personal_data),
        })
    return rows
