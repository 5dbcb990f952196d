"""Claim C3, adversarial robustness: chapter 5's attack protocol for randomised models, its checks and C3's verdict."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
import torchattacks
from pydantic import Field, model_validator
from torch import nn

from ..common import IncreasingPositive, Section, derive_seed, model_device, one_of, seeded_rng
from ..common.artifacts import ArtifactKind
from ..evaluation.sweeps import SweepTarget, stratified_subset
from ..models.inference import EvalMode, NoiseControl, eval_modes, headline_mode, predict
from ..models.nsde import SDEConfig, eval_noise
from ..report.paper import get_claim
from ..report.stats import Verdict, effect_verdict, primary_and_family, verdicts_frame

#: Chapter 5's attack protocol table; bump when an attack or its scoring changes.
ROBUSTNESS_SWEEP = ArtifactKind("robustness_sweep", 3, "table.json")
#: Chapter 5's convergence study table; bump when it changes.
CONVERGENCE_STUDY = ArtifactKind("convergence_study", 3, "table.json")

Norm = Literal["L2", "Linf"]
#: Relative slack of the norm-bound check, for float32 rounding in the attack's projection.
NORM_TOLERANCE = 1e-4
TRANSFER, SQUARE, RANDOM, WORST = "transfer from noise off", "Square", "random noise", "worst case"
#: The cascade's last attack: APGD-CE with AutoAttack ``rand``'s budget, on the images every other attack left.
STRONG = "APGD-CE, AutoAttack budget"
#: ConvNeXt has "collapsed" at an ε where its worst-case robust accuracy is at most this (C3's test point).
C3_COLLAPSE = 0.05
#: The attacks C3 is judged against: the worst case (primary), then the cascade after each of its first attacks.
C3_ATTACKS, C3_ATTACKS_FAMILY = (WORST, "APGD-CE", "APGD-DLR", TRANSFER), "C3 attacks"


class AttackConfig(Section):
    """The attacks of chapter 5: the ε grid, where the full protocol runs, its budgets and the subsets."""

    epsilons: dict[Norm, Annotated[IncreasingPositive, Field(min_length=1)]] = Field(
        min_length=1, description="ε grid of the cheap sweep per norm")
    headline_epsilons: dict[Norm, tuple[float, ...]] = Field(
        description="ε values (from the grid) at which the full protocol runs")
    sweep_steps: int = Field(default=10, ge=1, description="APGD-CE iterations of the cheap sweep")
    steps: int = Field(ge=1, description="APGD iterations of the full protocol")
    n_restarts: int = Field(default=1, ge=1, description="APGD random restarts")
    eot_iter: int = Field(ge=1, description="noise draws averaged in every forward pass of an attack on a stochastic mode")
    score_draws: int = Field(default=4, ge=1, description="fresh noise draws a stochastic model is scored on")
    strong_steps: int = Field(default=100, ge=1, description="APGD-CE steps of the cascade's last attack (AutoAttack rand)")
    strong_eot: int = Field(default=20, ge=1, description="its EOT draws on a stochastic mode (AutoAttack rand)")
    square_queries: int = Field(default=1000, ge=1, description="queries of the gradient-free Square attack")
    square_subset: int = Field(default=32, ge=1, description="images attacked by Square (stratified)")
    convergence_steps: tuple[int, ...] = Field(default=(10, 50, 100), description="steps of the convergence study")
    convergence_eot: tuple[int, ...] = Field(default=(1, 5, 20), description="EOT draws of the convergence study")
    convergence_subset: int = Field(default=64, ge=1, description="images of the convergence study (stratified)")
    subset_size: int | None = Field(default=None, ge=1, description="stratified test subset size; None: the whole test set")
    subset_seed: int = Field(default=0, ge=0, description="seed of the subsets (each model seed draws its own)")
    batch_size: int = Field(default=128, ge=1, description="images per attack batch")

    @property
    def headline_norms(self) -> tuple[Norm, ...]:
        """The norms in which the full protocol runs and C3 is sought: those with a headline ε."""
        return tuple(norm for norm, values in self.headline_epsilons.items() if values)

    @model_validator(mode="after")
    def _valid_grid(self) -> AttackConfig:
        if self.epsilons.get("Linf", (0.0,))[-1] > 1:
            raise ValueError(f"Linf ε must be <= 1 (inputs lie in [0, 1]), got {self.epsilons['Linf'][-1]}")
        for norm, values in self.headline_epsilons.items():
            missing = [eps for eps in values if eps not in self.epsilons.get(norm, ())]
            if missing:
                raise ValueError(f"headline {norm} ε {missing} must be part of the {norm} grid {self.epsilons.get(norm)}")
        return self


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-sample ``norm`` of ``x_adv − x`` (computed in float64)."""
    delta = (x_adv.double() - x.double()).flatten(1)
    return delta.norm(dim=1) if norm == "L2" else delta.abs().amax(dim=1)


