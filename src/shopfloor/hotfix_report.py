"""What a hotfix did to the live tree, told truthfully: the human's own work apart, commits loud.

Before the agent starts, `begin` keeps the human's uncommitted work as a snapshot commit (see
`gitops.capture_worktree`); the agent starts from that snapshot (or from HEAD when the tree was
clean): its *base*. After the agent, `inspect` compares the working tree with the base, so
a human edit made before the hotfix never shows as the agent's, and looks at HEAD and the
branches for commits made while it ran. The words for the tracker and the notifications are
made here too, so the board and the phone say the same thing.

When several hotfixes run in the same tree at once, each one's base holds what the others had
done by its start, and each sees the others' later changes as its own: the tree cannot tell
them apart. The tracker then names the others (see `pipeline.do_hotfix`).
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import gitops

#: How many paths a tracker line or a message names before it says "and N more".
SHOWN = 12
#: The pathspec that keeps the board out of a command a person pastes.
NOT_THE_BOARD = ":!tasks"


def snapshot_ref(task_id: str) -> str:
    """Where the human's uncommitted work is kept when a hotfix starts in the live tree."""
    return f"refs/shopfloor/snapshots/{task_id}"


@dataclass(frozen=True)
class Start:
    """The live tree when the agent started (kept in the task's state: see `state`)."""

    task_id: str
    snapshot: str | None  # the human's uncommitted work; None when the tree was clean
    head: str | None  # HEAD when the agent started
    paths: tuple[str, ...]  # the human's uncommitted paths, in the snapshot
    started_at: float  # epoch seconds
    branch: str | None = None  # HEAD's branch; None when detached
    error: str | None = None  # why the human's work could not be saved (the agent ran anyway)

    @property
    def ref(self) -> str:
        return snapshot_ref(self.task_id)

    @property
    def base(self) -> str | None:
        """What the agent started from: the snapshot, else HEAD."""
        return self.snapshot or self.head

    def state(self) -> dict[str, Any]:
        """The task-state keys a hotfix start records (`pipeline.save_state`)."""
        return {
            "hotfix_snapshot": self.snapshot,
            "hotfix_base": self.base,
            "hotfix_head_before": self.head,
            "hotfix_human_paths": list(self.paths) or None,
            "hotfix_started_at": self.started_at,
            "hotfix_branch_before": self.branch,
            "hotfix_snapshot_error": self.error,
            "hotfix_head_after": None,  # a new run forgets the last one's ending
            "hotfix_paths": None,
        }

    @classmethod
    def from_state(cls, task_id: str, state: Mapping[str, Any]) -> Start | None:
        """The start a task's state recorded; None when it recorded none."""
        base = state.get("hotfix_base")
        if not isinstance(base, str) or not base:
            return None
        snapshot = state.get("hotfix_snapshot")
        head = state.get("hotfix_head_before")
        paths = state.get("hotfix_human_paths") or []
        branch = state.get("hotfix_branch_before")
        error = state.get("hotfix_snapshot_error")
        return cls(
            task_id,
            snapshot if isinstance(snapshot, str) else None,
            head if isinstance(head, str) else None,
            tuple(str(p) for p in paths),
            float(state.get("hotfix_started_at") or 0),
            branch if isinstance(branch, str) else None,
            str(error) if error else None,
        )


#: Hotfixes working in each tree now, and for each the others it met (this process only:
#: hotfixes run in the daemon).
_running: dict[tuple[Path, str], set[str]] = {}
#: A snapshot being taken of each tree now: hotfixes arriving meanwhile share it.
_capturing: dict[Path, _Capture] = {}
_running_lock = threading.Lock()


@dataclass
class _Capture:
    done: threading.Event = field(default_factory=threading.Event)
    shot: gitops.Snapshot | None = None
    shared: bool = False  # the followers' refs point at the snapshot too
    followers: list[str] = field(default_factory=list)  # their refs


def begin(root: Path, task_id: str) -> Start:
    """Keep the human's uncommitted work before the agent starts (one `git status` when the
    tree is clean). Call `end` when the hotfix is over, whatever happened.

    Hotfixes filed in the same instant share one snapshot: one that arrives while another's
    is being taken waits for it, and the one taking it points every waiting hotfix's ref at
    the same commit in one `update-ref`: twenty at once cost what one does, plus that.
    """
    tree = root.resolve()
    with _running_lock:
        met = _running.setdefault((tree, task_id), set())
        for (where, other), theirs in _running.items():
            if where == tree and other != task_id:
                theirs.add(task_id)
                met.add(other)
        capture = _capturing.get(tree)
        leader = capture is None
        if capture is None:
            capture = _capturing[tree] = _Capture()
        else:
            capture.followers.append(snapshot_ref(task_id))
    started = time.time()
    try:
        shot = _take(root, task_id, capture) if leader else _share(root, task_id, capture)
    except gitops.GitError as exc:
        # The fire extinguisher never waits on bookkeeping: the agent runs, and every line
        # about its change says that the human's work could not be kept apart.
        return Start(task_id, None, _head_or_none(root), (), started, error=str(exc))
    except BaseException:
        end(root, task_id)
        raise
    return Start(task_id, shot.sha, shot.head, shot.paths, started, shot.branch)


