"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and the real web
board served by uvicorn on 127.0.0.1 against a real project.

Playwright's own browser download is never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, and no
`playwright install`): the tests drive /usr/bin/chromium through `executable_path` and are
skipped, saying why, where it is missing. The fixtures are in `browser_fixtures`; a test
module asks for them with `pytest_plugins = ["tests.web.browser_fixtures"]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

TOKEN = "test-token-0123456789abcdef"
#: How long a page may take to show what happened on disk (the issue's "within a second").
LIVE = 1000


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


def serve(root: Path, token: str = TOKEN) -> Iterator[Served]:
    """The web board app under a real uvicorn on a free port of 127.0.0.1, in a thread."""
    import uvicorn

    from shopfloor.web.app import create_app

    app = create_app(root, token, heartbeat=1.0)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    from tests.conftest import wait_until

    wait_until(lambda: server.started, 20, "uvicorn started")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", root)
    finally:
        server.should_exit = True
        thread.join(15)
