"""Execute the chapters with papermill into a staging book, then render it ("Running this book")."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import jupytext
import nbformat
import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from sphinx_external_toc.parsing import parse_toc_yaml
from tqdm import tqdm

from ..common import ConfigError, device_description, resolve_device
from .precompute import ONE_THREAD
from .headline import HEADLINE, HEADLINE_ENV
from .profiles import ChapterParams, validate_params

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
KERNEL_NAME = "nsdebook"
#: The kernel the downloadable notebooks name: any Jupyter with nsdelib installed runs them.
DOWNLOAD_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
#: Each chapter's measured run time in the last build, beside the executed notebooks.
CHAPTER_TIMES = "chapter_times.json"
#: The entry of ``chapter_times.json`` for the models ``nsdebook build`` trains on a local cluster before the chapters.
PRECOMPUTE_ENTRY = "models and sweeps (computed before the chapters)"
#: The entry of ``chapter_times.json`` for the whole ``nsdebook build``: its chapters may run side by side.
WHOLE_BUILD_ENTRY = "whole build (rendering included)"
#: Where a build's own outputs (chapter times, headline) are kept under ``results/<profile>/``, apart from records.
BUILD_COPY = "build"
#: Pages that show what the other chapters of the same build computed (their headline file): executed last.
READS_THE_BUILD = ("chapters/glance",)
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")
#: MathJax ships with the book (``_config.yml`` points ``mathjax_path`` at this copy), so maths renders offline.
MATHJAX_BUNDLE = "tex-mml-chtml.js"
MATHJAX_TARGET = Path("_mathjax") / "mathjax"
#: Hosts whose repository pages, issue trackers and Binder builds the header's buttons can open.
PUBLIC_HOSTS = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Chapters running side by side add their times to one file.
_TIMES_LOCK = threading.Lock()


class ChapterFailed(RuntimeError):
    """A chapter's cell raised; the message names the chapter and cell and carries the traceback."""


class BookBuildFailed(RuntimeError):
    """Jupyter Book reported an error or a Sphinx warning."""


def toc_entries(root: Path = REPO_ROOT) -> list[str]:
    """The documents of ``_toc.yml`` in reading order, as paths without extension."""
    return [str(Path(entry).with_suffix("")) for entry in parse_toc_yaml(root / "_toc.yml")]


def chapter_source(entry: str, root: Path = REPO_ROOT) -> Path:
    """The source of a toc entry: a jupytext ``.py`` notebook or a plain ``.md`` page."""
    for suffix in (".py", ".md"):
        if (root / f"{entry}{suffix}").exists():
            return root / f"{entry}{suffix}"
    raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.py nor {entry}.md exists")


def is_notebook(source: Path) -> bool:
    return source.suffix == ".py"


def check_parameters(notebook: nbformat.NotebookNode, name: str) -> None:
    """The chapter's one ``parameters`` cell must declare exactly the standard chapter parameters."""
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"chapter {name} must have exactly one cell tagged 'parameters', found {len(cells)}")
    declared = re.findall(r"^(\w+)\s*(?::[^=]+)?=", cells[0].source, flags=re.MULTILINE)
    expected = list(ChapterParams.model_fields)
    if sorted(declared) != sorted(expected):
        raise ConfigError(f"chapter {name} declares parameters {declared}; every chapter declares {expected}")


