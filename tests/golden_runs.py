"""Golden outputs: every artifact kind computed at a tiny configuration, summarised, compared with ``tests/golden/``.

One deterministic run (one thread, deterministic algorithms, seed 0) builds a tiny data set, trains the
three model kinds and runs every cached evaluation on them, recording each artifact the store saves.
Each kind's outputs are summarised (shapes, sums and leading values of tensors, table columns) without
what varies between runs (wall times, the device, dates); the summary and its SHA-256 are the golden
output of that kind at its version. ``tests/test_golden.py`` fails when a kind's output changed while
its version did not, and when its version changed while its golden file was not regenerated.

    python tests/golden_runs.py          # compare, print what differs (what `make test` checks)
    python tests/golden_runs.py --write  # regenerate tests/golden/ (`make golden`), after bumping versions; a kind
                                         # whose output changed at the same version (and torch) is refused
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from nsdelib.book.context import Context
from nsdelib.book.profiles import BASE, PROFILES, Profile, merged
from nsdelib.common.artifacts import KINDS, ArtifactKind, ArtifactStore
from nsdelib.claims.sigma_tuning import measure_point
from nsdelib.models.registry import MODEL_KINDS

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
#: Relative and absolute tolerance of a summary's numbers: exact on the machine that made them, robust to
#: the last bits a different CPU's kernels may change.
RTOL, ATOL = 1e-3, 1e-5
#: Keys whose values differ between identical runs (times, device, dates) and are left out of a summary; so are the
#: SHA-256 digests of trained weights, whose last bits depend on the CPU's vector instructions (AVX2 against AVX-512):
#: the weights themselves are summarised by their sums, compared within the tolerance.
VOLATILE = ("time", "device", "written", "date", "sha256")

#: The ci profile shrunk to the least that still runs every branch: three model kinds, an NSDE with
#: its noise modes, attacks with EOT, attributions with noise draws, ABC and the detectors.
TINY: dict[str, Any] = {
    "n_seeds": 1,
    "data": {"n_samples": 96},
    "train": {"max_epochs": 2, "patience": 1, "batch_size": 16, "warmup_epochs": 0.5, "keep_checkpoints": 1},
    "noise": {"gaussian_stds": (0.05, 0.5), "structured_levels": (0.5,), "subset_size": 8, "batch_size": 8},
    "attack": {"subset_size": 6, "square_subset": 4, "convergence_subset": 4, "score_draws": 2, "square_queries": 10},
    "attribution": {"subset_size": 6},
    "abc": {"samples": 4, "detectors": {"noise_stds": (0.1, 1.0), "bootstrap_resamples": 100}},
    "calibration": {"subset_size": 6},
}


class RecordingStore(ArtifactStore):
    """An artifact store that also keeps every payload it saves, by kind, in the order saved."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.saved: dict[str, list[Any]] = defaultdict(list)

    def save(self, kind: ArtifactKind, config: BaseModel | dict[str, Any], obj: Any,
             build_seconds: float | None = None, lower_bound: bool = False) -> Path:
        self.saved[kind.name].append(obj)
        return super().save(kind, config, obj, build_seconds, lower_bound)


def tiny_profile() -> Profile:
    """The golden runs' profile: ``ci`` with the ``TINY`` changes."""
    return Profile.model_validate(merged(merged(BASE, PROFILES["ci"]), TINY))


