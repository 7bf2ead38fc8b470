"""GridOps: the real-time operations dashboard of a grid-governance command centre.

``create_app(settings)`` builds the Dash application: binds the cache and the context,
registers the HTTP API and each screen's callbacks. It starts no servers; ``app.py``
does that for the demo.
"""
from __future__ import annotations

import dash
import flask
import redis

from dashboard.access import Forbidden
from dashboard.context import EXTENSION_KEY, AppContext
from dashboard.domain_config import load_domain_config
from dashboard.extensions import cache, limiter
from dashboard.settings import PROJECT_DIR, Settings, SettingsError

ASSETS_DIR = PROJECT_DIR / "assets"


def create_app(settings: Settings | None = None) -> dash.Dash:
    """The Dash app for ``settings`` (read from the environment when not given)."""
    from callbacks import admin, home, review, router, wall, weekly
    from dashboard import api, auth, headers, metrics, push
    from data_feeds.db import make_engine
    from data_feeds.keys import Keys
    from layouts import root

    settings = settings or Settings.from_env()
    if not settings.redis_url:
        raise SettingsError("REDIS_URL is not set: `python app.py` starts an embedded Redis server; under gunicorn set REDIS_URL")
    config = load_domain_config(settings.config_path, settings.tz)
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS_DIR),
        title="GridOps",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = root.layout
    server = app.server
    server.json.ensure_ascii = False  # Chinese names readable in API answers
    server.config["SECRET_KEY"] = settings.secret_key or server.config.get("SECRET_KEY")
    cache.init_app(
        server,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": settings.redis_url,
            "CACHE_KEY_PREFIX": Keys(settings.prefix).cache_prefix,
            "CACHE_DEFAULT_TIMEOUT": 60,
        },
    )
    server.extensions[EXTENSION_KEY] = AppContext(
        settings=settings,
        config=config,
        engine=make_engine(settings.database_url),
        redis=redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5, health_check_interval=30),
    )
    server.config.update(
        RATELIMIT_STORAGE_URI=settings.redis_url,
        RATELIMIT_KEY_PREFIX=Keys(settings.prefix).rate_limit_prefix,
        RATELIMIT_ENABLED=settings.auth,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    limiter.init_app(server)
    server.before_request(metrics.start_timer)
    server.before_request(auth.gate)
    server.after_request(metrics.record_latency)
    server.register_blueprint(auth.blueprint)
    server.register_blueprint(api.blueprint)
    server.register_blueprint(push.blueprint)
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
