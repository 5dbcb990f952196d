"""Settings tables write every value out: no Python reprs, no truncation, nested sections flattened."""

from __future__ import annotations

from nsdelib.book.profiles import get_profile
from nsdelib.report.tables import readable, settings_table


def test_values_read_as_text() -> None:
    assert readable({"L2": (0.5, 2.0, 8.0), "Linf": ()}) == "L2: 0.5, 2, 8; Linf: none"
    assert readable([1e-3, 2e-3]) == "0.001, 0.002" and readable(None) == "none" and readable(True) == "True"


def test_a_profile_section_becomes_one_row_per_setting_without_reprs() -> None:
    table = settings_table(get_profile("ci").attack.model_dump())
    assert table.loc["epsilons", "value"] == "L2: 0.5, 2, 8; Linf: 0.01, 0.05, 0.3"
    assert not table["value"].str.contains(r"[{}()\[\]']").any()


def test_profiles_side_by_side_flatten_their_sections() -> None:
    table = settings_table({}, **{name: get_profile(name).model_dump() for name in ("ci", "paper")})
    assert list(table.columns) == ["ci", "paper"]
    assert table.loc["train.max_epochs"].tolist() == ["4", "25"]
    assert table.loc["model.sde.sigma", "paper"] == "0.43"
    assert not table.stack().str.contains(r"[{}\[\]']").any()
