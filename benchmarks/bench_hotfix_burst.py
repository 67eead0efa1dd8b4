"""Hotfix bursts: N hotfixes filed at the same instant; each one's file created -> its agent.

The agent prints the time as its first act (`date +%s.%N`), so a hotfix's reaction = that
time - the time just before its own file was created. A real agent runs for minutes, so
by default it then stays for `--linger` seconds (`sh -c 'date +%s.%N; exec sleep 1'`; the
shell's start-up, about 1 ms, counts against us) and the end of one hotfix's run does not
compete with the start of the next; `--linger 0` runs `bench_hotfix.py`'s bare `date`.

Each round writes N files back to back (texts rendered before, one `open(..., "x")` + write
each, about 0.1 ms apart), waits for every agent's first line, then for every file to settle
(awaiting-human) and removes them, so each round starts from the same board. A hotfix whose
agent never printed within `--deadline` seconds is lost. Reported per N: p50, p99 and max
over every hotfix of every round, and the median over rounds of each round's slowest.

Idle, then under `bench_hotfix.py`'s load profile: 16 hung agents running (8 PM, 8 coder),
10,000 tasks on the board, and in every round a burst of 1,000 new inbox files with the
hotfixes filed while it is being written (the files are removed after the round).

`--dirty` leaves a changed tracked file and an untracked one in the tree, so every hotfix's
snapshot of the human's work (`hotfix_report.begin`) stores a commit; without it the tree is
clean and the snapshot is one `git status`.

Side by side: each `--src DIR` (a checkout's `src/`) gets its own repository and daemon
(`PYTHONPATH=DIR`); rounds alternate between them, so drift in the machine hits both.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_hotfix_burst.py \\
        [--sizes 2 5 20] [--rounds 8] [--load-rounds 6] [--dirty] [--linger 1]
        [--src /tmp/before/src --src src]     # about 4 minutes per side on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _project import (
    drain,
    fill_board,
    make_repo,
    percentile,
    start_daemon,
    stop_daemon,
    wait_started,
)
from bench_hotfix import CONFIG as CLOCK_CONFIG
from bench_hotfix import hotfix_text

from shopfloor import actions, task
from shopfloor.board import Board, Lane
from shopfloor.errors import ShopfloorError
from shopfloor.paths import StatePaths

#: The inbox burst of the load profile, written once per loaded round.
BURST = 1000
#: The hotfixes are filed once the burst has written this many of its files.
BURST_LEAD = 300


@dataclass
class Side:
    """One checkout under test: its repository, its daemon, what it measured."""

    label: str
    src: str | None
    root: Path
    log: Path
    daemon: subprocess.Popen[bytes] | None = None
    watcher: RunWatcher | None = None
    reactions: dict[int, list[float]] = field(default_factory=dict)  # N -> every hotfix, ms
    round_max: dict[int, list[float]] = field(default_factory=dict)  # N -> each round's max
    lost: dict[int, int] = field(default_factory=dict)


class RunWatcher:
    """Finds each hotfix's run folder and its agent's first line, reading each folder's
    meta.json once; one per side for the whole run, brought up to date before a round's files
    are written, and polling every 50 ms (the time itself comes from the agent), so the
    measuring takes little of the 2 CPUs it measures."""

    def __init__(self, root: Path) -> None:
        self.base = StatePaths(root).runs_dir
        self.seen: set[str] = set()
        self.run_of: dict[str, Path] = {}

    def catch_up(self) -> None:
        self._new_runs()

    def _new_runs(self) -> None:
        if not self.base.is_dir():
            return
        for name in os.listdir(self.base):
            if name in self.seen:
                continue
            try:
                meta = json.loads((self.base / name / "meta.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue  # still being written: the next poll reads it
            self.seen.add(name)
            self.run_of.setdefault(str(meta.get("task_id")), self.base / name)

    def started(self, task_ids: list[str], deadline: float) -> dict[str, float]:
        """task id -> the time its agent printed; ids missing at the deadline never started."""
        found: dict[str, float] = {}
        while time.monotonic() < deadline and len(found) < len(task_ids):
            self._new_runs()
            for task_id in task_ids:
                run_dir = self.run_of.get(task_id)
                if task_id in found or run_dir is None:
                    continue
                try:
                    text = (run_dir / "stdout.log").read_text().strip()
                except OSError:
                    continue
                if text:
                    found[task_id] = float(text.splitlines()[0])
            time.sleep(0.05)
        return found


def file_hotfixes(root: Path, task_ids: list[str]) -> dict[str, float]:
    """Create the files back to back; task id -> the time just before its file was created."""
    folder = root / "tasks" / "hotfix"
    texts = [(task_id, hotfix_text(task_id, task_id.lower())) for task_id in task_ids]
    created: dict[str, float] = {}
    for task_id, text in texts:
        created[task_id] = time.time()
        with open(folder / f"{task_id}.md", "x") as fh:
            fh.write(text)
    return created


def settle_and_remove(root: Path, task_ids: list[str], timeout: float = 60) -> None:
    """Wait until each hotfix left `running` (its job applied its end), then remove the files."""
    folder = root / "tasks" / "hotfix"
    deadline = time.monotonic() + timeout
    for task_id in task_ids:
        path = folder / f"{task_id}.md"
        while time.monotonic() < deadline:
            try:
                status = task.parse(path.read_text()).status
            except (OSError, ShopfloorError):
                break
            if status != "running" and status != "queued":
                break
            time.sleep(0.02)
    for task_id in task_ids:
        (folder / f"{task_id}.md").unlink(missing_ok=True)
    time.sleep(0.3)  # the daemon's rescan after the removals, before the next round


def write_burst(root: Path, tag: str, lead: threading.Event) -> None:
    folder = root / "tasks" / "inbox"
    for n in range(BURST):
        if n == BURST_LEAD:
            lead.set()
        (folder / f"B-{tag}{n:04d}-burst.md").write_text(
            f"---\nid: B-{tag}{n:04d}\ntitle: burst {n}\nstatus: blocked\n---\nbody\n"
        )
    lead.set()


def remove_burst(root: Path, tag: str) -> None:
    folder = root / "tasks" / "inbox"
    for n in range(BURST):
        (folder / f"B-{tag}{n:04d}-burst.md").unlink(missing_ok=True)


def one_round(side: Side, size: int, tag: str, loaded: bool, deadline_s: float) -> None:
    task_ids = [f"HOTFIX-{tag}-{k:02d}" for k in range(size)]
    watcher = side.watcher = side.watcher or RunWatcher(side.root)
    watcher.catch_up()  # the earlier rounds' folders, read before this round's files
    flood = None
    if loaded:
        lead = threading.Event()
        flood = threading.Thread(target=write_burst, args=(side.root, tag.replace("-", ""), lead))
        flood.start()
        lead.wait()
    created = file_hotfixes(side.root, task_ids)
    printed = watcher.started(task_ids, time.monotonic() + deadline_s)
    if flood is not None:
        flood.join()
    reactions = [(printed[t] - created[t]) * 1000 for t in task_ids if t in printed]
    side.reactions.setdefault(size, []).extend(reactions)
    side.round_max.setdefault(size, []).append(max(reactions, default=float("nan")))
    side.lost[size] = side.lost.get(size, 0) + size - len(reactions)
    settle_and_remove(side.root, task_ids)
    if loaded:
        remove_burst(side.root, tag.replace("-", ""))
        time.sleep(0.5)  # the inbox rescans of the removal, outside the next round


def config(linger: float) -> str:
    """bench_hotfix.py's config, its clock agent staying `linger` seconds after it printed."""
    if linger <= 0:
        return CLOCK_CONFIG
    clock = 'command = ["date", "+%s.%N"]'
    assert clock in CLOCK_CONFIG
    return CLOCK_CONFIG.replace(
        clock, f'command = ["sh", "-c", "date +%s.%N; exec sleep {linger:g}"]'
    )


