"""The artifact store: keys by meaning, one atomic write per artifact, checksums verified, bad ones rebuilt."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nsdelib.common import ArtifactCorrupt, ArtifactMissing, ArtifactStale
from nsdelib.common.artifacts import (
    KINDS,
    ArtifactKind,
    ArtifactStore,
    Spent,
    artifact_key,
    atomic_write,
    content_digest,
    torch_series,
    weights_digest,
)

REPO = Path(__file__).resolve().parent.parent
CONFIG = {"n": 3, "seed": 1}
DATA = ArtifactKind("test_data", 1)
DATA_V2 = ArtifactKind("test_data_v2", 2)
TABLE = ArtifactKind("test_table", 1, "table.json")
RACE = ArtifactKind("test_race", 1)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def test_roundtrip_torch_and_json(store: ArtifactStore) -> None:
    payload = {"x": torch.arange(6.0).reshape(2, 3), "labels": [1, 2]}
    path = store.save(DATA, CONFIG, payload)
    assert path == store.directory(DATA, CONFIG) / "payload.pt"
    loaded = store.load(DATA, CONFIG)
    assert torch.equal(loaded["x"], payload["x"]) and loaded["labels"] == [1, 2]
    store.save(TABLE, CONFIG, {"acc": [0.5, 0.25]})
    assert store.load(TABLE, CONFIG) == {"acc": [0.5, 0.25]}
    assert sorted(p.name for p in store.directory(TABLE, CONFIG).iterdir()) == ["meta.json", "table.json"]


def test_missing_artifact_raises(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactMissing, match="no test_data artifact"):
        store.load(DATA, CONFIG)


def test_key_is_kind_version_config_and_torch_series() -> None:
    assert artifact_key(DATA, CONFIG) == artifact_key(DATA, dict(reversed(list(CONFIG.items()))))
    assert artifact_key(DATA, CONFIG) != artifact_key(DATA, {**CONFIG, "seed": 2})
    assert artifact_key(DATA, CONFIG) != artifact_key(TABLE, CONFIG)
    bumped = ArtifactKind.__new__(ArtifactKind)  # the same kind at another version, without registering it
    object.__setattr__(bumped, "name", DATA.name)
    object.__setattr__(bumped, "version", 2)
    object.__setattr__(bumped, "file", DATA.file)
    assert artifact_key(DATA, CONFIG) != artifact_key(bumped, CONFIG)
    assert torch_series() == ".".join(torch.__version__.split(".")[:2])


def test_a_kind_declared_twice_with_another_version_is_refused() -> None:
    assert KINDS["test_data"] is DATA
    assert ArtifactKind("test_data", 1) == DATA  # the same declaration again (a re-import) is fine
    with pytest.raises(ValueError, match="declared twice"):
        ArtifactKind("test_data", 7)


def test_fetch_builds_once_then_reads(store: ArtifactStore) -> None:
    calls = []

    def build() -> torch.Tensor:
        calls.append(1)
        return torch.ones(3)

    assert torch.equal(store.fetch(DATA, CONFIG, build), torch.ones(3))
    assert torch.equal(store.fetch(DATA, CONFIG, build), torch.ones(3))
    assert len(calls) == 1


def test_fetch_keeps_how_long_the_build_took_and_a_plain_save_does_not_know(store: ArtifactStore) -> None:
    def slow() -> torch.Tensor:
        time.sleep(0.05)
        return torch.ones(1)

    store.fetch(DATA, CONFIG, slow)
    seconds, unknown, _ = store.build_cost(DATA, CONFIG)
    assert seconds >= 0.05 and unknown == 0
    store.save(DATA, {"other": 1}, torch.ones(1))
    assert store.build_cost(DATA, {"other": 1}) == (0.0, 1, 1)


def test_a_build_counts_the_stored_artifacts_it_read_and_is_a_lower_bound_where_they_lack_their_time(
    store: ArtifactStore
) -> None:
    """An artifact built from stored ones (attribution stability from stored attributions) states its whole cost."""
    def slow() -> torch.Tensor:
        time.sleep(0.05)
        return torch.ones(1)

    def middle() -> torch.Tensor:  # reads the stored inner one
        return store.fetch(DATA, {"inner": 1}, slow) + 1

    store.fetch(DATA, {"inner": 1}, slow)
    inner = store.build_cost(DATA, {"inner": 1}).seconds
    store.fetch(DATA, {"outer": 1}, lambda: store.fetch(DATA, {"middle": 1}, middle) + 1)
    assert store.build_cost(DATA, {"middle": 1}).seconds >= inner
    outer = store.build_cost(DATA, {"outer": 1})
    assert outer.seconds >= inner and outer.unknown == 0, "what the nested build read reaches the outer one too"
    assert store.spent_since(0).seconds == pytest.approx(inner + outer.seconds), "each top-level fetch once"
    store.save(DATA, {"old": 1}, torch.ones(1))  # written before build times were kept
    store.fetch(DATA, {"from old": 1}, lambda: store.fetch(DATA, {"old": 1}, slow) + 1)
    assert store.build_cost(DATA, {"from old": 1}).unknown == 1, "a build from an artifact of unknown cost: a bound"
    reader = ArtifactStore(store.root)
    reader.fetch(DATA, {"from old": 1}, slow)
    assert reader.spent_since(0).unknown == 1, "read back, it is still flagged as a lower bound"


def test_the_ledger_counts_what_top_level_fetches_cost_wherever_they_were_built(tmp_path: Path) -> None:
    """A record's cost: stored build times of what it read, its nested artifacts once, None once one is unknown."""
    def slow() -> torch.Tensor:
        time.sleep(0.05)
        return torch.ones(1)

    def outer() -> torch.Tensor:  # builds a nested artifact: its time is inside the outer one's
        return store.fetch(DATA, {"inner": 1}, slow) + 1

    store = ArtifactStore(tmp_path)
    mark = store.ledger_position()
    store.fetch(DATA, {"outer": 1}, outer)
    built = store.spent_since(mark)
    assert built.seconds == pytest.approx(store.build_cost(DATA, {"outer": 1}).seconds) and built.seconds >= 0.05
    assert (built.unknown, built.artifacts) == (0, 1)
    reader = ArtifactStore(tmp_path)  # another process reading it back, twice: counted once
    reader.fetch(DATA, {"outer": 1}, outer)
    reader.fetch(DATA, {"outer": 1}, outer)
    assert reader.spent_since(0) == pytest.approx(built)
    reader.save(DATA, {"old": 1}, torch.ones(1))  # written without its build time
    mark = reader.ledger_position()
    reader.fetch(DATA, {"old": 1}, slow)
    assert reader.spent_since(mark) == (0.0, 1, 1)
    assert reader.spent_since(0).seconds == pytest.approx(built.seconds) and reader.spent_since(0).unknown == 1
    mark = reader.ledger_position()
    reader.credit(tmp_path / "record.json", Spent(600.0, 1, 1))  # a result read from its record, a lower bound
    reader.credit(tmp_path / "record.json", Spent(600.0, 1, 1))
    reader.credit(tmp_path / "other.json", Spent(60.0, 0, 1))
    assert reader.spent_since(mark) == (660.0, 1, 2)


