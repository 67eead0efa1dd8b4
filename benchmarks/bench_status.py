"""`shopfloor status` (for people) and `status --json` on boards of 1,000 and 10,000 task
files, start-up included; and (issue 14) side by side with Backlog.md 1.52.0.

    .venv/bin/python benchmarks/bench_status.py [--sizes 1000 10000] [--runs 15]
    .venv/bin/python benchmarks/bench_status.py --versus-backlog 10000 --runs 9 [--no-pyc]

`--versus-backlog N` builds three boards of N tasks (a Shopfloor board with a daemon running
on it, the same board without one, and a Backlog.md board of its own task files, written in
its format) and runs `status --json` / `status --json` / `backlog task list --plain` in turn,
reporting median wall time and peak RSS (from wait4) of each.

Each board is a fresh git repository whose task files are spread over the lanes like a
long-lived project (most in done/), written the way Shopfloor writes them (front matter, a
request, a spec and tracker lines: about 3 KB each). `status --json` runs as a subprocess, so
the numbers include Python's start-up and imports; `python -c pass` and
`python -c "import shopfloor.cli"` are measured the same way to show what dominates.
The human `status` (80 columns: stdout is a pipe), `status --all` (every task a line) and
`status --json` are run in turn within each round, so a slow moment of the machine falls on
all three alike (issue 10: the human view within 2x of --json at 10,000 tasks).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shopfloor import scaffold, task

#: Share of the board in each lane (the rest goes to done/).
SPREAD = {"inbox": 0.05, "backlog": 0.08, "active": 0.01, "review": 0.01, "failed": 0.05}

SPEC = (
    "**Context** The sender gives up after one failed HTTP call, so a short outage loses the "
    "message. Retrying with exponential backoff keeps it.\n\n"
    "**Plan**\n- `notify/telegram.py`: wrap `send()` in a retry loop (base 1 s, cap 60 s).\n"
    "- `tests/test_telegram.py`: a fake server that fails twice, then succeeds.\n\n"
    "**Acceptance criteria**\n1. A send that fails twice then succeeds is delivered once.\n"
    "2. After 5 failures the message stays in the outbox with the error recorded.\n"
    "3. No retry blocks the daemon loop for more than 100 ms.\n\n"
    "**Test plan** `pytest -q tests/test_telegram.py`\n\n"
)


def task_file(n: int, lane: str) -> str:
    header = task.Header(
        id=f"T-{n:04d}",
        title=f"Retry Telegram sends with backoff, part {n}",
        type=("feature", "bug", "chore")[n % 3],
        priority=f"P{n % 4}",
        # What a long-lived board holds still under a daemon: closed in done/, parked elsewhere.
        status="closed" if lane in ("done", "failed") else "awaiting-human",
        attempts=n % 3,
        depends_on=[f"T-{n - 1:04d}"] if n % 7 == 0 else [],
        created="2026-11-25T10:00:00Z",
        updated="2026-11-25T10:09:12Z",
    )
    tracker = "\n- ".join(
        f"2026-11-25T10:0{i}:00Z {role} claude run R-{n}{i} ok 41s $0.03 — step {i}"
        for i, role in enumerate(("pm", "coder", "checks", "qa", "coder", "qa"))
    )
    return task.render_new(
        header,
        sections={"Request": f"What the human asked for, request {n}.\n" * 3, "Spec": SPEC * 3},
        tracker=tracker,
    )


def make_board(root: Path, count: int, spread: dict[str, float] = SPREAD) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    scaffold.init(root, agents=[])
    lanes = [lane for lane, share in spread.items() for _ in range(round(count * share))]
    lanes += ["hotfix"] * 2
    lanes += ["done"] * (count - len(lanes))
    settled = time.time() - 3600  # a real board's files are older than the cache's racy window
    for n, lane in enumerate(lanes, start=1):
        name = f"T-{n:04d}-retry-telegram-sends-with-backoff-part-{n}.md"
        path = root / "tasks" / lane / name
        path.write_text(task_file(n, lane))
        os.utime(path, (settled, settled))


def timed(
    argv: list[str], runs: int, cwd: Path | None = None, before: Callable[[], None] | None = None
) -> list[float]:
    """Wall times in ms of `runs` runs (after one warm-up run that fills the page cache)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, env=env)
        times.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
    return times


