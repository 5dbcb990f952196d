"""Recorded results and their provenance, so the book can show where a number came from ("Running this book")."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..claims.c2_noise import CONTROL_LINE, MATCHED_MISSING, frontier_seed_counts, matched_accuracy_verdicts
from ..claims.sigma_tuning import MeasuredPoint
from ..common import ArtifactCorrupt, device_description, one_of
from ..common.artifacts import KINDS, ArtifactStore, Spent, atomic_write
from ..evaluation.data_size import OUTCOME_KEYS, seed_accuracies
from ..report.outcomes import outcomes_path, read_outcomes, write_outcomes
from .glance import RECORD_PLANS, relabel
from .profiles import Profile, ProfileName

if TYPE_CHECKING:
    from ..training.trainer import TrainConfig, TrainedModel

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS_ROOT = REPO_ROOT / "results"
TRACKED_PACKAGES = ("torch", "torchvision", "timm", "torchsde", "captum", "torchattacks", "numpy", "scipy")
#: What a record cites of one model: ``{"kind", "seed", "sha256"}``, with ``n_train`` or ``setting`` where they apply.
ModelDigest = dict[str, Any]


#: The commit a run of several chapters started from (set by ``run_book``): the records its first chapters write
#: change tracked files, which must not make the later chapters' records look made from a modified tree.
RUN_COMMIT_ENV = "NSDE_RUN_COMMIT"


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The current commit hash, suffixed ``-dirty`` when the work tree has uncommitted changes; inside a run of
    chapters, the commit the run started from (``$NSDE_RUN_COMMIT``)."""
    if os.environ.get(RUN_COMMIT_ENV):
        return os.environ[RUN_COMMIT_ENV]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
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


def artifact_versions() -> dict[str, int]:
    """The version of every artifact kind the library produces."""
    return {name: kind.version for name, kind in sorted(KINDS.items())}


def model_digests(runs: Mapping[str, Sequence[TrainedModel]]) -> list[ModelDigest]:
    """The digest of every model in ``runs`` (kind -> its runs)."""
    return [{"kind": kind, "seed": run.seed, "sha256": run.digest} for kind, done in runs.items() for run in done]


def table_digests(table: pd.DataFrame, size_column: str) -> list[ModelDigest]:
    """The models cited by a table with ``model``, ``seed``, ``size_column`` and ``weights sha256`` columns."""
    models = table.drop_duplicates(["model", "seed", size_column])
    return [{"kind": row["model"], "seed": int(row["seed"]), "n_train": int(row[size_column]),
             "sha256": row["weights sha256"]} for row in models.to_dict(orient="records")]


class ComputeTime:
    """A record's wall time, started where its computation starts: the build seconds of the artifacts fetched since
    (wherever they were built, so a result read back from the workers' store still states what it cost), plus the
    time elapsed here where some do not know their own (then a lower bound, and its note says so)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store, self.position, self.start = store, store.ledger_position(), time.perf_counter()

    def measured(self) -> tuple[float, str]:
        """The seconds, and a note where they are a lower bound (else ``""``)."""
        spent = self.store.spent_since(self.position)
        if not spent.unknown:
            return spent.seconds, ""
        return spent.seconds + time.perf_counter() - self.start, (
            f"a lower bound: {spent.unknown} of the {spent.artifacts} artifacts read lack their full build time "
            "(stored before build times were kept, or recorded as a lower bound)")


def provenance(profile: str, seeds: list[int], device: torch.device | str, wall_time_s: float | ComputeTime,
               models: Sequence[ModelDigest] = ()) -> dict[str, Any]:
    """The provenance block stored with every recorded result (``wall_time_note`` where the wall time is partial)."""
    seconds, note = wall_time_s.measured() if isinstance(wall_time_s, ComputeTime) else (wall_time_s, "")
    return {
        "profile": profile,
        "seeds": list(seeds),
        "device": device_description(device),
        "wall_time_s": round(float(seconds), 2),
        **({"wall_time_note": note} if note else {}),
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [dict(model) for model in models],
        "artifact_versions": artifact_versions(),
        "versions": package_versions(),
    }


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON parsers reject NaN and infinities) and every
    key a string (JSON's keys are; a table whose columns are noise levels beside named columns has both kinds)."""
    if isinstance(value, dict):
        return {str(key): strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def record_result(name: str, result: dict[str, Any], prov: dict[str, Any], root: Path = RESULTS_ROOT,
                  outcomes: pd.DataFrame | None = None, outcome_keys: Sequence[str] = (),
                  outcome_value: str = "correct") -> Path:
    """Write ``{"provenance": ..., "result": ...}`` atomically, as strict JSON, to ``root/<profile>/<name>.json``, and
    its per-image ``outcomes`` (if given; their column ``outcome_value``) beside it, first: a record exists only once
    everything it stands for is written (a run killed in between leaves no record, so the next one writes both)."""
    path = root / one_of(prov.get("profile"), ProfileName, "profile") / f"{name}.json"
    payload = strict_json({"provenance": prov, "result": result})
    if outcomes is not None:
        write_outcomes(outcomes_path(path), outcomes, keys=outcome_keys, value=outcome_value)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)))
    return path


