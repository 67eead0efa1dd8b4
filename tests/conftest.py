"""Shared fixtures: every test runs with its own HOME, XDG dirs and a git identity.

Nothing a test does can read or write the developer's real configuration, and `git commit`
works on a fresh machine with no ~/.gitconfig.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No example database in the working tree; no per-example deadline on slow CI machines.
settings.register_profile(
    "shopfloor",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("shopfloor")

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Shopfloor Tests",
    "GIT_AUTHOR_EMAIL": "tests@shopfloor.invalid",
    "GIT_COMMITTER_NAME": "Shopfloor Tests",
    "GIT_COMMITTER_EMAIL": "tests@shopfloor.invalid",
}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and XDG dirs inside tmp_path; a git identity; no repository above tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # git never looks above tmp_path, so "outside a repository" means what it says.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("SHOPFLOOR_RAISE_ERRORS", raising=False)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    return home


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository (no Shopfloor yet)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    return root


@pytest.fixture
def project(git_repo: Path) -> Path:
    """A git repository scaffolded by `shopfloor init` (no agent CLIs detected)."""
    from shopfloor import scaffold

    scaffold.init(git_repo, agents=[])
    return git_repo


CliRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli() -> CliRun:
    """Run the real `shopfloor` command line as a subprocess: cli(cwd, *args, input=...)."""

    def run(
        cwd: Path, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shopfloor", *args],
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ),
        )

    return run


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll a condition until it holds; fail with a clear message at the deadline (no sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s: {what or predicate}")
        time.sleep(0.01)
