"""The whole pipeline on a cluster: a coordinator daemon with `[scale] engine = "temporal"`, a
real Temporal dev server, a bare remote, and `shopfloor worker`s in their own clones (each a
"machine"), running the scripted pipeline agent."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from shopfloor import actions
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from tests.scale.cluster import Cluster, command_agent, config_text, scale_table, wait_for
from tests.support import git, marks, shopfloor, stop

#: Seconds: a killed worker's runs go elsewhere this long after its last heartbeat.
HEARTBEAT = 3.0
BEHAVIOUR = ("pm:spec", "coder:write", "qa:pass")


def _coordinator(cluster: Cluster, *, coder: int = 4, qa: int = 4, extra: str = "") -> Path:
    """The coordinator's config: the scripted agent (a hotfix runs here), the engine, and
    concurrency enough to keep several workers busy."""
    root = cluster.coordinator
    text = config_text(
        {"a": command_agent(*BEHAVIOUR, "hotfix:patch")},
        pipeline={"concurrency": {"pm": 4, "coder": coder, "qa": qa}},
        scale=scale_table(cluster.server, cluster.task_queue, heartbeat_timeout=HEARTBEAT) + extra,
    )
    (root / "shopfloor.toml").write_text(text)
    git(root, "commit", "--quiet", "-am", "config: the temporal engine")
    git(root, "push", "--quiet", "origin", "main")
    return root


def _worker(cluster: Cluster, name: str, *behaviour: str) -> Path:
    """A worker clone whose agent marks each run it starts in marks-<name>.txt."""
    mark = cluster.tmp / f"marks-{name}.txt"
    agent = command_agent(*BEHAVIOUR, *behaviour, f"*:mark={mark}")
    root = cluster.worker_clone(name, {"a": agent})
    cluster.start_worker(name, root)
    return root


def _file_tasks(root: Path, count: int) -> list[str]:
    board = Board(root)
    return [
        actions.create_task(board, actions.NewTask(f"task {n}", "change a file", False)).id
        for n in range(count)
    ]


def _lanes(root: Path, ids: list[str]) -> Counter[Lane]:
    lanes = {e.id: e.lane for e in Board(root).scan().entries}
    return Counter(lanes.get(i, Lane.INVALID) for i in ids)


def _all_done(root: Path, ids: list[str]) -> bool:
    return _lanes(root, ids)[Lane.DONE] == len(ids)


def _runs(root: Path) -> list[dict[str, Any]]:
    journal = Journal(root / ".shopfloor" / "journal.db")
    try:
        return journal.runs()
    finally:
        journal.close()


def _commits_per_attempt(cluster: Cluster, task_id: str) -> Counter[str]:
    log = cluster.remote_git(
        "log", "--format=%(trailers:key=Shopfloor-Attempt,valueonly)", f"shopfloor/{task_id}"
    )
    return Counter(line.strip() for line in log.splitlines() if line.strip())


def _all_marks(cluster: Cluster) -> list[tuple[str, list[str]]]:
    return [
        (path.stem.removeprefix("marks-"), line)
        for path in sorted(cluster.tmp.glob("marks-*.txt"))
        for line in marks(path)
    ]


def _wait_for_runs(cluster: Cluster, role: str, count: int, deadline: float = 120) -> None:
    """Until `count` runs of `role` have started on the workers."""

    def started() -> bool:
        return sum(m[0] == role for _, m in _all_marks(cluster)) >= count

    wait_for(f"{count} {role} run(s) started", started, deadline)


def test_tasks_go_through_the_pipeline_on_a_worker(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1")
    daemon = cluster.start_daemon()
    try:
        ids = _file_tasks(root, 3)
        wait_for("3 tasks done", lambda: _all_done(root, ids), 120)
    finally:
        assert stop(daemon) == 0
    runs = [r for r in _runs(root) if r["role"] in ("pm", "coder", "qa")]
    assert len(runs) == 9 and {r["worker"] for r in runs} == {"w1"}
    assert all(r["workflow_id"] for r in runs)
    for task_id in ids:
        assert _commits_per_attempt(cluster, task_id) == Counter({"1": 1})
        # The daemon fetched the worker's branch: QA's diff and the landing use it here.
        assert git(root, "rev-parse", f"shopfloor/{task_id}") == cluster.remote_git(
            "rev-parse", f"shopfloor/{task_id}"
        )
    board = Board(root)
    text = board.read_text(board.find(ids[0]))
    assert "## Spec" in text  # written by the PM on the worker, into the file by the daemon
    # No agent ran on the coordinator: every mark is a worker's.
    assert len(_all_marks(cluster)) == 9


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_thirty_tasks_on_three_workers_survive_a_worker_killed_mid_run(cluster: Cluster) -> None:
    root = _coordinator(cluster, coder=6, qa=6)
    _worker(cluster, "w1", "coder:sleep=6")  # long enough to be killed in the middle
    for name in ("w2", "w3"):
        _worker(cluster, name, "coder:sleep=1")
    daemon = cluster.start_daemon()
    try:
        ids = _file_tasks(root, 30)
        # w1 dies in the middle of a coder run: its agent with it, its run elsewhere.
        wait_for(
            "a coder run on w1",
            lambda: any(w == "w1" and m[0] == "coder" for w, m in _all_marks(cluster)),
            180,
        )
        victims = [int(m[4]) for w, m in _all_marks(cluster) if w == "w1"]
        cluster.kill_worker("w1")
        wait_for("w1's agents gone", lambda: not any(psutil.pid_exists(p) for p in victims), 10)
        wait_for("30 tasks done", lambda: _all_done(root, ids), 480)
    finally:
        assert stop(daemon) == 0
    # Every coder attempt committed once; a lost run used no attempt.
    for task_id in ids:
        assert _commits_per_attempt(cluster, task_id) == Counter({"1": 1}), task_id
    runs = _runs(root)
    lost = [r for r in runs if r["outcome"] == "lost"]
    assert lost and {r["worker"] for r in lost} == {"w1"}
    assert all(Board(root).find(i).header.attempts <= 1 for i in ids)
    # No (task, role, attempt) started twice but where its first worker was lost.
    started = Counter((m[0], m[1], m[2]) for _, m in _all_marks(cluster))
    twice = {key for key, n in started.items() if n > 1}
    lost_keys = {(r["role"], r["task_id"], str(r["attempt"])) for r in lost}
    assert twice <= lost_keys


def test_a_killed_coordinator_rejoins_its_runs_and_starts_none_twice(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1", "coder:sleep=4")
    daemon = cluster.start_daemon()
    ids = _file_tasks(root, 2)
    try:
        _wait_for_runs(cluster, "coder", 2)
        stop(daemon, signal.SIGKILL)  # kill -9: its runs go on on the worker
        daemon = cluster.start_daemon()
        wait_for("both tasks done", lambda: _all_done(root, ids), 120)
    finally:
        stop(daemon)
    started = Counter((m[0], m[1], m[2]) for _, m in _all_marks(cluster))
    assert set(started.values()) == {1}, started
    assert len(started) == 6


def test_work_resumes_after_the_temporal_server_restarts(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1", "coder:sleep=3")
    daemon = cluster.start_daemon()
    ids = _file_tasks(root, 2)
    try:
        _wait_for_runs(cluster, "coder", 1)
        cluster.server.restart()
        wait_for("both tasks done", lambda: _all_done(root, ids), 180)
    finally:
        assert stop(daemon) == 0
    for task_id in ids:
        assert _commits_per_attempt(cluster, task_id) == Counter({"1": 1})


def test_with_temporal_down_tasks_wait_and_a_hotfix_runs_here(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    cluster.server.stop()
    daemon = cluster.start_daemon()
    try:
        ids = _file_tasks(root, 1)
        hotfix = actions.create_hotfix(Board(root), "checkout returns 500").id
        wait_for(
            "the hotfix to end",
            lambda: "## Verification" in Board(root).read_text(Board(root).find(hotfix)),
            60,
        )
        wait_for(
            "status to say the engine is down",
            lambda: '"state": "down"' in shopfloor(root, "status", "--json").stdout,
            30,
            every=0.5,
        )
        # The task never ran here by surprise: still waiting in the inbox, no run recorded.
        assert _lanes(root, ids)[Lane.INBOX] == 1
        assert not [r for r in _runs(root) if r["role"] != "hotfix"]
        # Back up, with a worker: it goes through.
        cluster.server.start()
        _worker(cluster, "w1")
        wait_for("the task done", lambda: _all_done(root, ids), 120)
    finally:
        assert stop(daemon) == 0
    log = cluster.daemon_log.read_text()
    # Said once when it went, once when it came back (the notifier's events, in the log).
    assert log.count("event=engine.down") == 1 and log.count("event=engine.up") >= 1


def _coder_run_dir(root: Path, task_id: str) -> Path | None:
    rows = [r for r in _runs(root) if r["task_id"] == task_id and r["role"] == "coder"]
    return Path(rows[-1]["run_dir"]) if rows else None


def test_a_remote_runs_output_reaches_the_coordinators_logs_while_it_runs(
    cluster: Cluster,
) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1", "coder:cost=0.25", "coder:sleep=6")
    daemon = cluster.start_daemon()
    try:
        (task_id,) = _file_tasks(root, 1)

        def mirrored() -> bool:
            run_dir = _coder_run_dir(root, task_id)
            log = run_dir / "stdout.log" if run_dir else None
            return bool(log and log.exists() and "cost_usd" in log.read_text())

        wait_for("the coder's output on the coordinator", mirrored, 60)
        # Still running: the output came with a heartbeat, not with the reply.
        assert not (_coder_run_dir(root, task_id) / "result.json").exists()  # type: ignore[operator]
        assert "cost_usd" in shopfloor(root, "logs", task_id).stdout
        wait_for("the task done", lambda: _all_done(root, [task_id]), 60)
    finally:
        assert stop(daemon) == 0


def test_cancel_stops_the_agent_on_its_worker(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1", "coder:hang")
    daemon = cluster.start_daemon()
    try:
        (task_id,) = _file_tasks(root, 1)
        _wait_for_runs(cluster, "coder", 1)
        (pid,) = [int(m[4]) for _, m in _all_marks(cluster) if m[0] == "coder"]
        shopfloor(root, "cancel", task_id)
        wait_for("the agent on the worker gone", lambda: not psutil.pid_exists(pid), 30)
        wait_for("the task in failed/", lambda: _lanes(root, [task_id])[Lane.FAILED] == 1, 30)
    finally:
        assert stop(daemon) == 0
    assert sum(m[0] == "coder" for _, m in _all_marks(cluster)) == 1  # never run again


REJECT_AGENT_COMMITS = """#!/bin/sh
# The remote refuses commits made by a worker (a protected branch, say).
while read old new ref; do
    if git log -1 --format=%B "$new" | grep -q '^Shopfloor-Run:'; then
        echo "protected: no agent commits" >&2
        exit 1
    fi
