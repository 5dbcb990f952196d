"""The chapter runner and CLI: toc order, parameter checks, failing cells reported with their traceback."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nsdelib.book.cli import main
from nsdelib.book.runner import ChapterFailed, run_book, toc_entries
from nsdelib.common.errors import ConfigError

HEADER = "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       format_name: percent\n# ---\n"
PARAMS = '# %% tags=["parameters"]\nprofile = "quick"\nseed = 0\ndevice = "auto"\n'


def make_project(root: Path, chapters: dict[str, str]) -> Path:
    """A minimal book: a toc listing ``chapters`` (stem -> body after the parameters cell)."""
    (root / "chapters").mkdir(parents=True)
    toc = {"format": "jb-book", "root": "chapters/" + next(iter(chapters)), "chapters": []}
    toc["chapters"] = [{"file": f"chapters/{stem}"} for stem in list(chapters)[1:]]
    (root / "_toc.yml").write_text(json.dumps(toc))
    (root / "_config.yml").write_text("title: test\n")
    (root / "references.bib").write_text("")
    for stem, body in chapters.items():
        (root / "chapters" / f"{stem}.py").write_text(HEADER + PARAMS + textwrap.dedent(body))
    return root


def test_toc_entries_follow_reading_order(repo_root: Path) -> None:
    entries = toc_entries(repo_root)
    assert entries[0] == "chapters/intro"
    assert "chapters/running_this_book" in entries
    assert entries[-1] == "chapters/bibliography"


def test_executes_chapters_with_injected_parameters(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "book",
        {"first": "# %%\nprint(f'profile={profile} seed={seed}')\n", "second": "# %%\nx = seed * 2\nx\n"},
    )
    stage = run_book(profile="ci", seed=7, out=tmp_path, root=project, progress=False, log=lambda _: None)
    executed = json.loads((stage / "chapters" / "first.ipynb").read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("profile=ci seed=7" in "".join(o.get("text", "")) for o in outputs)
    second = json.loads((stage / "chapters" / "second.ipynb").read_text())
    results = ["".join(o["data"]["text/plain"]) for c in second["cells"] for o in c.get("outputs", []) if "data" in o]
    assert results == ["14"]


def test_failing_cell_names_chapter_cell_and_traceback(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "book", {"broken": "# %%\nvalue = 1\n\n# %%\nraise ValueError('spectrogram went negative')\n"}
    )
    with pytest.raises(ChapterFailed) as info:
        run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None)
    message = str(info.value)
    assert "chapter chapters/broken.py failed in cell" in message
    assert "raise ValueError('spectrogram went negative')" in message
    assert "ValueError: spectrogram went negative" in message
    assert "\x1b[" not in message


def test_chapter_without_parameters_cell_is_rejected(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"ok": "# %%\n1\n"})
    (project / "chapters" / "ok.py").write_text(HEADER + "# %%\nprofile = 'ci'\n")
    with pytest.raises(ConfigError, match="exactly one cell tagged 'parameters', found 0"):
        run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None)


def test_unknown_chapter_is_rejected(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"only": "# %%\n1\n"})
    with pytest.raises(ConfigError, match=r"unknown chapter 'nope'; chapters in _toc.yml: chapters/only"):
        run_book(entries=["nope"], out=tmp_path, root=project, progress=False, log=lambda _: None)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--profile", "fast"], "parameter 'profile' = 'fast'; allowed profiles: ci, quick, paper"),
        (["run", "--seed", "-3"], "parameter 'seed' = -3"),
        (["run", "--device", "gpu0"], "parameter 'device' = 'gpu0'"),
        (["run", "no_such_chapter", "--profile", "ci"], "unknown chapter 'no_such_chapter'"),
    ],
)
def test_cli_reports_bad_input_once_with_exit_code_2(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("error:") == 1


def test_cli_lists_chapters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "chapters/intro"
