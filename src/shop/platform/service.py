"""A context (or a few) as a service of its own: ``python -m shop serve CONTEXT``.

The service runs the context's module with every role (``SERVICE_ROLES``: also taking the
commands other services' process managers send it) on its own database schema, and talks
to the other contexts only through the broker and their services' HTTP APIs. What it asks
another context in process when every context runs together is answered by a stand-in
module that asks that context's service instead:

* catalog's ``GetProductForSale`` (ordering prices its lines): :mod:`shop.catalog.remote`;
* fulfilment's ``GetFulfilmentStatus`` (ordering shows it): :mod:`shop.fulfilment.remote`;
* identity's accounts (every service checks access tokens) and its log-in (for the
  service's operators' console): :mod:`shop.identity.remote`.

Each stand-in is built only where its context is not local, and needs that context's
``SHOP_SERVICE_<CONTEXT>_URL`` (the registry the gateway routes by).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from invariant.config import NETWORK_BROKERS
from invariant.domain.errors import ConfigurationError
from invariant.hosting import Module
from invariant.http import Replicas
from invariant.resilience import CallPolicy
from shop.platform.contexts import CONTEXTS, known, wiring
from shop.platform.module import ACCOUNTS, SIGN_IN, ModuleFactory
from shop.platform.registry import service_urls

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext

CALLS = CallPolicy(timeout=5.0, failures_to_open=5, open_for=5.0, max_concurrent=64)
"""How a service calls another: a lookup answers within seconds or the breaker opens."""


def contexts_of(spec: str) -> list[str]:
    """``ordering`` or ``billing,analytics``: the contexts one service runs."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise ConfigurationError(f"name a context to serve, one of: {', '.join(CONTEXTS)}")
    for name in names:
        known(name)
    if len(set(names)) != len(names):
        raise ConfigurationError(f"a context is named twice in {spec!r}")
    return names


def service_modules(contexts: Sequence[str], env: Mapping[str, str],
                    policy: CallPolicy = CALLS) -> list[ModuleFactory]:
    """The modules of a service running ``contexts``: theirs, and the stand-ins for what
    they ask of contexts that run elsewhere (a missing or malformed service URL is a
    ConfigurationError naming its setting)."""
    local = set(contexts)
    needed = [] if "identity" in local else ["identity"]
    if "ordering" in local:
        needed += [c for c in ("catalog", "fulfilment") if c not in local]
    urls = service_urls(env, needed, CONTEXTS)
    factories = [wiring(context) for context in contexts]
    for context in needed:
        factories.append(_STAND_INS[context](urls[context], policy))
    return factories


def require_network_broker(broker: str | None) -> None:
    """A service hears and tells the others through a broker all of them reach."""
    if broker not in NETWORK_BROKERS:
        raise ConfigurationError(
            f"INVARIANT_BROKER={broker or 'sql'} does not reach other processes' databases; "
            f"a service needs a broker every service shares: set INVARIANT_BROKER to one of "
            f"{', '.join(NETWORK_BROKERS)} and INVARIANT_BROKER_URL")


def _catalog(urls: list[str], policy: CallPolicy) -> ModuleFactory:
    from shop.catalog.messages import GetProductForSale
    from shop.catalog.remote import RemoteProductsForSale

    def module(shop: ShopContext) -> Module:
        client = Replicas("catalog", urls, policy)
        return Module(name="catalog-service",
                      queries={GetProductForSale: RemoteProductsForSale(client).for_sale},
                      lifespan=_closing(client))
    return module


def _fulfilment(urls: list[str], policy: CallPolicy) -> ModuleFactory:
    from shop.fulfilment.remote import RemoteFulfilment
    from shop.ordering.messages import GetFulfilmentStatus

    def module(shop: ShopContext) -> Module:
        client = Replicas("fulfilment", urls, policy)
        remote = RemoteFulfilment(client, shop.settings.secret)
        return Module(name="fulfilment-service", queries={GetFulfilmentStatus: remote.status},
                      lifespan=_closing(client))
    return module


def _identity(urls: list[str], policy: CallPolicy) -> ModuleFactory:
    from shop.identity.remote import RemoteAccounts, RemoteSignIn

    def module(shop: ShopContext) -> Module:
        client = Replicas("identity", urls, policy)
        return Module(name="identity-service",
                      provides={ACCOUNTS: RemoteAccounts(client, shop.settings.secret),
                                SIGN_IN: RemoteSignIn(client)},
                      lifespan=_closing(client))
    return module


def _closing(client: Replicas) -> Callable[[Host], Any]:
    @asynccontextmanager
    async def lifespan(host: Host) -> AsyncIterator[None]:
        async with client:
            yield
    return lifespan


_STAND_INS: dict[str, Callable[[list[str], CallPolicy], ModuleFactory]] = {
    "catalog": _catalog, "fulfilment": _fulfilment, "identity": _identity}
