"""A retrain proves itself: fresh processes train the same weights, and `nsdebook verify` checks records against them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nsdelib.book.cli import main
from nsdelib.book.context import Context
from nsdelib.book.profiles import get_profile
from nsdelib.book.provenance import provenance, record_result
from nsdelib.book.verify import RecordsDisagree, cited_models, study_data
from nsdelib.common import described_threads, device_description
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.evaluation.data_size import data_for_size
from nsdelib.training.trainer import train_or_load

TRAIN = """
import nsdelib
ctx = nsdelib.setup(profile="ci", seed=0, device="cpu")
print(ctx.train("convnext", 0, progress=False).digest)
"""


def train_in_fresh_processes(*stores: Path) -> list[str]:
    """The digest of the same model trained at once in one fresh process per (empty) store."""
    processes = [subprocess.Popen([sys.executable, "-c", TRAIN], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  text=True, env={**os.environ, "NSDE_ARTIFACTS": str(store), "OMP_NUM_THREADS": "1"})
                 for store in stores]
    outputs = [process.communicate()[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(stores)
    return [out.strip().splitlines()[-1] for out in outputs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The ci ConvNeXt of seed 0 trained in two fresh processes with empty stores: one store and the digest."""
    first, second = (tmp_path_factory.mktemp(name) for name in ("store-a", "store-b"))
    digests = set(train_in_fresh_processes(first, second))
    assert len(digests) == 1, f"two fresh processes trained different weights: {digests}"
    return first, digests.pop()


def write_record(root: Path, name: str, models: list[dict]) -> None:
    record_result(name, {"value": 1}, provenance("ci", [0], "cpu", 1.0, models), root=root)


def test_two_fresh_processes_train_the_same_digest(trained: tuple[Path, str]) -> None:
    _, digest = trained
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_verify_accepts_matching_records_and_names_a_tampered_one(
    trained: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store, digest = trained
    monkeypatch.setenv("NSDE_ARTIFACTS", str(store))
    write_record(tmp_path, "clean_accuracy", [{"kind": "convnext", "seed": 0, "sha256": digest}])
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--device", "cpu"]) == 0
    assert f"convnext seed 0: matches {digest[:12]}… (clean_accuracy.json)" in capsys.readouterr().out

    path = tmp_path / "ci" / "clean_accuracy.json"
    payload = json.loads(path.read_text())
    payload["provenance"]["models"][0]["sha256"] = "f" * 64
    path.write_text(json.dumps(payload))
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert f"convnext seed 0: MISMATCH: this machine's weights {digest[:12]}…, recorded ffffffffffff…" in captured.out
    assert "first: convnext seed 0, cited by clean_accuracy.json" in captured.err


def test_verify_refuses_when_nothing_matching_is_cited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_record(tmp_path, "abc", [{"kind": "convnext", "seed": 0, "sha256": "a" * 64}])
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--kind", "nsde"]) == 2
    assert "no recorded ci result under" in capsys.readouterr().err
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--kind", "resnet"]) == 2
    assert "unknown model kind 'resnet'" in capsys.readouterr().err


def test_records_citing_different_weights_for_one_model_disagree(tmp_path: Path) -> None:
    write_record(tmp_path, "abc", [{"kind": "nsde", "seed": 1, "sha256": "a" * 64}])
    write_record(tmp_path, "data_size", [{"kind": "nsde", "seed": 1, "n_train": 70, "sha256": "b" * 64},
                                         {"kind": "nsde", "seed": 1, "sha256": "a" * 64}])
    models, skipped = cited_models("ci", tmp_path)
    assert {(m.label, m.records) for m in models} == {
        ("nsde seed 1", ("abc.json", "data_size.json")), ("nsde seed 1 trained on 70 samples", ("data_size.json",))}
    assert skipped == []
    write_record(tmp_path, "data_size/nsde-seed1", [{"kind": "nsde", "seed": 1, "n_train": 35, "sha256": "d" * 64},
                                                     {"kind": "nsde", "seed": 1, "sha256": "a" * 64}])
    assert ("nsde seed 1 trained on 35 samples", ("data_size/nsde-seed1.json",)) in {
        (m.label, m.records) for m in cited_models("ci", tmp_path)[0]}, "a size study recorded per model is verified too"
    write_record(tmp_path, "noise_robustness", [{"kind": "nsde", "seed": 1, "sha256": "c" * 64}])
    with pytest.raises(RecordsDisagree, match="nsde seed 1: abc.json, data_size/nsde-seed1.json, data_size.json cite "
                                              "weights aaaaaaaaaaaa…, noise_robustness.json cites cccccccccccc…"):
        cited_models("ci", tmp_path)


def test_a_recording_profile_records_each_model_once_and_verify_reads_those_records(
    trained: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store, digest = trained
    ctx = Context(get_profile("ci", record_results=True), 0, torch.device("cpu"), ArtifactStore(store), tmp_path)
    run = ctx.train("convnext", 0, progress=False)
    path = tmp_path / "ci" / "models" / "convnext-seed0.json"
    record = json.loads(path.read_text())
    assert record["provenance"]["models"] == [{"kind": "convnext", "seed": 0, "sha256": digest}]
    assert record["result"]["metrics"]["accuracy"] == run.metrics["accuracy"]
    assert record["result"]["train"] == ctx.train_config("convnext").model_dump(mode="json"), "with the rule's rate"
    path.write_text(path.read_text().replace(digest, "e" * 64))
    ctx.train("convnext", 0, progress=False)
    assert "e" * 64 in path.read_text(), "an existing record is never overwritten"
    monkeypatch.setenv("NSDE_ARTIFACTS", str(store))
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--device", "cpu"]) == 1
    assert "cited by models/convnext-seed0.json" in capsys.readouterr().err


def test_a_retrain_uses_the_thread_count_the_model_was_trained_with(
    trained: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, digest = trained  # trained with one thread; this process retrains it with two unless verify sets one
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path / "empty-store"))
    models = [{"kind": "convnext", "seed": 0, "sha256": digest}]
    result = {"kind": "convnext", "seed": 0, "metrics": {"device": "CPU x86_64 (AVX512), 1 threads"}}
    record_result("models/convnext-seed0", result, provenance("ci", [0], "cpu", 1.0, models), root=tmp_path)
    torch.set_num_threads(2)
    try:
        assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 2, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))


