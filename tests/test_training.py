"""Training: models learn, a run resumes where it stopped, finished runs are read back, configs are checked.

Learning is checked on a tiny task every model must solve (a bright row whose position is the class);
resuming on the ci profile's real data, through a killed subprocess.
"""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from sklearn.metrics import confusion_matrix, recall_score

import nsdelib
from nsdelib.book import context as context_module
from nsdelib.book.context import Context
from nsdelib.common import ArtifactCorrupt, ConfigError
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.data.dataset import DataConfig, SpectrogramData, Split
from nsdelib.models.inference import predict_logits
from nsdelib.models.nsde import eval_noise
from nsdelib.models.registry import MODEL_KINDS, ModelConfig, ModelKind, build_model
from nsdelib.training import trainer
from nsdelib.training.learning_rate import choose_learning_rate, learning_rate_table
from nsdelib.training.trainer import (
    CHECKPOINT,
    TRAINED,
    TrainConfig,
    TrainedModel,
    checkpoint_key,
    train_or_load,
    training_key,
)

EPOCHS = 6
TIMES = ["train_time_s", "wall_time_s"]  # measured durations differ between runs
SIZE = 32
ROWS = (3, 11, 19, 27)  # class c: a bright band at rows ROWS[c], ROWS[c] + 1 over a dim random background
TINY_MODEL = ModelConfig.build(sde={"sigma": 0.1, "eval_noise": "ensemble", "ensemble_size": 2})
CPU = torch.device("cpu")


def ci_context(root: Path, epochs: int = EPOCHS) -> Context:
    """The ci profile with a private artifact store and enough epochs to be interrupted."""
    base = nsdelib.setup(profile="ci", seed=0, device="cpu")
    profile = base.profile.replace(train={**base.profile.train.model_dump(), "max_epochs": epochs, "patience": epochs})
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
    key = training_key(ctx.data, "nsde", 0, ctx.profile.model, ctx.profile.train)
    script = SCRIPT.format(tests=str(Path(__file__).parent), root=str(interrupted_root))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not ctx.store.exists(CHECKPOINT, checkpoint_key(key, 1)) and time.monotonic() < deadline:
        assert proc.poll() is None, "training subprocess ended before it could be interrupted"
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it was killed; the test would prove nothing"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not ctx.store.exists(TRAINED, key)

    resumed = run_uninterrupted(interrupted_root)
    assert "resuming after epoch" in capsys.readouterr().out
    fresh = run_uninterrupted(tmp_path / "fresh")
    for name, tensor in fresh.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.metrics == {**fresh.metrics, "wall_time_s": resumed.metrics["wall_time_s"]}
    assert resumed.history.drop(columns=TIMES).equals(fresh.history.drop(columns=TIMES))


def separable_split(n: int, seed: int) -> Split:
    """``n`` images [n, 1, 32, 32] in [0, 1], balanced over the classes of ``ROWS``."""
    y = torch.arange(n) % len(ROWS)
    x = 0.3 * torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    for label, row in enumerate(ROWS):
        x[y == label, 0, row : row + 2, :] += 0.6
    return Split(x.clamp(0, 1), y, torch.zeros(n))


@pytest.fixture(scope="module")
def separable() -> SpectrogramData:
    """An easily separable 4-class data set; the DataConfig only keys the cache."""
    config = DataConfig.build(n_samples=80, image_rows=SIZE, image_cols=SIZE)
    axis = torch.arange(float(SIZE))
    classes = [f"row {row}" for row in ROWS]
    return SpectrogramData(separable_split(48, 0), separable_split(16, 1), separable_split(32, 2), classes, axis, axis,
                           config, seed=0)


def tiny_train(**changes: object) -> TrainConfig:
    """Two epochs in batches of 16, no warm-up, no early stop: enough for the tiny task."""
    return TrainConfig.build(**{"max_epochs": 2, "patience": 50, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.0, "warmup_epochs": 0,
                                **changes})


def accuracy(model: torch.nn.Module, split: Split, mode: str = "off", seed: int = 0) -> float:
    """Accuracy of ``model`` in NSDE noise ``mode`` (no-op on the baseline), with the model noise seeded."""
    torch.manual_seed(seed)
    with eval_noise(model.eval(), mode):  # type: ignore[arg-type]
        predictions = predict_logits(model, split.x, batch_size=64).argmax(1)
    return float((predictions == split.y).float().mean())


