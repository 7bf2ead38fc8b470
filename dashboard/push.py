"""Server-sent events for open screens: a small "something changed" signal per change batch.

The page then pulls exactly what changed since its cursor, so a signal lost or merged in
the browser loses nothing. A heartbeat every few seconds lets the page notice a dead
stream; each stream ends after a while and the page opens a new one, so threads recycle.

A stream waits on the process's change hub (``dashboard.change_hub``: one reader of the
change stream per process), which under gevent workers costs no thread; each caller (token or
user) may still hold at most ``max_streams`` at once (429 beyond; counted in Redis across workers,
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
from data_feeds.keys import Keys

blueprint = Blueprint("gridops_push", __name__)

HEARTBEAT_S = 5.0
STREAM_LIFETIME_S = 600.0
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
    holds none: the request's context ends with the view, as for any other response. It waits
    on the process's change hub, which reads the change stream once for every open stream."""

    def events():
        started = checked = time.monotonic()
        seen_batch, seen_up = ctx.changes.state()
        sequence = 0
        yield "retry: 3000\n\n"
        while time.monotonic() - started < STREAM_LIFETIME_S:
            if time.monotonic() - checked >= RECHECK_S:
                if not still_signed_in(ctx, sign_in):
                    yield ": signed out\n\n"  # a comment: the page ignores it; the gate answers the reconnection
                    return
                _renew(ctx, keys, owner, slot)
                checked = time.monotonic()
            batch, up = ctx.changes.wait(seen_batch, seen_up, HEARTBEAT_S)
            if not up:
                yield "data: " + json.dumps({"redis": "down", "t": time.time()}) + "\n\n"
            elif batch != seen_batch:
                sequence += 1  # one signal for everything up to now: the page pulls it all in one go
                yield "data: " + json.dumps({"seq": sequence, "t": time.time()}) + "\n\n"
            else:
                yield "data: " + json.dumps({"hb": 1, "t": time.time()}) + "\n\n"
            seen_batch, seen_up = batch, up
        yield "data: [DONE]\n\n"

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
