"""The merge queue (issue 12): landing N ready, non-conflicting tasks, one by one vs batched.

Each task is a branch with one new file, walked to review/ `landing` through the lifecycle
(`tests/test_landing.py::queue_task`). The checks are the test suite's `check.py` plus a
stand-in for a test suite that takes `--check-seconds`. Prints, per batch size, the wall time
of `actions.land` (in-process, as `shopfloor land` does it) and the number of check runs.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_landing.py --tasks 20 --check-seconds 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_crash_fuzz import isolate  # type: ignore[import-not-found]
from tests.test_landing import check_runs, queue_project, queue_task

from shopfloor import actions


def measure(tmp: Path, tasks: int, batch: int, seconds: float) -> tuple[float, int, int]:
    """(wall seconds, check runs, tasks landed) for one fresh project."""
    suite = [sys.executable, "-c", f"import time; time.sleep({seconds})"]
    root = queue_project(tmp, extra_checks=[suite], land_batch=batch)
    for n in range(tasks):
        queue_task(root, f"Feature {n}", {f"feature_{n}.txt": str(n)})
    started = time.perf_counter()
    outcome = actions.land(root)
    wall = time.perf_counter() - started
    assert check_runs(tmp) == outcome.check_runs
    return wall, outcome.check_runs, len(outcome.landed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--check-seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(f"{'land_batch':>10} {'tasks':>6} {'landed':>6} {'check runs':>10} {'wall s':>8}")
    for batch in args.batches:
        with tempfile.TemporaryDirectory(prefix="shopfloor-land-") as name:
            tmp = Path(name)
            isolate(tmp)
            wall, runs, landed = measure(tmp, args.tasks, batch, args.check_seconds)
        print(f"{batch:>10} {args.tasks:>6} {landed:>6} {runs:>10} {wall:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
