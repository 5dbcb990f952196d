"""Provenance and recorded results: where a number came from, so the book can show it honestly.

Fresh results of the profile a book is built with live in the artifact store. Results of a
``paper`` run that CI cannot afford are *recorded* as small JSON files under ``results/<profile>/``
with their provenance (commit, date, device, wall time, seeds, profile, versions) and committed;
chapters show them beside the freshly built numbers, labelled as recorded.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..common.artifacts import KINDS, atomic_write
from ..common.devices import device_description
from ..common.errors import ArtifactCorrupt
from ..report.outcomes import outcomes_path, write_outcomes
from .profiles import PROFILE_NAMES, Profile

if TYPE_CHECKING:
    from ..training.trainer import TrainConfig, TrainedModel

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS_ROOT = REPO_ROOT / "results"
TRACKED_PACKAGES = ("torch", "torchvision", "timm", "torchsde", "captum", "torchattacks", "numpy", "scipy")


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The current commit hash, suffixed ``-dirty`` when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages whose behaviour the results depend on."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


ModelDigest = dict[str, Any]


def model_digests(runs: Mapping[str, Sequence[TrainedModel]]) -> list[ModelDigest]:
    """``{"kind", "seed", "sha256"}`` of every model in ``runs`` (kind -> its runs): what a record cites."""
    return [{"kind": kind, "seed": run.seed, "sha256": run.digest} for kind, kind_runs in runs.items() for run in kind_runs]


def table_digests(table: pd.DataFrame, size_column: str) -> list[ModelDigest]:
    """The models cited by a table with ``model``, ``seed``, ``size_column`` and ``weights sha256`` columns (one each)."""
    models = table.drop_duplicates(["model", "seed", size_column])
    return [{"kind": row["model"], "seed": int(row["seed"]), "n_train": int(row[size_column]),
             "sha256": row["weights sha256"]} for row in models.to_dict(orient="records")]


def artifact_versions() -> dict[str, int]:
    """The version of every artifact kind the library produces (they are declared where the kinds are made)."""
    return {name: kind.version for name, kind in sorted(KINDS.items())}


def provenance(
    profile: str, seeds: list[int], device: torch.device | str, wall_time_s: float, models: Sequence[ModelDigest] = ()
) -> dict[str, Any]:
    """The provenance block stored with every recorded result.

    ``models`` lists the weights' SHA-256 of each model the result used (:func:`model_digests`), so
    that ``nsdebook verify`` can prove a retrain elsewhere rebuilt the same models; the artifact
    kinds' versions say which behaviour of the library produced it.
    """
    return {
        "profile": profile,
        "seeds": list(seeds),
        "device": device_description(device),
        "wall_time_s": round(float(wall_time_s), 2),
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [dict(model) for model in models],
        "artifact_versions": artifact_versions(),
        "versions": package_versions(),
    }


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None: strict parsers reject them."""
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_result(name: str, result: dict[str, Any], prov: dict[str, Any], root: Path = RESULTS_ROOT) -> Path:
    """Write ``{"provenance": ..., "result": ...}`` atomically, as strict JSON, to ``root/<profile>/<name>.json``."""
    if prov.get("profile") not in PROFILE_NAMES:
        raise ValueError(f"provenance names unknown profile {prov.get('profile')!r}")
    path = root / prov["profile"] / f"{name}.json"
    payload = strict_json({"provenance": prov, "result": result})
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)))
    return path


def model_record_name(kind: str, seed: int) -> str:
    """The name of one trained model's record: ``models/<kind>-seed<N>``."""
    return f"models/{kind}-seed{seed}"


def record_model(run: TrainedModel, profile: str, device: torch.device | str, train: TrainConfig | None = None,
                 root: Path = RESULTS_ROOT) -> Path | None:
    """Record one trained model (its weights' SHA-256, test metrics, history, and the optimisation settings it was
    trained with, the rule's learning rate among them) unless a record of it exists.

    One file per model, so a run cut short keeps every model it finished and a later one adds the rest;
    an existing record is never overwritten (``nsdebook verify`` compares a retrain with it instead).
    """
    name = model_record_name(run.kind, run.seed)
    if (root / profile / f"{name}.json").exists():
        return None
    result = {"kind": run.kind, "seed": run.seed, "metrics": run.metrics, "history": run.history.to_dict(orient="list"),
              "train": None if train is None else train.model_dump(mode="json")}
    digest = [{"kind": run.kind, "seed": run.seed, "sha256": run.digest}]
    return record_result(name, result, provenance(profile, [run.seed], device, run.metrics["wall_time_s"], digest), root)


def frontier_record_name(row: dict[str, Any]) -> str:
    """The name of one frontier point's record: ``frontier/<kind>[-sigma<σ>|-std<std>]-seed<N>``."""
    names = {"nsde": ("sigma", "sigma"), "convnext_noise": ("std", "input_noise_std")}
    setting = f"-{names[row['kind']][0]}{row[names[row['kind']][1]]:g}" if row["kind"] in names else ""
    return f"frontier/{row['kind']}{setting}-seed{row['seed']}"


def record_frontier_point(row: dict[str, Any], profile: str, device: torch.device | str,
                          root: Path = RESULTS_ROOT) -> Path | None:
    """Record one measured frontier point (``evaluation.calibration.measure_point``) unless a record of it exists.

    One file per point and seed, each citing the digest of the model it measured, so a run cut short
    keeps every point it finished and a later one adds only the missing ones.
    """
    name = frontier_record_name(row)
    if (root / profile / f"{name}.json").exists():
        return None
    setting = {key: row[key] for key in ("sigma", "input_noise_std") if row[key] is not None}
    digest = [{"kind": row["kind"], "seed": row["seed"], "sha256": row["weights_sha256"], "setting": setting}]
    return record_result(name, row, provenance(profile, [row["seed"]], device, row["wall_time_s"], digest), root)


