"""Each artifact kind's output at a tiny configuration matches its golden file at the kind's version.

A change of behaviour behind a kind (the data set, training, a sweep) without a bump of its version
fails here; so does a bumped version whose golden file was not regenerated (``make golden``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import golden_runs
import pytest
from golden_runs import differences, problems, summarise

import nsdelib.book.context  # noqa: F401  (declares every artifact kind of the library)
from nsdelib.common.artifacts import KINDS

#: The library's kinds (the store's own tests declare kinds named ``test_*``).
LIBRARY_KINDS = sorted(name for name in KINDS if not name.startswith("test_"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One golden run in a fresh one-thread process (deterministic algorithms stay out of this process)."""
    dump = tmp_path_factory.mktemp("golden") / "outputs.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, golden_runs.__file__, "--dump", str(dump)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return json.loads(dump.read_text())


def test_the_golden_run_covers_every_artifact_kind(run: dict[str, Any]) -> None:
    assert sorted(run["outputs"]) == sorted(run["kinds"]) == LIBRARY_KINDS


@pytest.mark.parametrize("kind", LIBRARY_KINDS)
def test_output_matches_the_golden_file_at_this_version(run: dict[str, Any], kind: str) -> None:
    assert problems(kind, run["outputs"][kind]) == []


def test_a_changed_output_an_unbumped_version_and_a_missing_file_are_each_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(golden_runs, "GOLDEN_DIR", tmp_path)
    now = {"version": 2, "summary": [summarise({"accuracy": [0.5, 0.75], "wall_time_s": 3.0, "label": "a"})]}
    assert problems("sweep", now) == ["artifact kind 'sweep' has no golden output (sweep.json): run `make golden`"]
    (tmp_path / "sweep.json").write_text(json.dumps(now))
    assert problems("sweep", now) == []
    timing_only = {**now, "summary": [summarise({"accuracy": [0.5, 0.75], "wall_time_s": 9.0, "label": "a"})]}
    assert problems("sweep", timing_only) == [], "wall times are left out of the summary"
    changed = {**now, "summary": [summarise({"accuracy": [0.5, 0.5], "wall_time_s": 3.0, "label": "a"})]}
    [message] = problems("sweep", changed)
    assert "changed but its version (2) did not" in message and "sum: 1.25 → 1.0" in message
    [message] = problems("sweep", {**changed, "version": 3})
    assert "at version 3 but its golden output was made at version 2: run `make golden`" in message
    # `make golden` refuses to hide a forgotten bump, but regenerates after a bump or under another torch
    assert golden_runs.unbumped("sweep", changed) == problems("sweep", changed)
    assert golden_runs.unbumped("sweep", {**changed, "version": 3}) == []
    assert golden_runs.unbumped("sweep", {**changed, "torch": "9.9"}) == []


def test_numbers_within_the_tolerance_and_nan_agree() -> None:
    assert differences({"a": [1.0, float("nan")]}, {"a": [1.0 + 1e-7, float("nan")]}) == []
    assert differences({"a": 1.0}, {"a": 1.01}) == [".a: 1.0 → 1.01"]
    assert differences({"a": 1}, {"b": 1}) == [": keys ['a', 'b'] added or removed"]
    assert differences(["x"], ["x", "y"]) == [": 1 items, now 2"]
