"""Connections to PostgreSQL: the pool's set-up (jsonb in binary, no reset round trip),
which driver errors mean the connection failed, and the advisory lock key of a schema.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import asyncpg
import orjson

# Errors that mean "the driver or the connection failed", as opposed to a refused statement.
CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)
DRIVER_ERRORS = (*CONNECTION_ERRORS, asyncpg.PostgresError)

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""A connection of its own or one taken from the pool."""


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(value: bytes) -> Any:
    return orjson.loads(memoryview(value)[1:])


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to do.

    Pooled connections hold no session state (locks are transaction-scoped, nothing is
    LISTENed on them), so the default reset round trip on every release is skipped."""
    return None


async def init_connection(conn: asyncpg.Connection) -> None:
    """A new pooled connection exchanges jsonb in binary, encoded and decoded by orjson."""
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
        format="binary",
    )


def redact(dsn: str) -> str:
    """``dsn`` without its password (for error messages)."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", dsn)


def lock_key_for(schema: str) -> int:
    """The advisory lock key that orders appends against safe-head probes in ``schema``."""
    digest = hashlib.blake2b(f"invariant-events:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
