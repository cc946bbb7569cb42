"""Command middleware: each one wraps the rest of the chain (``await call_next(dispatch)``)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from invariant.application.bus import Dispatch, Next
from invariant.application.messages import CommandResult
from invariant.domain.errors import ConcurrencyError, ConfigurationError, DuplicateCommandError
from invariant.store.port import EventStorage
from invariant.telemetry.commands import TelemetryMiddleware


class ValidationMiddleware:
    """Refuses malformed commands (``command.validate()``) before anything is loaded."""

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        dispatch.command.validate()
        return await call_next(dispatch)


class IdempotencyMiddleware:
    """A command id is handled once: a repeat gets the first outcome and changes nothing.

    The outcome is recorded in the command's own transaction, so a crash can never leave a
    command applied but unrecorded (or recorded but not applied).
    """

    def __init__(self, storage: EventStorage) -> None:
        self._storage = storage

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        previous = await self._previous(dispatch)
        if previous is not None:
            return previous
        dispatch.record_outcome = True
        try:
            return await call_next(dispatch)
        except DuplicateCommandError:
            # The same command id committed concurrently; report that first outcome.
            previous = await self._previous(dispatch)
            if previous is None:
                raise
            return previous

    async def _previous(self, dispatch: Dispatch) -> CommandResult[Any] | None:
        stored = await self._storage.read_command(dispatch.command.command_id)
        if stored is None:
            return None
        kind = type(dispatch.command).__qualname__
        if stored.command_type != kind:
            raise ConfigurationError(
                f"command id {stored.command_id} was used by a {stored.command_type} and now "
                f"by a {kind}: every command needs its own id"
            )
        return CommandResult(stored.command_id, stored.value, stored.position,
                             dict(stored.versions), duplicate=True)


class SequenceMiddleware:
    """Handles commands that share a :meth:`~invariant.application.Command.sequence_key`
    one at a time, in the order they arrived, from before their load to after their
    commit (retries included); commands without one pass straight through.

    The order holds in this process: two processes handling commands of one key at once
    still race, and the loser's retry runs on fresh state as always."""

    def __init__(self) -> None:
        self._held: dict[str, asyncio.Lock] = {}

    @property
    def keys_held(self) -> int:
        """How many keys have a command running or waiting (none kept once idle)."""
        return len(self._held)

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        key = dispatch.command.sequence_key()
        if key is None:
            return await call_next(dispatch)
        lock = self._held.get(key)
        if lock is None:
            lock = self._held[key] = asyncio.Lock()
        try:
            async with lock:
                return await call_next(dispatch)
        finally:
            if not lock.locked() and self._held.get(key) is lock:
                del self._held[key]  # nobody holds or waits for it


class RetryMiddleware:
    """Re-runs a command from a fresh load when it lost a race (``ConcurrencyError``),
    at most ``attempts`` more times, with jittered exponential backoff."""

    def __init__(self, attempts: int = 3, base_delay: float = 0.002) -> None:
        if attempts < 0:
            raise ConfigurationError("retry attempts must be >= 0")
        self.attempts = attempts
        self.base_delay = base_delay

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        while True:
            try:
                return await call_next(dispatch)
            except ConcurrencyError:
                if dispatch.attempt >= self.attempts:
                    raise
                dispatch.attempt += 1
                await asyncio.sleep(random.uniform(0, self.base_delay * 2 ** dispatch.attempt))


class LoggingMiddleware:
    """Logs each command's type, id, outcome and duration (never its payload)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("invariant.commands")

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        kind = type(dispatch.command).__qualname__
        started = time.perf_counter()
        try:
            result = await call_next(dispatch)
        except Exception as exc:
            self._log.warning("%s %s failed after %.1f ms: %s", kind, dispatch.command.command_id,
                              (time.perf_counter() - started) * 1000, type(exc).__name__)
            raise
        self._log.info("%s %s handled in %.1f ms (position %d%s)", kind,
                       dispatch.command.command_id, (time.perf_counter() - started) * 1000,
                       result.position, ", duplicate" if result.duplicate else "")
        return result


SpanFactory = Callable[[str, dict[str, Any]], AbstractContextManager[Any]]


class TracingMiddleware:
    """Opens a span per command through any ``start_span(name, attributes)`` context manager,
    e.g. ``lambda name, attrs: tracer.start_as_current_span(name, attributes=attrs)`` for
    OpenTelemetry."""

    def __init__(self, start_span: SpanFactory) -> None:
        self._start_span = start_span

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        kind = type(dispatch.command).__qualname__
        attributes = {"invariant.command": kind,
                      "invariant.command_id": str(dispatch.command.command_id)}
        with self._start_span(f"command {kind}", attributes):
            return await call_next(dispatch)


def default_middleware(storage: EventStorage, *, retries: int = 3) -> list[Any]:
    """Telemetry, logging, validation, sequencing, idempotency and retry, in that order
    around the unit of work."""
    return [TelemetryMiddleware(), LoggingMiddleware(), ValidationMiddleware(),
            SequenceMiddleware(), IdempotencyMiddleware(storage), RetryMiddleware(retries)]
