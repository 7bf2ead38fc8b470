"""Security headers on every response: a Content-Security-Policy that forbids inline script,
and the usual hardening headers.

The policy is the second wall behind escaping (tests/test_markup_safety.py): were a string
from a feed or an import file ever parsed as HTML, the browser would still refuse to run an
inline script or event handler from it, to load a script from anywhere but this server, or
to send data anywhere but this server.

What the screens need, found by running every screen in Chromium under the policy and
listening for violations (tests/test_browser_hostile.py):

- scripts only from this server, plus Dash's one inline script (``new DashRenderer(…)``),
  allowed by its hash from ``app.csp_hashes()`` (computed once every callback is
  registered: inline clientside callbacks, of which there are none, would be among them).
  No ``'unsafe-eval'``: plotly's SVG charts, dash-leaflet and dash-ag-grid run without it.
- ``style-src 'unsafe-inline'``: Dash's core components (react-select's dropdowns, the
  date pickers), dash-leaflet (Leaflet's own CSS), dash-renderer and plotly insert
  ``<style>`` elements at run time, and the login page has one; under ``style-src 'self'``
  Chromium blocks them all and the screens fall apart. Styles cannot run script, and a
  nonce would have to reach every one of those libraries. (``style-src-elem`` alone would
  keep style attributes out, but browsers before CSP 3 — Chromium 75 — would then fall
  back to ``style-src`` and refuse every one of those elements.)
- images from this server, ``data:`` and ``blob:`` (Leaflet, plotly and AG Grid use data
  URIs for icons), and from the tile server when ``TILE_URL`` is set.
- ``connect-src 'self'``: the callbacks and the wall's event stream.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import dash
from flask import Response

from dashboard.settings import SettingsError

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # and frame-ancestors 'none', for browsers that know CSP
}


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source of a tile server's URL template: its scheme and host (``{s}.`` in front
    of the host, Leaflet's subdomains, becomes ``*.``); None when tiles come from this server."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if not parts.scheme and not parts.netloc:
        return None  # a path on this server: 'self'
    host = parts.netloc
    if host.startswith("{s}."):
        host = "*." + host[len("{s}."):]
    if parts.scheme not in ("http", "https") or not host or any(char in host for char in "{}'; ,"):
        raise SettingsError(f"TILE_URL {tile_url!r}: want http(s)://HOST[:PORT]/…{{z}}/{{x}}/{{y}}…, with {{s}}. at most in front of the host")
    return f"{parts.scheme}://{host}"


def content_security_policy(script_hashes: list[str], tile_url: str | None = None) -> str:
    """The policy: scripts from this server and the given inline-script hashes only."""
    tiles = tile_source(tile_url)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],  # see the module's docstring
        "img-src": ["'self'", "data:", "blob:", *([tiles] if tiles else [])],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def install(app: dash.Dash, tile_url: str | None) -> None:
    """Add the headers to every response of ``app`` (a Dash app whose callbacks are all registered)."""
    headers = {**HEADERS, "Content-Security-Policy": content_security_policy(app.csp_hashes(), tile_url)}

    def add_headers(response: Response) -> Response:
        # every response, not only HTML: error pages, the login page and Dash's index are
        # HTML, and nosniff keeps a browser from taking JSON or text for a page
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    app.server.after_request(add_headers)
