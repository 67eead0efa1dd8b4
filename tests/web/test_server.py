"""`shopfloor web` and `shopfloor run` with [web] enabled, as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shopfloor import actions
from shopfloor.board import Board
from shopfloor.config import Config
from shopfloor.errors import ShopfloorError
from shopfloor.web import server
from tests.conftest import wait_until
from tests.support import agent_command, make_project, stop
from tests.web.support import EventReader

URL = re.compile(r"open (http://127\.0\.0\.1:(\d+)/)(\?token=(\S+))?")


class Lines:
    """A process's stderr, read on a thread, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        for line in list(self.lines):
            if found := pattern.search(line):
                return found
        return None

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _spawn(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SHOPFLOOR_WEB_TOKEN"}
    return subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**environ, **(env or {})},
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts: killed at the end whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_shopfloor_web_prints_a_login_url_and_serves(
    project: Path, processes: list[subprocess.Popen[str]]
) -> None:
    proc = _spawn(project, "web", "--port", "0")
    processes.append(proc)
    out = Lines(proc)
    found = wait_until(lambda: out.match(URL), 30, "the login URL")
    assert isinstance(found, re.Match)
    base, token = found.group(1), found.group(4)
    assert token and len(token) >= 40  # token_urlsafe(32)
    login = httpx.get(f"{base}?token={token}")
    assert login.status_code == 303
    assert "httponly" in login.headers["set-cookie"].lower()
    state = httpx.get(f"{base}api/v1/state", headers={"Authorization": f"Bearer {token}"})
    assert state.status_code == 200
    assert httpx.get(f"{base}api/v1/state").status_code == 401
    started = time.monotonic()
    assert stop(proc, timeout=15) == 0
    assert time.monotonic() - started < 10


def test_a_token_from_the_environment_is_never_printed(
    project: Path, processes: list[subprocess.Popen[str]]
) -> None:
    secret = "from-the-env-9c1e"
    proc = _spawn(project, "web", "--port", "0", env={"SHOPFLOOR_WEB_TOKEN": secret})
    processes.append(proc)
    out = Lines(proc)
    found = wait_until(lambda: out.match(URL), 30, "the URL")
    assert isinstance(found, re.Match)
    assert found.group(4) is None
    assert "SHOPFLOOR_WEB_TOKEN" in out.text
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{found.group(1)}api/v1/state", headers=headers).status_code == 200
    assert stop(proc, signal.SIGINT, timeout=15) == 0
    assert secret not in out.text


def test_a_non_loopback_host_needs_shopfloor_toml(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor", "-C", str(project), "web", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "refusing to serve on 0.0.0.0" in proc.stderr


def test_check_host_allows_loopback_and_a_configured_address() -> None:
    plain = Config()
    assert server.check_host("127.0.0.1", plain) is None
    assert server.check_host("::1", plain) is None
    assert server.check_host("localhost", plain) is None
    with pytest.raises(ShopfloorError):
        server.check_host("0.0.0.0", plain)
    configured = Config.model_validate({"web": {"host": "0.0.0.0"}})
    warning = server.check_host("0.0.0.0", configured)
    assert warning and warning.startswith("WARNING")
    with pytest.raises(ShopfloorError):  # configured is that address, not any address
        server.check_host("10.1.2.3", configured)


def test_run_with_web_enabled_serves_and_stops_on_sigterm(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    dump = tmp_path / "env.json"
    behaviour = ("pm:spec", f"coder:env={dump}", "coder:write", "qa:pass")
    root = make_project(
        tmp_path,
        agents={"a": {"backend": "command", "command": agent_command(*behaviour)}},
        extra="[web]\nenabled = true\nport = 0\n",
    )
    secret = "daemon-web-token-77aa"
    task_id = actions.create_task(Board(root), actions.NewTask("Through the daemon")).id
    proc = _spawn(root, "run", env={"SHOPFLOOR_WEB_TOKEN": secret})
    processes.append(proc)
    out = Lines(proc)
    found = wait_until(lambda: out.match(URL), 30, f"the URL in\n{out.text}")
    assert isinstance(found, re.Match)
    base = found.group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{base}api/v1/state", headers=headers).status_code == 200
    refresh = httpx.post(f"{base}api/v1/refresh", headers=headers)
    assert refresh.status_code == 202
    assert refresh.json() == {"queued": True, "daemon_running": True, "woken": True}
    wait_until(dump.exists, 60, "the coder's run")
    wait_until(
        lambda: httpx.get(f"{base}api/v1/{task_id}", headers=headers).json()["lane"] == "done",
        60,
        "the task done",
    )
    env = json.loads(dump.read_text())
    assert "SHOPFLOOR_WEB_TOKEN" not in env
    assert secret not in json.dumps(env)
    reader = EventReader(base.rstrip("/"), token=secret)  # an open stream must not hold it up
    assert reader.next(timeout=10)["event"] == "hello"
    started = time.monotonic()
    assert stop(proc, timeout=30) == 0
    assert time.monotonic() - started < 10
    assert reader.wait_for(lambda e: e["event"] == "_eof", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}api/v1/state", headers=headers)


def test_the_web_token_variable_is_kept_from_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopfloor.shop import agent_environment

    config = Config.model_validate({"web": {"token_env": "MY_BOARD_TOKEN"}})
    assert "MY_BOARD_TOKEN" in config.secret_env_names()
    monkeypatch.setenv("MY_BOARD_TOKEN", "s3cret")
    env = agent_environment(config)
    assert "MY_BOARD_TOKEN" not in env
    assert "s3cret" not in "".join(env.values())


def test_a_taken_port_is_a_clear_error(project: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "shopfloor", "-C", str(project), "web", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert f"Error: cannot serve the web board on 127.0.0.1:{port}" in proc.stderr
    assert "address already in use" in proc.stderr
