"""Training at the ci profile: real data through the real code path, resumable and cached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import nsdelib
from nsdelib.book.context import Context
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.common.errors import ConfigError
from nsdelib.training.trainer import TrainConfig, TrainedModel, training_key

EPOCHS = 6


def ci_context(root: Path, epochs: int = EPOCHS) -> Context:
    """The ci profile with a private artifact store and enough epochs to be interrupted."""
    base = nsdelib.setup(profile="ci", seed=0, device="cpu")
    profile = base.profile.replace(train={**base.profile.train.model_dump(), "epochs": epochs})
    return Context(profile=profile, seed=0, device=torch.device("cpu"), store=ArtifactStore(root))


SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_training import ci_context
    torch.set_num_threads(1)
    ci_context(Path({root!r})).train("nsde", seed=0, progress=False)
    """
)


def run_uninterrupted(root: Path) -> TrainedModel:
    return ci_context(root).train("nsde", seed=0, progress=False)


def test_killed_run_resumes_to_identical_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    interrupted_root = tmp_path / "interrupted"
    ctx = ci_context(interrupted_root)
    checkpoints = ctx.store.scoped("training.trainer").directory("checkpoint", training_key(ctx.data, "nsde", 0, ctx.profile.model, ctx.profile.train))
    script = SCRIPT.format(tests=str(Path(__file__).parent), root=str(interrupted_root))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("epoch_001.pt.meta.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "training subprocess ended before it could be interrupted"
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it was killed; the test would prove nothing"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not ctx.store.scoped("training.trainer").exists("trained", training_key(ctx.data, "nsde", 0, ctx.profile.model, ctx.profile.train))

    resumed = run_uninterrupted(interrupted_root)
    assert "resuming after epoch" in capsys.readouterr().out
    fresh = run_uninterrupted(tmp_path / "fresh")
    for name, tensor in fresh.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.metrics == {**fresh.metrics, "wall_time_s": resumed.metrics["wall_time_s"]}
    assert resumed.history.drop(columns="wall_time_s").equals(fresh.history.drop(columns="wall_time_s"))


def test_corrupt_latest_checkpoint_falls_back(tmp_path: Path) -> None:
    ctx = ci_context(tmp_path, epochs=3)
    ctx.train("convnext", seed=0, progress=False)
    key = training_key(ctx.data, "convnext", 0, ctx.profile.model, ctx.profile.train)
    latest = ctx.store.scoped("training.trainer").directory("checkpoint", key) / "epoch_002.pt"
    latest.write_bytes(latest.read_bytes()[:-10] + b"0123456789")
    (ctx.store.scoped("training.trainer").directory("trained", key) / "payload.pt").unlink()
    with pytest.warns(UserWarning, match="corrupt.*falling back"):
        again = ctx.train("convnext", seed=0, progress=False)
    assert len(again.history) == 3


def test_finished_run_is_read_back_not_retrained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = ci_context(tmp_path, epochs=2)
    first = ctx.train("convnext", seed=1, progress=False)
    capsys.readouterr()
    second = ctx.train("convnext", seed=1, progress=False)
    assert "epoch" not in capsys.readouterr().out
    assert first.metrics == second.metrics
    assert 0.0 <= first.metrics["accuracy"] <= 1.0
    assert len(first.metrics["confusion"]) == len(first.metrics["per_class_accuracy"])
    assert first.model.training is False


def test_nsde_reports_every_eval_noise_mode(tmp_path: Path) -> None:
    run = ci_context(tmp_path, epochs=2).train("nsde", seed=0, progress=False)
    assert set(run.metrics["accuracy_by_eval_noise"]) == {"off", "single", "ensemble"}
    assert run.metrics["accuracy"] == run.metrics["accuracy_by_eval_noise"][run.metrics["eval_noise"]]


@pytest.mark.parametrize(
    ("values", "field"),
    [({"epochs": 0}, "epochs"), ({"lr": -1e-3}, "lr"), ({"batch_size": 0}, "batch_size")],
)
def test_invalid_training_config_fails_clearly(values: dict, field: str) -> None:
    good = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_epochs": 0}
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        TrainConfig.build(**{**good, **values})


def test_batch_larger_than_data_fails_clearly(tmp_path: Path) -> None:
    ctx = ci_context(tmp_path)
    ctx = Context(ctx.profile.replace(train={**ctx.profile.train.model_dump(), "batch_size": 10**6}), 0, ctx.device, ctx.store)
    with pytest.raises(ConfigError, match="'batch_size' = 1000000 is larger than the"):
        ctx.train("convnext", seed=0, progress=False)
