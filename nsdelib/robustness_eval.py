"""How the robustness sweeps query a model: evaluation modes, reproducible predictions, fixed subsets.

The NSDE is stochastic, so "the accuracy of the model" needs a mode: ``"off"`` (deterministic drift),
``"single"`` (one stochastic pass) or ``"ensemble"`` (K passes, log of the mean softmax). The
baseline is deterministic and is evaluated once. The mode is set by a *noise control*: a context
manager factory ``noise_control(model, mode, ensemble_size)``, by default
``nsdelib.models.eval_noise``; tests pass their own for toy models.

The model's noise is drawn from torch's global generator. ``predict`` forks that generator and seeds
it, so (1) the same seed gives the same numbers and (2) two evaluations with the same seed, inputs
of the same shape and the same batching draw *the same* noise for every sample ("common random
numbers"): a sweep then compares noise levels or attack budgets on one fixed realisation of the
model's noise instead of adding fresh evaluation noise at every point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd
import torch
from pydantic import BaseModel
from torch import nn

from .artifacts import ArtifactStore
from .models import eval_noise
from .stats import Direction, mean_interval, paired_verdict

if TYPE_CHECKING:
    from .context import Context

NoiseMode = Literal["off", "single", "ensemble"]
NoiseControl = Callable[[nn.Module, NoiseMode, int | None], AbstractContextManager[object]]


@dataclass(frozen=True)
class EvalMode:
    """One way of evaluating a model: a label for tables and figures, its noise mode and ensemble size."""

    name: str
    noise: NoiseMode
    ensemble_size: int | None = None

    def __post_init__(self) -> None:
        if self.noise == "ensemble" and (self.ensemble_size is None or self.ensemble_size < 1):
            raise ValueError(f"evaluation mode {self.name!r}: an ensemble needs ensemble_size >= 1")

    @property
    def stochastic(self) -> bool:
        """Whether predictions in this mode depend on the model's noise draws."""
        return self.noise != "off"


def model_eval_modes(kind: Literal["convnext", "nsde"], ensemble_size: int) -> tuple[EvalMode, ...]:
    """The modes the book reports: the baseline once; the NSDE as one stochastic pass and as a K-pass ensemble."""
    if kind == "convnext":
        return (EvalMode("ConvNeXt", "off"),)
    if kind == "nsde":
        return (
            EvalMode("NSDE, single pass", "single"),
            EvalMode(f"NSDE, {ensemble_size}-pass ensemble", "ensemble", ensemble_size),
        )
    raise ValueError(f"unknown model kind {kind!r}; allowed kinds: 'convnext', 'nsde'")