def make_dirty(root: Path) -> None:
    """A human's uncommitted work: a tracked file changed, an untracked one (each hotfix's
    snapshot then stores it: git status, add, write-tree, commit-tree, update-ref)."""
    (root / "app.py").write_text("x = 2  # the human's edit, not committed\n")
    (root / "notes.txt").write_text("the human's untracked draft\n")


def setup(sides: list[Side], loaded: bool, args: argparse.Namespace) -> None:
    """Each side's repository and daemon (each side's `daemon` is set as soon as it runs)."""
    for side in sides:
        make_repo(side.root, config(args.linger))
        if args.dirty:
            make_dirty(side.root)
        if loaded:  # a board at rest: done tasks closed, so the start reconciles none of them
            fill_board(side.root, args.board, Lane.DONE, status="closed")
            board = Board(side.root)
            for n in range(16):
                actions.create_task(board, actions.NewTask(f"hang {n}", "x", backlog=n < 8))
        env = {"PYTHONPATH": side.src} if side.src else None
        side.daemon = daemon = start_daemon(side.root, env)
        wait_started(daemon, timeout=180)
        drain(daemon, side.log)
    if loaded:
        from shopfloor.journal import Journal

        for side in sides:
            journal = Journal.for_project(side.root)
            deadline = time.monotonic() + 120
            while len(journal.runs(state="running")) < 16 and time.monotonic() < deadline:
                time.sleep(0.05)
            running = len(journal.runs(state="running"))
            if running < 16:
                raise RuntimeError(f"{side.label}: only {running} of 16 hung agents started")


