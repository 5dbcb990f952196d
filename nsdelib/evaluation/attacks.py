"""Adversarial robustness (claim C3): the attack protocol for randomised models, with torchattacks.

Each model is attacked in the mode it is reported in (a stochastic mode through EOT), by APGD-CE,
APGD-DLR, a transfer attack and Square, worst case per image, scored on fresh noise draws; the
sanity checks can fail. Chapter 5 explains the protocol and the checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

import numpy as np
import pandas as pd
import torch
import torchattacks
from pydantic import Field, field_validator, model_validator
from torch import nn

from ..common.artifacts import ArtifactKind
from ..common.config import IncreasingPositive, Section, one_of
from ..common.devices import model_device
from ..common.seeding import derive_seed, seeded_rng
from ..models.inference import EvalMode, NoiseControl, default_noise_control, eval_modes, headline_mode, predict
from ..models.nsde import SDEConfig
from .sweeps import SweepTarget, stratified_subset

#: Chapter 5's attack protocol table; bump when an attack or its scoring changes.
ROBUSTNESS_SWEEP = ArtifactKind("robustness_sweep", 3, "table.json")
#: Chapter 5's convergence study table; bump when it changes.
CONVERGENCE_STUDY = ArtifactKind("convergence_study", 3, "table.json")

Norm = Literal["L2", "Linf"]
NORMS: tuple[Norm, ...] = get_args(Norm)
#: Relative slack of the norm-bound check, for float32 rounding in the attack's projection.
NORM_TOLERANCE = 1e-4
GRADIENT_ATTACKS = ("APGD-CE", "APGD-DLR")
TRANSFER = "transfer from noise off"
SQUARE = "Square"
RANDOM = "random noise"
WORST = "worst case"
#: The last attack of the cascade: APGD-CE with AutoAttack ``rand``'s budget, on the images every other attack left.
STRONG = "APGD-CE, AutoAttack budget"


class AttackConfig(Section):
    """The attacks of chapter 5: the ε grid, where the full protocol runs, its budgets and the subsets."""

    epsilons: dict[Norm, Annotated[IncreasingPositive, Field(min_length=1)]] = Field(
        description="ε grid of the cheap sweep per norm")
    headline_epsilons: dict[Norm, tuple[float, ...]] = Field(
        description="ε values (from the grid) at which the full protocol runs"
    )
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

    @field_validator("epsilons")
    @classmethod
    def _valid_epsilons(cls, value: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        if not value:
            raise ValueError(f"no norm to attack in; give ε values for at least one of {', '.join(NORMS)}")
        for norm, epsilons in value.items():
            if norm == "Linf" and epsilons[-1] > 1:
                raise ValueError(f"Linf ε must be <= 1 (inputs lie in [0, 1]), got {epsilons[-1]}")
        return value

    @model_validator(mode="after")
    def _headline_in_grid(self) -> AttackConfig:
        for norm, values in self.headline_epsilons.items():
            missing = [eps for eps in values if eps not in self.epsilons.get(norm, ())]
            if missing:
                raise ValueError(f"headline {norm} ε {missing} must be part of the {norm} grid {self.epsilons.get(norm)}")
        return self


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-sample ``norm`` of ``x_adv − x`` (computed in float64)."""
    delta = (x_adv.double() - x.double()).flatten(1)
    return delta.norm(dim=1) if one_of(norm, Norm, "norm") == "L2" else delta.abs().amax(dim=1)


def within_bound(norms: torch.Tensor, eps: float) -> bool:
    """Whether every norm is at most ``eps`` up to float32 rounding (``NORM_TOLERANCE``)."""
    return bool((norms <= eps * (1 + NORM_TOLERANCE)).all())


def random_direction(shape: torch.Size | tuple[int, ...], norm: Norm, generator: torch.Generator) -> torch.Tensor:
    """Random unit directions: Gaussian with unit L2 norm, or random signs (a vertex of the L∞ ball)."""
    if one_of(norm, Norm, "norm") == "L2":
        direction = torch.randn(tuple(shape), generator=generator)
        return direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (len(shape) - 1))
    return torch.randint(0, 2, tuple(shape), generator=generator).float() * 2 - 1


