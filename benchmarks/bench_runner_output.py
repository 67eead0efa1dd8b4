"""An agent printing 1 GiB through the Runner: our memory stays flat, and how fast it drains.

    .venv/bin/python benchmarks/bench_runner_output.py [--bytes 1073741824] [--repeats 3]

The fake agent from the tests writes the bytes to stdout as fast as it can; the Runner logs the
first log_cap bytes (the default, 64 MiB) and counts and discards the rest. Printed per run:
our RSS before and after (psutil), the process's peak RSS so far (ru_maxrss) and throughput.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from shopfloor.runner import Runner, RunResult, RunSpec

FAKE_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "fake_agent.py"
MIB = 1024 * 1024


def peak_rss() -> int:
    """ru_maxrss is in KiB on Linux (bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def flood(tmp: Path, number: int, size: int) -> RunResult:
    spec = RunSpec(
        run_id=f"R-bench-{number}",
        argv=[sys.executable, str(FAKE_AGENT), "flood", str(size)],
        cwd=tmp,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        run_dir=tmp / f"run-{number}",
        timeout=600,
        stall=60,
    )
    return Runner(spec).run()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bytes", type=int, default=1024 * MIB)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    me = psutil.Process()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.repeats):
            before = me.memory_info().rss
            result = flood(Path(tmp), number, args.bytes)
            after, peak = me.memory_info().rss, peak_rss()
            assert result.stdout_bytes == args.bytes and result.exit_code == 0, result
            rate = args.bytes / result.duration / MIB
            log = result.stdout_path.stat().st_size
            rows.append((result.duration, rate, after - before, peak))
            print(
                f"run {number}: {result.duration:.2f} s  {rate:.0f} MiB/s  "
                f"RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB  peak {peak / MIB:.1f} MiB  "
                f"log {log / MIB:.1f} MiB  truncated={result.truncated}"
            )
    durations, rates, growths, peaks = zip(*rows, strict=True)
    print(
        f"median of {args.repeats} x {args.bytes / MIB:.0f} MiB: "
        f"{statistics.median(durations):.2f} s, {statistics.median(rates):.0f} MiB/s, "
        f"RSS growth {statistics.median(growths) / MIB:+.2f} MiB, "
        f"peak RSS {max(peaks) / MIB:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
