"""Server-sent events for open screens: a small "something changed" signal per change batch.

The page then pulls exactly what changed since its cursor, so a signal lost or merged in
the browser loses nothing. A heartbeat every few seconds lets the page notice a dead
stream; each stream ends after a while and the page opens a new one, so threads recycle.

A stream holds a worker thread for its whole life, so each caller (token or user) may hold
at most ``max_streams`` at once (429 beyond; counted in Redis across workers,
``dashboard.stream_slots``), and a stream ends within a few seconds of its sign-in ending:
a revoked token, a logout, an expired session, a disabled user.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import redis
from flask import Blueprint, Response, jsonify

from dashboard import stream_slots
from dashboard.auth import SignIn, current_principal, sign_in_of_request, still_signed_in
from dashboard.context import AppContext, current_context
from data_feeds import redis_client
from data_feeds.keys import Keys

blueprint = Blueprint("gridops_push", __name__)

HEARTBEAT_S = 5.0
STREAM_LIFETIME_S = 600.0
COALESCE_S = 0.05  # wait this long after a change for more before signalling
RECHECK_S = 5.0  # how often an open stream checks its sign-in and renews its slot


@blueprint.get("/stream/changes")
def changes() -> Response | tuple[Response, int]:
    principal = current_principal()
    principal.require("wall")
    ctx = current_context()
    sign_in = sign_in_of_request(ctx)
    if not still_signed_in(ctx, sign_in):  # fresher than the gate's token recheck: a stream runs for minutes
        return jsonify(error="sign in first (the session ended or the token was revoked)"), 401
    keys = Keys(ctx.settings.prefix)
    owner = stream_slots.holder(principal)
    try:
        slot = stream_slots.acquire(ctx.redis, keys, owner, ctx.settings.max_streams)
    except redis.RedisError:
        return jsonify(error="live updates are unavailable: Redis cannot be reached; the page polls meanwhile"), 503
    if slot is None:
        return jsonify(error=f"too many open change streams for {principal.name}: at most {ctx.settings.max_streams} at once; "
                             "close another wall, or wait for a closed one to lapse"), 429
    response = Response(_events(ctx, keys, owner, slot, sign_in), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: _release(ctx, keys, owner, slot))  # even if the stream never started
    return response


def _events(ctx: AppContext, keys: Keys, owner: str, slot: str, sign_in: SignIn | None) -> Iterator[str]:
    """The stream's messages. It needs no request context (all it uses is passed in), so it
    holds none: the request's context ends with the view, as for any other response."""
    stream = keys.changes

    def events():
        # A connection of its own, whose timeout outlasts the blocking read: on the shared
        # client (timeout = HEARTBEAT_S) a quiet stream would time out instead of beating.
        connection = redis_client.connect(ctx.settings, socket_timeout=HEARTBEAT_S + 10, socket_connect_timeout=2)
        started = checked = time.monotonic()
        last_id = "$"
        sequence = 0
        try:
            yield "retry: 3000\n\n"
            while time.monotonic() - started < STREAM_LIFETIME_S:
                if time.monotonic() - checked >= RECHECK_S:
                    if not still_signed_in(ctx, sign_in):
                        yield ": signed out\n\n"  # a comment: the page ignores it; the gate answers the reconnection
                        return
                    _renew(ctx, keys, owner, slot)
                    checked = time.monotonic()
                try:
                    reply = connection.xread({stream: last_id}, count=1000, block=int(HEARTBEAT_S * 1000))
                    if reply:
                        time.sleep(COALESCE_S)
                        # one signal for everything up to now: the page pulls it all in one go
                        newest = connection.xrevrange(stream, count=1)
                        last_id = newest[0][0] if newest else reply[0][1][-1][0]
                except redis.RedisError:  # down, or failing over: say so and try again (a new master)
                    yield "data: " + json.dumps({"redis": "down", "t": time.time()}) + "\n\n"
                    time.sleep(HEARTBEAT_S)
                    continue
                if reply:
                    sequence += 1
                    yield "data: " + json.dumps({"seq": sequence, "t": time.time()}) + "\n\n"
                else:
                    yield "data: " + json.dumps({"hb": 1, "t": time.time()}) + "\n\n"
            yield "data: [DONE]\n\n"
        finally:
            connection.close()

    return events()


def _renew(ctx: AppContext, keys: Keys, owner: str, slot: str) -> None:
    try:
        stream_slots.renew(ctx.redis, keys, owner, slot)
    except redis.RedisError:
        pass  # Redis is down (the stream says so): the slot is taken back at the next renewal


def _release(ctx: AppContext, keys: Keys, owner: str, slot: str) -> None:
    try:
        stream_slots.release(ctx.redis, keys, owner, slot)
    except redis.RedisError:
        pass  # the slot lapses by itself within stream_slots.SLOT_TTL_S