def alternating(argvs: list[list[str]], runs: int, cwd: Path) -> list[list[float]]:
    """Wall times in ms of each command, run in turn `runs` times (after one warm-up each)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0", "COLUMNS": "80"}
    for argv in argvs:
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
    times: list[list[float]] = [[] for _ in argvs]
    for _ in range(runs):
        for argv, samples in zip(argvs, times, strict=True):
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, env=env)
            samples.append((time.perf_counter() - start) * 1000)
            if proc.returncode != 0:
                raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
    return times


def pyc_present() -> bool:
    """Whether shopfloor's modules had compiled .pyc files before this benchmark ran."""
    import shopfloor

    return any(Path(shopfloor.__file__).parent.glob("**/__pycache__/*.pyc"))


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def row(label: str, samples: list[list[float]]) -> str:
    cells = "".join(f"{statistics.median(s):>10.0f} {p90(s):>6.0f}" for s in samples)
    return f"{label:<34}{cells}"


# ---------------------------------------------------------------------------- side by side
# Issue 14: `status --json` with a daemon running and without one (the status index warm),
# against Backlog.md 1.52.0's `backlog task list --plain` on as many of its own tasks.

BACKLOG = Path(__file__).resolve().parents[1] / ".cache/bench-backlog/node_modules/.bin/backlog"
#: A board a daemon holds still: nothing in active/ (only a live run's task is there).
AT_REST = {**SPREAD, "active": 0.0, "review": SPREAD["review"] + SPREAD["active"]}
BACKLOG_STATUS = {"inbox": "To Do", "backlog": "To Do", "active": "In Progress"}
BACKLOG_STATUS |= {"review": "In Progress", "failed": "To Do", "hotfix": "In Progress"}


def backlog_task_file(n: int, lane: str) -> str:
    """A task as Backlog.md 1.52.0 writes it (`backlog task create` with a description,
    acceptance criteria, a plan and notes), about as long as the Shopfloor task above."""
    deps = f"\n  - TASK-{n - 1}" if n % 7 == 0 else " []"
    criteria = "\n".join(
        f"- [ ] #{i} {line}"
        for i, line in enumerate(
            (
                "A send that fails twice then succeeds is delivered once.",
                "After 5 failures the message stays in the outbox with the error recorded.",
                "No retry blocks the daemon loop for more than 100 ms.",
            ),
            start=1,
        )
    )
    return (
        f"---\nid: TASK-{n}\ntitle: 'Retry Telegram sends with backoff, part {n}'\n"
        f"status: {BACKLOG_STATUS.get(lane, 'Done')}\nassignee: []\n"
        f"created_date: '2026-11-25 10:00'\nlabels:\n  - {('feature', 'bug', 'chore')[n % 3]}\n"
        f"dependencies:{deps}\npriority: {('high', 'medium', 'low')[n % 3]}\n"
        f"ordinal: {n * 1000}\n---\n\n## Description\n\n<!-- SECTION:DESCRIPTION:BEGIN -->\n"
        + f"What the human asked for, request {n}.\n" * 3
        + SPEC * 2
        + "<!-- SECTION:DESCRIPTION:END -->\n\n## Acceptance Criteria\n<!-- AC:BEGIN -->\n"
        + criteria
        + "\n<!-- AC:END -->\n\n## Implementation Plan\n\n<!-- SECTION:PLAN:BEGIN -->\n"
        + SPEC
        + "<!-- SECTION:PLAN:END -->\n\n## Implementation Notes\n\n"
        + "<!-- SECTION:NOTES:BEGIN -->\n"
        + "\n".join(f"step {i} done in 41 s" for i in range(6))
        + "\n<!-- SECTION:NOTES:END -->\n"
    )


