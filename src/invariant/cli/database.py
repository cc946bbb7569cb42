"""Operator commands open an application's *existing* database, never a new one: before
the storage adapters open it (and would create a missing SQLite file, its folders or a
PostgreSQL schema), this checks that it is there and answers, and says in one line which
setting points where, and what to do, when it is not."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from invariant.config import Settings, redact
from invariant.domain.errors import ConfigurationError, StoreError
from invariant.extras import needs_extra

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for PostgreSQL to answer before saying it does not."""
NEVER_CREATED = "operator commands never create a database"


@dataclass(frozen=True)
class Names:
    """The settings (or flags) that point at the database, for the messages."""

    sqlite_path: str = "INVARIANT_SQLITE_PATH"
    postgres_dsn: str = "INVARIANT_POSTGRES_DSN"
    postgres_schema: str = "INVARIANT_POSTGRES_SCHEMA"


async def check_database(settings: Settings) -> None:
    """Raise a :class:`ConfigurationError` or :class:`StoreError` (one line, naming the
    setting) unless the database ``settings`` name exists and answers."""
    if settings.store == "sqlite":
        check_sqlite_file(settings.sqlite_path, Names.sqlite_path)
    elif settings.store == "postgres":
        assert settings.postgres_dsn is not None
        await check_postgres(settings.postgres_dsn, settings.postgres_schema)
    else:
        raise ConfigurationError(
            f"INVARIANT_STORE={settings.store} keeps nothing between processes, so there is "
            "nothing to operate: set INVARIANT_STORE to sqlite or postgres, as the "
            "application runs")


def check_sqlite_file(path: Path, setting: str) -> None:
    """Raise :class:`ConfigurationError` unless ``path`` is an SQLite database file."""
    where = f"{path} ({setting}{_looked_in(path)})"
    if not path.exists():
        raise ConfigurationError(
            f"no SQLite database at {where}: point {setting} at the application's database "
            f"file, or start the application once to create it; {NEVER_CREATED}")
    if not path.is_file():
        raise ConfigurationError(
            f"{where} is a {'directory' if path.is_dir() else 'special file'}, not an SQLite "
            f"database file: point {setting} at the application's database file")
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {where}: {exc.strerror or exc}; give this user read and write "
            f"access to it, or point {setting} elsewhere") from exc
    if header != SQLITE_HEADER:
        what = "is empty" if not header else "is not an SQLite database"
        raise ConfigurationError(
            f"{where} {what}: point {setting} at the application's database file")


def _looked_in(path: Path) -> str:
    return "" if path.is_absolute() else f", relative to {os.getcwd()}"


async def check_database_url(url: str, schema: str | None, *, create: bool = False) -> None:
    """The same checks for a ``--database`` URL (``sqlite:///path.db`` or
    ``postgresql://...``, with ``--schema``); ``create`` allows a new SQLite file in an
    existing folder."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"--database {redact(url)!r} is not a database URL ({exc}): use "
            "sqlite:///path.db or postgresql://user@host/db") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database:
        _check_sqlite_url(Path(parsed.database), create)
    elif backend == "postgresql":
        flags = Names(postgres_dsn="--database", postgres_schema="--schema")
        await check_postgres(url, schema, flags)
    elif backend != "sqlite":
        raise ConfigurationError(
            f"--database {parsed.render_as_string()!r} is not an SQLite or PostgreSQL URL: "
            "use sqlite:///path.db or postgresql://user@host/db")


def _check_sqlite_url(path: Path, create: bool) -> None:
    if not (create and not path.exists() and path.parent.is_dir()):
        check_sqlite_file(path, "--database")


async def check_postgres(dsn: str, schema: str | None, names: Names = Names()) -> None:
    """Raise :class:`ConfigurationError` or :class:`StoreError` unless PostgreSQL answers
    at ``dsn`` and its database holds ``schema`` (when given)."""
    with needs_extra("postgres"):
        import asyncpg

    try:
        server = _server(dsn)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise _malformed(names.postgres_dsn, str(exc)) from exc
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(dsn), timeout=CONNECT_TIMEOUT)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
        raise _connect_error(exc, server, names.postgres_dsn) from exc
    try:
        database = await conn.fetchval("SELECT current_database()")
        found = schema is None or await conn.fetchval(
            "SELECT true FROM pg_namespace WHERE nspname = $1", schema)
    finally:
        await conn.close()
    if not found:
        raise ConfigurationError(
            f"PostgreSQL database {database!r} at {server} has no schema {schema!r} "
            f"({names.postgres_schema}): set it to the application's schema; "
            f"{NEVER_CREATED}")


def _server(dsn: str) -> str:
    """``host:port`` of ``dsn``, for messages (never its user or password)."""
    return urlsplit(dsn).netloc.rpartition("@")[2] or "localhost"


def _asyncpg_dsn(dsn: str) -> str:
    """``dsn`` as asyncpg reads it (without SQLAlchemy's ``+asyncpg`` driver suffix)."""
    scheme, sep, rest = dsn.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def _malformed(setting: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"{setting} is not a PostgreSQL URL ({why}): expected "
        "postgresql://user[:password]@host[:port]/database")


def _connect_error(exc: BaseException, server: str, setting: str) -> Exception:
    """The one-line error for a failed connection to ``server``."""
    import asyncpg

    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return ConfigurationError(
            f"PostgreSQL at {server} says: {exc} ({setting}): correct the database name, or "
            f"create the database first; {NEVER_CREATED}")
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError
                  | asyncpg.InvalidPasswordError):
        return ConfigurationError(
            f"PostgreSQL at {server} refused the login: {exc} ({setting}): correct the user "
            "or password in it")
    if isinstance(exc, asyncpg.PostgresError):
        return StoreError(f"PostgreSQL at {server} refused the connection: {exc} ({setting})")
    if isinstance(exc, ValueError):  # asyncpg's ClientConfigurationError is one too
        return _malformed(setting, str(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return StoreError(
            f"PostgreSQL at {server} did not answer within {CONNECT_TIMEOUT:g} s ({setting}): "
            "check that the server runs and the host and port are right")
    reason = _reason(exc)
    return StoreError(
        f"cannot reach PostgreSQL at {server} ({setting}): {reason}; start the server, or "
        f"correct the host and port in {setting}")


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words ("Connection refused", "Name or service not
    known") rather than the event loop's "Connect call failed ('127.0.0.1', 1)"."""
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno > 0:
        return os.strerror(errno)
    return str(exc) or type(exc).__name__