def load_frontier(profile: str = "paper", root: Path = RESULTS_ROOT) -> pd.DataFrame:
    """Every recorded frontier point of ``profile`` (one row per point and seed, with its record's commit and
    device); empty when none is recorded yet."""
    rows = []
    for path in sorted((root / profile / "frontier").glob("*.json")):
        recorded = load_recorded(f"frontier/{path.stem}", profile, root)
        prov = recorded["provenance"]
        rows.append({**recorded["result"], "commit": prov["commit"], "device": prov["device"]})
    return pd.DataFrame(rows)


def load_recorded(name: str, profile: str = "paper", root: Path = RESULTS_ROOT) -> dict[str, Any] | None:
    """A recorded result with its provenance, or None if that run has not been recorded."""
    path = root / profile / f"{name}.json"
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactCorrupt(f"recorded result {path} is not valid JSON: {exc}") from exc
    if not {"provenance", "result"} <= payload.keys():
        raise ArtifactCorrupt(f"recorded result {path} lacks its provenance or result block")
    return payload


def load_recorded_index(root: Path = RESULTS_ROOT) -> pd.DataFrame:
    """One row per recorded result: its profile, name and provenance, for the book to list."""
    rows = []
    for path in sorted(root.glob("*/*.json")):
        prov = load_recorded(path.stem, path.parent.name, root)["provenance"]
        rows.append(
            {
                "profile": path.parent.name,
                "result": path.stem,
                "date": prov["date"],
                "commit": prov["commit"],
                "device": prov["device"],
                "wall time (s)": prov["wall_time_s"],
                "seeds": prov["seeds"],
            }
        )
    columns = ["profile", "result", "date", "commit", "device", "wall time (s)", "seeds"]
    return pd.DataFrame(rows, columns=columns)


class Recording(Protocol):
    """What recording needs of a chapter's context (the context itself sits above this module)."""

    profile: Profile
    device: torch.device


def record_if_enabled(
    ctx: Recording, name: str, result: dict[str, Any], seeds: list[int], wall_time_s: float,
    models: Sequence[ModelDigest], outcomes: pd.DataFrame | None = None, outcome_keys: Sequence[str] = (),
) -> Path | None:
    """Record ``result`` with its provenance and the digests of ``models`` when the profile asks for it (``paper`` does).

    ``outcomes``, one row per image (``example``, ``correct``) and group (``outcome_keys``: seed, model,
    level, ...), are stored beside the record so its verdicts can be judged again per image.
    """
    if not ctx.profile.record_results:
        return None
    path = record_result(name, result, provenance(ctx.profile.name, seeds, ctx.device, wall_time_s, models))
    if outcomes is not None:
        write_outcomes(outcomes_path(path), outcomes, keys=outcome_keys)
    return path


def recorded_caption(recorded: dict[str, Any]) -> str:
    """One line that labels a recorded result with where and when it was computed (the full commit)."""
    prov = recorded["provenance"]
    return (
        f"recorded {prov['profile']} run: commit {prov['commit']}, {prov['date']}, {prov['device']}, "
        f"wall time {prov['wall_time_s'] / 60:.1f} min, seeds {prov['seeds']}"
    )


def provenance_warnings(prov: dict[str, Any]) -> list[str]:
    """Why a recorded result may not come from this build's code: a dirty tree, changed artifact versions, no digests."""
    warnings = []
    if prov["commit"].endswith("-dirty"):
        warnings.append(
            f"WARNING: recorded from a work tree with uncommitted changes (commit {prov['commit']}): "
            "that commit alone may not reproduce it."
        )
    recorded, current = prov.get("artifact_versions"), artifact_versions()
    if recorded is None:
        warnings.append("WARNING: recorded before artifacts were versioned: it carries no artifact versions.")
    else:
        changed = [f"{name} {version} → {current.get(name, 'gone')}" for name, version in sorted(recorded.items())
                   if current.get(name) != version]
        if changed:
            warnings.append(f"WARNING: recorded with other artifact versions than this build's ({', '.join(changed)}): "
                            "the code that produces them has changed since.")
    if not prov.get("models"):
        warnings.append("WARNING: the record cites no model digests, so `nsdebook verify` cannot check its models.")
    return warnings


def announce_recorded(
    name: str, chapter: str, profile: str = "paper", root: Path = RESULTS_ROOT, command: str | None = None
) -> dict[str, Any] | None:
    """The recorded result ``name`` after printing its provenance and warnings, or None after saying how to get it.

    ``command`` records it (default: running ``chapter`` at ``profile``).
    """
    recorded = load_recorded(name, profile, root)
    command = f"`{command or f'make chapter CHAPTER={chapter} PROFILE={profile}'}`"
    if recorded is None:
        print(f"No {profile}-profile run has been recorded yet: run {command}.")
        return None
    print(recorded_caption(recorded))
    warnings = provenance_warnings(recorded["provenance"])
    for warning in warnings:
        print(warning)
    if warnings:
        print(f"To record it from the current code, commit and run {command}.")
    return recorded


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every value of a mapping under its key, for the chapter's prose (nothing displayed)."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


def glue_figure(name: str, fig: Figure | None, missing: str) -> None:
    """Glue ``fig`` as ``name`` for a numbered ``{glue:figure}``; without a figure (nothing recorded), ``missing``.

    A chapter's figure of a recorded result cannot be drawn before the result exists; the glued text
    then says so in the figure's place, so the book still builds and the reader learns what to run.
    """
    from IPython.display import Markdown
    from myst_nb import glue

    if fig is None:
        glue(name, Markdown(missing), display=False)
        return
    glue(name, fig, display=False)
    plt.close(fig)
