"""The routes the gateway publishes: exactly the single process's (same paths, methods and
OpenAPI document), each labelled with the context whose service answers it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from invariant.http.methods import allowed_methods
from shop.platform.http import create_app
from shop.platform.published_api import unstarted_shop

GATEWAY_PATHS = frozenset({"/health", "/ready"})
"""Answered by the gateway itself (from every service's)."""
STATUS_OWNER = "identity"
"""``/status`` (admins) goes to the context that knows who is an admin."""


@dataclass(frozen=True)
class PublishedRoute:
    """One route of the published API and the context that serves it."""

    route: APIRoute
    context: str
    secured: bool
    """It needs an access token (its OpenAPI operation has a security requirement)."""


@dataclass(frozen=True)
class PublishedApi:
    """The single process's OpenAPI document and its routes, in its matching order."""

    openapi: dict[str, Any]
    routes: tuple[PublishedRoute, ...]

    @property
    def contexts(self) -> list[str]:
        """The contexts a request can be routed to."""
        return sorted({r.context for r in self.routes})

    def find(self, scope: Scope) -> PublishedRoute | None:
        """The route answering ``scope``, matched as the single process matches it."""
        for published in self.routes:
            if published.route.matches(scope)[0] is Match.FULL:
                return published
        return None

    def allowed(self, scope: Scope) -> list[str]:
        """The methods the request's path answers (empty: no such path)."""
        return allowed_methods([r.route for r in self.routes], scope)

    @classmethod
    def of_shop(cls) -> PublishedApi:
        """shop's published API, read from its modules (nothing is started)."""
        from shop.platform.health_api import router as health

        with unstarted_shop() as shop:
            openapi = create_app(shop, manage=False).openapi()
            # The single process matches its health routes first, then each module's in
            # start-up order (its routers are included without a prefix).
            labelled = [(route, STATUS_OWNER) for route in health().routes]
            labelled += [(route, module.name) for module in shop.modules
                         if module.router is not None for route in module.router.routes]
        routes = tuple(PublishedRoute(route, context, _secured(openapi, route))
                       for route, context in labelled
                       if isinstance(route, APIRoute) and route.include_in_schema
                       and route.path not in GATEWAY_PATHS)
        return cls(openapi, routes)


def _secured(openapi: dict[str, Any], route: APIRoute) -> bool:
    operations = openapi["paths"].get(route.path_format, {})
    return any(operations.get(method.lower(), {}).get("security")
               for method in route.methods or ())
