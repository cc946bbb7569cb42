"""What ``invariant.store`` offers: every adapter by its public name, PostgreSQL's driver
imported only by those who use it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import invariant.store
from invariant.store.postgres import PostgresStorage


def test_postgres_storage_is_exported_beside_the_other_adapters() -> None:
    from invariant.store import PostgresStorage as exported

    assert exported is PostgresStorage
    assert "PostgresStorage" in invariant.store.__all__


def test_every_exported_name_resolves() -> None:
    missing = [n for n in invariant.store.__all__ if not hasattr(invariant.store, n)]
    assert missing == []


def test_importing_the_store_does_not_import_asyncpg() -> None:
    # A fresh interpreter: this one imported asyncpg long ago.
    probe = ("import sys, invariant, invariant.store\n"
             "print('asyncpg' in sys.modules)\n"
             "invariant.store.PostgresStorage\n"
             "print('asyncpg' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'PostgresStore'"):
        invariant.store.PostgresStore  # noqa: B018