def _head_or_none(root: Path) -> str | None:
    try:
        return gitops.head(root)
    except gitops.GitError:
        return None


def _take(root: Path, task_id: str, capture: _Capture) -> gitops.Snapshot:
    try:
        shot = gitops.capture_worktree(root, snapshot_ref(task_id))
        with _running_lock:  # from here on, a new arrival takes a snapshot of its own
            _capturing.pop(root.resolve(), None)
        if shot.sha is not None and capture.followers:
            gitops.keep_snapshots(root, capture.followers, shot.sha)
        capture.shot, capture.shared = shot, True
        return shot
    finally:
        with _running_lock:
            if _capturing.get(root.resolve()) is capture:
                _capturing.pop(root.resolve())
        capture.done.set()


def _share(root: Path, task_id: str, capture: _Capture) -> gitops.Snapshot:
    capture.done.wait()
    if capture.shot is None or not capture.shared:  # the one taking it failed: on our own
        return gitops.capture_worktree(root, snapshot_ref(task_id))
    return capture.shot


def end(root: Path, task_id: str) -> None:
    with _running_lock:
        _running.pop((root.resolve(), task_id), None)


def alongside(root: Path, task_id: str) -> list[str]:
    """Other hotfixes that worked in the same tree while this one did (so far)."""
    with _running_lock:
        return sorted(_running.get((root.resolve(), task_id), ()))


def restore_command(start: Start, paths: list[str] | None = None) -> str:
    """A command a person can paste to put files back as they were when the hotfix started.

    It names the snapshot by its sha, not the ref: a retry of the hotfix moves the ref.
    """
    where = [shlex.quote(p) for p in paths] if paths else [".", shlex.quote(NOT_THE_BOARD)]
    return f"git restore --source={(start.snapshot or 'HEAD')[:12]} --worktree -- {' '.join(where)}"


def named(paths: list[str] | tuple[str, ...], limit: int = SHOWN) -> str:
    """`a.py, b.py and 3 more`."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def started_line(start: Start) -> str | None:
    """The tracker line before the agent starts; None for a clean tree (nothing to say)."""
    if start.error is not None:
        return (
            f"WARNING: your uncommitted work could NOT be saved before the agent started "
            f"({start.error}); the agent runs anyway, and what it changes cannot be told "
            f"apart from your own uncommitted changes"
        )
    if start.snapshot is None:
        return None
    count = len(start.paths)
    return (
        f"your uncommitted work ({count} file{'s' if count != 1 else ''}: {named(start.paths)}) "
        f"is saved at {start.ref} ({start.snapshot[:12]}); the agent starts from it. To put "
        f"the tree back as you left it (this also undoes the agent's changes): "
        f"`{restore_command(start)}`"
    )


def started_payload(start: Start) -> dict[str, Any]:
    """What the `hotfix_started` notification adds about the human's work."""
    if start.error is not None:
        return {"snapshot": None, "snapshot_error": start.error}
    if start.snapshot is None:
        return {"snapshot": None}
    return {
        "snapshot": start.ref,
        "snapshot_sha": start.snapshot,
        "snapshot_files": len(start.paths),
        "restore": restore_command(start),
    }


