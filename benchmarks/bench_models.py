"""Forward + backward time of the NSDE-ConvNeXt against the ConvNeXt baseline on the same batch.

Target: the NSDE costs at most 1.10× the baseline (training mode, noise on) at the image size of
the chosen profile. Prints the median over several runs of each model and the ratio of medians.

    .venv/bin/python benchmarks/bench_models.py --profile paper --batch 32 --repeats 15 [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.models.registry import MODEL_KINDS, build_model


def step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Wall time of one training step's forward and backward pass (no optimiser update)."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    nn.functional.cross_entropy(model(x), y).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper", choices=PROFILE_NAMES)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    profile = get_profile(args.profile)
    cfg = profile.model
    rows, cols = profile.data.image_rows, profile.data.image_cols
    torch.manual_seed(0)
    models = {kind: build_model(kind, cfg, args.classes).train() for kind in MODEL_KINDS}
    for model in models.values():
        model.load_state_dict(models["convnext"].state_dict())
    x = torch.rand(args.batch, 1, rows, cols)
    y = torch.randint(0, args.classes, (args.batch,))

    times: dict[str, list[float]] = {kind: [] for kind in models}
    for kind, model in models.items():
        step_seconds(model, x, y)  # warm-up: allocator and kernel selection
    for _ in range(args.repeats):  # interleaved, so background load hits both models alike
        for kind, model in models.items():
            times[kind].append(step_seconds(model, x, y))

    medians = {kind: statistics.median(values) for kind, values in times.items()}
    print(f"profile={args.profile} variant={cfg.variant} image={rows}x{cols} batch={args.batch} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}")
    print(f"NSDE: sigma={cfg.sde.sigma} diffusion={cfg.sde.diffusion} noise_shape={cfg.sde.noise_shape} "
          f"steps_per_block={cfg.sde.steps_per_block}")
    for kind, median in medians.items():
        print(f"{kind:>14} forward+backward: median {1000 * median:7.1f} ms  "
              f"(min {1000 * min(times[kind]):.1f}, max {1000 * max(times[kind]):.1f})")
    print(f"ratio NSDE / ConvNeXt: {medians['nsde'] / medians['convnext']:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