def random_perturbation(x: torch.Tensor, eps: float, norm: Norm, direction: torch.Tensor) -> torch.Tensor:
    """``x`` moved along ``direction`` so that, after clipping to [0, 1], the change has norm ``eps``.

    For L∞ that is ``x + eps · signs``, clipped. For L2 clipping would shrink the step, so the
    scale is found per sample by bisection; where [0, 1] does not leave room for ``eps`` the
    change is as large as clipping allows.
    """
    if one_of(norm, Norm, "norm") == "Linf":
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
    """The classifier an attack sees: a deterministic mode as it is; a stochastic mode as the average of
    its softmax over ``eot_iter`` noise draws (the expected softmax, estimated with EOT)."""
    control = noise_control or default_noise_control()
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
    return torch.cat(out) if out else x.detach().cpu().clone()


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: Norm, eps: float, loss: Literal["ce", "dlr"],
         steps: int, seed: int, n_restarts: int = 1, batch_size: int = 128) -> torch.Tensor:
    """APGD (torchattacks) on ``model`` as it is: for every image, the highest-loss point found within ``eps``."""
    attack = torchattacks.APGD(model, norm=one_of(norm, Norm, "norm"), eps=eps, steps=steps, n_restarts=n_restarts,
                               seed=seed, loss=loss)
    return _batched(attack, x, y, seed, batch_size, best_loss=True)


def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: Norm, eps: float, n_queries: int, seed: int,
           batch_size: int = 128) -> torch.Tensor:
    """The gradient-free Square attack (torchattacks) within ``eps``: it needs no gradient, so noise cannot mask one."""
    attack = torchattacks.Square(model, norm=one_of(norm, Norm, "norm"), eps=eps, n_queries=n_queries, seed=seed)
    return _batched(attack, x, y, seed, batch_size, best_loss=False)


def expected_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: EvalMode, *, draws: int, seed: int,
                     batch_size: int, noise_control: NoiseControl | None = None) -> torch.Tensor:
    """Per image, the share of ``draws`` independent noise draws on which ``mode`` classifies it correctly.

    A deterministic mode is evaluated once. The draws' seeds are derived from ``seed`` under their own
    name, so they are not the ones an attack with ``seed`` used: the score is on fresh noise.
    """
    n = draws if mode.stochastic else 1
    hits = torch.zeros(len(y))
    for draw in range(n):
        preds = predict(model, x, mode, batch_size=batch_size, seed=derive_seed(seed, "score", draw),
                        noise_control=noise_control)
        hits += (preds == y.cpu()).float()
    return hits / n


def _rows(x: torch.Tensor, adversarial: torch.Tensor, correct: torch.Tensor, examples: torch.Tensor, *, norm: Norm,
          eps: float, mode: EvalMode, attack: str, protocol: str, draws: int) -> pd.DataFrame:
    return pd.DataFrame({"norm": norm, "eps": eps, "mode": mode.name, "attack": attack, "protocol": protocol,
                         "example": examples.numpy(), "correct": correct.numpy(),
                         "delta_norm": perturbation_norms(x, adversarial, norm).numpy(),
                         "draws": draws if mode.stochastic else 1})


def cascade_attacks(stochastic: bool) -> tuple[str, ...]:
    """The full protocol's attacks in the order they run, each only on the images every earlier one left correct."""
    return ("APGD-CE", "APGD-DLR", *((TRANSFER,) if stochastic else ()), SQUARE, STRONG)


@dataclass
class _Cascade:
    """The full protocol at one ε on the reported mode: the worst score per image so far, and its perturbation."""

    worst: torch.Tensor
    delta: torch.Tensor

    def alive(self) -> torch.Tensor:
        """The images some noise draw still classifies correctly: the only ones a further attack can change."""
        return torch.nonzero(self.worst > 0).flatten()

    def lower(self, part: torch.Tensor, score: torch.Tensor, delta: torch.Tensor) -> None:
        """Take, image by image, the smaller of the score so far and ``score`` (found on the images ``part``)."""
        lower = score < self.worst[part]
        self.worst[part] = torch.minimum(self.worst[part], score)
        self.delta[part] = torch.where(lower, delta, self.delta[part])


