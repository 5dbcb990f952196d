"""Chapter 5's protocol recorded seed by seed: merging the seed files gives the record computed in one go, and a
seed whose models are not the book's is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_claims import attack_outcomes

from nsdelib.book.adversarial_records import (c3_record, merged_adversarial, merged_provenance, record_adversarial_seed,
                                             seed_record_name)
from nsdelib.book.profiles import get_profile
from nsdelib.book.provenance import model_record_name, provenance, record_result
from nsdelib.claims.c3_attacks import WORST, accuracy_table, adversarial_claim
from nsdelib.common import ArtifactCorrupt
from nsdelib.models.inference import headline_mode

SDE = get_profile("paper").model.sde
NSDE, CONVNEXT = headline_mode("nsde", SDE).name, headline_mode("convnext", SDE).name


def outcomes() -> pd.DataFrame:
    """Two models' per-image attack rows for three seeds, named as the paper profile names its modes."""
    table = attack_outcomes({WORST: 0.3, "APGD-CE": 0.5}).replace({"mode": {"NSDE": NSDE, "ConvNeXt": CONVNEXT}})
    shares = table["correct"] * table["mode"].map({NSDE: 0.75, CONVNEXT: 1.0})  # the NSDE: 3 of 4 draws
    return table.assign(model=table["mode"], correct=shares, delta_norm=0.5, draws=table["mode"].map({NSDE: 4, CONVNEXT: 1}))


def digest(kind: str, seed: int) -> str:
    return f"{kind}{seed}".ljust(64, "0")


def record_models(root: Path, seeds: range) -> None:
    for seed in seeds:
        for kind in ("nsde", "convnext"):
            models = [{"kind": kind, "seed": seed, "sha256": digest(kind, seed)}]
            record_result(model_record_name(kind, seed), {}, provenance("paper", [seed], "cpu", 1.0, models), root)


def record_seeds(root: Path, table: pd.DataFrame, tamper: int | None = None) -> None:
    for seed, rows in table.groupby("seed"):
        models = [{"kind": kind, "seed": seed, "sha256": digest(kind, seed) if seed != tamper else "f" * 64}
                  for kind in ("nsde", "convnext")]
        record_adversarial_seed(int(seed), rows, None, models, "paper", "cpu", 60.0, root)


def test_merged_seed_records_give_the_verdict_computed_in_one_go(tmp_path: Path) -> None:
    table = outcomes()
    record_models(tmp_path, range(3))
    record_seeds(tmp_path, table)
    merged, provenances = merged_adversarial("paper", tmp_path)
    assert [p["seeds"] for p in provenances] == [[0], [1], [2]]
    at_once = adversarial_claim(table, NSDE, CONVNEXT)
    from_seeds = adversarial_claim(merged, NSDE, CONVNEXT)
    assert from_seeds.verdict.to_dict() == at_once.verdict.to_dict()
    columns = ["model", "seed", "attack", "accuracy", "n_samples", "mc_se"]
    merged_table, table_at_once = accuracy_table(merged), accuracy_table(table)
    assert (table_at_once["mc_se"] > 0).any(), "the NSDE's shares carry a Monte-Carlo error"
    pd.testing.assert_frame_equal(merged_table[columns], table_at_once[columns], check_dtype=False)
    assert merged_table["max_delta_norm"].isna().all(), "norms stay in the seed files' own tables"
    record = c3_record("paper", tmp_path)
    assert record["result"]["verdicts"][WORST] == at_once.verdict.to_dict()
    assert record["provenance"]["seeds"] == [0, 1, 2] and record["provenance"]["wall_time_s"] == 180.0


def test_a_seed_is_recorded_once_and_a_run_adds_only_the_missing_ones(tmp_path: Path) -> None:
    table = outcomes()
    record_models(tmp_path, range(3))
    record_seeds(tmp_path, table[table["seed"] == 0])
    first = (tmp_path / "paper" / f"{seed_record_name(0)}.json").read_text()
    assert record_adversarial_seed(0, table[table["seed"] == 0].assign(correct=0.0), None, [], "paper", "cpu", 1.0,
                                   tmp_path) is None
    assert (tmp_path / "paper" / f"{seed_record_name(0)}.json").read_text() == first
    record_seeds(tmp_path, table)
    assert len(merged_adversarial("paper", tmp_path)[1]) == 3


def test_a_seed_file_whose_model_digest_differs_is_refused_by_name(tmp_path: Path) -> None:
    record_models(tmp_path, range(3))
    record_seeds(tmp_path, outcomes(), tamper=1)
    with pytest.raises(ArtifactCorrupt, match=r"seed-1\.json attacked nsde seed 1 with weights ffffffffffff…, but the "
                                              r"book's model \(models/nsde-seed1\.json\)"):
        merged_adversarial("paper", tmp_path)


def test_no_seed_recorded_means_no_c3_record(tmp_path: Path) -> None:
    assert c3_record("paper", tmp_path) is None


def test_merged_seeds_keep_the_note_of_a_wall_time_that_is_a_lower_bound() -> None:
    exact = provenance("paper", [0], "cpu", 60.0)
    bound = {**provenance("paper", [1], "cpu", 0.5), "wall_time_note": "a lower bound: 3 of the 3 artifacts read"}
    merged = merged_provenance([exact, bound, {**bound, "seeds": [2]}])
    assert merged["wall_time_s"] == 61.0 and merged["seeds"] == [0, 1, 2]
    assert merged["wall_time_note"] == "a lower bound: 3 of the 3 artifacts read"
    assert "wall_time_note" not in merged_provenance([exact])


def test_a_seed_record_counts_the_time_its_attacks_took_where_they_ran(ci_graph, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Attacked by the task graph's workers and recorded by a reader: the wall time is the attacks', not the read's."""
    import json
    import time

    from nsdelib.book.context import Context, setup
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.models.registry import MODEL_KINDS

    monkeypatch.setenv("NSDE_ARTIFACTS", str(ci_graph.store))
    ci = setup("ci", 0, "cpu")
    ctx = Context(ci.profile.replace(record_results=True), 0, ci.device, ArtifactStore(ci_graph.store), tmp_path)
    start = time.perf_counter()
    ctx.adversarial_seed(0)
    reading = time.perf_counter() - start
    runs = [ctx.train(kind, 0, progress=False) for kind in MODEL_KINDS]
    mark = ctx.store.ledger_position()
    for run in runs:
        ctx.attack_sweep(run), ctx.attack_convergence(run)
    built, unknown, _ = ctx.store.spent_since(mark)
    assert unknown == 0, "the workers' artifacts keep how long they took to build"
    wall = json.loads((tmp_path / "ci" / f"{seed_record_name(0)}.json").read_text())["provenance"]["wall_time_s"]
    assert wall == pytest.approx(built, abs=0.01) and wall > reading  # provenance keeps 0.01 s
