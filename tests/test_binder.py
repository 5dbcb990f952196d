"""Binder (repo2docker) finds environment.yml and the postBuild that prepares the chapters at the ci profile."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from nsdelib.book.runner import KERNEL_NAME


def test_binder_reads_its_configuration_from_the_repository_root(repo_root: Path) -> None:
    # repo2docker reads only binder/ (or .binder/) when such a folder exists: environment.yml would be ignored
    assert not (repo_root / "binder").exists() and not (repo_root / ".binder").exists()
    assert (repo_root / "environment.yml").exists()
    post_build = repo_root / "postBuild"
    assert post_build.exists() and os.access(post_build, os.X_OK), "postBuild must be an executable script"


def test_post_build_installs_the_package_registers_the_kernel_and_sets_the_ci_profile(repo_root: Path) -> None:
    script = (repo_root / "postBuild").read_text()
    assert "pip install --no-deps -e ." in script
    assert f"ipykernel install --sys-prefix --name {KERNEL_NAME} " in script
    assert "papermill --prepare-only --kernel nsdebook -p profile ci" in script


def test_the_launch_button_points_at_binder_and_the_repository(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["repository"]["url"].startswith("https://github.com/")
