"""Command line: ``nsdebook build|run|list|calibrate|precompute|verify`` (chapter "Running this book")."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..common import ArtifactError, ConfigError
from .context import setup
from .precompute import (BUILD_STAGES, STAGES, ClusterSpec, PrecomputeFailed, SlurmJobs, calibration_graph,
                         record_calibration, run_on_cluster, run_precompute, usable_cores)
from .profiles import DEFAULT_PROFILE, PROFILE_NAMES, validate_params
from .provenance import RESULTS_ROOT
from .runner import (CHAPTER_TIMES, PRECOMPUTE_ENTRY, REPO_ROOT, WHOLE_BUILD_ENTRY, BookBuildFailed, ChapterFailed,
                     build_html, record_chapter_time, run_book, toc_entries)
from .verify import verify


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nsdebook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seed, book, cluster = (argparse.ArgumentParser(add_help=False) for _ in range(3))
    seed.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    book.add_argument("--out", type=Path, default=REPO_ROOT, help="folder that receives _build/")
    book.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    group = cluster.add_argument_group("cluster", "default: a local Dask cluster of one-thread worker processes")
    group.add_argument("--workers", type=int, default=usable_cores(),
                       help="worker processes of the local cluster (default: one per usable core)")
    group.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    group.add_argument("--scheduler-file", type=Path, help="the file a running `dask scheduler --scheduler-file` wrote")
    group.add_argument("--cluster", choices=("local", "slurm"), default="local",
                       help="local (default) or slurm: submit Dask worker jobs with dask-jobqueue")
    group.add_argument("--jobs", type=int, help="Slurm jobs to submit (with --cluster slurm)")
    group.add_argument("--gpus-per-job", type=int, default=0, help="GPUs of each Slurm job, one worker each")
    group.add_argument("--cores-per-job", type=int, default=8, help="cores of each Slurm job (default 8)")
    group.add_argument("--memory-per-job", default="32GB", help="memory of each Slurm job (default 32GB)")
    group.add_argument("--walltime", default="08:00:00", help="time limit of each Slurm job (default 08:00:00)")
    group.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                       help="a further #SBATCH option for each job, e.g. --sbatch=--partition=gpu (repeatable)")

    def command(name: str, text: str, run: Callable[[argparse.Namespace], int],
                parents: tuple[argparse.ArgumentParser, ...] = (), profile: str = "paper") -> argparse.ArgumentParser:
        """A subcommand with the parameters every run takes: profile and device (and those of ``parents``)."""
        sub = commands.add_parser(name, help=text, description=text, parents=parents)
        sub.add_argument("--profile", default=profile, help=f"one of {', '.join(PROFILE_NAMES)} (default {profile})")
        sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
        sub.set_defaults(run=run)
        return sub

    command("build", "execute every chapter of _toc.yml, then render the HTML book", _book, (seed, book),
            DEFAULT_PROFILE).add_argument(
        "--workers", type=int, default=usable_cores(),
        help="processes of a local Dask cluster (one thread each) that compute the chapters' models and sweeps "
             "before the chapters run, and chapters run at once after it (default: one per usable core; 1: the "
             "chapters compute them, one by one)")
    command("run", "execute chapters (all, or the ones named) without rendering", _book, (seed, book),
            DEFAULT_PROFILE).add_argument("chapters", nargs="*", help="toc entries or file stems, e.g. ch01_signals")
    commands.add_parser("list", help="list the chapters in reading order").set_defaults(run=_list)
    sub = command("calibrate", "train and measure the calibration sweep's points (resumable), or --record what is "
                               "done", _calibrate, (cluster,))
    sub.add_argument("--record", action="store_true", help="only record the points already measured")
    sub.add_argument("--trained-only", action="store_true", help="measure only the points whose model is trained")
    command("precompute", "compute the chapters' models and sweeps ahead of the build, as one Dask task graph",
            _precompute, (seed, cluster)).add_argument(
        "--stage", nargs="+", default=list(STAGES),
        help=f"one or more of {', '.join(STAGES)} (default: all), with the stages they need")
    sub = command("verify", "retrain (or read back) the models the recorded results cite and compare their weights' "
                            "SHA-256", _verify)
    sub.add_argument("--kind", help="only the models of this kind")
    sub.add_argument("--seed", type=int, help="only the models of this seed")
    sub.add_argument("--results", type=Path, default=RESULTS_ROOT, help="folder of recorded results (default results/)")
    return parser


def _cluster_spec(args: argparse.Namespace) -> ClusterSpec:
    """The cluster the options name; a Slurm option without ``--cluster slurm`` (or the reverse) is refused."""
    if args.cluster == "slurm":
        if args.jobs is None:
            raise ConfigError("--cluster slurm needs --jobs N (the number of Slurm jobs to submit)")
        slurm = SlurmJobs(args.jobs, args.gpus_per_job, args.cores_per_job, args.memory_per_job, args.walltime,
                          tuple(args.sbatch))
        return ClusterSpec(args.workers, args.scheduler, args.scheduler_file, slurm)
    if args.jobs is not None or args.gpus_per_job or args.sbatch:
        raise ConfigError("--jobs, --gpus-per-job and --sbatch apply to --cluster slurm only")
    return ClusterSpec(args.workers, args.scheduler, args.scheduler_file)


def _log(line: str) -> None:
    print(line, flush=True)


def _book(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    precomputed = None
    if args.command == "build" and args.workers > 1:
        _log(f"computing the chapters' models and sweeps in {args.workers} worker processes ...")
        run_precompute(BUILD_STAGES, args.profile, args.seed, args.device, ClusterSpec(workers=args.workers), log=_log)
        precomputed = time.perf_counter() - start
    stage = run_book(entries=(args.chapters or None) if args.command == "run" else None, profile=args.profile,
                     seed=args.seed, device=args.device, out=args.out, progress=not args.no_progress,
                     jobs=args.workers if args.command == "build" else 1)
    params = validate_params(profile=args.profile, seed=args.seed, device=args.device)
    if precomputed is not None:
        record_chapter_time(stage / CHAPTER_TIMES, PRECOMPUTE_ENTRY, precomputed, params)
    if args.command == "build":
        build_html(stage, out=args.out)
        record_chapter_time(stage / CHAPTER_TIMES, WHOLE_BUILD_ENTRY, time.perf_counter() - start, params)
    print(f"finished in {time.perf_counter() - start:.1f} s")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    cluster = _cluster_spec(args)
    if args.record:
        result = record_calibration(setup(profile=args.profile, seed=0, device=args.device))
        print(f"recorded {len(result['points'].get('kind', []))} points, {result['missing_points']} missing; "
              f"choice: {result['choice']}")
    else:
        run_on_cluster(lambda ctx: calibration_graph(ctx, args.trained_only), args.profile, 0, args.device, cluster,
                       log=_log)
    return 0


def _precompute(args: argparse.Namespace) -> int:
    run_precompute(args.stage, args.profile, args.seed, args.device, _cluster_spec(args), log=_log)
    return 0


def _verify(args: argparse.Namespace) -> int:
    """0 when every cited model matches, 1 naming the first mismatch."""
    mismatches = verify(setup(profile=args.profile, seed=0, device=args.device), args.kind, args.seed, args.results,
                        log=_log)
    if mismatches:
        first = mismatches[0]
        print(f"nsdebook: {len(mismatches)} model(s) differ from the records; first: {first.label}, "
              f"cited by {', '.join(first.records)}", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    print("\n".join(toc_entries()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 success, 1 a chapter, task or build failed, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, ArtifactError) as exc:
        print(f"nsdebook: error: {exc}", file=sys.stderr)
        return 2
    except (ChapterFailed, BookBuildFailed, PrecomputeFailed) as exc:
        print(f"nsdebook: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
