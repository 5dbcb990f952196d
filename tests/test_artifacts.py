"""The artifact store: atomic writes, checksums verified, stale and corrupt artifacts rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nsdelib.common.artifacts import ArtifactStore, atomic_write, config_hash
from nsdelib.common.errors import ArtifactCorrupt, ArtifactMissing, ArtifactStale

CONFIG = {"n": 3, "seed": 1}


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def test_roundtrip_torch_and_json(store: ArtifactStore) -> None:
    payload = {"x": torch.arange(6.0).reshape(2, 3), "labels": [1, 2]}
    store.save("data", CONFIG, payload)
    loaded = store.load("data", CONFIG)
    assert torch.equal(loaded["x"], payload["x"]) and loaded["labels"] == [1, 2]
    store.save("sweep", CONFIG, {"acc": [0.5, 0.25]}, name="sweep.json")
    assert store.load("sweep", CONFIG, name="sweep.json") == {"acc": [0.5, 0.25]}


def test_missing_artifact_raises(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactMissing, match="no data artifact"):
        store.load("data", CONFIG)


def test_key_depends_on_config_and_library() -> None:
    assert config_hash(CONFIG) == config_hash(dict(reversed(list(CONFIG.items()))))
    assert config_hash(CONFIG) != config_hash({**CONFIG, "seed": 2})
    assert config_hash(CONFIG, library="a") != config_hash(CONFIG, library="b")


def test_fetch_builds_once_then_reads(store: ArtifactStore) -> None:
    calls = []

    def build() -> torch.Tensor:
        calls.append(1)
        return torch.ones(3)

    assert torch.equal(store.fetch("data", CONFIG, build), torch.ones(3))
    assert torch.equal(store.fetch("data", CONFIG, build), torch.ones(3))
    assert len(calls) == 1


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text('{"good": true}')

    def failing_writer(tmp: Path) -> None:
        tmp.write_text('{"half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing_writer)
    assert json.loads(target.read_text()) == {"good": True}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_checksum_mismatch_is_detected_and_rebuilt(store: ArtifactStore) -> None:
    path = store.save("data", CONFIG, torch.zeros(100))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactCorrupt, match="corrupt"):
        store.load("data", CONFIG)
    with pytest.warns(UserWarning, match="corrupt.*rebuilding"):
        rebuilt = store.fetch("data", CONFIG, lambda: torch.full((100,), 2.0))
    assert torch.equal(rebuilt, torch.full((100,), 2.0))
    assert torch.equal(store.load("data", CONFIG), rebuilt)


def test_unreadable_checksum_file_is_corrupt(store: ArtifactStore) -> None:
    path = store.save("data", CONFIG, torch.zeros(3))
    path.with_name(path.name + ".meta.json").write_text("{not json")
    with pytest.raises(ArtifactCorrupt, match="checksum file is unreadable"):
        store.load("data", CONFIG)


def test_stale_config_is_detected_and_rebuilt(store: ArtifactStore) -> None:
    path = store.save("data", CONFIG, torch.zeros(3))
    meta_path = path.with_name(path.name + ".meta.json")
    meta = json.loads(meta_path.read_text())
    meta["config"]["n"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactStale, match="another config"):
        store.load("data", CONFIG)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert torch.equal(store.fetch("data", CONFIG, lambda: torch.ones(3)), torch.ones(3))


def test_other_library_version_is_stale(tmp_path: Path) -> None:
    old = ArtifactStore(tmp_path, library="0.0.1+old")
    path = old.save("data", CONFIG, torch.zeros(3))
    new = ArtifactStore(tmp_path, library="0.2.0+new")
    # a new library never even looks at the old folder ...
    with pytest.raises(ArtifactMissing, match="no data artifact 'payload.pt'"):
        new.load("data", CONFIG)
    # ... and an old file copied into its place is recognised as stale
    target = new.directory("data", CONFIG)
    target.mkdir(parents=True)
    for file in path.parent.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    with pytest.raises(ArtifactStale, match="0.0.1\\+old"):
        new.load("data", CONFIG)


def test_scoped_fingerprint_follows_runtime_imports_only() -> None:
    from nsdelib.common.artifacts import LIBRARY_FINGERPRINT, library_fingerprint, module_closure

    closure = module_closure("data.dataset")
    assert {"data.dataset", "data.signals", "common.artifacts"} <= set(closure)
    assert not {"evaluation.attacks", "training.trainer", "book.context"} & set(closure)
    assert set(closure) < set(module_closure("training.trainer"))
    assert library_fingerprint("data.dataset") != library_fingerprint("training.trainer") != LIBRARY_FINGERPRINT
    assert ArtifactStore("x").scoped("nsdelib.data.dataset").library == library_fingerprint("data.dataset")