def random_direction(shape: torch.Size | tuple[int, ...], norm: Norm, generator: torch.Generator) -> torch.Tensor:
    """Random unit directions: Gaussian with unit L2 norm, or random signs (a vertex of the L∞ ball)."""
    if norm == "L2":
        direction = torch.randn(tuple(shape), generator=generator)
        return direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (len(shape) - 1))
    return torch.randint(0, 2, tuple(shape), generator=generator).float() * 2 - 1


def random_perturbation(x: torch.Tensor, eps: float, norm: Norm, direction: torch.Tensor) -> torch.Tensor:
    """``x`` moved along ``direction`` until, clipped to [0, 1], the change has norm ``eps`` (L2: bisection)."""
    if norm == "Linf":
        return (x + eps * direction).clamp(0.0, 1.0)
    shape = (-1, *[1] * (x.dim() - 1))

    def moved(scale: torch.Tensor) -> torch.Tensor:
        return (x + scale.view(shape) * direction).clamp(0.0, 1.0)

    low = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    high = torch.full((len(x),), eps, dtype=x.dtype, device=x.device)
    for _ in range(30):
        short = perturbation_norms(x, moved(high), "L2") < eps
        high = torch.where(short, 2 * high, high)
    for _ in range(50):
        middle = (low + high) / 2
        short = perturbation_norms(x, moved(middle), "L2") < eps
        low, high = torch.where(short, middle, low), torch.where(short, high, middle)
    return moved(high)


@contextmanager
def attacked_as(model: nn.Module, mode: EvalMode, eot_iter: int, noise_control: NoiseControl | None = None) -> Iterator[None]:
    """The classifier an attack sees: a stochastic mode averaged over ``eot_iter`` noise draws (EOT)."""
    control = noise_control or eval_noise
    with control(model, "ensemble", eot_iter) if mode.stochastic else control(model, "off", None):
        yield


def _batched(attack: torchattacks.Attack, x: torch.Tensor, y: torch.Tensor, seed: int, batch_size: int,
             best_loss: bool) -> torch.Tensor:
    """Run a torchattacks attack in batches on a forked, seeded generator; the images come back on the CPU."""
    if len(x) == 0:
        return x.detach().cpu().clone()
    device = model_device(attack.model)
    attack.model.eval()
    out = []
    with seeded_rng(seed, device):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            xb, yb = xb.to(device), yb.to(device)
            adversarial = attack.perturb(xb, yb, best_loss=True)[1] if best_loss else attack(xb, yb)
            out.append(adversarial.detach().cpu())
    return torch.cat(out)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: Norm, eps: float, loss: Literal["ce", "dlr"],
         steps: int, seed: int, n_restarts: int = 1, batch_size: int = 128) -> torch.Tensor:
    """APGD on ``model`` as it is: for every image, the highest-loss point found within ``eps``."""
    attack = torchattacks.APGD(model, norm=one_of(norm, Norm, "norm"), eps=eps, steps=steps, n_restarts=n_restarts,
                               seed=seed, loss=loss)
    return _batched(attack, x, y, seed, batch_size, best_loss=True)


