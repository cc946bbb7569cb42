"""Why a call to another service did not get an answer: each is an
:class:`~invariant.domain.errors.UnavailableError` (HTTP 503 with ``Retry-After``)."""

from __future__ import annotations

from invariant.domain.errors import UnavailableError


class CircuitOpenError(UnavailableError):
    """The circuit to the service is open: its recent calls failed, so this one was refused
    at once instead of waiting for it to fail too."""

    def __init__(self, service: str, retry_after: float) -> None:
        self.service = service
        super().__init__(
            f"{service} is unavailable: its recent calls failed, so calls are refused for "
            f"{retry_after:.1f} s more (circuit open); retry after that",
            retry_after=retry_after)


class CallTimeoutError(UnavailableError):
    """The service did not answer within the call's timeout. ``maybe_sent``: whether the
    request may have reached it (False only when no connection was made in time)."""

    def __init__(self, service: str, timeout: float, *, maybe_sent: bool = True) -> None:
        self.service = service
        self.timeout = timeout
        self.maybe_sent = maybe_sent
        super().__init__(f"{service} did not answer within {timeout:g} s; retry later",
                         retry_after=timeout)


class BusyError(UnavailableError):
    """As many calls to the service as allowed were in flight: this one was refused at once
    rather than queued behind them."""

    def __init__(self, service: str, limit: int) -> None:
        self.service = service
        super().__init__(
            f"{service} is busy: {limit} calls to it are in flight, the most allowed; "
            "retry shortly", retry_after=1.0)


class DependencyFailedError(UnavailableError):
    """The service could not be reached, or answered that it failed (a 5xx: ``answered``).
    ``maybe_sent``: the request may have reached it and no answer came back (the
    connection broke after it was sent)."""

    def __init__(self, service: str, reason: str, *, retry_after: float = 1.0,
                 maybe_sent: bool = False, answered: bool = False) -> None:
        self.service = service
        self.maybe_sent = maybe_sent
        self.answered = answered
        self.reason = reason
        super().__init__(f"{service} is unavailable: {reason}; retry later",
                         retry_after=retry_after)
