"""The bugs a mutation probe once found that every test let through, each put back and shown killed.

Each entry below is one of those bugs, written as a replacement of exact source text. The script
copies the library and tests to a scratch folder, checks that the chosen tests pass on the
unchanged code, then applies one bug at a time and runs the tests that should notice it: a bug is
*killed* when they fail, *survived* when they pass. Not run in CI (a few minutes; ``make known-mutants``).

    python tools/known_mutants.py            # every bug
    python tools/known_mutants.py --list     # what each bug is
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mutation_report import scratch_copy

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class KnownMutant:
    """One deliberate bug: in ``path``, ``old`` (occurring exactly once) becomes ``new``; ``tests`` should fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


TRAINING = ("tests/test_training.py",)
STATS = ("tests/test_stats.py",)
ATTACKS = ("tests/test_attacks.py", "tests/test_properties.py")
#: Behaviour changed behind an artifact kind without a bump of its version: the golden outputs notice.
GOLDEN = ("tests/test_golden.py",)
_FALLBACK_WARNING = "            warnings.warn(f\"{exc}; falling back to an earlier checkpoint\", stacklevel=3)\n"

KNOWN_MUTANTS: tuple[KnownMutant, ...] = (
    KnownMutant("training never updates the weights (optimizer.step deleted)", "nsdelib/training/trainer.py",
                "            optimizer.step()\n", "", TRAINING),
    KnownMutant("a corrupt checkpoint makes training start from scratch instead of resuming",
                "nsdelib/training/trainer.py",
                _FALLBACK_WARNING, _FALLBACK_WARNING + "            return None\n", TRAINING),
    KnownMutant("every checkpoint ignored: training always starts from scratch", "nsdelib/training/trainer.py",
                "    state = _latest_checkpoint(store, key, cfg.max_epochs)\n", "    state = None\n", TRAINING),
    KnownMutant("per-class accuracy computed as precision instead of recall", "nsdelib/training/trainer.py",
                "support = confusion.sum(dim=1)", "support = confusion.sum(dim=0)", ("tests/test_metrics.py",)),
    KnownMutant("Student-t quantile of the paired interval replaced by the normal one", "nsdelib/report/stats.py",
                "scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, estimate.df)", "scipy_stats.norm.ppf(1 - ALPHA_ONE_SIDED)",
                STATS),
    KnownMutant("'reproduced' when the interval merely reaches the smallest effect of interest (the lenient rule)",
                "nsdelib/report/stats.py", "reaches, misses = low >= reference.value, high < reference.value",
                "reaches, misses = high >= reference.value, high < reference.value", STATS),
    KnownMutant("one run's prediction interval without the run's own variance (the mean's interval instead)",
                "nsdelib/report/stats.py", "spread * math.sqrt(1 + 1 / n)", "spread / math.sqrt(n)", STATS),
    KnownMutant("the images shared between seeds add no variance (images held fixed)", "nsdelib/report/stats.py",
                "    variance = between / n_seeds + image_weight * image_covariance\n",
                "    variance = between / n_seeds\n", STATS),
    KnownMutant("a family adjusted by Benjamini-Hochberg instead of Holm", "nsdelib/report/stats.py",
                'method="holm"', 'method="fdr_bh"', STATS),
    KnownMutant("a verdict never flagged underpowered", "nsdelib/report/stats.py",
                "underpowered=bool(mde > reference.value)", "underpowered=False", STATS),
    KnownMutant("Student-t quantile of the mean's interval replaced by the normal one", "nsdelib/report/stats.py",
                "scipy_stats.t.ppf(0.5 + confidence / 2, data.size - 1)", "scipy_stats.norm.ppf(0.5 + confidence / 2)",
                ("tests/test_stats.py",)),
    KnownMutant("the norm-bound check accepts every perturbation", "nsdelib/claims/c3_attacks.py",
                'norms <= attacked["eps"] * (1 + NORM_TOLERANCE)', 'norms >= 0', ATTACKS),
    KnownMutant("norm tolerance 1.0 (perturbations up to 2ε pass)", "nsdelib/claims/c3_attacks.py",
                "NORM_TOLERANCE = 1e-4", "NORM_TOLERANCE = 1.0", ATTACKS),
    KnownMutant("the accuracy table's max_delta_norm column is 0", "nsdelib/claims/c3_attacks.py",
                'max_delta_norm=("_norm", "max")', 'max_delta_norm=("_norm", lambda s: 0.0)', ATTACKS),
    KnownMutant("ABC's attribution-shape check disabled", "nsdelib/claims/c4_abc.py",
                "    if attributions.shape != x.shape:\n", "    if False:\n", ("tests/test_abc.py",)),
    KnownMutant("the runner's chapter-parameters check disabled", "nsdelib/book/runner.py",
                "    if sorted(declared) != sorted(expected):\n", "    if False:\n", ("tests/test_runner.py",)),
    KnownMutant("label smoothing fixed at 0.1 whatever the config (training changed, 'trained' not bumped)",
                "nsdelib/training/trainer.py", "nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)",
                "nn.CrossEntropyLoss(label_smoothing=0.1)", GOLDEN),
    KnownMutant("noisy inputs no longer clipped to [0, 1] (sweeps changed, their versions not bumped)",
                "nsdelib/evaluation/input_noise.py", "    return (x + level * pattern.to(x.device)).clamp(0.0, 1.0)\n",
                "    return x + level * pattern.to(x.device)\n", GOLDEN),
    KnownMutant("spectrogram levels shifted by 1 dB (the data set changed, 'dataset' not bumped)",
                "nsdelib/data/dataset.py", "return ((self.levels_db(x) - low) / (high - low))",
                "return ((self.levels_db(x) - low + 1.0) / (high - low))", GOLDEN),
    KnownMutant("the σ rule picks the sweep point with the largest cost instead of interpolating to the target",
                "nsdelib/claims/sigma_tuning.py",
                '    value = interpolate_setting(np.asarray(settings), reference - np.asarray(accuracies), target_cost)\n',
                '    value = float(np.asarray(settings)[(reference - np.asarray(accuracies)).argmax()])\n',
                ("tests/test_sigma_rule.py",)),
    KnownMutant("a recorded result without its provenance or result block accepted", "nsdelib/book/provenance.py",
                '    if not {"provenance", "result"} <= payload.keys():\n', "    if False:\n",
                ("tests/test_provenance.py",)),
)


