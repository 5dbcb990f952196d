"""Adversarial robustness (claim C3): APGD-CE sweeps over ε in the L2 and L∞ norms, with and without EOT.

The attack is torchattacks' APGD with the cross-entropy loss (Croce & Hein 2020). How it is run:

- **Model noise during the attack.** Every forward pass the attack makes is one stochastic pass of
  the NSDE (noise mode ``"single"``; a no-op on the deterministic baseline). torchattacks puts the
  model in eval mode (``set_model_training_mode`` is left at its default) and clips every iterate
  to [0, 1]. Without EOT (``eot_iter=1``) each step follows the gradient of one noise draw, which
  noise can mask; with EOT (Athalye et al. 2018) APGD averages the gradient over ``eot_iter`` passes,
  i.e. it follows the gradient of the expected loss. torchattacks' step-size control still reads
  the loss of the last of those passes. APGD only attacks the samples its first pass classifies
  correctly and returns a sample unchanged unless some step's pass misclassified it. It reseeds
  torch's global generator with its ``seed``; ``apgd_attack`` runs it on a forked generator so the
  caller's random state is left alone.
- **Evaluation.** Adversarial inputs are then scored in each evaluation mode (baseline once; NSDE
  as one stochastic pass and as a K-pass ensemble), with the model's noise drawn from the same seed
  at every ε (see ``robustness_eval``).
- **Monotone robust accuracy.** APGD at each ε is an independent search, so its raw accuracy can
  rise with ε by chance. A perturbation found at ε' ≤ ε is also admissible at ε, so the sweep
  reports the standard worst case over the sweep: a sample counts as broken at ε if it was
  misclassified (clean or attacked) at any ε' ≤ ε, in that evaluation mode. Samples already broken
  in every mode are not attacked again, which is also what makes the sweep affordable.
- **Sanity checks** in every row: the largest perturbation norm among attacked samples and whether
  all of them are within ε (up to float32 rounding), and the accuracy under random noise whose
  norm, after clipping to [0, 1], is exactly ε — at least the norm of any adversarial
  perturbation at that ε — in the same evaluation mode (``random_noise_sweep``).
"""

from __future__ import annotations

import time
from typing import Literal

import pandas as pd
import torch
import torchattacks
from pydantic import Field, field_validator
from torch import nn

from ..common.artifacts import ArtifactStore
from ..common.config import Section
from ..common.devices import model_device
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, NoiseControl, default_noise_control, predict
from .sweeps import cached_subset_sweep, check_sweep_values

Norm = Literal["L2", "Linf"]
NORMS: tuple[Norm, ...] = ("L2", "Linf")
#: Relative slack of the norm-bound check, for float32 rounding in the attack's projection.
NORM_TOLERANCE = 1e-4


