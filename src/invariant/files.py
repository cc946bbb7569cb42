"""Files that hold an application's data (a SQLite database, keys, emails) are made for
their owner only: the data may be password hashes, secrets or one-time codes.

A missing directory is made ``0700`` (each missing parent too), a missing file ``0600``
before anything opens it: SQLite then opens the empty file as a new database and gives its
``-wal`` and ``-shm`` files the same mode. What exists already keeps its mode (an
operator may have chosen it, e.g. for a backup group), but a file that other users may
read is named in a warning with the command that closes it. (A shared directory is not:
the files in it are private, and a directory such as ``var/`` is often shared on purpose.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
log = logging.getLogger("invariant.store")


def private_directory(path: Path) -> None:
    """Make ``path`` and its missing parents, each ``0700`` (``mkdir -p`` would give the
    parents the default mode)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            os.mkdir(directory, DIRECTORY_MODE)


def private_file(path: Path) -> None:
    """Make ``path`` an empty ``0600`` file in a private directory, unless it exists (then
    warn if it is open to other users)."""
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _warn_if_shared(path)


def _warn_if_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is open to other users (mode %04o) and may hold secrets; "
                    "run: chmod 600 %s", path, mode, path)
