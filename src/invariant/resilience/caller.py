"""Calls to one dependency, bounded: a concurrency limit, the circuit breaker, a timeout per
attempt, and retries with jittered backoff for the calls that may be repeated.

Retrying is stamina's (on tenacity), given the bounds of the project's one
:class:`~invariant.retry.RetryPolicy`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from invariant.extras import needs_extra

with needs_extra("resilience"):
    import stamina

from invariant.domain.errors import UnavailableError
from invariant.resilience.breaker import BreakerState, CircuitBreaker
from invariant.resilience.errors import BusyError, CallTimeoutError, CircuitOpenError
from invariant.resilience.policy import CallPolicy

T = TypeVar("T")


class ResilientCaller:
    """Every call to ``service`` goes through :meth:`call`, which never waits much longer
    than the policy's timeout per attempt and fails with an
    :class:`~invariant.domain.errors.UnavailableError` when the service does not answer."""

    def __init__(self, service: str, policy: CallPolicy | None = None) -> None:
        self.service = service
        self.policy = policy or CallPolicy()
        self.breaker = CircuitBreaker(service, failures_to_open=self.policy.failures_to_open,
                                      open_for=self.policy.open_for)
        self._slots = asyncio.Semaphore(self.policy.max_concurrent)

    async def call(self, attempt: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """``attempt()`` until it answers: once, or (``idempotent``) up to the policy's
        attempts while it fails with an UnavailableError."""
        self.breaker.check()
        retry = self.policy.retry
        async for trying in stamina.retry_context(
                on=self._worth_retrying, attempts=retry.attempts if idempotent else 1,
                timeout=None, wait_initial=retry.first_delay, wait_max=retry.max_delay,
                wait_jitter=retry.jitter, wait_exp_base=retry.factor):
            with trying:
                return await self._once(attempt)
        raise AssertionError("unreachable: stamina re-raises the last failure")

    def _worth_retrying(self, exc: Exception) -> bool:
        """A failed attempt is retried while the circuit stays closed; a refusal by the
        breaker or the limit is not (retrying would only add load where there is too
        much), and neither is the failure that opened the circuit (it says why)."""
        return (isinstance(exc, UnavailableError)
                and not isinstance(exc, CircuitOpenError | BusyError)
                and self.breaker.state is BreakerState.CLOSED)

    async def _once(self, attempt: Callable[[], Awaitable[T]]) -> T:
        timeout = self.policy.timeout
        await self._take_slot()
        try:
            async with self.breaker.guard():
                try:
                    async with asyncio.timeout(timeout):
                        return await attempt()
                except TimeoutError:
                    raise CallTimeoutError(self.service, timeout) from None
        finally:
            self._slots.release()

    async def _take_slot(self) -> None:
        # Refused at once, not queued: a caller waiting for a slot would only add its
        # wait to the latency of a dependency that is already too slow.
        if self._slots.locked():
            raise BusyError(self.service, self.policy.max_concurrent)
        await self._slots.acquire()
