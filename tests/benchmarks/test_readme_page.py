"""``python -m benchmarks.readme`` writes its blocks into the documentation's benchmarks page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

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


def test_a_block_keeps_its_run_time_until_its_figures_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout rewrites the results file, and with it the file's time: rendering the
    same figures again must not date them to the checkout."""
    records = json.loads((readme.RESULTS / "latest.json").read_text())
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(records))
    ran = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    page = tmp_path / "benchmarks.md"
    page.write_text("before\n" + readme.render(records, ran, "make bench", readme.START,
                                               readme.END) + "\nafter\n")
    monkeypatch.setattr(readme, "PAGE", page)
    monkeypatch.setattr(readme, "ROOT", tmp_path)

    assert readme.main([str(results)]) == 0
    assert "Last run: 2026-01-02 03:04 UTC" in page.read_text()

    records[0]["value"] = float(records[0]["value"]) * 2  # a new run's figures
    results.write_text(json.dumps(records))
    assert readme.main([str(results)]) == 0
    text = page.read_text()
    assert "Last run: 2026-01-02 03:04 UTC" not in text
    assert text.startswith("before\n") and text.endswith("\nafter\n")
