"""Which application an operator command works on, and the session it works in.

The application is named by ``--app package.module:attribute`` or, without the flag, by
``INVARIANT_APP``: an :class:`~invariant.operable.Operable` giving its settings (so the
command finds its database, e.g. shop's ``var/shop/shop.db``) and its parts. Without
either, the command works on the database the ``INVARIANT_*`` settings name, and the
commands that need the application's parts (projections, consumers, job handlers) say
what to set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import typer

from invariant.bootstrap import open_read_models, open_storage
from invariant.cli.database import check_database
from invariant.cli.running import import_attribute
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.operable import Operable, Parts
from invariant.projections import ReadModelDatabase

T = TypeVar("T")
APP_OPTION = "--app"
HOW_TO_NAME = (f"set INVARIANT_APP=package.module:attribute (or pass {APP_OPTION}), the "
               "object describing the application (e.g. shop.operations:app; see "
               "invariant.operable)")


@dataclass(frozen=True)
class Target:
    """The application a command operates: its settings, and the object describing it
    (None when neither ``--app`` nor ``INVARIANT_APP`` names one)."""

    settings: Settings
    app: Operable | None = None
    named: str = "the INVARIANT_* settings"
    """How the command was told, for messages: ``INVARIANT_APP=shop.operations:app``."""

    def operable(self, needs: str) -> Operable:
        """The application, or a :class:`ConfigurationError` saying ``needs`` it."""
        if self.app is None:
            raise ConfigurationError(f"{needs} come from the application: {HOW_TO_NAME}")
        return self.app


def current_target(ctx: typer.Context) -> Target:
    """The application of this command line (``--app`` wins over ``INVARIANT_APP``)."""
    flag = ctx.find_root().params.get("application")
    if flag:
        return _load(flag, APP_OPTION, f"{APP_OPTION} {flag}")
    settings = Settings.from_env()
    if settings.app is None:
        return Target(settings)
    return _load(settings.app, "INVARIANT_APP", f"INVARIANT_APP={settings.app}")


def _load(spec: str, option: str, named: str) -> Target:
    found = import_attribute(spec, option, "attribute")
    if isinstance(found, type) or not isinstance(found, Operable):
        kind = "class (name an instance of it)" if isinstance(found, type) else (
            type(found).__name__)
        raise ConfigurationError(
            f"{named} is a {kind}, not an application: it needs settings() and "
            "parts(storage, database) methods (see invariant.operable)")
    return Target(found.settings(), found, named)


class Session:
    """What one command works with: the application's database (checked to exist before
    it was opened) and, on demand, its event storage and parts."""

    def __init__(self, target: Target, database: ReadModelDatabase,
                 stack: contextlib.AsyncExitStack) -> None:
        self.target = target
        self.database = database
        self._stack = stack
        self._parts: Parts | None = None

    async def parts(self, needs: str) -> Parts:
        """The application's parts on its storage and database (``needs`` names what the
        command needs them for, should no application be named)."""
        if self._parts is None:
            app = self.target.operable(needs)
            storage = open_storage(self.target.settings)
            self._stack.push_async_callback(storage.close)
            await storage.setup()
            self._parts = app.parts(storage, self.database)
        return self._parts


def in_session(ctx: typer.Context, work: Callable[[Session], Awaitable[T]]) -> T:
    """Run ``work`` on the application's existing database, closing everything after."""
    target = current_target(ctx)

    async def main() -> T:
        async with contextlib.AsyncExitStack() as stack:
            await check_database(target.settings)
            database = open_read_models(target.settings)
            stack.push_async_callback(database.close)
            return await work(Session(target, database, stack))

    return asyncio.run(main())
