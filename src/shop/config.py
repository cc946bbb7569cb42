"""shop's settings, from ``SHOP_*`` environment variables (the event store, read models and
broker keep invariant's own ``INVARIANT_*`` settings).

==============================  ==========================================================
``SHOP_HOST``/``SHOP_PORT``     where the HTTP API listens (``127.0.0.1``/``8000``)
``SHOP_DATA``                   directory for the SQLite file, the dev secret and the mail
                                sink (``var/shop``); used when ``INVARIANT_STORE=sqlite``
                                and ``INVARIANT_SQLITE_PATH`` is not set
``SHOP_SECRET``                 signs access tokens and seals one-time codes; at least 32
                                characters. Unset: a random one is made once and kept in
                                ``SHOP_DATA/secret.key`` (development only)
``SHOP_ADMIN_EMAIL``            the admin account made at start-up (``admin@shop.local``)
``SHOP_ADMIN_PASSWORD``         its password; unset: a random one, made once in
                                ``SHOP_DATA/admin.password`` and printed at start-up
``SHOP_TOKEN_TTL``              access-token lifetime in seconds (3600)
``SHOP_SMTP_HOST``/``PORT``     the SMTP server emails go to (``127.0.0.1``/``8025``)
``SHOP_MAIL_SINK``              ``on`` (default): shop starts its own local SMTP sink on
                                that port; ``off``: send to a real server
``SHOP_PAYMENT_TIMEOUT``        seconds fulfilment waits for a payment answer (5)
``SHOP_RESERVATION_TIMEOUT``    seconds fulfilment waits for inventory (10)
``SHOP_PROVIDER_TIMEOUT``       seconds the payments ACL waits for the provider (1)
``SHOP_SAMPLE_CATALOG``         ``on`` (default): load the sample catalog when empty
``SHOP_MAX_BODY``               the largest request body accepted, in bytes (65536); a
                                larger one is refused with 413 before it is read
``SHOP_READY_MAX_LAG``          seconds a projection may lag before ``/ready`` says the
                                shop is not ready (30)
``SHOP_BACKLOG_LIMIT``          items of background work (outbox rows, events and commands
                                for fulfilment, deliveries, due jobs) over which requests
                                that bring work are held, then answered 503 with
                                ``Retry-After`` (100: about a second of shop's work on
                                one core; see docs/explanation/pipeline.md)
``SHOP_BACKLOG_WAIT``           seconds such a request is held for the backlog to come
                                back under the limit before it is refused (5; 0: refused
                                at once)
``SHOP_BACKLOG_OLDEST``         seconds the oldest item of background work may have
                                waited; past it, requests that bring work are held as
                                past the limit (0.5; 0: no such bound)
``SHOP_MAX_IN_FLIGHT``          requests handled at once; the others wait their turn (for
                                ``SHOP_BACKLOG_WAIT`` seconds, then 503): the background
                                workers get more of the event loop, so their latency
                                falls, and so does throughput (0, the default: no bound;
                                see docs/explanation/pipeline.md)
``SHOP_METRICS_TOKEN``          a bearer token that may scrape ``/metrics`` (and nothing
                                else), at least 32 characters, for Prometheus (admins'
                                access tokens expire); unset: admins only
``SHOP_ANALYTICS_REDIS_URL``    keep analytics' sales report in Redis at this URL
                                (``redis://host:6379/0``, ``rediss://``, ``unix://``);
                                unset (default): in the read-model database
``SHOP_ANALYTICS_REDIS_PREFIX`` the report's key prefix in Redis
                                (``shop:analytics:{report}:``)
``SHOP_SERVICE_<CONTEXT>_URL``  the gateway: where that context's service answers
==============================  ==========================================================
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.files import private_file

PREFIX = "SHOP_"
_SERVICE_URL = re.compile(r"^SHOP_SERVICE_[A-Z]+_URL$")
"""Where a context's service answers (read by the gateway, :mod:`shop.platform.registry`)."""
N = TypeVar("N", int, float)
_KNOWN = {"HOST", "PORT", "DATA", "SECRET", "ADMIN_EMAIL", "ADMIN_PASSWORD", "TOKEN_TTL",
          "SMTP_HOST", "SMTP_PORT", "SMTP_CONNECTIONS", "MAIL_SINK", "PAYMENT_TIMEOUT",
          "RESERVATION_TIMEOUT", "PROVIDER_TIMEOUT", "SAMPLE_CATALOG", "MAX_BODY",
          "READY_MAX_LAG", "BACKLOG_LIMIT", "BACKLOG_WAIT", "BACKLOG_OLDEST", "MAX_IN_FLIGHT",
          "METRICS_TOKEN", "ANALYTICS_REDIS_URL", "ANALYTICS_REDIS_PREFIX"}


