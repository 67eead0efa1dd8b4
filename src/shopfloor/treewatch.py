"""Did a tree change while an agent that should not change it ran?

The PM works in the live tree and QA reads its task's worktree. What their CLIs can be held to
differs (docs/agents.md, "Confinement"), so the daemon looks for itself: before the run it
marks the tree — HEAD, and each path `git status` lists outside the board and `.shopfloor/`
with its status code, size and modification time — and after the run it marks it again. A
path that appears, disappears or changes between the two marks, or a moved HEAD, is reported.

Nothing is ever reverted or deleted: a human may be editing the same tree at the same time,
so a change is reported as made *while* the agent ran, never as *by* it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import gitops

#: A file's fingerprint: its `git status` code, size and mtime (ns); -1s when it is gone.
Fingerprint = tuple[str, int, int]

#: How many paths a tracker line names before it says "and N more".
_SHOWN = 5


@dataclass(frozen=True)
class Mark:
    """One look at a tree: what Changes are computed from."""

    tree: Path
    label: str  # how a person knows the tree: "the live tree", "its worktree"
    head: str | None = None
    files: Mapping[str, Fingerprint] = field(default_factory=dict)
    error: str | None = None  # git could not say: the comparison is then unknown


@dataclass(frozen=True)
class Changes:
    """What differs between two marks of one tree."""

    label: str
    paths: tuple[str, ...] = ()
    head_before: str | None = None
    head_after: str | None = None
    error: str | None = None
    #: Hotfixes at work in this tree meanwhile: the change may well be theirs (they patch it)
    alongside: tuple[str, ...] = ()

    @property
    def head_moved(self) -> bool:
        return self.head_before != self.head_after

    def __bool__(self) -> bool:
        return bool(self.paths) or self.head_moved

    def describe(self, who: str) -> str:
        """One clause for a tracker line, e.g. "WARNING: the live tree changed while the PM
        ran: app.py, new.txt; HEAD moved 1a2b3c4d5e → 5e6f7a8b9c (nothing was reverted)"."""
        if self.error is not None:
            return f"{self.label} could not be checked after {who} ran: {self.error}"
        parts = []
        if self.paths:
            shown = ", ".join(self.paths[:_SHOWN])
            more = len(self.paths) - _SHOWN
            parts.append(shown + (f" and {more} more" if more > 0 else ""))
        if self.head_moved:
            parts.append(f"HEAD moved {_short(self.head_before)} → {_short(self.head_after)}")
        what = "; ".join(parts)
        if self.alongside:
            hotfixes = ", ".join(self.alongside)
            return (
                f"{self.label} changed while {who} ran, as hotfix {hotfixes} worked in it: "
                f"{what} (most likely the hotfix's; nothing was reverted)"
            )
        return f"WARNING: {self.label} changed while {who} ran: {what} (nothing was reverted)"

    def payload(self) -> dict[str, Any]:
        return {
            "tree": self.label,
            "paths": list(self.paths),
            "head_before": self.head_before,
            "head_after": self.head_after,
            "alongside": list(self.alongside),
        }


def mark(tree: Path, label: str) -> Mark:
    """The tree as it is now; a Mark with `error` set when git cannot look at it."""
    try:
        state = gitops.tree_state(tree)  # HEAD and the paths from one git process
    except gitops.GitError as exc:
        return Mark(tree, label, error=str(exc))
    return mark_of(tree, label, state)


def mark_of(tree: Path, label: str, state: gitops.TreeState) -> Mark:
    """The Mark of what `git status` just saw in `tree` (its files still there)."""
    files = {path: (code, *_size_and_mtime(tree / path)) for path, code in state.codes.items()}
    return Mark(tree, label, state.head, files)


def changes_since(before: Mark, alongside: Sequence[str] = ()) -> Changes:
    """What changed in `before.tree` since `before` was taken; `alongside` names the hotfixes
    that worked in that tree meanwhile."""
    return changes_between(before, mark(before.tree, before.label), alongside)


def changes_between(before: Mark, after: Mark, alongside: Sequence[str] = ()) -> Changes:
    """What differs between two marks of one tree."""
    error = before.error or after.error
    if error is not None:
        return Changes(before.label, error=error)
    differ = {
        p
        for p in before.files.keys() | after.files.keys()
        if before.files.get(p) != after.files.get(p)
    }
    paths = tuple(sorted(differ))
    return Changes(before.label, paths, before.head, after.head, alongside=tuple(alongside))


def _size_and_mtime(path: Path) -> tuple[int, int]:
    try:
        info = os.lstat(path)
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns


def _short(sha: str | None) -> str:
    return sha[:10] if sha else "(none)"
