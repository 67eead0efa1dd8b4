"""What the hotfix's snapshot of the live tree costs before its agent may start.

    .venv/bin/python benchmarks/bench_snapshot.py [--files 10 2000] [--runs 30]

For each repository size (tracked files of about 1 KB, in folders of 50), in-process timings of
`gitops.capture_worktree` on a clean tree (one `git status`), on a dirty tree (3 files changed,
2 untracked: status, `add` into a copy of the index, `write-tree`, `commit-tree`,
`update-ref`), and of `gitops.changed_since` (what the tracker shows after the agent ended; not
on the path to the agent's start). Then 20 hotfixes beginning at once in 20 threads on the
dirty tree (`hotfix_report.begin`, which shares one snapshot between hotfixes arriving while it
is taken) against 20 independent `capture_worktree` calls: the time until the last one is done.
Wall times depend on the machine's load; the CPU time of the git processes (user + system,
per call) does not, so both are shown.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._project import git

from shopfloor import gitops, hotfix_report


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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    runs: int, before: Callable[[int], None], work: Callable[[int], object]
) -> tuple[list[float], list[float]]:
    """Wall and git-CPU milliseconds of each run of `work`."""
    walls, cpus = [], []
    for n in range(runs):
        before(n)
        cpu, start = children_cpu(), time.perf_counter()
        work(n)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((children_cpu() - cpu) * 1000)
    return walls, cpus


def at_once(root: Path, count: int, shared: bool) -> float:
    """Milliseconds until `count` snapshots started together are all done."""
    gate = threading.Barrier(count + 1)

    def take(k: int) -> None:
        task_id = f"HOTFIX-C{k:04d}"
        gate.wait()
        if shared:
            hotfix_report.begin(root, task_id)
        else:
            gitops.capture_worktree(root, hotfix_report.snapshot_ref(task_id))

    threads = [threading.Thread(target=take, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    for k in range(count):
        hotfix_report.end(root, f"HOTFIX-C{k:04d}")
    return (time.perf_counter() - start) * 1000


def line(label: str, measured: tuple[list[float], list[float]]) -> str:
    walls, cpus = measured
    ordered = sorted(walls)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"  {label:<34} p50 {statistics.median(walls):6.1f} ms   p99 {p99:6.1f} ms   "
        f"git CPU p50 {statistics.median(cpus):5.1f} ms"
    )


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
    dirty(root, 0)
    for shared, label in (
        (False, "20 independent snapshots at once"),
        (True, "20 hotfixes begin at once"),
    ):
        walls = [at_once(root, 20, shared) for _ in range(5)]
        print(f"  {label:<34} all done, median of 5: {statistics.median(walls):6.1f} ms")


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
