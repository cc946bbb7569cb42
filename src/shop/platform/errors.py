"""HTTP-level refusals of shop (the domain's own errors come from invariant's tree).

They are HTTP exceptions: invariant's error handlers answer them as problem+json with their
status, title and headers (:func:`invariant.http.install_error_handlers`)."""

from __future__ import annotations

from starlette.exceptions import HTTPException


class NotAuthenticated(HTTPException):
    """401: no valid access token. The message says what was wrong with it."""

    def __init__(self, message: str) -> None:
        super().__init__(401, message, {"WWW-Authenticate": "Bearer"})

    def __str__(self) -> str:
        return str(self.detail)


class Forbidden(HTTPException):
    """403: the caller is known but may not do this."""

    def __init__(self, message: str) -> None:
        super().__init__(403, message)

    def __str__(self) -> str:
        return str(self.detail)


class TooManyRequests(HTTPException):
    """429: slow down; ``retry_after`` seconds until the next try may succeed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(429, message, {"Retry-After": str(max(1, round(retry_after)))})
        self.retry_after = retry_after

    def __str__(self) -> str:
        return str(self.detail)
