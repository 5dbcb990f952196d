"""The artifact store: expensive results cached on disk, one folder each, keyed by kind, version, config and
torch series. Writes are atomic (a folder renamed into place; the first valid result wins), reads checksummed."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pandas as pd
import torch
from pydantic import BaseModel
from torch import nn

from . import ArtifactCorrupt, ArtifactMissing, ArtifactStale

T = TypeVar("T")
Config = BaseModel | Mapping[str, Any]
#: Bump to invalidate every stored artifact at once (a change of the folder layout, say).
STORE_FORMAT = 3
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "_artifacts"
META_FILE = "meta.json"
#: Every artifact kind by name, filled as the modules that produce them are imported.
KINDS: dict[str, ArtifactKind] = {}


@dataclass(frozen=True)
class ArtifactKind:
    """A kind of artifact: its name, its code's version (bump it when results change), the file that holds it."""

    name: str
    version: int
    file: str = "payload.pt"

    def __post_init__(self) -> None:
        known = KINDS.setdefault(self.name, self)
        if known != self:
            raise ValueError(f"artifact kind {self.name!r} is declared twice ({known} and {self})")


def torch_series() -> str:
    """torch's major.minor version: numerics may change between series, so it is part of every key."""
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def canonical_config(config: Config) -> dict[str, Any]:
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def artifact_key(kind: ArtifactKind, config: Config) -> str:
    text = json.dumps({"format": STORE_FORMAT, "kind": kind.name, "version": kind.version,
                       "config": canonical_config(config), "torch": torch_series()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return f"{tuple(tensor.shape)}{tensor.dtype}".encode() + flat.view(torch.uint8).numpy().tobytes()


def weights_digest(model: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model's weights (names, shapes, dtypes, bytes): the identity recorded results cite."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(_tensor_bytes(state[name]))
    return digest.hexdigest()


def _module_settings(model: nn.Module) -> dict[str, Any]:
    """Public plain-value and config attributes of every submodule (the NSDE's σ, say), which weights do not show."""
    settings: dict[str, Any] = {}
    for prefix, module in model.named_modules():
        for name, value in vars(module).items():
            if name.startswith("_") or name == "training":
                continue
            if isinstance(value, BaseModel):
                settings[f"{prefix}.{name}"] = value.model_dump(mode="json")
            elif isinstance(value, (bool, int, float, str, tuple)):
                settings[f"{prefix}.{name}"] = value
    return settings


def content_digest(*items: nn.Module | torch.Tensor | Mapping[str, Any]) -> str:
    """Digest of models (weights and settings), tensors and JSON-ready mappings: what a sweep computes with."""
    digest = hashlib.sha256()
    for item in items:
        if isinstance(item, nn.Module):
            digest.update(weights_digest(item).encode())
            digest.update(json.dumps(_module_settings(item), sort_keys=True, default=str).encode())
        elif isinstance(item, torch.Tensor):
            digest.update(_tensor_bytes(item))
        else:
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rename_if_free(source: Path, target: Path) -> bool:
    """Rename folder ``source`` onto ``target`` unless a non-empty ``target`` is already there."""
    try:
        os.rename(source, target)
        return True
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise


def _discard(folder: Path) -> None:
    """Move ``folder`` out of the way in one rename, then delete it (readers never see half of it)."""
    trash = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.discarded")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


class Spent(NamedTuple):
    """The build seconds of the artifacts read (``seconds``), of which ``unknown`` of ``artifacts`` lack their full
    time: stored before build times were kept (then not counted), or credited as a lower bound."""

    seconds: float
    unknown: int
    artifacts: int


class ArtifactStore:
    """Artifacts under ``root`` (default ``_artifacts/``, or ``$NSDE_ARTIFACTS``), one folder each."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root or os.environ.get("NSDE_ARTIFACTS") or DEFAULT_ROOT)
        #: Each artifact fetched at the top level (not from inside another's build), or result credited, and what it
        #: cost: what a record's computation cost, wherever its artifacts were built (see ``spent_since``).
        self._ledger: list[tuple[Path, Spent]] = []
        #: Per fetch in progress, innermost last: what the stored artifacts its build read (not built there, so not on
        #: its own clock) took to build.
        self._reads: list[Spent] = []

    def directory(self, kind: ArtifactKind, config: Config) -> Path:
        return self.root / kind.name / artifact_key(kind, config)

    def save(self, kind: ArtifactKind, config: Config, obj: Any, build_seconds: float | None = None,
             lower_bound: bool = False) -> Path:
        """Write ``obj`` and its metadata (with how long ``obj`` took to build, where known, and whether that is only a
        lower bound) atomically and return the payload's path; a valid earlier result wins."""
        final = self.directory(kind, config)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            payload = staging / kind.file
            if payload.suffix == ".json":
                payload.write_text(json.dumps(obj, indent=2, sort_keys=True))
            else:
                torch.save(obj, payload)
            _fsync(payload)
            meta = {"kind": kind.name, "version": kind.version, "torch": torch_series(),
                    "config": canonical_config(config), "sha256": sha256_file(payload),
                    "bytes": payload.stat().st_size, "build_seconds": build_seconds,
                    **({"build_seconds_lower_bound": True} if lower_bound else {}),
                    "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
            _fsync(staging / META_FILE)
            if not _rename_if_free(staging, final):
                try:
                    self.verify(kind, config)
                except (ArtifactCorrupt, ArtifactStale, ArtifactMissing):
                    _discard(final)
                    _rename_if_free(staging, final)  # a writer that published meanwhile wins; ours is dropped
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final / kind.file

    def exists(self, kind: ArtifactKind, config: Config) -> bool:
        """Whether the artifact's folder holds a payload and its metadata (not yet verified)."""
        folder = self.directory(kind, config)
        return (folder / kind.file).exists() and (folder / META_FILE).exists()

    def delete(self, kind: ArtifactKind, config: Config) -> None:
        _discard(self.directory(kind, config))

    def verify(self, kind: ArtifactKind, config: Config) -> Path:
        """The payload's path after checking its metadata and checksum; raise ArtifactMissing, -Stale or -Corrupt."""
        folder = self.directory(kind, config)
        path, meta_path = folder / kind.file, folder / META_FILE
        if not path.exists() or not meta_path.exists():
            raise ArtifactMissing(f"no {kind.name} artifact at {folder}")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactCorrupt(f"{kind.name} artifact {folder}: its metadata file is unreadable ({exc})") from exc
        if (meta.get("kind"), meta.get("version"), meta.get("config")) != (kind.name, kind.version,
                                                                         canonical_config(config)):
            raise ArtifactStale(f"{kind.name} artifact {folder} was written for another config or version "
                                f"(version {meta.get('version')!r}, now {kind.version!r})")
        actual = sha256_file(path)
        if actual != meta.get("sha256"):
            raise ArtifactCorrupt(f"{kind.name} artifact {path} is corrupt: SHA-256 {actual[:12]}… does not match "
                                  f"the recorded {str(meta.get('sha256'))[:12]}…")
        return path

    def load(self, kind: ArtifactKind, config: Config) -> Any:
        path = self.verify(kind, config)
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return torch.load(path, map_location="cpu", weights_only=True)

    def fetch(self, kind: ArtifactKind, config: Config, build: Callable[[], T]) -> T:
        """Load the artifact, or build and save it; a corrupt or stale one is rebuilt with a warning.

        A build's stored time includes that of the stored artifacts it read, so an artifact built from others states
        what it cost in all; a fetch inside another's build hands what it read on to the enclosing build."""
        self._reads.append(Spent(0.0, 0, 0))
        try:
            obj, cost, unclocked = self._load_or_build(kind, config, build)
        finally:
            self._reads.pop()
        if self._reads:
            outer = self._reads[-1]
            self._reads[-1] = Spent(outer.seconds + unclocked.seconds, outer.unknown + unclocked.unknown,
                                    outer.artifacts + unclocked.artifacts)
        else:
            self._ledger.append((self.directory(kind, config), cost))
        return obj

    def _load_or_build(self, kind: ArtifactKind, config: Config, build: Callable[[], T]) -> tuple[T, Spent, Spent]:
        """The artifact, its whole cost, and the part of that cost an enclosing build's clock did not see."""
        try:
            obj = self.load(kind, config)
            cost = self.build_cost(kind, config)
            return obj, cost, cost
        except ArtifactMissing:
            pass
        except (ArtifactCorrupt, ArtifactStale) as exc:
            warnings.warn(f"{exc}; rebuilding it", stacklevel=3)
        start = time.perf_counter()
        obj = build()
        read = self._reads[-1]
        seconds = time.perf_counter() - start + read.seconds
        self.save(kind, config, obj, build_seconds=seconds, lower_bound=read.unknown > 0)
        return obj, Spent(seconds, int(read.unknown > 0), 1), read

    def ledger_position(self) -> int:
        """A mark for ``spent_since``."""
        return len(self._ledger)

    def credit(self, source: Path, spent: Spent) -> None:
        """Count work read back without the store (a result read from its record, ``source``) in ``spent_since``."""
        self._ledger.append((source, spent))

    def spent_since(self, position: int) -> Spent:
        """How long the artifacts fetched at the top level (and the work credited) since ``position`` took to build,
        in this process or in another (a worker's), each counted once however often it was read."""
        spent = dict(self._ledger[position:]).values()
        return Spent(float(sum(s.seconds for s in spent)), sum(s.unknown for s in spent),
                     sum(s.artifacts for s in spent))

    def build_cost(self, kind: ArtifactKind, config: Config) -> Spent:
        """How long the stored artifact took to build, as one ledger entry: unknown where that was not recorded (written
        before it was kept) or is only a lower bound (built from artifacts that lack theirs)."""
        meta = json.loads((self.directory(kind, config) / META_FILE).read_text())
        seconds = meta.get("build_seconds")
        return Spent(seconds or 0.0, int(seconds is None or meta.get("build_seconds_lower_bound", False)), 1)

    def fetch_table(self, kind: ArtifactKind, config: Config, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """A sweep's table, or ``build()`` stored as JSON (column order kept)."""

        def build_payload() -> dict[str, Any]:
            table = build()
            return {"columns": list(table.columns), "rows": table.to_dict(orient="list")}

        payload = self.fetch(kind, config, build_payload)
        return pd.DataFrame(payload["rows"])[payload["columns"]]
