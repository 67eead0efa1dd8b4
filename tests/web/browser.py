"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and the real web
board served by uvicorn on 127.0.0.1 against a real project (`support.served`, the API
tests' server).

Playwright's own browser download is never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, and no
`playwright install`): the tests drive /usr/bin/chromium through `executable_path` and are
skipped, saying why, where it is missing. The fixtures are in `browser_fixtures`; a test
module asks for them with `pytest_plugins = ["tests.web.browser_fixtures"]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.web import support

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

TOKEN = support.TOKEN  # the API tests' server and token: one way to serve a board
#: How long a page may take to show what happened on disk (the issue's "within a second").
LIVE = 1000
#: After a click: the request, the write and the event, on a loaded CI machine (the one-second
#: promise itself is tested on a hand-made move).
SETTLE = 10_000


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class Served:
    url: str
    root: Path
