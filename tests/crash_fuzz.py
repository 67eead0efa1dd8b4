"""The crash fuzz: kill -9 the daemon at random moments, restart it, and check the board.

Shared by `tests/test_crash_fuzz.py` (short) and `benchmarks/bench_crash_fuzz.py` (long).
Each round starts a daemon, waits until it holds its lock, lets it work for a random 0.05 to
0.6 s and kills it with SIGKILL. After every kill the board must hold every task exactly once;
when every task is done a new batch is filed, so late kills still land in the middle of work.
At the end a `run --once` finishes the work and `tests.invariants.board_violations` checks
everything: lanes, attempts, verdicts applied once, nothing pending, no orphan agent.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shopfloor import actions
from shopfloor.board import Board, Lane
from tests.invariants import Expected, board_violations, kill_leftovers
from tests.support import agent_command, make_project, shopfloor, start_daemon, stop

OK_CHECK = [sys.executable, "-c", "print('1 passed')"]


@dataclass
class FuzzReport:
    kills: int = 0
    tasks: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kills_mid_work: int = 0  # kills that left at least one task not done


def fuzz_project(tmp: Path) -> Path:
    fast = agent_command("pm:spec", "coder:write", "qa:pass")
    return make_project(
        tmp,
        agents={"a": {"backend": "command", "command": fast, "timeout": "60s"}},
        pipeline={
            "checks": [OK_CHECK],
            "max_attempts": 3,
            "concurrency": {"pm": 2, "coder": 3, "qa": 2},
        },
    )


def file_batch(root: Path, count: int, rng: random.Random) -> list[str]:
    board = Board(root)
    return [
        actions.create_task(board, actions.NewTask(f"fuzz {n}", "x", rng.random() < 0.5)).id
        for n in range(count)
    ]


def _board_check(root: Path, ids: set[str], settle: float = 3.0) -> tuple[list[str], bool]:
    """After a kill: every task exactly once; returns (violations, all done).

    An agent the kill orphaned may be rewriting its task file in place (the scripted PM
    truncates and writes, as many editors do): a file that is empty or half-written is
    looked at again until it settles, as the daemon waits SETTLE_SECONDS before judging."""
    deadline = time.monotonic() + settle
    while True:
        bad, done = _board_once(root, ids)
        if not bad or time.monotonic() > deadline:
            return bad, done
        time.sleep(0.05)


def _board_once(root: Path, ids: set[str]) -> tuple[list[str], bool]:
    scan = Board(root, header_cache=False).scan()
    counts = Counter(e.id for e in scan.entries)
    bad = [f"{i} on the board {n} times" for i, n in counts.items() if n > 1]
    bad += [f"{i} lost" for i in ids - set(counts)]
    bad += [f"unreadable {p.path.name}: {p.reason}" for p in scan.problems]
    done = all(e.lane is Lane.DONE for e in scan.entries)
    return bad, done


def _wait_locked(root: Path, pid: int, timeout: float = 30) -> bool:
    """Until the daemon `pid` holds the lock (it writes its pid once it does)."""
    pid_file = root / ".shopfloor" / "daemon.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pid_file.read_text().strip() == str(pid):
                return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def crash_fuzz(
    tmp: Path,
    *,
    kills: int,
    tasks: int,
    seed: int,
    progress: Callable[[int, FuzzReport], None] | None = None,
) -> FuzzReport:
    rng = random.Random(seed)
    start = time.monotonic()
    report = FuzzReport()
    root = fuzz_project(tmp)
    ids = set(file_batch(root, tasks, rng))
    try:
        for n in range(kills):
            daemon = start_daemon(root)
            try:
                if not _wait_locked(root, daemon.pid):
                    report.violations.append(f"kill {n}: the daemon never took its lock")
                time.sleep(rng.uniform(0.05, 0.6))  # the random moment is the point
            finally:
                daemon.kill()
                stop(daemon, timeout=30)
            report.kills += 1
            bad, done = _board_check(root, ids)
            report.violations += [f"after kill {n}: {b}" for b in bad]
            if done:
                ids |= set(file_batch(root, tasks, rng))  # keep the kills landing mid-work
            else:
                report.kills_mid_work += 1
            if progress is not None:
                progress(n, report)
        final = shopfloor(root, "run", "--once", check=False, timeout=600)
        if final.returncode != 0:
            report.violations.append(f"final run --once exited {final.returncode}")
        report.violations += board_violations(root, Expected(done=dict.fromkeys(ids, 1)))
    finally:
        kill_leftovers(root)
    report.tasks = len(ids)
    report.seconds = time.monotonic() - start
    return report
