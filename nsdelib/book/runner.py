"""Execute the book's chapters with papermill and render them with Jupyter Book.

Chapters are jupytext text sources (``chapters/*.py``, percent format) without outputs. The runner
reads each with jupytext, injects the chapter parameters with papermill into the registered
``nsdebook`` kernel, and writes the executed notebook into a staging copy of the book under
``_build/book/``. Jupyter Book then renders that staging copy (``execute_notebooks: "off"``), so the
HTML shows exactly the outputs the runner produced and readers can download the executed notebooks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import papermill
import yaml
from papermill.exceptions import PapermillExecutionError

from ..common.errors import ConfigError
from .profiles import ChapterParams, validate_params

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
KERNEL_NAME = "nsdebook"
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ChapterFailed(RuntimeError):
    """A chapter's cell raised; the message names the chapter and cell and carries the traceback."""


class BookBuildFailed(RuntimeError):
    """Jupyter Book reported an error or a Sphinx warning."""


def toc_entries(root: Path = REPO_ROOT) -> list[str]:
    """The documents of ``_toc.yml`` in reading order, as paths without extension."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())

    def walk(node: dict[str, Any]) -> Iterator[str]:
        if "file" in node:
            yield node["file"]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []):
                yield from walk(child)

    entries = [toc["root"], *walk(toc)]
    return [str(Path(entry).with_suffix("")) if Path(entry).suffix else entry for entry in entries]


def chapter_source(entry: str, root: Path = REPO_ROOT) -> Path:
    """The source file of a toc entry: a jupytext ``.py`` notebook or a plain ``.md`` page."""
    for suffix in (".py", ".md"):
        candidate = root / f"{entry}{suffix}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.py nor {entry}.md exists")


def is_notebook(source: Path) -> bool:
    """Whether a source is executed (jupytext notebook) rather than copied (markdown page)."""
    return source.suffix == ".py"


def declared_parameters(notebook: nbformat.NotebookNode, name: str) -> list[str]:
    """Names assigned in the notebook's single ``parameters`` cell; anything else is an error."""
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"chapter {name} must have exactly one cell tagged 'parameters', found {len(cells)}")
    return re.findall(r"^(\w+)\s*(?::[^=]+)?=", cells[0].source, flags=re.MULTILINE)


def check_parameters(notebook: nbformat.NotebookNode, name: str, params: ChapterParams) -> None:
    """The chapter must declare exactly the standard chapter parameters (profile, seed, device)."""
    declared = declared_parameters(notebook, name)
    expected = list(ChapterParams.model_fields)
    if sorted(declared) != sorted(expected):
        raise ConfigError(f"chapter {name} declares parameters {declared}; every chapter declares {expected}")


def _failure_message(name: str, exc: PapermillExecutionError) -> str:
    traceback = ANSI.sub("", "\n".join(exc.traceback))
    return (
        f"chapter {name} failed in cell {exc.exec_count} (cell index {exc.cell_index}):\n"
        f"{exc.source}\n\n{exc.ename}: {exc.evalue}\n{traceback}"
    )


def execute_chapter(
    source: Path,
    output: Path,
    params: ChapterParams,
    progress: bool = True,
    root: Path = REPO_ROOT,
) -> Path:
    """Execute one jupytext chapter with ``params`` and write the executed ``.ipynb`` to ``output``."""
    name = source.relative_to(root).as_posix() if source.is_relative_to(root) else source.name
    notebook = jupytext.read(source, fmt="py:percent")
    check_parameters(notebook, name, params)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (nsdebook)", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            notebook,
            str(output),
            parameters=params.model_dump(),
            kernel_name=KERNEL_NAME,
            progress_bar=progress,
            cwd=str(root),
        )
    except PapermillExecutionError as exc:
        raise ChapterFailed(_failure_message(name, exc)) from None
    return output


def run_book(
    entries: list[str] | None = None,
    profile: str = "quick",
    seed: int = 0,
    device: str = "auto",
    out: Path = REPO_ROOT,
    root: Path = REPO_ROOT,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Execute the given toc entries (all of ``_toc.yml`` by default) into ``out/_build/book``.

    Markdown pages and the book's config files are copied beside the executed notebooks so the
    staging folder is a complete Jupyter Book project. Returns the staging folder.
    """
    params = validate_params(profile=profile, seed=seed, device=device)
    all_entries = toc_entries(root)
    chosen = all_entries if entries is None else [_match_entry(e, all_entries) for e in entries]
    stage = out / "_build" / "book"
    stage.mkdir(parents=True, exist_ok=True)
    for filename in BOOK_FILES:
        shutil.copy2(root / filename, stage / filename)
    for index, entry in enumerate(chosen, start=1):
        source = chapter_source(entry, root)
        target = stage / (entry + (".ipynb" if is_notebook(source) else ".md"))
        if not is_notebook(source):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            continue
        log(f"[{index}/{len(chosen)}] {entry}  (profile={params.profile}, seed={params.seed}, device={params.device})")
        start = time.perf_counter()
        execute_chapter(source, target, params, progress=progress, root=root)
        log(f"    done in {time.perf_counter() - start:.1f} s")
    return stage


def _match_entry(requested: str, entries: list[str]) -> str:
    """Accept a toc entry by full path or by file stem (``ch01_signals``)."""
    requested = str(Path(requested).with_suffix("")) if Path(requested).suffix in (".py", ".md", ".ipynb") else requested
    matches = [e for e in entries if e == requested or Path(e).name == requested]
    if len(matches) != 1:
        raise ConfigError(f"unknown chapter {requested!r}; chapters in _toc.yml: {', '.join(entries)}")
    return matches[0]


def build_html(stage: Path, out: Path = REPO_ROOT, log: Callable[[str], None] = print) -> Path:
    """Render the staged book to ``out/_build/html`` with Jupyter Book; any Sphinx warning fails."""
    missing = [e for e in toc_entries(stage) if not any((stage / f"{e}{s}").exists() for s in (".ipynb", ".md"))]
    if missing:
        raise BookBuildFailed(f"these chapters have not been executed yet: {', '.join(missing)}")
    command = [
        str(Path(sys.executable).parent / "jupyter-book"), "build", str(stage),
        "--path-output", str(out), "--warningiserror", "--nitpick", "--keep-going",
    ]
    log("rendering the book with Jupyter Book ...")
    result = subprocess.run(command, capture_output=True, text=True)
    output = ANSI.sub("", result.stdout + result.stderr)
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    if result.returncode != 0 or warnings:
        raise BookBuildFailed("Jupyter Book failed:\n" + ("\n".join(warnings) or output[-4000:]))
    index = out / "_build" / "html" / "index.html"
    log(f"book written to {index}")
    return index
