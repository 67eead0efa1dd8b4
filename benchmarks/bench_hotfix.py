"""Hotfix reaction: file created in tasks/hotfix/ -> the hotfix agent's process is running.

The hotfix agent is `date +%s.%N` (no shell): the first thing the new process does is print
the time, so reaction = that time - the time just before the file was created. Measured idle,
then under load: 16 hung agents running, 10,000 tasks on the board, and a burst of 1,000 new
inbox files written while the hotfixes arrive.

    .venv/bin/python benchmarks/bench_hotfix.py [--samples 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _project import (
    drain,
    fill_board,
    make_repo,
    percentile,
    start_daemon,
    stop_daemon,
    wait_started,
)

from shopfloor import actions, task
from shopfloor.board import Board, Lane

CONFIG = """
[agents.clock]
backend = "command"
command = ["date", "+%s.%N"]
[agents.hang]
backend = "command"
command = ["sleep", "3600"]
timeout = "2h"
stall = "2h"
[roles]
pm = "hang"
coder = "hang"
qa = "hang"
hotfix = "clock"
[pipeline]
checks = []
concurrency = { pm = 8, coder = 8, qa = 1 }
"""


def agent_start_time(root: Path, task_id: str, timeout: float = 30) -> float:
    """The time the hotfix agent printed (its stdout log), waiting for it with a deadline."""
    from shopfloor import runlogs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in runlogs.runs_for(root, task_id):
            out = run.run_dir / "stdout.log"
            text = out.read_text().strip() if out.exists() else ""
            if text:
                return float(text.splitlines()[0])
        time.sleep(0.01)
    raise RuntimeError(f"no hotfix agent output for {task_id}")


def hotfix_text(task_id: str, title: str) -> str:
    header = task.Header(id=task_id, title=title, type="hotfix", priority="P0", max_attempts=1)
    return task.render_new(header, sections={"Request": "prod is down"})


def measure(root: Path, samples: int, label: str) -> list[float]:
    """Reaction from the moment a writer creates the file, as a person or `cp` would."""
    folder = root / "tasks" / "hotfix"
    reactions = []
    for n in range(samples):
        task_id = f"HOTFIX-{label}-fire-{n}"
        text = hotfix_text(task_id, f"{label} fire {n}")
        created = time.time()
        with open(folder / f"{task_id}.md", "x") as fh:
            fh.write(text)
        reactions.append((agent_start_time(root, task_id) - created) * 1000)
    return reactions


def burst(root: Path, count: int) -> None:
    folder = root / "tasks" / "inbox"
    for n in range(count):
        (folder / f"B-{n:05d}-burst.md").write_text(
            f"---\nid: B-{n:05d}\ntitle: burst {n}\nstatus: blocked\n---\nbody\n"
        )


def report(label: str, values: list[float]) -> None:
    print(
        f"{label:<34} n={len(values):<4} p50={statistics.median(values):7.2f} ms  "
        f"p99={percentile(values, 99):7.2f} ms  max={max(values):7.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--board", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "idle", CONFIG)
        daemon = start_daemon(root)
        wait_started(daemon)
        drain(daemon, Path(tmp) / "idle.log")
        idle = measure(root, args.samples, "idle")
        stop_daemon(daemon, Path(tmp) / "idle.log")

        root = make_repo(Path(tmp) / "load", CONFIG)
        fill_board(root, args.board, Lane.DONE)
        board = Board(root)
        for n in range(16):
            actions.create_task(board, actions.NewTask(f"hang {n}", "x", backlog=n < 8))
        daemon = start_daemon(root)
        wait_started(daemon)
        drain(daemon, Path(tmp) / "load.log")
        from shopfloor.journal import Journal

        journal = Journal.for_project(root)
        deadline = time.monotonic() + 60
        while len(journal.runs(state="running")) < 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        running = len(journal.runs(state="running"))
        flood = threading.Thread(target=burst, args=(root, 1000))
        flood.start()
        loaded = measure(root, args.samples, "load")
        flood.join()
        stop_daemon(daemon, Path(tmp) / "load.log")
    print(
        f"python {sys.version.split()[0]}; under load: {running} agents running, "
        f"{args.board} tasks on the board, 1,000-file inbox burst during the samples"
    )
    report("hotfix reaction, idle", idle)
    report("hotfix reaction, under load", loaded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
