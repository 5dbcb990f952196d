"""C3's ``paper`` attacks recorded one seed at a time (``results/paper/adversarial/seed-N.json``, each with its
per-image outcomes) and merged back, a seed whose models are not the book's refused. Chapter 5 explains why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..claims.c3_attacks import accuracy_table, adversarial_claim
from ..common import ArtifactCorrupt
from ..models.inference import headline_mode
from ..report.outcomes import outcomes_path, read_outcomes
from .profiles import get_profile
from .provenance import (RESULTS_ROOT, ComputeTime, ModelDigest, is_recorded, load_recorded, model_record_name,
                         provenance, record_result)

FOLDER = "adversarial"
#: The columns that name one group of per-image attack outcomes in a seed's record (``draws``: the noise draws each
#: share of correct scorings is over, which its Monte-Carlo error needs).
OUTCOME_KEYS = ("model", "seed", "norm", "eps", "mode", "attack", "protocol", "draws")


def seed_record_name(seed: int) -> str:
    return f"{FOLDER}/seed-{seed}"


def record_adversarial_seed(seed: int, outcomes: pd.DataFrame, convergence: pd.DataFrame | None,
                            models: list[ModelDigest], profile: str, device: torch.device | str,
                            wall_time_s: float | ComputeTime, root: Path = RESULTS_ROOT) -> Path | None:
    """Record one seed's attack outcomes (every model's, with ``model`` and ``seed`` columns) unless it is recorded."""
    name = seed_record_name(seed)
    if is_recorded(name, profile, root):
        return None
    result = {"seed": seed, "accuracy": accuracy_table(outcomes).to_dict(orient="list"),
              "convergence": None if convergence is None else convergence.to_dict(orient="list")}
    return record_result(name, result, provenance(profile, [seed], device, wall_time_s, models), root, outcomes,
                         [k for k in OUTCOME_KEYS if k in outcomes.columns])


def merged_adversarial(profile: str = "paper", root: Path = RESULTS_ROOT) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every recorded seed's per-image outcomes in one table, and each seed file's provenance (in seed order); a seed
    file without outcomes, or citing weights other than its model's own record, raises ArtifactCorrupt."""
    frames, provenances = [], []
    paths = sorted((root / profile / FOLDER).glob("seed-*.json"), key=lambda p: int(p.stem.removeprefix("seed-")))
    for path in paths:
        recorded = load_recorded(f"{FOLDER}/{path.stem}", profile, root)
        for model in recorded["provenance"]["models"]:
            own = load_recorded(model_record_name(model["kind"], int(model["seed"])), profile, root)
            expected = None if own is None else own["provenance"]["models"][0]["sha256"]
            if expected is not None and expected != model["sha256"]:
                raise ArtifactCorrupt(
                    f"{path} attacked {model['kind']} seed {model['seed']} with weights {model['sha256'][:12]}…, but the "
                    f"book's model ({model_record_name(model['kind'], model['seed'])}.json) has {expected[:12]}…: "
                    f"record that seed again")
        stored = outcomes_path(path)
        if not stored.exists():
            raise ArtifactCorrupt(f"{path} has no per-image outcomes at {stored}: record that seed again")
        frames.append(read_outcomes(stored))
        provenances.append(recorded["provenance"])
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), provenances


def merged_provenance(provenances: list[dict[str, Any]]) -> dict[str, Any]:
    """One provenance block for merged seeds: their seeds, the commits, devices and dates, the summed wall time (with
    the notes of the seeds where it is a lower bound)."""
    def joined(field: str) -> str:
        return ", ".join(dict.fromkeys(str(p[field]) for p in provenances if p.get(field)))

    notes = joined("wall_time_note")
    return {"profile": provenances[0]["profile"], "seeds": [s for p in provenances for s in p["seeds"]],
            "commit": joined("commit"), "device": joined("device"), "date": joined("date"),
            **({"wall_time_note": notes} if notes else {}),
            "wall_time_s": sum(float(p["wall_time_s"]) for p in provenances),
            "models": [m for p in provenances for m in p["models"]],
            "artifact_versions": provenances[-1].get("artifact_versions")}


def c3_record(profile: str = "paper", root: Path = RESULTS_ROOT) -> dict[str, Any] | None:
    """C3 judged on every recorded seed, as a record the glance page reads like any other (None: no seed yet)."""
    outcomes, provenances = merged_adversarial(profile, root)
    if not provenances:
        return None
    sde = get_profile(profile).model.sde
    claim = adversarial_claim(outcomes, headline_mode("nsde", sde).name, headline_mode("convnext", sde).name)
    verdicts = {name: verdict.to_dict() for name, verdict in claim.verdicts.items()}
    return {"provenance": merged_provenance(provenances),
            "result": {"verdicts": verdicts, "eps_star": claim.eps_star, "note": claim.note}}


def load_claim_record(name: str) -> dict[str, Any] | None:
    """A claim's ``paper`` record by name, C3's (``adversarial``) merged from its seed files."""
    return c3_record() if name == FOLDER else load_recorded(name)