def make_backlog_board(root: Path, count: int, backlog: Path) -> None:
    """A git repository with `backlog init` (its defaults) and `count` task files written
    directly in its format, in the same lane mix as the Shopfloor board."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    subprocess.run(
        [str(backlog), "init", "bench", "--defaults", "--agent-instructions", "none"],
        cwd=root,
        check=True,
        capture_output=True,
    )
    lanes = [lane for lane, share in SPREAD.items() for _ in range(round(count * share))]
    lanes += ["hotfix"] * 2
    lanes += ["done"] * (count - len(lanes))
    tasks = root / "backlog" / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    for n, lane in enumerate(lanes, start=1):
        name = f"task-{n} - Retry-Telegram-sends-with-backoff-part-{n}.md"
        (tasks / name).write_text(backlog_task_file(n, lane))


def measured(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """(wall ms, peak RSS KiB) of one run, through GNU time: the peak RSS of a process
    forked from this (large) Python would start at this process's size. It covers what the
    command waited for (Backlog.md's node launcher and its binary)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
            cwd=cwd,
            env=env,
            capture_output=True,
        )
        wall = (time.perf_counter() - start) * 1000
        if proc.returncode != 0 or not proc.stdout:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-2000:]}")
        LISTED.setdefault(argv[-1], []).append(proc.stdout.count(b"TASK-"))
        return wall, int(rss.read().split()[-1])


#: Tasks each Backlog.md run listed (keyed by its last word, "--plain"): it drops some
#: under load, so the count is reported, not assumed.
LISTED: dict[str, list[int]] = {}


