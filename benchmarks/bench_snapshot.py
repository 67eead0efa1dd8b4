"""What the hotfix's snapshot of the live tree costs before its agent may start.

    .venv/bin/python benchmarks/bench_snapshot.py [--files 10 2000] [--runs 30]

For each repository size (tracked files of about 1 KB, in folders of 50), in-process timings of
`gitops.capture_worktree` on a clean tree (one `git status`), on a dirty tree (3 files changed,
2 untracked: status, `add` into a copy of the index, `write-tree`, `commit-tree`,
`update-ref`), and of `gitops.changed_since` (what the tracker shows after the agent ended; not
on the path to the agent's start). Also 20 snapshots of one dirty tree started at once in 20
threads, as 20 hotfixes filed in the same second would: the time until the last one is done.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._project import git

from shopfloor import gitops


def make_repo(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    for n in range(files):
        folder = root / "src" / f"pkg{n // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{n:05d}.py").write_text(f"VALUE_{n} = {n}\n" + "# filler\n" * 100)
    (root / "tasks" / "hotfix").mkdir(parents=True)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "init")
    git(root, "status", "--porcelain")  # a fresh index with stat data, as a human's would be
    return root


def dirty(root: Path, n: int) -> None:
    for k in range(3):
        (root / "src" / "pkg000" / f"mod{k:05d}.py").write_text(f"EDIT = {n}\n")
    for k in range(2):
        (root / f"scratch{k}.py").write_text(f"draft {n}\n")


def clean(root: Path) -> None:
    git(root, "checkout", "--quiet", "--", ".")
    for k in range(2):
        (root / f"scratch{k}.py").unlink(missing_ok=True)


def timed(runs: int, before: Callable[[int], None], work: Callable[[int], object]) -> list[float]:
    times = []
    for n in range(runs):
        before(n)
        start = time.perf_counter()
        work(n)
        times.append((time.perf_counter() - start) * 1000)
    return times


def concurrent(root: Path, count: int) -> float:
    gate = threading.Barrier(count + 1)

    def take(k: int) -> None:
        gate.wait()
        gitops.snapshot_worktree(root, f"refs/shopfloor/snapshots/HOTFIX-C{k:04d}")

    threads = [threading.Thread(target=take, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - start) * 1000


def line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"  {label:<34} p50 {statistics.median(times):6.1f} ms   p99 {p99:6.1f} ms"


def measure(root: Path, runs: int) -> None:
    ref = "refs/shopfloor/snapshots/HOTFIX-0001"

    def snap(n: int) -> object:
        return gitops.capture_worktree(root, ref)

    def since(n: int) -> object:
        return gitops.changed_since(root, "HEAD")

    def make_dirty(n: int) -> None:
        dirty(root, n)

    clean(root)
    print(line("snapshot, clean tree", timed(runs, lambda n: None, snap)))
    print(line("snapshot, 5 files dirty", timed(runs, make_dirty, snap)))
    print(line("changed_since (after the agent)", timed(runs, lambda n: None, since)))
    walls = sorted(concurrent(root, 20) for _ in range(5))
    print(f"  {'20 snapshots at once, all done':<34} median {statistics.median(walls):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[10, 2000])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopfloor-bench-snapshot-") as tmp:
        for files in args.files:
            print(f"{files} tracked files:")
            measure(make_repo(Path(tmp) / f"repo{files}", files), args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
