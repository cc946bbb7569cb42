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
from shop.platform.auth import AccountDirectory, SignIn
from shop.platform.context import ShopContext

ModuleFactory = Callable[[ShopContext], Module]

ACCOUNTS: Provision[AccountDirectory] = Provision("accounts")
"""The accounts access tokens are checked against (identity provides them; at most one
module does)."""

SIGN_IN: Provision[SignIn] = Provision("sign_in")
"""Email and password to an access token (identity provides it), for the console's log-in
form."""

__all__ = ["ACCOUNTS", "SIGN_IN", "Module", "ModuleFactory", "ShopContext"]
