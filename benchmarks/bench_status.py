"""`shopfloor status` (for people) and `status --json` on boards of 1,000 and 10,000 task
files, start-up included.

    .venv/bin/python benchmarks/bench_status.py [--sizes 1000 10000] [--runs 15]

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
        status="queued",
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


def make_board(root: Path, count: int) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    scaffold.init(root, agents=[])
    lanes = [lane for lane, share in SPREAD.items() for _ in range(round(count * share))]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
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
