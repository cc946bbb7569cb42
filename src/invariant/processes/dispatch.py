"""The processes' outbox: commands stored with a process's state, dispatched after commit.

At least once: a row is deleted only after the command bus handled it, so a crash in
between dispatches it again. Command ids are deterministic (see ``command_id_for``), so the
bus's :class:`~invariant.application.IdempotencyMiddleware` makes the repeat harmless.
A command that keeps failing is retried with backoff; when its budget runs out its process
is parked as ``needs-attention`` with the error, and the row stays until an operator
resumes the process.

The commands of one process are dispatched in the order they were decided, one after the
other; those of different processes side by side (up to ``concurrency`` processes at
once), so that their commits share the event store's group commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from invariant.application.bus import CommandBus
from invariant.application.messages import Command
from invariant.clock import Clock, utc_now
from invariant.domain.errors import ConfigurationError
from invariant.processes import persistence
from invariant.processes.manager import Sent
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.store.codec import Codec

_log = logging.getLogger("invariant.processes")


PROCESS_RETRY = RetryPolicy(first_delay=0.05, max_delay=5.0)
"""The default retry of a process's commands and a saga's steps and compensations."""


class CommandCodec:
    """Command types by name, encoded with the event store's explicit codec."""

    def __init__(self, commands: Iterable[type[Command[Any]]]) -> None:
        self._codec = Codec()
        self._types: dict[str, type[Command[Any]]] = {}
        for cls in commands:
            self._types[cls.__qualname__] = cls
            self._codec.for_class(cls)  # refuse unsupported fields at start-up

    def encode(self, command: Command[Any]) -> tuple[str, dict[str, Any]]:
        name = type(command).__qualname__
        if name not in self._types:
            raise ConfigurationError(
                f"{name} is not a registered process command; list it in commands= of the "
                "ProcessRunner"
            )
        return name, self._codec.encode(command)

    def decode(self, name: str, payload: dict[str, Any]) -> Command[Any]:
        cls = self._types.get(name)
        if cls is None:
            raise ConfigurationError(f"unknown process command type {name!r}")
        command: Command[Any] = self._codec.decode(cls, payload)
        return command


def store_sent(conn: Connection, codec: CommandCodec, process_id: str, sent: Iterable[Sent],
               now: datetime) -> None:
    """Insert the commands a process decided, in the caller's transaction."""
    for s in sent:
        name, payload = codec.encode(s.command)
        persistence.enqueue(conn, process_id, str(s.command.command_id), name, payload, now)


Forward = Callable[[persistence.PendingCommand], Awaitable[None]]
"""Sends a command no module of this host handles to the service that does (e.g. as a
message through the broker); raises when it could not be sent."""


class NoHandlerHere(ConfigurationError):
    """A process sent a command that no module of its host handles, and the host has no way
    to send it to another service."""


class CommandDispatcher:
    """Dispatches the outbox's commands to the command bus and deletes them when handled.

    ``local`` names the command types this host's bus handles (None: every type);
    any other is given to ``forward``, which sends it to the service that handles it."""

    def __init__(self, database: ReadModelDatabase, bus: CommandBus, codec: CommandCodec, *,
                 retry: RetryPolicy | None = None, clock: Clock = utc_now,
                 concurrency: int = 16, local: Collection[str] | None = None,
                 forward: Forward | None = None) -> None:
        self.database = database
        self.bus = bus
        self.codec = codec
        self.retry = retry or PROCESS_RETRY
        self.clock = clock
        self.concurrency = concurrency
        self.local = None if local is None else frozenset(local)
        self.forward = forward

    async def dispatch_pending(self, *, process_id: str | None = None) -> int:
        """Dispatch every pending command (of one process, if given); returns how many."""
        done = 0
        while True:
            rows = await self.database.run(
                lambda c: persistence.pending(c, process_id=process_id, parked=False), write=False)
            if not rows:
                return done
            by_process: dict[str, list[persistence.PendingCommand]] = {}
            for row in rows:
                by_process.setdefault(row.process_id, []).append(row)
            slots = asyncio.Semaphore(self.concurrency)
            done += sum(await asyncio.gather(*(self._dispatch_in_order(queue, slots)
                                               for queue in by_process.values())))

    async def _dispatch_in_order(self, rows: list[persistence.PendingCommand],
                                 slots: asyncio.Semaphore) -> int:
        done = 0
        async with slots:
            for row in rows:
                if not await self._dispatch(row):
                    break  # its process is parked now: the next read leaves it out
                done += 1
        return done

    async def _dispatch(self, row: persistence.PendingCommand) -> bool:
        attempt = 1
        while True:
            try:
                await self._send(row)
                break
            except Exception as exc:
                message = f"{row.command_type} {row.command_id} failed: {type(exc).__name__}: {exc}"
                if attempt >= self.retry.attempts:
                    _log.error("process %s parked: %s", row.process_id, message)
                    await self.database.run(_parking(row.process_id, message, self.clock()))
                    return False
                _log.warning("process %s: %s (attempt %d)", row.process_id, message, attempt)
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
        await self.database.execute(persistence.DISPATCHED, {"seq": row.seq})
        return True

    async def _send(self, row: persistence.PendingCommand) -> None:
        if self.local is None or row.command_type in self.local:
            command = self.codec.decode(row.command_type, row.payload)
            await self.bus.dispatch(command, metadata={"process_id": row.process_id})
        elif self.forward is not None:
            await self.forward(row)
        else:
            raise NoHandlerHere(
                f"no module of this host handles {row.command_type} and it has no broker to "
                "send it to the service that does; run that module here, or give the host a "
                "broker (INVARIANT_BROKER)")


def _parking(process_id: str, message: str, now: datetime) -> Callable[[Connection], None]:
    return lambda conn: _park(conn, process_id, message, now)


def _park(conn: Connection, process_id: str, message: str, now: datetime) -> None:
    record = persistence.read(conn, process_id, lock=True)
    if record is None or record.status == persistence.NEEDS_ATTENTION:
        return
    record.state["__parked_from__"] = record.status
    record.status = persistence.NEEDS_ATTENTION
    record.error = message
    persistence.write(conn, record, now)
