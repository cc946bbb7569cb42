"""Synchronous calls to other services, bounded so that a slow or dead service cannot hang
its callers: a timeout per attempt, retries with jittered backoff for idempotent calls only,
a circuit breaker (closed / open / half-open) and a concurrency limit.

Every failure is an :class:`~invariant.domain.errors.UnavailableError` carrying
``retry_after``; HTTP answers it with 503 and ``Retry-After``
(:mod:`invariant.http.errors`). :class:`invariant.http.ServiceClient` applies all of it to
an HTTP API.
"""

from invariant.resilience.breaker import BreakerState, CircuitBreaker
from invariant.resilience.caller import ResilientCaller
from invariant.resilience.errors import (
    BusyError,
    CallTimeoutError,
    CircuitOpenError,
    DependencyFailedError,
)
from invariant.resilience.policy import CallPolicy

__all__ = ["BreakerState", "BusyError", "CallPolicy", "CallTimeoutError", "CircuitBreaker",
           "CircuitOpenError", "DependencyFailedError", "ResilientCaller"]
