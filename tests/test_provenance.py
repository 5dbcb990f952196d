"""Recorded results carry their provenance and are read back exactly; damaged files are reported."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import CiGraph
from torch import nn

from nsdelib.book import provenance as provenance_module
from nsdelib.book.provenance import (
    announce_recorded,
    frontier_record_name,
    load_frontier,
    load_recorded,
    load_recorded_index,
    model_digests,
    provenance,
    provenance_warnings,
    record_point,
    record_result,
    recorded_caption,
    recorded_point,
    show_figure,
    sweep_record_name,
    table_digests,
)
from nsdelib.claims.sigma_tuning import MeasuredPoint
from nsdelib.report.outcomes import outcomes_path, read_outcomes
from nsdelib.models.registry import MODEL_KINDS
from nsdelib.training.trainer import TrainedModel
from nsdelib.common import ArtifactCorrupt
from nsdelib.common.artifacts import KINDS, weights_digest

COMMIT = "674d8cf01c34bde9555449e3d50ed13458469a7b"


def test_provenance_has_every_field() -> None:
    prov = provenance("paper", [0, 1, 2], "cpu", 12.345)
    assert {"profile", "seeds", "device", "wall_time_s", "commit", "date", "models", "artifact_versions",
            "versions"} <= prov.keys()
    assert prov["artifact_versions"]["trained"] == KINDS["trained"].version
    assert prov["seeds"] == [0, 1, 2] and prov["wall_time_s"] == 12.35
    assert "torch" in prov["versions"]


def test_record_and_load_roundtrip(tmp_path: Path) -> None:
    prov = provenance("paper", [0], "cpu", 1.0)
    path = record_result("clean_accuracy", {"convnext": [0.9]}, prov, root=tmp_path)
    assert path == tmp_path / "paper" / "clean_accuracy.json"
    loaded = load_recorded("clean_accuracy", "paper", root=tmp_path)
    assert loaded == {"provenance": prov, "result": {"convnext": [0.9]}}
    index = load_recorded_index(root=tmp_path)
    assert list(index["result"]) == ["clean_accuracy"]


def test_missing_recorded_result_is_none(tmp_path: Path) -> None:
    assert load_recorded("nothing", "paper", root=tmp_path) is None


def test_damaged_recorded_result_is_reported(tmp_path: Path) -> None:
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "bad.json").write_text("{")
    with pytest.raises(ArtifactCorrupt, match="bad.json is not valid JSON"):
        load_recorded("bad", "paper", root=tmp_path)


def test_unknown_profile_in_provenance_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        record_result("x", {}, {"profile": "huge"}, root=tmp_path)


@pytest.mark.parametrize("present", ["provenance", "result"])
def test_recorded_result_without_both_blocks_is_corrupt(tmp_path: Path, present: str) -> None:
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "half.json").write_text(json.dumps({present: {"profile": "paper"}}))
    with pytest.raises(ArtifactCorrupt, match="half.json lacks its provenance or result block"):
        load_recorded("half", "paper", root=tmp_path)


def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commit: str) -> Path:
    """A recorded paper result under ``tmp_path`` whose provenance names ``commit`` and one model."""
    monkeypatch.setattr(provenance_module, "git_commit", lambda: commit)
    models = [{"kind": "convnext", "seed": 0, "sha256": "0" * 64}]
    record_result("abc", {"verdict": "holds"}, provenance("paper", [0], "cpu", 60.0, models), root=tmp_path)
    return tmp_path


def test_caption_shows_the_full_commit_with_its_dirty_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = recorded(tmp_path, monkeypatch, f"{COMMIT}-dirty")
    assert f"commit {COMMIT}-dirty," in recorded_caption(load_recorded("abc", root=root))
    assert list(load_recorded_index(root)["commit"]) == [f"{COMMIT}-dirty"]


def test_result_from_a_clean_tree_and_the_current_library_has_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = recorded(tmp_path, monkeypatch, COMMIT)
    result = load_recorded("abc", root=root)
    assert announce_recorded("abc", "ch07_abc", root=root) == result
    assert capsys.readouterr().out == recorded_caption(result) + "\n"


def test_result_from_a_dirty_tree_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = recorded(tmp_path, monkeypatch, f"{COMMIT}-dirty")
    announce_recorded("abc", "ch07_abc", root=root)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        f"WARNING: recorded from a work tree with uncommitted changes (commit {COMMIT}-dirty): "
        "that commit alone may not reproduce it.",
        "To record it from the current code, commit and run `make chapter CHAPTER=ch07_abc PROFILE=paper`.",
    ]


def test_result_from_other_artifact_versions_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = recorded(tmp_path, monkeypatch, COMMIT)
    path = root / "paper" / "abc.json"
    payload = json.loads(path.read_text())
    payload["provenance"]["artifact_versions"]["abc"] = 0
    payload["provenance"]["artifact_versions"]["retired_kind"] = 3
    path.write_text(json.dumps(payload))
    announce_recorded("abc", "ch07_abc", root=root)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"WARNING: recorded with other artifact versions than this build's (abc 0 → {KINDS['abc'].version}, "
        "retired_kind 3 → gone): the code that produces them has changed since."
    )
    assert len(lines) == 3


def test_a_record_without_model_digests_or_versions_is_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = recorded(tmp_path, monkeypatch, COMMIT)
    prov = load_recorded("abc", root=root)["provenance"]
    assert provenance_warnings(prov) == []
    assert provenance_warnings({**prov, "models": []}) == [
        "WARNING: the record cites no model digests, so `nsdebook verify` cannot check its models."]
    del prov["artifact_versions"]
    assert provenance_warnings(prov) == ["WARNING: recorded before artifacts were versioned: it carries no artifact versions."]


def test_model_digests_name_kind_seed_and_weights() -> None:
    torch.manual_seed(0)
    run = TrainedModel("convnext", 3, nn.Linear(2, 2), pd.DataFrame(), {})
    assert model_digests({"convnext": [run]}) == [{"kind": "convnext", "seed": 3, "sha256": weights_digest(run.model)}]
    table = pd.DataFrame({"model": ["nsde"] * 3, "seed": [0, 0, 1], "training samples": [70, 70, 70],
                          "condition": ["clean", "noisy", "clean"], "weights sha256": ["a", "a", "b"]})
    assert table_digests(table, "training samples") == [
        {"kind": "nsde", "seed": 0, "n_train": 70, "sha256": "a"}, {"kind": "nsde", "seed": 1, "n_train": 70, "sha256": "b"}]


def test_recorded_results_are_strict_json(tmp_path) -> None:
    import json
    import math

    from nsdelib.book.provenance import record_result

    prov = {"profile": "paper", "commit": "abc"}
    path = record_result("r", {"a": [1.0, math.nan], "b": {"c": math.inf, "d": -math.inf}, "e": (2.0,)}, prov, root=tmp_path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    payload = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict constant {name}"))
    assert payload["result"] == {"a": [1.0, None], "b": {"c": None, "d": None}, "e": [2.0]}
    # a table whose columns are noise levels beside named columns (chapter 4's 2 × 2 design at paper)
    design = pd.DataFrame({"trained with noise": ["no", "yes"], 0.0: [0.9, 0.8], 0.05: [0.7, 0.75]})
    path = record_result("design", {"design": design.to_dict(orient="list")}, prov, root=tmp_path)
    assert json.loads(path.read_text())["result"]["design"] == {"trained with noise": ["no", "yes"], "0.0": [0.9, 0.8],
                                                                 "0.05": [0.7, 0.75]}


def test_a_missing_result_names_the_command_that_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert announce_recorded("calibration", "ch03_training", root=tmp_path, command="nsdebook calibrate") is None
    assert capsys.readouterr().out == "No paper-profile run has been recorded yet: run `nsdebook calibrate`.\n"
    assert announce_recorded("abc", "ch07_abc", root=tmp_path) is None
    assert "run `make chapter CHAPTER=ch07_abc PROFILE=paper`." in capsys.readouterr().out


def test_recording_stores_the_per_image_outcomes_beside_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    from nsdelib.book.profiles import get_profile
    from nsdelib.book.provenance import record_if_enabled

    monkeypatch.setattr(provenance_module, "record_result", functools.partial(record_result, root=tmp_path))
    ctx = SimpleNamespace(profile=get_profile("paper"), device=torch.device("cpu"))
    outcomes = pd.DataFrame({"seed": [0, 0, 1, 1], "level": [0.1] * 4, "example": [3, 7, 3, 7],
                             "correct": [1, 0, 1, 1]})
    path = record_if_enabled(ctx, "noise_robustness", {"value": 1}, [0, 1], 1.0, [], outcomes, ["seed", "level"])
    assert path == tmp_path / "paper" / "noise_robustness.json"
    stored = read_outcomes(outcomes_path(path))
    assert stored["correct"].astype(int).tolist() == [1, 0, 1, 1] and stored["example"].tolist() == [3, 7, 3, 7]
    quiet = SimpleNamespace(profile=get_profile("ci"), device=torch.device("cpu"))
    assert record_if_enabled(quiet, "noise_robustness", {"value": 1}, [0], 1.0, [], outcomes, ["seed"]) is None


def test_a_record_is_written_only_after_its_outcomes(tmp_path: Path) -> None:
    """The record marks the work done: when its outcomes cannot be written, no record is left to stop a rerun."""
    broken = pd.DataFrame({"seed": [0], "example": [3]})  # no outcome column
    with pytest.raises(ValueError, match="lacks the columns"):
        record_result("abc", {"value": 1}, provenance("paper", [0], "cpu", 1.0), tmp_path, broken, ["seed"])
    assert not (tmp_path / "paper" / "abc.json").exists()


def test_recording_stores_outcomes_of_any_value_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nsdelib.book.profiles import get_profile
    from nsdelib.book.provenance import record_if_enabled

    monkeypatch.setattr(provenance_module, "record_result", functools.partial(record_result, root=tmp_path))
    ctx = SimpleNamespace(profile=get_profile("paper"), device=torch.device("cpu"))
    outcomes = pd.DataFrame({"seed": [0, 0], "example": [3, 7], "value": [-0.5, 2.25]})
    path = record_if_enabled(ctx, "attribution_stability", {"value": 1}, [0], 1.0, [], outcomes, ["seed"],
                             outcome_value="value")
    pd.testing.assert_frame_equal(read_outcomes(outcomes_path(path)), outcomes)


def chapter_records(chapter: Path) -> dict[str, bool]:
    """Every ``record_if_enabled`` call of a chapter: its record's name, and whether it passes ``outcomes`` (by name,
    or as the seventh argument)."""
    calls = [node for node in ast.walk(ast.parse(chapter.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "record_if_enabled"]
    return {ast.literal_eval(call.args[1]): len(call.args) > 6 or any(k.arg == "outcomes" for k in call.keywords)
            for call in calls}


def test_every_chapter_record_stores_its_per_image_outcomes_beside_it(repo_root: Path) -> None:
    # Every verdict a chapter records is computed from per-image outcomes, so every record carries them; a record
    # that is not per-image by nature would be exempted here by name, with the reason.
    records = {name: stored for chapter in sorted((repo_root / "chapters").glob("ch*.py"))
               for name, stored in chapter_records(chapter).items()}
    assert {"clean_accuracy", "noise_robustness", "attribution_stability", "abc", "data_size"} <= records.keys()
    missing = sorted(name for name, stored in records.items() if not stored)
    assert not missing, f"chapter records without their per-image outcomes (pass outcomes=): {missing}"


def measured(row: dict, correct: list[bool]) -> MeasuredPoint:
    """A measured point whose Gaussian-noise outcomes on images 0, 1, … are ``correct``."""
    return MeasuredPoint(row, pd.DataFrame({"measure": "gaussian_0.2", "example": range(len(correct)),
                                            "correct": correct}))


def record_frontier_point(point: MeasuredPoint, root: Path) -> Path | None:
    return record_point(point, frontier_record_name(point.row), "paper", "cpu", root)


def test_a_sweep_point_is_named_by_its_line_and_reads_back_with_its_outcomes(tmp_path: Path) -> None:
    row = {"kind": "nsde", "seed": 0, "diffusion": "relative", "noise_shape": "white", "sigma": 0.4,
           "input_noise_std": None, "weights_sha256": "ef" * 32, "wall_time_s": 3.0, "clean": 0.7}
    name = sweep_record_name(row)
    assert name == "calibration/nsde-relative-white-sigma0.4-seed0"
    assert sweep_record_name({**row, "noise_shape": "coloured"}) != name, "the two lines at one σ are two records"
    assert sweep_record_name({**row, "kind": "convnext_noise", "input_noise_std": 0.1}) == (
        "calibration/convnext_noise-std0.1-seed0")
    assert recorded_point(name, "paper", tmp_path) is None
    record_point(measured(row, [True, False]), name, "paper", "cpu", tmp_path)
    point = recorded_point(name, "paper", tmp_path)
    assert point.row == row and point.outcomes["correct"].tolist() == [True, False]
    outcomes_path(tmp_path / "paper" / f"{name}.json").unlink()
    with pytest.raises(ArtifactCorrupt, match="no per-image outcomes"):
        recorded_point(name, "paper", tmp_path)


def test_each_frontier_point_is_recorded_once_per_seed_with_its_model_digest_and_outcomes(tmp_path: Path) -> None:
    row = {"kind": "nsde", "seed": 2, "sigma": 0.55, "input_noise_std": None, "weights_sha256": "ab" * 32,
           "wall_time_s": 12.0, "clean": 0.8}
    path = record_frontier_point(measured(row, [True, False, True]), tmp_path)
    assert path == tmp_path / "paper" / "frontier" / "nsde-sigma0.55-seed2.json"
    recorded = json.loads(path.read_text())
    assert recorded["result"]["clean"] == 0.8
    assert recorded["provenance"]["models"] == [{"kind": "nsde", "seed": 2, "sha256": "ab" * 32,
                                                 "setting": {"sigma": 0.55}}]
    assert read_outcomes(outcomes_path(path))["correct"].tolist() == [True, False, True]
    assert record_frontier_point(measured({**row, "clean": 0.1}, [False]), tmp_path) is None
    assert json.loads(path.read_text())["result"]["clean"] == 0.8, "a record is never overwritten"
    assert len(read_outcomes(outcomes_path(path))) == 3
    control = {**row, "kind": "convnext_noise", "sigma": None, "input_noise_std": 0.1}
    assert record_frontier_point(measured(control, [True]), tmp_path).name == (
        "convnext_noise-std0.1-seed2.json")


def test_recorded_frontier_points_load_as_one_table_with_their_outcomes(tmp_path: Path) -> None:
    assert load_frontier("paper", tmp_path).empty
    for seed in (0, 1):
        record_frontier_point(measured({"kind": "convnext", "seed": seed, "sigma": None, "input_noise_std": None,
                                        "weights_sha256": "cd" * 32, "wall_time_s": 1.0, "clean": 0.5 + seed / 10},
                                       [bool(seed), True]), tmp_path)
    frontier = load_frontier("paper", tmp_path)
    assert frontier.points[["seed", "clean"]].values.tolist() == [[0, 0.5], [1, 0.6]]
    assert {"commit", "device"} <= set(frontier.points.columns)
    assert frontier.points["record"].tolist() == ["frontier/convnext-seed0", "frontier/convnext-seed1"]
    outcomes = frontier.outcomes.set_index(["record", "example"])["correct"]
    assert outcomes.to_dict() == {("frontier/convnext-seed0", 0): False, ("frontier/convnext-seed0", 1): True,
                                  ("frontier/convnext-seed1", 0): True, ("frontier/convnext-seed1", 1): True}


def test_a_recorded_figure_is_drawn_from_the_record_or_names_the_command_in_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    glued: dict[str, tuple] = {}
    monkeypatch.setattr(provenance_module, "glue_figure", lambda name, fig, missing="": glued.update({name: (fig, missing)}))
    figures = {"fig_abc": lambda result: f"figure of {result['verdict']}"}
    assert announce_recorded("abc", "ch07_abc", figures, root=tmp_path) is None
    assert glued["fig_abc"] == (None, "*No `paper` run has been recorded yet: "
                                      "`make chapter CHAPTER=ch07_abc PROFILE=paper` records it.*")
    root = recorded(tmp_path, monkeypatch, COMMIT)
    assert announce_recorded("abc", "ch07_abc", figures, root=root)["result"] == {"verdict": "holds"}
    assert glued["fig_abc"][0] == "figure of holds"


def test_a_missing_figure_is_printed_text_and_a_drawn_one_is_displayed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import IPython.display
    import matplotlib.pyplot as plt

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    show_figure(None, "No frontier point has been recorded yet.")
    assert capsys.readouterr().out == "No frontier point has been recorded yet.\n" and not shown
    fig = plt.figure()
    show_figure(fig, "unused")
    assert shown == [fig] and capsys.readouterr().out == ""
    assert not plt.fignum_exists(fig.number), "a shown figure is closed, so the cell shows it once"


def test_a_recording_profile_records_each_size_study_once_and_reads_it_back(
    ci_graph: CiGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nsdelib.book import context as context_module
    from nsdelib.book.context import Context, setup
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation.data_size import OUTCOME_KEYS

    monkeypatch.setenv("NSDE_ARTIFACTS", str(ci_graph.store))
    ci = setup("ci", 0, "cpu")
    ctx = Context(ci.profile.replace(record_results=True), 0, ci.device, ArtifactStore(ci_graph.store), tmp_path)
    computed = ctx.data_size_study()
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.json"))
    expected = [f"ci/data_size/{kind}-seed{seed}.json" for kind in sorted(MODEL_KINDS) for seed in ctx.data_size_seeds]
    assert files == sorted([*expected, *(name.replace("data_size/", "data_size/outcomes/") for name in expected)]), files
    record = json.loads((tmp_path / expected[0]).read_text())
    sizes = sorted(set(computed.loc[computed["model"] == "convnext", "training samples"]))
    assert [model.get("n_train") for model in record["provenance"]["models"]] == [*sizes[:-1], None], \
        "each smaller size's model cited by its size, the full split's as chapter 3's own"

    def no_training(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a recorded size study was computed again")

    monkeypatch.setattr(context_module, "data_size_study", no_training)
    mark = ctx.store.ledger_position()
    read = ctx.data_size_study()
    recorded = sum(json.loads((tmp_path / name).read_text())["provenance"]["wall_time_s"] for name in expected)
    assert ctx.store.spent_since(mark).seconds == pytest.approx(recorded) and recorded > 0, \
        "a study read back from its records costs what the records say, not the seconds the reading took"
    order = [*OUTCOME_KEYS, "example"]
    pd.testing.assert_frame_equal(read.sort_values(order).reset_index(drop=True)[computed.columns],
                                  computed.sort_values(order).reset_index(drop=True), check_dtype=False)


def test_a_partial_wall_time_says_it_is_a_lower_bound(tmp_path: Path) -> None:
    from nsdelib.book.provenance import ComputeTime
    from nsdelib.common.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path)
    store.save(KINDS["dataset"], {"old": 1}, torch.ones(1))  # stored before build times were kept
    compute = ComputeTime(store)
    store.fetch(KINDS["dataset"], {"new": 1}, lambda: torch.ones(1))
    assert "wall_time_note" not in provenance("paper", [0], "cpu", compute)
    store.fetch(KINDS["dataset"], {"old": 1}, lambda: torch.ones(1))
    prov = provenance("paper", [0], "cpu", compute)
    assert prov["wall_time_note"].startswith("a lower bound: 1 of the 2 artifacts read") and prov["wall_time_s"] >= 0


def test_a_new_version_of_an_artifact_kind_flags_only_the_records_that_rest_on_it() -> None:
    current = dict(KINDS)
    prov = {"commit": COMMIT, "models": [{"kind": "nsde"}],
            "artifact_versions": {name: kind.version for name, kind in current.items()}}
    prov["artifact_versions"]["calibration_point"] -= 1
    assert provenance_warnings(prov, "clean_accuracy") == []
    assert provenance_warnings(prov, "adversarial/seed-0") == []
    for name in ("frontier/nsde-sigma0.7-seed0", "calibration", None):
        assert "calibration_point" in " ".join(provenance_warnings(prov, name)), name
    prov["artifact_versions"]["trained"] -= 1
    assert "trained" in " ".join(provenance_warnings(prov, "adversarial/seed-0")), "every record rests on the models"


def test_every_artifact_kind_is_declared_for_the_records_that_rest_on_it() -> None:
    from nsdelib.book.provenance import MODEL_ARTIFACTS, RECORD_KINDS

    declared = {*MODEL_ARTIFACTS, *(kind for kinds in RECORD_KINDS.values() for kind in kinds)}
    library = {path.stem for path in (Path(__file__).resolve().parent / "golden").glob("*.json")}  # one per kind
    assert declared == library, "a new artifact kind needs its place in RECORD_KINDS (and a stale one goes)"


def test_a_run_of_chapters_records_the_commit_it_started_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               repo_root: Path) -> None:
    """The records a run's first chapters write change tracked files: the later chapters still cite the run's start."""
    import os

    from nsdelib.book import runner
    from nsdelib.book.provenance import RUN_COMMIT_ENV, git_commit

    monkeypatch.delenv(RUN_COMMIT_ENV, raising=False)
    start = git_commit(repo_root)
    seen: list[str | None] = []
    monkeypatch.setattr(runner, "run_entry", lambda *args, **kwargs: seen.append(os.environ.get(RUN_COMMIT_ENV)))
    runner.run_book(["ch01_signals", "ch02_nsde_theory"], "ci", out=tmp_path, root=repo_root, progress=False)
    assert seen == [start, start] and RUN_COMMIT_ENV not in os.environ
    monkeypatch.setenv(RUN_COMMIT_ENV, "c0ffee")
    assert git_commit(repo_root) == "c0ffee" and provenance("paper", [0], "cpu", 1.0)["commit"] == "c0ffee"
