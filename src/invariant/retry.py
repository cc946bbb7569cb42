"""The one retry policy: how often something is tried, and how long apart.

Used by consumers, background jobs, the processes' command dispatch and sagas, and the
projection runner; each passes its own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.domain.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all; after failed try ``n`` (1-based) wait
    ``first_delay * factor ** (n - 1)`` seconds, at most ``max_delay``.

    ``jitter``: up to that many seconds added at random to each wait, so that many callers
    failing together do not retry in step (used by :mod:`invariant.resilience`)."""

    attempts: int = 5
    first_delay: float = 0.1
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"RetryPolicy needs attempts >= 1 (got {self.attempts})")
        if self.first_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ConfigurationError(
                f"RetryPolicy delays must not be negative (first_delay={self.first_delay}, "
                f"max_delay={self.max_delay}, jitter={self.jitter})")
        if self.factor < 1:
            raise ConfigurationError(
                f"RetryPolicy needs factor >= 1, so that waits never shrink (got {self.factor})")

    def delay(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.first_delay * self.factor ** max(0, attempt - 1)))
