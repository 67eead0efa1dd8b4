"""Daemon start-up on a large board: cold (first start), and a restart on the unchanged board.

Ready = the daemon's `daemon_started` line (recovery done, the board reconciled, claims open),
timed from the process's spawn, so imports count. The board is N closed tasks in done/
(written at rest, as fill_board does) plus 50 queued specs in backlog/ waiting on a task
that never comes.

    .venv/bin/python benchmarks/bench_startup.py [--boards 10000,50000] [--restarts 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _project import SIMULATOR_CONFIG as CONFIG
from _project import fill_board, make_repo, start_daemon, stop_daemon, wait_started

from shopfloor import task
from shopfloor.board import Lane


def ready_after(root: Path) -> tuple[float, float]:
    """Seconds from spawning `shopfloor run` to its daemon_started line, and the CPU seconds
    the daemon used until then (what a loaded machine does not inflate); then stopped."""
    began = time.monotonic()
    daemon = start_daemon(root)
    wait_started(daemon, timeout=300)
    took = time.monotonic() - began
    cpu = psutil.Process(daemon.pid).cpu_times()
    stop_daemon(daemon)
    return took, cpu.user + cpu.system


def board(tmp: Path, size: int) -> Path:
    root = make_repo(tmp / f"b{size}", CONFIG)
    fill_board(root, size, Lane.DONE, status="closed")
    backlog = root / "tasks" / "backlog"
    for n in range(50):
        header = task.Header(id=f"S-{n:03d}", title=f"waits {n}", depends_on=["T-nowhere"])
        (backlog / f"S-{n:03d}.md").write_text(task.render_new(header, sections={}))
    time.sleep(2.1)  # files younger than 2 s are never cached (racy-clean, like git)
    return root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boards", default="10000,50000")
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; load {os.getloadavg()[0]:.2f} (1-minute average)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(n) for n in args.boards.split(",")):
            root = board(Path(tmp), size)
            cold, cold_cpu = ready_after(root)
            runs = [ready_after(root) for _ in range(args.restarts)]
            again = [wall for wall, _ in runs]
            again_cpu = statistics.median(cpu for _, cpu in runs)
            print(
                f"{size:>6,} tasks: cold start ready in {cold:6.2f} s ({cold_cpu:.2f} s CPU); "
                f"restart on the unchanged board ready in {statistics.median(again):5.2f} s "
                f"({again_cpu:.2f} s CPU; median of {len(again)}, max {max(again):.2f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
