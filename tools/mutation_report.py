"""Mutation testing of the modules that decide what the book reports: killed / survived per module.

For each module, mutmut (the ``mutation`` extra) makes small changes to the code (a ``<`` becomes
``<=``, a constant changes, a call is dropped) and runs the module's test files against each
mutant; a mutant that no test notices *survived* and points at a behaviour nothing checks. Each
module runs in a scratch copy of the repository, since mutmut reads its settings from ``setup.cfg``
in the working directory and writes its ``mutants/`` tree there. Not run in CI (``make mutation``).

    python tools/mutation_report.py                                  # every module below
    python tools/mutation_report.py nsdelib/training/trainer.py      # some of them
    python tools/mutation_report.py --survivors nsdelib/claims/c4_abc.py
    python tools/mutation_report.py --jobs 1 ...                     # one mutant at a time (a busy machine)
    python tools/mutation_report.py --sample 80 nsdelib/training/trainer.py   # a seeded random 80 of its mutants
    python tools/mutation_report.py --mutants 'nsdelib.claims.c4_abc.x_log_crossing*' --mutants '*x_abc_curve__*' \
        nsdelib/claims/c4_abc.py                                     # one function's mutants, another's

``--sample`` estimates the score of a module whose every mutant retrains models (the trainer: hours on
two cores) from a seeded random sample of its mutants, with a 95 % Wilson interval.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import binomtest

REPO = Path(__file__).resolve().parent.parent

#: The modules whose numbers the book reports, with the test files that check them.
MODULES: dict[str, tuple[str, ...]] = {
    "nsdelib/report/stats.py": ("tests/test_stats.py", "tests/test_claims.py", "tests/test_noise_robustness.py"),
    "nsdelib/claims/c3_attacks.py": ("tests/test_attacks.py", "tests/test_properties.py", "tests/test_claims.py"),
    "nsdelib/report/claims.py": ("tests/test_claims.py", "tests/test_claims_c4_c5.py"),
    "nsdelib/claims/c4_abc.py": ("tests/test_abc.py", "tests/test_claims_c4_c5.py"),
    "nsdelib/claims/c5_stability.py": ("tests/test_attributions.py", "tests/test_claims_c4_c5.py", "tests/test_claims.py"),
    "nsdelib/claims/error_detection.py": ("tests/test_detectors.py", "tests/test_claims_c4_c5.py"),
    "nsdelib/evaluation/input_noise.py": ("tests/test_noise_robustness.py",),
    "nsdelib/claims/sigma_tuning.py": ("tests/test_sigma_rule.py", "tests/test_frontier.py", "tests/test_calibrate.py"),
    "nsdelib/claims/c1_clean_accuracy.py": ("tests/test_claims.py",),
    "nsdelib/claims/c2_noise.py": ("tests/test_claims.py", "tests/test_frontier.py", "tests/test_noise_robustness.py"),
    "nsdelib/training/trainer.py": ("tests/test_training.py", "tests/test_metrics.py"),
}
RESULT_LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
#: A mutant name that matches nothing: mutmut generates the mutants and maps tests to them, then stops.
NO_MUTANT = "no.such.mutant__mutmut_0"


@dataclass
class ModuleResult:
    """The outcome of every mutant of one module, how long the run took and, if asked for, the survivors' diffs."""

    module: str
    statuses: dict[str, str]
    seconds: float
    survivor_diffs: dict[str, str]
    population: int
    sampled: bool = False

    def count(self, status: str) -> int:
        return Counter(self.statuses.values())[status]


def mutmut_config(module: str, tests: list[str]) -> str:
    """A ``setup.cfg`` that mutates ``module`` only and runs ``tests`` (never the slow book test)."""
    lines = "\n    ".join
    return (
        "[mutmut]\n"
        "source_paths = nsdelib\n"
        f"only_mutate = {module}\n"
        f"pytest_add_cli_args_test_selection =\n    {lines(tests)}\n"
        f"pytest_add_cli_args =\n    {lines(['-p', 'no:cacheprovider', '-m', 'not slow'])}\n"
        # torch is not fork-safe once it has run: fork each mutant from a clean server process
        "process_isolation = forkserver\n"
    )


