"""Settings are read once from the environment and validated with messages that say what to do."""
from __future__ import annotations

import pytest

from dashboard.settings import Settings, SettingsError
from gridrules.config import load_domain_config
from tests.support import TZ


def test_defaults():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("var/gridops.db")
    assert settings.redis_url is None and settings.prefix == "gridops:" and settings.port == 8050
    assert settings.tz_name == "Asia/Shanghai" and settings.simulate and settings.auth


def test_environment_overrides():
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://x@h/db", "REDIS_URL": "redis://h:1/2", "GRIDOPS_PREFIX": "wz:",
        "GRIDOPS_TZ": "Asia/Urumqi", "PORT": "9000", "GRIDOPS_SIMULATE": "0", "TILE_URL": "http://tiles/{z}/{x}/{y}.png",
    })
    assert (settings.database_url, settings.redis_url, settings.prefix, settings.port) == ("postgresql://x@h/db", "redis://h:1/2", "wz:", 9000)
    assert settings.tz_name == "Asia/Urumqi" and not settings.simulate and settings.tile_url


@pytest.mark.parametrize("env,message", [
    ({"PORT": "abc"}, "PORT='abc' is not a number"),
    ({"PORT": "70000"}, "between 1 and 65535"),
    ({"GRIDOPS_TZ": "Mars/Base"}, "not a time zone"),
    ({"GRIDOPS_SIMULATE": "maybe"}, "GRIDOPS_SIMULATE='maybe'"),
    ({"GRIDOPS_PREFIX": "a b"}, "GRIDOPS_PREFIX"),
    ({"GRIDOPS_MAX_WINDOW_DAYS": "1.5"}, "not a whole number"),
    ({"GRIDOPS_MAX_STREAMS": "0"}, "must be positive"),
    ({"GRIDOPS_STATEMENT_TIMEOUT_S": "-1"}, "must be positive"),
])
def test_bad_values_are_explained(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_allowed_origins_and_trusted_proxies():
    settings = Settings.from_env({"GRIDOPS_ALLOWED_ORIGINS": "https://GridOps.example.gov.cn:443/, http://10.0.0.5:8050", "GRIDOPS_TRUSTED_PROXIES": "1"})
    assert settings.allowed_origins == ("https://gridops.example.gov.cn", "http://10.0.0.5:8050") and settings.trusted_proxies == 1
    assert Settings.from_env({}).allowed_origins == () and Settings.from_env({}).trusted_proxies == 0
    for bad in ("gridops.example.gov.cn", "https://x.example/path", "ftp://x.example", "https://x.example:port", "https://u@x.example"):
        with pytest.raises(SettingsError, match="GRIDOPS_ALLOWED_ORIGINS"):
            Settings.from_env({"GRIDOPS_ALLOWED_ORIGINS": bad})
    with pytest.raises(SettingsError, match="GRIDOPS_TRUSTED_PROXIES"):
        Settings.from_env({"GRIDOPS_TRUSTED_PROXIES": "-1"})


def test_bounds_default_and_override():
    assert (Settings.from_env({}).max_window_days, Settings.from_env({}).statement_timeout_s, Settings.from_env({}).max_streams) == (366, 15.0, 8)
    settings = Settings.from_env({"GRIDOPS_MAX_WINDOW_DAYS": "92", "GRIDOPS_STATEMENT_TIMEOUT_S": "5", "GRIDOPS_MAX_STREAMS": "3"})
    assert (settings.max_window_days, settings.statement_timeout_s, settings.max_streams) == (92, 5.0, 3)


def test_auth_off_is_refused_unless_on_loopback():
    assert Settings.from_env({"GRIDOPS_AUTH": "off"}).auth is False
    with pytest.raises(SettingsError, match="loopback"):
        Settings.from_env({"GRIDOPS_AUTH": "off", "HOST": "0.0.0.0"})


def test_domain_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[calendar\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="bad.toml"):
        load_domain_config(bad, TZ)
    with pytest.raises(SettingsError, match="not found"):
        load_domain_config(tmp_path / "missing.toml", TZ)
    bad.write_text('[score.department]\nclosure_rate = 0\n[score.grid]\nclosure_rate = 1\n[score.worker]\nvalid_report_rate = 1\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="score.department"):
        load_domain_config(bad, TZ)