def train(data: SpectrogramData, kind: ModelKind, store: Path, cfg: TrainConfig | None = None) -> TrainedModel:
    return train_or_load(data, kind, 0, TINY_MODEL, cfg or tiny_train(), ArtifactStore(store), CPU, progress=False)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_each_model_kind_learns_a_separable_task(separable: SpectrogramData, kind: ModelKind, tmp_path: Path) -> None:
    torch.manual_seed(0)  # the trainer's initialisation for seed 0
    untrained = accuracy(build_model(kind, TINY_MODEL, len(ROWS)), separable.test)
    run = train(separable, kind, tmp_path)
    assert untrained < 0.5  # chance is 0.25
    modes = ("off", "single", "ensemble") if kind == "nsde" else ("off",)
    assert set(run.metrics["accuracy_by_eval_noise"]) == set(modes)
    for mode in modes:
        # the reported numbers are the accuracies of the returned model, recomputed here with the same noise seed
        trained = accuracy(run.model, separable.test, mode, seed=separable.seed)
        assert trained >= 0.95, f"{kind}, noise {mode!r}: accuracy {trained:.2f} (untrained {untrained:.2f})"
        assert run.metrics["accuracy_by_eval_noise"][mode] == pytest.approx(trained)
    assert run.metrics["accuracy"] == run.metrics["accuracy_by_eval_noise"]["ensemble" if kind == "nsde" else "off"]
    assert run.history["train_loss"].iloc[-1] < 0.5 * run.history["train_loss"].iloc[0]
    assert run.history.columns.tolist() == ["epoch", "train_loss", "train_accuracy", "val_accuracy", "lr",
                                            "train_time_s", "wall_time_s"]
    assert run.history["train_accuracy"].iloc[-1] >= 0.9 and run.history["val_accuracy"].iloc[-1] >= 0.9


