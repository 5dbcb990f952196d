"""The library's layout is the pipeline: stages import only the stages before them, chapters only call."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import import_graph as graph_source
from import_graph import imported_modules, module_names

#: The stages in the order of the data flow; a module may import its own stage and the ones before it.
STAGES = ("common", "data", "models", "training", "evaluation", "report", "claims", "book")
HEAVY = ("timm", "torchsde", "torchattacks", "captum", "torchvision", "papermill", "jupytext")


def stage_of(module: str) -> int:
    """The position of a module's stage; the package's own ``__init__``/``__main__`` sit on top."""
    head = module.split(".")[0]
    return STAGES.index(head) if head in STAGES else len(STAGES)


def import_graph() -> dict[str, set[str]]:
    """Every module's imports of other nsdelib modules, type-only imports included."""
    return {name: imported_modules(name, type_only=True) for name in module_names()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_module_belongs_to_a_stage() -> None:
    strays = [m for m in module_names() if m not in ("__init__", "__main__") and m.split(".")[0] not in STAGES]
    assert not strays, f"modules outside the stage packages: {strays}"


def test_imports_form_no_cycle_counting_type_only_imports() -> None:
    assert find_cycle(import_graph()) is None, f"import cycle: {' -> '.join(find_cycle(import_graph()) or [])}"


def test_no_stage_imports_a_later_stage() -> None:
    upward = [(m, dep) for m, deps in import_graph().items() for dep in deps if stage_of(dep) > stage_of(m)]
    assert not upward, f"imports against the data flow: {upward}"


def test_the_checks_catch_a_cycle_and_an_upward_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert stage_of("data.dataset") < stage_of("evaluation.attacks") < stage_of("book.runner")


def test_type_only_imports_are_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    (package / "data").mkdir(parents=True)
    (package / "book").mkdir()
    for init in ("data/__init__.py", "book/__init__.py", "book/context.py"):
        (package / init).write_text("")
    (package / "data" / "dataset.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..book.context import Context\n"
    )
    monkeypatch.setattr(graph_source, "PACKAGE_DIR", package)
    assert imported_modules("data.dataset") == set()
    assert imported_modules("data.dataset", type_only=True) == {"book.context"}


def test_the_data_stage_loads_no_model_attack_or_attribution_code() -> None:
    code = (
        "import sys, nsdelib.data.dataset, nsdelib.data.reference\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
        "print(sorted(m for m in sys.modules if m.startswith('nsdelib.') and not m.startswith(('nsdelib.data', "
        "'nsdelib.common'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", f"the data stage imported {out[0]}"
    assert out[1] == "[]", f"the data stage imported later stages: {out[1]}"


@pytest.mark.parametrize("chapter", sorted(p.name for p in (Path(__file__).parent.parent / "chapters").glob("*.py")))
def test_chapters_define_no_function_or_class(chapter: str, repo_root: Path) -> None:
    tree = ast.parse((repo_root / "chapters" / chapter).read_text())
    defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert not defined, f"{chapter} defines {defined}: move them into nsdelib, where tests cover them"
    assert not asserts, f"{chapter} asserts on lines {asserts}: checks belong in nsdelib, with tests"


#: Chapters whose code is the lesson (signals, the SDE solver) may show more of it.
CODE_IS_THE_LESSON = ("ch01_signals.py", "ch02_nsde_theory.py")
MAX_VISIBLE_CODE_LINES = 70


def visible_code_lines(source: str) -> int:
    """Non-blank lines of the code cells a reader sees (cells not tagged remove-input, hide-input or remove-cell)."""
    count = 0
    for cell in re.split(r"^# %%", source, flags=re.M)[1:]:
        header, _, body = cell.partition("\n")
        if "[markdown]" in header or any(tag in header for tag in ("remove-input", "hide-input", "remove-cell")):
            continue
        count += sum(1 for line in body.splitlines() if line.strip())
    return count


def test_visible_code_lines_counts_only_shown_code_cells() -> None:
    source = "# %% [markdown]\n# text\n\n# %%\nx = 1\n\ny = 2\n# %% tags=[\"remove-input\"]\nz = 3\n"
    assert visible_code_lines(source) == 2


@pytest.mark.parametrize("chapter", sorted(p.name for p in (Path(__file__).parent.parent / "chapters").glob("ch*.py")
                                           if p.name not in CODE_IS_THE_LESSON))
def test_chapters_show_science_not_plumbing(chapter: str, repo_root: Path) -> None:
    shown = visible_code_lines((repo_root / "chapters" / chapter).read_text())
    assert shown <= MAX_VISIBLE_CODE_LINES, (
        f"{chapter} shows {shown} lines of code; hide imports and glue cells (tags remove-input) and move "
        f"plumbing into nsdelib so that at most {MAX_VISIBLE_CODE_LINES} remain")
