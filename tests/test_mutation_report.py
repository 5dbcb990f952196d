"""The command line of ``tools/mutation_report.py``: modules and mutant globs are read as meant."""

from __future__ import annotations

import pytest
from mutation_report import MODULES, arguments


def test_a_glob_does_not_swallow_the_module_after_it() -> None:
    args = arguments(["--mutants", "*x_abc_curve__*", "--mutants", "*x_log_crossing*", "nsdelib/claims/c4_abc.py"])
    assert args.modules == ["nsdelib/claims/c4_abc.py"]
    assert args.mutants == ["*x_abc_curve__*", "*x_log_crossing*"]
    assert arguments([]).mutants is None and arguments([]).modules == []  # every module, every mutant


def test_an_unknown_module_is_refused_by_name(capsys) -> None:
    with pytest.raises(SystemExit):
        arguments(["nsdelib/evaluation/nowhere.py"])
    assert "not a module of this report: nsdelib/evaluation/nowhere.py" in capsys.readouterr().err
    assert "nsdelib/report/stats.py" in MODULES
