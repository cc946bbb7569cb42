"""shop's settings: defaults, clear errors, and the development secret and admin password
made once and kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from invariant.domain import ConfigurationError
from shop.config import ShopSettings


def test_defaults_put_everything_under_var_shop(tmp_path: Path) -> None:
    settings = ShopSettings.from_env({"SHOP_DATA": str(tmp_path)})
    assert (settings.host, settings.port, settings.mail_sink) == ("127.0.0.1", 8000, True)
    assert settings.invariant.store == "sqlite"
    assert settings.invariant.sqlite_path == tmp_path / "shop.db"
    assert settings.smtp_connections == 16
    assert ShopSettings.from_env({"SHOP_SMTP_CONNECTIONS": "4"}).smtp_connections == 4
    assert (settings.backlog_limit, settings.backlog_oldest) == (100, 0.5)
    assert ShopSettings.from_env({"SHOP_BACKLOG_OLDEST": "0"}).backlog_oldest == 0.0
    assert settings.max_in_flight == 0  # no bound unless asked for
    assert ShopSettings.from_env({"SHOP_MAX_IN_FLIGHT": "4"}).max_in_flight == 4


@pytest.mark.parametrize(("env", "message"), [
    ({"SHOP_PORT": "eighty"}, "SHOP_PORT must be a whole number, got 'eighty'"),
    ({"SHOP_PORT": "70000"}, "SHOP_PORT=70000 is out of range"),
    ({"SHOP_MAIL_SINK": "maybe"}, "SHOP_MAIL_SINK must be on or off, got 'maybe'"),
    ({"SHOP_SECRET": "short"}, "SHOP_SECRET must be at least 32 characters"),
    ({"SHOP_COLOUR": "blue"}, "unknown setting(s) SHOP_COLOUR"),
    ({"SHOP_MAX_BODY": "64k"}, "SHOP_MAX_BODY must be a whole number, got '64k'"),
    ({"SHOP_MAX_BODY": "0"}, "SHOP_MAX_BODY=0 is out of range"),
    ({"SHOP_BACKLOG_WAIT": "-1"}, "SHOP_BACKLOG_WAIT=-1 is out of range"),
    ({"SHOP_BACKLOG_WAIT": "soon"}, "SHOP_BACKLOG_WAIT must be a number, got 'soon'"),
    ({"SHOP_BACKLOG_OLDEST": "-0.5"}, "SHOP_BACKLOG_OLDEST=-0.5 is out of range"),
    ({"SHOP_SMTP_CONNECTIONS": "0"}, "SHOP_SMTP_CONNECTIONS=0 is out of range"),
    ({"SHOP_MAX_IN_FLIGHT": "-1"}, "SHOP_MAX_IN_FLIGHT=-1 is out of range"),
    ({"SHOP_MAX_IN_FLIGHT": "a few"}, "SHOP_MAX_IN_FLIGHT must be a whole number"),
    ({"SHOP_SMTP_CONNECTIONS": "many"}, "SHOP_SMTP_CONNECTIONS must be a whole number"),
    ({"INVARIANT_STORE": "postgres"}, "INVARIANT_STORE=postgres needs INVARIANT_POSTGRES_DSN"),
    ({"SHOP_ANALYTICS_REDIS_URL": "localhost:6379"},
     "SHOP_ANALYTICS_REDIS_URL must start with redis://, rediss:// or unix:// (got no scheme)"),
    ({"SHOP_ANALYTICS_REDIS_URL": "http://127.0.0.1:6379"},
     "SHOP_ANALYTICS_REDIS_URL must start with redis://, rediss:// or unix:// (got http://)"),
    ({"SHOP_ANALYTICS_REDIS_URL": "redis://127.0.0.1:port/0"},
     "SHOP_ANALYTICS_REDIS_URL is not a valid Redis URL"),
    ({"SHOP_ANALYTICS_REDIS_URL": "redis:///0"}, "SHOP_ANALYTICS_REDIS_URL names no host"),
    ({"SHOP_ANALYTICS_REDIS_URL": "redis://127.0.0.1:6379/analytics"},
     "SHOP_ANALYTICS_REDIS_URL: the database after the host must be a number"),
])
def test_bad_settings_say_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ShopSettings.from_env(env)
    assert message in str(raised.value)


def test_analytics_keeps_its_report_in_sql_unless_a_redis_url_is_given() -> None:
    assert ShopSettings.from_env({}).analytics_redis_url == ""
    settings = ShopSettings.from_env({"SHOP_ANALYTICS_REDIS_URL": "redis://cache:6379/2",
                                      "SHOP_ANALYTICS_REDIS_PREFIX": "eu:analytics:"})
    assert (settings.analytics_redis_url, settings.analytics_redis_prefix) == (
        "redis://cache:6379/2", "eu:analytics:")


def test_a_bad_redis_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ShopSettings.from_env({"SHOP_ANALYTICS_REDIS_URL": "redis://u:hunter2@h:x/0"})
    assert "hunter2" not in str(raised.value)


def test_the_development_secret_and_admin_password_are_made_once(tmp_path: Path) -> None:
    first = ShopSettings.from_env({"SHOP_DATA": str(tmp_path)}).resolved()
    again = ShopSettings.from_env({"SHOP_DATA": str(tmp_path)}).resolved()
    assert len(first.secret) >= 32 and first.admin_password_generated
    assert (again.secret, again.admin_password) == (first.secret, first.admin_password)
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0  # readable by its owner only
    chosen = ShopSettings.from_env({"SHOP_DATA": str(tmp_path),
                                    "SHOP_ADMIN_PASSWORD": "chosen-password"}).resolved()
    assert chosen.admin_password == "chosen-password" and not chosen.admin_password_generated
