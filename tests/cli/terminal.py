"""Run the ``invariant`` command on a pseudo-terminal, as an operator's shell does."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

INVARIANT = str(Path(sys.executable).parent / "invariant")


def on_terminal(args: list[str], env: Mapping[str, str], *, columns: int = 120,
                cwd: Path | None = None, timeout: float = 60) -> tuple[int, str]:
    """Exit status and everything written to the terminal (stdout and stderr)."""
    main, child = pty.openpty()
    settings = {k: v for k, v in os.environ.items() if not k.startswith("INVARIANT_")}
    settings |= {"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "40", **env}
    settings.pop("NO_COLOR", None)
    with subprocess.Popen([INVARIANT, *args], stdin=child, stdout=child, stderr=child,
                          env=settings, cwd=cwd) as proc:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout)
    os.close(main)
    return code, b"".join(chunks).decode(errors="replace")