done
"""


def test_a_push_the_remote_keeps_refusing_parks_the_task_after_one_run(cluster: Cluster) -> None:
    hook = cluster.remote / "hooks" / "pre-receive"
    hook.write_text(REJECT_AGENT_COMMITS)
    hook.chmod(0o755)
    root = _coordinator(cluster)
    _worker(cluster, "w1")
    daemon = cluster.start_daemon()
    try:
        (task_id,) = _file_tasks(root, 1)

        def parked() -> bool:
            found = Board(root).find(task_id)
            return found.lane is Lane.BACKLOG and found.header.status == "awaiting-human"

        wait_for("the task parked for a human", parked, 90)
    finally:
        assert stop(daemon) == 0
    assert sum(m[0] == "coder" for _, m in _all_marks(cluster)) == 1  # not rerun in a loop
    text = Board(root).read_text(Board(root).find(task_id))
    assert "protected: no agent commits" in text
    assert Board(root).find(task_id).header.attempts == 0  # the agent did its part


def test_an_attempt_another_worker_pushed_first_is_not_pushed_twice(cluster: Cluster) -> None:
    root = _coordinator(cluster)
    _worker(cluster, "w1", "coder:rival")
    daemon = cluster.start_daemon()
    try:
        (task_id,) = _file_tasks(root, 1)
        wait_for("the task done", lambda: _all_done(root, [task_id]), 90)
    finally:
        assert stop(daemon) == 0
    assert _commits_per_attempt(cluster, task_id) == Counter({"1": 1})
    log = cluster.remote_git("log", "--format=%s", f"shopfloor/{task_id}", "-1")
    assert log.strip() == f"{task_id}: rival"  # the first push stands
    text = Board(root).read_text(Board(root).find(task_id))
    assert "coder attempt 1 already committed" in text


def test_two_repositories_on_one_temporal_never_take_each_others_runs(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same `task_queue` name in both: each repository's runs still go only to its own
    workers (the queue is scoped by the repository's first commit)."""
    with monkeypatch.context() as env:  # another project: another first commit
        env.setenv("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
        env.setenv("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
        other = Cluster(tmp_path / "other", cluster.server)
    try:
        roots = [_coordinator(cluster), _coordinator(other)]
        assert cluster.queue != other.queue
        _worker(cluster, "mine")
        _worker(other, "theirs")
        daemons = [c.start_daemon() for c in (cluster, other)]
        try:
            ids = [_file_tasks(root, 2) for root in roots]
            for root, some in zip(roots, ids, strict=True):
                wait_for("the tasks done", lambda r=root, s=some: _all_done(r, s), 120)
        finally:
            for daemon in daemons:
                assert stop(daemon) == 0
        assert {r["worker"] for r in _runs(roots[0]) if r["worker"]} == {"mine"}
        assert {r["worker"] for r in _runs(roots[1]) if r["worker"]} == {"theirs"}
    finally:
        other.close()
