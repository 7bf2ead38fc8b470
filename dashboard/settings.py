"""Settings: read once from the environment, validated, frozen and passed down.

No other module reads ``os.environ``; tests build ``Settings(...)`` directly.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridrules import bounds
from gridrules.config import SettingsError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "config" / "gridops.toml"
DEFAULT_VAR_DIR = PROJECT_DIR / "var"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})




@dataclass(frozen=True)
class Settings:
    """Everything the application needs to know about its environment."""

    database_url: str = ""
    database_read_url: str | None = None  # a streaming replica the screens and the API read from (None: the primary)
    redis_url: str | None = None  # None (and no sentinels): the app starts an embedded Redis server
    redis_sentinels: tuple = ()  # ((host, port), ...): the master named redis_master_name, found through them
    redis_master_name: str = ""
    prefix: str = "gridops:"
    tz_name: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8050
    simulate: bool = True
    demo_daytime: bool = True  # the demo's simulator patrols in this machine's daytime (simulate --daytime-rounds)
    auth: bool = True
    tile_url: str | None = None
    var_dir: Path = DEFAULT_VAR_DIR
    config_path: Path = DEFAULT_CONFIG_PATH
    secret_key: str = ""
    map_crs: str = "gcj02"  # the datum of the grid polygons; positions are converted to it
    max_event_age_days: float = 90.0  # older timestamps on the feed are refused
    patrol_retention_days: float | None = None  # GPS points older than this are dropped (their daily totals stay); None keeps them
    cookie_secure: bool | None = None  # None: Secure cookies unless listening on loopback (plain-HTTP demo)
    session_idle_minutes: float = 30.0
    # Origins (scheme://host[:port]) other than the request's own that may send state-changing requests,
    # e.g. the public address in front of a proxy that rewrites the Host header.
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-For/-Proto/-Host/-Port are believed
    max_window_days: int = bounds.MAX_WINDOW_DAYS  # the longest window a request may ask for
    statement_timeout_s: float = bounds.STATEMENT_TIMEOUT_S  # every query of the dashboard stops after this
    max_streams: int = bounds.MAX_STREAMS  # change streams one caller (user or token) may hold open at once
    busy_places: int = bounds.BUSY_PLACES  # requests one worker works on at once; more wait
    busy_wait_s: float = bounds.BUSY_WAIT_S  # how long a request waits for a place before a 503
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'gridops.db'}")
        try:
            ZoneInfo(self.tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"GRIDOPS_TZ={self.tz_name!r} is not a time zone name such as Asia/Shanghai") from None
        if not self.prefix or " " in self.prefix:
            raise SettingsError(f"GRIDOPS_PREFIX={self.prefix!r} must be a non-empty key prefix without spaces, e.g. gridops:")
        if not 0 < self.port < 65536:
            raise SettingsError(f"PORT={self.port} must be between 1 and 65535")
        if self.map_crs not in ("wgs84", "gcj02", "bd09"):
            raise SettingsError(f"GRIDOPS_MAP_CRS={self.map_crs!r} must be wgs84, gcj02 or bd09")
        if self.redis_sentinels and not self.redis_master_name:
            raise SettingsError("REDIS_SENTINELS is set but REDIS_MASTER_NAME is not: name the master the sentinels watch (e.g. mymaster)")
        object.__setattr__(self, "allowed_origins", tuple(_allowed_origin(text) for text in self.allowed_origins))
        if self.trusted_proxies < 0:
            raise SettingsError(f"GRIDOPS_TRUSTED_PROXIES={self.trusted_proxies} must be 0 (no proxy) or the number of proxies in front")
        if not self.auth and self.host not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"GRIDOPS_AUTH=off is refused while listening on {self.host}: "
                "turn authentication off only with HOST=127.0.0.1 (loopback)"
            )

    @property
    def has_redis(self) -> bool:
        """Whether a Redis is configured (by URL or through sentinels); else the app starts one."""
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def secure_cookies(self) -> bool:
        return self.host not in LOOPBACK_HOSTS if self.cookie_secure is None else self.cookie_secure

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        """Build settings from environment variables (see README, 'Configuration')."""
        env = os.environ if env is None else env
        var_dir = Path(env.get("GRIDOPS_VAR_DIR") or DEFAULT_VAR_DIR)
        port_text = env.get("PORT", "8050")
        try:
            port = int(port_text)
        except ValueError:
            raise SettingsError(f"PORT={port_text!r} is not a number") from None
        return cls(
            database_url=env.get("DATABASE_URL", ""),
            database_read_url=env.get("DATABASE_READ_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            redis_sentinels=_host_ports(env.get("REDIS_SENTINELS", ""), "REDIS_SENTINELS", 26379),
            redis_master_name=env.get("REDIS_MASTER_NAME", ""),
            prefix=env.get("GRIDOPS_PREFIX", "gridops:"),
            tz_name=env.get("GRIDOPS_TZ", "Asia/Shanghai"),
            host=env.get("HOST", "127.0.0.1"),
            port=port,
            simulate=_flag(env, "GRIDOPS_SIMULATE", default=True),
            demo_daytime=_flag(env, "GRIDOPS_DEMO_DAYTIME", default=True),
            auth=_flag(env, "GRIDOPS_AUTH", default=True),
            tile_url=env.get("TILE_URL") or None,
            var_dir=var_dir,
            config_path=Path(env.get("GRIDOPS_CONFIG") or DEFAULT_CONFIG_PATH),
            secret_key=env.get("SECRET_KEY", ""),
            map_crs=(env.get("GRIDOPS_MAP_CRS") or "gcj02").lower(),
            max_event_age_days=_number(env, "GRIDOPS_MAX_EVENT_AGE_DAYS", 90.0),
            patrol_retention_days=_retention(env),
            cookie_secure=_flag(env, "GRIDOPS_COOKIE_SECURE", default=None),
            session_idle_minutes=_number(env, "GRIDOPS_SESSION_IDLE_MINUTES", 30.0),
            allowed_origins=tuple((env.get("GRIDOPS_ALLOWED_ORIGINS") or "").replace(",", " ").split()),
            trusted_proxies=_count(env, "GRIDOPS_TRUSTED_PROXIES"),
            max_window_days=_whole(env, "GRIDOPS_MAX_WINDOW_DAYS", bounds.MAX_WINDOW_DAYS),
            statement_timeout_s=_number(env, "GRIDOPS_STATEMENT_TIMEOUT_S", bounds.STATEMENT_TIMEOUT_S),
            max_streams=_whole(env, "GRIDOPS_MAX_STREAMS", bounds.MAX_STREAMS),
            busy_places=_whole(env, "GRIDOPS_BUSY_PLACES", bounds.BUSY_PLACES),
            busy_wait_s=_number(env, "GRIDOPS_BUSY_WAIT_S", bounds.BUSY_WAIT_S),
        )

    def with_redis(self, redis_url: str) -> Settings:
        return replace(self, redis_url=redis_url)


def _host_ports(text: str, name: str, default_port: int) -> tuple:
    """``host:port,host:port`` → ((host, port), ...); a host without a port takes ``default_port``."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", str(default_port))
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"{name}={text!r}: {item!r} is not host:port (e.g. 10.0.0.5:26379)")
        pairs.append((host, int(port)))
    return tuple(pairs)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number") from None
    if number <= 0:
        raise SettingsError(f"{name}={value!r} must be positive")
    return number


