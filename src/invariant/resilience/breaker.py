"""A circuit breaker per dependency: closed (calls pass), open (calls are refused at once),
half-open (one probe call decides).

The state machine is purgatory's (a maintained asyncio circuit breaker). It lets every call
through while half-open; this wrapper lets exactly one probe through, so that a dependency
that is still down costs one timed-out call per ``open_for``, not one per caller.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from invariant.extras import needs_extra

with needs_extra("resilience"):
    from purgatory import AsyncCircuitBreakerFactory, Event
    from purgatory.domain.model import OpenedState

from invariant.domain.errors import UnavailableError
from invariant.resilience.errors import CircuitOpenError


class BreakerState(StrEnum):
    """Where a circuit is: closed (calls pass), open (refused), half-open (one probe)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_STATES = {"closed": BreakerState.CLOSED, "opened": BreakerState.OPEN,
           "half-opened": BreakerState.HALF_OPEN}


class CircuitBreaker:
    """Counts consecutive failed calls (:class:`UnavailableError`) to ``service``; after
    ``failures_to_open`` of them refuses calls for ``open_for`` seconds with
    :class:`CircuitOpenError`, then lets one probe through: success closes the circuit,
    failure opens it again. Any other outcome (an answer, even a refusal) is a success."""

    def __init__(self, service: str, *, failures_to_open: int, open_for: float) -> None:
        self.service = service
        self.open_for = open_for
        self._factory = AsyncCircuitBreakerFactory(default_threshold=failures_to_open,
                                                   default_ttl=open_for)
        self._factory.add_listener(self._on_event)
        self._probing = False
        self.history: deque[BreakerState] = deque([BreakerState.CLOSED], maxlen=64)
        """The states the circuit went through, oldest first (the last 64)."""

    @property
    def state(self) -> BreakerState:
        """The state now (an open circuit whose ``open_for`` passed reads half-open)."""
        if self.history[-1] is BreakerState.OPEN and self._retry_after() <= 0:
            return BreakerState.HALF_OPEN
        return self.history[-1]

    def check(self) -> None:
        """Raise :class:`CircuitOpenError` if a call now would be refused."""
        if self._probing or (self.history[-1] is BreakerState.OPEN
                             and self._retry_after() > 0):
            raise CircuitOpenError(self.service, max(self._retry_after(), 0.1))

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Run one call inside the circuit: refused at once while open (or while another
        call probes), its failure or success counted."""
        self.check()
        # Claimed before the first await, so that two callers never both probe.
        probe = self.history[-1] is not BreakerState.CLOSED
        self._probing = probe
        try:
            breaker = await self._factory.get_breaker(self.service)
            try:
                await breaker.__aenter__()
            except OpenedState:
                raise CircuitOpenError(self.service, max(self._retry_after(), 0.1)) from None
            try:
                yield
            except UnavailableError as exc:
                await breaker.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            except Exception:
                await breaker.__aexit__(None, None, None)
                raise
            else:
                await breaker.__aexit__(None, None, None)
            # A cancelled call says nothing about the service: the state is left as it was.
        finally:
            if probe:
                self._probing = False

    def _retry_after(self) -> float:
        opened_at = self._opened_at
        return 0.0 if opened_at is None else opened_at + self.open_for - time.time()

    _opened_at: float | None = None

    def _on_event(self, name: str, kind: str, event: Event) -> None:
        if kind != "state_changed":
            return
        state = _STATES[getattr(event, "state", "closed")]
        self._opened_at = getattr(event, "opened_at", None) if state is BreakerState.OPEN \
            else self._opened_at
        self.history.append(state)
