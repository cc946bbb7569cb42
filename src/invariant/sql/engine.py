"""Async SQLAlchemy engines configured the way invariant needs them.

SQLite: WAL, ``synchronous=FULL``, a busy timeout, and transactions begun by us (the
driver's own implicit BEGIN is switched off) so that DDL is transactional and a writer can
take the write lock up front (``BEGIN IMMEDIATE``). PostgreSQL: asyncpg, optionally with a
``search_path`` so that unqualified table names live in one schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from invariant.domain.errors import ConfigurationError
from invariant.extras import needs_extra

SQLITE_BEGIN = "invariant_sqlite_begin"
"""Execution option: ``"IMMEDIATE"`` makes a SQLite transaction take the write lock at once."""

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> str:
    """``sqlite:///x.db`` and ``postgresql://...`` with their async drivers."""
    parsed = make_url(url)
    name = parsed.drivername
    if name in _DRIVERS:
        return parsed.set(drivername=_DRIVERS[name]).render_as_string(hide_password=False)
    if name in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        return url
    raise ConfigurationError(
        f"unsupported database URL scheme {name!r}: use sqlite:///path.db or "
        "postgresql://user@host/db"
    )


def create_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (SQLite or PostgreSQL), configured for invariant.

    ``schema`` (PostgreSQL only) becomes the connections' ``search_path``.
    """
    full = async_url(url)
    if full.startswith("sqlite"):
        if schema is not None:
            raise ConfigurationError("schema= applies to PostgreSQL only; SQLite has none")
        engine = create_async_engine(full, **kwargs)
        _configure_sqlite(engine)
        return engine
    if schema is not None:
        settings = kwargs.setdefault("connect_args", {}).setdefault("server_settings", {})
        settings["search_path"] = schema
    with needs_extra("postgres"):
        return create_async_engine(full, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000",
                       "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
