"""Flask hooks that hold every request to the bounds of ``dashboard.bounds``: a body larger
than any screen sends is refused unread (413), and a query stopped by the statement timeout
answers 503, both as JSON with an ``error`` text like every other refusal."""
from __future__ import annotations

from flask import abort, jsonify, request

from dashboard import bounds

RETRY_AFTER_S = 30  # a stopped query is worth trying again once the load has passed


def refuse_large_body():
    """Before anything else, sign-in included: a declared body over the cap is not read.
    (A body sent without a length is cut at the same cap by MAX_CONTENT_LENGTH when read.)"""
    if (request.content_length or 0) > bounds.MAX_BODY_BYTES:
        abort(413)


def body_too_large(_error):
    return jsonify(error=f"the request body is larger than {bounds.body_limit_text()}"), 413


def query_timed_out(error):
    return jsonify(error=str(error)), 503, {"Retry-After": str(RETRY_AFTER_S)}
