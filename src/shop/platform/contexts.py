"""shop's bounded contexts by name: each is a package ``shop.<context>`` whose ``wiring``
gives the platform its :class:`~invariant.hosting.Module`. The platform composes them (all
in one process, or one per service) without a context ever importing the platform's
runtime."""

from __future__ import annotations

import importlib

from invariant.domain.errors import ConfigurationError
from shop.platform.module import ModuleFactory

CONTEXTS = ("identity", "notifications", "catalog", "inventory", "ordering", "payments",
            "shipping", "fulfilment", "billing", "analytics")
"""Every bounded context of shop, in start-up order."""


def known(context: str) -> str:
    """``context`` if it is one of shop's; a ConfigurationError listing them if not."""
    if context not in CONTEXTS:
        raise ConfigurationError(f"unknown context {context!r}; one of: {', '.join(CONTEXTS)}")
    return context


def wiring(context: str) -> ModuleFactory:
    """The module factory of ``context`` (``shop.<context>.wiring.module``)."""
    factory: ModuleFactory = importlib.import_module(f"shop.{known(context)}.wiring").module
    return factory