def is_recorded(name: str, profile: str, root: Path = RESULTS_ROOT) -> bool:
    """Whether ``results/<profile>/<name>.json`` exists: a record is written once and never overwritten."""
    return (root / profile / f"{name}.json").exists()


def _record_once(name: str, result: dict[str, Any], profile: str, device: torch.device | str, wall_time_s: float,
                 model: ModelDigest, root: Path, outcomes: pd.DataFrame | None = None,
                 outcome_keys: Sequence[str] = ()) -> Path | None:
    """Record one model's run citing ``model`` (and its per-image ``outcomes`` beside it), unless ``name`` is recorded
    already: a record is never overwritten."""
    if is_recorded(name, profile, root):
        return None
    return record_result(name, result, provenance(profile, [model["seed"]], device, wall_time_s, [model]), root,
                         outcomes, outcome_keys)


def model_record_name(kind: str, seed: int) -> str:
    return f"models/{kind}-seed{seed}"


def record_model(run: TrainedModel, profile: str, device: torch.device | str, train: TrainConfig | None = None,
                 root: Path = RESULTS_ROOT) -> Path | None:
    """Record one trained model (digest, metrics, history, optimisation settings) once."""
    result = {"kind": run.kind, "seed": run.seed, "metrics": run.metrics, "history": run.history.to_dict(orient="list"),
              "train": None if train is None else train.model_dump(mode="json")}
    return _record_once(model_record_name(run.kind, run.seed), result, profile, device, run.metrics["wall_time_s"],
                        {"kind": run.kind, "seed": run.seed, "sha256": run.digest}, root)


def rate_record_name(kind: str, lr: float) -> str:
    return f"learning_rates/{kind}-lr{lr:g}"


def record_rate_point(run: TrainedModel, lr: float, training_digest: str, profile: str, device: torch.device | str,
                      root: Path = RESULTS_ROOT) -> Path | None:
    """Record one point of the first seed's learning-rate grid once, with the digest of its training settings, so that
    a later machine chooses the rate without training the grid again."""
    result = {"kind": run.kind, "seed": run.seed, "lr": lr, "training_digest": training_digest,
              "metrics": run.metrics, "history": run.history.to_dict(orient="list")}
    return _record_once(rate_record_name(run.kind, lr), result, profile, device, run.metrics["wall_time_s"],
                        {"kind": run.kind, "seed": run.seed, "sha256": run.digest, "setting": {"lr": lr}}, root)


def recorded_rate_point(kind: str, lr: float, training_digest: str, profile: str,
                        root: Path = RESULTS_ROOT) -> dict[str, Any] | None:
    """The metrics of a recorded grid point of these training settings (None: not recorded); other settings raise."""
    recorded = load_recorded(rate_record_name(kind, lr), profile, root)
    if recorded is None:
        return None
    if recorded["result"]["training_digest"] != training_digest:
        raise ArtifactCorrupt(f"recorded learning-rate point {rate_record_name(kind, lr)} of profile {profile} was "
                              "trained with other settings than this profile's; record the grid again (delete it)")
    return recorded["result"]["metrics"]


def _setting(row: dict[str, Any]) -> str:
    names = {"nsde": ("sigma", "sigma"), "convnext_noise": ("std", "input_noise_std")}
    return f"-{names[row['kind']][0]}{row[names[row['kind']][1]]:g}" if row["kind"] in names else ""