def _count(env: Mapping[str, str], name: str) -> int:
    value = (env.get(name) or "0").strip()
    if not value.isdigit():
        raise SettingsError(f"{name}={value!r} must be a whole number (0 or more)")
    return int(value)


def normal_origin(scheme: str, netloc: str) -> str:
    """``scheme://host[:port]`` in lower case without the scheme's default port: how origins are compared."""
    scheme, netloc = scheme.lower(), netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return f"{scheme}://{netloc}"


def _is_origin(parts: SplitResult) -> bool:
    """Whether a split URL is only ``http(s)://host[:port]``."""
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/") and not (parts.query or parts.fragment or parts.username)


def _allowed_origin(text: str) -> str:
    parts = urlsplit(text.strip())
    if not _is_origin(parts):
        raise SettingsError(f"GRIDOPS_ALLOWED_ORIGINS: {text!r} is not an origin such as https://gridops.example.gov.cn (scheme, host, optional port)")
    return normal_origin(parts.scheme, parts.netloc)
def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number") from None
    if number <= 0:
        raise SettingsError(f"{name}={value!r} must be positive")
    return number


def _retention(env: Mapping[str, str]) -> float | None:
    """GRIDOPS_PATROL_RETENTION_DAYS: unset keeps every GPS point; else at least a week
    (the wall's trails, today's rounds and the deadline of a late ping need the recent ones)."""
    text = (env.get("GRIDOPS_PATROL_RETENTION_DAYS") or "").strip()
    if not text:
        return None
    days = _number(env, "GRIDOPS_PATROL_RETENTION_DAYS", 0.0)
    if not 7 <= days <= 36_500:
        raise SettingsError(f"GRIDOPS_PATROL_RETENTION_DAYS={text[:20]!r} must be from 7 to 36500 days")
    return days


def _flag(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    value = env.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "on", "true", "yes"}:
        return True
    if lowered in {"0", "off", "false", "no"}:
        return False
    raise SettingsError(f"{name}={value!r} must be 1/on or 0/off")
