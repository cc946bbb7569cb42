"""What the tests of WAL checkpoints between commits share (the event store's writer in
``tests/store``, the SQLite read models in ``tests/projections``)."""

from __future__ import annotations

import threading
from pathlib import Path

from invariant.sqlite_wal import THREAD_NAME

MARK = 50  # pages: small, so that a test crosses it many times
FRAME = 4096 + 24  # a WAL frame: a page and its header


def wal_bytes(path: Path) -> int:
    """The size of the WAL file of the database at ``path`` (0 when there is none)."""
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def checkpoint_threads() -> list[threading.Thread]:
    """The checkpoint threads alive in this process."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]