def test_interrupted_run_resumes_after_its_checkpoint_and_still_learns(
    separable: SpectrogramData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_train(max_epochs=3)
    prune = trainer._prune_checkpoints

    def killed_after_first_epoch(*args: object) -> None:
        prune(*args)
        raise KeyboardInterrupt  # right after epoch 1's checkpoint was written

    monkeypatch.setattr(trainer, "_prune_checkpoints", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(separable, "convnext", tmp_path / "interrupted", cfg)
    monkeypatch.undo()
    store = ArtifactStore(tmp_path / "interrupted")
    checkpoint = store.load(CHECKPOINT, checkpoint_key(training_key(separable, "convnext", 0, TINY_MODEL, cfg), 0))
    capsys.readouterr()
    resumed = train(separable, "convnext", tmp_path / "interrupted", cfg)
    out = capsys.readouterr().out
    assert "resuming after epoch 1 of at most 3" in out
    assert "epoch   1/3" not in out and "epoch   2/3" in out and "epoch   3/3" in out
    # epoch 1 comes from the checkpoint, wall time included: it was not trained again
    assert resumed.history.iloc[:1].equals(pd.DataFrame(checkpoint["history"]))
    assert accuracy(resumed.model, separable.test) >= 0.95
    fresh = train(separable, "convnext", tmp_path / "fresh", cfg)
    for name, tensor in fresh.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.history.drop(columns=TIMES).equals(fresh.history.drop(columns=TIMES))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(
    separable: SpectrogramData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_train(max_epochs=3)

    def killed_before_the_model_is_stored(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_test_metrics", killed_before_the_model_is_stored)
    with pytest.raises(KeyboardInterrupt):
        train(separable, "convnext", tmp_path, cfg)
    monkeypatch.undo()
    store = ArtifactStore(tmp_path)
    key = training_key(separable, "convnext", 0, TINY_MODEL, cfg)
    assert [epoch for epoch in range(3) if store.exists(CHECKPOINT, checkpoint_key(key, epoch))] == [1, 2]  # 2 kept
    assert len(list((tmp_path / CHECKPOINT.name).iterdir())) == 2, "pruned checkpoints leave no folder behind"
    first = store.load(CHECKPOINT, checkpoint_key(key, 2))
    latest = store.directory(CHECKPOINT, checkpoint_key(key, 2)) / CHECKPOINT.file
    latest.write_bytes(latest.read_bytes()[:-10] + b"0123456789")
    capsys.readouterr()
    with pytest.warns(UserWarning, match="checkpoint artifact .* is corrupt.*falling back"):
        again = train(separable, "convnext", tmp_path, cfg)
    out = capsys.readouterr().out
    assert "resuming after epoch 2 of at most 3" in out
    assert "epoch   1/3" not in out and "epoch   2/3" not in out and "epoch   3/3" in out
    # epochs 1 and 2 come from the checkpoint, wall times included: they were not trained again
    assert again.history.iloc[:2].equals(pd.DataFrame(first["history"]).iloc[:2])
    assert again.history["epoch"].tolist() == [1, 2, 3]
    assert not list((tmp_path / CHECKPOINT.name).iterdir()), "a finished run keeps no checkpoint"


def test_finished_run_is_read_back_not_retrained(
    separable: SpectrogramData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = train(separable, "convnext", tmp_path, tiny_train(max_epochs=1))
    capsys.readouterr()
    second = train(separable, "convnext", tmp_path, tiny_train(max_epochs=1))
    assert "epoch" not in capsys.readouterr().out
    assert first.metrics == second.metrics
    assert second.model.training is False
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name


def test_test_metrics_are_those_of_the_returned_model(separable: SpectrogramData, tmp_path: Path) -> None:
    # one short epoch at a tiny learning rate: a model that still makes mistakes, so recall differs by class
    run = train(separable, "convnext", tmp_path, tiny_train(max_epochs=1, lr=1e-4))
    y = separable.test.y
    predictions = predict_logits(run.model, separable.test.x, batch_size=64).argmax(1)
    classes = list(range(len(ROWS)))
    assert 0.25 < run.metrics["accuracy"] < 1.0, "a perfect or a chance model would make this check weak"
    assert run.metrics["accuracy"] == pytest.approx(float((predictions == y).float().mean()))
    recall = recall_score(y, predictions, labels=classes, average=None)
    assert run.metrics["per_class_accuracy"] == pytest.approx(list(recall))
    assert run.metrics["confusion"] == confusion_matrix(y, predictions, labels=classes).tolist()
    assert (run.metrics["best_epoch"], run.metrics["epochs"], run.metrics["kind"]) == (1, 1, "convnext")


@pytest.mark.parametrize(
    ("values", "field"),
    [({"max_epochs": 0}, "max_epochs"), ({"patience": 0}, "patience"), ({"lr": -1e-3}, "lr"),
     ({"batch_size": 0}, "batch_size")],
)
def test_invalid_training_config_fails_clearly(values: dict, field: str) -> None:
    good = {"max_epochs": 2, "patience": 2, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_epochs": 0}
    with pytest.raises(ConfigError, match=f"parameter '{field}'"):
        TrainConfig.build(**{**good, **values})


def test_batch_larger_than_data_fails_clearly(separable: SpectrogramData, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'batch_size' = 49 is larger than the 48 training samples"):
        train(separable, "convnext", tmp_path, tiny_train(batch_size=49))


@pytest.mark.parametrize(("warmup_epochs", "epochs"), [(0.0, 3), (1.0, 3), (0.5, 2), (5.0, 2)])
def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_zero(warmup_epochs: float, epochs: int) -> None:
    steps_per_epoch, peak = 4, 0.01
    cfg = tiny_train(max_epochs=epochs, lr=peak, warmup_epochs=warmup_epochs)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    schedule = trainer._schedule(optimizer, cfg, steps_per_epoch)
    total = epochs * steps_per_epoch
    warmup = min(round(warmup_epochs * steps_per_epoch), total - 1)  # never the whole run
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [peak * (1e-3 + (1 - 1e-3) * t / warmup) if t < warmup
                else peak * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) for t in range(total)]
    assert lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12), "decays to zero at the end of the run"


def test_epoch_seeds_are_distinct_and_fixed() -> None:
    # the seed of each epoch's shuffling and noise is part of every recorded model's recipe but not of its
    # cache key: changing the formula would silently change what a cached model stands for
    seeds = {trainer._epoch_seed(seed, epoch) for seed in range(5) for epoch in range(300)}
    assert len(seeds) == 5 * 300
    assert [trainer._epoch_seed(0, 0), trainer._epoch_seed(0, 7), trainer._epoch_seed(3, 2)] == [0, 7, 300_011]


def fake_run(kind: ModelKind, seed: int, accuracy: float, by_mode: dict[str, float], epochs: int) -> TrainedModel:
    """A trained-model record with the given metrics and a history of ``epochs`` rows (no weights needed)."""
    history = pd.DataFrame({"epoch": range(1, epochs + 1),
                            "val_accuracy": [accuracy / (epochs - e) for e in range(epochs)]})
    metrics = {"accuracy": accuracy, "eval_noise": "ensemble" if kind == "nsde" else "off", "best_epoch": epochs,
               "epochs": epochs, "max_epochs": 3, "wall_time_s": 10.0 * (seed + 1), "accuracy_by_eval_noise": by_mode}
    return TrainedModel(kind, seed, torch.nn.Identity(), history, metrics)


def test_runs_table_and_histories_keep_every_model_and_seed() -> None:
    runs = {"convnext": [fake_run("convnext", 0, 0.8, {"off": 0.8}, 2),
                         fake_run("convnext", 1, 0.7, {"off": 0.7}, 2)],
            "nsde": [fake_run("nsde", 4, 0.6, {"off": 0.65, "ensemble": 0.6}, 3)]}
    table = trainer.runs_table(runs)
    fixed = ["model", "seed", "accuracy", "eval noise", "best epoch", "epochs", "max epochs", "wall time (s)"]
    assert table.columns.tolist() == [*fixed, "accuracy, noise off", "accuracy, noise ensemble"]
    assert table[fixed].values.tolist() == [["convnext", 0, 0.8, "off", 2, 2, 3, 10.0],
                                            ["convnext", 1, 0.7, "off", 2, 2, 3, 20.0],
                                            ["nsde", 4, 0.6, "ensemble", 3, 3, 3, 50.0]]
    stops = trainer.stopping_table(table.assign(**{"best epoch": [1, 2, 3]}))
    assert stops.to_dict(orient="index") == {
        "convnext": {"runs": 2, "stopped before the maximum": 2, "maximum": 3, "earliest best epoch": 1,
                     "latest best epoch": 2},
        "nsde": {"runs": 1, "stopped before the maximum": 0, "maximum": 3, "earliest best epoch": 3,
                 "latest best epoch": 3}}
    assert trainer.stopping_sentence(stops) == ("The rule stopped 2 of 3 runs before the maximum of 3 epochs "
                                                "(convnext 2 of 2, best epochs 1–2; nsde 0 of 1, best epochs 3–3).")
    assert table["accuracy, noise off"].tolist() == [0.8, 0.7, 0.65]
    assert table["accuracy, noise ensemble"].iloc[:2].isna().all() and table["accuracy, noise ensemble"].iloc[2] == 0.6
    long = trainer.histories(runs)
    assert long[["model", "seed", "epoch"]].values.tolist() == [
        ["convnext", 0, 1], ["convnext", 0, 2], ["convnext", 1, 1], ["convnext", 1, 2], ["nsde", 4, 1], ["nsde", 4, 2],
        ["nsde", 4, 3]]
    assert long["val_accuracy"].tolist() == pytest.approx([0.4, 0.8, 0.35, 0.7, 0.2, 0.3, 0.6])
    assert long.index.tolist() == list(range(7))


def test_the_training_key_names_everything_a_model_depends_on(separable: SpectrogramData) -> None:
    # the key of every cached model: renaming a field silently retrains (or orphans) every recorded model
    key = training_key(separable, "nsde", 3, TINY_MODEL, tiny_train())
    assert list(key) == ["data", "data_seed", "model", "train", "kind", "seed"]
    assert (key["data"], key["data_seed"]) == (separable.config.model_dump(mode="json"), separable.seed)
    assert (key["model"], key["train"]) == (TINY_MODEL.model_dump(mode="json"), tiny_train().model_dump(mode="json"))
    assert (key["kind"], key["seed"]) == ("nsde", 3)


def test_evaluate_accuracy_is_the_share_of_correct_argmax_predictions() -> None:
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0], [1.0, 2.0]])
    y = torch.tensor([0, 1, 1, 1, 0])  # predictions 0, 1, 0, 1, 1: three of five right
    assert trainer.evaluate_accuracy(torch.nn.Identity(), x, y, batch_size=2, device=CPU) == pytest.approx(0.6)


def test_a_partial_last_batch_still_ends_the_cosine_schedule_at_zero(
    separable: SpectrogramData, tmp_path: Path
) -> None:
    run = train(separable, "convnext", tmp_path, tiny_train(batch_size=32))  # 48 samples: 2 steps, the second of 16
    assert run.history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-12)
    assert run.history["lr"].iloc[0] > 0


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as tqdm checks before drawing bars."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("progress", "bars"), [(False, False), (True, True), (None, True)])
def test_progress_bars_follow_the_progress_flag_and_else_the_terminal(
    separable: SpectrogramData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progress: bool | None, bars: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train_or_load(separable, "convnext", 0, TINY_MODEL, tiny_train(max_epochs=1), ArtifactStore(tmp_path), CPU, progress)
    assert ("epoch/s" in terminal.getvalue() or "it/s" in terminal.getvalue()) == bars


def test_training_stops_after_patience_epochs_without_improvement_and_keeps_the_best(
        separable: SpectrogramData, tmp_path: Path) -> None:
    run = train(separable, "convnext", tmp_path, tiny_train(max_epochs=40, patience=2, lr=4e-3))
    val = run.history["val_accuracy"].tolist()
    best = run.metrics["best_epoch"]
    assert run.metrics["stopped_early"] and len(val) == best + 2 < 40, "the stop fires two epochs after the best"
    assert max(val[:best]) == val[best - 1] == run.metrics["best_val_accuracy"]
    assert max(val[best:]) <= val[best - 1], "no later epoch beat the kept one"
    assert run.metrics["epochs"] == len(val) and run.metrics["max_epochs"] == 40
    torch.manual_seed(0)
    assert accuracy(run.model, separable.val) == pytest.approx(val[best - 1]), "the best epoch's weights are kept"


@pytest.mark.parametrize(("done", "best", "patience", "stop"), [(5, 3, 2, True), (4, 3, 2, False), (3, 3, 1, False),
                                                               (9, 1, 8, True), (1, 1, 1, False)])
def test_stopping_rule_counts_epochs_since_the_best(done: int, best: int, patience: int, stop: bool) -> None:
    assert trainer.stopped(done, best, patience) is stop


def rate_run(val: float) -> dict[str, Any]:
    return {"best_val_accuracy": val, "best_epoch": 3, "epochs": 5}


def test_learning_rate_rule_takes_the_best_validation_accuracy_and_the_smaller_rate_on_a_tie() -> None:
    assert choose_learning_rate({1e-3: rate_run(0.80), 2e-3: rate_run(0.85), 4e-3: rate_run(0.84)}) == 2e-3
    assert choose_learning_rate({4e-3: rate_run(0.9), 1e-3: rate_run(0.9), 2e-3: rate_run(0.5)}) == 1e-3
    table = learning_rate_table({"nsde": {2e-3: rate_run(0.7), 1e-3: rate_run(0.75)}})
    assert table[["learning rate", "chosen"]].values.tolist() == [[1e-3, True], [2e-3, False]]


def test_context_trains_every_kind_at_its_grid_choice(tmp_path: Path) -> None:
    ctx = ci_context(tmp_path, epochs=2)
    ctx = Context(ctx.profile.replace(lr_grid=(1e-3, 2e-3)), 0, CPU, ArtifactStore(tmp_path))
    grid = ctx.learning_rate_grid("convnext", progress=False)
    chosen = choose_learning_rate(grid)
    assert ctx.train_config("convnext").lr == chosen
    assert ctx.train("convnext", 0, progress=False).digest == grid[chosen]["weights_sha256"], (
        "seed 0 is the grid's own run")


def test_a_recorded_grid_chooses_the_rate_on_a_new_machine_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = ci_context(tmp_path, epochs=2).profile.replace(lr_grid=(1e-3, 2e-3), record_results=True)
    results = tmp_path / "results"
    first = Context(profile, 0, CPU, ArtifactStore(tmp_path / "store"), results)
    chosen = first.learning_rate("convnext")
    records = sorted((tmp_path / "results" / "ci" / "learning_rates").glob("convnext-*.json"))
    assert [path.stem for path in records] == ["convnext-lr0.001", "convnext-lr0.002"]

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the grid was trained again although it is recorded")

    (tmp_path / "results" / "ci" / "learning_rates" / "convnext-lr0.002.json").unlink()
    partly = Context(profile, 0, CPU, ArtifactStore(tmp_path / "partly"), results)
    assert partly.learning_rate("convnext") == chosen
    assert len(list((tmp_path / "partly" / "trained").iterdir())) == 1, "only the missing rate was trained"
    monkeypatch.setattr(context_module, "train_or_load", no_training)
    again = Context(profile, 0, CPU, ArtifactStore(tmp_path / "new-store"), results)
    assert again.learning_rate("convnext") == chosen
    assert again.learning_rate_grid("convnext") == first.learning_rate_grid("convnext")
    other = Context(profile.replace(train={**profile.train.model_dump(), "weight_decay": 0.01}), 0, CPU,
                    ArtifactStore(tmp_path / "new-store"), results)
    with pytest.raises(ArtifactCorrupt, match=r"learning_rates/convnext-lr0.001 of profile ci was trained with "
                                              r"other settings"):
        other.learning_rate("convnext")
