"""Per-image outcomes: the compact store beside a record, the simulation with a known truth, and the worked examples
of the verdict rule."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nsdelib.report.outcomes import (
    RULE_EXAMPLES,
    long_measures,
    outcomes_frame,
    outcomes_path,
    read_outcomes,
    rule_examples,
    simulate_paired_outcomes,
    write_outcomes,
)


def sweep_outcomes(n_images: int = 37) -> pd.DataFrame:
    """A long table like a noise sweep's: noise, level, mode, seed, example, correct (seed 1 on other images)."""
    rng = np.random.default_rng(0)
    frames = []
    for level in (0.0, 0.05):
        for mode in ("ConvNeXt", "NSDE (ensemble)"):
            for seed in (0, 1):
                images = np.arange(n_images) + 100 * seed
                frames.append(pd.DataFrame({"noise": "gaussian", "level": level, "mode": mode, "seed": seed,
                                            "example": images[::-1], "correct": rng.random(n_images) < 0.7}))
    return pd.concat(frames, ignore_index=True)


def test_outcomes_round_trip_exactly_as_bits(tmp_path: Path) -> None:
    table = sweep_outcomes()
    path = write_outcomes(tmp_path / "outcomes" / "noise_robustness.json", table, keys=["noise", "level", "mode", "seed"])
    payload = json.loads(path.read_text())
    assert payload["encoding"] == "bits" and len(payload["example_sets"]) == 2, "one image list per seed, shared"
    assert len(payload["groups"]) == 8
    back = read_outcomes(path)
    expected = table.sort_values(["level", "mode", "seed", "example"], kind="stable").reset_index(drop=True)
    got = back.sort_values(["level", "mode", "seed", "example"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert back["correct"].dtype == bool and list(back.columns) == list(table.columns)
    assert not list(tmp_path.glob("outcomes/.*.tmp")), "written through a temporary file, renamed into place"


def test_scores_are_stored_as_float32_and_zeros_and_ones_as_bits(tmp_path: Path) -> None:
    table = sweep_outcomes(5).assign(log_change=lambda t: np.linspace(-3, 1, len(t)))
    table.loc[3, "log_change"] = math.nan
    path = write_outcomes(tmp_path / "x.json", table, keys=["level", "mode", "seed"], value="log_change")
    back = read_outcomes(path)
    assert json.loads(path.read_text())["encoding"] == "float32"
    merged = table.merge(back, on=["level", "mode", "seed", "example"], suffixes=("", "_read"))
    assert np.allclose(merged["log_change"], merged["log_change_read"], rtol=1e-6, equal_nan=True)
    as_int = table.assign(correct=table["correct"].astype(int))
    assert json.loads(write_outcomes(tmp_path / "y.json", as_int, keys=["level", "mode", "seed"]).read_text())[
        "encoding"] == "bits"


def test_outcome_tables_are_checked_before_they_are_written(tmp_path: Path) -> None:
    table = sweep_outcomes(4)
    with pytest.raises(ValueError, match=r"lacks the columns \['run'\]"):
        write_outcomes(tmp_path / "x.json", table, keys=["run"])
    with pytest.raises(ValueError, match="more than one outcome per"):
        write_outcomes(tmp_path / "x.json", table, keys=["mode", "seed"])
    with pytest.raises(ValueError, match="integer image indices"):
        write_outcomes(tmp_path / "x.json", table.assign(example=table["example"] + 0.5),
                       keys=["level", "mode", "seed"])
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a version-1"):
        read_outcomes(tmp_path / "other.json")


def test_several_measures_per_image_are_stacked_into_one_file_without_undefined_values(tmp_path: Path) -> None:
    table = pd.DataFrame({"model": ["a", "a", "b", "b"], "example": [4, 9, 4, 9], "correct": [True, False, True, True],
                          "score": np.array([0.25, 0.5, -math.inf, 0.75], dtype=np.float32),
                          "spread": [0.1, 0.2, math.nan, math.nan]})
    long = long_measures(table, ["model"], ["correct", "score", "spread"])
    assert list(long.columns) == ["model", "measure", "example", "value"] and long["value"].dtype == float
    assert len(long) == 4 + 4 + 2, "model b's undefined spreads are left out"
    assert long.set_index(["model", "measure", "example"])["value"].loc[("a", "correct", 9)] == 0.0
    back = read_outcomes(write_outcomes(tmp_path / "x.json", long, keys=["model", "measure"], value="value"))
    pd.testing.assert_frame_equal(back, long)


def test_outcomes_live_one_folder_below_their_record() -> None:
    record = Path("results/paper/noise_robustness.json")
    assert outcomes_path(record) == Path("results/paper/outcomes/noise_robustness.json")


def test_a_paper_scale_sweep_fits_in_git() -> None:
    # 3 noises × 8 levels × 5 modes × 5 seeds × 1,504 images, as the paper profile's noise sweep
    rng = np.random.default_rng(1)
    n = 1504
    rows = [{"noise": noise, "level": level, "mode": mode, "seed": seed}
            for noise in range(3) for level in range(8) for mode in range(5) for seed in range(5)]
    keys = pd.DataFrame(rows).loc[lambda t: t.index.repeat(n)].reset_index(drop=True)
    table = keys.assign(example=np.tile(np.arange(n), len(rows)), correct=rng.random(len(keys)) < 0.8)
    with tempfile.TemporaryDirectory() as folder:
        size = write_outcomes(Path(folder) / "sweep.json", table, keys=["noise", "level", "mode", "seed"]).stat().st_size
    assert size < 200_000, f"{size} bytes for {len(table)} outcomes"


def test_simulated_outcomes_have_the_known_effect_and_stay_in_range() -> None:
    a, b = simulate_paired_outcomes(0.03, n_seeds=4, n_images=3000, n_sims=20, rng=np.random.default_rng(2))
    assert a.shape == b.shape == (20, 4, 3000) and a.dtype == bool
    difference = (a.astype(float) - b).mean()
    assert difference == pytest.approx(0.03, abs=0.005)
    agreement = (a == b).mean()
    assert 0.8 < agreement < 0.95, "most pairs share their draw, so paired models mostly agree"
    with pytest.raises(ValueError, match="leave \\[0, 1\\]"):
        simulate_paired_outcomes(0.1, n_seeds=2, n_images=10, rng=np.random.default_rng(0), image_spread=0.3)
    frame = outcomes_frame(a[0], b[0])
    assert list(frame.columns) == ["model", "seed", "example", "correct"] and len(frame) == 2 * 4 * 3000


def test_every_worked_example_shows_the_label_it_is_named_for() -> None:
    examples = rule_examples()
    expected = {
        "reproduced (smallest effect of interest)": "reproduced",
        "reproduced (the paper's figure inside one run's prediction interval)": "reproduced",
        "direction holds, size differs": "direction holds, size differs",
        "direction holds, size not shown": "direction holds, size not shown",
        "not reproduced": "not reproduced",
        "opposite": "opposite",
        "inconclusive, underpowered": "inconclusive · underpowered",
        "Holm: the real effect, judged alone": "direction holds, size not shown",
        "Holm: the real effect, Holm-adjusted in its family":
            "inconclusive · exploratory (Holm within the Holm example)",
    }
    assert {name: verdict.flags for name, verdict in examples.items()} == expected
    assert len(RULE_EXAMPLES) == 7
    paper = examples["reproduced (the paper's figure inside one run's prediction interval)"]
    assert paper.high < paper.reference, "the mean's interval misses the figure; one run's interval holds it"
    holm = examples["Holm: the real effect, Holm-adjusted in its family"]
    alone = examples["Holm: the real effect, judged alone"]
    assert alone.p_value < 0.025 and holm.p_holm > 0.05 and (holm.low, holm.high) == (alone.low, alone.high)
