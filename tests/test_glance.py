"""The glance page's tables (recorded verdicts present, missing, dirty or stale; the setup comparison), and recorded
results judged again by today's rule."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nsdelib.book.profiles import get_profile
from nsdelib.book.provenance import announce_recorded, artifact_versions, load_recorded, provenance_warnings, record_result
from nsdelib.book.glance import (
    NOT_RECORDED,
    ONE_RUN,
    RECORD_PLANS,
    SOURCES,
    claims_at_a_glance,
    findings_at_a_glance,
    glance_markdown,
    provenance_table,
    relabel,
    setup_differences,
)
from nsdelib.report.paper import CLAIMS, PAPER_SETUP, get_claim
from nsdelib.training.trainer import TRAINED
from frontier_toys import frontier_outcomes, frontier_seed
from nsdelib.claims.c2_noise import matched_accuracy_verdicts
from nsdelib.report.stats import Reference, seed_effects_verdict, verdict_from_dict, verdicts_frame

RESULTS = Path(__file__).resolve().parent.parent / "results" / "paper"
COMMIT = "674d8cf01c34bde9555449e3d50ed13458469a7b"
MODELS = [{"kind": "convnext", "seed": 0, "sha256": "0" * 64}]


def prov(commit: str = COMMIT, versions: dict[str, int] | None = None) -> dict[str, Any]:
    """A provenance block as ``book.provenance.provenance`` writes it, current unless told otherwise."""
    return {"profile": "paper", "seeds": [0, 1, 2], "device": "CPU x86_64, 2 threads", "wall_time_s": 600.0,
            "commit": commit, "date": "2026-11-22T05:07:46+00:00", "models": MODELS,
            "artifact_versions": versions or artifact_versions(), "versions": {}}


def verdict(claim: str, effects: tuple[float, ...] = (0.04, 0.05, 0.045)) -> dict[str, Any]:
    return seed_effects_verdict(effects, get_claim(claim).reference, comparison="A − B").to_dict()


def glance(root: Path):
    load = functools.partial(load_recorded, profile="paper", root=root)
    return claims_at_a_glance(load, provenance_warnings)


def test_nothing_recorded_gives_a_row_per_claim_with_the_command_and_no_number(tmp_path: Path) -> None:
    table = glance(tmp_path)
    assert list(table.index) == [c.id for c in CLAIMS]
    for source in SOURCES:
        row = table.loc[source.claim]
        assert row["verdict"] == NOT_RECORDED and row["status"] == NOT_RECORDED
        command = ("nsdebook precompute --profile paper --stage attack" if source.claim == "C3"
                   else f"make chapter CHAPTER={source.chapter} PROFILE=paper")
        assert row["this book (95 % interval)"] == f"{NOT_RECORDED}: run `{command}`"
        assert math.isnan(row["MDE"]) and row["seeds"] == 0 and row["commit"] == "–"


def test_a_clean_current_record_shows_its_verdict_interval_mde_and_provenance(tmp_path: Path) -> None:
    c1 = verdict("C1")
    record_result("clean_accuracy", {"verdict": c1}, prov(), root=tmp_path)
    row = glance(tmp_path).loc["C1"]
    assert row["verdict"] == c1["label"] == "reproduced"
    assert row["this book (95 % interval)"] == f"{c1['effect']:+.3g} [{c1['low']:+.3g}, {c1['high']:+.3g}]"
    assert row["MDE"] == pytest.approx(c1["mde"]) and row["seeds"] == 3
    assert row["reference"] == "+0.0432 (paper's figure)"
    assert row["commit"] == COMMIT and row["device"] == "CPU x86_64, 2 threads"
    assert row["wall time (min)"] == pytest.approx(10.0)
    assert row["status"] == "clean commit, current code"
    assert row["result file"] == "results/paper/clean_accuracy.json"


def test_a_wall_time_that_is_a_lower_bound_says_so_in_the_status(tmp_path: Path) -> None:
    record_result("clean_accuracy", {"verdict": verdict("C1")},
                  {**prov(), "wall_time_note": "a lower bound: 1 of the 1 artifacts read"}, root=tmp_path)
    row = glance(tmp_path).loc["C1"]
    assert row["status"] == "clean commit, current code; wall time a lower bound: 1 of the 1 artifacts read"


def test_dirty_and_stale_records_are_flagged(tmp_path: Path) -> None:
    record_result("clean_accuracy", {"verdict": verdict("C1")}, prov(commit=COMMIT + "-dirty"), root=tmp_path)
    record_result("noise_robustness", {"verdict": verdict("C2")}, prov(versions={**artifact_versions(), "trained": 0}), root=tmp_path)
    table = provenance_table(glance(tmp_path))
    assert table.loc["C1", "commit"] == COMMIT + "-dirty", "the full commit, suffix included"
    assert "uncommitted changes" in table.loc["C1", "status"]
    assert f"other artifact versions than this build's (trained 0 → {TRAINED.version})" in table.loc["C2", "status"]
    assert "uncommitted" not in table.loc["C2", "status"]


def test_each_claim_is_read_from_its_own_headline_verdict(tmp_path: Path) -> None:
    opposite = verdict("C3", (-0.2, -0.25, -0.22))
    record_result("adversarial", {"verdicts": {"APGD-CE": verdict("C3"), "worst case": opposite}}, prov(),
                  root=tmp_path)
    record_result("abc", {"verdict": verdict("C4", (0.1, 0.11, 0.1)), "verdict_ensemble": opposite}, prov(),
                  root=tmp_path)
    c5 = verdict("C5", (0.2, 0.25, 0.22))
    record_result("attribution_stability", {"verdicts": {"0.02": opposite, "0.1": c5, "0.05": opposite}}, prov(),
                  root=tmp_path)
    table = glance(tmp_path)
    assert table.loc["C3", "verdict"] == "opposite", "C3 is judged against the worst case over all attacks"
    assert table.loc["C4", "verdict"] == "reproduced", "C4 is judged on its headline verdict"
    assert table.loc["C5", "verdict"] == c5["label"] == "reproduced", "C5 at its largest perturbation level"
    assert table.loc["C5", "this book (95 % interval)"].endswith(" at level 0.1")


def test_a_record_without_a_verdict_or_an_interval_says_why(tmp_path: Path) -> None:
    note = "The baseline kept more than 5% robust accuracy at every headline L2 ε"
    record_result("adversarial", {"verdicts": {}, "note": note}, prov(), root=tmp_path)
    record_result("clean_accuracy", {"verdict": verdict("C1", (0.04,))}, prov(), root=tmp_path)
    table = glance(tmp_path)
    assert table.loc["C3", "verdict"] == "no verdict" and note in table.loc["C3", "this book (95 % interval)"]
    assert table.loc["C1", "verdict"] == "inconclusive"
    assert "no interval: one seed" in table.loc["C1", "this book (95 % interval)"]


def test_the_markdown_table_links_every_claim_to_its_chapter(tmp_path: Path) -> None:
    record_result("clean_accuracy", {"verdict": verdict("C1")}, prov(), root=tmp_path)
    markdown = glance_markdown(glance(tmp_path))
    lines = markdown.splitlines()
    assert len(lines) == 2 + len(CLAIMS)
    assert "{doc}`chapter 3 <ch03_training>`" in lines[2] and "**reproduced**" in lines[2]
    assert all(f"{{doc}}`chapter {get_claim(s.claim).chapter} <{s.chapter}>`" in markdown for s in SOURCES)


def test_sources_name_the_chapter_that_records_their_claim(repo_root: Path) -> None:
    assert [s.claim for s in SOURCES] == [c.id for c in CLAIMS]
    for source in SOURCES:
        assert source.chapter.startswith(f"ch0{get_claim(source.claim).chapter}_"), source
        chapter = (repo_root / "chapters" / f"{source.chapter}.py").read_text()
        if source.claim == "C3":  # recorded seed by seed (book.adversarial_records), merged when read
            assert "ctx.adversarial_seed(seed)" in chapter and "merged_adversarial(" in chapter
            continue
        assert f'record_if_enabled(ctx, "{source.result}"' in chapter, f"{source.chapter} records no {source.result}"
        # the record's schema is the chapter's or its claim module's (nsdelib/claims/)
        schema = chapter + "".join(p.read_text() for p in (repo_root / "nsdelib" / "claims").glob("c[1-5]_*.py"))
        assert f'"{source.primary[0]}":' in schema, f"{source.chapter} records no {source.primary[0]!r} in {source.result}"


def test_the_setup_comparison_reads_the_book_side_from_the_profile() -> None:
    paper = get_profile("paper")
    table = setup_differences(paper)
    assert list(table.index) == list(PAPER_SETUP) and (table != "").all().all()
    assert f"{paper.data.n_samples:,} spectrograms" in table.loc["data", "this book"]
    assert f"σ = {paper.model.sde.sigma:g}" in table.loc["σ and noise shape", "this book"]
    assert f"{paper.data.image_rows}×{paper.data.image_cols}" in table.loc["image size", "this book"]
    assert "4.32 points" in table.loc["σ and noise shape", "this book"]
    fewer = setup_differences(get_profile("paper", n_seeds=3))
    assert fewer.loc["seeds", "this book"].startswith("3 seeds")
    assert fewer.drop(index="seeds").equals(table.drop(index="seeds"))


def test_a_record_is_judged_again_by_todays_rule_with_its_flag_and_one_runs_interval(tmp_path: Path) -> None:
    # C1 as recorded under the old rule: +2.03 [+0.94, +3.13] points read "direction holds, size differs", but the
    # paper's single run (4.32) lies inside this setup's prediction interval for one run
    old = {**verdict("C1"), "label": "direction holds, size differs", "effect": 0.020346, "low": 0.009384,
           "high": 0.031308, "n_seeds": 5, "n_pairs": 7520}
    for field in ("df", "standard_error", "prediction_low", "prediction_high", "prediction_df", "design"):
        old.pop(field)
    record_result("clean_accuracy", {"verdict": old}, prov(), root=tmp_path)
    c4 = {**verdict("C4"), "effect": -0.0373, "low": -0.128, "high": 0.0537, "n_seeds": 5}
    for field in ("df", "standard_error"):
        c4.pop(field)
    record_result("abc", {"verdict": c4}, prov(), root=tmp_path)
    table = glance(tmp_path)
    assert table.loc["C1", "verdict"] == "reproduced" and not table.loc["C1", "underpowered"]
    assert table.loc["C1", ONE_RUN] == "yes: the paper's +0.0432 is inside [-0.00651, +0.0472]"
    assert table.loc["C4", "verdict"] == "inconclusive" and table.loc["C4", "underpowered"]
    assert table.loc["C2", ONE_RUN] == "–" and not table.loc["C2", "underpowered"]
    markdown = glance_markdown(table)
    assert "**inconclusive** · underpowered" in markdown and ONE_RUN in markdown.splitlines()[0]
    assert "| **reproduced** " in markdown


def test_findings_say_how_to_record_what_is_missing_and_show_recorded_design_rows() -> None:
    missing = findings_at_a_glance(None, None, "nsdebook precompute --profile paper --stage frontier")
    assert list(missing["verdict"]) == [NOT_RECORDED, NOT_RECORDED]
    assert "--stage frontier" in missing.iloc[0]["this book (95 % interval)"]
    rng = np.random.default_rng(0)
    control = [(0.1, 0.90, 0.80), (0.4, 0.80, 0.90)]
    points = pd.DataFrame([row for seed in range(4)
                           for row in frontier_seed(seed, 0.85, 0.7 + 0.01 * rng.standard_normal(), control)])
    matched = matched_accuracy_verdicts(points, frontier_outcomes(points, rng), 0.43)
    design = verdicts_frame({("test-time noise, NSDE", 0.5): seed_effects_verdict([0.1, 0.12, 0.11], Reference(
        0.02, "smallest effect of interest"))}, ["effect of", "Gaussian std"])
    record = {"result": {"design_verdicts": design.reset_index().to_dict(orient="list")}}
    found = findings_at_a_glance(matched, record, "unused")
    assert found.loc["NSDE − control at matched clean accuracy (gaussian_0.05)", "verdict"] == "opposite"
    assert found.loc["test-time noise, NSDE, Gaussian std 0.5", "verdict"].startswith("reproduced")
    assert found.loc["test-time noise, NSDE, Gaussian std 0.5", "seeds"] == 3


def recorded(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_relabel_judges_the_recorded_noise_sweep_by_todays_rule() -> None:
    # the noise sweep as recorded at commit 3ea5823 under the old rule (its verdicts only), kept as a fixture since
    # the record itself was made again under today's rule
    record = json.loads((Path(__file__).resolve().parent / "fixtures" / "noise_robustness_before_the_rule.json")
                        .read_text())
    again = relabel(record, RECORD_PLANS["noise_robustness"])
    assert record["result"]["verdict"]["label"] == "not reproduced" and "underpowered" not in record["result"]["verdict"]
    assert again["result"]["verdict"]["label"] == "not reproduced" and again["result"]["verdict"]["underpowered"]
    assert again["result"]["verdict"]["role"] == "primary"
    by_level = pd.DataFrame(again["result"]["by_level"])
    old = pd.DataFrame(record["result"]["by_level"])
    assert len(by_level) == len(old) == 32 and list(old.columns) == [c for c in by_level.columns if c in old.columns]
    primary = (by_level["models"] == "NSDE ensemble − ConvNeXt (C2)") & np.isclose(by_level["level"], 0.05)
    assert by_level.loc[primary, "role"].tolist() == ["primary"], "the row that repeats C2's verdict stays primary"
    exploratory = by_level[~primary]
    assert (exploratory["role"] == "exploratory").all() and (exploratory["family"] == "C2 levels").all()
    two_sided = 2 * np.minimum(exploratory["p_value"], 1 - exploratory["p_value"])
    assert (exploratory["p_holm"] >= two_sided - 1e-12).all() and exploratory["p_holm"].notna().all()
    # the two rows that read "reproduced" only because their interval reached the 2 points of interest
    for models, level in (("NSDE ensemble − ConvNeXt + input noise", 0.0), ("NSDE ensemble − ConvNeXt (C2)", 1.0)):
        row = (old["models"] == models) & np.isclose(old["level"], level)
        assert old.loc[row, "label"].item() == "reproduced" and by_level.loc[row, "label"].item() != "reproduced"
        alone = verdict_from_dict(old.loc[row].iloc[0].to_dict())
        assert alone.label == "direction holds, size not shown"
    assert record["result"]["by_level"]["label"] == old["label"].tolist(), "the record itself is left as it was"


def test_a_chapter_shows_its_recorded_verdicts_judged_by_todays_rule(tmp_path: Path) -> None:
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "noise_robustness.json").write_text((RESULTS / "noise_robustness.json").read_text())
    shown = pd.DataFrame(announce_recorded("noise_robustness", "ch04_noise_robustness", root=tmp_path)["result"][
        "by_level"])
    assert (shown["role"] == "exploratory").sum() == len(shown) - 1 and set(shown["family"]) >= {"C2 levels"}
    assert "reproduced" not in shown.loc[np.isclose(shown["level"], 1.0), "label"].tolist()


def test_relabel_puts_the_c5_controls_in_one_family_and_the_largest_level_first() -> None:
    record = recorded("attribution_stability")
    again = relabel(record, RECORD_PLANS["attribution_stability"])["result"]
    assert again["verdicts"]["0.1"]["role"] == "primary" and again["verdicts"]["0.02"]["role"] == "exploratory"
    controls = pd.DataFrame(again["controls"])
    assert (controls["role"] == "primary").sum() == 1, "the first control at the largest level is the primary verdict"
    assert set(controls.loc[controls["role"] == "exploratory", "family"]) == {"C5 controls"}
    literal = pd.DataFrame(again["controls_literal"])
    assert (literal["role"] == "exploratory").all()
    # a test stored twice (a level's verdict and its control row) is one test, judged once
    as_reported = literal[literal["control"] == literal["control"].iloc[0]].set_index("level")
    for level, stored in again["verdicts_literal"].items():
        assert stored["label"] == as_reported.loc[float(level), "label"]
        assert stored["p_holm"] == as_reported.loc[float(level), "p_holm"]


def test_relabel_needs_no_primary_and_keeps_what_it_does_not_know() -> None:
    record = recorded("data_size")
    again = relabel(record, RECORD_PLANS["data_size"])["result"]
    assert set(again["verdicts"]["role"]) == {"exploratory"} and set(again["verdicts"]["family"]) == {"size study"}
    assert again["fractions"] == record["result"]["fractions"]
    stored = recorded("clean_accuracy")["result"]["verdict"]
    clean = relabel(recorded("clean_accuracy"), RECORD_PLANS["clean_accuracy"])["result"]["verdict"]
    assert stored["role"] == "primary", "recorded under the current rule: relabelling it changes nothing"
    for field in ("label", "paper_figure_in_prediction", "low", "high", "underpowered"):
        assert clean[field] == stored[field], field
    json.dumps(clean, allow_nan=False)
