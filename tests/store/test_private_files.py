"""A SQLite database (and its -wal and -shm files) is created for its owner only, in
directories made for its owner only: it may hold password hashes and secrets. An existing
file keeps its mode, with a warning when others may read it."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from invariant.projections import ReadModelDatabase
from invariant.store import SQLiteStorage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private(path: Path) -> bool:
    return mode(path) & 0o077 == 0


async def test_a_new_event_store_file_and_its_directories_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "app" / "events.db"
    storage = SQLiteStorage(path)
    await storage.setup()
    try:
        await storage.head_position()
        files = [path, path.with_name("events.db-wal"), path.with_name("events.db-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) & 0o777 for f in files] == [0o600] * 3
        assert private(tmp_path / "var") and private(tmp_path / "var" / "app")
    finally:
        await storage.close()


async def test_a_new_read_model_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "models" / "read.db"
    database = ReadModelDatabase.for_url(f"sqlite:///{path}")
    try:
        await database.run(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")))
        assert mode(path) == 0o600 and private(path.parent)
        assert mode(path.with_name("read.db-wal")) == 0o600
    finally:
        await database.close()


async def test_an_existing_file_keeps_its_mode_and_a_shared_one_is_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.db"
    path.touch()
    path.chmod(0o644)
    storage = SQLiteStorage(path)
    with caplog.at_level(logging.WARNING, logger="invariant.store"):
        await storage.setup()
    await storage.close()
    assert mode(path) == 0o644
    assert f"{path} is open to other users (mode 0644)" in caplog.text
    assert f"chmod 600 {path}" in caplog.text
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="invariant.store"):
        await storage.setup()
    await storage.close()
    assert caplog.text == ""
