"""The words of the trade as types: lanes, statuses, roles and lifecycle events.

A ground-floor module (it imports nothing of ours), so a typo in any of these is a mypy error
instead of a silently unrouted task or notification.
"""

from __future__ import annotations

from enum import StrEnum


class Lane(StrEnum):
    """A folder under tasks/; the folder a task file sits in is its state."""

    INBOX = "inbox"
    BACKLOG = "backlog"
    ACTIVE = "active"
    REVIEW = "review"
    DONE = "done"
    FAILED = "failed"
    HOTFIX = "hotfix"
    INVALID = "invalid"


class Status(StrEnum):
    """What a task is doing inside its lane (the `status:` field)."""

    QUEUED = "queued"  # runnable: the next stage picks it up
    RUNNING = "running"  # a job of the daemon owns it
    AWAITING_APPROVAL = "awaiting-approval"  # a spec waiting for `shopfloor approve`
    AWAITING_HUMAN = "awaiting-human"  # parked: a person must act (the tracker says what)
    BLOCKED = "blocked"  # cannot go on by itself (a failed merge)
    CLOSED = "closed"  # finished: nothing more will happen unless a person reopens it


class Role(StrEnum):
    PM = "pm"
    CODER = "coder"
    QA = "qa"
    HOTFIX = "hotfix"


class Event(StrEnum):
    """Everything that can happen to a task; `lifecycle.TRANSITIONS` says what each does."""

    CLAIMED = "claimed"
    NOTED = "noted"  # a tracker line while a run goes on; nothing else changes
    SPEC_WRITTEN = "spec-written"
    SPEC_GATED = "spec-gated"  # written, and waits for `shopfloor approve`
    SPEC_FAILED = "spec-failed"
    CODED = "coded"
    CODE_FAILED = "code-failed"
    QA_PASSED = "qa-passed"
    QA_FAILED = "qa-failed"
    HOTFIX_RAN = "hotfix-ran"
    HOTFIX_STOPPED = "hotfix-stopped"  # its agent was stopped by a cancel: what it left
    AGENT_WAITS = "agent-waits"  # a stop: queued again, no attempt used
    AGENT_PAUSED = "agent-paused"  # a rate limit: queued again behind the agent's pause
    AGENT_PROBLEM = "agent-problem"  # login, binary, budget: parked for a human, no attempt used
    SETUP_PROBLEM = "setup-problem"  # not the agent's: no commits, unknown agent; parked
    INTERRUPTED = "interrupted"  # the daemon died or a fault stopped the run; no attempt used
    ERRORED = "errored"  # a bug of ours: parked for a human with the error, no attempt used
    RECONCILED = "reconciled"  # a status that means nothing in its lane, put right
    LANDED = "landed"
    LAND_FAILED = "land-failed"
    PR_OPENED = "pr-opened"  # land = "pr": the branch pushed, its pull request opened
    PR_FAILED = "pr-failed"  # the push or the pull-request command failed; waits for a human
    APPROVED = "approved"
    RETRIED = "retried"
    REWORK = "rework"  # sent back to the Coder with notes; its branch is kept
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"  # a hotfix cancelled before its agent started
    HOTFIX_CLOSED = "hotfix-closed"
