"""Architecture rules that must fail loudly when broken."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "invariant"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_domain_kit_imports_only_the_standard_library_and_itself() -> None:
    offenders: list[str] = []
    for path in sorted((SRC / "domain").rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("invariant.domain") or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.relative_to(SRC)} imports {module}")
    assert offenders == []


def test_the_checker_would_catch_a_third_party_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import orjson\nfrom invariant.store import EventStore\nimport json\n")
    assert imported_modules(bad) == {"orjson", "invariant.store", "json"}


def test_every_package_ships_its_type_marker() -> None:
    assert (SRC / "py.typed").exists()


def wait_for_calls(path: Path) -> list[int]:
    """Lines calling ``asyncio.wait_for`` (or a bare imported ``wait_for``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "wait_for"
                    and isinstance(func.value, ast.Name) and func.value.id == "asyncio") or (
                    isinstance(func, ast.Name) and func.id == "wait_for"):
                lines.append(node.lineno)
    return lines


def test_no_timed_wait_can_swallow_a_cancellation() -> None:
    # On Python 3.11, asyncio.wait_for returns normally when a cancellation lands as the
    # awaited future completes: a follower or worker cancelled then runs on forever. Use
    # invariant.tasks.wait_briefly or ``async with asyncio.timeout(...)``.
    root = SRC.parent
    offenders = [f"{path.relative_to(root)}:{line}"
                 for path in sorted(root.rglob("*.py")) for line in wait_for_calls(path)]
    assert offenders == []


def test_the_wait_for_checker_sees_both_spellings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom asyncio import wait_for\n"
                   "async def f(x):\n    await asyncio.wait_for(x, 1)\n    await wait_for(x, 1)\n")
    assert wait_for_calls(bad) == [4, 5]


def test_the_event_store_and_its_adapters_load_no_sqlalchemy() -> None:
    # SQLAlchemy is for applications with read models, processes or messaging: the event
    # store's adapters share the outbox's definition (invariant.sql.outbox) without it.
    import subprocess

    code = ("import sys, invariant, invariant.store, invariant.store.sqlite,"
            " invariant.store.postgres, invariant.sql.outbox;"
            " print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