class AttackConfig(Section):
    """The APGD-CE sweeps of chapter 5: ε per norm, attack budget and the attacked subset."""

    epsilons: dict[Norm, tuple[float, ...]] = Field(description="ε values per norm ('L2', 'Linf'), increasing, > 0")
    steps: int = Field(ge=1, description="APGD iterations per restart")
    n_restarts: int = Field(default=1, ge=1, description="APGD random restarts")
    eot_iter: int = Field(ge=2, description="gradient samples per step of the EOT attack on the stochastic model")
    subset_size: int | None = Field(default=None, ge=1, description="stratified test subset size; None: the whole test set")
    subset_seed: int = Field(default=0, ge=0, description="seed of the subset (fixed across model seeds for paired results)")
    batch_size: int = Field(default=128, ge=1, description="samples per attack batch")

    @field_validator("epsilons")
    @classmethod
    def _valid_epsilons(cls, value: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        if not value:
            raise ValueError(f"no norm to attack in; give ε values for at least one of {', '.join(NORMS)}")
        for norm, epsilons in value.items():
            check_sweep_values(epsilons, f"{norm} ε")
            if norm == "Linf" and epsilons[-1] > 1:
                raise ValueError(f"Linf ε must be <= 1 (inputs lie in [0, 1]), got {epsilons[-1]}")
        return value


def check_norm(norm: str) -> Norm:
    """``norm`` if it is one of the supported norms, else a ValueError naming them."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed norms: {', '.join(NORMS)}")
    return norm  # type: ignore[return-value]


def apgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: Norm,
    eps: float,
    steps: int,
    n_restarts: int = 1,
    eot_iter: int = 1,
    seed: int = 0,
    batch_size: int = 128,
) -> torch.Tensor:
    """APGD-CE adversarial examples of (x, y) within ``eps`` in ``norm``, batched; returned on the CPU.

    The model is attacked as it is: set its noise mode around the call (``attack_inputs`` does).
    Samples APGD cannot fool (or that are misclassified already) come back unchanged.
    """
    attack = torchattacks.APGD(
        model, norm=check_norm(norm), eps=eps, steps=steps, n_restarts=n_restarts, seed=seed, loss="ce", eot_iter=eot_iter
    )
    with seeded_rng(seed, model_device(model)):
        adversarial = [attack(xb, yb).detach().cpu() for xb, yb in zip(x.split(batch_size), y.split(batch_size))]
    return torch.cat(adversarial) if adversarial else x.detach().cpu().clone()


def attack_inputs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: AttackConfig,
    *,
    norm: Norm,
    eps: float,
    eot: bool,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> torch.Tensor:
    """``apgd_attack`` with the config's budget, the model in single-stochastic-pass mode, EOT on or off."""
    control = noise_control or default_noise_control()
    with control(model, "single", None):
        return apgd_attack(
            model, x, y, norm=norm, eps=eps, steps=cfg.steps, n_restarts=cfg.n_restarts,
            eot_iter=cfg.eot_iter if eot else 1, seed=seed, batch_size=cfg.batch_size,
        )


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-sample ``norm`` of ``x_adv − x`` (computed in float64)."""
    delta = (x_adv.double() - x.double()).flatten(1)
    return delta.norm(dim=1) if check_norm(norm) == "L2" else delta.abs().amax(dim=1)


def within_bound(norms: torch.Tensor, eps: float) -> bool:
    """Whether every norm is at most ``eps`` up to float32 rounding (``NORM_TOLERANCE``)."""
    return bool((norms <= eps * (1 + NORM_TOLERANCE)).all())


def random_direction(shape: torch.Size | tuple[int, ...], norm: Norm, generator: torch.Generator) -> torch.Tensor:
    """Random unit directions: Gaussian with unit L2 norm, or random signs (a vertex of the L∞ ball)."""
    if check_norm(norm) == "L2":
        direction = torch.randn(tuple(shape), generator=generator)
        return direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (len(shape) - 1))
    return torch.randint(0, 2, tuple(shape), generator=generator).float() * 2 - 1


def random_perturbation(x: torch.Tensor, eps: float, norm: Norm, direction: torch.Tensor) -> torch.Tensor:
    """``x`` moved along ``direction`` so that, after clipping to [0, 1], the change has norm ``eps``.

    For L∞ that is ``x + eps · signs``, clipped. For L2 clipping would shrink the step, so the
    scale is found per sample by bisection; where [0, 1] does not leave room for ``eps`` the
    change is as large as clipping allows.
    """
    if check_norm(norm) == "Linf":
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


def random_noise_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: AttackConfig,
    modes: tuple[EvalMode, ...],
    *,
    norm: Norm,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """Accuracy under random noise of norm ε (after clipping) at every ε of the sweep: what an attack must beat.

    One direction per sample is drawn once and scaled to each ε. One row per (ε, mode), ε = 0 clean.
    """
    direction = random_direction(x.shape, norm, torch.Generator().manual_seed(seed))
    rows = []
    for eps in (0.0, *cfg.epsilons[norm]):
        noisy = random_perturbation(x, eps, norm, direction)
        for mode in modes:
            preds = predict(model, noisy, mode, batch_size=cfg.batch_size, seed=seed, noise_control=noise_control)
            rows.append({"norm": norm, "eps": eps, "mode": mode.name, "random_accuracy": float((preds == y.cpu()).float().mean())})
    return pd.DataFrame(rows)


def attack_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: AttackConfig,
    modes: tuple[EvalMode, ...],
    *,
    norm: Norm,
    eot: bool,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """Worst-case robust accuracy over ``cfg.epsilons[norm]`` in every mode, with the norm-bound check.

    One row per (ε, mode), ε = 0 being the clean inputs: ``accuracy`` (broken at no ε' ≤ ε),
    ``n_attacked`` (samples attacked at this ε), ``max_norm`` and ``within_bound`` (largest
    perturbation among them and the bound check) and ``seconds`` (time of this ε's attack and
    evaluations, shared by its modes).
    """
    control = noise_control or default_noise_control()
    y = y.cpu()

    def correct(inputs: torch.Tensor, mode: EvalMode) -> torch.Tensor:
        return predict(model, inputs, mode, batch_size=cfg.batch_size, seed=seed, noise_control=control) == y

    def rows_at(eps: float, n_attacked: int, norms: torch.Tensor, seconds: float) -> list[dict]:
        return [
            {"norm": norm, "attack": "APGD-CE + EOT" if eot else "APGD-CE", "eot_iter": cfg.eot_iter if eot else 1,
             "eps": eps, "mode": mode.name, "accuracy": float((~broken[mode.name]).float().mean()),
             "n_samples": len(y), "n_attacked": n_attacked, "max_norm": float(norms.max()) if len(norms) else 0.0,
             "within_bound": within_bound(norms, eps), "seconds": seconds}
            for mode in modes
        ]

    start = time.perf_counter()
    broken = {mode.name: ~correct(x, mode) for mode in modes}
    rows = rows_at(0.0, 0, torch.zeros(0), time.perf_counter() - start)
    for eps in cfg.epsilons[norm]:
        start = time.perf_counter()
        todo = ~torch.stack(list(broken.values())).all(dim=0)
        adversarial = x.clone()
        if todo.any():
            adversarial[todo] = attack_inputs(
                model, x[todo], y[todo], cfg, norm=norm, eps=eps, eot=eot, seed=seed, noise_control=control
            )
        for mode in modes:
            broken[mode.name] |= ~correct(adversarial, mode)
        norms = perturbation_norms(x[todo], adversarial[todo], norm)
        rows += rows_at(eps, int(todo.sum()), norms, time.perf_counter() - start)
    return pd.DataFrame(rows)


def attack_sweeps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: AttackConfig,
    modes: tuple[EvalMode, ...],
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """``attack_sweep`` for every norm of the config, beside ``random_noise_sweep``'s ``random_accuracy``.

    A stochastic model (any stochastic mode) is attacked without and with EOT; a deterministic
    one only without, since averaging identical gradients changes nothing.
    """
    eot_variants = (False, True) if any(mode.stochastic for mode in modes) else (False,)
    tables = []
    for norm in cfg.epsilons:
        random = random_noise_sweep(model, x, y, cfg, modes, norm=norm, seed=seed, noise_control=noise_control)
        for eot in eot_variants:
            attacked = attack_sweep(model, x, y, cfg, modes, norm=norm, eot=eot, seed=seed, noise_control=noise_control)
            tables.append(attacked.merge(random, on=["norm", "eps", "mode"], how="left", validate="one_to_one"))
    return pd.concat(tables, ignore_index=True)


def cached_attack_sweeps(
    store: ArtifactStore,
    cfg: AttackConfig,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    modes: tuple[EvalMode, ...],
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """``attack_sweeps`` on ``cfg``'s stratified subset of (x, y), stored as an artifact and reused.

    Keyed on the attack config, the seed, the evaluation modes and the content of the model and
    the subset: a rerun with the same inputs reads the table instead of attacking again.
    """
    return cached_subset_sweep(
        store, "attack_sweep", cfg, attack_sweeps, model, x, y, modes, seed=seed, noise_control=noise_control
    )


class SanityCheckFailed(AssertionError):
    """An attack sweep failed a sanity check: its robust accuracies cannot be trusted as they are."""


def norm_bound_check(table: pd.DataFrame) -> pd.Series:
    """Per (model, attack, norm): whether every attacked sample stayed within ε.

    Only rows where samples were attacked count: a budget at which nothing was attacked is no
    evidence that the projection works. A curve without any attacked sample is reported as False.
    """
    attacked = table[(table["eps"] > 0) & (table["n_attacked"] > 0)]
    ok = attacked.groupby(["model", "attack", "norm"])["within_bound"].all()
    curves = table[table["eps"] > 0].groupby(["model", "attack", "norm"]).size().index
    return ok.reindex(curves, fill_value=False).rename("within bound")


def sanity_checks(table: pd.DataFrame) -> pd.DataFrame:
    """The checks of a set of attack sweeps, one row per (model, attack, norm).

    ``within bound`` (``norm_bound_check``), the largest ratio of perturbation norm to ε, the share
    of (ε, mode, seed) points where the attack did at least as well as random noise of the same
    norm, and the mean accuracy left at the largest ε of the norm.
    """
    attacked = table[table["eps"] > 0]
    keys = [attacked["model"], attacked["attack"], attacked["norm"]]
    largest = table[table["eps"] == table.groupby("norm")["eps"].transform("max")]
    return pd.DataFrame({
        "within bound": norm_bound_check(table),
        "largest norm / ε": (attacked["max_norm"] / attacked["eps"]).groupby(keys).max(),
        "attack ≤ random noise": (attacked["accuracy"] <= attacked["random_accuracy"]).groupby(keys).mean(),
        "accuracy at largest ε": largest.groupby(["model", "attack", "norm"])["accuracy"].mean(),
    })


def check_attacks(table: pd.DataFrame, baseline: str, threshold: float = 0.05) -> pd.DataFrame:
    """``sanity_checks`` of the sweeps, raising SanityCheckFailed if one fails; the table otherwise.

    Fails when an attacked sample left its norm ball, when random noise of the same norm beats the
    attack on average over seeds at some (norm, mode, ε), or when the undefended ``baseline`` model
    keeps more than ``threshold`` accuracy at the largest ε of a norm (the sweep is then too short).
    """
    checks = sanity_checks(table)
    if not checks["within bound"].all():
        raise SanityCheckFailed(f"adversarial examples exceed their norm bound: {list(checks.index[~checks['within bound']])}")
    mean = table[table["eps"] > 0].groupby(["attack", "norm", "mode", "eps"])[["accuracy", "random_accuracy"]].mean()
    beaten = mean[mean["accuracy"] > mean["random_accuracy"] + 1e-9]
    if len(beaten):
        raise SanityCheckFailed(f"random noise beat the attack on average at {list(beaten.index)}")
    left = checks.xs(baseline, level="model")["accuracy at largest ε"]
    if (left > threshold).any():
        raise SanityCheckFailed(
            f"{baseline} keeps {left.max():.1%} accuracy at the largest ε (more than {threshold:.0%}): extend the sweep"
        )
    return checks
