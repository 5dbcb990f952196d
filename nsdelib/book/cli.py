"""Command line: ``nsdebook build|run|list|calibrate|precompute`` (also ``python -m nsdelib``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..common.errors import ArtifactError, ConfigError
from .calibrate import record, run_sweep
from .context import setup
from .precompute import BUILD_STAGES, STAGES, PrecomputeFailed, check_stages, run_in_workers, run_share
from .profiles import DEFAULT_PROFILE, PROFILE_NAMES, validate_params
from .runner import REPO_ROOT, BookBuildFailed, ChapterFailed, build_html, run_book, toc_entries


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nsdebook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "execute every chapter of _toc.yml, then render the HTML book"),
        ("run", "execute chapters (all, or the ones named) without rendering"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        if name == "run":
            sub.add_argument("chapters", nargs="*", help="toc entries or file stems, e.g. ch01_signals")
        sub.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {', '.join(PROFILE_NAMES)}")
        sub.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
        sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
        sub.add_argument("--out", type=Path, default=REPO_ROOT, help="folder that receives _build/")
        sub.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
        if name == "build":
            sub.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                             help="processes (one thread each) that train the chapters' models before the chapters "
                                  "run (default: one per usable core; 1: the chapters train them)")
    commands.add_parser("list", help="list the chapters in reading order")
    text = "train and measure the calibration sweep's points (resumable), or --record what is done"
    sub = commands.add_parser("calibrate", help=text, description=text)
    sub.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILE_NAMES)}")
    sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    sub.add_argument("--worker", type=int, default=0, help="this worker's index (default 0)")
    sub.add_argument("--workers", type=int, default=1, help="workers sharing the points (default 1)")
    sub.add_argument("--record", action="store_true", help="only record the points already measured")
    sub.add_argument("--trained-only", action="store_true", help="measure only the points whose model is trained")
    text = "compute one stage of the chapters' models and sweeps ahead of the build, shared among workers"
    sub = commands.add_parser("precompute", help=text, description=text)
    sub.add_argument("--stage", required=True, nargs="+",
                     help=f"one or more of {', '.join(STAGES)}, run in the order given (this order)")
    sub.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILE_NAMES)}")
    sub.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    sub.add_argument("--worker", type=int, default=0, help="this worker's index (default 0)")
    sub.add_argument("--workers", type=int, default=1, help="workers sharing the jobs (default 1)")
    sub.add_argument("--dynamic", action="store_true", help="share one queue: each worker claims the next free job")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 success, 1 chapter or build failure, 2 bad input)."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        print("\n".join(toc_entries()))
        return 0
    start = time.perf_counter()
    if args.command == "calibrate":
        return _calibrate(args)
    if args.command == "precompute":
        return _precompute(args)
    try:
        if args.command == "build" and args.workers > 1:
            validate_params(profile=args.profile, seed=args.seed, device=args.device)
            print(f"training the chapters' models in {args.workers} worker processes ...", flush=True)
            run_in_workers(BUILD_STAGES, args.workers, args.profile, args.seed, args.device)
        stage = run_book(
            entries=(args.chapters or None) if args.command == "run" else None,
            profile=args.profile,
            seed=args.seed,
            device=args.device,
            out=args.out,
            progress=not args.no_progress,
        )
        if args.command == "build":
            build_html(stage, out=args.out)
    except (ConfigError, ArtifactError) as exc:
        print(f"nsdebook: error: {exc}", file=sys.stderr)
        return 2
    except (ChapterFailed, BookBuildFailed, PrecomputeFailed) as exc:
        print(f"nsdebook: {exc}", file=sys.stderr)
        return 1
    print(f"finished in {time.perf_counter() - start:.1f} s")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    """``nsdebook calibrate``: one worker's share of the sweep, or the record of what is done."""
    try:
        if not 0 <= args.worker < args.workers:
            raise ConfigError(f"--worker {args.worker} must lie in [0, --workers = {args.workers})")
        ctx = setup(profile=args.profile, seed=0, device=args.device)
        if args.record:
            result = record(ctx)
            print(f"recorded {len(result['points'].get('kind', []))} points, {result['missing_points']} missing; "
                  f"choice: {result['choice']}")
        else:
            run_sweep(ctx, args.worker, args.workers, trained_only=args.trained_only)
    except (ConfigError, ArtifactError) as exc:
        print(f"nsdebook: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _precompute(args: argparse.Namespace) -> int:
    """``nsdebook precompute``: one worker's share of each stage, in the order given."""
    try:
        check_stages(args.stage)
        ctx = setup(profile=args.profile, seed=args.seed, device=args.device)
        for stage in args.stage:
            run_share(ctx, stage, args.worker, args.workers, log=lambda line: print(line, flush=True),
                      dynamic=args.dynamic)
    except (ConfigError, ArtifactError) as exc:
        print(f"nsdebook: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
