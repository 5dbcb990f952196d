"""The whole book: every chapter of _toc.yml executed at the ci profile, then rendered without warnings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import BuiltBook

from nsdelib.book.runner import REPO_ROOT, chapter_source, is_notebook, repository_address, toc_entries


@pytest.mark.slow
def test_every_chapter_executes_and_the_book_renders(repo_root: Path, built_book: BuiltBook) -> None:
    assert (built_book.html / "index.html").exists()
    for entry in toc_entries(repo_root):
        page = built_book.html / f"{entry}.html"
        assert page.exists(), f"{entry} was not rendered"
        if is_notebook(chapter_source(entry, repo_root)):
            executed = json.loads((built_book.stage / f"{entry}.ipynb").read_text())
            assert any(cell.get("outputs") for cell in executed["cells"]), f"{entry} has no outputs"
            assert "cell_output" in page.read_text(), f"{entry}'s outputs are not in its page"
    assert not list(repo_root.glob("chapters/*.ipynb")), "sources must stay output-free text files"
    assert built_book.computed_by_chapters == [], (
        "chapters computed what the build's task graph should have (side by side, two chapters would compute it twice)")


@pytest.mark.slow
def test_chapters_show_one_parameters_cell_and_offer_a_python3_notebook(
    repo_root: Path, built_book: BuiltBook
) -> None:
    for entry in toc_entries(repo_root):
        if not is_notebook(chapter_source(entry, repo_root)):
            continue
        notebook = json.loads((built_book.html / "_sources" / f"{entry}.ipynb").read_text())
        assert notebook["metadata"]["kernelspec"]["name"] == "python3", entry
        assert notebook["metadata"]["papermill"]["parameters"]["profile"] == "ci", entry
        page = (built_book.html / f"{entry}.html").read_text()
        assert page.count("tag_parameters") == 1, f"{entry} does not show its parameters cell exactly once"
        assert "tag_injected-parameters" not in page, f"{entry} shows papermill's injected parameters"


@pytest.mark.slow
def test_book_configuration_reaches_the_html(built_book: BuiltBook) -> None:
    page = (built_book.html / "chapters" / "ch02_nsde_theory.html").read_text()
    repository = repository_address(REPO_ROOT)
    if repository is None:  # no public remote: no button may link an address that does not exist
        assert "/issues/new?title=" not in page and "mybinder.org" not in page
    else:
        assert f'href="{repository}"' in page, "repository button"
        assert f'href="{repository}/issues/new?title=Issue%20on%20page%20' in page, "issues button"
    assert "btn-download-source-button" in page, "download button"
    assert "bd-sidenav__home-link" in page, "home_page_in_navbar (dropped when theme options replaced it)"
    assert re.search(r'<a class="reference internal" href="ch03_training.html">3\. Training', page), "numbering"
    assert 'href="running_this_book.html">Running this book<' in page, "front matter stays unnumbered"
    assert '<script defer="defer" src="../_static/../mathjax/tex-mml-chtml.js' in page, "MathJax ships with the book"
    assert 'href="../_static/nsdebook.css' in page, "the book's CSS (_static/) is staged and linked"
    assert "Liu <em>et al.</em> [<a" in page, "narrative citations read 'Liu et al. [2020]' ({cite:t})"
