"""Readable failure messages for the test kit: what was expected against what happened."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def listing(items: Sequence[object]) -> str:
    """One item per indented line (``(none)`` for an empty list)."""
    if not items:
        return "  (none)"
    return "\n".join(f"  {item!r}" for item in items)


def differences(what: str, expected: Sequence[object], got: Sequence[object]) -> str:
    """A line diff of two lists, one item per line: ``-`` expected only, ``+`` got only,
    ``?`` marks where a changed line differs."""
    lines = difflib.ndiff([repr(x) for x in expected], [repr(x) for x in got])
    return f"{what} differ (- expected, + got):\n" + "\n".join(
        f"  {line}" for line in lines)
