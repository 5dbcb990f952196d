"""Binder (repo2docker) finds environment.yml and the postBuild that prepares the chapters at the ci profile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from nsdelib.book.runner import KERNEL_NAME, repository_address, staged_config


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


def test_the_launch_button_points_at_binder(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert "url" not in config["repository"], "the address comes from the git remote at build time"


@pytest.mark.parametrize(("remote", "address"), [
    ("git@github.com:someone/nsde-book.git", "https://github.com/someone/nsde-book"),
    ("https://gitlab.com/group/book", "https://gitlab.com/group/book"),
    ("https://github.com/someone/nsde-book.git/", "https://github.com/someone/nsde-book"),
    ("/srv/git/book.git", None), ("https://git.internal.example/team/book.git", None), (None, None)])
def test_the_repository_address_is_the_public_remote_or_none(tmp_path: Path, remote: str | None,
                                                            address: str | None) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    if remote is not None:
        subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert repository_address(tmp_path) == address


def test_without_a_public_repository_the_buttons_are_left_out(repo_root: Path, tmp_path: Path) -> None:
    staged = tmp_path / "_config.yml"
    shutil.copy(repo_root / "_config.yml", staged)
    staged_config(staged, None)
    config = yaml.safe_load(staged.read_text())
    assert "repository" not in config and "launch_buttons" not in config
    assert config["html"]["use_repository_button"] is False and config["html"]["use_issues_button"] is False
    shutil.copy(repo_root / "_config.yml", staged)
    staged_config(staged, "https://github.com/someone/book")
    config = yaml.safe_load(staged.read_text())
    assert config["repository"] == {"branch": "main", "url": "https://github.com/someone/book"}
    assert config["sphinx"]["config"]["bibtex_reference_style"] == "author_year", "the rest is kept"
