"""Settings from environment variables, all prefixed ``INVARIANT_``, read in one place.

=============================  ==========================================================
``INVARIANT_STORE``            ``sqlite`` (default), ``postgres`` or ``memory``
``INVARIANT_SQLITE_PATH``      SQLite file (default ``var/invariant.db``)
``INVARIANT_POSTGRES_DSN``     e.g. ``postgresql://user@127.0.0.1:5432/app``
``INVARIANT_POSTGRES_SCHEMA``  schema holding invariant's tables (default ``public``)
``INVARIANT_POSTGRES_POOL``    maximum connections (default 20)
``INVARIANT_APP``              ``package.module:attribute``: the application the ``invariant``
                               command operates (an :class:`~invariant.operable.Operable`:
                               its settings, projections, consumers and job handlers)
``INVARIANT_BROKER``           ``sql``, ``inprocess``, ``nats``, ``rabbitmq``, ``redis`` or
                               ``kafka``: the broker of the outbox relay and the consumers.
                               ``sql`` keeps messages durably in the application's own
                               database (no server); ``inprocess`` in memory only. Unset: the
                               application runs no relay (``open_broker`` then gives the
                               in-process broker)
``INVARIANT_BROKER_URL``       the broker's server, needed by every broker but
                               ``inprocess``: ``nats://host:4222``,
                               ``amqp://user:pass@host:5672/``, ``redis://host:6379/0``,
                               ``kafka://host:9092[,host:9092]``
``INVARIANT_BROKER_CHANNEL``   stream / exchange / stream key / topic (default ``invariant``)
``INVARIANT_JOBS``             where background jobs wait for workers: ``database``
                               (default: the ``invariant_jobs`` table, polled) or ``nats``
                               (forwarded to a NATS JetStream work queue)
``INVARIANT_JOBS_URL``         the NATS server of ``INVARIANT_JOBS=nats`` (default:
                               ``INVARIANT_BROKER_URL`` when ``INVARIANT_BROKER=nats``)
``INVARIANT_LOG_FORMAT``       ``text`` (default) or ``json``: one JSON line per log
                               record (read by :func:`invariant.telemetry.configure_logging`)
=============================  ==========================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from invariant.domain.errors import ConfigurationError

PREFIX = "INVARIANT_"
STORES = ("sqlite", "postgres", "memory")
BROKERS = ("sql", "inprocess", "nats", "rabbitmq", "redis", "kafka")
_SERVERLESS = ("sql", "inprocess")
NETWORK_BROKERS = tuple(b for b in BROKERS if b not in _SERVERLESS)
"""The brokers on a server of their own, which several processes (services) share."""
JOB_BACKENDS = ("database", "nats")
BROKER_SCHEMES: dict[str, tuple[str, ...]] = {
    "nats": ("nats", "tls"), "rabbitmq": ("amqp", "amqps"), "redis": ("redis", "rediss"),
    "kafka": ("kafka",),
}
"""The URL schemes each server broker accepts."""
BROKER_EXAMPLES = {
    "nats": "nats://127.0.0.1:4222", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "redis": "redis://127.0.0.1:6379/0", "kafka": "kafka://127.0.0.1:9092",
}
_CHANNEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "sqlite"
    sqlite_path: Path = Path("var/invariant.db")
    postgres_dsn: str | None = None
    postgres_schema: str = "public"
    postgres_pool: int = 20
    app: str | None = None
    """``INVARIANT_APP``: the application ``invariant``'s operator commands work on."""
    broker: str | None = None
    """``INVARIANT_BROKER``; None when unset (no relay inside the application)."""
    broker_url: str | None = None
    broker_channel: str = "invariant"
    jobs: str = "database"
    jobs_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: ``os.environ``); unknown keys are errors."""
        env = os.environ if environ is None else environ
        known = {"STORE", "SQLITE_PATH", "POSTGRES_DSN", "POSTGRES_SCHEMA", "POSTGRES_POOL",
                 "APP", "BROKER", "BROKER_URL", "BROKER_CHANNEL", "JOBS", "JOBS_URL",
                 "LOG_FORMAT"}
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k[len(PREFIX):] not in known
                         and not k.startswith(f"{PREFIX}TEST_") and not k.startswith(
                             f"{PREFIX}BENCH_"))
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; known: "
                + ", ".join(PREFIX + k for k in sorted(known))
            )
        store = env.get(f"{PREFIX}STORE", "sqlite").strip().lower()
        if store not in STORES:
            raise ConfigurationError(
                f"{PREFIX}STORE={store!r} is not one of {', '.join(STORES)}"
            )
        pool_text = env.get(f"{PREFIX}POSTGRES_POOL", "20")
        try:
            pool = int(pool_text)
        except ValueError:
            raise ConfigurationError(
                f"{PREFIX}POSTGRES_POOL must be a whole number, got {pool_text!r}"
            ) from None
        if pool < 1:
            raise ConfigurationError(f"{PREFIX}POSTGRES_POOL must be >= 1, got {pool}")
        dsn = env.get(f"{PREFIX}POSTGRES_DSN") or None
        if store == "postgres" and dsn is None:
            raise ConfigurationError(
                f"{PREFIX}STORE=postgres needs {PREFIX}POSTGRES_DSN, e.g. "
                "postgresql://postgres@127.0.0.1:5432/test"
            )
        broker = _setting(env, "BROKER").lower() or None
        broker_url = _setting(env, "BROKER_URL") or None
        channel = _setting(env, "BROKER_CHANNEL") or "invariant"
        jobs = _setting(env, "JOBS").lower() or "database"
        jobs_url = _setting(env, "JOBS_URL") or None
        settings = cls(
            store=store,
            sqlite_path=Path(env.get(f"{PREFIX}SQLITE_PATH", "var/invariant.db")),
            postgres_dsn=dsn,
            postgres_schema=env.get(f"{PREFIX}POSTGRES_SCHEMA", "public"),
            postgres_pool=pool,
            app=_setting(env, "APP") or None,
            broker=broker,
            broker_url=broker_url,
            broker_channel=channel,
            jobs=jobs,
            jobs_url=jobs_url,
        )
        check_broker(settings)
        check_jobs(settings)
        return settings


def _setting(env: Mapping[str, str], name: str) -> str:
    """``INVARIANT_<name>`` without surrounding blanks ('' when unset)."""
    return (env.get(f"{PREFIX}{name}") or "").strip()


def url_scheme(url: str) -> str:
    """The scheme of ``url`` (``nats`` of ``nats://host:4222``), lower case; '' if none."""
    scheme, found, _ = url.partition("://")
    return scheme.strip().lower() if found else ""


def broker_for_scheme(url: str) -> str | None:
    """The broker whose URLs look like ``url`` (None when no broker does)."""
    scheme = url_scheme(url)
    return next((b for b, schemes in BROKER_SCHEMES.items() if scheme in schemes), None)


def check_broker(settings: Settings) -> None:
    """Raise :class:`ConfigurationError`, saying what to set, when the broker settings do
    not fit together."""
    broker, url = settings.broker, settings.broker_url
    if broker is None:
        if url is not None:
            guess = broker_for_scheme(url)
            hint = f"set {PREFIX}BROKER={guess}" if guess else (
                f"set {PREFIX}BROKER to one of {', '.join(BROKERS)}")
            raise ConfigurationError(
                f"{PREFIX}BROKER_URL is set but {PREFIX}BROKER is not: {hint} (or unset "
                f"{PREFIX}BROKER_URL)")
    elif broker not in BROKERS:
        raise ConfigurationError(
            f"{PREFIX}BROKER={broker!r} is not one of {', '.join(BROKERS)}")
    elif broker in _SERVERLESS:
        if url is not None:
            where = ("the application's memory" if broker == "inprocess"
                     else "the application's own database")
            raise ConfigurationError(
                f"{PREFIX}BROKER={broker} lives in {where} and takes no "
                f"URL: unset {PREFIX}BROKER_URL, or set {PREFIX}BROKER to the server's broker "
                f"({', '.join(NETWORK_BROKERS)})")
    elif url is None:
        raise ConfigurationError(
            f"{PREFIX}BROKER={broker} needs {PREFIX}BROKER_URL, e.g. {BROKER_EXAMPLES[broker]}")
    else:
        _check_scheme("BROKER_URL", url, broker, broker)
    if not _CHANNEL.match(settings.broker_channel):
        raise ConfigurationError(
            f"{PREFIX}BROKER_CHANNEL={settings.broker_channel!r} must be 1 to 64 letters, "
            "digits, '-' or '_' (it names a stream, exchange or topic)")


def check_jobs(settings: Settings) -> None:
    """Raise :class:`ConfigurationError`, saying what to set, when the job settings do not
    fit together."""
    if settings.jobs not in JOB_BACKENDS:
        raise ConfigurationError(
            f"{PREFIX}JOBS={settings.jobs!r} is not one of {', '.join(JOB_BACKENDS)}")
    if settings.jobs == "database":
        if settings.jobs_url is not None:
            raise ConfigurationError(
                f"{PREFIX}JOBS_URL is set but jobs stay in the database: set "
                f"{PREFIX}JOBS=nats to use it, or unset {PREFIX}JOBS_URL")
        return
    url = jobs_url(settings)
    if url is None:
        raise ConfigurationError(
            f"{PREFIX}JOBS=nats needs a NATS server: set {PREFIX}JOBS_URL (e.g. "
            f"{BROKER_EXAMPLES['nats']}), or {PREFIX}BROKER=nats with {PREFIX}BROKER_URL")
    _check_scheme("JOBS_URL", url, "nats", "NATS")


def jobs_url(settings: Settings) -> str | None:
    """The NATS server of the job queue: ``INVARIANT_JOBS_URL``, else the broker's when the
    broker is NATS."""
    if settings.jobs_url is not None:
        return settings.jobs_url
    return settings.broker_url if settings.broker == "nats" else None


def _check_scheme(variable: str, url: str, broker: str, label: str) -> None:
    """Raise unless ``url`` (``INVARIANT_<variable>``) is one of ``broker``'s URLs."""
    if url_scheme(url) not in BROKER_SCHEMES[broker]:
        schemes = " or ".join(f"{s}://" for s in BROKER_SCHEMES[broker])
        raise ConfigurationError(
            f"{PREFIX}{variable}={redact(url)!r} is not a {label} URL: it must start with "
            f"{schemes}, e.g. {BROKER_EXAMPLES[broker]}")


def redact(url: str) -> str:
    """``url`` without its password (error messages end up in logs)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
