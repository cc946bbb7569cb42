"""Commit notifications from PostgreSQL: LISTEN on a dedicated connection.

The append functions end with ``pg_notify`` on the schema's channel; PostgreSQL delivers it
when the appending transaction commits (and folds repeats within one transaction). The
listening connection is not taken from the pool: a pooled connection is shared and reset,
and LISTEN is session state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from invariant.store.signal import CommitSignal


def notify_channel(schema: str) -> str:
    """The channel appends to ``schema`` notify (at most 63 bytes, PostgreSQL's limit)."""
    return f"invariant_events_{schema}"[:63]


class CommitListener:
    """Holds one LISTENing connection; reconnects on the next wait after it is lost.
    Every notification (and the loss of the connection) notifies :attr:`signal` and calls
    ``on_commit``."""

    def __init__(self, dsn: str, schema: str, timeout: float,
                 on_commit: Callable[[], object] | None = None) -> None:
        self._dsn = dsn
        self._channel = notify_channel(schema)
        self._timeout = timeout
        self._on_commit = on_commit
        self.signal = CommitSignal()
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        """Start listening if not already (errors leave us to the periodic re-check)."""
        if self._conn is not None and not self._conn.is_closed():
            return
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
            await conn.add_listener(self._channel, self._on_notify)
            conn.add_termination_listener(self._on_lost)
            self._conn = conn

    def _on_notify(self, *args: Any) -> None:
        self.signal.notify()
        if self._on_commit is not None:
            self._on_commit()

    def _on_lost(self, *args: Any) -> None:
        # Wake the waiters so they re-read the head and reconnect.
        self._conn = None
        self._on_notify()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=self._timeout)
