"""What a bounded context gives the platform: one invariant
:class:`~invariant.hosting.Module` per context.

Each context package has ``module(shop: ShopContext) -> Module`` in its ``__init__``. The
factory runs before anything is started; handlers and routes close over ``shop`` and use
its parts (``shop.app``, ``shop.read_models``, ``shop.tokens``) when they run.
State-stored contexts keep their rows in ``shop.read_models`` (one synchronous
transaction each, safe beside the event store's writer on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable

from invariant.hosting import Module, Provision
from shop.platform.auth import AccountDirectory
from shop.platform.context import ShopContext

ModuleFactory = Callable[[ShopContext], Module]

ACCOUNTS: Provision[AccountDirectory] = Provision("accounts")
"""The accounts access tokens are checked against (identity provides them; at most one
module does)."""

__all__ = ["ACCOUNTS", "Module", "ModuleFactory", "ShopContext"]
