"""Server-side sessions in Redis: the browser holds only a random id in an HttpOnly cookie.

A session ends after ``idle_s`` without a request, after ``max_age_s`` in any case, at
logout, and when its user is disabled. Kiosk (wall) sessions carry their token's id and
end when the token is revoked.
"""
from __future__ import annotations

import json
import time

from dashboard.security import new_session_id
from data_feeds.keys import Keys


def create(client, keys: Keys, record: dict, idle_s: int, max_age_s: int) -> str:
    """A new session for ``record``; ``max_age_s`` 0 means no absolute limit (kiosks)."""
    session_id = new_session_id()
    now = time.time()
    record = {**record, "created": now, "last_seen": now, "idle_s": idle_s, "max_age_s": max_age_s}
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.session(session_id), json.dumps(record), ex=idle_s)
    if record.get("user_id") is not None:
        pipe.sadd(keys.user_sessions(record["user_id"]), session_id)
    pipe.execute()
    return session_id


def load(client, keys: Keys, session_id: str) -> dict | None:
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


def is_live(client, keys: Keys, session_id: str) -> bool:
    """Whether the session still exists and is young enough, without counting this as use
    (a long response checks it again and again; only requests keep a session alive)."""
    raw = client.get(keys.session(session_id))
    if raw is None:
        return False
    record = json.loads(raw)
    return not (record["max_age_s"] and time.time() - record["created"] > record["max_age_s"])


def update(client, keys: Keys, session_id: str, record: dict) -> None:
    client.set(keys.session(session_id), json.dumps(record), ex=int(record["idle_s"]))


def delete(client, keys: Keys, session_id: str) -> None:
    raw = client.get(keys.session(session_id))
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.session(session_id))
    if raw is not None and json.loads(raw).get("user_id") is not None:
        pipe.srem(keys.user_sessions(json.loads(raw)["user_id"]), session_id)
    pipe.execute()


def delete_user_sessions(client, keys: Keys, user_id: int) -> int:
    """End every session of a user; returns how many."""
    ids = list(client.smembers(keys.user_sessions(user_id)))
    pipe = client.pipeline(transaction=True)
    for session_id in ids:
        pipe.delete(keys.session(session_id if isinstance(session_id, str) else session_id.decode()))
    pipe.delete(keys.user_sessions(user_id))
    pipe.execute()
    return len(ids)
