"""How the feed is doing, read from Redis: lag, pending, stream lengths, counters, last message."""
from __future__ import annotations

from datetime import datetime

import redis

from data_feeds.keys import Keys
from data_feeds.redis_client import text

GROUP = "gridops-ingest"



def _id_ms(message_id: str) -> int:
    return int(text(message_id).split("-", 1)[0])


def stream_status(client, stream: str, now: datetime, group: str = GROUP) -> dict:
    """length, pending and lag (seconds the oldest unprocessed message has waited) of a stream."""
    now_ms = now.timestamp() * 1000
    try:
        length = client.xlen(stream)
        groups = {text(g["name"]): g for g in client.xinfo_groups(stream)}
    except redis.ResponseError:  # no stream yet
        return {"length": 0, "pending": 0, "lag_seconds": None}
    info = groups.get(group)
    if info is None:
        return {"length": length, "pending": 0, "lag_seconds": None}
    oldest_ms = None
    undelivered = client.xrange(stream, min=f"({text(info['last-delivered-id'])}", count=1)
    if undelivered:
        oldest_ms = _id_ms(undelivered[0][0])
    pending = client.xpending(stream, group)
    if pending["pending"]:
        first = _id_ms(pending["min"])
        oldest_ms = first if oldest_ms is None else min(oldest_ms, first)
    lag = 0.0 if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000)
    return {"length": length, "pending": int(pending["pending"]), "lag_seconds": round(lag, 3)}


LAGGING_S = 60.0  # the oldest unprocessed message waiting longer than this: the screens run behind
FORGET_DEAD_CONSUMER_S = 3600.0  # a consumer silent this long is no longer listed


def consumer_states(client, keys: Keys, now: datetime) -> list[dict]:
    """Each feed consumer that reported in the last hour: its state (ok, degraded with the
    reason — database, redis, error — or dead when it stopped reporting), since when, how long ago."""
    states = []
    for name, seen in client.zrange(keys.consumers, 0, -1, withscores=True):
        name = text(name)
        status = {text(k): text(v) for k, v in client.hgetall(keys.consumer_status(name)).items()}
        if not status and now.timestamp() - seen > FORGET_DEAD_CONSUMER_S:
            client.zrem(keys.consumers, name)
            continue
        states.append({
            "name": name,
            "state": status.get("state", "dead"),
            "reason": status.get("reason", ""),
            "detail": status.get("detail", ""),
            "since_seconds": round(max(0.0, now.timestamp() - float(status["since"])), 1) if status.get("since") else None,
            "seen_seconds_ago": round(max(0.0, now.timestamp() - float(status.get("seen") or seen)), 1),
        })
    return states


def feed_verdict(consumers: list[dict], lag_seconds: float | None) -> dict:
    """One word for the feed: ok; no_consumer (none alive: nothing reaches the screens);
    degraded (a consumer waits out an outage); lagging (messages wait longer than LAGGING_S)."""
    alive = [c for c in consumers if c["state"] != "dead"]
    if not alive:
        state = "no_consumer"
    elif not any(c["state"] == "ok" for c in alive):
        state = "degraded"
    elif lag_seconds is not None and lag_seconds > LAGGING_S:
        state = "lagging"
    else:
        state = "ok"
    return {"ok": state == "ok", "state": state, "consumers_alive": len(alive)}


def feed_status(client, keys: Keys, now: datetime) -> dict:
    """Everything the operations view, /healthz and /metrics report about the feed."""
    streams = {name: stream_status(client, key, now) for name, key in (("case-events", keys.case_events), ("patrol-gps", keys.patrol_gps))}
    lags = [s["lag_seconds"] for s in streams.values() if s["lag_seconds"] is not None]
    counters = {text(k): int(float(v)) for k, v in client.hgetall(keys.feed_metrics).items()}
    last = client.get(keys.last_message)
    consumers = consumer_states(client, keys, now)
    lag = max(lags) if lags else None
    return {
        "streams": streams,
        "lag_seconds": lag,
        "counters": counters,
        "dead_letters": client.xlen(keys.dead_letter) if client.exists(keys.dead_letter) else 0,
        "last_message_age_seconds": None if last is None else round(max(0.0, now.timestamp() - int(last) / 1000), 3),
        "consumers": consumers,
        "verdict": feed_verdict(consumers, lag),
    }


def trim_consumed(client, stream: str, keep_s: float, now: datetime) -> int:
    """Delete entries every consumer group has read and acknowledged, keeping the last ``keep_s``
    seconds for inspection; returns how many went. Never trims what some group still needs."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return 0
    if not groups:
        return 0
    floors = []
    for group in groups:
        floors.append(_id_ms(group["last-delivered-id"]))
        pending = client.xpending(stream, text(group["name"]))
        if pending["pending"]:
            floors.append(_id_ms(pending["min"]))
    floor_ms = min(min(floors), int((now.timestamp() - keep_s) * 1000))
    if floor_ms <= 0:
        return 0
    return int(client.xtrim(stream, minid=f"{floor_ms}-0", approximate=False) or 0)
