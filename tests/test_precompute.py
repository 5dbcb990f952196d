"""Precomputing a stage fills the artifact store with exactly what the chapters then read back."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nsdelib.book import cli
from nsdelib.book.context import setup
from nsdelib.book.precompute import (
    PrecomputeFailed,
    abc_choices,
    claim,
    claim_path,
    run_in_workers,
    run_share,
    stage_jobs,
)
from nsdelib.common.errors import ConfigError
from nsdelib.evaluation import abc, attributions, detectors, input_noise
from nsdelib.evaluation.data_size import DataSizeConfig
from nsdelib.models.registry import MODEL_KINDS
from nsdelib.training import trainer


def test_workers_share_the_jobs_and_the_chapters_read_them_back(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = setup("ci", 0, "cpu")
    run_share(ctx, "train", 0, 1, log=lambda _: None)
    lines: list[str] = []
    for worker in (1, 0):
        run_share(ctx, "noise", worker, 2, log=lines.append)
    done = [re.sub(r" \(\d+ s\)$", "", line) for line in lines]
    assert sorted(done) == sorted(f"noise: {kind} seed {seed} done" for kind, seed in stage_jobs(ctx, "noise"))
    assert len(lines) == 3 * ctx.profile.n_seeds

    def recomputed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chapter recomputed a precomputed sweep")

    monkeypatch.setattr(input_noise, "per_image_outcomes", recomputed)
    table = ctx.noise_sweep(ctx.train("nsde", ctx.seeds[-1]))
    assert set(table["mode"]) == {"NSDE, noise off", "NSDE, single pass", "NSDE, 2-pass ensemble"}


def test_dynamic_workers_skip_a_job_a_live_worker_holds_and_take_over_a_dead_ones() -> None:
    ctx = setup("ci", 0, "cpu")
    run_share(ctx, "train", 0, 1, log=lambda _: None)
    jobs = stage_jobs(ctx, "noise")
    (held_kind, held_seed), (dead_kind, dead_seed) = jobs[0], jobs[1]
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held, dead = claim_path(ctx, "noise", held_kind, held_seed), claim_path(ctx, "noise", dead_kind, dead_seed)
    try:
        held.parent.mkdir(parents=True, exist_ok=True)
        held.write_text("1")  # init: alive, and not this process
        dead.write_text(finished.stdout.strip())  # a process that has exited
        lines: list[str] = []
        run_share(ctx, "noise", 0, 1, log=lines.append, dynamic=True)
        done = {re.sub(r" \(\d+ s\)$", "", line) for line in lines}
        assert f"noise: {held_kind} seed {held_seed} done" not in done
        assert f"noise: {dead_kind} seed {dead_seed} done" in done
        assert len(done) == len(jobs) - 1
        assert not claim(held) and claim(dead)
    finally:
        shutil.rmtree(held.parent.parent.parent)


def test_the_attribution_and_abc_stages_fill_what_chapters_6_and_7_read(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = setup("ci", 0, "cpu")
    run_share(ctx, "train", 0, 1, log=lambda _: None)
    lines: list[str] = []
    for stage in ("attribution", "abc"):
        for worker in (0, 1):
            run_share(ctx, stage, worker, 2, log=lines.append)
    assert len(lines) == 2 * 3 * ctx.profile.n_seeds

    def recomputed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chapter recomputed a precomputed attribution or ABC")

    for module, name in ((attributions, "attribute"), (abc, "abc_in_mode"), (detectors, "predict"),
                         (detectors, "pass_probabilities"), (attributions, "stability_controls")):
        monkeypatch.setattr(module, name, recomputed)
    m, std = abc_choices(ctx)
    for kind in ("convnext", "nsde", "convnext_noise"):
        run = ctx.train(kind, ctx.seeds[-1])
        assert set(ctx.attribution_stability(run)["model"]) == {kind}
        assert not ctx.abc_curve(run).empty
        assert not ctx.abc_at(run, m.value).empty
        scores = ctx.detector_scores(run, m.value, std.value)
        assert list(scores.columns[-4:]) == ["ABC as written", "ABC at C4's budget", "model", "seed"]
    assert not ctx.abc_at(ctx.train("nsde", ctx.seeds[0]), m.value, neighbours="mode").empty
    assert set(ctx.detector_accuracy(ctx.train("convnext", ctx.seeds[0]))["std"]) == set(
        ctx.profile.abc.detectors.noise_stds)


def test_the_data_size_stage_trains_the_studys_models_for_its_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = setup("ci", 0, "cpu")
    ctx = dataclasses.replace(ctx, profile=ctx.profile.replace(data_size=DataSizeConfig.build(fractions=(0.5, 1.0),
                                                                                               n_seeds=1)))
    assert stage_jobs(ctx, "data_size") == [(kind, ctx.seeds[0]) for kind in MODEL_KINDS]
    for worker in (0, 1):
        run_share(ctx, "data_size", worker, 2, log=lambda _: None)

    def retrained(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chapter retrained a precomputed model")

    monkeypatch.setattr(trainer, "_train", retrained)
    table = ctx.data_size_study()
    assert table["seed"].unique().tolist() == [ctx.seeds[0]]
    assert table["training samples"].nunique() == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stage", "ablation"], "unknown stage 'ablation'; allowed stages: train, noise, attack, attribution, abc, data_size"),
        (["--stage", "train", "--worker", "3", "--workers", "2"], r"worker 3 must lie in \[0, workers = 2\)"),
        (["--stage", "train", "--profile", "fast"], "parameter 'profile' = 'fast'"),
    ],
)
def test_bad_input_is_one_error_with_exit_code_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["precompute", *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("error:") == 1


def test_unknown_stage_is_refused_before_any_work() -> None:
    with pytest.raises(ConfigError, match="unknown stage 'sweeps'"):
        stage_jobs(setup("ci", 0, "cpu"), "sweeps")


def test_the_builds_workers_train_every_model_the_chapters_then_read_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path))  # a fresh store: the workers must train, not read back
    lines: list[str] = []
    run_in_workers(["train", "noise"], 2, "ci", 0, "cpu", log=lines.append)  # two stages, as the build runs
    ctx = setup("ci", 0, "cpu")
    done = [re.sub(r"^worker [01]: | \(\d+ s\)$", "", line) for line in lines if re.search(r"done \(\d+ s\)$", line)]
    expected = [f"{stage}: {kind} seed {seed} done" for stage in ("train", "noise") for kind, seed in stage_jobs(ctx, stage)]
    assert sorted(done) == sorted(expected)
    assert all(re.match(r"worker [01]: ", line) for line in lines)
    assert any(re.search(r"epoch +\d+/\d+", line) for line in lines)  # training progress reaches the terminal
    assert not [line for line in lines if "it/s]" in line or "%|" in line], "progress bars flood a piped terminal"

    def retrained(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chapter retrained a model the workers trained")

    monkeypatch.setattr(trainer, "_train", retrained)
    monkeypatch.setattr(input_noise, "per_image_outcomes", retrained)
    runs = ctx.train_all()
    assert {kind: len(kind_runs) for kind, kind_runs in runs.items()} == dict.fromkeys(MODEL_KINDS, ctx.profile.n_seeds)
    assert not ctx.noise_sweep(runs["nsde"][-1]).empty


@pytest.mark.parametrize(("workers", "precomputed"), [("2", [(("train", "data_size"), 2, "ci", 3, "cpu")]), ("1", [])])
def test_the_build_trains_chapters_3_and_8s_models_in_workers_first(
    monkeypatch: pytest.MonkeyPatch, workers: str, precomputed: list[tuple]
) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr(cli, "run_in_workers", lambda *args: calls.append(("workers", *args)))
    monkeypatch.setattr(cli, "run_book", lambda **kwargs: calls.append(("book",)) or Path("stage"))
    monkeypatch.setattr(cli, "build_html", lambda stage, out: calls.append(("html",)))
    assert cli.main(["build", "--profile", "ci", "--seed", "3", "--device", "cpu", "--workers", workers]) == 0
    assert calls == [*(("workers", *call) for call in precomputed), ("book",), ("html",)]


def test_a_failing_worker_fails_the_build_naming_it() -> None:
    lines: list[str] = []
    with pytest.raises(PrecomputeFailed, match=r"precompute of train failed in worker\(s\) 0 \(exit code 1\), "
                                                r"1 \(exit code 1\); see their output above"):
        run_in_workers(["train"], 2, "ci", 0, "cuda:99", log=lines.append)
    assert any(line.startswith("worker 1: ") and "cuda:99" in line for line in lines)


def test_unknown_stage_is_refused_before_any_worker_starts() -> None:
    with pytest.raises(ConfigError, match="unknown stage 'sweeps'; allowed stages: train, "):
        run_in_workers(["train", "sweeps"], 2, "ci", 0, "cpu", log=print)
