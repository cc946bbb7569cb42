"""How a service calls another: one :class:`CallPolicy` per dependency."""

from __future__ import annotations

from dataclasses import dataclass, field

from invariant.domain.errors import ConfigurationError
from invariant.retry import RetryPolicy


def _default_retry() -> RetryPolicy:
    return RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.5, jitter=0.05)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """The bounds of every call to one dependency.

    * ``timeout``: seconds one attempt may take.
    * ``retry``: attempts and backoff (with jitter) for idempotent calls; any other call is
      tried once, as a repeat could do its work twice.
    * ``failures_to_open``: consecutive failed attempts that open the circuit.
    * ``open_for``: seconds an open circuit refuses calls before one probe is let through.
    * ``max_concurrent``: attempts in flight at once; one more is refused at once (busy).
    """

    timeout: float = 2.0
    retry: RetryPolicy = field(default_factory=_default_retry)
    failures_to_open: int = 5
    open_for: float = 5.0
    max_concurrent: int = 64

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.open_for <= 0:
            raise ConfigurationError(
                f"CallPolicy needs timeout > 0 and open_for > 0 (got timeout={self.timeout}, "
                f"open_for={self.open_for})")
        if self.failures_to_open < 1 or self.max_concurrent < 1:
            raise ConfigurationError(
                "CallPolicy needs failures_to_open >= 1 and max_concurrent >= 1 (got "
                f"failures_to_open={self.failures_to_open}, "
                f"max_concurrent={self.max_concurrent})")
