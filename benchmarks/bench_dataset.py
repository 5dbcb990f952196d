"""Time and peak memory of generating a profile's data set (chapter 1), without the artifact store.

Target: the ``paper`` data set (10,000 spectrograms) is generated in at most 20 s and 2 GB of
memory on a 2-core CPU.

Each run happens in a fresh process, so that its peak resident memory (``ru_maxrss``) belongs to
that run alone; the figure includes the Python interpreter and the imported libraries, and the
script also prints the part added by the generation itself. The script prints the median over
the runs of wall time and of process CPU time: on a machine shared with other jobs the wall time
grows with the load, while the CPU time estimates the wall time on an idle machine (generation
runs on one thread).

    .venv/bin/python benchmarks/bench_dataset.py --profile paper --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time

TARGET_S, TARGET_GB = 20.0, 2.0


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def one_run(profile: str, seed: int) -> dict[str, float]:
    """Generate the profile's data set once in this (fresh) process and measure it."""
    from nsdelib.book.profiles import get_profile
    from nsdelib.data.dataset import build_dataset

    config = get_profile(profile).data
    before = peak_rss_gb()
    wall, cpu = time.perf_counter(), time.process_time()
    data = build_dataset(config, seed, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stored = sum(s.x.nbytes + s.y.nbytes + s.snr_db.nbytes for s in data.splits().values())
    return {
        "samples": float(sum(len(s) for s in data.splits().values())),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_gb": peak_rss_gb(),
        "added_gb": peak_rss_gb() - before,
        "stored_mb": stored / 1024**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="ci, quick or paper (default paper)")
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs to take the median of")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    results = []
    for run in range(args.runs):
        with context.Pool(1) as pool:
            result = pool.apply(one_run, (args.profile, args.seed + run))
        results.append(result)
        print(
            f"run {run + 1}: {result['samples']:.0f} spectrograms, wall {result['wall_s']:5.1f} s, "
            f"cpu {result['cpu_s']:5.1f} s, peak memory {result['peak_gb']:.2f} GB "
            f"({result['added_gb']:.2f} GB added by the generation)",
            flush=True,
        )
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(
        f"\n{args.profile} data set, median of {args.runs} runs: wall {median['wall_s']:.1f} s "
        f"(target ≤ {TARGET_S:g} s), cpu {median['cpu_s']:.1f} s, peak memory {median['peak_gb']:.2f} GB "
        f"(target ≤ {TARGET_GB:g} GB), of which {median['added_gb']:.2f} GB for the generation; "
        f"the splits hold {median['stored_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
