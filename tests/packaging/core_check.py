"""Run by the fresh environment's Python (see test_distributions.py): the core works with
no extra installed, and every adapter says which extra it needs. Prints one line per
finding; exits non-zero on the first surprise."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import pkgutil
import sys
import tempfile
from pathlib import Path

from invariant.extras import EXTRAS, MissingExtraError

ADAPTERS = {
    "invariant.store.postgres": "postgres",
    "invariant.messaging.brokers.nats": "nats",
    "invariant.messaging.jobs.nats": "nats",
    "invariant.messaging.brokers.rabbitmq": "rabbitmq",
    "invariant.messaging.brokers.redis_streams": "redis",
    "invariant.projections.redis_cache": "redis",
    "invariant.messaging.brokers.kafka": "kafka",
    "invariant.http": "http",
    "invariant.cli": "cli",
}
TEST_RUNNER = {"pytest", "hypothesis"}
"""What the test kit's contract suites (``invariant.testing.*_contract``) need besides."""
CORE = ["invariant", "invariant.domain", "invariant.store", "invariant.application",
        "invariant.projections", "invariant.messaging", "invariant.processes",
        "invariant.state", "invariant.sql", "invariant.contracts", "invariant.errors"]


def main() -> None:
    installed = sorted(m for libs in EXTRAS.values() for m in libs
                       if importlib.util.find_spec(m) is not None)
    assert installed == [], f"an extra's library is installed in the core environment: {installed}"
    for name in CORE:
        importlib.import_module(name)
        print(f"core {name}")
    for name, extra in ADAPTERS.items():
        try:
            importlib.import_module(name)
        except MissingExtraError as exc:
            assert exc.extra == extra, (name, exc.extra, extra)
            print(f"needs {name}: {exc}")
        else:
            raise AssertionError(f"{name} imported without the {extra!r} extra")
    check_every_module()
    asyncio.run(round_trip())


def check_every_module() -> None:
    """Every module of invariant imports with the core alone, or raises MissingExtraError
    (an adapter importing its library outside ``needs_extra`` fails here, naming it)."""
    import invariant

    for module in pkgutil.walk_packages(invariant.__path__, "invariant."):
        try:
            importlib.import_module(module.name)
        except MissingExtraError:
            continue
        except ModuleNotFoundError as exc:
            if exc.name in TEST_RUNNER and module.name.startswith("invariant.testing."):
                continue
            raise AssertionError(
                f"{module.name} needs {exc.name!r}, which the core does not install: import "
                "it inside invariant.extras.needs_extra(<the extra that installs it>)") from exc
    print("every module imports or names its extra")


async def round_trip() -> None:
    """An event appended to a SQLite event store is read back as the same event."""
    from dataclasses import dataclass

    from invariant.domain import DomainEvent
    from invariant.store import EventRegistry, EventStore, SQLiteStorage

    @dataclass(frozen=True)
    class Opened(DomainEvent):
        owner: str

    with tempfile.TemporaryDirectory() as directory:
        storage = SQLiteStorage(Path(directory) / "core.db")
        await storage.setup()
        try:
            store = EventStore(storage, EventRegistry([Opened]))
            await store.append("account-1", [Opened(owner="ada")])
            [record] = await storage.read_stream("account-1")
            assert store.decode_event(record) == Opened(owner="ada"), record
        finally:
            await storage.close()
    print("core round trip on SQLite")


if __name__ == "__main__":
    sys.exit(main())
