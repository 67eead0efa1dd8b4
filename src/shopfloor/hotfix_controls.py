"""A person's hand on a hotfix: what a stopped agent left in the tree, what a close records.

A cancelled hotfix stays in hotfix/, `awaiting-human`: its agent worked in the live tree and
may have left half a patch, which only a person can judge. Once the agent is gone, `stopped`
says what it left (the files it changed since its base, a commit made meanwhile, where the
human's earlier work is kept); the daemon's job records it (`hotfix-stopped`), or `cancel`
itself when no daemon runs. `closing` answers what `hotfix close` needs: are the agent's
changes committed, and which commit holds the fix.

The words come from `hotfix_report`, so the tracker, the CLI and the phone say the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import gitops, hotfix_report, lifecycle
from shopfloor.board import Entry
from shopfloor.words import Event

#: How the `hotfix-stopped` tracker line starts (`shopfloor cancel` waits for it).
STOPPED = "hotfix agent stopped"


@dataclass(frozen=True)
class Left:
    """What a stopped hotfix agent left in the live tree."""

    line: str  # the tracker line
    paths: list[str] = field(default_factory=list)  # changed since the agent's base
    known: bool = True  # False: no record of the base, `paths` is all that is uncommitted now
    snapshot: str | None = None  # the ref keeping the human's earlier work
    head_moved: bool = False
    state: dict[str, Any] = field(default_factory=dict)  # task-state keys to record

    def payload(self) -> dict[str, Any]:
        """What the `hotfix_stopped` notification carries."""
        return {
            "paths": self.paths[: hotfix_report.SHOWN],
            "paths_count": len(self.paths),
            "known": self.known,
            "snapshot": self.snapshot,
            "head_moved": self.head_moved,
            "summary": self.line,
        }


def _next_steps(task_id: str) -> str:
    return (
        f"`shopfloor retry {task_id}` runs it again here, `shopfloor hotfix close {task_id}` "
        "archives it"
    )


def stopped(root: Path, task_id: str, state: Mapping[str, Any]) -> Left:
    """What the agent left, against the base its start recorded (the tree is read now: call
    it once the agent's processes are gone)."""
    start = hotfix_report.Start.from_state(task_id, state)
    if start is None:  # stopped before its start was recorded, or the journal lost it
        now = list(gitops.tree_state(root).paths)
        what = (
            f"uncommitted now: {hotfix_report.named(now)}"
            if now
            else "the tree has no uncommitted change"
        )
        line = (
            f"{STOPPED} (cancelled); where it started is not recorded, so what it "
            f"changed cannot be told apart — {what}; {_next_steps(task_id)}"
        )
        return Left(line, now, known=False)
    report = hotfix_report.inspect(root, start)
    origin = "your snapshot" if start.snapshot else "HEAD"
    base = (start.base or "none")[:12]
    if report.paths:
        count = len(report.paths)
        what = (
            f"it left {count} changed file{'s' if count != 1 else ''} since {origin} ({base}): "
            f"{hotfix_report.named(report.paths)}"
        )
        if len(report.paths) > len(report.untracked):
            what += f" — review: `{report.diff_command()}`"
    else:
        what = f"it left no change in the tree (nothing differs from {origin}, {base})"
    parts = [f"{STOPPED} (cancelled); {what}"]
    if report.head_moved:
        before, after = (start.head or "none")[:10], (report.head or "none")[:10]
        parts.append(f"WARNING: HEAD moved {before} → {after} while it ran")
    if start.snapshot:
        parts.append(
            f"your uncommitted work from before is saved at {start.ref} ({start.snapshot[:12]})"
        )
    parts.append(_next_steps(task_id))
    snapshot = start.ref if start.snapshot else None
    return Left("; ".join(parts), report.paths, True, snapshot, report.head_moved, report.state())


def record_stop(keeper: lifecycle.Keeper, entry: Entry, state: Mapping[str, Any]) -> Left:
    """Say on the board (`hotfix-stopped`) what the stopped agent left; remember its paths for
    `hotfix close`. The caller makes sure no agent of this hotfix runs any more."""
    left = stopped(keeper.board.root, entry.id, state)
    if left.state and keeper.journal is not None:
        with contextlib.suppress(Exception):  # bookkeeping: close then says "not recorded"
            keeper.journal.save_task_state(entry.id, **left.state)
    change = lifecycle.Change(payload=left.payload())
    lifecycle.apply(keeper, entry, Event.HOTFIX_STOPPED, left.line, change)
    return left


# ---------------------------------------------------------------------------- close


@dataclass(frozen=True)
class Closing:
    """What `hotfix close` checks and records."""

    paths: list[str] | None  # what the agent changed; None when it is not recorded
    uncommitted: list[str]  # of those, the ones that still differ from HEAD (tree or index)
    fix: tuple[str, str] | None  # (sha, subject) of the newest commit touching them
    head: str | None

    def fields(self, who: str, forced: bool) -> dict[str, Any]:
        """Front-matter fields a close writes: who, and the commit that holds the fix."""
        sha = self.fix[0] if self.fix else (None if self.uncommitted else self.head)
        found: dict[str, Any] = {"closed_by": who, "fix_commit": sha}
        if forced and self.uncommitted:
            found["closed_uncommitted"] = True
        return found

    def line(self, who: str, forced: bool) -> str:
        """The tracker line: who closed it and where the fix is."""
        said = f"hotfix closed by {who}"
        if self.uncommitted and forced:
            said += (
                f"; --force: the agent's changes were NOT committed: "
                f"{hotfix_report.named(self.uncommitted)}"
            )
        if self.fix is not None:
            sha, subject = self.fix
            return f"{said}; the fix is in commit {sha[:12]} “{subject}”"
        if self.paths is None:
            head = (self.head or "none")[:12]
            return f"{said}; what the agent changed is not recorded, so not checked (HEAD {head})"
        if not self.paths:
            return f"{said}; the agent changed no file"
        if self.uncommitted:
            return said
        head = (self.head or "none")[:12]
        return (
            f"{said}; no commit since the hotfix started touches its files (changed back?), "
            f"HEAD {head} recorded"
        )


def closing(root: Path, state: Mapping[str, Any]) -> Closing:
    """Are the agent's changes committed (every run's, when it was retried), and which commit
    holds them."""
    recorded = state.get("hotfix_paths")
    earlier = state.get("hotfix_earlier_paths")
    now = gitops.tree_state(root)
    if not isinstance(recorded, list) and not isinstance(earlier, list):
        return Closing(None, [], None, now.head)
    paths = sorted({str(p) for p in [*(recorded or []), *(earlier or [])]})
    dirty = set(now.paths)
    uncommitted = [p for p in paths if p in dirty]
    since = state.get("hotfix_head_before")
    fix = gitops.newest_commit_touching(root, since if isinstance(since, str) else None, paths)
    return Closing(paths, uncommitted, fix, now.head)


__all__ = ["STOPPED", "Closing", "Left", "closing", "record_stop", "stopped"]
