"""The systems under test, behind one interface the workloads drive."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Protocol

SYSTEMS = ("raw", "invariant", "invariant-nocache", "eventsourcing")
TELEMETRY_SYSTEMS = ("invariant-notelemetry", "invariant-traced")
"""invariant with its telemetry hooks taken out (the baseline) and with tracing on; run by
``python -m benchmarks --telemetry`` beside ``invariant`` (tracing off, the default)."""
ALL_SYSTEMS = (*SYSTEMS, *TELEMETRY_SYSTEMS)
BACKENDS = ("sqlite", "postgres")


class Unavailable(Exception):
    """The system cannot run here (e.g. an adapter that does not exist yet): skip, not fail."""


class BenchSystem(Protocol):
    """One system on one backend. Every command is durable when its coroutine returns."""

    name: str
    backend: str

    async def setup(self, *, concurrency: int = 1) -> None:
        """Create tables and connections; ``concurrency`` is the number of senders to expect."""

    async def settings(self) -> dict[str, str]:
        """The durability settings the system's own connections actually run with."""

    async def open_account(self, account_id: uuid.UUID) -> int:
        """Open an account with the opening balance; returns retries needed (0 normally)."""

    async def deposit(self, account_id: uuid.UUID) -> int:
        """Load the account, record one deposit, commit; returns retries needed."""

    async def fill_account(self, account_id: uuid.UUID, deposits: int) -> int:
        """Open an account and make ``deposits`` deposits in one command (one commit):
        the batched commands that fill W5's store; returns retries needed."""

    async def load_balance(self, account_id: uuid.UUID, *, snapshot: bool = False) -> Decimal:
        """Load the account cold (no in-memory cache), from a snapshot if ``snapshot``."""

    async def build_stream(self, account_id: uuid.UUID, events: int) -> None:
        """Set up an account with ``events`` events (bulk path allowed) and a snapshot at the end.

        The snapshot must not be used by ``load_balance(snapshot=False)``."""

    async def teardown(self) -> None:
        """Close everything (the run's database is removed by the caller)."""


def make_system(name: str, backend: str, *, path: Path, dsn: str, schema: str) -> BenchSystem:
    """Build a system; ``path`` is the SQLite file, ``dsn``/``schema`` the PostgreSQL target."""
    if name == "raw":
        from benchmarks.systems.raw_sys import make_raw

        return make_raw(backend, path=path, dsn=dsn, schema=schema)
    if name in ("invariant", "invariant-nocache", *TELEMETRY_SYSTEMS):
        from benchmarks.systems.invariant_sys import InvariantSystem

        return InvariantSystem(
            backend, path=path, dsn=dsn, schema=schema, cache=name != "invariant-nocache",
            name=name, telemetry=name.removeprefix("invariant-") if name in TELEMETRY_SYSTEMS
            else "off")
    if name == "eventsourcing":
        from benchmarks.systems.eventsourcing_sys import EventSourcingSystem

        return EventSourcingSystem(backend, path=path, dsn=dsn, schema=schema)
    raise ValueError(f"unknown system {name!r}")
