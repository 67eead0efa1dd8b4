"""An idle daemon watching a board of 10,000 tasks: CPU over a minute and resident memory.

.venv/bin/python benchmarks/bench_idle.py [--tasks 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _project import SIMULATOR_CONFIG as CONFIG
from _project import drain, fill_board, make_repo, start_daemon, wait_started

from shopfloor.board import Lane


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", CONFIG)
        fill_board(root, args.tasks * 9 // 10, Lane.DONE)
        fill_board(root, args.tasks // 10, Lane.FAILED, start=args.tasks)
        daemon = start_daemon(root)
        wait_started(daemon)
        drain(daemon)
        proc = psutil.Process(daemon.pid)
        time.sleep(2)  # let start-up work finish before the measured window opens
        before = proc.cpu_times()
        started = time.monotonic()
        time.sleep(args.seconds)  # the measured idle window itself
        after = proc.cpu_times()
        wall = time.monotonic() - started
        rss = proc.memory_info().rss
        daemon.terminate()
        daemon.wait(60)
    cpu = (after.user - before.user) + (after.system - before.system)
    print(
        f"idle daemon, {args.tasks} tasks on the board, {wall:.0f} s window: "
        f"CPU {cpu:.3f} s = {100 * cpu / wall:.3f} %   RSS {rss / 2**20:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
