"""Collects the fenced code blocks of Markdown documents and runs them as written.

Conventions, by the fence's info string (its first word the language, the rest flags):

``python``
    Run as Python the way ``python -m asyncio`` runs what is typed into it: top-level
    ``await`` works. The blocks of one section (the text under one ``## `` heading) run in
    order, in one module's namespace and on one event loop, so a block may use what an
    earlier block of its section defined or opened. Each section starts in a fresh temporary
    working directory, so the files a block makes (``var/bank.db``) are its own. Its
    ``assert`` statements are the checks.
``python postgres``
    Needs the PostgreSQL server. The DSN ``postgresql://postgres@127.0.0.1:5432/test`` is
    replaced by the test DSN (``INVARIANT_TEST_POSTGRES_DSN``), and each ``schema="name"``
    by a fresh schema, dropped when the section is done. Skipped when the server is down,
    except under ``CI=true``, where that fails.
``python fragment``
    Not runnable on its own: only compiled. Keep these rare; there are none today.
``sh`` / ``bash``
    Run by ``bash -euo pipefail`` from the repository's root, the virtual environment's
    ``bin`` first on ``PATH``, with a timeout; a non-zero exit fails.
``sh shop``
    Commands for ``make run``'s shop: run in a fresh directory in which shop has run once
    (its data in ``var/shop``, the virtual environment linked as ``.venv``), without the
    caller's ``INVARIANT_*`` and ``SHOP_*`` settings (see :mod:`tests.docs_shop`).
``sh no-run``
    Shown, never run. Only the commands in :data:`NO_RUN` may be in such a block.
``text``
    Not code (layouts, program output): not run.

A fence without an info string, or with an unknown language or flag, is an error: nothing
escapes the check by accident.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tests.docs_shop import shop_ran_once

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/**/*.md")
"""What is checked (globs relative to the repository's root)."""

FLAGS = {"python": {"postgres", "fragment"}, "sh": {"no-run", "shop"},
         "bash": {"no-run", "shop"}, "text": set()}
NO_RUN = {
    "make run": "serves shop until stopped, on port 8000 (others may be using it); the demo "
                "and shop tests start the same server on free ports",
    "make test": "is the run this test is part of",
}
"""The only commands a ``sh no-run`` block may hold, and why each cannot run here."""

README_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_numbers = itertools.count()  # every section's module gets a name of its own
SH_TIMEOUT = 300.0


@dataclass(frozen=True)
class Block:
    """One fenced block of a document."""

    path: str
    line: int
    section: str
    info: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(self.info.split()[1:])

    def problem(self) -> str | None:
        """What is wrong with the info string, if anything."""
        if not self.language:
            return f"{self.id}: a fence without a language (use ```text for non-code)"
        allowed = FLAGS.get(self.language)
        if allowed is None:
            return f"{self.id}: unknown language {self.language!r} (known: {sorted(FLAGS)})"
        unknown = sorted(self.flags - allowed)
        if unknown:
            return f"{self.id}: unknown flag(s) {unknown} for {self.language}"
        return None


def collect(patterns: Iterable[str] = DOCUMENTS, root: Path = ROOT) -> list[Block]:
    """Every fenced block of the documents matching ``patterns``, in document order."""
    paths = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return [block for path in paths for block in blocks_of(path, root)]


def blocks_of(path: Path, root: Path) -> list[Block]:
    found = []
    section = ""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[index + 1].content
        elif token.type == "fence" and token.map is not None:
            found.append(Block(path.relative_to(root).as_posix(), token.map[0] + 1, section,
                               token.info.strip(), token.content))
    return found


class Section:
    """The shared state of one section's Python blocks: a module, an event loop, a working
    directory, and the fresh PostgreSQL schemas its blocks were given."""

    def __init__(self) -> None:
        self.module = types.ModuleType(f"docs_section_{next(_numbers)}")
        sys.modules[self.module.__name__] = self.module  # for dataclasses, pydantic, codecs
        self.directory = Path(tempfile.mkdtemp(prefix="invariant-docs-"))
        self.loop = asyncio.Runner()
        self.schemas: dict[str, str] = {}
        self._cleanup = contextlib.AsyncExitStack()
        self.ran: dict[str, BaseException | None] = {}

    def run(self, block: Block) -> None:
        """Run a Python block in this section (an earlier failure fails it too)."""
        for earlier, error in self.ran.items():
            if isinstance(error, pytest.skip.Exception):
                pytest.skip(f"an earlier block of this section was skipped ({earlier}: {error})")
            if error is not None:
                raise AssertionError(f"an earlier block of this section failed: {earlier}")
        try:
            self._run(block)
        except BaseException as exc:
            self.ran[block.id] = exc
            raise
        self.ran[block.id] = None

    def _run(self, block: Block) -> None:
        source = block.source
        if "postgres" in block.flags:
            source = self._on_test_postgres(source)
        # Blank lines first, so that tracebacks give the document's line numbers.
        code = compile("\n" * block.line + source, block.path, "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if "fragment" in block.flags:
            return
        with _working_directory(self.directory):
            self.loop.run(_evaluate(code, self.module.__dict__))

    def _on_test_postgres(self, source: str) -> str:
        from tests.conftest import POSTGRES_DSN, fresh_pg_schema

        def fresh(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.schemas:
                context = fresh_pg_schema()
                self.schemas[name] = self.loop.run(self._cleanup.enter_async_context(context))
            return f'schema="{self.schemas[name]}"'

        source = source.replace(README_DSN, POSTGRES_DSN)
        return re.sub(r'schema="([a-z_][a-z0-9_]*)"', fresh, source)

    def close(self) -> None:
        try:
            self.loop.run(self._cleanup.aclose())
        finally:
            self.loop.close()
            sys.modules.pop(self.module.__name__, None)
            shutil.rmtree(self.directory, ignore_errors=True)


async def _evaluate(code: types.CodeType, namespace: dict[str, Any]) -> None:
    # On the loop, as python -m asyncio runs input: code without an await sees it too.
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


@contextlib.contextmanager
def _working_directory(path: Path) -> Any:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_shell(block: Block, root: Path = ROOT, timeout: float = SH_TIMEOUT
              ) -> subprocess.CompletedProcess[str]:
    """Run a shell block from ``root`` (a ``shop`` block: where shop has run once); raises
    AssertionError on a non-zero exit or when it runs longer than ``timeout`` seconds
    (every process it started is killed then)."""
    if "shop" in block.flags:
        with shop_ran_once() as (directory, env):
            return _shell(block, directory, env, timeout)
    return _shell(block, root, dict(os.environ), timeout)


def _shell(block: Block, root: Path, env: dict[str, str], timeout: float
           ) -> subprocess.CompletedProcess[str]:
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    # A session of its own, so that a timeout ends every process the block started.
    with subprocess.Popen(["bash", "-euo", "pipefail", "-c", block.source], cwd=root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(f"{block.id} did not finish within {timeout} s:\n{stdout}"
                                 f"{stderr}") from None
    if process.returncode != 0:
        raise AssertionError(f"{block.id} exited with {process.returncode}:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def commands_of(block: Block) -> list[str]:
    """The commands of a shell block (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in block.source.splitlines())
    return [line for line in lines if line]


class Sections:
    """The sections met so far, each run once in order (a block selected alone first runs
    the blocks before it in its section)."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = blocks
        self._open: dict[tuple[str, str], Section] = {}

    def __enter__(self) -> Sections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def section_of(self, block: Block) -> Section:
        key = (block.path, block.section)
        section = self._open.get(key)
        if section is None:
            section = self._open[key] = Section()
        return section

    def run(self, block: Block) -> None:
        key = (block.path, block.section)
        section = self.section_of(block)
        for earlier in self.blocks:
            if earlier is block:
                break
            if (earlier.path, earlier.section) == key and earlier.language == "python" \
                    and earlier.id not in section.ran:
                section.run(earlier)
        section.run(block)

    def close(self) -> None:
        for section in self._open.values():
            section.close()
