"""Results at a glance: the claims' recorded verdicts in one table, and how the book's setup differs from the paper's.

The glance page, right after the introduction, is what a reviewer reads first. For every claim it
gives the paper's figure, the book's effect with its 95 % interval, the label of the claim's primary
comparison by ``report.stats.VERDICT_RULE`` with its underpowered flag, whether the paper's single
figure is consistent with one run of this setup, the minimum detectable effect and the chapter that
tests it, all read from the recorded ``paper`` results, with their provenance. A recorded verdict is
judged again by today's rule (``report.stats.verdict_from_dict``), so a record written under an
older rule shows today's label. A claim that has not been recorded yet
gets a row that says so and gives the command that records it. The report stage sits below the
book machinery, so the page passes in how a result is loaded and how its provenance is checked
(``book.provenance.load_recorded`` and ``provenance_warnings``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from ..data.dataset import DataConfig
from ..evaluation.abc import ABCConfig
from ..evaluation.attacks import AttackConfig
from ..evaluation.attributions import AttributionConfig
from ..evaluation.input_noise import NoiseSweepConfig
from ..models.registry import ModelConfig
from ..training.trainer import TrainConfig
from .outcomes import LARGEST_LEVEL, RECORD_PLANS
from .paper import PAPER_VALUES, get_claim
from .stats import Verdict, verdict_from_dict

#: How a missing ``paper`` result is recorded (``make chapter`` executes one chapter at a profile).
RECORD_COMMAND = "make chapter CHAPTER={chapter} PROFILE=paper"
#: How C3's seeds are recorded: one record per seed, each as soon as its three models are attacked.
ATTACK_COMMAND = "nsdebook precompute --profile paper --stage attack"
NOT_RECORDED = "not recorded at paper yet"

Recorded = Mapping[str, Any]
Loader = Callable[[str], Recorded | None]
Checker = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class ClaimSource:
    """Where a claim's primary verdict is recorded: the result's name and the chapter (stem) that records it."""

    claim: str
    result: str
    chapter: str
    record_command: str = RECORD_COMMAND

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys from the result's ``result`` block to its primary ``Verdict.to_dict()`` (``RECORD_PLANS``;
        ``LARGEST_LEVEL`` picks the largest numeric key)."""
        return RECORD_PLANS[self.result].primary

    @property
    def command(self) -> str:
        """The command that records this claim's result at the ``paper`` profile."""
        return self.record_command.format(chapter=self.chapter)


SOURCES: tuple[ClaimSource, ...] = (
    ClaimSource("C1", "clean_accuracy", "ch03_training"),
    ClaimSource("C2", "noise_robustness", "ch04_noise_robustness"),
    ClaimSource("C3", "adversarial", "ch05_adversarial", ATTACK_COMMAND),
    ClaimSource("C4", "abc", "ch07_abc"),
    ClaimSource("C5", "attribution_stability", "ch06_attributions"),
)
#: The column that says, beside the label about the mean, whether the paper's single run fits this setup.
ONE_RUN = "paper's figure consistent with one run of this setup"


def _headline(result: Mapping[str, Any], keys: Sequence[str]) -> tuple[Mapping[str, Any] | None, list[str]]:
    """The verdict dict at ``keys`` in a recorded result (None where it holds none there), and the keys taken."""
    node: Any = result
    path = []
    for key in keys:
        if isinstance(node, Mapping) and key == LARGEST_LEVEL and node:
            key = max(node, key=float)
        if not isinstance(node, Mapping) or key not in node:
            return None, path
        node = node[key]
        path.append(key)
    return (node if isinstance(node, Mapping) and "label" in node else None), path


def _effect_text(verdict: Verdict) -> str:
    """The effect with its 95 % interval, or with the reason it has none."""
    if math.isnan(verdict.low) or math.isnan(verdict.high):
        return f"{verdict.effect:+.3g} (no interval: {verdict.note or 'see the chapter'})"
    return f"{verdict.effect:+.3g} [{verdict.low:+.3g}, {verdict.high:+.3g}]"