def test_the_thread_count_is_read_from_a_device_description() -> None:
    assert described_threads(device_description("cpu")) == torch.get_num_threads()
    assert described_threads("NVIDIA H200 (CUDA 12.4)") is None


def test_a_retrain_uses_the_training_settings_its_record_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A record trained at another rate than this profile's rule gives (a grid elsewhere) is rebuilt at its own."""
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path / "store"))
    ctx = Context(get_profile("ci"), 0, torch.device("cpu"), ArtifactStore(tmp_path / "store"))
    train = ctx.train_config("convnext").replace(lr=1e-3, max_epochs=1, patience=1)
    digest = train_or_load(ctx.data, "convnext", 0, ctx.profile.model, train, ctx.store, ctx.device).digest
    result = {"kind": "convnext", "seed": 0, "metrics": {"device": device_description("cpu")},
              "train": train.model_dump(mode="json")}
    models = [{"kind": "convnext", "seed": 0, "sha256": digest}]
    record_result("models/convnext-seed0", result, provenance("ci", [0], "cpu", 1.0, models), root=tmp_path)
    assert main(["verify", "--profile", "ci", "--results", str(tmp_path), "--device", "cpu"]) == 0
    assert "matches" in capsys.readouterr().out
    assert cited_models("ci", tmp_path)[0][0].train == train.model_dump(mode="json")


def test_a_size_study_model_is_rebuilt_on_the_data_set_the_study_drew_for_it(tmp_path: Path) -> None:
    """A third of the ci split asks for 53 samples and gets 56 (whole samples per class); the record names 56, and
    the data set drawn for 56 is another one."""
    profile = get_profile("ci", data_size={"fractions": (0.33, 1.0)})
    ctx = Context(profile, 0, torch.device("cpu"), ArtifactStore(tmp_path))
    smaller = ctx.data_size_datasets()[0]
    assert len(smaller.train) == 56
    rebuilt = study_data(ctx, 56)
    assert (rebuilt.seed, rebuilt.config) == (smaller.seed, smaller.config)
    assert data_for_size(ctx.data, 56, ctx.store).seed != smaller.seed
    assert study_data(ctx, len(ctx.data.train)) is ctx.data