def frontier_record_name(row: dict[str, Any]) -> str:
    """``frontier/<kind>[-sigma<σ>|-std<std>]-seed<N>``: the frontier's NSDE has the profile's form and shape."""
    return f"frontier/{row['kind']}{_setting(row)}-seed{row['seed']}"


def sweep_record_name(row: dict[str, Any]) -> str:
    """``calibration/<kind>[-<form>-<shape>-sigma<σ>|-std<std>]-seed<N>``: one point of chapter 3's σ sweep, whose
    NSDE lines differ in the diffusion's form and shape as well as in σ."""
    line = f"-{row['diffusion']}-{row['noise_shape']}" if row["kind"] == "nsde" else ""
    return f"calibration/{row['kind']}{line}{_setting(row)}-seed{row['seed']}"


def record_point(point: MeasuredPoint, name: str, profile: str, device: torch.device | str,
                 root: Path = RESULTS_ROOT) -> Path | None:
    """Record one measured point (of the frontier or the σ sweep) once under ``name``, citing its model's digest, its
    per-image outcomes beside: a new machine then measures only the points not recorded."""
    row = point.row
    setting = {key: row[key] for key in ("sigma", "input_noise_std") if row[key] is not None}
    return _record_once(name, row, profile, device, row["wall_time_s"],
                        {"kind": row["kind"], "seed": row["seed"], "sha256": row["weights_sha256"], "setting": setting},
                        root, point.outcomes, ["measure"])


def recorded_point(name: str, profile: str, root: Path = RESULTS_ROOT) -> MeasuredPoint | None:
    """The point :func:`record_point` recorded under ``name``, with its per-image outcomes; None if not recorded."""
    found = recorded_with_outcomes(name, profile, root)
    return None if found is None else MeasuredPoint(found[0]["result"], found[1])


def recorded_with_outcomes(name: str, profile: str,
                           root: Path = RESULTS_ROOT) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """A record and the per-image outcomes stored beside it (None: not recorded); a record without them is corrupt."""
    recorded = load_recorded(name, profile, root)
    if recorded is None:
        return None
    stored = outcomes_path(root / profile / f"{name}.json")
    if not stored.exists():
        raise ArtifactCorrupt(f"{root / profile / name}.json has no per-image outcomes at {stored}: record it again")
    return recorded, read_outcomes(stored)


@dataclass(frozen=True)
class RecordedFrontier:
    """The recorded clean–robust frontier: a row per point and seed (``record`` names it, with its commit and
    device) and the per-image outcomes of the points that have them (``record``, ``measure``, ``example``,
    ``correct``)."""

    points: pd.DataFrame
    outcomes: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.points.empty


def load_frontier(profile: str = "paper", root: Path = RESULTS_ROOT) -> RecordedFrontier:
    """Every recorded frontier point, with the per-image outcomes stored beside it; empty without any."""
    rows, outcomes = [], [pd.DataFrame(columns=["record", "measure", "example", "correct"])]
    for path in sorted((root / profile / "frontier").glob("*.json")):
        name = f"frontier/{path.stem}"
        recorded = load_recorded(name, profile, root)
        rows.append({**recorded["result"], "record": name, "commit": recorded["provenance"]["commit"],
                     "device": recorded["provenance"]["device"]})
        if outcomes_path(path).exists():
            outcomes.append(read_outcomes(outcomes_path(path)).assign(record=name))
    return RecordedFrontier(pd.DataFrame(rows), pd.concat(outcomes, ignore_index=True))


def size_study_record_name(kind: str, seed: int) -> str:
    return f"data_size/{kind}-seed{seed}"


def record_size_study_run(outcomes: pd.DataFrame, kind: str, seed: int, profile: str, device: torch.device | str,
                          wall_time_s: float | ComputeTime, root: Path = RESULTS_ROOT) -> Path | None:
    """Record chapter 8's study of one model kind and seed once (every size: the per-seed rows and, beside them, the
    per-image outcomes), citing the weights of each size's model, so that a new machine does not train them again."""
    name = size_study_record_name(kind, seed)
    if is_recorded(name, profile, root):
        return None
    runs = seed_accuracies(outcomes)
    sizes = runs.drop_duplicates("training samples")
    models = [{"kind": kind, "seed": seed, "sha256": digest, **({} if share == 1.0 else {"n_train": int(n)})}
              for n, share, digest in zip(sizes["training samples"], sizes["share of the full split"],
                                          sizes["weights sha256"])]  # the full split's model: chapter 3's own
    return record_result(name, {"kind": kind, "seed": seed, "runs": runs.to_dict(orient="list")},
                         provenance(profile, [seed], device, wall_time_s, models), root,
                         outcomes[[*OUTCOME_KEYS, "example", "correct"]], OUTCOME_KEYS)