def claim_row(source: ClaimSource, recorded: Recorded | None, warnings: Sequence[str]) -> dict[str, Any]:
    """One row of the glance table: the paper's side of the claim, what its recorded result says, and where
    that result comes from (``warnings``: what is wrong with its provenance)."""
    claim = get_claim(source.claim)
    reference = f"{claim.reference.value:+.3g} ({claim.reference.kind})"
    row: dict[str, Any] = {
        "claim": claim.id, "statement": claim.statement, "paper's figure": claim.paper_figure,
        "effect judged (positive = claimed)": claim.effect, "chapter": claim.chapter, "chapter file": source.chapter,
        "result file": f"results/paper/{source.result}.json", "recorded": recorded is not None,
    }
    unjudged = {"underpowered": False, ONE_RUN: "–", "reference": reference, "MDE": math.nan}
    if recorded is None:
        return row | unjudged | {"this book (95 % interval)": f"{NOT_RECORDED}: run `{source.command}`",
                                 "verdict": NOT_RECORDED, "seeds": 0, "commit": "–", "date": "–", "device": "–",
                                 "wall time (min)": math.nan, "status": NOT_RECORDED}
    prov = recorded["provenance"]
    row |= {"seeds": len(prov["seeds"]), "commit": prov["commit"], "date": prov["date"], "device": prov["device"],
            "wall time (min)": prov["wall_time_s"] / 60,
            "status": " ".join(warnings) if warnings else "clean commit, current code"}
    stored, path = _headline(recorded["result"], source.keys)
    if stored is None:
        reason = recorded["result"].get("note") or f"no verdict at {' / '.join(source.keys)}"
        return row | unjudged | {"this book (95 % interval)": f"recorded without a verdict: {reason}",
                                 "verdict": "no verdict"}
    verdict = verdict_from_dict(stored)
    level = f" at level {path[-1]}" if LARGEST_LEVEL in source.keys else ""
    return row | {"this book (95 % interval)": _effect_text(verdict) + level, "verdict": verdict.label,
                  "underpowered": verdict.underpowered, ONE_RUN: verdict.one_run,
                  "reference": f"{verdict.reference:+.3g} ({verdict.reference_kind})", "MDE": verdict.mde,
                  "seeds": verdict.n_seeds}


def claims_at_a_glance(load: Loader, check: Checker, sources: Sequence[ClaimSource] = SOURCES) -> pd.DataFrame:
    """One row per claim (indexed by its id), from the recorded results that ``load`` returns by name.

    ``check`` returns the warnings of a provenance block (a dirty work tree, code changed since); they
    go into the ``status`` column.
    """
    rows = []
    for source in sources:
        recorded = load(source.result)
        rows.append(claim_row(source, recorded, check(recorded["provenance"]) if recorded is not None else []))
    return pd.DataFrame(rows).set_index("claim")


def glance_markdown(table: pd.DataFrame) -> str:
    """The verdict columns of the glance table as a MyST Markdown table, the chapters linked with the {doc} role;
    the underpowered flag stands beside the label it qualifies."""
    shown = pd.DataFrame({
        "claim": table.index,
        "paper's figure": table["paper's figure"],
        "this book at `paper` (95 % interval)": table["this book (95 % interval)"],
        "verdict": "**" + table["verdict"] + "**" + table["underpowered"].map({True: " · underpowered", False: ""}),
        ONE_RUN: table[ONE_RUN],
        "reference": table["reference"],
        "MDE": ["–" if math.isnan(mde) else f"{mde:.3g}" for mde in table["MDE"]],
        "seeds": table["seeds"],
        "chapter": [f"{{doc}}`chapter {number} <{stem}>`"
                    for number, stem in zip(table["chapter"], table["chapter file"])],
    })
    return shown.to_markdown(index=False)


