"""The glance page's tables (claims, findings, setup beside the paper's) and ``relabel``, which judges a record's
verdicts again by today's rule (the glance page explains both)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..claims.c3_attacks import C3_ATTACKS_FAMILY, WORST
from ..report.claims import C2_LEVELS, C4_BUDGETS, C5_CONTROLS, SIZE_STUDY
from ..report.paper import PAPER_SETUP, PAPER_VALUES, get_claim
from ..report.stats import VERDICT_FIELDS, Verdict, holm_family, verdict_from_dict
from .profiles import Profile

#: How a missing ``paper`` result is recorded (``make chapter`` executes one chapter at a profile).
RECORD_COMMAND = "make chapter CHAPTER={chapter} PROFILE=paper"
#: How C3's seeds are recorded: one record per seed, each as soon as its three models are attacked.
ATTACK_COMMAND = "nsdebook precompute --profile paper --stage attack"
NOT_RECORDED = "not recorded at paper yet"
#: A key that selects the largest numeric key: C5's primary comparison is at its largest perturbation level.
LARGEST_LEVEL = "<largest level>"
#: The column that says, beside the label about the mean, whether the paper's single run fits this setup.
ONE_RUN = "paper's figure consistent with one run of this setup"

Recorded = Mapping[str, Any]


@dataclass(frozen=True)
class RecordPlan:
    """A recorded result and how its verdicts are judged: the keys to its claim's primary verdict, and the Holm family
    of the verdicts under each other top-level key; ``chapter`` (a stem) records it, into ``files`` (default: one file
    named after the result)."""

    result: str
    primary: tuple[str, ...]
    families: Mapping[str, str]
    claim: str = ""
    chapter: str = ""
    record_command: str = RECORD_COMMAND
    files: str = ""

    @property
    def result_files(self) -> str:
        """Where the result is recorded, relative to the repository."""
        return self.files or f"results/paper/{self.result}.json"

    @property
    def command(self) -> str:
        """The command that records this result at the ``paper`` profile."""
        return self.record_command.format(chapter=self.chapter)


RECORD_PLANS: dict[str, RecordPlan] = {plan.result: plan for plan in (
    RecordPlan("clean_accuracy", ("verdict",), {}, "C1", "ch03_training"),
    RecordPlan("noise_robustness", ("verdict",), {"by_level": C2_LEVELS}, "C2", "ch04_noise_robustness"),
    RecordPlan("adversarial", ("verdicts", WORST), {"verdicts": C3_ATTACKS_FAMILY}, "C3", "ch05_adversarial",
               ATTACK_COMMAND, "results/paper/adversarial/seed-*.json"),
    RecordPlan("abc", ("verdict",), {"by_budget": C4_BUDGETS, "verdict_ensemble": C4_BUDGETS}, "C4", "ch07_abc"),
    RecordPlan("attribution_stability", ("verdicts", LARGEST_LEVEL), {
        key: C5_CONTROLS for key in ("verdicts", "verdicts_literal", "controls", "controls_literal")}, "C5",
        "ch06_attributions"),
    RecordPlan("data_size", (), {"verdicts": SIZE_STUDY}),
)}
#: The results that hold a claim's primary verdict, in the claims' order.
SOURCES: tuple[RecordPlan, ...] = tuple(plan for plan in RECORD_PLANS.values() if plan.claim)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Mapping[str, Any]]]:
    """Every stored verdict under ``node`` as (its path, its fields); a table's row i has the path (..., i)."""
    if isinstance(node, Mapping) and "label" in node and "effect" in node:
        if not isinstance(node["label"], list):
            yield path, node
        elif isinstance(node["effect"], list):
            for i in range(len(node["label"])):
                yield (*path, i), {name: column[i] for name, column in node.items()}
    elif isinstance(node, Mapping):
        for key, child in node.items():
            yield from _slots(child, (*path, key))


