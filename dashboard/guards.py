"""Flask hooks that hold every request to the bounds of ``gridrules.bounds``: a body larger
than any screen sends is refused unread (413), and a query stopped by the statement timeout
answers 503, both as JSON with an ``error`` text like every other refusal."""
from __future__ import annotations

import html

import redis
from flask import Response, abort, jsonify, request
from sqlalchemy import exc as sql_errors
from werkzeug.exceptions import RequestEntityTooLarge

from data_feeds.db import DatabaseUnavailable, QueryTimeout
from gridrules import bounds

RETRY_AFTER_S = 30  # a stopped query is worth trying again once the load has passed


def refuse_large_body() -> None:
    """Before anything else, sign-in included: a declared body over the cap is not read.
    (A body sent without a length is cut at the same cap by MAX_CONTENT_LENGTH when read.)"""
    if (request.content_length or 0) > bounds.MAX_BODY_BYTES:
        abort(413)


def body_too_large(_error: RequestEntityTooLarge) -> tuple[Response, int]:
    return jsonify(error=f"the request body is larger than {bounds.body_limit_text()}"), 413


def query_timed_out(error: QueryTimeout) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error=str(error)), 503, {"Retry-After": str(RETRY_AFTER_S)}


# What the database and Redis raise when they are away (``outages.outage_of`` tells which).
OUTAGE_ERRORS = (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.DisconnectionError, sql_errors.TimeoutError,
                 DatabaseUnavailable, redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)
OUTAGE_RETRY_S = 10

OUTAGE_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{retry}"><title>GridOps</title>
<link rel="stylesheet" href="/assets/gridops.css"></head>
<body class="outage-page"><main><h1>{zh}</h1><p lang="en">{en}</p></main></body></html>"""


def service_unavailable(error: Exception) -> tuple[Response, int, dict[str, str]] | Response:
    """The database or Redis is away (a request that needed it before any screen could say so):
    503 with what is wrong, in JSON for scripts and Dash, or a page that tries again by itself."""
    from dashboard.i18n import t
    from data_feeds.outages import DATABASE, outage_of

    service = outage_of(error) or DATABASE
    key = "database_unavailable" if service == DATABASE else "redis_unavailable"
    headers = {"Retry-After": str(OUTAGE_RETRY_S)}
    if request.path.startswith(("/api/", "/_dash", "/stream/")) or request.headers.get("Authorization"):
        return jsonify(error=t(key, "en"), unavailable=service), 503, headers
    page = OUTAGE_PAGE.format(retry=OUTAGE_RETRY_S, zh=html.escape(t(key, "zh")), en=html.escape(t(key, "en")))
    return Response(page, status=503, mimetype="text/html", headers=headers)
