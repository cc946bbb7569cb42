"""``python -m shop`` that cannot start says why in one line, before any banner, and exits
non-zero (issue #14): a busy port (it printed "running at ..." and then failed), an
unreachable PostgreSQL (a 112-line traceback), a busy mail-sink port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shop.conftest import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def run_shop(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m shop`` in ``tmp_path`` with ``settings`` (and no other SHOP_* or
    INVARIANT_* variable of ours)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOP_", "INVARIANT_"))}
    env.update({"SHOP_PORT": str(free_port()), "SHOP_SMTP_PORT": str(free_port()),
                "SHOP_SAMPLE_CATALOG": "off", **settings})
    return subprocess.run([sys.executable, "-m", "shop"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line shop printed (on stderr), having printed nothing else."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == "", done.stdout  # no banner
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_busy_port_is_one_line_naming_the_port_and_shop_port(
        tmp_path: Path, busy_port: int) -> None:
    line = one_line(run_shop(tmp_path, SHOP_PORT=str(busy_port)))
    assert line == (f"shop cannot start: port {busy_port} on 127.0.0.1 is in use by another "
                    "program; set SHOP_PORT to a free port")
    assert not (tmp_path / "var").exists()  # nothing was started


def test_an_unreachable_postgresql_is_one_line_naming_the_dsn_setting(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    line = one_line(run_shop(tmp_path, INVARIANT_STORE="postgres", INVARIANT_POSTGRES_DSN=dsn))
    assert line.startswith(f"shop cannot start: cannot connect to PostgreSQL at {dsn}")
    assert "INVARIANT_POSTGRES_DSN" in line and "is the server running" in line


def test_a_busy_mail_sink_port_is_one_line_naming_shop_smtp_port(
        tmp_path: Path, busy_port: int) -> None:
    line = one_line(run_shop(tmp_path, SHOP_SMTP_PORT=str(busy_port)))
    assert line.startswith(f"shop cannot start: the local mail sink cannot listen on "
                           f"127.0.0.1:{busy_port}")
    assert "set SHOP_SMTP_PORT to a free port, or SHOP_MAIL_SINK=off" in line


async def test_the_test_kit_starts_its_shop_again_when_a_chosen_port_was_taken(
        tmp_path: Path) -> None:
    # Free ports are chosen before they are bound: the other worker may take one meanwhile.
    from invariant.config import Settings
    from tests.shop.conftest import serve, shop_settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                    sqlite_path=tmp_path / "s.db"),
                                 smtp_port=port)
        async with serve(settings) as running:
            assert (await running.client.get("/health")).status_code == 200
            assert running.shop.settings.smtp_port != port
