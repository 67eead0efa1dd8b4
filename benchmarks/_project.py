"""Shared set-up for the daemon benchmarks: a scaffolded repo, a config, a board of N tasks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shopfloor import scaffold
from shopfloor.board import Lane

#: Every role played by the built-in simulator, no checks: the daemon's own cost alone.
SIMULATOR_CONFIG = """
[agents.sim]
backend = "simulator"
[roles]
pm = "sim"
coder = "sim"
qa = "sim"
hotfix = "sim"
[pipeline]
checks = []
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def make_repo(root: Path, config: str) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "app.py").write_text("x = 1\n")
    scaffold.init(root, agents=[])
    (root / "shopfloor.toml").write_text(config)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "init")
    return root


def fill_board(
    root: Path, count: int, lane: Lane = Lane.DONE, start: int = 1, status: str = "queued"
) -> None:
    """`count` realistic task files written straight to a lane (no ids from the allocator).

    `queued` in done/ is not a status of that lane: the daemon's start closes every one (a
    transition each); pass the lane's own status to start on a board at rest."""
    body = "## Request\n" + "Some words about the task.\n" * 40 + "\n## Tracker\n- x\n"
    folder = root / "tasks" / lane.value
    for n in range(start, start + count):
        (folder / f"T-{n:05d}-task-number-{n}.md").write_text(
            f"---\nid: T-{n:05d}\ntitle: Task number {n}\ntype: feature\npriority: P2\n"
            f"status: {status}\nattempts: 1\nmax_attempts: 3\ndepends_on: []\n"
            f"created: 2026-11-25T10:00:00Z\nupdated: 2026-11-25T10:00:00Z\n---\n"
            f"# Task number {n}\n\n{body}"
        )


def start_daemon(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`shopfloor run` in `root`; `env` adds to (or overrides) this process's environment,
    e.g. PYTHONPATH to run another checkout's code side by side."""
    return subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(env or {})},
    )


def wait_started(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Block until the daemon logged its start (it then watches the board)."""
    import select
    import time

    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            if b"event=daemon.start" in buffer and (
                b"event=notify.daemon_started" in buffer or b"daemon_recovered" in buffer
            ):
                return
    raise RuntimeError(f"daemon did not start: {buffer[-2000:]!r}")


def drain(proc: subprocess.Popen[bytes], keep: Path | None = None) -> None:
    """Keep the daemon's stderr pipe from filling (a thread copying it to `keep`, or dropping)."""
    import threading

    def run() -> None:
        assert proc.stderr is not None
        sink = open(keep, "ab") if keep else None  # noqa: SIM115 - lives as long as the thread
        while chunk := os.read(proc.stderr.fileno(), 65536):
            if sink:
                sink.write(chunk)
                sink.flush()

    threading.Thread(target=run, daemon=True).start()


def stop_daemon(proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """SIGTERM and wait; if it hangs, dump every thread's stack (faulthandler) and say so."""
    import signal

    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(10)
        tail = log.read_text()[-6000:] if log else ""
        raise RuntimeError(f"daemon did not stop on SIGTERM:\n{tail}") from None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
