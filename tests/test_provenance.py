"""Recorded results carry their provenance and are read back exactly; damaged files are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsdelib.book.provenance import load_recorded, load_recorded_index, provenance, record_result
from nsdelib.common.errors import ArtifactCorrupt


def test_provenance_has_every_field() -> None:
    prov = provenance("paper", [0, 1, 2], "cpu", 12.345)
    assert {"profile", "seeds", "device", "wall_time_s", "commit", "date", "library", "versions"} <= prov.keys()
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
