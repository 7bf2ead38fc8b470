"""GridOps: the real-time operations dashboard of a grid-governance command centre.

``create_app(settings, screens)`` builds the Dash application: binds the cache and the
context, registers the HTTP API, sign-in and push, and shows the screens it is given (their
layouts and callbacks live above this package; ``app.py`` composes them). It starts no servers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dash
import flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.context import EXTENSION_KEY, AppContext
from dashboard.extensions import cache, limiter
from dashboard.settings import PROJECT_DIR, Settings, SettingsError
from gridrules.access import Forbidden
from gridrules.config import load_domain_config

ASSETS_DIR = PROJECT_DIR / "assets"


@dataclass(frozen=True)
class Screens:
    """What the layers above give the web app (app.py composes them): the page shell, the
    registration of every screen's callbacks, and what a failing callback shows instead."""

    layout: Callable
    register: Callable[[dash.Dash], None]
    on_error: Callable[[Exception], object]


def create_app(settings: Settings | None, screens: Screens) -> dash.Dash:
    """The Dash app for ``settings`` (read from the environment when not given) showing ``screens``."""
    from dashboard import access_log, api, auth, change_hub, csrf, guards, headers, metrics, push
    from dashboard.admission import Admission
    from data_feeds import redis_client
    from data_feeds.db import QueryTimeout, make_engine
    from data_feeds.keys import Keys
    from gridrules import bounds

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
        on_error=screens.on_error,  # a query past the statement timeout, an outage: a notice on the screen
    )
    app.layout = screens.layout
    server = app.server
    server.json.ensure_ascii = False  # Chinese names readable in API answers
    if settings.trusted_proxies:
        # Only behind proxies that set these headers: anyone else could claim any address or host.
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    server.config["SECRET_KEY"] = settings.secret_key or server.config.get("SECRET_KEY")
    server.config["MAX_CONTENT_LENGTH"] = bounds.MAX_BODY_BYTES
    cache.init_app(server, config={**redis_client.cache_config(settings), "CACHE_KEY_PREFIX": Keys(settings.prefix).cache_prefix, "CACHE_DEFAULT_TIMEOUT": 60})
    engine = make_engine(settings.database_url, statement_timeout_s=settings.statement_timeout_s)
    server.extensions[EXTENSION_KEY] = AppContext(
        settings=settings,
        config=config,
        engine=engine,
        redis=redis_client.connect(settings, decode_responses=True, socket_timeout=5, health_check_interval=30),
        reader=make_engine(settings.database_read_url, statement_timeout_s=settings.statement_timeout_s) if settings.database_read_url else engine,
        # A connection of its own, whose timeout outlasts the blocking read (the shared client's would not).
        admission=Admission(settings.busy_places, settings.busy_wait_s),
        changes=change_hub.ChangeHub(lambda name: redis_client.connect(settings, socket_timeout=change_hub.READ_BLOCK_S + 10, socket_connect_timeout=2, client_name=name), Keys(settings.prefix).changes),
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
    server.before_request(server.extensions[EXTENSION_KEY].admission.admit)
    server.teardown_request(server.extensions[EXTENSION_KEY].admission.release)
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
    screens.register(app)
    headers.install(app, settings.tile_url)  # last: the policy hashes the inline scripts of every callback
    return app
