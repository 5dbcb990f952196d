"""Wall time of chapters 6 and 7 for one seed: attributions, their stability and ABC, for both models.

Target: at the ``paper`` profile, everything the two chapters compute for one seed (the example
maps of every method and class, the stability measure on the explained subset at every
perturbation level, and ABC on the same subset, as written and in the rescaled variants) takes
at most 6 minutes on a 2-core CPU.

The timing runs the library's own cached functions against an empty, temporary artifact store, so
nothing is read back. By default it uses *untrained* models of the profile's architecture and
random spectrograms of the profile's image size: the cost of a gradient or a forward pass does not
depend on the weights. ``--trained`` uses the trained models and the test split instead (read
from the book's artifact store, trained first if missing).

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

import torch
from torch import nn

from nsdelib.book.context import Context
from nsdelib.book.profiles import PROFILE_NAMES, Profile, get_profile
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.common.devices import resolve_device
from nsdelib.common.seeding import seed_everything
from nsdelib.evaluation.abc import abc_variants, cached_abc
from nsdelib.evaluation.attributions import (
    ATTRIBUTION_METHODS,
    attribute,
    attribution_noise,
    cached_attribution_stability,
)
from nsdelib.models.inference import headline_mode
from nsdelib.models.nsde import eval_noise
from nsdelib.models.registry import MODEL_KINDS, build_model

TARGET_S = 360.0
KINDS = MODEL_KINDS


def timed(label: str, work: Callable[[], object], log: dict[str, tuple[float, float]]) -> None:
    """Run ``work()``; print and record its wall time and its process CPU time under ``label``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    log[label] = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"  {label:<60} wall {log[label][0]:7.1f} s   cpu {log[label][1]:7.1f} s", flush=True)


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
    parser.add_argument("--nsde-mode", choices=("off", "single", "ensemble"),
                        help="how the NSDE classifies inputs and ABC neighbours (default: the profile's eval_noise)")
    parser.add_argument("--trained", action="store_true", help="trained models and the test split")
    args = parser.parse_args()

    profile = get_profile(args.profile)
    seed_everything(args.seed)
    models, x, y = (trained_inputs if args.trained else untrained_inputs)(profile, args.seed)
    store = ArtifactStore(tempfile.mkdtemp(prefix="bench-attr-"))
    attribution, abc = profile.attribution, profile.abc
    sde = profile.model.sde if args.nsde_mode is None else profile.model.sde.replace(eval_noise=args.nsde_mode)
    source = "trained models, test split" if args.trained else "UNTRAINED models, random spectrograms"
    print(f"profile={args.profile} seed={args.seed}: {source}; {profile.model.variant}, image {tuple(x.shape[1:])}, "
          f"threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"explained subset {attribution.subset_size}, IG steps {attribution.ig_steps}, noise draws "
          f"{attribution.noise_draws}, SmoothGrad samples {attribution.smoothgrad_samples}, levels "
          f"{attribution.perturbation_levels}, ABC S={abc.samples}, rescaled fractions {abc.rescaled_fractions}")

    log: dict[str, tuple[float, float]] = {}
    examples = torch.stack([(y == c).nonzero()[0, 0] for c in y.unique()])
    for kind, model in models.items():
        mode = headline_mode(kind, sde)
        print(f"{kind}, explained in mode '{mode.name}'")
        for method in ATTRIBUTION_METHODS:
            with eval_noise(model, attribution_noise(mode)):
                timed(f"{kind}: {method} maps, one per class",
                      lambda: attribute(model, x[examples], y[examples], method, attribution, seed=args.seed), log)
        timed(f"{kind}: stability ({len(attribution.perturbation_levels)} levels, incl. clean IG)",
              lambda: cached_attribution_stability(store, attribution, model, x, y, mode, seed=args.seed), log)
        for label, variant in abc_variants(abc, x[0].numel()).items():
            timed(f"{kind}: ABC {label} (S={abc.samples}, IG shared)",
                  lambda: cached_abc(store, variant, attribution, model, x, y, mode, seed=args.seed), log)

    wall, cpu = (sum(times) for times in zip(*log.values()))
    threads = torch.get_num_threads()
    idle = min(wall, cpu / threads)
    print(f"total: wall {wall:.1f} s, CPU {cpu:.1f} s on {threads} threads (load average now {os.getloadavg()[0]:.1f})")
    print(f"estimated wall time on an idle machine (CPU / threads): {idle:.1f} s, "
          f"{'within' if idle <= TARGET_S else 'OVER'} the target of {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
