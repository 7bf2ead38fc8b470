"""How many change streams each caller holds open, counted in Redis so that the cap holds
across every worker and process.

Each open stream holds a member of its caller's sorted set, scored with the moment its slot
lapses (Redis server time, the same clock for every worker). The stream's heartbeat moves
that moment on, its end removes the member, and a stream whose worker died without ending it
lapses by itself within ``SLOT_TTL_S``: no slot is lost for good.
"""
from __future__ import annotations

import secrets

import redis

from data_feeds.keys import Keys
from gridrules.access import Principal

SLOT_TTL_S = 30  # several heartbeats: a live stream always renews its slot in time

# KEYS: the caller's streams. ARGV: stream id, cap, ttl (s). 1 when the slot is taken, 0 when the cap is reached.
ACQUIRE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: the caller's streams. ARGV: stream id, ttl (s). Moves the slot's lapse on (and takes it
# back if it lapsed while Redis could not be reached: the stream is still open).
RENEW = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def holder(principal: Principal) -> str:
    """Whose slots a stream counts against: the token (each wall has its own), else the user."""
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"name:{principal.name}"


def acquire(client: redis.Redis, keys: Keys, owner: str, cap: int, ttl_s: int = SLOT_TTL_S) -> str | None:
    """A new stream's slot id, or None when ``owner`` already holds ``cap`` open streams."""
    stream_id = secrets.token_hex(8)
    taken = client.eval(ACQUIRE, 1, keys.stream_slots(owner), stream_id, cap, ttl_s)
    return stream_id if int(taken) else None


def renew(client: redis.Redis, keys: Keys, owner: str, stream_id: str, ttl_s: int = SLOT_TTL_S) -> None:
    client.eval(RENEW, 1, keys.stream_slots(owner), stream_id, ttl_s)


def release(client: redis.Redis, keys: Keys, owner: str, stream_id: str) -> None:
    client.zrem(keys.stream_slots(owner), stream_id)

