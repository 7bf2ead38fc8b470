"""GridOps: the real-time operations dashboard of a grid-governance command centre.

``create_app(settings)`` builds the Dash application: binds the cache and the context,
registers the HTTP API and each screen's callbacks. It starts no servers; ``app.py``
does that for the demo.
"""
from __future__ import annotations

import dash
import flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.access import Forbidden
from dashboard.context import EXTENSION_KEY, AppContext
from dashboard.domain_config import load_domain_config
from dashboard.extensions import cache, limiter
from dashboard.settings import PROJECT_DIR, Settings, SettingsError

ASSETS_DIR = PROJECT_DIR / "assets"


def create_app(settings: Settings | None = None) -> dash.Dash:
    """The Dash app for ``settings`` (read from the environment when not given)."""
    from callbacks import admin, home, notices, review, router, wall, weekly
    from dashboard import access_log, api, auth, bounds, csrf, guards, headers, metrics, push
    from data_feeds import redis_client
    from data_feeds.db import QueryTimeout, make_engine
    from data_feeds.keys import Keys
    from layouts import root

    settings = settings or Settings.from_env()
    if not settings.has_redis:
        raise SettingsError("REDIS_URL is not set: `python app.py` starts an embedded Redis server; under gunicorn set REDIS_URL (or REDIS_SENTINELS)")
    config = load_domain_config(settings.config_path, settings.tz)
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS_DIR),
        title="GridOps",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        on_error=notices.callback_failed,  # a query past the statement timeout: a notice on the screen
    )
    app.layout = root.layout
    server = app.server
    server.json.ensure_ascii = False  # Chinese names readable in API answers
    if settings.trusted_proxies:
        # Only behind proxies that set these headers: anyone else could claim any address or host.
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    server.config["SECRET_KEY"] = settings.secret_key or server.config.get("SECRET_KEY")
    server.config["MAX_CONTENT_LENGTH"] = bounds.MAX_BODY_BYTES
    cache.init_app(server, config={**redis_client.cache_config(settings), "CACHE_KEY_PREFIX": Keys(settings.prefix).cache_prefix, "CACHE_DEFAULT_TIMEOUT": 60})
    server.extensions[EXTENSION_KEY] = AppContext(
        settings=settings,
        config=config,
        engine=make_engine(settings.database_url, statement_timeout_s=settings.statement_timeout_s),
        redis=redis_client.connect(settings, decode_responses=True, socket_timeout=5, health_check_interval=30),
    )
    storage_uri, storage_options = redis_client.limiter_storage(settings)
    server.config.update(
        RATELIMIT_STORAGE_URI=storage_uri,
        RATELIMIT_STORAGE_OPTIONS=storage_options,
        RATELIMIT_KEY_PREFIX=Keys(settings.prefix).rate_limit_prefix,
        RATELIMIT_ENABLED=settings.auth,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    limiter.init_app(server)
    access_log.install()
    server.before_request(metrics.start_timer)
    server.before_request(guards.refuse_large_body)
    server.before_request(auth.gate)
    server.before_request(csrf.refuse_cross_site)
    server.after_request(metrics.record_latency)
    server.register_blueprint(auth.blueprint)
    server.register_blueprint(api.blueprint)
    server.register_blueprint(push.blueprint)
    server.register_error_handler(413, guards.body_too_large)
    server.register_error_handler(QueryTimeout, guards.query_timed_out)
    for outage in guards.OUTAGE_ERRORS:
        server.register_error_handler(outage, guards.service_unavailable)
    server.register_error_handler(429, auth.too_many_attempts)
    server.register_error_handler(Forbidden, lambda error: (flask.jsonify(error=str(error)), 403))
    router.register(app)
    home.register(app)
    admin.register(app)
    wall.register(app)
    review.register(app)
    weekly.register(app)
    headers.install(app, settings.tile_url)  # last: the policy hashes the inline scripts of every callback
    return app
