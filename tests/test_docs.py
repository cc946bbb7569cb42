"""Every fenced code block of the documentation runs as written (the conventions are in
:mod:`tests.docs`: info strings, sections sharing a namespace, PostgreSQL blocks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.docs import NO_RUN, Block, Sections, collect, commands_of, run_shell

BLOCKS = collect()


def _param(block: Block) -> object:
    marks = [pytest.mark.postgres] if "postgres" in block.flags else []
    return pytest.param(block, id=f"{block.id}-{block.info.replace(' ', '-')}", marks=marks)


@pytest.fixture(scope="module")
def sections() -> Iterator[Sections]:
    with Sections(BLOCKS) as opened:
        yield opened


def test_every_block_says_what_it_is() -> None:
    assert [p for p in (b.problem() for b in BLOCKS) if p] == []


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS if b.language != "text"])
def test_the_block_runs(block: Block, sections: Sections) -> None:
    if "no-run" in block.flags:
        shown = commands_of(block)
        assert shown and set(shown) <= set(NO_RUN), (
            f"{block.id}: only {sorted(NO_RUN)} may be shown without running, not {shown}")
    elif block.language == "python":
        sections.run(block)
    else:
        run_shell(block)


# -- the checker itself -------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> list[Block]:
    (tmp_path / "doc.md").write_text(text)
    return collect(["*.md"], tmp_path)


def test_blocks_carry_their_line_section_and_info(tmp_path: Path) -> None:
    blocks = write(tmp_path, "# T\n\n```sh no-run\nmake run\n```\n\n## Two\n\n"
                             "~~~python fragment\nx = 1\n~~~\n\n```\nplain\n```\n")
    assert [(b.line, b.section, b.language, set(b.flags)) for b in blocks] == [
        (3, "", "sh", {"no-run"}), (9, "Two", "python", {"fragment"}), (13, "Two", "", set())]
    assert blocks[2].problem() == "doc.md:13: a fence without a language (use ```text for " \
        "non-code)"


def test_unknown_languages_and_flags_are_reported(tmp_path: Path) -> None:
    blocks = write(tmp_path, "```ruby\n1\n```\n\n```python no-run\n1\n```\n")
    assert [b.problem() for b in blocks] == [
        "doc.md:1: unknown language 'ruby' (known: ['bash', 'python', 'sh', 'text'])",
        "doc.md:5: unknown flag(s) ['no-run'] for python"]


def test_a_section_shares_one_namespace_and_event_loop(tmp_path: Path) -> None:
    blocks = write(tmp_path, "## One\n\n```python\nimport asyncio\nloop = "
                             "asyncio.get_running_loop()\nx = 41\n```\n\n```python\n"
                             "assert asyncio.get_running_loop() is loop\nx += 1\n```\n\n"
                             "## Two\n\n```python\nassert 'x' not in globals()\n```\n")
    with Sections(blocks) as sections:
        for block in blocks:
            sections.run(block)
        assert sections.section_of(blocks[0]).module.x == 42


def test_a_block_selected_alone_runs_the_blocks_before_it(tmp_path: Path) -> None:
    blocks = write(tmp_path, "```python\nx = 1\n```\n\n```python\nassert x == 1\n```\n")
    with Sections(blocks) as sections:
        sections.run(blocks[1])
        assert sections.section_of(blocks[0]).module.x == 1


def test_a_failing_block_names_its_document_line(tmp_path: Path) -> None:
    blocks = write(tmp_path, "text\n\n```python\nok = True\nassert 1 == 2, 'wrong'\n```\n\n"
                             "```python\npass\n```\n")
    with Sections(blocks) as sections:
        with pytest.raises(AssertionError, match="wrong") as caught:
            sections.run(blocks[0])
        assert caught.traceback[-1].lineno + 1 == 5  # the document's line of the assert
        with pytest.raises(AssertionError, match="an earlier block of this section failed"):
            sections.run(blocks[1])


def test_blocks_run_in_a_working_directory_of_their_own(tmp_path: Path) -> None:
    blocks = write(tmp_path, "```python\nfrom pathlib import Path\n"
                             "Path('made.txt').write_text('x')\nhere = Path.cwd()\n```\n")
    with Sections(blocks) as sections:
        sections.run(blocks[0])
        section = sections.section_of(blocks[0])
        assert (section.directory / "made.txt").exists()
        assert Path.cwd() != section.directory
    assert not section.directory.exists()


def test_shell_blocks_run_and_a_failure_shows_the_output(tmp_path: Path) -> None:
    ok, bad = write(tmp_path, "```sh\necho hi | grep hi\n```\n\n```bash\necho oops; false\n"
                              "echo never\n```\n")
    assert run_shell(ok, tmp_path).stdout == "hi\n"
    with pytest.raises(AssertionError, match=r"doc.md:5 exited with 1:\noops\n$"):
        run_shell(bad, tmp_path)


def test_a_shell_block_that_runs_too_long_is_ended_with_everything_it_started(
    tmp_path: Path,
) -> None:
    # The child lets go of the output pipes: only killing its group can end it early.
    [block] = write(tmp_path, "```sh\nsleep 60 >/dev/null 2>&1 &\necho $! > child.pid\n"
                              "wait\n```\n")
    with pytest.raises(AssertionError, match="did not finish within 1 s"):
        run_shell(block, tmp_path, timeout=1)
    child = int((tmp_path / "child.pid").read_text())
    assert not still_running_after(child, seconds=10)


def still_running_after(pid: int, seconds: float) -> bool:
    """Whether ``pid`` still runs ``seconds`` from now (a SIGKILL sent to another process's
    group is delivered asynchronously: the process may show as running for a moment)."""
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(pid)


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a killed process nobody has reaped yet is dead, too: this
    container's init does not reap orphans)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_only_the_listed_commands_may_go_unrun(tmp_path: Path) -> None:
    [block] = write(tmp_path, "```sh no-run\nmake run   # serves\n\nmake bank\n```\n")
    assert commands_of(block) == ["make run", "make bank"]
    assert not set(commands_of(block)) <= set(NO_RUN)
