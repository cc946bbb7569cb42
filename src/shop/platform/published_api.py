"""shop's published HTTP API as the single process serves it, without running anything:
the contexts' modules are built (never started) on a scratch SQLite settings, so that the
gateway and the tools read the same routes and OpenAPI as ``make run`` serves."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invariant.config import Settings
from shop.config import ShopSettings
from shop.platform.runtime import Shop


@contextmanager
def unstarted_shop() -> Iterator[Shop]:
    """Every context's module, built on scratch settings; nothing is opened or started."""
    with tempfile.TemporaryDirectory(prefix="shop-published-") as data:
        settings = Settings(store="sqlite", sqlite_path=Path(data) / "unused.db")
        yield Shop(ShopSettings(invariant=settings, data=Path(data), secret="x" * 32,
                                admin_password="unused"))