@dataclass(frozen=True)
class ShopSettings:
    invariant: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 8000
    data: Path = Path("var/shop")
    secret: str = ""
    admin_email: str = "admin@shop.local"
    admin_password: str = ""
    admin_password_generated: bool = False
    token_ttl: float = 3600.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_connections: int = 16
    """How many SMTP connections notifications keeps open (emails beyond wait for one)."""
    mail_sink: bool = True
    payment_timeout: float = 5.0
    reservation_timeout: float = 10.0
    provider_timeout: float = 1.0
    sample_catalog: bool = True
    max_body: int = 64 * 1024
    ready_max_lag: float = 30.0
    backlog_limit: int = 100
    backlog_wait: float = 5.0
    backlog_oldest: float = 0.5
    """Seconds the oldest item of background work may wait before intake is held (0: no
    such bound, only ``backlog_limit``)."""
    max_in_flight: int = 0
    """Requests handled at once, the others waiting their turn (0: no bound)."""
    metrics_token: str = ""
    analytics_redis_url: str = ""
    """Where analytics keeps its report in Redis ("": in the read-model database)."""
    analytics_redis_prefix: str = "shop:analytics:{report}:"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ShopSettings:
        """Read ``SHOP_*`` and ``INVARIANT_*``; unknown ``SHOP_*`` keys are errors."""
        env = dict(os.environ if environ is None else environ)
        unknown = sorted(k for k in env if k.startswith(PREFIX)
                         and k[len(PREFIX):] not in _KNOWN and not _SERVICE_URL.match(k))
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; known: "
                + ", ".join(PREFIX + k for k in sorted(_KNOWN)))
        data = Path(env.get(f"{PREFIX}DATA", "var/shop"))
        if env.get("INVARIANT_STORE", "sqlite") == "sqlite":
            env.setdefault("INVARIANT_SQLITE_PATH", str(data / "shop.db"))
        settings = cls(
            invariant=Settings.from_env(env),
            host=env.get(f"{PREFIX}HOST", "127.0.0.1"),
            port=_number(env, "PORT", 8000, int, low=1, high=65535),
            data=data,
            secret=env.get(f"{PREFIX}SECRET", ""),
            admin_email=env.get(f"{PREFIX}ADMIN_EMAIL", "admin@shop.local"),
            admin_password=env.get(f"{PREFIX}ADMIN_PASSWORD", ""),
            token_ttl=_number(env, "TOKEN_TTL", 3600.0, float, low=1),
            smtp_host=env.get(f"{PREFIX}SMTP_HOST", "127.0.0.1"),
            smtp_port=_number(env, "SMTP_PORT", 8025, int, low=1, high=65535),
            smtp_connections=_number(env, "SMTP_CONNECTIONS", 16, int, low=1, high=1000),
            mail_sink=_switch(env, "MAIL_SINK", True),
            payment_timeout=_number(env, "PAYMENT_TIMEOUT", 5.0, float, low=0.01),
            reservation_timeout=_number(env, "RESERVATION_TIMEOUT", 10.0, float, low=0.01),
            provider_timeout=_number(env, "PROVIDER_TIMEOUT", 1.0, float, low=0.01),
            sample_catalog=_switch(env, "SAMPLE_CATALOG", True),
            max_body=_number(env, "MAX_BODY", 64 * 1024, int, low=1),
            ready_max_lag=_number(env, "READY_MAX_LAG", 30.0, float, low=0.1),
            backlog_limit=_number(env, "BACKLOG_LIMIT", 100, int, low=0),
            backlog_wait=_number(env, "BACKLOG_WAIT", 5.0, float, low=0),
            backlog_oldest=_number(env, "BACKLOG_OLDEST", 0.5, float, low=0),
            max_in_flight=_number(env, "MAX_IN_FLIGHT", 0, int, low=0),
            metrics_token=env.get(f"{PREFIX}METRICS_TOKEN", "").strip(),
            analytics_redis_url=_redis_url(env, "ANALYTICS_REDIS_URL"),
            analytics_redis_prefix=env.get(f"{PREFIX}ANALYTICS_REDIS_PREFIX",
                                           "shop:analytics:{report}:"),
        )
        if settings.secret and len(settings.secret) < 32:
            raise ConfigurationError(
                f"{PREFIX}SECRET must be at least 32 characters (got {len(settings.secret)}); "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        if settings.metrics_token and len(settings.metrics_token) < 32:
            raise ConfigurationError(
                f"{PREFIX}METRICS_TOKEN must be at least 32 characters (got "
                f"{len(settings.metrics_token)}); e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'")
        return settings

    def resolved(self) -> ShopSettings:
        """These settings with a secret and an admin password: the development secret is
        made once in ``data/secret.key``; a missing admin password is generated (files
        ``0600`` in a ``0700`` directory)."""
        settings = self
        if not settings.secret:
            key = settings.data / "secret.key"
            if not key.exists():
                private_file(key)
                key.write_text(secrets.token_urlsafe(48))
            settings = replace(settings, secret=key.read_text().strip())
        if not settings.admin_password:
            # Generated once, kept beside the secret: the password printed at every start
            # is the one the admin account was made with.
            stored = settings.data / "admin.password"
            if not stored.exists():
                private_file(stored)
                stored.write_text(secrets.token_urlsafe(12))
            settings = replace(settings, admin_password=stored.read_text().strip(),
                               admin_password_generated=True)
        return settings


def _number(env: Mapping[str, str], key: str, default: N, kind: type[N], *,
                              low: float | None = None, high: float | None = None) -> N:
    text = env.get(PREFIX + key)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(
            f"{PREFIX}{key} must be a {'whole ' if kind is int else ''}number, got {text!r}"
        ) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigurationError(f"{PREFIX}{key}={text} is out of range [{low}, {high}]")
    return value


def _switch(env: Mapping[str, str], key: str, default: bool) -> bool:
    text = env.get(PREFIX + key)
    if text is None:
        return default
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{PREFIX}{key} must be on or off, got {text!r}")


def _redis_url(env: Mapping[str, str], key: str) -> str:
    """A Redis URL (``redis://``, ``rediss://`` or ``unix://``), or "" when unset."""
    text = env.get(PREFIX + key, "").strip()
    if not text:
        return ""
    example = ("e.g. redis://127.0.0.1:6379/0, rediss://user:password@host:6380/0 or "
               "unix:///run/redis.sock")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a port that is not a number raises ValueError)
    except ValueError as exc:
        raise ConfigurationError(f"{PREFIX}{key} is not a valid Redis URL ({exc}): {example}"
                                 ) from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"{PREFIX}{key} must start with redis://, rediss:// or unix:// (got "
            f"{parts.scheme + '://' if '://' in text else 'no scheme'}): {example}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigurationError(f"{PREFIX}{key} names no host: {example}")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError(f"{PREFIX}{key} names no socket path: {example}")
    database = parts.path.lstrip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise ConfigurationError(
            f"{PREFIX}{key}: the database after the host must be a number, got "
            f"{database!r}: {example}")
    return text
