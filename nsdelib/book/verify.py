"""``nsdebook verify``: prove that this machine's models are the ones the recorded results came from.

Every recorded result cites the SHA-256 of the weights of each model it used. Verifying retrains each
cited model (or reads it back from the artifact store) and compares digests: training is seeded and
deterministic on the CPU, so a match means the records can be rebuilt here. See "Running this book".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common.devices import described_threads, device_description
from ..common.errors import ConfigError
from ..evaluation.data_size import data_for_size
from ..models.registry import MODEL_KINDS
from ..training.trainer import TrainConfig, TrainedModel, train_or_load
from .context import Context
from .provenance import RESULTS_ROOT, load_recorded


@dataclass(frozen=True)
class CitedModel:
    """One model cited by recorded results: kind, seed, training-set size (None: the full split), digest."""

    kind: str
    seed: int
    n_train: int | None
    sha256: str
    records: tuple[str, ...]
    trained_on: str | None = None
    train: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """How messages name the model."""
        size = "" if self.n_train is None else f" trained on {self.n_train} samples"
        return f"{self.kind} seed {self.seed}{size}"


class RecordsDisagree(ConfigError):
    """Two recorded results cite different weights for the same model."""


def cited_models(profile: str, root: Path = RESULTS_ROOT) -> tuple[list[CitedModel], list[str]]:
    """The models the records of ``profile`` cite (one entry per model), and the σ-sweep models left to ``calibrate``."""
    found: dict[tuple[str, int, int | None], CitedModel] = {}
    skipped: list[str] = []
    folder = root / profile
    for path in sorted([*folder.glob("*.json"), *folder.glob("models/*.json"), *folder.glob("adversarial/*.json")]):
        name = path.relative_to(folder).with_suffix("").as_posix()
        recorded = load_recorded(name, profile, root)
        assert recorded is not None
        for entry in recorded["provenance"].get("models", []):
            if "setting" in entry:
                skipped.append(f"{entry['kind']} {json.dumps(entry['setting'], sort_keys=True)} in {name}.json")
                continue
            key = (entry["kind"], int(entry["seed"]), entry.get("n_train"))
            known = found.get(key)
            if known is not None and known.sha256 != entry["sha256"]:
                raise RecordsDisagree(f"{known.label}: {', '.join(known.records)} cite weights {known.sha256[:12]}…, "
                                      f"{name}.json cites {entry['sha256'][:12]}…")
            records = (*known.records, f"{name}.json") if known else (f"{name}.json",)
            own = recorded["result"] if name.startswith("models/") else {}
            trained_on = own.get("metrics", {}).get("device") or (known and known.trained_on)
            found[key] = CitedModel(*key, entry["sha256"], records, trained_on,
                                    own.get("train") or (known.train if known else None))
    return list(found.values()), skipped


def rebuild(ctx: Context, model: CitedModel, progress: bool | None = None) -> TrainedModel:
    """The cited model as this machine trains it (read back from the store when it is there).

    Float sums depend on the thread count, so a retrain uses the threads the record says it was trained with.
    """
    threads, recorded_threads = torch.get_num_threads(), described_threads(model.trained_on or "")
    torch.set_num_threads(recorded_threads or threads)
    try:
        if model.n_train is None and model.train is not None:  # the settings it was trained with, its rate included
            return train_or_load(ctx.data, model.kind, model.seed, ctx.profile.model,  # type: ignore[arg-type]
                                 TrainConfig.model_validate(model.train), ctx.store, ctx.device, progress)
        if model.n_train is None:
            return ctx.train(model.kind, model.seed, progress)  # type: ignore[arg-type]
        sized = data_for_size(ctx.data, model.n_train, ctx.store)
        return train_or_load(sized, model.kind, model.seed, ctx.profile.model,  # type: ignore[arg-type]
                             ctx.train_config(model.kind), ctx.store, ctx.device, progress)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)


def verify(ctx: Context, kind: str | None = None, seed: int | None = None, root: Path = RESULTS_ROOT,
           log: Callable[[str], None] = print) -> list[CitedModel]:
    """Rebuild every cited model (only ``kind`` / ``seed`` if given) and log each comparison; return the mismatches.

    Raises ConfigError when nothing is cited that matches the filter, or when two records disagree.
    """
    if kind is not None and kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; allowed kinds: {', '.join(MODEL_KINDS)}")
    models, skipped = cited_models(ctx.profile.name, root)
    chosen = [m for m in models if (kind is None or m.kind == kind) and (seed is None or m.seed == seed)]
    if not chosen:
        raise ConfigError(f"no recorded {ctx.profile.name} result under {root / ctx.profile.name} cites a model"
                          + (f" of kind {kind}" if kind else "") + (f" with seed {seed}" if seed is not None else ""))
    mismatches = []
    for model in chosen:
        digest = rebuild(ctx, model, progress=False).digest
        if digest == model.sha256:
            log(f"{model.label}: matches {digest[:12]}… ({', '.join(model.records)})")
        else:
            mismatches.append(model)
            log(f"{model.label}: MISMATCH: this machine's weights {digest[:12]}…, recorded {model.sha256[:12]}… "
                f"in {', '.join(model.records)} (trained on {model.trained_on or 'an unrecorded device'}; "
                f"here {device_description(ctx.device)}: bits agree only on the same kind of processor)")
    for entry in skipped if kind is None and seed is None else ():
        log(f"not checked (a model of the σ sweep, which verify does not rebuild): {entry}")
    return mismatches