def child_env(pyc: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not pyc:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def drop_pyc() -> None:
    import shutil

    import shopfloor

    for cache in Path(shopfloor.__file__).parent.glob("**/__pycache__"):
        shutil.rmtree(cache)


def side_by_side(count: int, runs: int, backlog: Path, pyc: bool) -> None:
    from shopfloor import statusd

    python = sys.executable
    env = child_env(pyc)
    if not pyc:
        drop_pyc()
    with tempfile.TemporaryDirectory() as tmp:
        with_daemon, without = Path(tmp) / "sf-daemon", Path(tmp) / "sf-index"
        make_board(with_daemon, count, AT_REST)
        make_board(without, count, AT_REST)
        make_backlog_board(Path(tmp) / "backlog", count, backlog)
        log = open(Path(tmp) / "daemon.log", "wb")  # noqa: SIM115 - closed below
        daemon = subprocess.Popen(
            [python, "-m", "shopfloor", "-C", str(with_daemon), "run"],
            stdout=log,
            stderr=log,
            env=env,
        )
        try:
            root = str(with_daemon.resolve())
            deadline = time.monotonic() + 300
            while statusd.ask(root, timeout=30) is None:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("the daemon did not answer on its socket")
                time.sleep(0.1)
            status = [python, "-m", "shopfloor", "status", "--json"]
            cells = {
                "shopfloor status --json, daemon running": (status, with_daemon),
                "shopfloor status --json, no daemon": (status, without),
                "python -c print(1) (start-up floor)": ([python, "-c", "print(1)"], without),
                "backlog task list --plain (1.52.0)": (
                    [str(backlog), "task", "list", "--plain"],
                    Path(tmp) / "backlog",
                ),
            }
            check_same_boards(with_daemon, without, Path(tmp) / "backlog", count, env)
            for argv, cwd in cells.values():
                measured(argv, cwd, env)  # warm-up: page cache, the index, .pyc files
            samples: dict[str, list[tuple[float, int]]] = {label: [] for label in cells}
            for _ in range(runs):
                for label, (argv, cwd) in cells.items():
                    samples[label].append(measured(argv, cwd, env))
            daemon_answered = statusd.ask(root) is not None
        finally:
            daemon.terminate()
            daemon.wait(60)
            log.close()
    print_side_by_side(count, runs, samples, pyc, daemon_answered)


def check_same_boards(sf: Path, sf2: Path, bl: Path, count: int, env: dict[str, str]) -> None:
    """Both Shopfloor boards list the same tasks; Backlog.md lists all of its own."""
    import json

    python = sys.executable
    docs = [
        json.loads(
            subprocess.run(
                [python, "-m", "shopfloor", "status", "--json"],
                cwd=root,
                env=env,
                capture_output=True,
                check=True,
            ).stdout
        )
        for root in (sf, sf2)
    ]
    differ = [(a, b) for a, b in zip(*(d["tasks"] for d in docs), strict=True) if a != b]
    assert not differ and len(docs[0]["tasks"]) == count, f"boards differ: {differ[:3]}"
    listed = subprocess.run(
        [str(BACKLOG), "task", "list", "--plain"], cwd=bl, capture_output=True, check=True
    ).stdout.decode()
    assert listed.count("TASK-") > count * 0.9, f"backlog listed {listed.count('TASK-')} tasks"


def print_side_by_side(
    count: int, runs: int, samples: dict[str, list[tuple[float, int]]], pyc: bool, daemon: bool
) -> None:
    backlog_label = next(label for label in samples if label.startswith("backlog"))
    base_wall = statistics.median(w for w, _ in samples[backlog_label])
    base_rss = statistics.median(r for _, r in samples[backlog_label])
    print(f"side by side, N={count:,}, {runs} alternating runs each (after one warm-up)")
    head = f"{'command':<42}{'wall ms median':>15}{'p90':>7}{'peak RSS MiB':>14}"
    print(f"{head}{'faster':>8}{'less RSS':>10}")
    for label, cell in samples.items():
        walls = [w for w, _ in cell]
        rss = statistics.median(r for _, r in cell)
        print(
            f"{label:<42}{statistics.median(walls):>15.0f}{p90(walls):>7.0f}{rss / 1024:>14.1f}"
            f"{base_wall / statistics.median(walls):>7.1f}x{base_rss / rss:>9.1f}x"
        )
    counts = LISTED.get("--plain", [0])
    print(f"Backlog.md listed {min(counts):,} to {max(counts):,} of its {count:,} tasks per run")
    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; shopfloor .pyc files: "
        f"{'allowed (written by the warm-up)' if pyc else 'none (PYTHONDONTWRITEBYTECODE=1)'}; "
        f"the daemon still answered at the end: {'yes' if daemon else 'NO'}; "
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--versus-backlog",
        type=int,
        metavar="N",
        help="only the issue-14 comparison: N tasks, daemon / no daemon / Backlog.md 1.52.0 "
        f"(installed with `npm install backlog.md@1.52.0` in {BACKLOG.parents[2]})",
    )
    parser.add_argument("--no-pyc", action="store_true", help="run without .pyc files")
    args = parser.parse_args()
    if args.versus_backlog:
        side_by_side(args.versus_backlog, args.runs, BACKLOG, pyc=not args.no_pyc)
        return 0
    python = sys.executable
    had_pyc = pyc_present()
    status: list[list[float]] = []
    human: list[list[float]] = []
    human_all: list[list[float]] = []
    cold: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = Path(tmp) / f"board-{size}"
            make_board(root, size)
            argv = [python, "-m", "shopfloor", "status", "--json"]
            check = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True)
            assert f'"done": {size - sum(round(size * s) for s in SPREAD.values()) - 2}' in (
                check.stdout
            ), "the benchmark board was not read as generated"
            cache = root / ".shopfloor" / "cache" / "headers.json"
            cold.append(timed(argv, args.runs, root, before=lambda c=cache: c.unlink(True)))
            people = [python, "-m", "shopfloor", "status"]
            every = [*people, "--all"]
            json_ms, human_ms, all_ms = alternating([argv, people, every], args.runs, root)
            status.append(json_ms)
            human.append(human_ms)
            human_all.append(all_ms)
    baseline_pass = timed([python, "-c", "pass"], args.runs)
    baseline_import = timed([python, "-c", "import shopfloor.cli"], args.runs)
    head = "".join(f"{f'N={n:,}':>17}" for n in args.sizes)
    print(f"{'wall time, ms (median p90)':<34}{head}")
    print(row("status --json (header cache warm)", status))
    print(row("status, for people (80 columns)", human))
    print(row("status --all, for people", human_all))
    print(row("status --json (no cache: first run)", cold))
    print(row("python -c pass", [baseline_pass] * len(args.sizes)))
    print(row('python -c "import shopfloor.cli"', [baseline_import] * len(args.sizes)))
    ratios = ", ".join(
        f"N={n:,}: {statistics.median(h) / statistics.median(j):.2f}x"
        for n, h, j in zip(args.sizes, human, status, strict=True)
    )
    print(f"status / status --json (medians): {ratios}")
    print(
        f"runs per cell: {args.runs}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
        f".pyc files before the run: {'yes' if had_pyc else 'no'}, "
        f"after its warm-up runs: {'yes' if pyc_present() else 'no'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
