"""Calls between shop's services that no client may make: a route for services only
checks the ``X-Shop-Service`` header, a credential every service derives from the shared
``SHOP_SECRET`` (the gateway does not route these paths; this keeps a caller inside the
network out too)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from shop.platform.errors import NotAuthenticated

HEADER = "X-Shop-Service"


def credential(secret: str) -> str:
    """What a service sends in :data:`HEADER` (the same for every service of a shop)."""
    return hmac.new(secret.encode(), b"shop: a call between services",
                    hashlib.sha256).hexdigest()


def require_service(request: Request, secret: str) -> None:
    """401 unless the request carries the services' credential."""
    given = request.headers.get(HEADER, "")
    if not hmac.compare_digest(given.encode(), credential(secret).encode()):
        raise NotAuthenticated(f"only shop's services may call this ({HEADER} is missing or "
                               "wrong)")