def robustness_sweep(target: SweepTarget, cfg: AttackConfig) -> pd.DataFrame:
    """Per-image robust outcomes of the target's model; ``target.modes[0]`` is the mode it is reported in.

    Rows: ``norm``, ``eps``, ``mode``, ``attack``, ``protocol`` (``"sweep"``, ``"full"`` or ``"cascade"``),
    ``example`` (index in ``x``), ``correct`` (share of ``draws`` fresh noise draws classified correctly)
    and ``delta_norm``. Clean inputs are scored once per mode. The sweep attacks the reported mode with
    APGD-CE at every ε of the grid, beside random noise of the same norm. At a headline ε the full
    protocol is an AutoAttack-style cascade on the reported mode (``cascade_attacks``): each attack
    runs only on the images still correct after the clean inputs, the sweep's attacks at this and
    smaller ε and every earlier attack, and its ``"full"`` rows hold its own scores there; the
    ``"cascade"`` rows hold the worst case per image after each attack, over every image, and
    ``WORST`` the last of them. As the worst case is a minimum, skipping an image that is already at 0
    changes nothing. Another mode of a stochastic model is scored on the reported mode's APGD-CE
    examples (the same EOT surface), the noise-off mode on the transfer attack's (its own surface);
    each gets ``"APGD-CE"`` and ``WORST`` rows, never above its clean score.
    """
    model, x, modes, seed, noise_control = target.model, target.x, target.modes, target.seed, target.noise_control
    score_kw = {"draws": cfg.score_draws, "batch_size": cfg.batch_size, "noise_control": noise_control}
    headline, y = modes[0], target.y.cpu()
    examples = torch.arange(len(y))
    square_part = torch.zeros(len(y), dtype=torch.bool)
    square_part[stratified_subset(y, cfg.square_subset, cfg.subset_seed)] = True
    clean = {mode: expected_correct(model, x, y, mode, seed=seed, **score_kw) for mode in modes}
    row_kw = {"draws": cfg.score_draws}
    tables = [_rows(x, x, clean[mode], examples, norm=norm, eps=0.0, mode=mode, attack="clean", protocol="sweep", **row_kw)
              for norm in cfg.epsilons for mode in modes]
    for norm, grid in cfg.epsilons.items():
        direction = random_direction(x.shape, norm, torch.Generator().manual_seed(seed))
        swept: list[tuple[torch.Tensor, torch.Tensor]] = []
        for eps in grid:
            noisy = random_perturbation(x, eps, norm, direction)
            tables.append(_rows(x, noisy, expected_correct(model, noisy, y, headline, seed=seed, **score_kw), examples,
                                norm=norm, eps=eps, mode=headline, attack=RANDOM, protocol="sweep", **row_kw))
            with attacked_as(model, headline, cfg.eot_iter, noise_control):
                adversarial = apgd(model, x, y, norm=norm, eps=eps, loss="ce", steps=cfg.sweep_steps, seed=seed,
                                   n_restarts=cfg.n_restarts, batch_size=cfg.batch_size)
            score = expected_correct(model, adversarial, y, headline, seed=seed, **score_kw)
            swept.append((score, perturbation_norms(x, adversarial, norm)))
            tables.append(_rows(x, adversarial, score, examples, norm=norm, eps=eps, mode=headline, attack="APGD-CE",
                                protocol="sweep", **row_kw))
            if eps in cfg.headline_epsilons.get(norm, ()):
                tables += _full_protocol(target, cfg, norm, eps, clean, swept, square_part)
    return pd.concat(tables, ignore_index=True)[["norm", "eps", "mode", "attack", "protocol", "example", "correct",
                                                 "delta_norm", "draws"]]


