"""The library's import graph, read from its source (relative imports only): what the layout test checks."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "nsdelib"


def module_path(module: str) -> Path:
    """The source file of ``nsdelib.<module>`` (``module`` dotted, e.g. ``"training.trainer"``)."""
    base = PACKAGE_DIR.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def module_names() -> list[str]:
    """Every module of the package, dotted and relative to it (``"__init__"`` for the top), sorted."""
    names = []
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        names.append(".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts))
    return sorted(names)


def imported_modules(module: str, type_only: bool = False) -> set[str]:
    """The ``nsdelib`` modules that ``module`` imports (relative imports, resolved to dotted names).

    Imports under ``if TYPE_CHECKING:`` count only with ``type_only=True``: they do not run, so they
    do not change what an artifact depends on, but they still count as a dependency of the layout.
    """
    path = module_path(module)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    known = set(module_names())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not type_only and isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            anchor = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            base = [*anchor, *(node.module.split(".") if node.module else [])]
            for alias in node.names:
                candidate = ".".join([*base, alias.name])
                if candidate in known:
                    found.add(candidate)
                elif base:
                    found.add(".".join(base))
                else:
                    found.add("__init__")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {module}
