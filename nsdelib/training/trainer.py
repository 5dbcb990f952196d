"""Training: AdamW with warm-up and cosine schedule, early stopping on validation accuracy, resumable, cached.

Each epoch reseeds from ``(seed, epoch)`` and ends with a checkpoint, so a resumed run ends with the same weights; a
finished run's checkpoints are deleted once its model is stored."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any, get_args

import pandas as pd
import torch
from pydantic import Field
from torch import nn
from tqdm import tqdm

from ..common import ArtifactError, ConfigError, Section, device_description
from ..common.artifacts import ArtifactKind, ArtifactStore, weights_digest
from ..data.dataset import SpectrogramData, make_loader
from ..models.inference import predict_logits
from ..models.nsde import EvalNoise, eval_noise
from ..models.registry import ModelConfig, ModelKind, build_model

#: A finished run: best weights, history, test metrics. Bump when training or its metrics change.
TRAINED = ArtifactKind("trained", 2)
#: One epoch's resumable state of a run; bump with ``TRAINED``.
CHECKPOINT = ArtifactKind("checkpoint", 2)


class TrainConfig(Section):
    """Optimisation settings, chosen by measurement on the CPU (chapter 3)."""

    max_epochs: int = Field(ge=1, le=500, description="most passes over the training split (the cosine's length)")
    patience: int = Field(ge=1, description="stop after this many epochs without a better validation accuracy")
    batch_size: int = Field(ge=1, description="training mini-batch size")
    lr: float = Field(gt=0, le=1, description="peak AdamW learning rate")
    weight_decay: float = Field(ge=0, description="AdamW decoupled weight decay")
    warmup_epochs: float = Field(ge=0, description="linear warm-up length, in epochs")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    eval_batch_size: int = Field(default=256, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1, description="latest epoch checkpoints kept while a run trains")


@dataclass
class TrainedModel:
    """A trained model in eval mode on the context's device, with its training history and metrics."""

    kind: ModelKind
    seed: int
    model: nn.Module
    history: pd.DataFrame
    metrics: dict[str, Any]

    @property
    def digest(self) -> str:
        return weights_digest(self.model)