PROVENANCE_COLUMNS = ("result file", "commit", "date", "device", "wall time (min)", "status")


def provenance_table(table: pd.DataFrame) -> pd.DataFrame:
    """Where each row of the glance table comes from: file, full commit, date, device, wall time and status."""
    return table.loc[:, list(PROVENANCE_COLUMNS)]


class ProfileSections(Protocol):
    """The sections of a profile the setup comparison reads (``book.profiles.Profile`` has them)."""

    n_seeds: int
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    lr_grid: tuple[float, ...]
    attack: AttackConfig
    noise: NoiseSweepConfig
    attribution: AttributionConfig
    abc: ABCConfig


#: The paper's side of the setup (arXiv 2409.01532, as summarised in the project's paper notes): what it
#: reports, and "not reported" for every setting it leaves open.
PAPER_SETUP: dict[str, str] = {
    "data": "private NILM data set: simulated harmonic signals injected into a real building, 10,000 STFT "
            "spectrograms; classes, sampling rate and STFT settings not reported",
    "image size": "not reported",
    "architecture": "ConvNeXt (variant not reported); the NSDE injects noise into its residual connections",
    "training": "not reported",
    "σ and noise shape": "σ not reported; \"appropriately shaped Brownian noise\"",
    "test-time ensemble": "not reported",
    "control model": "none",
    "attack protocol": "APGD-CE in the L2 norm, accuracy against ε; iterations, restarts and EOT not reported",
    "sample sizes": "not reported",
    "seeds": "a single run per model",
}


def _count(n: float, noun: str) -> str:
    return f"{n:g} {noun}{'s' * (n != 1)}"


def _subset(size: int | None) -> str:
    return "the whole test split" if size is None else f"{size} test images"


def setup_differences(profile: ProfileSections) -> pd.DataFrame:
    """The paper's setup beside this book's, one row per aspect; the book's side is read from ``profile``."""
    data, model, train, sde, attack = profile.data, profile.model, profile.train, profile.model.sde, profile.attack
    fractions = "/".join(f"{f:.0%}" for f in data.split_fractions)
    shape = f"{sde.noise_shape} (β = {sde.spectral_exponent:g})" if sde.noise_shape == "coloured" else sde.noise_shape
    cost = PAPER_VALUES["C1.convnext_clean_accuracy"] - PAPER_VALUES["C1.nsde_clean_accuracy"]
    l2 = ", ".join(f"{eps:g}" for eps in attack.headline_epsilons.get("L2", ()))
    book = {
        "data": f"open simulation (chapter 1): {len(data.classes)} source classes, {data.n_samples:,} spectrograms, "
                f"SNR {data.snr_db_range[0]:g} to {data.snr_db_range[1]:g} dB, split {fractions} by class",
        "image size": f"{data.image_rows}×{data.image_cols} pixels in [0, 1] (levels {data.level_range_db[0]:g} to "
                      f"{data.level_range_db[1]:g} dB)",
        "architecture": f"timm {model.variant}, randomly initialised, one input channel; the NSDE makes every "
                        f"residual connection {_count(sde.steps_per_block, 'Euler–Maruyama step')}",
        "training": f"AdamW (weight decay {train.weight_decay:g}, batch {train.batch_size}), warm-up over "
                    f"{_count(train.warmup_epochs, 'epoch')}, then cosine decay over at most {train.max_epochs} "
                    f"epochs; stopped after {train.patience} without a better validation accuracy, best epoch "
                    f"kept; peak learning rate per model from {', '.join(f'{lr:g}' for lr in profile.lr_grid)} "
                    f"on the first seed's validation split",
        "σ and noise shape": f"σ = {sde.sigma:g}, {sde.diffusion} diffusion, {shape} noise, chosen so that one "
                             f"stochastic pass costs the paper's {100 * cost:.2f} points on the one seed of the "
                             f"calibration sweep (chapter 3 gives the cost over seeds)",
        "test-time ensemble": f"eval noise '{sde.eval_noise}', {sde.ensemble_size} passes averaged in probability",
        "control model": f"ConvNeXt trained with Gaussian input noise of std {model.input_noise_std:g}",
        "attack protocol": f"APGD-CE and APGD-DLR with EOT over {attack.eot_iter} draws, {attack.steps} steps, "
                           f"{_count(attack.n_restarts, 'restart')}, worst case per image, at L2 ε {l2}; Square "
                           f"({attack.square_queries} queries) and transfer from noise off as checks",
        "sample sizes": f"noise sweep on {_subset(profile.noise.subset_size)}; "
                        f"attacks on {_subset(attack.subset_size)}; attributions and ABC on "
                        f"{profile.attribution.subset_size} test images, ABC with {profile.abc.samples} "
                        "neighbours each",
        "seeds": f"{profile.n_seeds} seeds per model; verdicts over seeds (the verdict rule)",
    }
    return pd.DataFrame({"the paper": PAPER_SETUP, "this book": book}).rename_axis("aspect")


