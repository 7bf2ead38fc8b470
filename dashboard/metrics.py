"""Health and Prometheus metrics: database and Redis reachability, request latency.

Counters live in Redis so that every worker reports the same totals.
"""
from __future__ import annotations

import time

import redis
from flask import Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard.context import AppContext, current_context
from data_feeds.db import DatabaseUnavailable, check_reachable, replica_lag_seconds
from data_feeds.feed_status import feed_status
from data_feeds.keys import Keys
from data_feeds.redis_client import text
from gridrules.clock import utc_now

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def health_report(ctx: AppContext) -> dict:
    """Database and Redis reachability, and how the feed is (consumers alive, in an outage,
    lagging). ``status`` is ok only when all three are; ``serving`` says whether this
    dashboard worker itself can answer (database and Redis reachable)."""
    report = {"status": "ok", "serving": True, "database": {"ok": True}, "redis": {"ok": True},
              "feed": {"ok": False, "state": "unknown"}, "feed_lag_seconds": None, "last_message_age_seconds": None, "consumers": []}
    try:
        check_reachable(ctx.engine)
    except DatabaseUnavailable as exc:
        report["database"] = {"ok": False, "error": str(exc)}
    try:
        ctx.redis.ping()
        feed = feed_status(ctx.redis, Keys(ctx.settings.prefix), utc_now())
        report["feed_lag_seconds"] = feed["lag_seconds"]
        report["last_message_age_seconds"] = feed["last_message_age_seconds"]
        report["feed"] = feed["verdict"]
        report["consumers"] = feed["consumers"]
    except redis.RedisError as exc:
        report["redis"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if ctx.reader is not ctx.engine:
        try:
            report["replica_lag_seconds"] = replica_lag_seconds(ctx.reader, ctx.engine)
        except SQLAlchemyError as exc:
            report["replica"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    report["serving"] = report["database"]["ok"] and report["redis"]["ok"]
    if not (report["serving"] and report["feed"]["ok"]):
        report["status"] = "degraded"
    return report


def _route_kind(path: str) -> str:
    if path.startswith("/_dash-update-component"):
        return "callback"
    if path.startswith("/api/"):
        return "api"
    if path.startswith(("/_dash", "/assets", "/_favicon")):
        return "static"
    return "page"


def start_timer() -> None:
    g.gridops_started = time.perf_counter()


def record_latency(response: Response) -> Response:
    """After each request: count it and add its duration to the latency histogram in Redis."""
    started = getattr(g, "gridops_started", None)
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    kind = _route_kind(request.path)
    if kind == "static":
        return response
    key = Keys(current_context().settings.prefix).http_latency
    try:
        pipe = current_context().redis.pipeline(transaction=False)
        pipe.hincrby(key, f"{kind}:count", 1)
        pipe.hincrbyfloat(key, f"{kind}:sum", elapsed)
        for bucket in LATENCY_BUCKETS_S:
            if elapsed <= bucket:
                pipe.hincrby(key, f"{kind}:le:{bucket}", 1)
        pipe.execute()
    except redis.RedisError:
        pass  # metrics must never break a response; /healthz reports Redis down
    return response


def render_metrics(ctx: AppContext) -> str:
    """Prometheus text exposition of health and request latency."""
    health = health_report(ctx)
    lines = [
        "# HELP gridops_database_up 1 when the grid database answers.",
        "# TYPE gridops_database_up gauge",
        f"gridops_database_up {int(health['database']['ok'])}",
        "# HELP gridops_redis_up 1 when Redis answers.",
        "# TYPE gridops_redis_up gauge",
        f"gridops_redis_up {int(health['redis']['ok'])}",
    ]
    try:
        stored = ctx.redis.hgetall(Keys(ctx.settings.prefix).http_latency) if health["redis"]["ok"] else {}
    except redis.RedisError:
        stored = {}
    stored = {text(k): text(v) for k, v in stored.items()}
    lines += [
        "# HELP gridops_request_seconds Latency of callbacks, API calls and pages.",
        "# TYPE gridops_request_seconds histogram",
    ]
    if health["redis"]["ok"]:
        lines += _feed_lines(feed_status(ctx.redis, Keys(ctx.settings.prefix), utc_now()))
    for kind in ("callback", "api", "page"):
        count = int(float(stored.get(f"{kind}:count", 0)))
        for bucket in LATENCY_BUCKETS_S:
            lines.append(f'gridops_request_seconds_bucket{{kind="{kind}",le="{bucket}"}} {int(float(stored.get(f"{kind}:le:{bucket}", 0)))}')
        lines.append(f'gridops_request_seconds_bucket{{kind="{kind}",le="+Inf"}} {count}')
        lines.append(f'gridops_request_seconds_sum{{kind="{kind}"}} {float(stored.get(f"{kind}:sum", 0.0))}')
        lines.append(f'gridops_request_seconds_count{{kind="{kind}"}} {count}')
    return "\n".join(lines) + "\n"


FEED_OUTCOMES = ("consumed", "applied", "duplicates", "parked", "late")


def _counter_family(counters: dict, prefix: str, metric: str, label: str, help_text: str) -> list[str]:
    """One Prometheus counter family from the feed counters named ``prefix`` + label value."""
    lines = [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
    for name, value in sorted(counters.items()):
        if name.startswith(prefix):
            lines.append(f'{metric}{{{label}="{_label(name[len(prefix):])}"}} {value}')
    return lines


def _feed_lines(feed: dict) -> list[str]:
    lines = ["# HELP gridops_feed_messages_total Feed messages by stream and outcome.", "# TYPE gridops_feed_messages_total counter"]
    for outcome in FEED_OUTCOMES:
        for kind in ("case", "gps"):
            lines.append(f'gridops_feed_messages_total{{kind="{kind}",outcome="{outcome}"}} {feed["counters"].get(f"{outcome}:{kind}", 0)}')
    lines += _counter_family(feed["counters"], "dead:", "gridops_feed_dead_letters_total", "reason", "Messages moved to the dead-letter stream, by reason.")
    lines += ["# HELP gridops_feed_lag_seconds How long the oldest unprocessed message has waited.", "# TYPE gridops_feed_lag_seconds gauge"]
    for stream, status in feed["streams"].items():
        if status["lag_seconds"] is not None:
            lines.append(f'gridops_feed_lag_seconds{{stream="{stream}"}} {status["lag_seconds"]}')
    lines += ["# HELP gridops_feed_pending Messages delivered but not yet acknowledged.", "# TYPE gridops_feed_pending gauge"]
    for stream, status in feed["streams"].items():
        lines.append(f'gridops_feed_pending{{stream="{stream}"}} {status["pending"]}')
    lines += ["# HELP gridops_feed_ok 1 when a consumer is alive, none waits out an outage and the lag is small.", "# TYPE gridops_feed_ok gauge",
              f'gridops_feed_ok{{state="{feed["verdict"]["state"]}"}} {int(feed["verdict"]["ok"])}']
    lines += ["# HELP gridops_feed_consumer_up 1 for a consumer working normally, 0 when it waits out an outage or stopped reporting.",
              "# TYPE gridops_feed_consumer_up gauge"]
    for consumer in feed["consumers"]:
        lines.append(f'gridops_feed_consumer_up{{consumer="{_label(consumer["name"])}",state="{consumer["state"]}",reason="{consumer["reason"]}"}} {int(consumer["state"] == "ok")}')
    lines += _counter_family(feed["counters"], "outage:", "gridops_feed_outages_total", "service", "Outages of the database or Redis the consumers waited out.")
    lines += _counter_family(feed["counters"], "outage_seconds:", "gridops_feed_outage_seconds_total", "service", "Seconds spent waiting out outages.")
    lines += ["# HELP gridops_dead_letter_length Entries in the dead-letter stream.", "# TYPE gridops_dead_letter_length gauge", f"gridops_dead_letter_length {feed['dead_letters']}"]
    if feed["last_message_age_seconds"] is not None:
        lines += ["# HELP gridops_feed_last_message_age_seconds Seconds since the consumer last received a message.",
                  "# TYPE gridops_feed_last_message_age_seconds gauge", f"gridops_feed_last_message_age_seconds {feed['last_message_age_seconds']}"]
    return lines



def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
