"""``nsdebook verify``: retrain the models the records cite and compare their digests ("Running this book")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common import ConfigError, described_threads, device_description, one_of
from ..data.dataset import SpectrogramData
from ..evaluation.data_size import data_for_size
from ..models.registry import ModelKind
from ..training.trainer import TrainConfig, TrainedModel, train_or_load
from .context import Context
from .provenance import RESULTS_ROOT, load_recorded


@dataclass(frozen=True)
class CitedModel:
    """One model cited by recorded results (``n_train`` None: trained on the full split)."""

    kind: ModelKind
    seed: int
    n_train: int | None
    sha256: str
    records: tuple[str, ...]
    trained_on: str | None = None
    train: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        size = "" if self.n_train is None else f" trained on {self.n_train} samples"
        return f"{self.kind} seed {self.seed}{size}"


class RecordsDisagree(ConfigError):
    """Two recorded results cite different weights for the same model."""


def cited_models(profile: str, root: Path = RESULTS_ROOT) -> tuple[list[CitedModel], list[str]]:
    """The models the records of ``profile`` cite, one entry each, and the σ-sweep models left to ``calibrate``."""
    found: dict[tuple[str, int, int | None], CitedModel] = {}
    skipped: list[str] = []
    folder = root / profile
    for path in sorted(path for part in ("", "models/", "adversarial/", "data_size/") for path in folder.glob(f"{part}*.json")):
        name = path.relative_to(folder).with_suffix("").as_posix()
        recorded = load_recorded(name, profile, root)
        assert recorded is not None
        own = recorded["result"] if name.startswith("models/") else {}
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
            trained_on = own.get("metrics", {}).get("device") or (known and known.trained_on)
            found[key] = CitedModel(*key, entry["sha256"], records, trained_on,
                                    own.get("train") or (known.train if known else None))
    return list(found.values()), skipped


def study_data(ctx: Context, n_train: int) -> SpectrogramData:
    """The data set of chapter 8's study whose training split holds ``n_train`` samples. A record names the split's
    size, which can exceed the size the study asked for (whole samples per class), and the data set is drawn from the
    size asked for; a size this profile's study does not give is asked for as it is."""
    found = [data for data in ctx.data_size_datasets() if len(data.train) == n_train]
    return found[0] if found else data_for_size(ctx.data, n_train, ctx.store)


def rebuild(ctx: Context, model: CitedModel, data: SpectrogramData, progress: bool | None = None) -> TrainedModel:
    """The cited model as this machine trains it on ``data``, with the settings and thread count its record names."""
    threads = torch.get_num_threads()
    torch.set_num_threads(described_threads(model.trained_on or "") or threads)  # float sums depend on it
    try:
        train = ctx.train_config(model.kind) if model.train is None else TrainConfig.model_validate(model.train)
        return train_or_load(data, model.kind, model.seed, ctx.profile.model, train, ctx.store, ctx.device, progress)
    finally:
        torch.set_num_threads(threads)


def verify(ctx: Context, kind: str | None = None, seed: int | None = None, root: Path = RESULTS_ROOT,
           log: Callable[[str], None] = print) -> list[CitedModel]:
    """Rebuild every cited model (of ``kind`` / ``seed`` if given), log each comparison, return the mismatches."""
    if kind is not None:
        one_of(kind, ModelKind, "model kind")
    models, skipped = cited_models(ctx.profile.name, root)
    chosen = [m for m in models if (kind is None or m.kind == kind) and (seed is None or m.seed == seed)]
    if not chosen:
        raise ConfigError(f"no recorded {ctx.profile.name} result under {root / ctx.profile.name} cites a model"
                          + (f" of kind {kind}" if kind else "") + (f" with seed {seed}" if seed is not None else ""))
    sizes = {n_train: study_data(ctx, n_train) for n_train in {m.n_train for m in chosen} - {None}}
    mismatches = []
    for model in chosen:
        digest = rebuild(ctx, model, sizes.get(model.n_train, ctx.data), progress=False).digest
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
