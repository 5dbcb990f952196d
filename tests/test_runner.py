"""The chapter runner and CLI: toc order, parameter checks, failing cells reported with their traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from nsdelib.book import runner
from nsdelib.book.cli import main
from nsdelib.book.profiles import validate_params
from nsdelib.book.runner import (
    CHAPTER_TIMES,
    BookBuildFailed,
    ChapterFailed,
    build_html,
    record_chapter_time,
    run_book,
    toc_entries,
)
from nsdelib.common import ConfigError

HEADER = "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       format_name: percent\n# ---\n"
PARAMS = '# %% tags=["parameters"]\nprofile = "quick"\nseed = 0\ndevice = "auto"\n'


def make_project(root: Path, chapters: dict[str, str]) -> Path:
    """A minimal book: a toc listing ``chapters`` (stem -> body after the parameters cell)."""
    (root / "chapters").mkdir(parents=True)
    toc = {"format": "jb-book", "root": "chapters/" + next(iter(chapters))}
    if len(chapters) > 1:
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


def test_the_kernel_talks_over_local_sockets_and_leaves_nothing_behind(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    project = make_project(tmp_path / "book", {"only": "# %%\nprint('ran')\n"})
    run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None)
    assert "without encryption" not in capfd.readouterr().err, "ipykernel warned of a TCP kernel"
    assert list((tmp_path / "tmp").iterdir()) == [], "the kernel's sockets and their folder are removed"


def test_a_kernel_is_interrupted_on_request_but_not_on_its_way_to_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    interrupted: list[bool] = []

    async def interrupt(manager: runner.IPCKernelManager) -> None:
        interrupted.append(manager.shutting_down)

    monkeypatch.setattr(runner.AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    manager = runner.IPCKernelManager()
    for shutting_down in (False, True):
        manager.shutting_down = shutting_down
        asyncio.run(manager._async_interrupt_kernel())
    manager.cleanup_ipc_files()
    assert interrupted == [False], "an idle kernel interrupted before its shutdown prints a KeyboardInterrupt"


def test_chapter_stdout_is_streamed_while_it_runs_but_not_its_stderr(tmp_path: Path) -> None:
    seen = tmp_path / "seen"  # written by the log when the first epoch line arrives; the chapter waits for it
    body = f"""\
    # %%
    import sys
    for epoch in range(2):
        print(f"epoch {{epoch + 1}}: loss 0.5")
        print(f"progress bar {{epoch + 1}}/2", file=sys.stderr)
    print("partial", end="")
    print(" line\\rrewritten line")

    # %%
    import pathlib, time
    deadline = time.monotonic() + 30
    while not pathlib.Path({str(seen)!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pathlib.Path({str(seen)!r}).exists()
    """
    project = make_project(tmp_path / "book", {"train": body})
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if "epoch 1" in line:
            seen.touch()

    stage = run_book(profile="ci", out=tmp_path, root=project, progress=False, log=log)
    assert lines[1:] == ["    epoch 1: loss 0.5", "    epoch 2: loss 0.5", "    rewritten line", lines[-1]]
    assert re.fullmatch(r"    done in \d+\.\d s", lines[-1])
    executed = json.loads((stage / "chapters" / "train.ipynb").read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    streams = {o["name"]: "".join(o["text"]) for o in outputs if o["output_type"] == "stream"}
    assert streams["stdout"] == "epoch 1: loss 0.5\nepoch 2: loss 0.5\npartial line\rrewritten line\n"
    assert streams["stderr"] == "progress bar 1/2\nprogress bar 2/2\n", "the notebook keeps it all"
    assert "".join(outputs[-1]["data"]["text/plain"]) == "True", "the first line reached the log while the chapter ran"


def test_chapters_run_side_by_side_on_one_thread_each_and_the_page_that_reads_the_build_runs_last(
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def waits_for(me: str, other: str) -> str:
        """A chapter that marks its start, waits for ``other`` to start too, and marks its end."""
        return f"""\
        # %%
        import os, pathlib, time
        marks = pathlib.Path({str(marks)!r})
        (marks / "{me}").touch()
        deadline = time.monotonic() + 60
        while not (marks / "{other}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print((marks / "{other}").exists(), os.environ.get("OMP_NUM_THREADS"))
        (marks / "{me}.done").touch()
        """

    glance = f"# %%\nimport pathlib\nprint(sorted(p.name for p in pathlib.Path({str(marks)!r}).iterdir()))\n"
    project = make_project(tmp_path / "book", {"a": waits_for("a", "b"), "glance": glance, "b": waits_for("b", "a")})
    lines: list[str] = []
    stage = run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lines.append, jobs=2)

    def printed(stem: str) -> str:
        executed = json.loads((stage / "chapters" / f"{stem}.ipynb").read_text())
        return "".join(text for c in executed["cells"] for o in c.get("outputs", []) for text in o.get("text", ""))

    assert printed("a") == printed("b") == "True 1\n", "both ran at once, each kernel on one thread"
    assert printed("glance") == "['a', 'a.done', 'b', 'b.done']\n", "the glance page ran after both had finished"
    assert "    a: True 1" in lines and "    b: True 1" in lines, "interleaved lines name their chapter"
    times = json.loads((stage / CHAPTER_TIMES).read_text())["seconds"]
    assert set(times) == {"chapters/a", "chapters/b", "chapters/glance"}


def test_kernels_start_in_the_project_and_the_runner_never_changes_its_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Side by side chapters run in threads: a ``chdir`` in one would move the others (CI once ran on in a deleted
    folder). Papermill may still "change" to the directory it is in while it writes a notebook."""
    here = Path.cwd()
    chdir = os.chdir

    def moved(path: str) -> None:
        assert Path(path) == here, f"the runner changed the process's directory to {path}"
        chdir(path)

    chapter = "# %%\nimport os\nprint(os.getcwd())\n"
    project = make_project(tmp_path / "book", {"a": chapter, "b": chapter})
    monkeypatch.setattr(os, "chdir", moved)
    stage = run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None, jobs=2)
    for stem in ("a", "b"):
        executed = json.loads((stage / "chapters" / f"{stem}.ipynb").read_text())
        printed = "".join(text for c in executed["cells"] for o in c.get("outputs", []) for text in o.get("text", ""))
        assert printed == f"{project}\n"


def test_a_failing_chapter_among_side_by_side_ones_is_named_and_the_last_page_not_run(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"good": "# %%\nx = 1\n", "glance": "# %%\nx = 2\n",
                                               "bad": "# %%\nraise ValueError('no spectrogram')\n"})
    with pytest.raises(ChapterFailed, match="chapter chapters/bad.py failed"):
        run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None, jobs=2)
    assert not (tmp_path / "_build" / "book" / "chapters" / "glance.ipynb").exists()


