"""Connecting to Redis: one server by ``REDIS_URL``, or the master that Redis Sentinel names.

Every client — consumer, dashboard, cache, sessions, sign-in limiter, push streams, simulator,
replay — is made here, so a deployment with ``REDIS_SENTINELS`` fails over everywhere at once:
after a failover the next command of each client asks the sentinels for the new master.

One decoding convention: the dashboard's clients decode replies (``decode_responses=True``:
text); the feed consumer's does not (it parses the feed's bytes as they come, the fast way).
Code that serves both reads a reply with ``text()``.
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_TIMEOUT_S = 2.0


def text(value) -> str:
    """A Redis reply as text, from a decoding client (str) or not (bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _url_parts(url: str | None) -> dict:
    """db, username and password from a redis:// URL (its host is the sentinels' business)."""
    if not url:
        return {"db": 0}
    parts = urlsplit(url)
    path = parts.path.strip("/")
    return {"db": int(path) if path.isdigit() else 0, "username": parts.username or None, "password": parts.password or None}


def connect(settings, **options) -> redis.Redis:
    """A client of the configured Redis (options as for ``redis.Redis``, e.g. decode_responses)."""
    if settings.redis_sentinels:
        sentinel = Sentinel(list(settings.redis_sentinels), socket_timeout=SENTINEL_TIMEOUT_S, socket_connect_timeout=SENTINEL_TIMEOUT_S)
        return sentinel.master_for(settings.redis_master_name, **_url_parts(settings.redis_url), **options)
    return redis.Redis.from_url(settings.redis_url, **options)


def describe(settings) -> str:
    """Where Redis is, for messages (no password)."""
    if settings.redis_sentinels:
        hosts = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"master {settings.redis_master_name!r} of the sentinels {hosts}"
    return (settings.redis_url or "").split("@")[-1]


def cache_config(settings) -> dict:
    """flask-caching's settings for the same Redis."""
    if settings.redis_sentinels:
        parts = _url_parts(settings.redis_url)
        return {"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINELS": list(settings.redis_sentinels),
                "CACHE_REDIS_SENTINEL_MASTER": settings.redis_master_name, "CACHE_REDIS_DB": parts["db"],
                "CACHE_REDIS_PASSWORD": parts.get("password")}
    return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": settings.redis_url}


def limiter_storage(settings) -> tuple[str, dict]:
    """flask-limiter's storage URI and options for the same Redis (counts on the master only)."""
    if settings.redis_sentinels:
        parts = _url_parts(settings.redis_url)
        auth = f":{quote(parts['password'], safe='')}@" if parts.get("password") else ""
        hosts = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"redis+sentinel://{auth}{hosts}/{settings.redis_master_name}", {"use_replicas": False, "db": parts["db"]}
    return settings.redis_url, {}
