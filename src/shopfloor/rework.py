"""Rework: a task goes back to the Coder with notes for its next attempt, on its own branch.

A person (CLI `shopfloor rework`, Telegram `/rework`, the web board's comments) or the merge
queue sends it. The notes are appended, dated and signed, to the task's `## Rework notes`
section (earlier rounds are kept) and the next Coder prompt shows them with the QA notes
(`pipeline._previous_notes`). The branch `shopfloor/<id>` is kept: the Coder's worktree is
made on it again, so the next attempt starts from the earlier attempts' commits, and QA's
diff still starts at the task's original base.

Like `retry`, a rework is a person's decision and gives the task a fresh set of attempts (it
never leaves a task with none). Because attempt numbers then start again at 1, the branch tip
at the rework is kept as `attempts_since` in the task's state: the crash check that looks for
"this attempt's commit already made" only looks at commits after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor import gitops, lifecycle, task
from shopfloor.board import Entry
from shopfloor.errors import ShopfloorError
from shopfloor.words import Event, Lane, Status

if TYPE_CHECKING:
    from shopfloor.journal import Journal

#: The task-file section the notes of every rework round go into.
SECTION = "Rework notes"
#: Longest note accepted (the prompt carries them whole).
MAX_NOTES = 20_000


def check_notes(notes: str) -> str:
    clean = notes.strip()
    if not clean:
        raise ShopfloorError(
            "rework needs notes for the Coder: what should change? "
            '(e.g. shopfloor rework T-0042 -m "rename the flag to --all")'
        )
    if len(clean) > MAX_NOTES:
        raise ShopfloorError(f"the notes are over {MAX_NOTES} characters; say it shorter")
    return clean


def refusal(entry: Entry, text: str, pr_open: bool) -> str | None:
    """Why this task cannot be reworked where it is now (None: it can).

    Allowed: review/ (awaiting QA, or parked), backlog/ (after QA notes, or parked), done/
    while its branch is not landed (waiting for the human, a failed merge, or a pull request
    open), and failed/ when it has a spec. A running task is refused, never stopped: its run's
    work would be lost or half-committed; wait for it, or `cancel` it first.
    """
    tid, lane, status = entry.id, entry.lane, entry.header.status
    if entry.header.is_hotfix or lane is Lane.HOTFIX:
        return (
            f"{tid} is a hotfix: it has no branch to rework; `shopfloor retry {tid}` runs it "
            "again in the live tree"
        )
    if status == Status.RUNNING or lane is Lane.ACTIVE:
        return (
            f"{tid} is running in {lane.value}/; wait for its run to finish and rework it "
            f"then, or stop it with `shopfloor cancel {tid}` and rework it from failed/"
        )
    if lane is Lane.INBOX:
        return f"{tid} is in inbox/: nothing is coded yet to rework; edit its request instead"
    if lane is Lane.BACKLOG and status == Status.AWAITING_APPROVAL:
        return f"{tid} waits for approval: nothing is coded yet; `shopfloor approve {tid}`"
    if lane is Lane.FAILED and not task.get_section(text, "Spec"):
        return f"{tid} never got a spec, so there is no code to rework; `shopfloor retry {tid}`"
    if lane is Lane.DONE and status == Status.CLOSED and not pr_open:
        return (
            f"{tid} is closed in done/: its branch has landed; file a new task for the change "
            "(`shopfloor new`)"
        )
    if (lane, Event.REWORK) not in lifecycle.TRANSITIONS:
        return f"rework does not apply to a task in {lane.value}/"
    return None


def appended(existing: str | None, notes: str, who: str, when: str) -> str:
    """The section with one more round: `### <when> — <who>` and the notes, made safe on
    their own (a fence they leave open cannot swallow the next round)."""
    round_ = f"### {when} — {task.one_line(who)}\n\n{task.section_text(notes)}"
    return f"{existing.rstrip()}\n\n{round_}" if existing else round_


def send_back(keeper: lifecycle.Keeper, entry: Entry, notes: str, who: str) -> Entry:
    """Apply the rework to `entry` through the lifecycle (the caller checked `refusal`).

    Works for any keeper with a journal: the CLI's one-shot hands, or the daemon's shop (the
    merge queue). The transition notifies nothing: a sender that wants a message sends it.
    """
    notes = check_notes(notes)
    journal = keeper.journal
    if journal is None:
        raise ShopfloorError(f"cannot rework {entry.id}: the journal (.shopfloor/) is not readable")
    # Before the move: a rework whose move fails leaves only a harmless lower bound.
    tip = restart_attempts(journal, keeper.board.root, entry.id)
    branch = branch_name(entry.id)
    try:
        text = keeper.board.read_text(entry)
    except OSError:
        raise lifecycle.TaskMoved(f"{entry.id} left {entry.lane.value}/; try again") from None
    when = task.utc_now()
    section = appended(task.get_section(text, SECTION), notes, who, when)
    first = task.one_line(notes.splitlines()[0])
    short = first if len(first) <= 120 else first[:119] + "…"
    on = f"continues on {branch}" if tip else "starts its branch"
    line = f"rework via {who}: {short} — back to the Coder, which {on}"
    change = lifecycle.Change(sections={SECTION: section})
    try:
        moved = lifecycle.apply(keeper, entry, Event.REWORK, line, change)
    except lifecycle.TransitionRefused as exc:  # a run claimed it meanwhile
        raise ShopfloorError(f"{exc}; a run may have started: try again when it ends") from None
    journal.save_task_state(entry.id, land=None)  # a landing it waited for is not due now
    return moved


def branch_name(task_id: str) -> str:
    return f"shopfloor/{task_id}"


def restart_attempts(journal: Journal, root: Path, task_id: str) -> str | None:
    """Attempts start again at 1 (a rework or a retry): remember the branch tip, so the next
    "attempt 1" is never mistaken for an earlier round's commit (`gitops.attempt_commit`).
    Returns the tip (None: the task has no branch yet)."""
    ref = f"refs/heads/{branch_name(task_id)}"
    tip = gitops.git(root, "rev-parse", "--verify", "--quiet", ref, check=False).strip() or None
    journal.save_task_state(task_id, attempts_since=tip)
    return tip


# ---------------------------------------------------------------------------- comments


def format_comments(notes: str, comments: Sequence[Mapping[str, Any]]) -> str:
    """The notes of a rework from the web board: the general note, then each inline comment
    on the diff as "- `path:line` — text", with the diff line it is on quoted when given.

    A comment is `{"path": str, "line": int | None, "text": str}` and may carry `"quote"`
    (the text of the diff line). ShopfloorError for a malformed comment or nothing at all.
    """
    parts = [notes.strip()] if notes.strip() else []
    lines = []
    for number, comment in enumerate(comments, start=1):
        path, line, text = _comment_fields(comment, number)
        where = f"{path}:{line}" if line is not None else path
        lines.append(f"- {_code(where)} — {task.one_line(text).strip()}")
        quote = comment.get("quote")
        if isinstance(quote, str) and quote.strip():
            lines.append(f"  > {_code(task.one_line(quote).rstrip())}")
    if lines:
        parts.append("Comments on the diff:\n\n" + "\n".join(lines))
    if not parts:
        raise ShopfloorError("a rework needs a note or at least one comment on the diff")
    return "\n\n".join(parts)


def _comment_fields(comment: Mapping[str, Any], number: int) -> tuple[str, int | None, str]:
    path, line, text = comment.get("path"), comment.get("line"), comment.get("text")
    if not isinstance(path, str) or not path.strip() or "\n" in path:
        raise ShopfloorError(f"comment {number}: `path` must be a file path")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        raise ShopfloorError(f"comment {number}: `line` must be a line number (1 or more)")
    if not isinstance(text, str) or not text.strip():
        raise ShopfloorError(f"comment {number}: `text` is empty")
    return path.strip(), line, text


def _code(text: str) -> str:
    """`text` as inline code, whatever backticks it holds."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


__all__ = [
    "SECTION",
    "appended",
    "branch_name",
    "check_notes",
    "format_comments",
    "refusal",
    "restart_attempts",
    "send_back",
]