def test_a_second_writer_keeps_the_first_valid_result(store: ArtifactStore) -> None:
    store.save(DATA, CONFIG, torch.zeros(3))
    store.save(DATA, CONFIG, torch.ones(3))
    assert torch.equal(store.load(DATA, CONFIG), torch.zeros(3))
    assert [p.name for p in store.directory(DATA, CONFIG).parent.iterdir()] == [store.directory(DATA, CONFIG).name]


def test_delete_removes_the_folder(store: ArtifactStore) -> None:
    store.save(DATA, CONFIG, torch.zeros(3))
    store.delete(DATA, CONFIG)
    assert not store.exists(DATA, CONFIG) and not list(store.directory(DATA, CONFIG).parent.iterdir())
    store.delete(DATA, CONFIG)  # absent: nothing happens


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


def test_a_failing_build_leaves_nothing_behind(store: ArtifactStore) -> None:
    def build() -> torch.Tensor:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        store.fetch(DATA, CONFIG, build)
    assert not store.exists(DATA, CONFIG)


def test_checksum_mismatch_is_detected_and_rebuilt(store: ArtifactStore) -> None:
    path = store.save(DATA, CONFIG, torch.zeros(100))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactCorrupt, match="corrupt"):
        store.load(DATA, CONFIG)
    with pytest.warns(UserWarning, match="corrupt.*rebuilding"):
        rebuilt = store.fetch(DATA, CONFIG, lambda: torch.full((100,), 2.0))
    assert torch.equal(rebuilt, torch.full((100,), 2.0))
    assert torch.equal(store.load(DATA, CONFIG), rebuilt)


def test_unreadable_metadata_is_corrupt(store: ArtifactStore) -> None:
    store.save(DATA, CONFIG, torch.zeros(3))
    (store.directory(DATA, CONFIG) / "meta.json").write_text("{not json")
    with pytest.raises(ArtifactCorrupt, match="metadata file is unreadable"):
        store.load(DATA, CONFIG)


def test_metadata_of_another_config_or_version_is_stale(store: ArtifactStore) -> None:
    store.save(DATA, CONFIG, torch.zeros(3))
    meta_path = store.directory(DATA, CONFIG) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "config": {**CONFIG, "n": 99}}))
    with pytest.raises(ArtifactStale, match="another config"):
        store.load(DATA, CONFIG)
    meta_path.write_text(json.dumps({**meta, "version": 0}))
    with pytest.raises(ArtifactStale, match="version 0, now 1"):
        store.load(DATA, CONFIG)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert torch.equal(store.fetch(DATA, CONFIG, lambda: torch.ones(3)), torch.ones(3))
    assert torch.equal(store.load(DATA, CONFIG), torch.ones(3))


