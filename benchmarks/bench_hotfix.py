"""Hotfix reaction: file created in tasks/hotfix/ -> the hotfix agent's process is running.

The hotfix agent is `date +%s.%N` (no shell): the first thing the new process does is print
the time, so reaction = that time - the time just before the file was created. Measured idle,
then under load: 16 hung agents running, 10,000 tasks on the board, and a burst of 1,000 new
inbox files written while the hotfixes arrive.

The floor (benchmarks/hotfix_floor.py: watchdog -> the same child, nothing of Shopfloor) is
measured side by side, idle and under the same burst. Last, a hotfix is filed the moment the
daemon holds its lock on a large board: how long until its agent runs.

    .venv/bin/python benchmarks/bench_hotfix.py [--samples 40] [--boards 10000,50000]
    .venv/bin/python benchmarks/bench_hotfix.py --engine-down [--samples 40]

`--engine-down` (issue 13): only the idle reaction, side by side, of a daemon in the embedded
mode and one with `[scale] engine = "temporal"` whose Temporal cannot be reached (a closed
port): the emergency lane must not depend on the cluster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hotfix_floor
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


def burst(root: Path, count: int, start: int = 0) -> None:
    folder = root / "tasks" / "inbox"
    for n in range(start, start + count):
        (folder / f"B-{n:05d}-burst.md").write_text(
            f"---\nid: B-{n:05d}\ntitle: burst {n}\nstatus: blocked\n---\nbody\n"
        )


def report(label: str, values: list[float], floor: list[float] | None = None) -> None:
    line = (
        f"{label:<44} n={len(values):<4} p50={statistics.median(values):7.2f} ms  "
        f"p99={percentile(values, 99):7.2f} ms  max={max(values):7.2f} ms"
    )
    if floor:
        ratio = percentile(values, 99) / percentile(floor, 99)
        line += f"  (p99 {ratio:.1f}x the floor)"
    print(line)


def floor_under(load: Callable[[], None] | None, samples: int) -> list[float]:
    """The floor script's reaction, alone or while `load` runs in a thread."""
    flood = threading.Thread(target=load) if load else None
    with tempfile.TemporaryDirectory() as tmp:
        if flood:
            flood.start()
        try:
            return hotfix_floor.measure(Path(tmp), samples)
        finally:
            if flood:
                flood.join()


def loaded(tmp: Path, board_size: int, samples: int) -> tuple[int, list[float], list[float]]:
    """The load profile: 16 hung agents, `board_size` tasks, a 1,000-file inbox burst during
    the samples; the daemon's reaction and the floor's under the same burst."""
    root = make_repo(tmp / f"load-{board_size}", CONFIG)
    fill_board(root, board_size, Lane.DONE, status="closed")
    board = Board(root)
    for n in range(16):
        actions.create_task(board, actions.NewTask(f"hang {n}", "x", backlog=n < 8))
    log = tmp / f"load-{board_size}.log"
    daemon = start_daemon(root)
    wait_started(daemon, timeout=300)
    drain(daemon, log)
    from shopfloor.journal import Journal

    journal = Journal.for_project(root)
    deadline = time.monotonic() + 60
    while len(journal.runs(state="running")) < 16 and time.monotonic() < deadline:
        time.sleep(0.05)
    running = len(journal.runs(state="running"))
    flood = threading.Thread(target=burst, args=(root, 1000))
    flood.start()
    values = measure(root, samples, "load")
    flood.join()
    floor = floor_under(lambda: burst(root, 1000, start=1000), samples)
    stop_daemon(daemon, log)
    return running, values, floor


def during_start_up(tmp: Path, board_size: int) -> float:
    """Seconds from the daemon holding its lock (its start) to the hotfix agent's first
    instruction, the hotfix filed at that moment while the daemon reads `board_size` tasks."""
    root = make_repo(tmp / f"startup-{board_size}", CONFIG)
    fill_board(root, board_size, Lane.DONE, status="closed")
    pid_file = root / ".shopfloor" / "daemon.pid"
    daemon = start_daemon(root)
    drain(daemon, tmp / f"startup-{board_size}.log")
    while not pid_file.exists():
        time.sleep(0.001)
    began = time.time()
    with open(root / "tasks" / "hotfix" / "HOTFIX-startup.md", "x") as fh:
        fh.write(hotfix_text("HOTFIX-startup", "fire at start-up"))
    took = agent_start_time(root, "HOTFIX-startup", timeout=120) - began
    stop_daemon(daemon)
    return took


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns


def engine_down(tmp: Path, samples: int) -> None:
    """Embedded and engine-down daemons, idle, measured in turns (one sample each)."""
    down = f'[scale]\nengine = "temporal"\naddress = "127.0.0.1:{_closed_port()}"\n'
    roots = {"embedded": make_repo(tmp / "embedded", CONFIG)}
    roots["temporal down"] = make_repo(tmp / "down", CONFIG + down)
    daemons = {}
    for label, root in roots.items():
        daemons[label] = start_daemon(root)
        wait_started(daemons[label])
        drain(daemons[label], tmp / f"{root.name}.log")
    values: dict[str, list[float]] = {label: [] for label in roots}
    for n in range(samples):
        for label, root in roots.items():
            values[label] += measure(root, 1, f"{root.name}{n}")
    for label, daemon in daemons.items():
        stop_daemon(daemon, tmp / f"{roots[label].name}.log")
    print(f"python {sys.version.split()[0]}; load: {os.getloadavg()[0]:.2f} (1-minute average)")
    for label, got in values.items():
        report(f"hotfix reaction, idle, {label}", got)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--boards", default="10000,50000", help="board sizes under load")
    parser.add_argument("--engine-down", action="store_true", help="embedded vs Temporal down")
    args = parser.parse_args()
    if args.engine_down:
        with tempfile.TemporaryDirectory() as tmp_name:
            engine_down(Path(tmp_name), args.samples)
        return 0
    sizes = [int(n) for n in args.boards.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = make_repo(tmp / "idle", CONFIG)
        daemon = start_daemon(root)
        wait_started(daemon)
        drain(daemon, tmp / "idle.log")
        idle = measure(root, args.samples, "idle")
        stop_daemon(daemon, tmp / "idle.log")
        idle_floor = floor_under(None, args.samples)
        under = {size: loaded(tmp, size, args.samples) for size in sizes}
        start_up = {size: during_start_up(tmp, size) for size in sizes}
    print(f"python {sys.version.split()[0]}; load: {os.getloadavg()[0]:.2f} (1-minute average)")
    report("floor (watchdog -> child), idle", idle_floor)
    report("hotfix reaction, idle", idle, idle_floor)
    for size, (running, values, floor) in under.items():
        what = f"{running} agents, {size:,} tasks, 1,000-file burst"
        report(f"floor under load ({what})", floor)
        report(f"hotfix under load ({what})", values, floor)
    for size, took in start_up.items():
        print(f"hotfix filed at daemon start, {size:,} tasks: agent started {took:.3f} s after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
