"""Execute the book's chapters with papermill and render them with Jupyter Book.

Chapters are jupytext text sources (``chapters/*.py``, percent format) without outputs. The runner
reads each with jupytext, injects the chapter parameters with papermill into the registered
``nsdebook`` kernel, streams what the chapter prints to the terminal while it runs, and writes the
executed notebook into a staging copy of the book under ``_build/book/``. Jupyter Book then renders
that staging copy (``execute_notebooks: "off"``), so the HTML shows exactly the outputs the runner
produced and readers can download the executed notebooks, which name the standard ``python3`` kernel.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from tqdm import tqdm

from ..common.errors import ConfigError
from .profiles import ChapterParams, validate_params

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
KERNEL_NAME = "nsdebook"
# The kernel the downloadable notebooks name: any Jupyter with nsdelib installed runs them.
DOWNLOAD_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")
# MathJax (from the PyPI package django-static-mathjax) ships with the book: ``_config.yml`` copies
# _mathjax/ to the HTML root and points ``mathjax_path`` at it, so the maths renders offline too.
MATHJAX_BUNDLE = "tex-mml-chtml.js"
MATHJAX_TARGET = Path("_mathjax") / "mathjax"
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


class LineEcho:
    """A file-like sink for papermill's ``stdout_file``: passes each complete line to ``echo``.

    Text after the last carriage return of a line wins, as on a terminal; ``close`` passes on the
    unfinished last line.
    """

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.pending = ""

    def write(self, text: str) -> int:
        """Buffer ``text`` and echo the lines it completes."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.echo(line.rsplit("\r", 1)[-1])
        return len(text)

    def flush(self) -> None:
        """Nothing to do: lines are echoed as soon as they are complete."""

    def close(self) -> None:
        """Echo the unfinished last line, if any."""
        if self.pending:
            self.echo(self.pending.rsplit("\r", 1)[-1])
            self.pending = ""