def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: Norm, eps: float, n_queries: int, seed: int,
           batch_size: int = 128) -> torch.Tensor:
    """The gradient-free Square attack within ``eps``: it needs no gradient, so noise cannot mask one."""
    attack = torchattacks.Square(model, norm=one_of(norm, Norm, "norm"), eps=eps, n_queries=n_queries, seed=seed)
    return _batched(attack, x, y, seed, batch_size, best_loss=False)


def expected_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: EvalMode, *, draws: int, seed: int,
                     batch_size: int, noise_control: NoiseControl | None = None) -> torch.Tensor:
    """Per image, the share of ``draws`` fresh noise draws (one if deterministic) that ``mode`` gets right."""
    n = draws if mode.stochastic else 1
    hits = torch.zeros(len(y))
    for draw in range(n):
        preds = predict(model, x, mode, batch_size=batch_size, seed=derive_seed(seed, "score", draw),
                        noise_control=noise_control)
        hits += (preds == y.cpu()).float()
    return hits / n


def _rows(correct: torch.Tensor, examples: torch.Tensor, delta: torch.Tensor | float, *, norm: Norm, eps: float,
          mode: EvalMode, attack: str, protocol: str, draws: int) -> pd.DataFrame:
    return pd.DataFrame({"norm": norm, "eps": eps, "mode": mode.name, "attack": attack, "protocol": protocol,
                         "example": examples.numpy(), "correct": correct.numpy(),
                         "delta_norm": delta.numpy() if isinstance(delta, torch.Tensor) else delta,
                         "draws": draws if mode.stochastic else 1})


def _score(target: SweepTarget, cfg: AttackConfig, x: torch.Tensor, y: torch.Tensor, mode: EvalMode) -> torch.Tensor:
    return expected_correct(target.model, x, y, mode, draws=cfg.score_draws, seed=target.seed,
                            batch_size=cfg.batch_size, noise_control=target.noise_control)


def cascade_attacks(stochastic: bool) -> tuple[str, ...]:
    """The full protocol's attacks in the order they run, each only on the images every earlier one left correct."""
    return ("APGD-CE", "APGD-DLR", *((TRANSFER,) if stochastic else ()), SQUARE, STRONG)


def robustness_sweep(target: SweepTarget, cfg: AttackConfig) -> pd.DataFrame:
    """Per-image outcomes of the target's model under the sweep and, at the headline ε, the full protocol on its
    reported mode ``target.modes[0]``; ``correct`` is the share of fresh noise draws classified correctly."""
    model, x, y, headline = target.model, target.x, target.y.cpu(), target.modes[0]
    examples = torch.arange(len(y))
    square_part = torch.zeros(len(y), dtype=torch.bool)
    square_part[stratified_subset(y, cfg.square_subset, cfg.subset_seed)] = True
    clean = {mode: _score(target, cfg, x, y, mode) for mode in target.modes}
    tables = [_rows(clean[mode], examples, 0.0, norm=norm, eps=0.0, mode=mode, attack="clean", protocol="sweep",
                    draws=cfg.score_draws) for norm in cfg.epsilons for mode in target.modes]
    for norm, grid in cfg.epsilons.items():
        row_kw = {"norm": norm, "mode": headline, "protocol": "sweep", "draws": cfg.score_draws}
        direction = random_direction(x.shape, norm, torch.Generator().manual_seed(target.seed))
        swept: list[tuple[torch.Tensor, torch.Tensor]] = []
        for eps in grid:
            noisy = random_perturbation(x, eps, norm, direction)
            tables.append(_rows(_score(target, cfg, noisy, y, headline), examples, perturbation_norms(x, noisy, norm),
                                eps=eps, attack=RANDOM, **row_kw))
            with attacked_as(model, headline, cfg.eot_iter, target.noise_control):
                adversarial = apgd(model, x, y, norm=norm, eps=eps, loss="ce", steps=cfg.sweep_steps, seed=target.seed,
                                   n_restarts=cfg.n_restarts, batch_size=cfg.batch_size)
            score, delta = _score(target, cfg, adversarial, y, headline), perturbation_norms(x, adversarial, norm)
            swept.append((score, delta))
            tables.append(_rows(score, examples, delta, eps=eps, attack="APGD-CE", **row_kw))
            if eps in cfg.headline_epsilons.get(norm, ()):
                tables += _full_protocol(target, cfg, norm, eps, clean, swept, square_part)
    return pd.concat(tables, ignore_index=True)


