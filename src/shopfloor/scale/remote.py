"""One PM, Coder or QA run on a `shopfloor worker`, as the daemon sees it: the same run folder,
journal row and judgement as a local run (`shop.run_agent`), the agent elsewhere.

The daemon keeps its own run folder for each remote run: meta.json, stdout.log mirrored from
the worker's heartbeats (so `shopfloor logs -f` follows it), result.json when it ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shopfloor import _fs, budget
from shopfloor.agents import Outcome, Parsed
from shopfloor.board import Entry
from shopfloor.scale.contract import Progress, RunReply, RunRequest, workflow_id
from shopfloor.scale.dispatch import (
    Detached,
    EngineDown,
    LogMirror,
    RemoteStop,
    RunCancelled,
    RunFailed,
)
from shopfloor.shop import AgentRun, Shop, track_agent_health
from shopfloor.task import utc_now

#: Seconds a remote run may take beyond its agent's own timeout (fetch, worktree, push).
_SLACK = 600.0


@dataclass
class RemoteRun:
    run: AgentRun
    reply: RunReply | None  # None: no reply (the engine was down, the run was let go)


def run_remote(
    shop: Shop,
    role: str,
    entry: Entry,
    values: dict[str, str],
    attempt: int,
    **request: Any,
) -> RemoteRun:
    """Carry out one run on a worker and judge it as `run_agent` judges a local one.

    `request`: the RunRequest fields besides those every run has (branch, base, since,
    run_checks)."""
    agent_name, agent_cfg = shop.agent_for(role, entry)
    limit = budget.remaining(shop.config, shop.journal, entry.id, role)
    run_id, run_dir = shop.open_run(entry.id, role, agent_name)
    if limit is not None and limit <= 0:
        spent = shop.journal.cost_of_task(entry.id)
        why = f"budget spent (task ${spent:.2f}); raise [budget] to go on"
        return RemoteRun(_ended(run_id, role, agent_name, Outcome.OVER_BUDGET, run_dir, why), None)
    key = f"{role}-a{attempt}"
    round_ = int((_rounds(shop, entry.id)).get(key, 0))
    scale = shop.config.scale
    checks = shop.config.pipeline.check_timeout * len(shop.config.pipeline.checks)
    req = RunRequest(
        workflow_id=workflow_id(shop.repo_id, entry.id, role, attempt, round_),
        repo_id=shop.repo_id,
        task_id=entry.id,
        role=role,
        attempt=attempt,
        agent=agent_name,
        task_file=shop.board.relative(entry.path),
        task_text=values.get("task_text", ""),
        values=dict(values),
        remote=scale.remote,
        budget_usd=limit,
        timeout=agent_cfg.timeout + (checks if request.get("run_checks") else 0.0) + _SLACK,
        heartbeat_timeout=scale.heartbeat_timeout,
        **request,
    )
    shop.record_start(
        run_id, entry.id, role, agent_name, attempt, run_dir, workflow_id=req.workflow_id
    )
    shop.log("run.start", run=run_id, task=entry.id, role=role, agent=agent_name, remote=1)
    mirror = LogMirror(run_dir / "stdout.log")
    stop = RemoteStop(shop.engine, req.workflow_id, shop.stopping)
    shop.track(run_id, entry.id, stop)
    try:
        reply = shop.engine.run(req, lambda p: _progress(shop, run_id, mirror, p), stop)
    except EngineDown as exc:
        why = f"{exc}; the task waits for the engine (it never runs here by surprise)"
        return _unanswered(shop, run_id, role, agent_name, run_dir, why)
    except Detached:
        why = "the daemon stopped; the run goes on on its worker and is joined at restart"
        return _unanswered(shop, run_id, role, agent_name, run_dir, why)
    except RunCancelled as exc:
        _next_round(shop, entry.id, key, round_)
        why = f"stopped: {stop.cancelled or exc}"
        return _unanswered(shop, run_id, role, agent_name, run_dir, why)
    except RunFailed as exc:  # parked for a human by the scheduler, with this reason
        _next_round(shop, entry.id, key, round_)
        _unanswered(shop, run_id, role, agent_name, run_dir, f"refused by its worker: {exc}")
        raise
    finally:
        shop.untrack(run_id)
    _next_round(shop, entry.id, key, round_)  # this workflow is closed and its reply used
    return RemoteRun(_judged(shop, req, run_id, role, agent_name, run_dir, mirror, reply), reply)


def _rounds(shop: Shop, task_id: str) -> dict[str, Any]:
    from shopfloor.pipeline import load_state

    rounds = load_state(shop, task_id).get("remote_rounds")
    return rounds if isinstance(rounds, dict) else {}


def _next_round(shop: Shop, task_id: str, key: str, used: int) -> None:
    from shopfloor.pipeline import save_state

    rounds = _rounds(shop, task_id)
    rounds[key] = max(int(rounds.get(key, 0)), used + 1)
    save_state(shop, task_id, remote_rounds=rounds)


def _progress(shop: Shop, run_id: str, mirror: LogMirror, progress: Progress) -> None:
    """A heartbeat: its output into the run folder; the worker's name into the journal."""
    if progress.worker and progress.worker != mirror.worker:
        mirror.worker = progress.worker
        shop.bookkeep("remote", lambda: shop.journal.update_run(run_id, worker=progress.worker))
    mirror.add(progress)