def apply(source: str, mutant: KnownMutant) -> str:
    """``source`` with the mutant's bug in it; an error if its text is not there exactly once (the code moved on)."""
    count = source.count(mutant.old)
    if count != 1:
        raise ValueError(f"{mutant.name}: {mutant.old.strip()!r} occurs {count} times in {mutant.path}, expected once")
    return source.replace(mutant.old, mutant.new)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, float]:
    """pytest's exit status on ``tests`` in the scratch copy at ``root`` (its ``nsdelib`` first on the path)."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    status = subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return status, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the bugs and the tests that should catch them")
    args = parser.parse_args(argv)
    if args.list:
        for m in KNOWN_MUTANTS:
            print(f"{m.name}\n    {m.path}: {m.old.strip()!r} -> {m.new.strip()!r}\n    tests: {', '.join(m.tests)}")
        return 0
    for m in KNOWN_MUTANTS:
        apply((REPO / m.path).read_text(), m)
    with tempfile.TemporaryDirectory(prefix="nsdelib-known-mutants-") as scratch:
        root = scratch_copy(Path(scratch))
        baseline = sorted({t for m in KNOWN_MUTANTS for t in m.tests})
        status, seconds = run_tests(root, tuple(baseline))
        if status != 0:
            print(f"the tests fail on the unchanged code (pytest exit {status}); fix them first", file=sys.stderr)
            return 1
        print(f"unchanged code: {len(baseline)} test files pass ({seconds:.0f} s)")
        survived = 0
        for m in KNOWN_MUTANTS:
            original = (root / m.path).read_text()
            (root / m.path).write_text(apply(original, m))
            try:
                status, seconds = run_tests(root, m.tests)
            finally:
                (root / m.path).write_text(original)
            verdict = "killed" if status == 1 else "SURVIVED" if status == 0 else f"error (pytest exit {status})"
            survived += status != 1
            print(f"{verdict:<9} {seconds:5.0f} s  {m.name}  [{', '.join(m.tests)}]", flush=True)
    print(f"{len(KNOWN_MUTANTS) - survived} of {len(KNOWN_MUTANTS)} known bugs killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
