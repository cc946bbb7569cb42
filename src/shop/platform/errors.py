"""HTTP-level refusals of shop (the domain's own errors come from invariant's tree)."""

from __future__ import annotations


class NotAuthenticated(Exception):
    """401: no valid access token. The message says what was wrong with it."""


class Forbidden(Exception):
    """403: the caller is known but may not do this."""


class TooManyRequests(Exception):
    """429: slow down; ``retry_after`` seconds until the next try may succeed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