def _full_protocol(target: SweepTarget, cfg: AttackConfig, norm: Norm, eps: float, clean: dict[EvalMode, torch.Tensor],
                   swept: list[tuple[torch.Tensor, torch.Tensor]], square_part: torch.Tensor) -> list[pd.DataFrame]:
    """The AutoAttack-style cascade at one headline ε on the reported mode, each attack on the images still correct;
    the other modes are rescored on the examples of their attack surface."""
    model, x, y, modes, headline = target.model, target.x, target.y.cpu(), target.modes, target.modes[0]
    everything = torch.arange(len(y))
    row_kw = {"norm": norm, "eps": eps, "draws": cfg.score_draws}
    off = next((mode for mode in modes if not mode.stochastic), None) if headline.stochastic else None
    worst, worst_delta = clean[headline].clone(), torch.zeros(len(y), dtype=torch.float64)

    def lower(part: torch.Tensor, score: torch.Tensor, delta: torch.Tensor) -> None:
        """Keep, image by image, the smaller of the worst score so far and ``score``, with its perturbation."""
        smaller = score < worst[part]
        worst[part] = torch.minimum(worst[part], score)
        worst_delta[part] = torch.where(smaller, delta, worst_delta[part])

    for score, delta in swept:  # the sweep's examples at this and smaller ε lie in this ball too
        lower(everything, score, delta)
    tables = []
    for name in cascade_attacks(headline.stochastic):
        part = torch.nonzero(worst > 0).flatten()
        if name == "APGD-CE" and headline.stochastic:  # the stochastic modes share this EOT surface: attack what
            shared = torch.stack([clean[mode] > 0 for mode in modes if mode.stochastic]).any(0)  # any gets right
            part = torch.nonzero(shared | (worst > 0)).flatten()
        if name == TRANSFER and off is not None:  # the noise-off mode is scored on the transfer attack's examples
            part = torch.nonzero((worst > 0) | (clean[off] > 0)).flatten()
        if name == SQUARE:
            part = part[square_part[part]]
        surface = EvalMode("noise off", "off") if name == TRANSFER else headline
        with attacked_as(model, surface, cfg.strong_eot if name == STRONG else cfg.eot_iter, target.noise_control):
            if name == SQUARE:
                adversarial = square(model, x[part], y[part], norm=norm, eps=eps, n_queries=cfg.square_queries,
                                     seed=target.seed, batch_size=cfg.batch_size)
            else:
                adversarial = apgd(model, x[part], y[part], norm=norm, eps=eps, loss="dlr" if name == "APGD-DLR" else "ce",
                                   steps=cfg.strong_steps if name == STRONG else cfg.steps, seed=target.seed,
                                   n_restarts=cfg.n_restarts, batch_size=cfg.batch_size)
        delta = perturbation_norms(x[part], adversarial, norm)
        for mode in modes[1:]:
            if (name == "APGD-CE" and mode.stochastic) or (name == TRANSFER and mode == off):
                score, mode_delta = torch.zeros(len(y)), torch.zeros(len(y), dtype=torch.float64)
                score[part] = torch.minimum(clean[mode][part], _score(target, cfg, adversarial, y[part], mode))
                mode_delta[part] = delta
                rows = _rows(score, everything, mode_delta, mode=mode, attack="APGD-CE", protocol="full", **row_kw)
                tables += [rows, rows.assign(attack=WORST)]
        alive = worst[part] > 0
        part, adversarial, delta = part[alive], adversarial[alive], delta[alive]
        score = _score(target, cfg, adversarial, y[part], headline)
        tables.append(_rows(score, part, delta, mode=headline, attack=name, protocol="full", **row_kw))
        lower(part, score, delta)
        tables.append(_rows(worst, everything, worst_delta, mode=headline, attack=name, protocol="cascade", **row_kw))
    tables.append(tables[-1].assign(attack=WORST, protocol="full"))
    return tables