def phase(
    label: str, base: Path, srcs: list[str | None], args: argparse.Namespace, loaded: bool
) -> list[Side]:
    sides = [
        Side(_name(src), src, base / f"{label}-{i}", base / f"{label}-{i}.log")
        for i, src in enumerate(srcs)
    ]
    rounds = args.load_rounds if loaded else args.rounds
    try:
        setup(sides, loaded, args)
        for r in range(rounds):
            for size in args.sizes:
                order = sides if r % 2 == 0 else sides[::-1]
                for side in order:
                    tag = f"{label[0]}{r:02d}-{size:02d}"
                    one_round(side, size, tag.upper(), loaded, args.deadline)
    finally:
        for side in sides:
            if side.daemon is not None:
                stop_daemon(side.daemon, side.log)
    return sides


def _name(src: str | None) -> str:
    return src if src else "this checkout"


def report(label: str, sides: list[Side], sizes: list[int]) -> None:
    for size in sizes:
        for side in sides:
            values = side.reactions.get(size, [])
            lost = side.lost.get(size, 0)
            rounds = side.round_max.get(size, [])
            if not values:
                print(f"{label:<5} N={size:<3} {side.label:<28} all lost ({lost})")
                continue
            print(
                f"{label:<5} N={size:<3} {side.label:<28} hotfixes={len(values):<4} "
                f"p50={statistics.median(values):7.1f}  p99={percentile(values, 99):7.1f}  "
                f"max={max(values):7.1f}  median round max={statistics.median(rounds):7.1f} ms"
                f"  lost={lost}"
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 5, 20])
    parser.add_argument("--rounds", type=int, default=8, help="idle rounds per size and side")
    parser.add_argument("--load-rounds", type=int, default=6, help="loaded rounds per size/side")
    parser.add_argument("--board", type=int, default=10_000, help="tasks on the loaded board")
    parser.add_argument("--deadline", type=float, default=20.0, help="seconds before 'lost'")
    parser.add_argument(
        "--src", action="append", default=[], help="a checkout's src/ (repeat to compare)"
    )
    parser.add_argument("--no-load", action="store_true", help="idle only")
    parser.add_argument(
        "--dirty", action="store_true", help="uncommitted work in the tree (snapshots taken)"
    )
    parser.add_argument(
        "--linger", type=float, default=1.0, help="seconds the agent stays (0: bare date)"
    )
    args = parser.parse_args()
    srcs: list[str | None] = [str(Path(s).resolve()) for s in args.src] or [None]
    print("command:", shlex.join([f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}", *sys.argv]))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        idle = [] if args.rounds == 0 else phase("idle", Path(tmp), srcs, args, loaded=False)
        loaded = [] if args.no_load else phase("load", Path(tmp), srcs, args, loaded=True)
    took = time.monotonic() - started
    print(
        f"reaction = file created -> the agent's first act, ms; the run took {took:.0f} s; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the CPUs)"
    )
    report("idle", idle, args.sizes)
    if loaded:
        report("load", loaded, args.sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
