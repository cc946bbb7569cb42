"""What a bounded context's module is given to build its part: :class:`ShopContext`.

A context depends on this protocol, never on the runtime that composes it, so the same
context runs in the one-process shop or as a service. Its handlers and routes may use the
host's parts (``app``, ``read_models``, ``commands``, ``queries``) only once they run: the
factory itself runs before the host is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from invariant.application import CommandBus, QueryBus
    from invariant.clock import Clock
    from invariant.hosting import App
    from invariant.projections import ReadModelDatabase
    from shop.config import ShopSettings
    from shop.platform.auth import Tokens


class ShopContext(Protocol):
    """The shop as a context sees it: its settings, clock and tokens, and the host's parts
    once the shop is assembled."""

    @property
    def settings(self) -> ShopSettings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tokens(self) -> Tokens: ...

    @property
    def app(self) -> App:
        """The application core: event store, aggregates, buses, projections."""
        ...

    @property
    def read_models(self) -> ReadModelDatabase:
        """The database of read models and of state-stored contexts' rows."""
        ...

    @property
    def commands(self) -> CommandBus: ...

    @property
    def queries(self) -> QueryBus: ...
