"""The build's headline file: what each chapter adds, how a stale file is replaced, and what the glance page shows;
and the default build's recorded copy held to what a miniature of the paper must show."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from nsdelib.book.context import setup
from nsdelib.book.headline import (
    HEADLINE_ENV,
    NO_VERDICT,
    fresh_versus_recorded,
    headline_beside_recorded,
    load_headline,
    profile_digest,
    record_headline,
    this_build_headline,
)
from nsdelib.book.glance import SOURCES, claim_row
from nsdelib.book.profiles import get_profile
from nsdelib.book.runner import REPO_ROOT
from nsdelib.report.stats import Verdict

QUICK_COPY = REPO_ROOT / "results" / "quick" / "build" / "headline.json"


def verdict(label: str = "reproduced", effect: float = 0.02, low: float = 0.01, high: float = math.nan) -> Verdict:
    return Verdict(label, "NSDE − ConvNeXt", effect, low, high, 0.01, 0.02, "smallest effect of interest", 0.01, 3,
                   300, (0.02, 0.02, 0.02))


def test_nothing_is_written_outside_a_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HEADLINE_ENV, raising=False)
    assert record_headline(setup("ci", 0, "cpu"), "C1", verdict()) is None
    assert this_build_headline() is None


def test_chapters_add_their_claims_and_other_settings_start_afresh(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "headline.json"
    monkeypatch.setenv(HEADLINE_ENV, str(path))
    ctx = setup("ci", 0, "cpu")
    record_headline(ctx, "C1", verdict(), {"convnext_accuracy": 0.8, "curve": {0.5: 0.3, 1.0: math.nan}})
    record_headline(ctx, "C3", None, note="no test point")
    headline = this_build_headline()
    assert headline is not None and headline["profile"] == "ci" and set(headline["claims"]) == {"C1", "C3"}
    c1 = headline["claims"]["C1"]
    assert c1["seeds"] == [0, 1] and c1["value"] == 0.02 and c1["interval"] == [0.01, None], "NaN is stored as null"
    assert c1["figures"] == {"convnext_accuracy": 0.8, "curve": {"0.5": 0.3, "1.0": None}}
    assert headline["claims"]["C3"]["label"] == NO_VERDICT and headline["claims"]["C3"]["note"] == "no test point"
    json.loads(path.read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    other = setup("quick", 0, "cpu")
    record_headline(other, "C2", verdict())
    assert set(load_headline(path)["claims"]) == {"C2"}, "a file of other settings is replaced, not merged"
    assert load_headline(path)["profile_digest"] == profile_digest(other.profile)


def _record_many(path: str, prefix: str, times: int, start: Any) -> None:
    """One chapter's kernel: ``times`` claims named ``prefix`` and a number, each recorded once, after ``start``."""
    import os

    os.environ[HEADLINE_ENV] = path
    ctx = SimpleNamespace(profile=get_profile("ci"), seeds=[0, 1])  # what a chapter's context gives the headline
    start.wait()
    for index in range(times):
        record_headline(ctx, f"{prefix}{index}", verdict())


def test_chapters_running_side_by_side_keep_each_others_claims(tmp_path: Path) -> None:
    path, times = str(tmp_path / "headline.json"), 150
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    writers = [spawn.Process(target=_record_many, args=(path, prefix, times, start)) for prefix in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    claims = load_headline(Path(path))["claims"]
    assert len(claims) == 2 * times, f"{2 * times - len(claims)} claims lost by writes that overlapped"


def test_an_unreadable_headline_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "headline.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="headline.json is unreadable"):
        load_headline(bad)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="does not name a profile"):
        load_headline(bad)


def test_the_glance_table_puts_this_build_beside_the_record() -> None:
    glance = pd.DataFrame({"this book (95 % interval)": ["+0.02 [0.01, 0.03]", "not recorded"],
                           "verdict": ["reproduced", "not recorded"], "recorded": [True, False]},
                          index=pd.Index(["C1", "C2"], name="claim"))
    fresh = {"claims": {"C1": {"value": -0.01, "interval": [-0.03, 0.01], "label": "inconclusive",
                               "flags": "inconclusive", "note": ""}}}
    table = headline_beside_recorded(fresh, glance)
    assert table.loc["C1", "this build (95 % interval)"] == "-0.01 [-0.03, +0.01]"
    assert table.loc["C1", "same label"] == "no"
    assert table.loc["C2", "this build (95 % interval)"] == "–" and table.loc["C2", "same label"] == "–"


@pytest.mark.skipif(not QUICK_COPY.is_file(), reason="no recorded copy of the default build's headline file")
def test_the_default_build_is_a_faithful_miniature() -> None:
    """The recorded copy of a `make book` at quick: models that learn, an NSDE that stays stochastic without drowning
    its signal, and attack curves with points between the extremes."""
    headline = load_headline(QUICK_COPY)
    assert headline["profile"] == "quick"
    assert headline["profile_digest"] == profile_digest(get_profile("quick")), (
        "results/quick/build/headline.json comes from other quick settings: run `make book` and copy "
        "_build/book/headline.json there")
    claims = headline["claims"]
    assert set(claims) == {"C1", "C2", "C3", "C4", "C5"}
    c1, c3 = claims["C1"]["figures"], claims["C3"]["figures"]
    assert c1["convnext_accuracy"] >= 0.80
    assert 0.03 <= c1["nsde_flip_rate"] <= 0.15
    assert c3["convnext_at_headline"] <= 0.10
    for model, curve in c3["curves"].items():
        inside = [eps for eps, accuracy in curve.items() if 0.05 < accuracy < 0.95]
        assert len(inside) >= 2, f"{model}'s attack curve has {len(inside)} points between 5 % and 95 %"


def test_a_chapter_says_whether_its_label_matches_the_recorded_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from nsdelib.book import adversarial_records

    ctx = setup("ci", 0, "cpu")
    monkeypatch.setattr(adversarial_records, "load_claim_record", lambda name: None)
    assert fresh_versus_recorded(ctx, "C1", verdict()).startswith("No `paper` result of C1 is recorded yet")
    recorded = {"provenance": {"seeds": [0, 1], "commit": "abc", "date": "d", "device": "cpu", "wall_time_s": 60.0},
                "result": {"verdict": verdict().to_dict()}}
    monkeypatch.setattr(adversarial_records, "load_claim_record", lambda name: recorded)
    label = claim_row(SOURCES[0], recorded, [])["verdict"]  # the record as the glance page judges it today
    other = next(name for name in ("reproduced", "inconclusive") if name != label)
    assert fresh_versus_recorded(ctx, "C1", verdict(label)) == (
        f"This `ci` build gives C1 the label of the recorded `paper` run: {label}.")
    differing = fresh_versus_recorded(ctx, "C1", verdict(other))
    assert f'"{other}", the recorded `paper` run "{label}"' in differing and "2 seeds" in differing