def convergence_study(target: SweepTarget, cfg: AttackConfig) -> pd.DataFrame:
    """APGD-CE's robust accuracy at the first headline (L2) ε on a stratified subset, against steps and EOT draws."""
    norm = "L2" if cfg.headline_epsilons.get("L2") else next(n for n, values in cfg.headline_epsilons.items() if values)
    eps, mode, model = cfg.headline_epsilons[norm][0], target.modes[0], target.model
    part = stratified_subset(target.y, cfg.convergence_subset, cfg.subset_seed)
    x, y = target.x[part], target.y[part].cpu()
    settings = [(steps, cfg.eot_iter, "steps") for steps in cfg.convergence_steps]
    settings += [(cfg.steps, eot, "EOT draws") for eot in (cfg.convergence_eot if mode.stochastic else ())]
    rows = []
    for steps, eot, varied in settings:
        with attacked_as(model, mode, eot, target.noise_control):
            adversarial = apgd(model, x, y, norm=norm, eps=eps, loss="ce", steps=steps, seed=target.seed,
                               batch_size=cfg.batch_size)
        correct = _score(target, cfg, adversarial, y, mode)
        draws = pd.Series(cfg.score_draws if mode.stochastic else 1, index=range(len(y)))
        variance = float(share_variance(pd.Series(correct.numpy()), draws).sum())
        rows.append({"steps": steps, "eot": eot, "varied": varied, "accuracy": float(correct.mean()),
                     "mc_se": variance ** 0.5 / max(len(y), 1),
                     "headline": steps == cfg.steps and eot == cfg.eot_iter, "n_samples": len(y)})
    return pd.DataFrame(rows).assign(norm=norm, eps=eps, mode=mode.name)


def headline_first(kind: str, sde: SDEConfig) -> tuple[EvalMode, ...]:
    """A model's evaluation modes with the mode it is reported in first: the order ``robustness_sweep`` takes."""
    headline = headline_mode(kind, sde)
    return headline, *(mode for mode in eval_modes(kind, sde) if mode != headline)


def share_variance(share: pd.Series, draws: pd.Series) -> pd.Series:
    """Per image, the unbiased variance of a share of ``draws`` Bernoulli noise draws (0 for a single draw)."""
    return (share * (1 - share) / (draws - 1).clip(lower=1)).where(draws > 1, 0.0)


def _delta_norms(outcomes: pd.DataFrame) -> pd.Series:
    """Each row's perturbation norm, NaN throughout for recorded outcomes (they keep none)."""
    return outcomes["delta_norm"] if "delta_norm" in outcomes.columns else pd.Series(np.nan, index=outcomes.index)


