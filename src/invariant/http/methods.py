"""The methods a path supports, for the ``Allow`` header of a 405.

Starlette's router answers a method a path does not support with the methods of the first
route whose path matches (``PUT /orders`` gets ``Allow: POST`` though ``GET /orders`` is a
route too); :func:`allowed_methods` asks every route of the application instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
"""The methods a 405 may name: those of RFC 9110 a resource may serve, and PATCH."""


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route answers fully at the request's path, in alphabetical order.

    Each route is asked with each method (``BaseRoute.matches``) rather than read for a
    ``methods`` attribute: routers included in others (FastAPI's) answer for theirs."""
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL
                   for route in routes)]