def _full_protocol(target: SweepTarget, cfg: AttackConfig, norm: Norm, eps: float, clean: dict[EvalMode, torch.Tensor],
                   swept: list[tuple[torch.Tensor, torch.Tensor]], square_part: torch.Tensor) -> list[pd.DataFrame]:
    """``robustness_sweep``'s full protocol at one ε: the cascade on the reported mode, the other modes rescored."""
    model, x, modes, seed, noise_control = target.model, target.x, target.modes, target.seed, target.noise_control
    headline, y = modes[0], target.y.cpu()
    score_kw = {"draws": cfg.score_draws, "batch_size": cfg.batch_size, "noise_control": noise_control}
    row_kw = {"norm": norm, "eps": eps, "draws": cfg.score_draws}
    off = next((mode for mode in modes if not mode.stochastic), None) if headline.stochastic else None
    cascade = _Cascade(clean[headline].clone(), torch.zeros(len(y), dtype=torch.float64))
    for score, delta in swept:  # the sweep's examples at this and smaller ε lie in this ball too
        cascade.lower(torch.arange(len(y)), score, delta)
    tables, steps = [], {STRONG: cfg.strong_steps}
    for name in cascade_attacks(headline.stochastic):
        part = cascade.alive()
        if name == "APGD-CE" and headline.stochastic:  # the stochastic modes share this EOT surface: attack what
            shared = torch.stack([clean[mode] > 0 for mode in modes if mode.stochastic]).any(0)  # any gets right
            part = torch.nonzero(shared | (cascade.worst > 0)).flatten()
        if name == TRANSFER and off is not None:  # the noise-off mode is scored on the transfer attack's examples
            part = torch.nonzero((cascade.worst > 0) | (clean[off] > 0)).flatten()
        if name == SQUARE:
            part = part[square_part[part]]
        surface = EvalMode("noise off", "off") if name == TRANSFER else headline
        with attacked_as(model, surface, cfg.strong_eot if name == STRONG else cfg.eot_iter, noise_control):
            if name == SQUARE:
                adversarial = square(model, x[part], y[part], norm=norm, eps=eps, n_queries=cfg.square_queries, seed=seed,
                                     batch_size=cfg.batch_size)
            else:
                adversarial = apgd(model, x[part], y[part], norm=norm, eps=eps, loss="dlr" if name == "APGD-DLR" else "ce",
                                   steps=steps.get(name, cfg.steps), seed=seed, n_restarts=cfg.n_restarts,
                                   batch_size=cfg.batch_size)
        delta = perturbation_norms(x[part], adversarial, norm)
        for mode in modes[1:]:
            if (name == "APGD-CE" and mode.stochastic) or (name == TRANSFER and mode == off):
                score = torch.minimum(clean[mode][part], expected_correct(model, adversarial, y[part], mode, seed=seed,
                                                                          **score_kw))
                worst = torch.zeros(len(y))
                worst[part] = score
                rows = _rows(x, x, worst, torch.arange(len(y)), mode=mode, attack="APGD-CE", protocol="full", **row_kw)
                rows.loc[part.numpy(), "delta_norm"] = delta.numpy()
                tables += [rows, rows.assign(attack=WORST)]
        alive = cascade.worst[part] > 0
        part, adversarial, delta = part[alive], adversarial[alive], delta[alive]
        score = expected_correct(model, adversarial, y[part], headline, seed=seed, **score_kw)
        tables.append(_rows(x[part], adversarial, score, part, mode=headline, attack=name, protocol="full", **row_kw))
        cascade.lower(part, score, delta)
        tables.append(pd.DataFrame({"norm": norm, "eps": eps, "mode": headline.name, "attack": name, "protocol": "cascade",
                                    "example": range(len(y)), "correct": cascade.worst.numpy(),
                                    "delta_norm": cascade.delta.numpy(),
                                    "draws": cfg.score_draws if headline.stochastic else 1}))
    tables.append(tables[-1].assign(attack=WORST, protocol="full"))
    return tables