def recorded_cost(name: str, profile: str, root: Path = RESULTS_ROOT) -> Spent:
    """What a recorded result cost, as the store's ledger counts it (a lower bound where its record says so)."""
    prov = load_recorded(name, profile, root)["provenance"]
    return Spent(float(prov["wall_time_s"]), int(bool(prov.get("wall_time_note"))), 1)


def recorded_size_study_run(kind: str, seed: int, profile: str, root: Path = RESULTS_ROOT) -> pd.DataFrame | None:
    """The per-image outcomes :func:`record_size_study_run` recorded, with their runs' columns; None if not recorded."""
    found = recorded_with_outcomes(size_study_record_name(kind, seed), profile, root)
    if found is None:
        return None
    runs = pd.DataFrame(found[0]["result"]["runs"]).drop(columns="accuracy")
    return found[1].merge(runs, on=list(OUTCOME_KEYS), how="left", validate="many_to_one")


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
    """One row per recorded result: its profile, name and provenance."""
    fields = {"date": "date", "commit": "commit", "device": "device", "wall time (s)": "wall_time_s", "seeds": "seeds"}
    rows = []
    for path in sorted(root.glob("*/*.json")):
        prov = load_recorded(path.stem, path.parent.name, root)["provenance"]
        rows.append({"profile": path.parent.name, "result": path.stem,
                     **{column: prov[key] for column, key in fields.items()}})
    return pd.DataFrame(rows, columns=["profile", "result", *fields])


class Recording(Protocol):
    """What recording needs of a chapter's context (the context itself sits above this module)."""

    profile: Profile
    device: torch.device


def record_if_enabled(ctx: Recording, name: str, result: dict[str, Any], seeds: list[int],
                      wall_time_s: float | ComputeTime,
                      models: Sequence[ModelDigest], outcomes: pd.DataFrame | None = None,
                      outcome_keys: Sequence[str] = (), outcome_value: str = "correct") -> Path | None:
    """Record ``result`` when the profile records results, with its per-image ``outcomes`` beside it (if given; their
    column ``outcome_value``)."""
    if not ctx.profile.record_results:
        return None
    return record_result(name, result, provenance(ctx.profile.name, seeds, ctx.device, wall_time_s, models),
                         outcomes=outcomes, outcome_keys=outcome_keys, outcome_value=outcome_value)


def recorded_caption(recorded: dict[str, Any]) -> str:
    """One line that labels a recorded result with where and when it was computed."""
    prov = recorded["provenance"]
    return (f"recorded {prov['profile']} run: commit {prov['commit']}, {prov['date']}, {prov['device']}, "
            f"wall time {prov['wall_time_s'] / 60:.1f} min"
            + (f" ({prov['wall_time_note']})" if prov.get("wall_time_note") else "") + f", seeds {prov['seeds']}")


#: The artifact kinds a record's results are computed from, by the first part of its name, beyond the data set and
#: the trained models that every record rests on: a new version of any other kind does not concern that record.
RECORD_KINDS: dict[str, tuple[str, ...]] = {
    "noise_robustness": ("noise_sweep",),
    "adversarial": ("robustness_sweep", "convergence_study"),
    "attribution_stability": ("explained_predictions", "attributions", "attribution_stability"),
    "abc": ("explained_predictions", "attributions", "abc", "noisy_accuracy", "detector_scores"),
    "frontier": ("calibration_point",),
    "calibration": ("calibration_point",),
}
MODEL_ARTIFACTS = ("dataset", "checkpoint", "trained")


def record_kinds(name: str | None) -> set[str] | None:
    """The artifact kinds the record ``name`` rests on (None: not known, so every kind)."""
    if name is None:
        return None
    return {*MODEL_ARTIFACTS, *RECORD_KINDS.get(name.split("/")[0], ())}


