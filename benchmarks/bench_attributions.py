"""Wall time of chapters 6 and 7 for one seed: attributions, C5's matched controls, ABC and the detector test.

Target: at the ``paper`` profile, everything the two chapters compute for one seed and the three
models takes at most 15 minutes on a 2-core CPU:

* chapter 6: the example maps of every method and class, and the stability of every map variant
  (:func:`nsdelib.claims.c5_stability.cached_attribution_stability`: the NSDE averaged over its
  noise, one draw and noise off; each deterministic model one map and averaged over input noise);
* chapter 7: ABC over the budget grid (:func:`nsdelib.claims.c4_abc.abc_curve`), ABC at C4's budget
  (with the NSDE's neighbours scored by one draw and by its ensemble), the ConvNeXt's accuracy over
  the detector noise grid and every detector score under input noise, and the bootstrap AUROCs.

The arithmetic behind the paper profile is in ``nsdelib.book.profiles`` (about 350 k forward-pass
equivalents per seed, ≈ 12 minutes at 2 ms per forward on one thread); this script prints the same
count for the chosen profile beside the measured times.

The timing runs the library's own cached functions against an empty, temporary artifact store, so
nothing is read back. By default it uses *untrained* models of the profile's architecture and
random spectrograms of the profile's image size: the cost of a gradient or a forward pass does not
depend on the weights. ``--trained`` uses the trained models and the test split instead (read
from the book's artifact store, trained first if missing). C4's budget and the detector noise are
set by their rules from this one seed (the chapters pool all seeds); the cost does not depend on them.

Besides wall time the script prints process CPU time: on a machine shared with other jobs the wall
time grows with the load, while CPU time / threads estimates the wall time on an idle machine.

    .venv/bin/python benchmarks/bench_attributions.py --profile paper
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd
import torch
from torch import nn

from nsdelib.book.context import Context
from nsdelib.book.profiles import PROFILE_NAMES, Profile, get_profile
from nsdelib.common import resolve_device, seed_everything
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.claims import error_detection as detectors
from nsdelib.claims.c4_abc import (
    AS_WRITTEN,
    abc_curve,
    abc_variants,
    at_budget,
    c4_budget,
    cached_abc,
)
from nsdelib.claims.c5_stability import cached_attribution_stability
from nsdelib.evaluation.attributions import ATTRIBUTION_METHODS, attribute_in_mode
from nsdelib.evaluation.sweeps import SweepTarget
from nsdelib.models.inference import headline_mode
from nsdelib.models.registry import MODEL_KINDS, build_model

TARGET_S = 900.0
KINDS = MODEL_KINDS


def timed(label: str, work: Callable[[], Any], log: dict[str, tuple[float, float]]) -> Any:
    """Run ``work()``; print and record its wall time and its process CPU time under ``label``; return its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    log[label] = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"  {label:<66} wall {log[label][0]:7.1f} s   cpu {log[label][1]:7.1f} s", flush=True)
    return result


def forward_equivalents(profile: Profile) -> float:
    """The per-seed cost of both chapters in forward passes of one image (a gradient counts as three), from the configs."""
    attribution, abc, sde = profile.attribution, profile.abc, profile.model.sde
    n, d, steps, s = attribution.subset_size, attribution.noise_draws, attribution.ig_steps, abc.samples
    k = sde.ensemble_size if sde.eval_noise == "ensemble" else 1
    states = 1 + len(attribution.perturbation_levels)
    map_sets = (d + 1) + 2 * (1 + d)  # NSDE: its draws and noise off; each deterministic model: one map and d copies
    stability = map_sets * states * steps * 3 * n
    budgets = 1 + len(abc.rescaled_fractions)
    curve = budgets * s * n * len(KINDS)
    c4 = s * n * len(KINDS) + s * n * k
    detectors = (2 + d) * steps * 3 * n + 2 * s * n * len(KINDS) + (2 + k) * n
    return stability + curve + c4 + detectors + len(abc.detectors.noise_stds) * n


def untrained_inputs(profile: Profile, seed: int) -> tuple[dict[str, nn.Module], torch.Tensor, torch.Tensor]:
    """Randomly initialised models of the profile's architecture and random spectrograms of its image size."""
    classes = len(profile.data.classes)
    generator = torch.Generator().manual_seed(seed)
    n = max(profile.attribution.subset_size, 4 * classes)
    x = torch.rand(n, 1, profile.data.image_rows, profile.data.image_cols, generator=generator)
    models = {kind: build_model(kind, profile.model, classes).eval() for kind in KINDS}
    return models, x, torch.arange(n) % classes