class LineEcho:
    """A file-like sink that passes each complete line to ``echo``; after a carriage return, the rest wins."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.echo(line.rsplit("\r", 1)[-1])
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.pending:
            self.echo(self.pending.rsplit("\r", 1)[-1])
            self.pending = ""


class IPCKernelManager(AsyncKernelManager):
    """The kernel on local IPC sockets in a private temporary folder: nothing listens on the network."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = str(Path(tempfile.mkdtemp(prefix="nsdebook-kernel-")) / "kernel")

    async def _async_interrupt_kernel(self) -> None:
        """No interrupt before a shutdown: it made kernels print "KeyboardInterrupt caught in kernel"."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()

    def cleanup_ipc_files(self) -> None:
        super().cleanup_ipc_files()
        shutil.rmtree(Path(self.ip).parent, ignore_errors=True)


def execute_chapter(source: Path, output: Path, params: ChapterParams, progress: bool = True, root: Path = REPO_ROOT,
                    echo: Callable[[str], None] | None = None) -> Path:
    """Execute one jupytext chapter into ``output``; ``echo`` receives each line it prints to stdout as it runs."""
    name = source.relative_to(root).as_posix() if source.is_relative_to(root) else source.name
    notebook = jupytext.read(source, fmt="py:percent")
    check_parameters(notebook, name)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (nsdebook)", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    stdout = LineEcho(echo) if echo else None
    try:
        # The kernel starts in ``root`` through nbclient's resources, not papermill's ``cwd``: that changes this
        # process's directory, and chapters run side by side in threads would leave it in another's (or a deleted) one.
        papermill.execute_notebook(notebook, str(output), parameters=params.model_dump(), kernel_name=KERNEL_NAME,
                                   progress_bar=progress, stdout_file=stdout, kernel_manager_class=IPCKernelManager,
                                   resources={"metadata": {"path": str(root)}})
    except PapermillExecutionError as exc:
        traceback = ANSI.sub("", "\n".join(exc.traceback))
        raise ChapterFailed(f"chapter {name} failed in cell {exc.exec_count} (cell index {exc.cell_index}):\n"
                            f"{exc.source}\n\n{exc.ename}: {exc.evalue}\n{traceback}") from None
    finally:
        if stdout is not None:
            stdout.close()
    executed = nbformat.read(output, as_version=4)  # for download: injected parameters hidden in the HTML, python3
    for cell in executed.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    executed.metadata["kernelspec"] = dict(DOWNLOAD_KERNELSPEC)
    nbformat.write(executed, output)
    return output


def repository_address(root: Path) -> str | None:
    """The https address of the git remote ``origin`` of ``root`` when it is on a public host, else None."""
    result = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True)
    match = re.fullmatch(r"(?:https://|ssh://git@|git@)([\w.-]+)[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?",
                         result.stdout.strip())
    if result.returncode != 0 or match is None or match.group(1) not in PUBLIC_HOSTS:
        return None
    return f"https://{match.group(1)}/{match.group(2)}"


def staged_config(path: Path, repository: str | None) -> None:
    """Point the staged ``_config.yml``'s header buttons at ``repository``, or leave them out without one."""
    config = yaml.safe_load(path.read_text())
    html = config.setdefault("html", {})
    if repository is None:
        config.pop("repository", None)
        config.pop("launch_buttons", None)
        html["use_repository_button"] = html["use_issues_button"] = False
    else:
        config["repository"] = {**config.get("repository", {}), "url": repository}
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def _match_entry(requested: str, entries: list[str]) -> str:
    """A toc entry by full path or by file stem (``ch01_signals``)."""
    if Path(requested).suffix in (".py", ".md", ".ipynb"):
        requested = str(Path(requested).with_suffix(""))
    matches = [e for e in entries if e == requested or Path(e).name == requested]
    if len(matches) != 1:
        raise ConfigError(f"unknown chapter {requested!r}; chapters in _toc.yml: {', '.join(entries)}")
    return matches[0]


def run_book(entries: list[str] | None = None, profile: str = "quick", seed: int = 0, device: str = "auto",
             out: Path = REPO_ROOT, root: Path = REPO_ROOT, progress: bool = True,
             log: Callable[[str], None] = tqdm.write, jobs: int = 1) -> Path:
    """Execute the toc entries (all by default) into ``out/_build/book`` and return it; ``jobs`` chapters at once,
    the pages that read the build last; the first failure stops the chapters not yet started."""
    params = validate_params(profile=profile, seed=seed, device=device)
    all_entries = toc_entries(root)
    chosen = all_entries if entries is None else [_match_entry(e, all_entries) for e in entries]
    stage = out / "_build" / "book"
    stage.mkdir(parents=True, exist_ok=True)
    for filename in BOOK_FILES:
        shutil.copy2(root / filename, stage / filename)
    if (root / "_static").is_dir():  # the book's CSS, which Jupyter Book loads
        shutil.copytree(root / "_static", stage / "_static", dirs_exist_ok=True)
    staged_config(stage / "_config.yml", repository_address(root))
    numbered = list(enumerate(sorted(chosen, key=lambda e: e in READS_THE_BUILD), start=1))
    from .provenance import RUN_COMMIT_ENV, git_commit

    environment = {HEADLINE_ENV: str((stage / HEADLINE).resolve()), RUN_COMMIT_ENV: git_commit(root),
                   **(ONE_THREAD if jobs > 1 else {})}

    def run(item: tuple[int, str]) -> None:
        run_entry(item[1], item[0], len(chosen), stage, params, progress and jobs == 1, root, log, named=jobs > 1)

    with mock.patch.dict(os.environ, environment):  # the kernels inherit it
        with ThreadPoolExecutor(max(jobs, 1)) as pool:
            futures = [pool.submit(run, item) for item in numbered if item[1] not in READS_THE_BUILD]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in futures:
                if future in done and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
        for item in numbered:
            if item[1] in READS_THE_BUILD:
                run(item)
    return stage