def run_everything(root: Path) -> dict[str, list[Any]]:
    """Every artifact kind's payloads from one deterministic tiny run, by kind name."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    store = RecordingStore(root)
    ctx = Context(profile=tiny_profile(), seed=0, device=torch.device("cpu"), store=store)
    runs = {kind: ctx.train(kind, 0, progress=False) for kind in MODEL_KINDS}
    for run in runs.values():
        ctx.noise_sweep(run)
        ctx.attack_sweep(run)
        ctx.attribution_stability(run)
        ctx.abc_curve(run)
        ctx.detector_accuracy(run)
        ctx.detector_scores(run, 20.0, 0.5)
    ctx.attack_convergence(runs["nsde"])
    ctx.abc_at(runs["nsde"], 20.0, neighbours="mode")
    profile = ctx.profile
    measure_point(ctx.data, "nsde", profile.model, profile.train, profile.calibration, store, ctx.device)
    return dict(store.saved)


def summarise(value: Any) -> Any:
    """A JSON-ready summary of a payload: tensors by shape, sums and leading values; volatile keys dropped."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().double().flatten()
        return {"shape": list(value.shape), "dtype": str(value.dtype), "sum": float(flat.sum()),
                "abs_sum": float(flat.abs().sum()), "head": flat[:4].tolist()}
    if isinstance(value, dict) and len(value) > 8 and all(isinstance(t, torch.Tensor) for t in tensor_leaves(value)):
        tensors = [t.detach().double().flatten() for t in tensor_leaves(value)]
        return {"tensors": len(tensors), "numel": sum(len(t) for t in tensors),
                "sum": float(sum(t.sum() for t in tensors)), "abs_sum": float(sum(t.abs().sum() for t in tensors))}
    if isinstance(value, dict):
        return {str(k): summarise(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))
                if not any(word in str(k).lower() for word in VOLATILE)}
    if isinstance(value, (list, tuple)):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if value and len(numbers) == len(value):
            finite = [float(v) for v in numbers if math.isfinite(v)]
            return {"n": len(value), "sum": sum(finite), "head": [float(v) for v in numbers[:4]],
                    "non_finite": len(numbers) - len(finite)}
        return [summarise(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def tensor_leaves(value: Any) -> list[Any]:
    """The leaves of nested dicts (a state dict, an optimizer's state), in key order."""
    if isinstance(value, dict):
        return [leaf for key in sorted(value, key=str) for leaf in tensor_leaves(value[key])]
    return [value]


def golden_outputs(root: Path) -> dict[str, dict[str, Any]]:
    """Each kind's golden output now: its version, its payloads' summaries and their digest."""
    outputs = {}
    for name, payloads in sorted(run_everything(root).items()):
        summary = [summarise(payload) for payload in payloads]
        text = json.dumps(summary, sort_keys=True)
        outputs[name] = {"kind": name, "version": KINDS[name].version, "torch": torch.__version__,
                         "digest": hashlib.sha256(text.encode()).hexdigest(), "summary": summary}
    return outputs


def differences(golden: Any, now: Any, where: str = "") -> list[str]:
    """Where ``now`` differs from ``golden`` (numbers beyond the tolerance, anything else exactly)."""
    if isinstance(golden, dict) and isinstance(now, dict):
        if golden.keys() != now.keys():
            return [f"{where}: keys {sorted(set(golden) ^ set(now))} added or removed"]
        return [line for key in golden for line in differences(golden[key], now[key], f"{where}.{key}")]
    if isinstance(golden, list) and isinstance(now, list):
        if len(golden) != len(now):
            return [f"{where}: {len(golden)} items, now {len(now)}"]
        return [line for i, (g, n) in enumerate(zip(golden, now)) for line in differences(g, n, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(golden, numbers) and isinstance(now, numbers) and not isinstance(golden, bool):
        both_nan = math.isnan(golden) and math.isnan(now)
        if both_nan or math.isclose(golden, now, rel_tol=RTOL, abs_tol=ATOL):
            return []
        return [f"{where}: {golden!r} → {now!r}"]
    return [] if golden == now else [f"{where}: {golden!r} → {now!r}"]


def golden_path(name: str) -> Path:
    """The golden file of the artifact kind ``name``."""
    return GOLDEN_DIR / f"{name}.json"


def problems(name: str, now: dict[str, Any]) -> list[str]:
    """Why kind ``name``'s output ``now`` disagrees with its golden file (empty when it agrees)."""
    path = golden_path(name)
    if not path.exists():
        return [f"artifact kind {name!r} has no golden output ({path.name}): run `make golden`"]
    golden = json.loads(path.read_text())
    if golden["version"] != now["version"]:
        return [f"artifact kind {name!r} is at version {now['version']} but its golden output was made at version "
                f"{golden['version']}: run `make golden` and commit tests/golden/"]
    changed = differences(golden["summary"], now["summary"], name)
    if changed:
        return [f"the output of artifact kind {name!r} changed but its version ({now['version']}) did not: bump the "
                f"version where {name!r} is declared, then run `make golden`. First differences: "
                + "; ".join(changed[:3])]
    return []


def unbumped(name: str, now: dict[str, Any]) -> list[str]:
    """Why ``--write`` must not overwrite kind ``name``'s golden file: its output changed at the same version and torch
    (regenerating would hide a forgotten bump); empty otherwise."""
    path = golden_path(name)
    if not path.exists():
        return []
    golden = json.loads(path.read_text())
    same = golden["version"] == now["version"] and golden.get("torch") == now.get("torch")
    return problems(name, now) if same else []


def main(argv: list[str] | None = None) -> int:
    """Compare with (default) or rewrite (``--write``) the golden files; exit 1 when any kind disagrees."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="regenerate tests/golden/ from this code")
    parser.add_argument("--dump", type=Path, help="only write this run's outputs, as JSON, to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        outputs = golden_outputs(Path(root))
    if args.dump:
        args.dump.write_text(json.dumps({"outputs": outputs, "kinds": sorted(KINDS)}))
        return 0
    found = []
    for name, now in outputs.items():
        if args.write and unbumped(name, now):
            found += unbumped(name, now)
        elif args.write:
            GOLDEN_DIR.mkdir(exist_ok=True)
            golden_path(name).write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
            print(f"wrote {golden_path(name).relative_to(GOLDEN_DIR.parent.parent)} (version {now['version']})")
        else:
            found += problems(name, now)
    print("\n".join(found) or f"{len(outputs)} artifact kinds agree with their golden outputs")
    return 1 if found else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
