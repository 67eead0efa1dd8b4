"""Crash fuzz, long mode: kill -9 the daemon at random moments, many times, then check.

The same driver and invariants as `tests/test_crash_fuzz.py` (`tests/crash_fuzz.py`,
`tests/invariants.py`): every task exactly once on the board after every kill; at the end
every task done with the attempts its agent needed, no verdict applied twice, no pending
transition, no orphan agent. Prints kills, tasks, violations and wall time.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_crash_fuzz.py --kills 1000 --tasks 8 --seed 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.crash_fuzz import FuzzReport, crash_fuzz


def isolate(tmp: Path) -> None:
    """Our own HOME and git identity, as the test suite's fixtures give every test."""
    home = tmp / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp)
    for name in ("GIT_AUTHOR", "GIT_COMMITTER"):
        os.environ[f"{name}_NAME"] = "Shopfloor Bench"
        os.environ[f"{name}_EMAIL"] = "bench@shopfloor.invalid"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=8, help="tasks per batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    def progress(n: int, report: FuzzReport) -> None:
        if (n + 1) % 50 == 0:
            print(
                f"  {n + 1} kills, {len(report.violations)} violations",
                file=sys.stderr,
                flush=True,
            )

    with tempfile.TemporaryDirectory(prefix="shopfloor-fuzz-") as tmp:
        isolate(Path(tmp))
        report = crash_fuzz(
            Path(tmp), kills=args.kills, tasks=args.tasks, seed=args.seed, progress=progress
        )
    print(f"kills       {report.kills}")
    print(f"mid-work    {report.kills_mid_work}")
    print(f"tasks       {report.tasks}")
    print(f"violations  {len(report.violations)}")
    for line in report.violations[:50]:
        print(f"  {line}")
    print(f"wall time   {report.seconds:.0f} s")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
