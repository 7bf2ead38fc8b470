"""Server-sent events for open screens: a small "something changed" signal per change batch.

The page then pulls exactly what changed since its cursor, so a signal lost or merged in
the browser loses nothing. A heartbeat every few seconds lets the page notice a dead
stream; each stream ends after a while and the page opens a new one, so threads recycle.
"""
from __future__ import annotations

import json
import time

import redis
from flask import Blueprint, Response, stream_with_context

from dashboard.auth import current_principal
from dashboard.context import current_context
from data_feeds import redis_client
from data_feeds.keys import Keys

blueprint = Blueprint("gridops_push", __name__)

HEARTBEAT_S = 5.0
STREAM_LIFETIME_S = 600.0
COALESCE_S = 0.05  # wait this long after a change for more before signalling


@blueprint.get("/stream/changes")
def changes():
    current_principal().require("wall")
    ctx = current_context()
    stream = Keys(ctx.settings.prefix).changes

    @stream_with_context
    def events():
        # A connection of its own, whose timeout outlasts the blocking read: on the shared
        # client (timeout = HEARTBEAT_S) a quiet stream would time out instead of beating.
        connection = redis_client.connect(ctx.settings, socket_timeout=HEARTBEAT_S + 10, socket_connect_timeout=2)
        started = time.monotonic()
        last_id = "$"
        sequence = 0
        try:
            yield "retry: 3000\n\n"
            while time.monotonic() - started < STREAM_LIFETIME_S:
                try:
                    reply = connection.xread({stream: last_id}, count=1000, block=int(HEARTBEAT_S * 1000))
                except redis.RedisError:
                    yield "data: " + json.dumps({"redis": "down", "t": time.time()}) + "\n\n"
                    time.sleep(HEARTBEAT_S)
                    continue
                if reply:
                    time.sleep(COALESCE_S)
                    # one signal for everything up to now: the page pulls it all in one go
                    newest = connection.xrevrange(stream, count=1)
                    last_id = newest[0][0] if newest else reply[0][1][-1][0]
                    sequence += 1
                    yield "data: " + json.dumps({"seq": sequence, "t": time.time()}) + "\n\n"
                else:
                    yield "data: " + json.dumps({"hb": 1, "t": time.time()}) + "\n\n"
            yield "data: [DONE]\n\n"
        finally:
            connection.close()

    return Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
