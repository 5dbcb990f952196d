"""The artifact store: expensive results (datasets, checkpoints, sweeps) cached on disk.

An artifact is addressed by its *kind* (``"dataset"``, ``"checkpoint"``, ...) and a hash of its
config together with the library's fingerprint, so a changed config or a changed library never
reads a stale file. Files are written atomically (temporary file, fsync, rename) and their SHA-256
is recorded in a sidecar ``.meta.json`` written last; reads verify it. ``fetch`` rebuilds, with a
warning, an artifact that is missing, corrupt or stale, and never overwrites a good one in place.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel

from .errors import ArtifactCorrupt, ArtifactMissing, ArtifactStale

T = TypeVar("T")
#: Bump to invalidate every stored artifact at once (a change of file format, say).
STORE_FORMAT = 2
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "_artifacts"


PACKAGE_DIR = Path(__file__).resolve().parent.parent


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


def module_closure(module: str) -> list[str]:
    """``module`` and every ``nsdelib`` module it depends on at run time, sorted."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported_modules(name) - seen)
    return sorted(seen)


def library_fingerprint(module: str | None = None) -> str:
    """Hash of the store format and of the sources an artifact depends on.

    With ``module`` (e.g. ``"training.trainer"``) only that module and what it imports count, so
    editing the attack code does not invalidate trained models; without it, every source file counts.
    """
    names = module_closure(module) if module else module_names()
    digest = hashlib.sha256(str(STORE_FORMAT).encode())
    for name in names:
        digest.update(name.encode())
        digest.update(module_path(name).read_bytes())
    return f"{STORE_FORMAT}+{digest.hexdigest()[:12]}"


LIBRARY_FINGERPRINT = library_fingerprint()


def canonical_config(config: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A config as plain JSON-ready data with a stable key order."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def config_hash(config: BaseModel | Mapping[str, Any], library: str = LIBRARY_FINGERPRINT) -> str:
    """Short, stable hash of a config and the library fingerprint."""
    text = json.dumps({"config": canonical_config(config), "library": library}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename onto ``path``.

    A crash at any moment leaves either the old file or the new one, never a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _serialize(obj: Any, path: Path, as_json: bool) -> None:
    if as_json:
        path.write_text(json.dumps(obj, indent=2, sort_keys=True))
    else:
        torch.save(obj, path)


def _deserialize(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return torch.load(path, map_location="cpu", weights_only=True)


class ArtifactStore:
    """Content-addressed cache of expensive results under ``root`` (default ``_artifacts/``).

    ``NSDE_ARTIFACTS`` in the environment moves the default root.
    """

    def __init__(self, root: Path | str | None = None, library: str = LIBRARY_FINGERPRINT) -> None:
        self.root = Path(root or os.environ.get("NSDE_ARTIFACTS") or DEFAULT_ROOT)
        self.library = library

    def scoped(self, module: str) -> ArtifactStore:
        """The same store, keyed by the fingerprint of ``module`` (a ``__name__``) and its dependencies only."""
        return ArtifactStore(self.root, library_fingerprint(module.removeprefix("nsdelib.")))

    def directory(self, kind: str, config: BaseModel | Mapping[str, Any]) -> Path:
        """The folder that holds every file of the artifact ``(kind, config)``."""
        return self.root / kind / config_hash(config, self.library)

    def save(self, kind: str, config: BaseModel | Mapping[str, Any], obj: Any, name: str = "payload.pt") -> Path:
        """Write ``obj`` atomically (``.json`` names as JSON, others with ``torch.save``) and its checksum."""
        path = self.directory(kind, config) / name
        atomic_write(path, lambda tmp: _serialize(obj, tmp, as_json=path.suffix == ".json"))
        meta = {
            "kind": kind,
            "config": canonical_config(config),
            "library": self.library,
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write(self._meta_path(path), lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
        return path

    def exists(self, kind: str, config: BaseModel | Mapping[str, Any], name: str = "payload.pt") -> bool:
        """Whether a (possibly unverified) artifact file and its checksum sidecar are present."""
        path = self.directory(kind, config) / name
        return path.exists() and self._meta_path(path).exists()

    def load(self, kind: str, config: BaseModel | Mapping[str, Any], name: str = "payload.pt") -> Any:
        """Read and verify an artifact; raise ArtifactMissing, ArtifactStale or ArtifactCorrupt."""
        path = self.directory(kind, config) / name
        meta_path = self._meta_path(path)
        if not path.exists() or not meta_path.exists():
            raise ArtifactMissing(f"no {kind} artifact {name!r} at {path.parent}")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactCorrupt(f"{kind} artifact {path}: its checksum file is unreadable ({exc})") from exc
        if meta.get("config") != canonical_config(config) or meta.get("library") != self.library:
            raise ArtifactStale(
                f"{kind} artifact {path} was written for another config or library version "
                f"(library {meta.get('library')!r}, now {self.library!r})"
            )
        actual = sha256_file(path)
        if actual != meta.get("sha256"):
            raise ArtifactCorrupt(
                f"{kind} artifact {path} is corrupt: SHA-256 {actual[:12]}… does not match the "
                f"recorded {str(meta.get('sha256'))[:12]}…"
            )
        return _deserialize(path)

    def fetch(
        self,
        kind: str,
        config: BaseModel | Mapping[str, Any],
        build: Callable[[], T],
        name: str = "payload.pt",
    ) -> T:
        """Load the artifact, or build and save it; a corrupt or stale one is rebuilt with a warning."""
        try:
            return self.load(kind, config, name)
        except ArtifactMissing:
            pass
        except (ArtifactCorrupt, ArtifactStale) as exc:
            warnings.warn(f"{exc}; rebuilding it", stacklevel=2)
        obj = build()
        self.save(kind, config, obj, name)
        return obj

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(path.name + ".meta.json")
