"""What one remote run is asked to do and what it answers: plain, JSON-able dataclasses.

Stdlib only: Temporal's workflow sandbox re-imports this module, and a worker may run a
different (compatible) shopfloor version than the daemon. Field names are the wire format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: Roles that may run remotely. Hotfixes never do: the emergency lane never waits on a cluster.
REMOTE_ROLES = ("pm", "coder", "qa")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def workflow_id(repo_id: str, task_id: str, role: str, attempt: int, round_: int = 0) -> str:
    """The one id a run can have: a restarted daemon asking again gets the same workflow.

    `round_` counts the runs of one (task, role, attempt) whose results were already used —
    a rate-limited or stopped run uses no attempt, so the rerun needs a new id."""
    safe_task = _UNSAFE.sub("_", task_id)
    return f"shopfloor-{repo_id}-{safe_task}-{role}-a{attempt}-r{round_}"


def agent_queue(task_queue: str, agent: str) -> str:
    """The activity queue for one agent: only workers that have it poll it."""
    return f"{task_queue}.agent.{_UNSAFE.sub('_', agent)}"


@dataclass
class RunRequest:
    """One PM, Coder or QA run, as the daemon asks a worker to do it."""

    workflow_id: str
    repo_id: str
    task_id: str
    role: str  # pm | coder | qa
    attempt: int
    agent: str  # a name in [agents] of shopfloor.toml (the worker's copy defines it)
    task_file: str  # the task file's path relative to the repository root (tasks/<lane>/X.md)
    task_text: str  # the task file as the daemon read it at dispatch
    #: Prompt values besides the paths the worker fills in itself (task_file, workdir,
    #: result_file, run_id): task_text, previous_attempt, checks, diff, check_output...
    values: dict[str, str] = field(default_factory=dict)
    remote: str = "origin"  # the git remote to fetch from and push to
    branch: str = ""  # coder/qa: shopfloor/<id>, fetched from the remote when it is there
    base: str = ""  # the commit the task's branch starts from (the target's tip at first code)
    run_checks: bool = False  # coder: after committing, run [pipeline] checks in the worktree
    budget_usd: float | None = None
    #: coder: attempt numbers start again after a rework or retry; commits before this one
    #: never count as this attempt's (gitops.attempt_commit's `since`)
    since: str = ""
    #: seconds: the activity's start-to-close limit (the agent's timeout plus checks and git)
    timeout: float = 7200.0
    heartbeat_timeout: float = 30.0  # a worker silent this long is dead: the run goes elsewhere


@dataclass
class RunReply:
    """What a worker did: enough for the daemon to judge the run exactly as a local one."""

    worker: str  # the worker's name (`--name`, else host-pid)
    run_id: str  # the worker's own run folder name
    outcome: str  # an agents.Outcome value, as the backend classified it
    result: dict[str, Any]  # the agent's result JSON ({} when none)
    duration: float
    exit_code: int | None = None
    error: str | None = None
    final_text: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    reset_at: float | None = None  # rate-limited: when the agent may run again (epoch s)
    log_tail: str = ""  # the last of stdout+stderr, for the daemon's run folder
    task_text: str | None = None  # pm: the task file after the run (its ## Spec)
    commit: str | None = None  # coder: the commit pushed to <remote>/shopfloor/<id>
    already_committed: bool = False  # coder: that attempt was on the remote already; not rerun
    checks: list[dict[str, Any]] | None = None  # coder: the checks' items (as pipeline's)
    diffstat: str = ""  # coder: the last line of `git diff --stat base`
    #: Runs of this request lost with their worker (heartbeat lapsed) before this one:
    #: [{"worker": ..., "run_id": ..., "why": ...}]. They use none of the task's attempts.
    lost: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Progress:
    """A worker's heartbeat: who runs it, and the newest output (the daemon appends it to its
    copy of the run log so `shopfloor logs -f` follows a remote run)."""

    worker: str
    run_id: str
    offset: int  # bytes of output before `chunk`
    chunk: str  # the newest output, at most a bounded tail, starting at byte `offset`
    #: runs of this request lost before this one (carried from attempt to attempt)
    lost: list[dict[str, Any]] = field(default_factory=list)
    #: Why this attempt ends without a reply, when the worker can still say: "error: ..." (a
    #: failed fetch or push: retried, not a lost run) or "worker stopping". Empty while it
    #: runs: the next attempt then counts it lost ("heartbeat lapsed").
    ended: str = ""


#: The workflow type and the activity name: the wire names both sides agree on.
WORKFLOW = "shopfloor.run"
ACTIVITY = "shopfloor.perform_run"