def test_executed_notebook_hides_injected_parameters_and_names_python3(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"plot": '# %% tags=["hide-input"]\nx = 1\n'})
    stage = run_book(profile="ci", seed=3, out=tmp_path, root=project, progress=False, log=lambda _: None)
    executed = json.loads((stage / "chapters" / "plot.ipynb").read_text())
    assert executed["metadata"]["kernelspec"] == {"name": "python3", "display_name": "Python 3", "language": "python"}
    tags = [c["metadata"].get("tags", []) for c in executed["cells"]]
    assert tags == [["parameters"], ["injected-parameters", "remove-cell"], ["hide-input"]]
    assert "seed = 3" in "".join(executed["cells"][1]["source"])


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


@pytest.mark.parametrize(
    ("cell", "declared"),
    [('profile = "ci"\nseed = 0\n', "['profile', 'seed']"),
     ('profile = "ci"\nseed = 0\ndevice = "cpu"\nepochs = 3\n', "['profile', 'seed', 'device', 'epochs']")],
    ids=["device missing", "epochs extra"],
)
def test_chapter_declaring_other_parameters_is_rejected(tmp_path: Path, cell: str, declared: str) -> None:
    project = make_project(tmp_path / "book", {"ok": "# %%\n1\n"})
    (project / "chapters" / "ok.py").write_text(HEADER + '# %% tags=["parameters"]\n' + cell)
    standard = ["profile", "seed", "device"]
    expected = f"chapter chapters/ok.py declares parameters {declared}; every chapter declares {standard}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None)


