"""``python -m benchmarks.readme`` writes its blocks into the documentation's benchmarks page."""

from __future__ import annotations

from benchmarks import readme


def test_the_page_holds_both_generated_blocks() -> None:
    text = readme.PAGE.read_text()
    for start, end in ((readme.START, readme.END), (readme.W5_START, readme.W5_END)):
        assert text.count(start) == text.count(end) == 1, (start, end)
        assert text.index(start) < text.index(end)


def test_a_rendered_block_replaces_the_pages_block_and_nothing_else() -> None:
    text = readme.PAGE.read_text()
    updated = readme.replace_block(text, f"{readme.START}\nnew\n{readme.END}", readme.START,
                                   readme.END)
    assert updated is not None
    head, _ = text.split(readme.START)
    _, tail = text.split(readme.END)
    assert updated == f"{head}{readme.START}\nnew\n{readme.END}{tail}"
