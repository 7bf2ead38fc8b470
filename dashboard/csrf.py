"""Cross-site request forgery: a request that changes something must come from a page of this site.

Browsers send ``Origin`` with every request that is not GET or HEAD (``Referer`` stands in
when Origin is missing), and a page of another site can forge neither. So every request but
GET, HEAD and OPTIONS — sign-in, sign-out, unmasking, every Dash callback — is refused with
403 unless its Origin (or, without one, its Referer) is this site: the request's own
scheme and host (or ``https`` on the same host, as a TLS-terminating proxy that keeps the
Host header shows it), or one of ``GRIDOPS_ALLOWED_ORIGINS``. ``X-Forwarded-Host`` counts only
when ``GRIDOPS_TRUSTED_PROXIES`` says a proxy sets it (the app factory then applies ProxyFix).

Requests with ``Authorization: Bearer`` are exempt: they carry no cookie-borne authority, and
a page of another site cannot add that header without a CORS preflight this app never grants.

Do not send ``Referrer-Policy: no-referrer``: browsers then send ``Origin: null`` with a form
POST, and the login form would be refused.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Response, jsonify, request

from dashboard.context import current_context
from dashboard.i18n import t
from dashboard.settings import normal_origin

log = logging.getLogger("gridops.csrf")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _origin_of(url: str) -> str | None:
    """The normalised origin of a URL or an Origin header; None for ``null`` or anything without a host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return normal_origin(parts.scheme, parts.netloc)


def sender_origin() -> str | None:
    """Where the request comes from: its Origin header, else its Referer's origin."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return _origin_of(origin)
    referer = request.headers.get("Referer")
    return _origin_of(referer) if referer else None


def own_origins() -> frozenset[str]:
    """The origins this request may come from: this site as the request reached it, and the configured ones."""
    host = request.host
    return frozenset({normal_origin(request.scheme, host), normal_origin("https", host), *current_context().settings.allowed_origins})


def _is_bearer() -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


def refuse_cross_site() -> Response | tuple[Response, int] | None:
    """Before every request: 403 for a state-changing request that does not come from this site."""
    if request.method in SAFE_METHODS or _is_bearer():
        return None
    origin = sender_origin()
    if origin is not None and origin in own_origins():
        return None
    log.warning("refused %s %r from origin %s (this site: %s; behind a proxy set GRIDOPS_ALLOWED_ORIGINS or GRIDOPS_TRUSTED_PROXIES)",
                request.method, request.path, origin or "(none)", ", ".join(sorted(own_origins())))
    if request.path.startswith(("/api/", "/_dash")):
        return jsonify(error="cross-site request refused: send it from a page of this site"), 403
    return Response(t("cross_site_refused", "zh") + " / " + t("cross_site_refused", "en"), status=403, mimetype="text/plain")