def test_toc_entry_without_a_source_is_reported(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"only": "# %%\n1\n"})
    (project / "_toc.yml").write_text(json.dumps({"format": "jb-book", "root": "chapters/ghost",
                                                  "chapters": [{"file": "chapters/only"}]}))
    with pytest.raises(FileNotFoundError, match="_toc.yml lists 'chapters/ghost' but neither chapters/ghost.py nor"):
        run_book(profile="ci", out=tmp_path, root=project, progress=False, log=lambda _: None)


def test_rendering_refuses_a_stage_with_unexecuted_chapters(tmp_path: Path) -> None:
    stage = make_project(tmp_path / "stage", {"first": "# %%\n1\n", "second": "# %%\n2\n"})
    (stage / "chapters" / "first.md").write_text("# First\n")
    with pytest.raises(BookBuildFailed, match="have not been executed yet: chapters/second$"):
        build_html(stage, out=tmp_path, log=lambda _: None)


def test_rendering_fails_on_any_sphinx_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = make_project(tmp_path / "stage", {"first": "# %%\n1\n"})
    (stage / "chapters" / "first.md").write_text("# First\n")
    output = "building [html]\nfirst.md:3: WARNING: undefined label: 'x'\nbuild succeeded.\n"
    # exit code 0: the warning alone must fail the build
    monkeypatch.setattr(runner.subprocess, "run", lambda args, **_: subprocess.CompletedProcess(args, 0, output, ""))
    with pytest.raises(BookBuildFailed, match=r"Jupyter Book failed:\nfirst.md:3: WARNING: undefined label: 'x'$"):
        build_html(stage, out=tmp_path, log=lambda _: None)


def test_unknown_chapter_is_rejected(tmp_path: Path) -> None:
    project = make_project(tmp_path / "book", {"only": "# %%\n1\n"})
    with pytest.raises(ConfigError, match=r"unknown chapter 'nope'; chapters in _toc.yml: chapters/only"):
        run_book(entries=["nope"], out=tmp_path, root=project, progress=False, log=lambda _: None)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--profile", "fast"], "parameter 'profile' = 'fast': Input should be 'ci', 'quick' or 'paper'"),
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


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--jobs", "2"], "--jobs, --gpus-per-job and --sbatch apply to --cluster slurm only"),
        (["--scheduler-file", "/nonexistent.json"],
         "scheduler file /nonexistent.json does not exist; start one with `dask scheduler --scheduler-file "
         "/nonexistent.json`"),
        (["--profile", "ci", "--record"], "the ci profile takes σ from paper's calibration; record the calibration at 'quick' or 'paper'"),
    ],
)
def test_calibrate_reports_bad_input_with_exit_code_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", *argv]) == 2
    assert re.search(f"^nsdebook: error: {fragment}$", capsys.readouterr().err, flags=re.MULTILINE)


def test_cli_lists_chapters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "chapters/intro"


def test_chapter_times_accumulate_per_profile_with_where_they_were_measured(tmp_path: Path) -> None:
    path = tmp_path / CHAPTER_TIMES
    ci = validate_params(profile="ci", seed=0, device="cpu")
    record_chapter_time(path, "ch03_training", 12.34, ci)
    record_chapter_time(path, "ch04_noise_robustness", 5.0, ci)
    times = json.loads(path.read_text())
    assert times["seconds"] == {"ch03_training": 12.3, "ch04_noise_robustness": 5.0}
    assert times["profile"] == "ci" and times["device"].startswith("CPU") and times["cores"] >= 1 and times["commit"]
    record_chapter_time(path, "ch03_training", 60.0, validate_params(profile="quick", seed=0, device="cpu"))
    assert json.loads(path.read_text())["seconds"] == {"ch03_training": 60.0}, "another profile's times are replaced"