#: The 2 × 2 design's rows the glance page shows: the weights on clean inputs, and both effects at the largest std.
DESIGN_HEADLINES = (("noise in training (test-time noise off)", 0.0), ("noise in training (test-time noise off)", 0.5),
                    ("test-time noise, NSDE", 0.5), ("test-time noise, ConvNeXt", 0.5))


def _finding_row(finding: str, stored: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A row from a verdict as ``stats.verdicts_frame`` tabulates it, with the label it was given (Holm's, if any)."""
    verdict = verdict_from_dict(stored)
    return {"finding": finding, "this book (95 % interval)": _effect_text(verdict), "verdict": stored["verdict"],
            "MDE": verdict.mde, "seeds": verdict.n_seeds, "recorded in": source}


def findings_at_a_glance(matched: pd.DataFrame | None, noise_record: Recorded | None,
                         frontier_command: str) -> pd.DataFrame:
    """The book's own findings beside the claims: NSDE − control at matched clean accuracy (``matched``: the
    verdicts of ``report.frontier.matched_accuracy_verdicts``, None when no frontier is recorded; its primary
    row) and the 2 × 2 design's headline rows from chapter 4's record; a missing record says how to get it."""
    rows = []
    if matched is None:
        rows.append({"finding": "NSDE − control at matched clean accuracy", "verdict": NOT_RECORDED,
                     "this book (95 % interval)": f"{NOT_RECORDED}: run `{frontier_command}`", "MDE": math.nan,
                     "seeds": 0, "recorded in": "results/paper/frontier/"})
    else:
        primary = matched[matched["role"] != "exploratory"]
        for measure, row in (primary if not primary.empty else matched.iloc[:1]).iterrows():
            rows.append(_finding_row(f"NSDE − control at matched clean accuracy ({measure})", row.to_dict(),
                                     "results/paper/frontier/"))
    design = (noise_record or {}).get("result", {}).get("design_verdicts")
    if design is None:
        rows.append({"finding": "noise in training × noise at test time (2 × 2)", "verdict": NOT_RECORDED,
                     "this book (95 % interval)": f"{NOT_RECORDED}: run `{RECORD_COMMAND.format(chapter='ch04_noise_robustness')}`",
                     "MDE": math.nan, "seeds": 0, "recorded in": "results/paper/noise_robustness.json"})
    else:
        table = pd.DataFrame(design).set_index(["effect of", "Gaussian std"])
        for effect, level in DESIGN_HEADLINES:
            if (effect, level) in table.index:
                condition = "clean" if level == 0 else f"Gaussian std {level:g}"
                rows.append(_finding_row(f"{effect}, {condition}", table.loc[(effect, level)].to_dict(),
                                         "results/paper/noise_robustness.json"))
    return pd.DataFrame(rows).set_index("finding")