def provenance_warnings(prov: Mapping[str, Any], name: str | None = None) -> list[str]:
    """Why a record (named ``name``, if known) may not come from this build's code: a dirty tree, changed versions of
    the artifact kinds it rests on, no digests."""
    warnings = []
    relevant = record_kinds(name)
    if prov["commit"].endswith("-dirty"):
        warnings.append(f"WARNING: recorded from a work tree with uncommitted changes (commit {prov['commit']}): "
                        "that commit alone may not reproduce it.")
    recorded, current = prov.get("artifact_versions"), artifact_versions()
    if recorded is None:
        warnings.append("WARNING: recorded before artifacts were versioned: it carries no artifact versions.")
    else:
        changed = [f"{kind} {version} → {current.get(kind, 'gone')}" for kind, version in sorted(recorded.items())
                   if current.get(kind) != version and (relevant is None or kind in relevant or kind not in current)]
        if changed:
            warnings.append(f"WARNING: recorded with other artifact versions than this build's ({', '.join(changed)}): "
                            "the code that produces them has changed since.")
    if not prov.get("models"):
        warnings.append("WARNING: the record cites no model digests, so `nsdebook verify` cannot check its models.")
    return warnings


def announce_recorded(name: str, chapter: str, figures: Mapping[str, Callable[[dict[str, Any]], Figure]] | None = None,
                      command: str | None = None, profile: str = "paper", root: Path = RESULTS_ROOT
                      ) -> dict[str, Any] | None:
    """A chapter's recorded result (None if not recorded), its verdicts judged again by today's rule: print its
    provenance and warnings and glue each figure drawn from it under its key; without a record, say which ``command``
    records it."""
    recorded = load_recorded(name, profile, root)
    if recorded is not None and name in RECORD_PLANS:
        recorded = relabel(recorded, RECORD_PLANS[name])
    command = f"`{command or f'make chapter CHAPTER={chapter} PROFILE={profile}'}`"
    if recorded is None:
        print(f"No {profile}-profile run has been recorded yet: run {command}.")
    else:
        print(recorded_caption(recorded))
        warnings = provenance_warnings(recorded["provenance"], name)
        for warning in warnings:
            print(warning)
        if warnings:
            print(f"To record it from the current code, commit and run {command}.")
    for key, draw in (figures or {}).items():
        glue_figure(key, recorded and draw(recorded["result"]),
                    f"*No `{profile}` run has been recorded yet: {command} records it.*")
    return recorded


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every value of a mapping under its key, for the chapter's prose (nothing displayed)."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


def show_figure(fig: Figure | None, missing: str) -> None:
    """Show ``fig`` as a cell's output (its metadata captions it), or print ``missing``: no caption without an image."""
    from IPython.display import display

    if fig is None:
        print(missing)
        return
    display(fig)
    plt.close(fig)


def show_matched_accuracy(frontier: RecordedFrontier, chosen_sigma: float, caption: str,
                          noisy_only_caption: str | None = None) -> None:
    """The recorded frontier's seeds per point, then NSDE − control at matched clean accuracy (or why not yet); with
    ``noisy_only_caption``, the same on the control's noisy points alone (its line without ConvNeXt at std 0)."""
    from IPython.display import display

    display(frontier_seed_counts(frontier.points).to_frame("seeds recorded").T)
    lines = {caption: CONTROL_LINE, **({noisy_only_caption: ("convnext_noise",)} if noisy_only_caption else {})}
    columns = ["verdict", "effect", "low", "high", "mde", "n_seeds", "n_pairs"]
    for title, kinds in lines.items():
        matched = matched_accuracy_verdicts(frontier.points, frontier.outcomes, chosen_sigma, kinds)
        if matched is None:
            print(MATCHED_MISSING)
            continue
        display(matched[columns].style.format(precision=4, na_rep="–").set_caption(title))


def glue_figure(name: str, fig: Figure | None, missing: str = "") -> None:
    """Glue ``fig`` as ``name`` for a ``{glue:figure}``, or without one the text ``missing`` in its place."""
    from IPython.display import Markdown
    from myst_nb import glue

    if fig is None:
        glue(name, Markdown(missing), display=False)
        return
    glue(name, fig, display=False)
    plt.close(fig)