def training_key(data: SpectrogramData, kind: ModelKind, seed: int, model: ModelConfig,
                 train: TrainConfig) -> dict[str, Any]:
    """Everything a trained model depends on: data (and its seed), model, optimisation, kind, seed."""
    return {"data": data.config.model_dump(mode="json"), "data_seed": data.seed, "model": model.model_dump(mode="json"),
            "train": train.model_dump(mode="json"), "kind": kind, "seed": seed}


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
              steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step linear warm-up followed by cosine decay to zero."""
    total = cfg.max_epochs * steps_per_epoch
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1))
    if warmup == 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-3, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                      device: torch.device) -> float:
    return float((predict_logits(model, x, batch_size, device).argmax(1) == y).float().mean())


def checkpoint_key(key: dict[str, Any], epoch: int) -> dict[str, Any]:
    return {**key, "epoch": epoch}


def _latest_checkpoint(store: ArtifactStore, key: dict[str, Any], epochs: int) -> dict[str, Any] | None:
    """The newest readable epoch checkpoint of this run; corrupt or stale ones are skipped with a warning."""
    for epoch in reversed(range(epochs)):
        if not store.exists(CHECKPOINT, checkpoint_key(key, epoch)):
            continue
        try:
            return store.load(CHECKPOINT, checkpoint_key(key, epoch))
        except ArtifactError as exc:
            warnings.warn(f"{exc}; falling back to an earlier checkpoint", stacklevel=3)
    return None


def _train(data: SpectrogramData, kind: ModelKind, seed: int, model_cfg: ModelConfig, cfg: TrainConfig,
           store: ArtifactStore, device: torch.device, progress: bool | None) -> dict[str, Any]:
    if cfg.batch_size > len(data.train.y):
        raise ConfigError(f"invalid TrainConfig: parameter 'batch_size' = {cfg.batch_size} is larger than the "
                          f"{len(data.train.y)} training samples")
    key = training_key(data, kind, seed, model_cfg, cfg)
    torch.manual_seed(seed)
    model = build_model(kind, model_cfg, len(data.class_names)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(data.train.y) // cfg.batch_size)
    scheduler = _schedule(optimizer, cfg, steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    state = _latest_checkpoint(store, key, cfg.max_epochs)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": -1, "state_dict": None}
    start_epoch, wall = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, wall = state["history"], state["best"], state["wall_time_s"]
        start_epoch = state["epoch"] + 1
        print(f"{kind} seed {seed}: resuming after epoch {start_epoch} of at most {cfg.max_epochs}")

    hide_bars = None if progress is None else not progress
    epochs = tqdm(range(start_epoch, cfg.max_epochs), desc=f"{kind} seed {seed}", unit="epoch", disable=hide_bars)
    for epoch in epochs:
        if history and stopped(len(history), best["epoch"], cfg.patience):
            break
        start = time.perf_counter()
        torch.manual_seed(_epoch_seed(seed, epoch))
        loader = make_loader(data.train, cfg.batch_size, shuffle=True, seed=_epoch_seed(seed, epoch))
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=hide_bars):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        step_time = time.perf_counter() - start
        model.eval()
        with eval_noise(model, model_cfg.sde.eval_noise):
            val_accuracy = evaluate_accuracy(model, data.val.x, data.val.y, cfg.eval_batch_size, device)
        wall += time.perf_counter() - start
        row = {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_accuracy": correct / seen,
               "val_accuracy": val_accuracy, "lr": scheduler.get_last_lr()[0], "train_time_s": step_time,
               "wall_time_s": wall}
        history.append(row)
        if val_accuracy > best["val_accuracy"]:
            best = {"val_accuracy": val_accuracy, "epoch": epoch + 1,
                    "state_dict": copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})}
        print(f"{kind} seed {seed} epoch {epoch + 1:3d}/{cfg.max_epochs}: loss {row['train_loss']:.3f}  "
              f"train acc {row['train_accuracy']:.3f}  val acc {val_accuracy:.3f}  ({wall:.0f} s)")
        checkpoint = {"epoch": epoch, "model": {k: v.cpu() for k, v in model.state_dict().items()},
                      "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                      "history": history, "best": best, "wall_time_s": wall}
        store.save(CHECKPOINT, checkpoint_key(key, epoch), checkpoint)
        _prune_checkpoints(store, key, epoch - cfg.keep_checkpoints)

    model.load_state_dict(best["state_dict"])
    model.eval()
    metrics = _test_metrics(model, kind, data, model_cfg.sde.eval_noise, cfg, device)
    metrics.update({"best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"], "epochs": len(history),
                    "max_epochs": cfg.max_epochs, "stopped_early": len(history) < cfg.max_epochs, "wall_time_s": wall,
                    "weights_sha256": weights_digest(best["state_dict"]),
                    "device": device_description(device), "seed": seed, "kind": kind})
    return {"state_dict": best["state_dict"], "history": history, "metrics": metrics}


def stopped(epochs_done: int, best_epoch: int, patience: int) -> bool:
    """The early-stopping rule: ``patience`` epochs have passed since the best validation accuracy."""
    return epochs_done - best_epoch >= patience


def _prune_checkpoints(store: ArtifactStore, key: dict[str, Any], upto_epoch: int) -> None:
    for epoch in range(upto_epoch + 1):
        store.delete(CHECKPOINT, checkpoint_key(key, epoch))


def classification_metrics(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> dict[str, object]:
    """Accuracy, per-class accuracy (recall) and the confusion matrix ``[true, predicted]``, as JSON-ready values."""
    flat = y_true.long() * num_classes + y_pred.long()
    confusion = torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)
    support = confusion.sum(dim=1).clamp(min=1)
    return {
        "accuracy": float((y_true == y_pred).float().mean()),
        "per_class_accuracy": (confusion.diag() / support).tolist(),
        "confusion": confusion.tolist(),
    }


def _test_metrics(model: nn.Module, kind: ModelKind, data: SpectrogramData, reported: str, cfg: TrainConfig,
                  device: torch.device) -> dict[str, Any]:
    """Clean test metrics; the NSDE is evaluated in every eval-noise mode, the ``reported`` one is the headline."""
    headline = reported if kind == "nsde" else "off"
    by_mode: dict[str, dict[str, Any]] = {}
    for mode in get_args(EvalNoise) if kind == "nsde" else ("off",):
        torch.manual_seed(data.seed)
        with eval_noise(model, mode):
            predictions = predict_logits(model, data.test.x, cfg.eval_batch_size, device).argmax(1)
        by_mode[mode] = classification_metrics(data.test.y, predictions, len(data.class_names))
    return {**by_mode[headline], "eval_noise": headline,
            "accuracy_by_eval_noise": {mode: metrics["accuracy"] for mode, metrics in by_mode.items()}}


def train_or_load(data: SpectrogramData, kind: ModelKind, seed: int, model: ModelConfig, train: TrainConfig,
                  store: ArtifactStore, device: torch.device, progress: bool | None = None) -> TrainedModel:
    """The trained model of ``kind`` for ``seed``: read from ``store``, resumed, or trained (``progress``: tqdm bars,
    None only on a terminal)."""
    key = training_key(data, kind, seed, model, train)
    payload = store.fetch(TRAINED, key, lambda: _train(data, kind, seed, model, train, store, device, progress))
    _prune_checkpoints(store, key, train.max_epochs - 1)  # a finished run is never resumed: its states only take space
    net = build_model(kind, model, len(data.class_names))
    net.load_state_dict(payload["state_dict"])
    net.to(device).eval()
    return TrainedModel(kind, seed, net, pd.DataFrame(payload["history"]), payload["metrics"])


def runs_table(runs: dict[ModelKind, list[TrainedModel]]) -> pd.DataFrame:
    """One row per trained model: clean test accuracy (headline and per eval-noise mode), best epoch, time."""
    rows = []
    for kind, trained in runs.items():
        for run in trained:
            row = {"model": kind, "seed": run.seed, "accuracy": run.metrics["accuracy"],
                   "eval noise": run.metrics["eval_noise"], "best epoch": run.metrics["best_epoch"],
                   "epochs": run.metrics["epochs"], "max epochs": run.metrics["max_epochs"],
                   "wall time (s)": run.metrics["wall_time_s"]}
            row.update({f"accuracy, noise {mode}": acc for mode, acc in run.metrics["accuracy_by_eval_noise"].items()})
            rows.append(row)
    return pd.DataFrame(rows)


def stopping_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model of a :func:`runs_table`: its runs, how many the training rule stopped before their maximum (a run
    that reaches it may still have been improving) and the first and last best epoch kept."""
    by_model = runs.assign(stopped=runs["epochs"] < runs["max epochs"]).groupby("model", sort=False)
    return pd.DataFrame({"runs": by_model.size(), "stopped before the maximum": by_model["stopped"].sum(),
                         "maximum": by_model["max epochs"].max(), "earliest best epoch": by_model["best epoch"].min(),
                         "latest best epoch": by_model["best epoch"].max()})


def stopping_sentence(stops: pd.DataFrame) -> str:
    """A :func:`stopping_table` in one sentence for the book's prose."""
    per_model = "; ".join(
        f"{model} {row['stopped before the maximum']} of {row['runs']}, best epochs {row['earliest best epoch']}–"
        f"{row['latest best epoch']}" for model, row in stops.astype(int).iterrows())
    return (f"The rule stopped {int(stops['stopped before the maximum'].sum())} of {int(stops['runs'].sum())} runs "
            f"before the maximum of {int(stops['maximum'].max())} epochs ({per_model}).")


def histories(runs: dict[ModelKind, list[TrainedModel]]) -> pd.DataFrame:
    """All training histories in one long table (columns of ``history`` plus model and seed)."""
    return pd.concat([run.history.assign(model=kind, seed=run.seed) for kind, trained in runs.items()
                      for run in trained], ignore_index=True)