def _ended(
    run_id: str, role: str, agent: str, outcome: Outcome, run_dir: Any, why: str
) -> AgentRun:
    return AgentRun(run_id, role, agent, outcome, {}, Parsed(), 0.0, run_dir, why)


def _unanswered(
    shop: Shop, run_id: str, role: str, agent: str, run_dir: Any, why: str
) -> RemoteRun:
    """No reply to judge: stopped, no attempt used (the task waits and runs again)."""
    fields = {"state": "ended", "ended_at": utc_now(), "outcome": "stopped", "summary": why[:200]}
    shop.bookkeep(role, lambda: shop.journal.update_run(run_id, **fields))
    shop.log("run.end", run=run_id, role=role, outcome="stopped", reason=why[:200])
    return RemoteRun(_ended(run_id, role, agent, Outcome.STOPPED, run_dir, why), None)


def _judged(
    shop: Shop,
    req: RunRequest,
    run_id: str,
    role: str,
    agent: str,
    run_dir: Any,
    mirror: LogMirror,
    reply: RunReply,
) -> AgentRun:
    parsed = Parsed(
        final_text=reply.final_text,
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
        cost_usd=reply.cost_usd,
        error=reply.error,
        reset_at=reply.reset_at,
    )
    try:
        outcome = Outcome(reply.outcome)
    except ValueError:
        outcome = Outcome.AGENT_ERROR
    run = AgentRun(
        run_id,
        role,
        agent,
        outcome,
        dict(reply.result),
        parsed,
        reply.duration,
        run_dir,
        reply.error,
    )
    mirror.finish(reply.log_tail)
    _fs.atomic_write(run_dir / "result.json", json.dumps(reply.result), durable=False)
    _record_lost(shop, run_id, req, reply)
    fields = {
        "state": "ended",
        "ended_at": utc_now(),
        "outcome": outcome.value,
        "exit_code": reply.exit_code,
        "summary": run.summary,
        "tokens_in": reply.tokens_in,
        "tokens_out": reply.tokens_out,
        "cost_usd": reply.cost_usd,
        "worker": reply.worker or None,
    }
    shop.bookkeep(role, lambda: shop.journal.update_run(run_id, **fields))
    shop.bookkeep(role, lambda: track_agent_health(shop, run))
    shop.log(
        "run.end",
        run=run_id,
        role=role,
        outcome=outcome.value,
        verdict=run.verdict,
        worker=reply.worker,
        secs=f"{reply.duration:.1f}",
    )
    return run


def _record_lost(shop: Shop, run_id: str, req: RunRequest, reply: RunReply) -> None:
    """Runs lost with their worker are kept in the journal as such: none used an attempt."""
    for number, lost in enumerate(reply.lost, start=1):
        worker, why = str(lost.get("worker", "")), str(lost.get("why", "worker lost"))
        shop.log("run.lost", run=run_id, worker=worker, reason=why)
        row = {
            "agent": req.agent,
            "attempt": req.attempt,
            "state": "ended",
            "ended_at": utc_now(),
            "outcome": "lost",
            "summary": why[:200],
            "worker": worker or None,
            "workflow_id": req.workflow_id,
        }
        lost_id = f"{run_id}.lost{number}"

        def record(lost_id: str = lost_id, row: dict[str, Any] = row) -> None:
            shop.journal.insert_run(lost_id, req.task_id, req.role, **row)

        shop.bookkeep("remote", record)


def lost_lines(reply: RunReply | None) -> list[str]:
    """Tracker lines for the runs lost before the reply (said where the task is)."""
    if reply is None:
        return []
    return [
        f"the run on worker {lost.get('worker') or '?'} was lost "
        f"({lost.get('why') or 'worker lost'}); it ran again on {reply.worker} (no attempt used)"
        for lost in reply.lost
    ]
