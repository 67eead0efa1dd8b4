"""The hotfix lane is live within a second of the daemon starting, whatever the board's size:
a hotfix filed while the start-up scan still reads 20,000 task files does not wait for it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from shopfloor import task
from tests.conftest import wait_until
from tests.invariants import kill_leftovers
from tests.support import agent_command, make_project, marks, stop

BOARD = 20_000
#: The aim is one second; the rest is for a machine other work may load.
WITHIN = 1.5


def fill(root: Path, count: int) -> None:
    """`count` small specs in backlog/, waiting on a task that never comes (none runs)."""
    backlog = root / "tasks" / "backlog"
    for n in range(count):
        header = task.Header(id=f"T-{n + 1:05d}", title=f"task {n}", depends_on=["T-99999"])
        (backlog / f"T-{n + 1:05d}.md").write_text(task.render_new(header, sections={}))


def file_hotfix(root: Path) -> None:
    header = task.Header(id="HOTFIX-fire", title="fire", type="hotfix", priority="P0")
    text = task.render_new(header, sections={"Request": "prod is down"})
    (root / "tasks" / "hotfix" / "HOTFIX-fire.md").write_text(text)


def test_a_hotfix_filed_during_the_start_up_scan_starts_within_a_second(tmp_path: Path) -> None:
    mark = tmp_path / "marks.txt"
    root = make_project(
        tmp_path,
        agents={
            "idle": {"backend": "command", "command": agent_command("*:hang")},
            "fix": {"backend": "command", "command": agent_command(f"*:mark={mark}", "*:hang")},
        },
        roles={"hotfix": "fix"},
    )
    fill(root, BOARD)
    pid_file = root / ".shopfloor" / "daemon.pid"  # written as soon as the lock is held
    log_file = tmp_path / "daemon.log"
    with log_file.open("w") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(pid_file.exists, 60, "the daemon holds its lock")
        began = time.monotonic()
        file_hotfix(root)
        wait_until(lambda: marks(mark), 30, "the hotfix agent started")
        took = time.monotonic() - began
    finally:
        code = stop(daemon)
        kill_leftovers(root)
    log = log_file.read_text()
    started = log.index("event=run.start")
    assert took <= WITHIN, f"the hotfix agent started {took:.2f}s after the daemon's start"
    # It did not wait for the scan of the 20,000 others (the old daemon did):
    assert "notify.daemon_started" not in log[:started], log[:2000]
    assert code == 0