def _resolve(result: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    """``keys`` with ``LARGEST_LEVEL`` replaced by the largest numeric key where it stands."""
    node, path = result, []
    for key in keys:
        if key == LARGEST_LEVEL and isinstance(node, Mapping) and node:
            key = max(node, key=float)
        path.append(key)
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return tuple(path)


def _test_identity(verdict: Verdict) -> tuple[Any, ...]:
    """What makes two stored verdicts the same test (a table may repeat one stored elsewhere)."""
    error = None if math.isnan(verdict.standard_error) else verdict.standard_error
    return verdict.reference, verdict.effect, error, verdict.n_pairs


def relabel(record: Mapping[str, Any], plan: RecordPlan) -> dict[str, Any]:
    """A copy of a record with its verdicts judged again by today's rule: the primary one and those outside the plan's
    families alone, each family's Holm-adjusted together (a test stored twice counted once)."""
    relabelled = copy.deepcopy(dict(record))
    result = relabelled["result"]
    slots = {path: verdict_from_dict(stored) for path, stored in _slots(result)}
    primary = slots.get(_resolve(result, plan.primary)) if plan.primary else None
    families: dict[str, dict[tuple[Any, ...], Verdict]] = {}
    for path, verdict in slots.items():
        family = plan.families.get(path[0])
        if family and verdict is not primary and (primary is None or _test_identity(verdict) != _test_identity(primary)):
            families.setdefault(family, {}).setdefault(_test_identity(verdict), verdict)
    judged = {test: verdict for name, members in families.items() for test, verdict in holm_family(members, name).items()}
    for path, verdict in slots.items():
        final = verdict if verdict is primary else judged.get(_test_identity(verdict), verdict)
        node = result
        for key in path[:-1]:
            node = node[key]
        if isinstance(path[-1], int):
            row = {"verdict": final.flags, "paper's figure in one run": final.one_run, **final.to_dict()}
            for name in ("verdict", "paper's figure in one run", *VERDICT_FIELDS):
                if name != "seed_effects":
                    node.setdefault(name, [None] * len(node["label"]))[path[-1]] = row[name]
        else:
            node[path[-1]] = final.to_dict()
    return relabelled


def _effect_text(verdict: Verdict) -> str:
    """The effect with its 95 % interval, or with the reason it has none."""
    if math.isnan(verdict.low) or math.isnan(verdict.high):
        return f"{verdict.effect:+.3g} (no interval: {verdict.note or 'see the chapter'})"
    return f"{verdict.effect:+.3g} [{verdict.low:+.3g}, {verdict.high:+.3g}]"


def claim_row(source: RecordPlan, recorded: Recorded | None, warnings: Sequence[str]) -> dict[str, Any]:
    """One row of the glance table: the claim, its recorded primary verdict and its provenance (and ``warnings``)."""
    claim = get_claim(source.claim)
    row: dict[str, Any] = {
        "claim": claim.id, "statement": claim.statement, "paper's figure": claim.paper_figure,
        "effect judged (positive = claimed)": claim.effect, "chapter": claim.chapter, "chapter file": source.chapter,
        "result file": source.result_files, "recorded": recorded is not None,
    }
    unjudged = {"underpowered": False, ONE_RUN: "–", "reference": f"{claim.reference.value:+.3g} "
                f"({claim.reference.kind})", "MDE": math.nan}
    if recorded is None:
        return row | unjudged | {"this book (95 % interval)": f"{NOT_RECORDED}: run `{source.command}`",
                                 "verdict": NOT_RECORDED, "seeds": 0, "commit": "–", "date": "–", "device": "–",
                                 "wall time (min)": math.nan, "status": NOT_RECORDED}
    prov = recorded["provenance"]
    row |= {"seeds": len(prov["seeds"]), "commit": prov["commit"], "date": prov["date"], "device": prov["device"],
            "wall time (min)": prov["wall_time_s"] / 60,
            "status": (" ".join(warnings) if warnings else "clean commit, current code")
            + (f"; wall time {prov['wall_time_note']}" if prov.get("wall_time_note") else "")}
    path = _resolve(recorded["result"], source.primary)
    stored = dict(_slots(recorded["result"])).get(path)
    if stored is None:
        reason = recorded["result"].get("note") or f"no verdict at {' / '.join(source.primary)}"
        return row | unjudged | {"this book (95 % interval)": f"recorded without a verdict: {reason}",
                                 "verdict": "no verdict"}
    verdict = verdict_from_dict(stored)
    level = f" at level {path[-1]}" if LARGEST_LEVEL in source.primary else ""
    return row | {"this book (95 % interval)": _effect_text(verdict) + level, "verdict": verdict.label,
                  "underpowered": verdict.underpowered, ONE_RUN: verdict.one_run,
                  "reference": f"{verdict.reference:+.3g} ({verdict.reference_kind})", "MDE": verdict.mde,
                  "seeds": verdict.n_seeds}


def claims_at_a_glance(load: Callable[[str], Recorded | None], check: Callable[[Mapping[str, Any], str], list[str]],
                       sources: Sequence[RecordPlan] = SOURCES) -> pd.DataFrame:
    """One row per claim from the records ``load`` returns by name; ``check`` gives the warnings of a provenance
    block of a named record."""
    rows = []
    for source in sources:
        recorded = load(source.result)
        rows.append(claim_row(source, recorded,
                              check(recorded["provenance"], source.result) if recorded is not None else []))
    return pd.DataFrame(rows).set_index("claim")


def glance_markdown(table: pd.DataFrame) -> str:
    """The verdict columns of the glance table as MyST Markdown, each chapter linked with the {doc} role."""
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


def provenance_table(table: pd.DataFrame) -> pd.DataFrame:
    """Where each row of the glance table comes from."""
    return table.loc[:, ["result file", "commit", "date", "device", "wall time (min)", "status"]]


def _count(n: float, noun: str) -> str:
    return f"{n:g} {noun}{'s' * (n != 1)}"


def _subset(size: int | None) -> str:
    return "the whole test split" if size is None else f"{size} test images"


def setup_differences(profile: Profile) -> pd.DataFrame:
    """The paper's setup beside this book's (read from ``profile``), one row per aspect."""
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


def _finding(finding: str, source: str, stored: Mapping[str, Any] | None = None, command: str = "") -> dict[str, Any]:
    """A row of the findings table: a verdict as ``verdicts_frame`` tabulates it, or how to record it."""
    if stored is None:
        return {"finding": finding, "this book (95 % interval)": f"{NOT_RECORDED}: run `{command}`",
                "verdict": NOT_RECORDED, "MDE": math.nan, "seeds": 0, "recorded in": source}
    verdict = verdict_from_dict(stored)
    return {"finding": finding, "this book (95 % interval)": _effect_text(verdict), "verdict": stored["verdict"],
            "MDE": verdict.mde, "seeds": verdict.n_seeds, "recorded in": source}


def findings_at_a_glance(matched: pd.DataFrame | None, noise_record: Recorded | None,
                         frontier_command: str) -> pd.DataFrame:
    """The book's own findings: NSDE − control at matched clean accuracy (``matched``: the frontier's verdicts) and the
    2 × 2 design's headline rows from chapter 4's record; a missing one says how to get it."""
    frontier, noise = "results/paper/frontier/", "results/paper/noise_robustness.json"
    if matched is None:
        rows = [_finding("NSDE − control at matched clean accuracy", frontier, command=frontier_command)]
    else:
        primary = matched[matched["role"] != "exploratory"]
        rows = [_finding(f"NSDE − control at matched clean accuracy ({measure})", frontier, row.to_dict())
                for measure, row in (primary if not primary.empty else matched.iloc[:1]).iterrows()]
    design = (noise_record or {}).get("result", {}).get("design_verdicts")
    if design is None:
        rows.append(_finding("noise in training × noise at test time (2 × 2)", noise,
                             command=RECORD_COMMAND.format(chapter="ch04_noise_robustness")))
    else:
        table = pd.DataFrame(design).set_index(["effect of", "Gaussian std"])
        rows += [_finding(f"{effect}, {'clean' if level == 0 else f'Gaussian std {level:g}'}", noise,
                          table.loc[(effect, level)].to_dict())
                 for effect, level in DESIGN_HEADLINES if (effect, level) in table.index]
    return pd.DataFrame(rows).set_index("finding")
