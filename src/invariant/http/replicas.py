"""A service that runs as several instances, called as one: each call goes to the next
instance in turn (round robin) whose circuit would take it; an instance whose circuit is
open is passed over until its probe is due. A call that finds its instance unavailable
is tried on the next one, each at most once, when it may be repeated (GET, PUT, DELETE)
or never left (no connection could be made): a POST an instance may have received is
never sent to another (its OutcomeUnknownError, or the failure it answered, stands).
When every circuit is open the call fails at once, as one instance's would.

Each instance keeps its own :class:`~invariant.http.ServiceClient` (its connections, its
breaker, its concurrency limit), so one instance down does not slow the calls to the
others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from invariant.domain.errors import ConfigurationError, UnavailableError
from invariant.http.client import IDEMPOTENT_METHODS, ServiceClient, never_left
from invariant.resilience import CallPolicy, CircuitOpenError

if TYPE_CHECKING:
    import httpx2 as httpx


class Replicas:
    """Calls to ``service`` at any of ``base_urls``; ``async with`` closes them all."""

    def __init__(self, service: str, base_urls: Sequence[str],
                 policy: CallPolicy | None = None) -> None:
        if not base_urls:
            raise ConfigurationError(f"no URL for {service}: give at least one instance")
        self.service = service
        self.instances = [ServiceClient(service, url, policy) for url in base_urls]
        self._turn = 0

    async def request(self, method: str, path: str, *, content: bytes | None = None,
                      json: Any = None, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | Sequence[tuple[bytes, bytes]] | None = None,
                      idempotent: bool | None = None) -> httpx.Response:
        """Send the request to the next instance that takes it (see the module docstring)."""
        repeatable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        last: UnavailableError | None = None
        for instance in self._in_turn():
            try:
                instance.caller.breaker.check()
            except CircuitOpenError as exc:
                last = last or exc
                continue
            try:
                return await instance.request(method, path, content=content, json=json,
                                              params=params, headers=headers,
                                              idempotent=idempotent)
            except UnavailableError as exc:
                if not repeatable and not never_left(exc):
                    raise
                last = exc
        assert last is not None
        raise last

    def _in_turn(self) -> list[ServiceClient]:
        """Every instance once, starting with the one whose turn it is."""
        n = len(self.instances)
        start, self._turn = self._turn, (self._turn + 1) % n
        return [self.instances[(start + i) % n] for i in range(n)]

    async def aclose(self) -> None:
        for instance in self.instances:
            await instance.aclose()

    async def __aenter__(self) -> Replicas:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

