"""Telling an outage from a bad message, and waiting one out.

An outage — the database or Redis unreachable, restarting, locked or failing over — is
waited out: nothing is acknowledged, the consumer backs off and carries on by itself when
the service is back. Any other error while applying a message is the message's own doing
and sends it, alone, to the dead-letter stream.
"""
from __future__ import annotations

import random
import threading

import redis
from sqlalchemy import exc as sql_errors

from data_feeds.db import DatabaseUnavailable

DATABASE = "database"
REDIS = "redis"
# Redis answers these while it cannot serve yet (loading its file, a failover under way).
REDIS_TRANSIENT_REPLIES = ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS")


def outage_of(error: BaseException) -> str | None:
    """``DATABASE`` or ``REDIS`` when ``error`` means that service is (for now) unavailable; else None."""
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        return REDIS
    if isinstance(error, redis.ResponseError) and str(error).startswith(REDIS_TRANSIENT_REPLIES):
        return REDIS
    if isinstance(error, (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.DisconnectionError, sql_errors.TimeoutError)):
        return DATABASE  # unreachable, restarting, "database is locked", a lost or timed-out connection
    if isinstance(error, sql_errors.DBAPIError) and error.connection_invalidated:
        return DATABASE
    if isinstance(error, DatabaseUnavailable):
        return DATABASE
    return None


class Backoff:
    """Exponential waits with jitter, from ``first_s`` up to ``cap_s``; ``reset`` after a success."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 10.0):
        self.first_s = first_s
        self.cap_s = cap_s
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.first_s * 2 ** self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.8, 1.0)

    def wait(self, stop: threading.Event) -> None:
        """Sleep the next delay, or less when ``stop`` is set meanwhile."""
        stop.wait(self.next_delay())

    def reset(self) -> None:
        self.attempts = 0
