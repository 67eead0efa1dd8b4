"""SIGTERM during a burst, N times: how many stops end within the grace, and how long they take.

Each round starts `shopfloor run` on a project whose agents hang (2 PM, 2 coder slots busy,
hotfixes too), waits for it to start, writes a burst of inbox requests and hotfixes, and
SIGTERMs it at a random moment of the burst. The stop time runs from the signal to the
process's exit. Three projects take turns so the rounds overlap (start-ups are most of the
time). `[pipeline] stop_grace` is 2 s.

    .venv/bin/python benchmarks/bench_stop.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _project import make_repo, percentile

from shopfloor import scheduler, task

GRACE = 2.0
CONFIG = f"""
[agents.hang]
backend = "command"
command = ["sleep", "3600"]
[roles]
pm = "hang"
coder = "hang"
qa = "hang"
hotfix = "hang"
[pipeline]
checks = []
concurrency = {{ pm = 2, coder = 2, qa = 1 }}
stop_grace = {GRACE}
"""


def burst(root: Path, stop: threading.Event, round_no: int) -> None:
    for n in range(300):
        if stop.is_set():
            return
        lane, prefix, kind = (
            ("hotfix", "HOTFIX-", "hotfix") if n % 60 == 0 else ("inbox", "T-", "feature")
        )
        task_id = f"{prefix}{round_no:03d}{n:04d}"
        header = task.Header(id=task_id, title=f"burst {n}", type=kind)
        (root / "tasks" / lane / f"{task_id}.md").write_text(task.render_new(header, sections={}))


def clear(root: Path) -> None:
    for lane in ("inbox", "hotfix", "backlog", "failed", "invalid"):
        for path in (root / "tasks" / lane).iterdir():
            if path.is_file():
                path.unlink()


def one_round(root: Path, round_no: int, rng: random.Random) -> tuple[float, int | None]:
    clear(root)
    log = root.parent / "daemon.log"
    mark = log.stat().st_size if log.exists() else 0
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with log.open("rb") as fh:
            fh.seek(mark)
            if b"notify.daemon_" in fh.read():
                break
        time.sleep(0.01)
    done = threading.Event()
    writer = threading.Thread(target=burst, args=(root, done, round_no))
    writer.start()
    time.sleep(rng.uniform(0.05, 0.5))
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = proc.wait(60)
    except subprocess.TimeoutExpired:
        code = None
        proc.kill()
        proc.wait()
    took = time.monotonic() - began
    done.set()
    writer.join()
    return took, code


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=3)
    args = parser.parse_args()
    results: list[tuple[float, int | None]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:

        def worker(k: int) -> None:
            root = make_repo(Path(tmp) / f"p{k}" / "repo", CONFIG)
            rng = random.Random(k)
            for n in range(k, args.rounds, args.parallel):
                results.append(one_round(root, n, rng))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.parallel)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
    times = [t for t, _ in results]
    within = sum(1 for t, code in results if code is not None and t <= GRACE)
    within_slack = sum(
        1 for t, code in results if code is not None and t <= GRACE + scheduler.STOP_SLACK
    )
    codes = sorted({str(code) for _, code in results})
    print(
        f"python {sys.version.split()[0]}; load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (1-minute average); {wall:.0f} s for {len(results)}"
    )
    print(
        f"SIGTERM during a burst: {len(results)} rounds, stop_grace {GRACE:g} s: "
        f"{within} within the grace, {within_slack} within grace + {scheduler.STOP_SLACK:g} s; "
        f"p50={statistics.median(times) * 1000:.0f} ms p99={percentile(times, 99) * 1000:.0f} ms "
        f"max={max(times) * 1000:.0f} ms; exit codes {', '.join(codes)}"
    )
    return 0 if within == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
