"""Another service's published HTTP API, called through a
:class:`~invariant.resilience.ResilientCaller`: a service that cannot be reached, does not
answer in time or answers 5xx is an :class:`~invariant.domain.errors.UnavailableError`;
any other answer (4xx included) is returned as it is. A call that may not be repeated
(a POST) that was sent, or may have been, and got no answer (it timed out, or the
connection broke after it was sent) is an
:class:`~invariant.domain.errors.OutcomeUnknownError` instead: it may have been done, so
the caller must not be told to simply send it again.

One 5xx is an answer, not a failure: a ``503`` problem document (RFC 9457) is the service
saying, in its own words, that it cannot do this now (it is busy, or something *it* depends
on is down). It is returned as it is and does not count against the service's breaker:
otherwise one dependency down deep in a chain would open every breaker on the way back,
and callers could no longer reach the parts of the service that still work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from invariant.extras import needs_extra

with needs_extra("http"):
    import httpx2 as httpx

from invariant.domain.errors import ConfigurationError, OutcomeUnknownError, UnavailableError
from invariant.resilience import (
    BusyError,
    CallPolicy,
    CallTimeoutError,
    CircuitOpenError,
    DependencyFailedError,
)
from invariant.resilience.caller import ResilientCaller

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that may be sent again after a failed attempt (RFC 9110, 9.2.2)."""
KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle connection is kept for the next call: under the servers' own idle
timeout (uvicorn closes one after 5 s, as does Node), with a second for the answer to
reach the caller (the server's clock starts when it has sent it). Kept as long as the
server keeps it, a request sent as the server closes the connection breaks with no
answer: a POST then ends as an OutcomeUnknownError (a 504 at the gateway) though the
service was healthy. Shorter would reopen connections between calls a few seconds apart."""


class HttpService(Protocol):
    """Another service's HTTP API as callers use it: one instance
    (:class:`ServiceClient`) or several (:class:`~invariant.http.replicas.Replicas`)."""

    service: str

    async def request(self, method: str, path: str, *, content: bytes | None = None,
                      json: Any = None, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | Sequence[tuple[bytes, bytes]] | None = None,
                      idempotent: bool | None = None) -> httpx.Response:
        """Send the request; an UnavailableError when no instance answers."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


def checked_base_url(service: str, url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else a ConfigurationError naming
    ``service``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"the URL of {service} must be an absolute http:// or https:// URL such as "
            f"http://127.0.0.1:8001, got {url!r}")
    try:
        parts.port  # noqa: B018  (a port out of range raises here)
    except ValueError:
        raise ConfigurationError(f"the URL of {service} has an invalid port: {url!r}") from None
    return url.rstrip("/")


class ServiceClient:
    """Calls to ``service`` at ``base_url``; ``async with`` closes its connections."""

    def __init__(self, service: str, base_url: str, policy: CallPolicy | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.service = service
        self.base_url = checked_base_url(service, base_url)
        self.caller = ResilientCaller(service, policy)
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport,
                                       timeout=self.caller.policy.timeout,
                                       limits=_limits(self.caller.policy))

    async def request(self, method: str, path: str, *, content: bytes | None = None,
                      json: Any = None, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | Sequence[tuple[bytes, bytes]] | None = None,
                      idempotent: bool | None = None) -> httpx.Response:
        """Send the request; retried only when ``idempotent`` (default: by its method)."""
        method = method.upper()

        async def attempt() -> httpx.Response:
            return await self._send(method, path, content=content, json=json, params=params,
                                    headers=headers)

        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        try:
            return await self.caller.call(attempt, idempotent=repeatable)
        except UnavailableError as exc:
            if repeatable or not may_have_been_sent(exc):
                raise
            raise OutcomeUnknownError(self.service, f"{method} {path}", _why(exc)) from exc

    async def get_json(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` and its JSON body (any status below 500; check it if it matters)."""
        return (await self.request("GET", path, params=params)).json()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise CallTimeoutError(self.service, self.caller.policy.timeout,
                                   maybe_sent=not isinstance(exc, _NOTHING_SENT)) from None
        except httpx.TransportError as exc:
            sent = not isinstance(exc, _NOTHING_SENT)
            what = "the connection broke before its answer" if sent else "cannot be reached"
            raise DependencyFailedError(
                self.service, f"{self.base_url} {what} ({type(exc).__name__}: "
                              f"{exc or 'no detail'})", maybe_sent=sent) from exc
        if response.status_code >= 500 and not _declined(response):
            raise DependencyFailedError(
                self.service, f"it answered {response.status_code} to {method} {path}",
                retry_after=_retry_after(response), answered=True)
        return response

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _limits(policy: CallPolicy) -> httpx.Limits:
    # Every connection the caller may use at once is kept between calls: beyond httpx's
    # default 20 kept, each call above 20 in flight would open a connection and close it.
    return httpx.Limits(max_connections=policy.max_concurrent,
                        max_keepalive_connections=policy.max_concurrent,
                        keepalive_expiry=KEEPALIVE_EXPIRY)


_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: no connection, or none free in time."""


def may_have_been_sent(exc: UnavailableError) -> bool:
    """Whether the request may have reached the service before ``exc``: timeouts (the
    caller's own around the whole attempt cannot tell, so it may have) and broken
    connections say; a 5xx is an answer; a refusal by the breaker or the limit sent
    nothing."""
    return isinstance(exc, CallTimeoutError | DependencyFailedError) and exc.maybe_sent


def never_left(exc: UnavailableError) -> bool:
    """Whether ``exc`` came before the request left: no connection could be made, or the
    breaker or the concurrency limit refused the call (any call may go elsewhere)."""
    if isinstance(exc, CallTimeoutError):
        return not exc.maybe_sent
    if isinstance(exc, DependencyFailedError):
        return not (exc.maybe_sent or exc.answered)
    return isinstance(exc, BusyError | CircuitOpenError)


def _why(exc: UnavailableError) -> str:
    if isinstance(exc, CallTimeoutError):
        return f"none within {exc.timeout:g} s"
    assert isinstance(exc, DependencyFailedError)
    return exc.reason


def _declined(response: httpx.Response) -> bool:
    """The service answered that it cannot do this now (see the module docstring)."""
    return (response.status_code == 503 and response.headers.get("content-type", "")
            .split(";")[0].strip().lower() == "application/problem+json")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("retry-after", "1")), 0.0)
    except ValueError:  # an HTTP date: not worth parsing for a hint
        return 1.0