def run_entry(entry: str, index: int, total: int, stage: Path, params: ChapterParams, progress: bool, root: Path,
              log: Callable[[str], None], named: bool = False) -> None:
    """Execute one chapter into ``stage`` and record its time, or copy a Markdown page; ``named``: lines name it."""
    source = chapter_source(entry, root)
    if not is_notebook(source):
        (stage / entry).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, stage / f"{entry}.md")
        return
    log(f"[{index}/{total}] {entry}  (profile={params.profile}, seed={params.seed}, device={params.device})")
    name = f"{Path(entry).name}: " if named else ""
    start = time.perf_counter()
    execute_chapter(source, stage / f"{entry}.ipynb", params, progress, root, lambda line: log(f"    {name}{line}"))
    seconds = time.perf_counter() - start
    log(f"    {name}done in {seconds:.1f} s")
    with _TIMES_LOCK:
        record_chapter_time(stage / CHAPTER_TIMES, entry, seconds, params, root)


def record_chapter_time(path: Path, entry: str, seconds: float, params: ChapterParams, root: Path = REPO_ROOT) -> None:
    """Add one chapter's run time, and where it ran, to ``chapter_times.json`` (a file of another profile replaced)."""
    from .provenance import git_commit

    times = json.loads(path.read_text()) if path.is_file() else {}
    if times.get("profile") != params.profile:
        times = {"profile": params.profile, "seconds": {}}
    times.update(seed=params.seed, device=device_description(resolve_device(params.device)),
                 cores=len(os.sched_getaffinity(0)), commit=git_commit(root),
                 date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    times["seconds"][entry] = round(seconds, 1)
    path.write_text(json.dumps(times, indent=1) + "\n")


def copy_mathjax(target: Path) -> None:
    """Copy MathJax's TeX bundle and the components it loads on demand (fonts, extensions) to ``target``."""
    if (target / MATHJAX_BUNDLE).exists():
        return
    source = Path(str(resources.files("mathjax").joinpath("static", "mathjax", "es5")))
    for folder in (path for path in source.iterdir() if path.is_dir()):
        shutil.copytree(folder, target / folder.name, dirs_exist_ok=True)
    shutil.copy2(source / MATHJAX_BUNDLE, target / MATHJAX_BUNDLE)  # last: it marks a complete copy


def build_html(stage: Path, out: Path = REPO_ROOT, log: Callable[[str], None] = print) -> Path:
    """Render the staged book to ``out/_build/html``; any Sphinx warning fails the build."""
    missing = [e for e in toc_entries(stage) if not any((stage / f"{e}{s}").exists() for s in (".ipynb", ".md"))]
    if missing:
        raise BookBuildFailed(f"these chapters have not been executed yet: {', '.join(missing)}")
    copy_mathjax(stage / MATHJAX_TARGET)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(stage), "--path-output", str(out),
               "--warningiserror", "--nitpick", "--keep-going"]
    log("rendering the book with Jupyter Book ...")
    result = subprocess.run(command, capture_output=True, text=True)
    output = ANSI.sub("", result.stdout + result.stderr)
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    if result.returncode != 0 or warnings:
        raise BookBuildFailed("Jupyter Book failed:\n" + ("\n".join(warnings) or output[-4000:]))
    index = out / "_build" / "html" / "index.html"
    log(f"book written to {index}")
    return index