def accuracy_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Robust accuracy per (model, seed, norm, ε, mode, attack, protocol), with ``n_samples``, ``max_delta_norm``
    (NaN for recorded outcomes, which keep only whether each image was scored correctly) and ``mc_se``, the
    Monte-Carlo error of scoring on finitely many noise draws."""
    keys = [k for k in ("model", "seed", "norm", "eps", "mode", "attack", "protocol") if k in outcomes.columns]
    draws = outcomes["draws"] if "draws" in outcomes.columns else pd.Series(1, index=outcomes.index)
    norms = _delta_norms(outcomes)
    table = outcomes.assign(_variance=share_variance(outcomes["correct"], draws), _norm=norms).groupby(
        keys, sort=False).agg(accuracy=("correct", "mean"), n_samples=("correct", "size"),
                              max_delta_norm=("_norm", "max"), _variance=("_variance", "sum")).reset_index()
    table["mc_se"] = np.sqrt(table.pop("_variance")) / table["n_samples"]
    return table


class SanityCheckFailed(AssertionError):
    """An attack failed a sanity check: its robust accuracies cannot be trusted as they are."""


def sweep_curves(accuracy: pd.DataFrame, norm: str = "L2") -> dict[str, dict[float, float]]:
    """Each model's APGD-CE robust accuracy per ε of the cheap sweep in ``norm``, mean over seeds."""
    sweep = accuracy[(accuracy["attack"] == "APGD-CE") & (accuracy["protocol"] == "sweep") & (accuracy["norm"] == norm)]
    means = sweep.groupby(["model", "eps"], sort=False)["accuracy"].mean()
    return {str(model): {float(eps): float(value) for (_, eps), value in rows.items()}
            for model, rows in means.groupby(level="model", sort=False)}


def worst_case_accuracy(accuracy: pd.DataFrame, model: str, eps: float, norm: str = "L2") -> float:
    """``model``'s worst-case robust accuracy of the full protocol at ``eps``, mean over seeds (NaN if not run)."""
    rows = accuracy[(accuracy["model"] == model) & (accuracy["protocol"] == "full") & (accuracy["attack"] == WORST)
                    & (accuracy["norm"] == norm) & (accuracy["eps"] == eps)]
    return float(rows["accuracy"].mean())


