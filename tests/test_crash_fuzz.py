"""Crash fuzz, short: kill -9 the daemon at random moments; the board stays sound.

The long mode is `benchmarks/bench_crash_fuzz.py --kills 1000`. SHOPFLOOR_FUZZ_KILLS and
SHOPFLOOR_FUZZ_SEED change this test's length and seed.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.crash_fuzz import crash_fuzz


def test_random_kill_9s_leave_every_task_done_once(tmp_path: Path) -> None:
    """Invariant after 80 kills -9 at random moments: every task exactly once on the board
    after each kill; at the end all done with attempts 1, no verdict applied twice, nothing
    pending, no orphan agent."""
    kills = int(os.environ.get("SHOPFLOOR_FUZZ_KILLS", "80"))
    seed = int(os.environ.get("SHOPFLOOR_FUZZ_SEED", "7"))
    report = crash_fuzz(tmp_path, kills=kills, tasks=8, seed=seed)
    assert not report.violations, "\n".join(report.violations)
    assert report.kills == kills and report.kills_mid_work >= kills // 2
