"""Server-side sessions in Redis: the browser holds only a random id in an HttpOnly cookie.

A session ends after ``idle_s`` without a request, after ``max_age_s`` in any case, at
logout, and when its user is disabled or their password changes. Kiosk (wall) sessions
carry their token's id and end when the token is revoked.

Each user's session ids are also kept in a set, to end them all at once. Redis expires an
idle session's key but not its id in that set, so ids of ended sessions are dropped from the
set whenever the user signs in again.
"""
from __future__ import annotations

import json
import time

import redis

from data_feeds.credentials import new_session_id
from data_feeds.keys import Keys


def create(client: redis.Redis, keys: Keys, record: dict, idle_s: int, max_age_s: int) -> str:
    """A new session for ``record``; ``max_age_s`` 0 means no absolute limit (kiosks)."""
    session_id = new_session_id()
    now = time.time()
    record = {**record, "created": now, "last_seen": now, "idle_s": idle_s, "max_age_s": max_age_s}
    if record.get("user_id") is not None:
        _forget_ended(client, keys, record["user_id"])
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.session(session_id), json.dumps(record), ex=idle_s)
    if record.get("user_id") is not None:
        pipe.sadd(keys.user_sessions(record["user_id"]), session_id)
    pipe.execute()
    return session_id


def load(client: redis.Redis, keys: Keys, session_id: str) -> dict | None:
    """The session's record, its idle time restarted; None when missing, expired or too old."""
    if not session_id or len(session_id) > 100:
        return None
    raw = client.get(keys.session(session_id))
    if raw is None:
        return None
    record = json.loads(raw)
    now = time.time()
    if record["max_age_s"] and now - record["created"] > record["max_age_s"]:
        delete(client, keys, session_id)
        return None
    record["last_seen"] = now
    update(client, keys, session_id, record)
    return record


def is_live(client: redis.Redis, keys: Keys, session_id: str) -> bool:
    """Whether the session still exists and is young enough, without counting this as use
    (a long response checks it again and again; only requests keep a session alive)."""
    raw = client.get(keys.session(session_id))
    if raw is None:
        return False
    record = json.loads(raw)
    return not (record["max_age_s"] and time.time() - record["created"] > record["max_age_s"])


def update(client: redis.Redis, keys: Keys, session_id: str, record: dict) -> None:
    client.set(keys.session(session_id), json.dumps(record), ex=int(record["idle_s"]))


def delete(client: redis.Redis, keys: Keys, session_id: str) -> None:
    raw = client.get(keys.session(session_id))
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.session(session_id))
    if raw is not None and json.loads(raw).get("user_id") is not None:
        pipe.srem(keys.user_sessions(json.loads(raw)["user_id"]), session_id)
    pipe.execute()


def _session_ids(client: redis.Redis, keys: Keys, user_id: int) -> list[str]:
    return [value if isinstance(value, str) else value.decode() for value in client.smembers(keys.user_sessions(user_id))]


def _forget_ended(client: redis.Redis, keys: Keys, user_id: int) -> None:
    """Drop from the user's set the ids of sessions Redis has expired."""
    ids = _session_ids(client, keys, user_id)
    if not ids:
        return
    pipe = client.pipeline(transaction=False)
    for session_id in ids:
        pipe.exists(keys.session(session_id))
    ended = [session_id for session_id, alive in zip(ids, pipe.execute()) if not alive]
    if ended:
        client.srem(keys.user_sessions(user_id), *ended)


def delete_user_sessions(client: redis.Redis, keys: Keys, user_id: int, keep: str | None = None) -> int:
    """End every session of a user but ``keep`` (the caller's own, when they changed their own password); returns how many."""
    ended = [session_id for session_id in _session_ids(client, keys, user_id) if session_id != keep]
    if not ended:
        return 0
    pipe = client.pipeline(transaction=True)
    for session_id in ended:
        pipe.delete(keys.session(session_id))
    pipe.srem(keys.user_sessions(user_id), *ended)
    pipe.execute()
    return len(ended)
