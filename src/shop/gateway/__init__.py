"""shop's gateway: the one public HTTP entry in front of the contexts' services
(``python -m shop gateway``). See :mod:`shop.gateway.app`."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from invariant.http import Replicas
from invariant.resilience import CallPolicy
from shop.config import ShopSettings
from shop.gateway.app import create_gateway
from shop.gateway.routes import PublishedApi
from shop.platform.auth import Tokens
from shop.platform.contexts import CONTEXTS
from shop.platform.registry import service_urls, setting

DEFAULT_POLICY = CallPolicy(timeout=10.0, failures_to_open=5, open_for=5.0,
                            max_concurrent=256)
"""Each service's bounds as the gateway calls it (an order is placed within seconds)."""


def gateway(settings: ShopSettings, env: Mapping[str, str],
            policy: CallPolicy = DEFAULT_POLICY) -> FastAPI:
    """The gateway for ``settings`` (its secret, body cap) and the services ``env`` names;
    a missing or malformed service URL is a ConfigurationError naming its setting."""
    api = PublishedApi.of_shop()
    urls = service_urls(env, api.contexts, CONTEXTS)
    resolved = settings.resolved()
    services = {context: Replicas(context, found, policy)
                for context, found in urls.items()}
    return create_gateway(api, services, Tokens(resolved.secret, resolved.token_ttl),
                          max_body=resolved.max_body)


__all__ = ["DEFAULT_POLICY", "PublishedApi", "create_gateway", "gateway", "setting"]
