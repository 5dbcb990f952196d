"""environment.yml (conda users) lists exactly pyproject.toml's dependencies and test extra."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml


def test_environment_yml_matches_pyproject(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    environment = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    listed = {d for d in pip_section if not d.startswith("-")}
    assert listed == expected
    assert "-e ." in pip_section


def test_binder_installs_the_cpu_only_torch(repo_root: Path) -> None:
    environment = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section


def test_jupyter_book_is_pinned_below_2(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert "jupyter-book>=1.0.4.post1,<2" in project["dependencies"]


def test_constraints_pin_every_dependency(repo_root: Path) -> None:
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (repo_root / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        assert name.replace("_", "-") in pinned, f"{name} is not pinned in constraints.txt"