@dataclass(frozen=True)
class Report:
    """What the agent did to the live tree, against its start."""

    start: Start
    head: str | None  # HEAD now
    paths: list[str]  # differ from the base: the agent's changes (or another's meanwhile)
    untracked: list[str]  # of those, the ones git does not track (`git diff` leaves them out)
    commits: int | None  # on HEAD since the start; None when history was rewritten
    elsewhere: list[str] = field(default_factory=list)  # other branches that got commits
    committed_paths: list[str] = field(default_factory=list)  # what HEAD's new commits touch
    branch: str | None = None  # HEAD's branch now; None when detached
    others: list[str] = field(default_factory=list)  # hotfixes in the same tree meanwhile

    @property
    def head_moved(self) -> bool:
        return self.head != self.start.head

    @property
    def committed(self) -> bool:
        return self.head_moved or bool(self.elsewhere)

    @property
    def changed_nothing(self) -> bool:
        return not self.paths and not self.committed

    @property
    def overlap(self) -> list[str]:
        """Files the human had changed before the hotfix and the agent changed again."""
        mine = set(self.start.paths)
        return [p for p in self.paths if p in mine]

    def diff_command(self) -> str:
        """A `git diff` a person can paste: the agent's tracked changes, from its base.

        It names the paths: against a snapshot, `-- .` would show the human's untracked files
        (in the snapshot, not in the index) as deleted.
        """
        base = (self.start.base or "HEAD")[:12]
        tracked = [p for p in self.paths if p not in set(self.untracked)]
        if len(tracked) > 20 and not self.start.snapshot:
            return f"git diff {base} -- . {shlex.quote(NOT_THE_BOARD)}"
        return f"git diff {base} -- {' '.join(shlex.quote(p) for p in tracked)}"

    def warnings(self) -> list[str]:
        """Loud lines: commits made while the agent ran, work that could not be kept apart."""
        found = []
        if self.start.error is not None:
            found.append(
                "WARNING: your uncommitted work could not be saved before the agent started: "
                "the files named here may hold your changes too"
            )
        if self.head_moved:
            before = (self.start.head or "none")[:10]
            after = (self.head or "none")[:10]
            if self.commits is None:
                how = "history was rewritten: the old HEAD is not in the new one"
            else:
                how = f"{self.commits} new commit{'s' if self.commits != 1 else ''}"
            if self.branch != self.start.branch:
                how += f"; HEAD was on {self.start.branch or 'no branch'}, now on "
                how += self.branch or "no branch (detached)"
            found.append(
                f"WARNING: a commit was made while the hotfix agent ran: HEAD moved {before} → "
                f"{after} ({how}); the fix is (at least partly) in those commits, not only in "
                f"the working tree — `git log --stat {before}..{after}`"
            )
            mixed = [p for p in self.start.paths if p in set(self.committed_paths)]
            if mixed:
                found.append(
                    f"WARNING: those commits also hold your uncommitted work from before the "
                    f"hotfix: {named(mixed)} (your version alone: the snapshot "
                    f"{(self.start.snapshot or '')[:12]}, {self.start.ref})"
                )
        if self.elsewhere:
            found.append(
                f"WARNING: new commits appeared while the hotfix agent ran on: "
                f"{named(self.elsewhere)}"
            )
        if self.others:
            found.append(
                f"note: {named(self.others)} worked in the same tree at the same time; what "
                f"they changed meanwhile is counted here too (the tree cannot tell who did what)"
            )
        return found

    def overlap_line(self) -> str | None:
        both = self.overlap
        if not both:
            return None
        sha = (self.start.snapshot or "HEAD")[:12]
        return (
            f"also changed by you before the hotfix: {named(both)}; your version is in the "
            f"snapshot (`git show {shlex.quote(f'{sha}:{both[0]}')}`; put it back: "
            f"`{restore_command(self.start, both)}`)"
        )

    def summary_line(self) -> str:
        """The tracker line that ends the run: what changed, and what to do."""
        close = f"`shopfloor hotfix close {self.start.task_id}`"
        origin = "your snapshot" if self.start.snapshot else "HEAD"
        base = (self.start.base or "none")[:12]
        if self.changed_nothing:
            return (
                f"hotfix changed nothing: no file differs from {origin} ({base}) and no commit "
                f"was made — nothing to verify; {close} when you are done"
            )
        if not self.paths:
            what = "hotfix changed no file in the working tree, but commits were made (above)"
        else:
            count = len(self.paths)
            what = (
                f"hotfix changed {count} file{'s' if count != 1 else ''} since {origin} "
                f"({base}): {named(self.paths)}"
            )
            if self.untracked:
                what += f"; untracked (not in git diff): {named(self.untracked)}"
            if len(self.paths) > len(self.untracked):
                what += f" — review: `{self.diff_command()}`"
        if self.committed:
            return f"{what}; verify (the commits above too), commit the rest, push, then {close}"
        return f"{what}; verify, commit, push, then {close}"

    def payload(self) -> dict[str, Any]:
        """What the `hotfix_awaiting_human` notification carries about the change."""
        return {
            "changed_nothing": self.changed_nothing,
            "paths": self.paths[:SHOWN],
            "paths_count": len(self.paths),
            "overlap": self.overlap[:SHOWN],
            "snapshot": self.start.ref if self.start.snapshot else None,
            "base": self.start.base,
            "head_before": self.start.head,
            "head_after": self.head,
            "head_moved": self.head_moved,
            "commits": self.commits,
            "warnings": [w for w in self.warnings() if w.startswith("WARNING")],
            "alongside": self.others,
        }

    def state(self) -> dict[str, Any]:
        """The task-state keys a hotfix end records (`pipeline.save_state`)."""
        return {"hotfix_head_after": self.head, "hotfix_paths": self.paths}


def inspect(root: Path, start: Start) -> Report:
    """Compare the live tree with the agent's base; read HEAD and the new commits."""
    now = gitops.tree_state(root)
    paths = gitops.changed_since(root, start.base) if start.base else list(now.paths)
    untracked = set(now.untracked)
    commits: int | None = 0
    committed: list[str] = []
    if now.head and now.head != start.head:
        if start.head:
            commits = gitops.commits_between(root, start.head, now.head)
            committed = gitops.changed_between(root, start.head, now.head)
        else:  # the first commits of the repository
            commits = gitops.commits_between(root, None, now.head)
    elsewhere = gitops.branches_with_new_commits(root, start.started_at, start.head, now.branch)
    return Report(
        start,
        now.head,
        paths,
        [p for p in paths if p in untracked],
        commits,
        elsewhere,
        committed,
        now.branch,
        alongside(root, start.task_id),
    )
