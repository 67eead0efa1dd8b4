"""`shopfloor worker` against a real Temporal dev server, driven through RunWorkflow directly
(no daemon): real worker subprocesses, real git remotes, the scripted pipeline agent."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from shopfloor import runner
from shopfloor.scale.contract import WORKFLOW, Progress, RunReply, RunRequest, workflow_id
from tests.scale.cluster import Cluster, command_agent, run_async, wait_for
from tests.support import git

OK_CHECK = [sys.executable, "-c", "print('1 passed')"]
HEARTBEAT = 3.0  # seconds: a dead worker's run moves on quickly


def request(cluster: Cluster, entry: Any, role: str, **fields: Any) -> RunRequest:
    text = entry.path.read_text()
    base = fields.pop("base", "")
    round_ = fields.pop("round_", 0)
    attempt = fields.pop("attempt", 1)
    return RunRequest(
        workflow_id=workflow_id("repo", entry.id, role, attempt, round_),
        repo_id="repo",
        task_id=entry.id,
        role=role,
        attempt=attempt,
        agent=fields.pop("agent", "a"),
        task_file=str(entry.path.relative_to(cluster.coordinator)),
        task_text=text,
        values={"task_text": text, **fields.pop("values", {})},
        branch=f"shopfloor/{entry.id}",
        base=base,
        heartbeat_timeout=HEARTBEAT,
        timeout=120.0,
        **fields,
    )


async def _execute(cluster: Cluster, req: RunRequest) -> RunReply:
    client = await cluster.client()
    reply: RunReply = await client.execute_workflow(
        WORKFLOW, req, id=req.workflow_id, task_queue=cluster.queue, result_type=RunReply
    )
    return reply


def execute(cluster: Cluster, req: RunRequest, timeout: float = 90.0) -> RunReply:
    reply: RunReply = run_async(_execute(cluster, req), timeout)
    return reply


def marks(path: Path) -> list[list[str]]:
    """The agent's mark= lines: role task attempt run pid."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------------------- the three roles