def convergence(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: AttackConfig,
    mode: EvalMode,
    *,
    norm: Norm,
    eps: float,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """Robust accuracy of APGD-CE on ``mode`` against its steps (EOT fixed at ``cfg.eot_iter``) and against its
    EOT draws (steps fixed at ``cfg.steps``), on a stratified subset: the headline setting should sit on the plateau.

    One row per setting: ``steps``, ``eot``, ``varied`` (which of the two), ``accuracy`` and ``headline``.
    """
    part = stratified_subset(y, cfg.convergence_subset, cfg.subset_seed)
    x, y = x[part], y[part].cpu()
    settings = [(steps, cfg.eot_iter, "steps") for steps in cfg.convergence_steps]
    settings += [(cfg.steps, eot, "EOT draws") for eot in (cfg.convergence_eot if mode.stochastic else ())]
    rows = []
    for steps, eot, varied in settings:
        with attacked_as(model, mode, eot, noise_control):
            adversarial = apgd(model, x, y, norm=norm, eps=eps, loss="ce", steps=steps, seed=seed, batch_size=cfg.batch_size)
        correct = expected_correct(model, adversarial, y, mode, draws=cfg.score_draws, seed=seed, batch_size=cfg.batch_size,
                                   noise_control=noise_control)
        draws = pd.Series(cfg.score_draws if mode.stochastic else 1, index=range(len(y)))
        variance = float(share_variance(pd.Series(correct.numpy()), draws).sum())
        rows.append({"steps": steps, "eot": eot, "varied": varied, "accuracy": float(correct.mean()),
                     "mc_se": variance ** 0.5 / max(len(y), 1),
                     "headline": steps == cfg.steps and eot == cfg.eot_iter, "n_samples": len(y)})
    return pd.DataFrame(rows)


def share_variance(share: pd.Series, draws: pd.Series) -> pd.Series:
    """Per image, the unbiased variance of a share of ``draws`` Bernoulli noise draws (0 for a single draw)."""
    return (share * (1 - share) / (draws - 1).clip(lower=1)).where(draws > 1, 0.0)


def accuracy_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Robust accuracy per (norm, ε, mode, attack, protocol) and any model/seed columns, from per-image rows, with
    its Monte-Carlo standard error (``mc_se``): the spread that scoring on a finite number of noise draws adds."""
    keys = [k for k in ("model", "seed", "norm", "eps", "mode", "attack", "protocol") if k in outcomes.columns]
    draws = outcomes["draws"] if "draws" in outcomes.columns else pd.Series(1, index=outcomes.index)
    share = outcomes["correct"]
    table = outcomes.assign(_variance=share_variance(share, draws)).groupby(keys, sort=False).agg(
        accuracy=("correct", "mean"), n_samples=("correct", "size"), max_delta_norm=("delta_norm", "max"),
        _variance=("_variance", "sum")).reset_index()
    table["mc_se"] = np.sqrt(table.pop("_variance")) / table["n_samples"]
    return table


class SanityCheckFailed(AssertionError):
    """An attack failed a sanity check: its robust accuracies cannot be trusted as they are."""


def norm_bound_check(outcomes: pd.DataFrame) -> pd.Series:
    """Per image row of an attack (ε > 0): whether it stayed within its ε, up to float32 rounding."""
    return outcomes["delta_norm"] <= outcomes["eps"] * (1 + NORM_TOLERANCE)


def monotonicity_check(accuracy: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """Per curve of independent attacks (the sweep's APGD-CE), the largest rise of accuracy from one ε to the next.

    A rise counts as a failure only beyond ``z`` standard errors of the difference of two binomial
    accuracies on the curve's images (sampling noise of independent attacks); ``ok`` says whether none does.
    """
    keys = [k for k in ("model", "seed", "norm", "mode") if k in accuracy.columns]
    sweep = accuracy[accuracy["attack"].isin(["clean", "APGD-CE"]) & (accuracy["protocol"] == "sweep")]
    rows = []
    for key, curve in sweep.groupby(keys, sort=False):
        curve = curve.sort_values("eps")
        acc, n = curve["accuracy"].to_numpy(), curve["n_samples"].to_numpy()
        rise = np.diff(acc)
        tolerance = z * np.maximum(np.sqrt(acc[:-1] * (1 - acc[:-1]) / n[:-1] + acc[1:] * (1 - acc[1:]) / n[1:]), 1 / n[1:])
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                     "largest rise": float(rise.max()) if len(rise) else 0.0, "ok": bool((rise <= tolerance).all())})
    return pd.DataFrame(rows)


def sanity_checks(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The checks of attack outcomes (``robustness_sweep`` rows with ``model`` and ``seed``), per model and norm.

    ``within bound`` over attacked images only; the largest rise of the sweep's independent APGD-CE
    attacks from one ε to the next and whether it stays within sampling noise; the share of
    (seed, ε) points where the attack is at least as strong as random noise of the same norm; the
    sweep attack's mean accuracy at the largest ε.
    """
    attacked = outcomes[outcomes["eps"] > 0]
    accuracy = accuracy_table(outcomes)
    monotone = monotonicity_check(accuracy)
    sweep = accuracy[accuracy["protocol"] == "sweep"].pivot_table(index=["model", "norm", "seed", "eps"],
                                                                  columns="attack", values="accuracy")
    attacked_sweep = sweep[sweep.index.get_level_values("eps") > 0]
    flat = sweep.reset_index()
    largest = flat[flat["eps"] == flat.groupby("norm")["eps"].transform("max")].set_index(["model", "norm"])
    return pd.DataFrame({
        "within bound": norm_bound_check(attacked).groupby([attacked["model"], attacked["norm"]]).all(),
        "largest rise with ε": monotone.groupby(["model", "norm"])["largest rise"].max(),
        "rises within noise": monotone.groupby(["model", "norm"])["ok"].all(),
        "attack ≤ random noise": (attacked_sweep["APGD-CE"] <= attacked_sweep[RANDOM] + 1e-9).groupby(["model", "norm"]).mean(),
        "mean attack − random": (attacked_sweep["APGD-CE"] - attacked_sweep[RANDOM]).groupby(["model", "norm"]).max(),
        "accuracy at largest ε": largest["APGD-CE"].groupby(level=["model", "norm"]).mean(),
    })


def check_attacks(outcomes: pd.DataFrame, baseline: str, threshold: float = 0.05) -> pd.DataFrame:
    """``sanity_checks`` of the outcomes, raising SanityCheckFailed if one fails; the table otherwise.

    Fails when an attacked image left its ball, when an independent attack's accuracy rises with ε
    beyond sampling noise, when random noise of the same norm beats the attack on average over seeds
    at some ε, or when the undefended ``baseline`` keeps more than ``threshold`` accuracy at the largest ε.
    """
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
    left = checks.xs(baseline, level="model")["accuracy at largest ε"]
    if (left > threshold).any():
        raise SanityCheckFailed(
            f"{baseline} keeps {left.max():.1%} accuracy at the largest ε (more than {threshold:.0%}): extend the sweep"
        )
    return checks


def masking_gap(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per (model, seed, norm, ε, mode) of the full protocol: accuracy under Square minus under the gradient
    attacks on the same images. Negative means the gradient-free attack is stronger: the gradients are masked."""
    full = outcomes[outcomes["protocol"] == "full"]
    square_rows = full[full["attack"] == SQUARE]
    keys = [k for k in ("model", "seed", "norm", "eps", "mode") if k in full.columns]
    gradient = full[full["attack"].isin([*GRADIENT_ATTACKS, TRANSFER])]
    gradient = gradient.merge(square_rows[[*keys, "example"]], on=[*keys, "example"])
    worst = gradient.groupby([*keys, "example"])["correct"].min().groupby(keys).mean().rename("gradient attacks")
    square_acc = square_rows.groupby(keys)["correct"].mean().rename("Square")
    table = pd.concat([square_acc, worst], axis=1).reset_index()
    table["Square − gradient"] = table["Square"] - table["gradient attacks"]
    return table


def attack_plateau(study: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """Per model (if the study has a ``model`` column) and varied budget: the change of robust accuracy between the
    two largest budgets, its Monte-Carlo error, and whether it is flat (within ``z`` errors, or one image)."""
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
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                     "budgets": f"{before[budget]:g} → {last[budget]:g}", "change": change, "mc error": error,
                     "flat": abs(change) <= max(z * error, 1 / last["n_samples"])})
    return pd.DataFrame(rows)


def convergence_study(target: SweepTarget, cfg: AttackConfig) -> pd.DataFrame:
    """``convergence`` of the attack on ``target.modes[0]`` at the first headline L2 ε (else the first headline ε)."""
    norm = "L2" if cfg.headline_epsilons.get("L2") else next(n for n, values in cfg.headline_epsilons.items() if values)
    eps = cfg.headline_epsilons[norm][0]
    mode = target.modes[0]
    table = convergence(target.model, target.x, target.y, cfg, mode, norm=norm, eps=eps, seed=target.seed,
                        noise_control=target.noise_control)
    return table.assign(norm=norm, eps=eps, mode=mode.name)


def headline_first(kind: str, sde: SDEConfig) -> tuple[EvalMode, ...]:
    """A model's evaluation modes with the mode it is reported in first: the order ``robustness_sweep`` takes."""
    headline = headline_mode(kind, sde)
    return headline, *(mode for mode in eval_modes(kind, sde) if mode != headline)
