"""The list of known bugs in ``tools/known_mutants.py`` still points at code that exists, once each."""

from __future__ import annotations

from pathlib import Path

import pytest
from known_mutants import KNOWN_MUTANTS, KnownMutant, apply

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mutant", KNOWN_MUTANTS, ids=lambda m: m.name)
def test_each_known_bug_applies_to_todays_source(mutant: KnownMutant) -> None:
    source = (REPO / mutant.path).read_text()
    mutated = apply(source, mutant)
    assert mutated != source
    assert all((REPO / t).is_file() for t in mutant.tests)


def test_a_bug_whose_code_has_moved_is_an_error() -> None:
    mutant = KnownMutant("gone", "x.py", "return 1\n", "return 2\n", ())
    with pytest.raises(ValueError, match="gone: 'return 1' occurs 0 times in x.py, expected once"):
        apply("return 3\n", mutant)
    with pytest.raises(ValueError, match="occurs 2 times"):
        apply("return 1\nreturn 1\n", mutant)