def test_pm_run_returns_the_task_file_with_its_spec(cluster: Cluster) -> None:
    root = cluster.worker_clone("w1", {"a": command_agent("pm:spec")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Add a thing")
    reply = execute(cluster, request(cluster, entry, "pm"))
    assert reply.outcome == "ok", reply
    assert reply.worker == "w1" and reply.run_id.startswith("R-")
    assert reply.task_text is not None and "## Spec" in reply.task_text
    assert "## Spec" not in entry.path.read_text()  # the daemon's copy is the daemon's to write
    assert reply.lost == []
    # The worktree is gone afterwards; the run folder stays on the worker.
    assert not (root / ".shopfloor" / "worker" / req_dir(entry, "pm")).exists()
    assert (root / ".shopfloor" / "runs" / reply.run_id / "stdout.log").exists()


def req_dir(entry: Any, role: str) -> str:
    return workflow_id("repo", entry.id, role, 1, 0)


def test_coder_run_pushes_a_commit_with_trailers_and_returns_the_checks(cluster: Cluster) -> None:
    root = cluster.worker_clone(
        "w1", {"a": command_agent("coder:write")}, pipeline={"checks": [OK_CHECK]}
    )
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Write a change")
    base = cluster.push_branch(entry.id)
    reply = execute(cluster, request(cluster, entry, "coder", base=base, run_checks=True))
    assert reply.outcome == "ok" and reply.result.get("outcome") == "ok", reply
    assert not reply.already_committed
    tip = cluster.remote_git("rev-parse", f"shopfloor/{entry.id}").strip()
    assert reply.commit == tip and tip != base
    trailers = cluster.remote_git("log", "-1", "--format=%(trailers:only,unfold)", tip)
    assert f"Shopfloor-Task: {entry.id}" in trailers
    assert "Shopfloor-Attempt: 1" in trailers
    assert f"Shopfloor-Run: {reply.run_id}" in trailers
    assert f"change-{entry.id}.txt" in cluster.remote_git("show", "--stat", tip)
    assert "1 file changed" in reply.diffstat
    assert reply.checks is not None and [c["exit_code"] for c in reply.checks] == [0]
    assert "1 passed" in reply.checks[0]["tail"]


@pytest.mark.parametrize("verdict", ["pass", "fail"])
def test_qa_run_returns_the_verdict(cluster: Cluster, verdict: str) -> None:
    root = cluster.worker_clone("w1", {"a": command_agent(f"qa:{verdict}")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Review a change")
    base = cluster.push_branch(entry.id)
    req = request(cluster, entry, "qa", base=base, values={"diff": "(empty)", "check_output": ""})
    reply = execute(cluster, req)
    assert reply.outcome == "ok", reply
    assert reply.result["verdict"] == verdict


def test_a_coder_attempt_already_pushed_is_not_run_again(cluster: Cluster, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    root = cluster.worker_clone(
        "w1", {"a": command_agent(f"coder:mark={mark}", "coder:write")}, pipeline={"checks": []}
    )
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Once only")
    base = cluster.push_branch(entry.id)
    first = execute(cluster, request(cluster, entry, "coder", base=base, run_checks=True))
    assert first.commit and not first.already_committed
    assert len(marks(mark)) == 1
    again = request(cluster, entry, "coder", base=base, run_checks=True, round_=1)
    second = execute(cluster, again)
    assert second.already_committed and second.commit == first.commit
    assert second.checks == []  # the checks still run: none configured
    assert len(marks(mark)) == 1, "the agent ran again"
    # A later attempt (a rework: `since` the first commit) is a new run.
    later = request(cluster, entry, "coder", base=base, attempt=1, round_=2, since=first.commit)
    third = execute(cluster, later)
    assert not third.already_committed and third.commit != first.commit
    assert len(marks(mark)) == 2


# ---------------------------------------------------------------------------- routing


def test_a_worker_without_the_agent_never_gets_its_runs(cluster: Cluster) -> None:
    missing = {"backend": "command", "command": ["/nonexistent/agent-x"], "timeout": "60s"}
    plain = cluster.worker_clone("plain", {"a": command_agent("pm:spec"), "x": missing})
    special = cluster.worker_clone(
        "special", {"a": command_agent("pm:spec"), "x": command_agent("pm:spec")}
    )
    cluster.start_worker("plain", plain)
    cluster.start_worker("special", special)
    assert "agents=a\n" in cluster.workers["plain"].text()
    assert "agents=a,x" in cluster.workers["special"].text()
    entries = [cluster.new_task(f"Task {n}") for n in range(3)]

    async def all_runs() -> list[RunReply]:
        import asyncio

        client = await cluster.client()
        handles = [
            await client.start_workflow(
                WORKFLOW,
                request(cluster, e, "pm", agent="x"),
                id=req_dir(e, "pm"),
                task_queue=cluster.queue,
                result_type=RunReply,
            )
            for e in entries
        ]
        return list(await asyncio.gather(*(h.result() for h in handles)))

    replies = run_async(all_runs(), 90)
    assert [r.worker for r in replies] == ["special"] * 3
    assert all(r.outcome == "ok" for r in replies)


# ---------------------------------------------------------------------------- stopping


def test_cancel_kills_the_agents_process_group(cluster: Cluster, tmp_path: Path) -> None:
    from temporalio.client import WorkflowFailureError

    mark = tmp_path / "marks"
    root = cluster.worker_clone("w1", {"a": command_agent(f"coder:mark={mark}", "coder:stubborn")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Hang")
    base = cluster.push_branch(entry.id)
    req = request(cluster, entry, "coder", base=base)

    async def cancel_it() -> BaseException | None:
        client = await cluster.client()
        handle = await client.start_workflow(
            WORKFLOW, req, id=req.workflow_id, task_queue=cluster.queue, result_type=RunReply
        )
        import asyncio

        while not marks(mark):
            await asyncio.sleep(0.05)
        await handle.cancel()
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            return exc
        return None

    failure = run_async(cancel_it(), 90)
    assert failure is not None, "the cancelled run still returned a reply"
    pid = int(marks(mark)[0][4])
    # The cancel completes only once the agent is gone: its whole group, the child too.
    assert not runner.group_alive(pid), (repr(failure.__cause__), cluster.workers["w1"].text())
    assert gone(pid)


def test_a_killed_worker_s_run_finishes_elsewhere_and_its_agent_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    mark = tmp_path / "marks"
    agent = command_agent(f"coder:mark={mark}", "coder:sleep=8", "coder:write")
    for name in ("w1", "w2"):
        cluster.start_worker(name, cluster.worker_clone(name, {"a": agent}))
    entry = cluster.new_task("Survive a crash")
    base = cluster.push_branch(entry.id)
    req = request(cluster, entry, "coder", base=base)

    async def run_through_a_crash() -> tuple[RunReply, str, int]:
        import asyncio

        client = await cluster.client()
        handle = await client.start_workflow(
            WORKFLOW, req, id=req.workflow_id, task_queue=cluster.queue, result_type=RunReply
        )
        while not marks(mark):
            await asyncio.sleep(0.05)
        first_pid = int(marks(mark)[0][4])
        parent = psutil.Process(first_pid).ppid()
        victim = next(w.name for w in cluster.workers.values() if w.proc.pid == parent)
        cluster.workers[victim].proc.send_signal(signal.SIGKILL)
        # The agent dies with its worker, at once: well before Temporal moves the run.
        start = time.monotonic()
        while not gone(first_pid):
            assert time.monotonic() - start < 2.0, "the dead worker's agent is still running"
            await asyncio.sleep(0.02)
        assert len(marks(mark)) == 1, "a second agent started while the first still ran"
        return await handle.result(), victim, first_pid

    reply, victim, first_pid = run_async(run_through_a_crash(), 120)
    cluster.workers[victim].proc.wait(10)
    survivor = "w2" if victim == "w1" else "w1"
    assert reply.worker == survivor and reply.outcome == "ok", reply
    assert [(lost["worker"], lost["why"]) for lost in reply.lost] == [(victim, "heartbeat lapsed")]
    assert reply.lost[0]["run_id"].startswith("R-")
    lines = marks(mark)
    assert len(lines) == 2 and int(lines[1][4]) != first_pid
    assert cluster.remote_git("rev-parse", f"shopfloor/{entry.id}").strip() == reply.commit
    # Started again, the dead worker removes the worktree it left.
    left = cluster.workers[victim].root / ".shopfloor" / "worker" / req.workflow_id
    assert left.is_dir()
    cluster.start_worker(victim, cluster.workers[victim].root)
    assert not left.exists()


def test_sigterm_stops_the_worker_its_run_goes_to_the_next(
    cluster: Cluster, tmp_path: Path
) -> None:
    mark = tmp_path / "marks"
    agent = command_agent(f"coder:mark={mark}", "coder:sleep=4", "coder:write")
    cluster.start_worker("w1", cluster.worker_clone("w1", {"a": agent}))
    entry = cluster.new_task("Stopped midway")
    base = cluster.push_branch(entry.id)
    req = request(cluster, entry, "coder", base=base)

    async def start() -> None:
        client = await cluster.client()
        await client.start_workflow(
            WORKFLOW, req, id=req.workflow_id, task_queue=cluster.queue, result_type=RunReply
        )

    run_async(start(), 30)
    pid = int(wait_for("the agent to start", lambda: marks(mark), 30)[0][4])
    assert cluster.stop_worker("w1", timeout=30) == 0
    assert gone(pid)
    assert "event=worker.stop" in cluster.workers["w1"].text()
    cluster.start_worker("w2", cluster.worker_clone("w2", {"a": agent}))

    async def result() -> RunReply:
        client = await cluster.client()
        handle = client.get_workflow_handle(req.workflow_id, result_type=RunReply)
        reply: RunReply = await handle.result()
        return reply

    reply = run_async(result(), 60)
    assert reply.worker == "w2" and reply.outcome == "ok", reply
    assert [(x["worker"], x["why"]) for x in reply.lost] == [("w1", "worker stopping")]
    assert len(marks(mark)) == 2


async def pending_progress(client: Any, workflow: str) -> Progress | None:
    """The newest heartbeat of a workflow's running activity, as a daemon reads it."""
    description = await client.get_workflow_handle(workflow).describe()
    for pending in description.raw_description.pending_activities:
        if pending.heartbeat_details.payloads:
            decoded = await client.data_converter.decode(
                pending.heartbeat_details.payloads, [Progress]
            )
            return decoded[0] if isinstance(decoded[0], Progress) else None
    return None


def test_heartbeats_carry_the_worker_the_run_and_its_newest_output(
    cluster: Cluster, tmp_path: Path
) -> None:
    import asyncio

    root = cluster.worker_clone("w1", {"a": command_agent("coder:cost=0.25", "coder:sleep=5")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Talk while working")
    base = cluster.push_branch(entry.id)
    req = request(cluster, entry, "coder", base=base)

    async def watch() -> tuple[Progress, RunReply]:
        client = await cluster.client()
        handle = await client.start_workflow(
            WORKFLOW, req, id=req.workflow_id, task_queue=cluster.queue, result_type=RunReply
        )
        end = time.monotonic() + 30
        while True:
            progress = await pending_progress(client, req.workflow_id)
            if progress is not None and "cost_usd" in progress.chunk:
                break
            assert time.monotonic() < end, f"no output in the heartbeats: {progress}"
            await asyncio.sleep(0.2)
        return progress, await handle.result()

    progress, reply = run_async(watch(), 60)
    assert progress.worker == "w1" and progress.run_id == reply.run_id
    assert progress.offset == 0 and progress.lost == []
    assert '"cost_usd": 0.25' in progress.chunk
    assert reply.cost_usd == 0.25 and reply.tokens_in == 1000
    assert '"cost_usd": 0.25' in reply.log_tail


def test_a_run_the_worker_can_never_do_is_refused_not_retried(cluster: Cluster) -> None:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ApplicationError

    # "x y" and "x_y" share a queue; this worker defines only the second.
    root = cluster.worker_clone("w1", {"x_y": command_agent("pm:spec")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Ask the wrong agent")
    req = request(cluster, entry, "pm", agent="x y")

    async def refused() -> BaseException:
        with pytest.raises(WorkflowFailureError) as caught:
            await _execute(cluster, req)
        return caught.value

    failure = run_async(refused(), 60)
    cause = failure.__cause__
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "RunRefused", failure
    assert "agent 'x y' is not in this worker's [agents]" in str(cause)


def test_a_failed_coder_pushes_nothing_and_keeps_its_work_on_the_worker(cluster: Cluster) -> None:
    root = cluster.worker_clone("w1", {"a": command_agent("coder:touch=wip.txt", "coder:exit3")})
    cluster.start_worker("w1", root)
    entry = cluster.new_task("Fail halfway")
    base = cluster.push_branch(entry.id)
    reply = execute(cluster, request(cluster, entry, "coder", base=base, run_checks=True))
    assert reply.result.get("outcome") == "fail" and reply.exit_code == 3, reply
    assert reply.commit is None and reply.checks is None
    assert cluster.remote_git("rev-parse", f"shopfloor/{entry.id}").strip() == base
    kept = f"refs/shopfloor/snapshots/{entry.id}/{reply.run_id}"
    assert "wip.txt" in git(root, "show", "--stat", kept)
