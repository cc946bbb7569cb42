"""Where the README's operator commands run: a fresh directory in which shop has run once
(``make run``'s data in ``var/shop``), the virtual environment linked there as ``.venv``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.ports import free_port as _free_port

START_TIMEOUT = 120.0


@contextlib.contextmanager
def shop_ran_once() -> Iterator[tuple[Path, dict[str, str]]]:
    """The directory, and the environment to run commands in it with (no ``INVARIANT_*`` or
    ``SHOP_*`` settings of the caller's: the commands must find shop as ``make run`` left
    it)."""
    directory = Path(tempfile.mkdtemp(prefix="invariant-docs-shop-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVARIANT_", "SHOP_"))}
    try:
        (directory / ".venv").symlink_to(sys.prefix)
        _run_shop_once(directory, env)
        yield directory, env
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_shop_once(directory: Path, env: dict[str, str]) -> None:
    port = _free_port()
    serving = {**env, "SHOP_PORT": str(port), "SHOP_SMTP_PORT": str(_free_port())}
    log = directory / "shop.log"  # a file, not a pipe nobody reads while shop runs
    with log.open("w") as output, subprocess.Popen(
            [sys.executable, "-m", "shop"], cwd=directory, env=serving, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True) as shop:
        try:
            _wait_until_healthy(port, shop, log)
        finally:
            os.killpg(shop.pid, signal.SIGTERM)  # uvicorn shuts down gracefully on it
            try:
                shop.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(shop.pid, signal.SIGKILL)
                shop.wait()


def _wait_until_healthy(port: int, shop: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if shop.poll() is not None:
            raise AssertionError(f"shop stopped while starting:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"shop did not answer on port {port} within {START_TIMEOUT} s")