def trained_inputs(profile: Profile, seed: int) -> tuple[dict[str, nn.Module], torch.Tensor, torch.Tensor]:
    """The trained models and the test split, from the book's artifact store."""
    ctx = Context(profile, seed, resolve_device("cpu"))
    return {kind: ctx.train(kind, seed).model for kind in KINDS}, ctx.data.test.x, ctx.data.test.y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper", choices=PROFILE_NAMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trained", action="store_true", help="trained models and the test split")
    args = parser.parse_args()

    profile = get_profile(args.profile)
    seed_everything(args.seed)
    models, x, y = (trained_inputs if args.trained else untrained_inputs)(profile, args.seed)
    store = ArtifactStore(tempfile.mkdtemp(prefix="bench-attr-"))
    attribution, abc = profile.attribution, profile.abc
    targets = {kind: SweepTarget(model, x, y, (headline_mode(kind, profile.model.sde),), args.seed)
               for kind, model in models.items()}
    source = "trained models, test split" if args.trained else "UNTRAINED models, random spectrograms"
    print(f"profile={args.profile} seed={args.seed}: {source}; {profile.model.variant}, image {tuple(x.shape[1:])}, "
          f"threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"explained subset {attribution.subset_size}, IG steps {attribution.ig_steps}, maps averaged "
          f"{attribution.noise_draws}, levels {attribution.perturbation_levels}, ABC S={abc.samples}, budgets "
          f"{list(abc_variants(abc, x[0].numel()))}, neighbours {abc.neighbours}")
    estimate = forward_equivalents(profile)
    print(f"arithmetic: {estimate / 1e3:.0f} k forward-pass equivalents per seed, {estimate * 2e-3 / 60:.1f} min at "
          "2 ms per forward on one thread")

    log: dict[str, tuple[float, float]] = {}
    examples = torch.stack([(y == c).nonzero()[0, 0] for c in y.unique()])
    curves = []
    for kind, target in targets.items():
        print(f"{kind}, explained in mode '{target.mode.name}'")
        for method in ATTRIBUTION_METHODS:
            timed(f"ch6 {kind}: {method} maps, one per class", partial(
                attribute_in_mode, target.model, x[examples], y[examples], method, attribution, target.mode,
                seed=args.seed), log)
        timed(f"ch6 {kind}: stability of every map variant (incl. clean IG)",
              partial(cached_attribution_stability, store, attribution, target), log)
        curves.append(timed(f"ch7 {kind}: ABC over {len(abc_variants(abc, x[0].numel()))} budgets",
                            partial(abc_curve, store, abc, attribution, target), log).assign(model=kind, seed=args.seed))
    choice = c4_budget(pd.concat(curves, ignore_index=True))
    c4_cfg = at_budget(abc, choice.value)
    for kind, target in targets.items():
        timed(f"ch7 {kind}: ABC at C4's budget m = {choice.value:.3g}",
              partial(cached_abc, store, c4_cfg, attribution, target), log)
    timed("ch7 nsde: ABC at C4's budget, neighbours scored by the ensemble",
          lambda: cached_abc(store, c4_cfg.replace(neighbours="mode"), attribution, targets["nsde"]), log)
    accuracy = timed("ch7 convnext: accuracy over the detector noise grid", lambda: detectors.noisy_accuracy(
        store, attribution, targets["convnext"], abc.detectors.noise_stds), log)
    level = detectors.detector_noise_level(accuracy.assign(model="convnext", seed=args.seed))
    budgets = {"ABC as written": abc_variants(abc, x[0].numel())[AS_WRITTEN], "ABC at C4's budget": c4_cfg}
    scores = pd.concat([timed(f"ch7 {kind}: detector scores at noise std {level.value:.3g}", partial(
        detectors.cached_detector_scores, store, attribution, budgets, target, level.value), log).assign(model=kind)
                        for kind, target in targets.items()], ignore_index=True)
    timed("ch7: bootstrap AUROCs of this seed's rows",
          lambda: detectors.detector_aurocs(scores, list(budgets), abc.detectors), log)

    wall, cpu = (sum(times) for times in zip(*log.values()))
    threads = torch.get_num_threads()
    idle = min(wall, cpu / threads)
    print(f"total: wall {wall:.1f} s, CPU {cpu:.1f} s on {threads} threads (load average now {os.getloadavg()[0]:.1f})")
    print(f"estimated wall time per seed on an idle machine (CPU / threads): {idle:.1f} s, "
          f"{'within' if idle <= TARGET_S else 'OVER'} the target of {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
