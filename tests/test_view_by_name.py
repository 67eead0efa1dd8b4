"""The daemon's view is brought up to date from the files an event or a job named, not by
listing their lanes again (issue 14, item 3): tasks moving into a done/ of 2,000 files do not
make the daemon list done/ per move.

Observed with the audit hook of test_restart_fast (a `sitecustomize` on the daemon's
PYTHONPATH writes each listing under done/ to stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shopfloor import actions
from shopfloor.board import Board, Lane
from tests.conftest import wait_until
from tests.invariants import kill_leftovers
from tests.support import agent_command, make_project, stop
from tests.test_restart_fast import HOOK, READY, fill_done

BOARD = 2_000
TASKS = 6


def _project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    agent = {"backend": "command", "command": agent_command("coder:write", "qa:pass")}
    root = make_project(tmp_path, agents={"a": agent}, pipeline={"checks": []})
    done = root / "tasks" / "done"
    fill_done(done, BOARD)
    for n in range(TASKS):
        actions.create_task(Board(root), actions.NewTask(f"Thing {n}", "do it", backlog=True))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    return root, {**os.environ, "PYTHONPATH": path, "SHOPFLOOR_TEST_AUDIT": str(done.resolve())}


def _listings(log: bytes, done: Path) -> int:
    where = str(done.resolve())
    return sum(
        1
        for line in log.decode(errors="replace").splitlines()
        if line.startswith(("audit os.scandir ", "audit os.listdir ")) and line.endswith(where)
    )


def _in_done(root: Path) -> int:
    return len(Board(root).scan([Lane.DONE]).entries) - BOARD


def test_a_once_pass_lists_done_to_start_and_to_end_not_per_task(tmp_path: Path) -> None:
    root, env = _project(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "run", "--once"],
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    finally:
        kill_leftovers(root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _in_done(root) == TASKS
    # The whole board at the start and once more before leaving (each may list it twice:
    # recovery and the claims' pass); never once per task moved into done/.
    assert _listings(proc.stderr, root / "tasks" / "done") <= 4, proc.stderr[-3000:]


def test_a_running_daemon_reads_the_moved_files_not_their_lanes(tmp_path: Path) -> None:
    root, env = _project(tmp_path)
    log = tmp_path / "daemon.log"
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        wait_until(lambda: READY.search(log.read_bytes()), 60, "the daemon is ready")
        wait_until(lambda: _in_done(root) == TASKS, 120, "every task done")
    finally:
        stop(daemon)  # type: ignore[arg-type]  # stderr is a file: no text pipe to read
        kill_leftovers(root)
    text = log.read_bytes()
    ready = READY.search(text)
    assert ready is not None
    after = text[ready.end() :]
    # After the ready line, _after_ready's own two: the temp-file cleaning and the status
    # server's first listing; none per task moved into done/.
    assert _listings(after, root / "tasks" / "done") <= 2, after[-3000:]