def test_another_version_never_reads_the_old_folder(store: ArtifactStore) -> None:
    store.save(DATA, CONFIG, torch.zeros(3))
    assert store.directory(DATA, CONFIG) != store.directory(DATA_V2, CONFIG)
    with pytest.raises(ArtifactMissing):
        store.load(DATA_V2, CONFIG)


def test_weights_and_content_digests() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    assert weights_digest(a) != weights_digest(b)
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(b) == weights_digest(a.state_dict())
    assert len(weights_digest(a)) == 64
    assert content_digest(a) == content_digest(b)
    b.extra_setting = 0.5  # a setting the weights do not show (the NSDE's σ, say) changes the content digest
    assert content_digest(a) != content_digest(b)
    assert content_digest(torch.zeros(3)) != content_digest(torch.zeros(4))


def _write_many(root: str, worker: int, rounds: int) -> int:
    """One of two racing writers: publish every artifact of the race, reading each back; count bad reads."""
    store = ArtifactStore(root)
    bad = 0
    for index in range(rounds):
        config = {"index": index}
        store.save(RACE, config, {"worker": worker, "x": torch.full((2000,), float(index))})
        try:
            loaded = store.load(RACE, config)
            bad += int(not torch.equal(loaded["x"], torch.full((2000,), float(index))))
        except (ArtifactCorrupt, ArtifactStale, ArtifactMissing):
            bad += 1
    return bad


def test_two_processes_writing_the_same_artifacts_leave_every_read_valid(tmp_path: Path) -> None:
    rounds = 60
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        bad = pool.starmap(_write_many, [(str(tmp_path), worker, rounds) for worker in (0, 1)])
    assert bad == [0, 0]
    store = ArtifactStore(tmp_path)
    writers = {store.load(RACE, {"index": index})["worker"] for index in range(rounds)}
    assert writers <= {0, 1}
    assert not [p for p in (tmp_path / RACE.name).iterdir() if p.name.startswith(".")], "leftover temporary folders"


KEY_SCRIPT = """
import json, sys
keys = []
for parent in sys.argv[1:]:  # each copy of the package imported afresh in turn (torch stays imported)
    for name in [name for name in sys.modules if name == "nsdelib" or name.startswith("nsdelib.")]:
        del sys.modules[name]
    sys.path.insert(0, parent)
    from nsdelib.book.profiles import get_profile
    from nsdelib.common.artifacts import artifact_key
    from nsdelib.data.dataset import DATASET
    from nsdelib.training.trainer import CHECKPOINT, TRAINED, checkpoint_key
    assert sys.modules["nsdelib"].__file__.startswith(parent), "the copy itself was imported"
    profile = get_profile("ci")
    data_key = {"data": profile.data.model_dump(mode="json"), "seed": 0}
    train_key = {"data": profile.data.model_dump(mode="json"), "data_seed": 0,
                 "model": profile.model.model_dump(mode="json"), "train": profile.train.model_dump(mode="json"),
                 "kind": "nsde", "seed": 0}
    keys.append([artifact_key(DATASET, data_key), artifact_key(TRAINED, train_key),
                 artifact_key(CHECKPOINT, checkpoint_key(train_key, 1))])
    sys.path.remove(parent)
print(json.dumps(keys))
"""


def _keys(*package_parents: Path) -> list[list[str]]:
    """The keys of a data set, a trained model and a checkpoint, computed by each copy of the package in turn."""
    out = subprocess.run([sys.executable, "-c", KEY_SCRIPT, *map(str, package_parents)], capture_output=True,
                         text=True, check=True, cwd=package_parents[0])
    return json.loads(out.stdout)


def test_docstrings_comments_and_renames_change_no_key(tmp_path: Path) -> None:
    shutil.copytree(REPO / "nsdelib", tmp_path / "original" / "nsdelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "nsdelib", tmp_path / "nsdelib", ignore=shutil.ignore_patterns("__pycache__"))
    edits = {
        "models/nsde.py": ('"""', '"""An edited docstring.\n\n'),
        "training/trainer.py": ('"""', '"""Another edited docstring.\n\n'),
        "common/artifacts.py": ('"""', '"""A third edited docstring.\n\n'),
    }
    for relative, (old, new) in edits.items():
        path = tmp_path / "nsdelib" / relative
        source = path.read_text()
        path.write_text("# a comment added by the test\n" + source.replace(old, new, 1))
    trainer = tmp_path / "nsdelib" / "training" / "trainer.py"
    trainer.write_text(trainer.read_text().replace("_prune_checkpoints", "_drop_old_checkpoints"))
    original, edited, repository = _keys(tmp_path / "original", tmp_path, REPO)
    assert edited == original
    assert repository == original