def prepare_for_download(path: Path) -> None:
    """Hide papermill's injected parameters cell in the HTML and name the standard ``python3`` kernel.

    The chapter's own ``parameters`` cell stays visible; the injected cell (``remove-cell``) stays in
    the notebook, so a downloaded notebook reruns with the parameters the book was built with.
    """
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    notebook.metadata["kernelspec"] = dict(DOWNLOAD_KERNELSPEC)
    nbformat.write(notebook, path)


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
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Execute one jupytext chapter with ``params`` and write the executed ``.ipynb`` to ``output``.

    The ``nsdebook`` kernel runs it; ``echo`` (if given) receives each line the chapter prints to
    stdout while it runs (stderr, where progress bars go, is not echoed). The notebook written names
    the ``python3`` kernel and hides the injected parameters (:func:`prepare_for_download`).
    """
    name = source.relative_to(root).as_posix() if source.is_relative_to(root) else source.name
    notebook = jupytext.read(source, fmt="py:percent")
    check_parameters(notebook, name, params)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (nsdebook)", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    stdout = LineEcho(echo) if echo else None
    try:
        papermill.execute_notebook(
            notebook,
            str(output),
            parameters=params.model_dump(),
            kernel_name=KERNEL_NAME,
            progress_bar=progress,
            stdout_file=stdout,
            cwd=str(root),
            kernel_manager_class=IPCKernelManager,
        )
    except PapermillExecutionError as exc:
        raise ChapterFailed(_failure_message(name, exc)) from None
    finally:
        if stdout is not None:
            stdout.close()
    prepare_for_download(output)
    return output


#: Public hosts whose repository pages, issue trackers and Binder builds the book's header buttons can open.
PUBLIC_HOSTS = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")


def repository_address(root: Path) -> str | None:
    """The https address of the git remote ``origin`` of ``root`` when it is on a public host, else None."""
    result = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True)
    match = re.fullmatch(r"(?:https://|ssh://git@|git@)([\w.-]+)[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?",
                         result.stdout.strip())
    if result.returncode != 0 or match is None or match.group(1) not in PUBLIC_HOSTS:
        return None
    return f"https://{match.group(1)}/{match.group(2)}"


def staged_config(path: Path, repository: str | None) -> None:
    """Point the staged ``_config.yml`` at ``repository`` (the header's source, issue and Binder buttons), or,
    without a public repository, leave those buttons out instead of linking an address that does not exist."""
    config = yaml.safe_load(path.read_text())
    html = config.setdefault("html", {})
    if repository is None:
        config.pop("repository", None)
        config.pop("launch_buttons", None)
        html["use_repository_button"] = html["use_issues_button"] = False
    else:
        config["repository"] = {**config.get("repository", {}), "url": repository}
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


class IPCKernelManager(AsyncKernelManager):
    """The chapters' kernel on local IPC sockets in a private temporary folder instead of TCP ports: nothing
    listens on the network, and ipykernel has no unencrypted-transport warning to print."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = str(Path(tempfile.mkdtemp(prefix="nsdebook-kernel-")) / "kernel")

    def cleanup_ipc_files(self) -> None:
        """Remove the sockets and their folder once the kernel is gone."""
        super().cleanup_ipc_files()
        shutil.rmtree(Path(self.ip).parent, ignore_errors=True)


def run_book(
    entries: list[str] | None = None,
    profile: str = "quick",
    seed: int = 0,
    device: str = "auto",
    out: Path = REPO_ROOT,
    root: Path = REPO_ROOT,
    progress: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> Path:
    """Execute the given toc entries (all of ``_toc.yml`` by default) into ``out/_build/book``.

    Markdown pages and the book's config files are copied beside the executed notebooks so the
    staging folder is a complete Jupyter Book project. What a chapter prints
    goes to ``log`` as it runs, indented under the chapter's name (``tqdm.write`` keeps it clear of
    the cell progress bar). Returns the staging folder.
    """
    params = validate_params(profile=profile, seed=seed, device=device)
    all_entries = toc_entries(root)
    chosen = all_entries if entries is None else [_match_entry(e, all_entries) for e in entries]
    stage = out / "_build" / "book"
    stage.mkdir(parents=True, exist_ok=True)
    for filename in BOOK_FILES:
        shutil.copy2(root / filename, stage / filename)
    staged_config(stage / "_config.yml", repository_address(root))
    for index, entry in enumerate(chosen, start=1):
        source = chapter_source(entry, root)
        target = stage / (entry + (".ipynb" if is_notebook(source) else ".md"))
        if not is_notebook(source):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            continue
        log(f"[{index}/{len(chosen)}] {entry}  (profile={params.profile}, seed={params.seed}, device={params.device})")
        start = time.perf_counter()
        execute_chapter(source, target, params, progress=progress, root=root, echo=lambda line: log(f"    {line}"))
        log(f"    done in {time.perf_counter() - start:.1f} s")
    return stage


def copy_mathjax(target: Path) -> None:
    """Copy MathJax's TeX bundle and the components it loads on demand (fonts, extensions) to ``target``."""
    if (target / MATHJAX_BUNDLE).exists():
        return
    source = Path(str(resources.files("mathjax").joinpath("static", "mathjax", "es5")))
    for folder in (path for path in source.iterdir() if path.is_dir()):
        shutil.copytree(folder, target / folder.name, dirs_exist_ok=True)
    shutil.copy2(source / MATHJAX_BUNDLE, target / MATHJAX_BUNDLE)  # last: it marks a complete copy


def _match_entry(requested: str, entries: list[str]) -> str:
    """Accept a toc entry by full path or by file stem (``ch01_signals``)."""
    requested = str(Path(requested).with_suffix("")) if Path(requested).suffix in (".py", ".md", ".ipynb") else requested
    matches = [e for e in entries if e == requested or Path(e).name == requested]
    if len(matches) != 1:
        raise ConfigError(f"unknown chapter {requested!r}; chapters in _toc.yml: {', '.join(entries)}")
    return matches[0]


def build_html(stage: Path, out: Path = REPO_ROOT, log: Callable[[str], None] = print) -> Path:
    """Render the staged book (with its own copy of MathJax) to ``out/_build/html``; any Sphinx warning fails."""
    missing = [e for e in toc_entries(stage) if not any((stage / f"{e}{s}").exists() for s in (".ipynb", ".md"))]
    if missing:
        raise BookBuildFailed(f"these chapters have not been executed yet: {', '.join(missing)}")
    copy_mathjax(stage / MATHJAX_TARGET)
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