def default_noise_control() -> NoiseControl:
    """The noise control used when none is given: ``nsdelib.models.eval_noise``."""
    return eval_noise


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Fork torch's global generator and seed it: reproducible draws that leave the caller's RNG untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    mode: EvalMode,
    *,
    batch_size: int,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> torch.Tensor:
    """Predicted classes of ``x`` ([N,1,F,T] in [0,1]) in ``mode``, batched, with seeded model noise; on the CPU."""
    control = noise_control or default_noise_control()
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with seeded_rng(seed, device), control(model, mode.noise, mode.ensemble_size):
            preds = [model(batch.to(device)).argmax(dim=1).cpu() for batch in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def stratified_subset(y: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of a class-stratified random subset of ``size`` samples (all samples if ``size`` is None).

    Each class gets its share of ``size`` in proportion to its frequency (largest remainders
    first), so the subset's class balance matches the full set's.
    """
    n = len(y)
    if size is None or size >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(y, return_counts=True)
    quotas = counts.double() * size / n
    take = quotas.floor().long()
    remainders = (quotas - take).argsort(descending=True, stable=True)
    take[remainders[: size - int(take.sum())]] += 1
    chosen = []
    for label, k in zip(classes.tolist(), take.tolist()):
        members = (y == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen).sort().values


def content_digest(*items: nn.Module | torch.Tensor | Mapping[str, Any]) -> str:
    """SHA-256 of models (structure and weights), tensors and JSON-ready mappings: a sweep's cache key.

    Keying a sweep on what it computes with (not on names) means a retrained model or another
    data subset can never read a stale result.
    """
    digest = hashlib.sha256()
    for item in items:
        if isinstance(item, nn.Module):
            digest.update(repr(item).encode())
            digest.update(json.dumps(_module_settings(item), sort_keys=True, default=str).encode())
            for name, tensor in item.state_dict().items():
                digest.update(name.encode())
                digest.update(_tensor_bytes(tensor))
        elif isinstance(item, torch.Tensor):
            digest.update(_tensor_bytes(item))
        else:
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _module_settings(model: nn.Module) -> dict[str, Any]:
    """Public plain-value and config attributes of every submodule (e.g. the NSDE's σ), which weights do not show."""
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


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return f"{tuple(tensor.shape)}{tensor.dtype}".encode() + flat.view(torch.uint8).numpy().tobytes()


def modes_key(modes: tuple[EvalMode, ...], noise_control: NoiseControl | None) -> dict[str, Any]:
    """The evaluation modes and the noise control's name, as JSON-ready data for a cache key."""
    control = noise_control or default_noise_control()
    return {
        "modes": [asdict(mode) for mode in modes],
        "noise_control": f"{control.__module__}.{getattr(control, '__qualname__', type(control).__name__)}",
    }


def fetch_table(
    store: ArtifactStore, kind: str, key: Mapping[str, Any], build: Callable[[], pd.DataFrame], depends_on: str | None = None
) -> pd.DataFrame:
    """A sweep's table from the artifact store, or ``build()`` stored as JSON (column order kept).

    The artifact is fingerprinted by the module that computes it (``depends_on``, default ``build``'s).
    """

    def build_payload() -> dict[str, Any]:
        table = build()
        return {"columns": list(table.columns), "rows": table.to_dict(orient="list")}

    payload = store.scoped(depends_on or build.__module__).fetch(kind, key, build_payload, name="table.json")
    return pd.DataFrame(payload["rows"])[payload["columns"]]


class SubsetSweep(Protocol):
    """A sweep run on a fixed subset: ``sweep(model, x, y, cfg, modes, seed=..., noise_control=...)``."""

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Any, modes: tuple[EvalMode, ...], *,
        seed: int, noise_control: NoiseControl | None = None,
    ) -> pd.DataFrame: ...


def cached_subset_sweep(
    ctx: Context,
    kind: str,
    cfg: Any,
    sweep: SubsetSweep,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    modes: tuple[EvalMode, ...],
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """``sweep`` on ``cfg``'s stratified subset of (x, y), stored as an artifact and reused.

    Keyed on the sweep config, the seed, the evaluation modes and the content of the model and the
    subset, so a rerun with the same inputs reads the table instead of recomputing, and a retrained
    model or a changed σ never reads a stale one.
    """
    subset = stratified_subset(y, cfg.subset_size, cfg.subset_seed)
    x, y = x[subset], y[subset]
    key = {
        "sweep": cfg.model_dump(mode="json"),
        "seed": seed,
        **modes_key(modes, noise_control),
        "content": content_digest(model, x, y),
    }

    def build() -> pd.DataFrame:
        return sweep(model, x, y, cfg, modes, seed=seed, noise_control=noise_control)

    return fetch_table(ctx.store, kind, key, build, depends_on=sweep.__module__)


def check_sweep_values(values: tuple[float, ...], what: str) -> tuple[float, ...]:
    """A sweep's values must be non-empty, finite, positive and strictly increasing (the clean point 0 is implied)."""
    if not values:
        raise ValueError(f"the {what} sweep is empty; give at least one value > 0")
    bad = [v for v in values if not (v > 0 and v < float("inf"))]
    if bad:
        raise ValueError(f"every {what} must be finite and > 0 (the clean point 0 is always included), got {bad}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"the {what} values must be strictly increasing, got {list(values)}")
    return values


def seed_intervals(table: pd.DataFrame, by: Sequence[str], value: str = "accuracy") -> pd.DataFrame:
    """Mean and 95 % Student-t interval over seeds of ``value`` for each group of ``by`` (one row per seed each).

    Columns: the ``by`` keys, ``mean``, ``low``, ``high`` and ``n`` (seeds); NaN bounds with one seed.
    """
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        interval = mean_interval(group[value].to_numpy())
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        rows.append({**keys, "mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n})
    return pd.DataFrame(rows)


def paired_verdicts(
    table: pd.DataFrame,
    by: Sequence[str],
    a: str,
    b: str,
    value: str = "accuracy",
    direction: Direction = "greater",
) -> pd.DataFrame:
    """For each group of ``by``, the book's verdict on "mode ``a`` is ``direction`` than mode ``b``".

    ``table`` has ``mode`` and ``seed`` columns; values are paired by seed (``nsdelib.stats.paired_verdict``).
    Columns: the ``by`` keys, the mean difference a − b with its 95 % interval, seeds and the verdict.
    """
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        paired = group.pivot_table(index="seed", columns="mode", values=value)[[a, b]].dropna()
        verdict = paired_verdict(paired[a].to_numpy(), paired[b].to_numpy(), direction)
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        rows.append({**keys, "difference": verdict.difference.mean, "low": verdict.difference.low,
                     "high": verdict.difference.high, "n": verdict.difference.n, "verdict": verdict.label})
    return pd.DataFrame(rows)