def monotonicity_check(accuracy: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """Per APGD-CE curve of the sweep, the largest rise of accuracy with ε and whether all are within ``z`` SEs."""
    keys = [k for k in ("model", "seed", "norm", "mode") if k in accuracy.columns]
    sweep = accuracy[accuracy["attack"].isin(["clean", "APGD-CE"]) & (accuracy["protocol"] == "sweep")]
    rows = []
    for key, curve in sweep.groupby(keys, sort=False):
        curve = curve.sort_values("eps")
        acc, n = curve["accuracy"].to_numpy(), curve["n_samples"].to_numpy()
        rise = np.diff(acc)
        tolerance = z * np.maximum(np.sqrt(acc[:-1] * (1 - acc[:-1]) / n[:-1] + acc[1:] * (1 - acc[1:]) / n[1:]), 1 / n[1:])
        rows.append({**dict(zip(keys, key)), "largest rise": float(rise.max()) if len(rise) else 0.0,
                     "ok": bool((rise <= tolerance).all())})
    return pd.DataFrame(rows)


def sanity_checks(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The checks of ``robustness_sweep`` rows with ``model`` and ``seed`` columns, per model and norm (``within
    bound`` is missing for recorded outcomes, which keep no perturbation norms)."""
    attacked = outcomes[outcomes["eps"] > 0]
    norms = _delta_norms(attacked)
    within = (norms <= attacked["eps"] * (1 + NORM_TOLERANCE)).where(norms.notna())  # up to float32 rounding
    accuracy = accuracy_table(outcomes)
    monotone = monotonicity_check(accuracy)
    sweep = accuracy[accuracy["protocol"] == "sweep"].pivot_table(index=["model", "norm", "seed", "eps"],
                                                                  columns="attack", values="accuracy")
    attacked_sweep = sweep[sweep.index.get_level_values("eps") > 0]
    flat = sweep.reset_index()
    largest = flat[flat["eps"] == flat.groupby("norm")["eps"].transform("max")].set_index(["model", "norm"])
    return pd.DataFrame({
        "within bound": within.groupby([attacked["model"], attacked["norm"]]).agg(
            lambda ok: bool(ok.all()) if ok.notna().all() else np.nan),
        "largest rise with ε": monotone.groupby(["model", "norm"])["largest rise"].max(),
        "rises within noise": monotone.groupby(["model", "norm"])["ok"].all(),
        "attack ≤ random noise": (attacked_sweep["APGD-CE"] <= attacked_sweep[RANDOM] + 1e-9).groupby(["model", "norm"]).mean(),
        "mean attack − random": (attacked_sweep["APGD-CE"] - attacked_sweep[RANDOM]).groupby(["model", "norm"]).max(),
        "accuracy at largest ε": largest["APGD-CE"].groupby(level=["model", "norm"]).mean(),
    })


def check_attacks(outcomes: pd.DataFrame, baseline: str, threshold: float = C3_COLLAPSE,
                  collapse_norms: Sequence[Norm] | None = None) -> pd.DataFrame:
    """``sanity_checks``, raising SanityCheckFailed if one fails, if random noise beats the attack on average at
    some ε, or if ``baseline`` keeps more than ``threshold`` accuracy at the largest ε of a norm in
    ``collapse_norms`` (default: every norm; C3 needs it only where its ε is sought, ``headline_norms``)."""
    checks = sanity_checks(outcomes)
    if not checks["within bound"].all():
        raise SanityCheckFailed(f"adversarial examples exceed their norm bound: {list(checks.index[~checks['within bound']])}")
    if not checks["rises within noise"].all():
        raise SanityCheckFailed(f"robust accuracy rose with ε beyond sampling noise: {list(checks.index[~checks['rises within noise']])}")
    accuracy = accuracy_table(outcomes)
    mean = accuracy[accuracy["protocol"] == "sweep"].groupby(["model", "norm", "eps", "attack"])["accuracy"].mean().unstack()
    beaten = mean[(mean.index.get_level_values("eps") > 0) & (mean["APGD-CE"] > mean[RANDOM] + 1e-9)]
    if len(beaten):
        raise SanityCheckFailed(f"random noise beat the attack on average at {list(beaten.index)}")
    left = uncollapsed_norms(checks, baseline, threshold)
    left = left if collapse_norms is None else left[left.index.isin(collapse_norms)]
    if len(left):
        raise SanityCheckFailed(
            f"{baseline} keeps {left.max():.1%} accuracy at the largest ε (more than {threshold:.0%}): extend the sweep"
        )
    return checks


def uncollapsed_norms(checks: pd.DataFrame, baseline: str, threshold: float = C3_COLLAPSE) -> pd.Series:
    """The accuracy ``baseline`` keeps at the largest ε of each norm whose sweep (``sanity_checks``) ends above
    ``threshold``: the curves that stop before the collapse."""
    left = checks.xs(baseline, level="model")["accuracy at largest ε"]
    return left[left > threshold]


def masking_gap(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per full-protocol curve point: Square's accuracy minus the gradient attacks' on its images (< 0: masking),
    and how many images Square ran on (those the gradient attacks left correct)."""
    full = outcomes[outcomes["protocol"] == "full"]
    square_rows = full[full["attack"] == SQUARE]
    keys = [k for k in ("model", "seed", "norm", "eps", "mode") if k in full.columns]
    gradient = full[full["attack"].isin(["APGD-CE", "APGD-DLR", TRANSFER])]
    gradient = gradient.merge(square_rows[[*keys, "example"]], on=[*keys, "example"])
    worst = gradient.groupby([*keys, "example"])["correct"].min().groupby(keys).mean().rename("gradient attacks")
    square_acc = square_rows.groupby(keys)["correct"].mean().rename("Square")
    images = square_rows.groupby(keys)["example"].nunique().rename("images")
    table = pd.concat([square_acc, worst, images], axis=1).reset_index()
    table["Square − gradient"] = table["Square"] - table["gradient attacks"]
    return table


def masking_gap_range(gap: pd.DataFrame) -> str:
    """The range of ``masking_gap`` over its curve points in words, with the images Square ran on per point: a gap
    on a handful of images is weak evidence, and one on none is not measured at all."""
    if gap.empty:
        return "is not measured (the gradient attacks left no image for Square)"
    points = 100 * gap["Square − gradient"]
    return (f"ranges from {points.min():.1f} to {points.max():.1f} points, with Square run on "
            f"{int(gap['images'].min())} to {int(gap['images'].max())} images per model, seed and budget")


def attack_plateau(study: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """Per model and varied budget of a convergence study: the change of accuracy between the two largest budgets,
    its Monte-Carlo error, and whether it is flat (within ``z`` errors, or one image)."""
    keys = [k for k in ("model", "varied") if k in study.columns]
    rows = []
    for key, line in study.groupby(keys, sort=False):
        budget = "steps" if line["varied"].iloc[0] == "steps" else "eot"
        line = line.sort_values(budget)
        if len(line) < 2:
            continue
        last, before = line.iloc[-1], line.iloc[-2]
        error = float(np.hypot(last["mc_se"], before["mc_se"]))
        change = float(last["accuracy"] - before["accuracy"])
        rows.append({**dict(zip(keys, key)), "budgets": f"{before[budget]:g} → {last[budget]:g}", "change": change,
                     "mc error": error, "flat": abs(change) <= max(z * error, 1 / last["n_samples"])})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class AdversarialClaim:
    """C3 at the L2 budget where the baseline collapses: the verdict against each attack and what they mean."""

    eps_star: float | None
    verdicts: dict[str, Verdict]
    note: str

    @property
    def verdict(self) -> Verdict | None:
        """The primary verdict, against the worst case over every attack (None without a test point)."""
        return self.verdicts.get(WORST)

    @property
    def flags(self) -> str:
        """The primary label with its flags; "inconclusive" without a test point."""
        return self.verdict.flags if self.verdict else "inconclusive"

    @property
    def table(self) -> pd.DataFrame:
        """The verdicts as a table."""
        return verdicts_frame(self.verdicts, "NSDE attacked with")


def adversarial_claim(outcomes: pd.DataFrame, nsde_mode: str, baseline_mode: str, threshold: float = C3_COLLAPSE
                      ) -> AdversarialClaim:
    """C3 at the smallest headline L2 ε where the baseline's worst case is at most ``threshold``: the NSDE's worst
    case against it (primary), and the cascade after each earlier attack (family C3 attacks)."""
    l2 = outcomes[outcomes["norm"] == "L2"]
    full, stages = l2[l2["protocol"] == "full"], l2[l2["protocol"] == "cascade"]
    baseline = full[(full["mode"] == baseline_mode) & (full["attack"] == WORST)]
    curve = baseline.groupby("eps")["correct"].mean()
    collapsed = curve[curve <= threshold]
    if collapsed.empty:
        note = (f"The baseline kept more than {threshold:.0%} robust accuracy at every headline L2 ε, so the claim has "
                "no test point here: add a larger headline ε.")
        return AdversarialClaim(None, {}, note)
    eps_star = float(collapsed.index.min())
    nsde = pd.concat([full[(full["attack"] == WORST)], stages])
    nsde = nsde[(nsde["mode"] == nsde_mode) & (nsde["eps"] == eps_star)]
    at_star = baseline[baseline["eps"] == eps_star]
    verdicts = {
        attack: effect_verdict(pd.concat([at_star, nsde[nsde["attack"] == attack]]), nsde_mode, baseline_mode,
                               get_claim("C3").reference, value="correct", model="mode", unit="example",
                               comparison=f"{nsde_mode} ({attack}) − {baseline_mode}")
        for attack in C3_ATTACKS if (nsde["attack"] == attack).any()
    }
    verdicts = primary_and_family(verdicts, C3_ATTACKS_FAMILY, WORST)
    weakest = {a: v for a, v in verdicts.items() if a != WORST and v.significant}
    if verdicts[WORST].significant:
        note = "The NSDE's advantage survives every attack, the worst case per image included."
    elif weakest:
        note = (f"The NSDE looks more robust after {', '.join(weakest)} in the cascade, but not against the worst case "
                "over all attacks: that advantage is the earlier attacks' weakness, not the model's robustness.")
    else:
        note = "No attack shows an advantage for the NSDE that the seeds can resolve at this ε."
    return AdversarialClaim(eps_star, verdicts, note)
