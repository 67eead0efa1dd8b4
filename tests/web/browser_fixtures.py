"""Fixtures of the browser tests (a plugin: pytest_plugins = ["tests.web.browser_fixtures"])."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web import support
from tests.web.browser import TOKEN, Served, chromium_path, git


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A Chromium browser (Debian's), shared by the session."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def repo(project: Path) -> Path:
    """A scaffolded project with a first commit (what a Coder's branch starts from)."""
    (project / "app.py").write_text("def greet(name):\n    return 'hi ' + name\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    return project


@pytest.fixture
def served(repo: Path) -> Iterator[Served]:
    with support.served(repo) as url:
        yield Served(url, repo)


@pytest.fixture
def page(chromium: Any, served: Served) -> Iterator[Any]:
    """A desktop page logged in through the URL (the cookie), on the board."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.goto(f"{served.url}/?token={TOKEN}")
    try:
        yield tab
    finally:
        context.close()
