"""The whole book: every chapter of _toc.yml executed at the ci profile, then rendered without warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsdelib.book.runner import build_html, chapter_source, is_notebook, run_book, toc_entries


@pytest.mark.slow
def test_every_chapter_executes_and_the_book_renders(repo_root: Path, tmp_path: Path) -> None:
    stage = run_book(profile="ci", seed=0, device="cpu", out=tmp_path, progress=False)
    index = build_html(stage, out=tmp_path)
    assert index == tmp_path / "_build" / "html" / "index.html" and index.exists()
    for entry in toc_entries(repo_root):
        page = tmp_path / "_build" / "html" / f"{entry}.html"
        assert page.exists(), f"{entry} was not rendered"
        if is_notebook(chapter_source(entry, repo_root)):
            executed = json.loads((stage / f"{entry}.ipynb").read_text())
            assert any(cell.get("outputs") for cell in executed["cells"]), f"{entry} has no outputs"
            assert "cell_output" in page.read_text(), f"{entry}'s outputs are not in its page"
    assert not list(repo_root.glob("chapters/*.ipynb")), "sources must stay output-free text files"