def scratch_copy(root: Path) -> Path:
    """``root`` holding a copy of the library, its tests, the book they read and pytest's settings, to change freely."""
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    for folder in ("nsdelib", "tests", "chapters", "results"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    for name in ("pyproject.toml", "_toc.yml", "_config.yml"):  # pyproject: pytest's settings; no [tool.mutmut]
        shutil.copy2(REPO / name, root / name)
    return root


def generated_mutants(root: Path, module: str) -> list[str]:
    """The names of every mutant mutmut generated for ``module`` in the scratch copy at ``root``."""
    return sorted(json.loads((root / "mutants" / f"{module}.meta").read_text())["exit_code_by_key"])


def run_module(module: str, tests: list[str], mutmut: list[str], show_survivors: bool,
               jobs: int | None = None, sample: int | None = None, seed: int = 0,
               patterns: list[str] | None = None) -> ModuleResult:
    """mutmut on ``module`` with ``tests`` in a scratch copy: every mutant, a seeded random ``sample`` of them,
    or those whose names match ``patterns`` (mutmut's globs, e.g. one function's after new tests)."""
    with tempfile.TemporaryDirectory(prefix="nsdelib-mutation-") as scratch:
        root = scratch_copy(Path(scratch))
        (root / "setup.cfg").write_text(mutmut_config(module, tests))
        start = time.perf_counter()
        limit = ["--max-children", str(jobs)] if jobs else []
        chosen: list[str] = list(patterns or [])
        if sample:
            subprocess.run([*mutmut, "run", *limit, NO_MUTANT], cwd=root, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            population = [name for name in generated_mutants(root, module)
                          if not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)]
            if not population:
                raise RuntimeError(f"no mutant of {module} to sample from (patterns: {patterns})")
            chosen = random.Random(seed).sample(population, min(sample, len(population)))
        subprocess.run([*mutmut, "run", *limit, *chosen], cwd=root, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=root, check=True,
                                 capture_output=True, text=True).stdout
        statuses = {m["name"]: m["status"] for m in map(RESULT_LINE.match, listing.splitlines()) if m}
        generated = len(statuses)
        if chosen:
            statuses = {name: status for name, status in statuses.items()
                        if any(fnmatch.fnmatchcase(name, pattern) for pattern in chosen)}
        diffs = {
            name: subprocess.run([*mutmut, "show", name], cwd=root, check=True, capture_output=True, text=True).stdout
            for name, status in statuses.items()
            if show_survivors and status != "killed"
        }
    return ModuleResult(module, statuses, seconds, diffs, generated, bool(sample))


def table(results: list[ModuleResult]) -> str:
    """One row per module: mutants tested (of those generated), killed, survived, the rest (timeouts, no tests, ...),
    score, for a random sample its 95 % Wilson interval, and time."""
    header = (f"{'module':<36} {'mutants':>9} {'killed':>6} {'survived':>8} {'other':>5} {'score':>6} "
              f"{'95 % CI':>11} {'time (s)':>9}")
    rows = [header, "-" * len(header)]
    for r in results:
        total, killed, survived = len(r.statuses), r.count("killed"), r.count("survived")
        score = f"{killed / total:.0%}" if total else "-"
        tested = f"{total}/{r.population}" if total < r.population else str(total)
        interval = "-"
        if r.sampled and 0 < total < r.population:
            ci = binomtest(killed, total).proportion_ci(method="wilson")
            interval = f"{ci.low:.0%}-{ci.high:.0%}"
        rows.append(f"{r.module:<36} {tested:>9} {killed:>6} {survived:>8} {total - killed - survived:>5} "
                    f"{score:>6} {interval:>11} {r.seconds:>9.0f}")
    return "\n".join(rows)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked: known modules; one glob per ``--mutants`` so that it cannot swallow a module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate (default: {', '.join(MODULES)})")
    parser.add_argument("--survivors", action="store_true", help="show the diff of every mutant no test killed")
    parser.add_argument("--jobs", type=int, help="mutants tested at once (default: mutmut's, one per core)")
    parser.add_argument("--sample", type=int, help="test a seeded random sample of this many mutants per module")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--mutants", action="append", metavar="GLOB",
                        help="test only the mutants whose names match (repeat for several globs)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"not a module of this report: {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    mutmut = [sys.executable, "-m", "mutmut"]
    results = []
    for module in args.modules or MODULES:
        tests = [t for t in MODULES[module] if (REPO / t).exists()]
        print(f"mutating {module} against {', '.join(tests)} ...", flush=True)
        results.append(run_module(module, tests, mutmut, args.survivors, args.jobs, args.sample, args.seed,
                                  args.mutants))
    print(table(results))
    for r in results:
        for name, diff in r.survivor_diffs.items():
            print(f"\n{name}: {r.statuses[name]}\n{diff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
