"""A task's life in one place: every transition as a row of a table, and one `apply()`.

`TRANSITIONS` maps (lane, event) to what happens: the lane the file goes to, its new status,
what happens to `attempts`, and the notification. `apply()` carries a row out as a single
read-modify-write of the task file with a compare-and-swap on where the file is: it names
the lane and file name it expects, and if a person moved, renamed or re-saved the file
meanwhile it never re-creates the old path (`TaskMoved`), nor overwrites their version (it
re-reads and tries again).

A transition that moves the file is two steps (rewrite in place, then rename), so its intent
is journaled first; `finish_pending()` completes or abandons what a crash interrupted. Every
transition is journaled: `shopfloor show ID --history` reads them back.

Attempts count only what an agent did: they go up when a PM, Coder or QA run ends with a
verdict against the task, never for a claim, a crash, a fault, a person's move or a missing
agent. The attempt a run plays is `attempts + 1`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shopfloor import _fs, task
from shopfloor.board import Board, Entry, check_name
from shopfloor.errors import ConflictError, InfrastructureError, ShopfloorError
from shopfloor.words import Event, Lane, Status

if TYPE_CHECKING:  # status (which imports this through actions) never loads sqlite
    from shopfloor.journal import Journal


class Attempts(Enum):
    KEEP = "keep"
    ADD = "+1"  # an agent's verdict against the task
    RESET = "reset"  # a new stage chain (spec written) or a person's retry


#: A lane that depends on the task: `RETRY_LANE` is hotfix/ for a hotfix, else backlog/ when
#: it has a spec, else inbox/.
SAME = "same"
RETRY_LANE = "retry-lane"
Target = Lane | str


@dataclass(frozen=True, slots=True)
class Row:
    to: Target
    status: Status
    attempts: Attempts = Attempts.KEEP
    requires: frozenset[Status] | None = None  # None: any status
    notify: str | None = None
    exhausted: bool = False  # past max_attempts the task goes to failed/ instead
    # False for claims: a claim a power loss undoes is a claim not made (the crash protocol's
    # "interrupted, no attempt used"), and its fsyncs held up every claim of the main thread.
    durable: bool = True
    tracked: bool = True  # False: no tracker line (claims; the journal's history has them)


def _row(
    to: Target,
    status: Status,
    attempts: Attempts = Attempts.KEEP,
    requires: tuple[Status, ...] | None = None,
    **kw: Any,
) -> Row:
    return Row(to, status, attempts, frozenset(requires) if requires else None, **kw)


Q, R, AH = Status.QUEUED, Status.RUNNING, Status.AWAITING_HUMAN
AA, BL, CL = Status.AWAITING_APPROVAL, Status.BLOCKED, Status.CLOSED
LQ = Status.LANDING
I, B, A, RV = Lane.INBOX, Lane.BACKLOG, Lane.ACTIVE, Lane.REVIEW  # noqa: E741 - a table key
D, F, H = Lane.DONE, Lane.FAILED, Lane.HOTFIX
_WORK_LANES = (I, B, RV)
_PARKED = (AH, BL)
_PARKING = (Event.AGENT_PROBLEM, Event.SETUP_PROBLEM, Event.ERRORED)
AP, HAH = "agent_problem", "hotfix_awaiting_human"

#: (lane, event) -> what happens. docs/architecture.md has the same table; a test walks both.
TRANSITIONS: dict[tuple[Lane, Event], Row] = {
    # claims: a job owns the task from here
    (I, Event.CLAIMED): _row(SAME, R, requires=(Q,), durable=False, tracked=False),
    (B, Event.CLAIMED): _row(A, R, requires=(Q,), durable=False, tracked=False),
    (RV, Event.CLAIMED): _row(SAME, R, requires=(Q,), durable=False, tracked=False),
    (H, Event.CLAIMED): _row(SAME, R, requires=(Q,), durable=False, tracked=False),
    # PM
    (I, Event.SPEC_WRITTEN): _row(B, Q, Attempts.RESET, (R,)),
    (I, Event.SPEC_GATED): _row(B, AA, Attempts.RESET, (R,), notify="awaiting_approval"),
    (I, Event.SPEC_FAILED): _row(SAME, Q, Attempts.ADD, (R,), exhausted=True),
    # Code + Run
    (A, Event.CODED): _row(RV, Q, requires=(R,)),
    (A, Event.CODE_FAILED): _row(B, Q, Attempts.ADD, (R,), exhausted=True),
    # Read
    (RV, Event.QA_PASSED): _row(D, AH, Attempts.ADD, (R,), notify="task_done"),
    (RV, Event.QA_FAILED): _row(B, Q, Attempts.ADD, (R,), notify="qa_failed", exhausted=True),
    # Hotfix: the file stays in hotfix/ for the human
    (H, Event.HOTFIX_RAN): _row(SAME, AH, requires=(R,), notify=HAH),
    (H, Event.HOTFIX_CLOSED): _row(D, CL, requires=(Q, AH)),
    # a person stops a running hotfix: it stays for them (the tree may hold half a patch);
    # the daemon stops the agent and says what it left (`hotfix-stopped`)
    (H, Event.CANCELLED): _row(SAME, AH, requires=(R,), notify=HAH),
    (H, Event.HOTFIX_STOPPED): _row(SAME, AH, requires=(AH,), notify="hotfix_stopped"),
    (H, Event.WITHDRAWN): _row(F, CL, requires=(Q,)),  # cancelled before its agent started
    (H, Event.RETRIED): _row(SAME, Q, Attempts.RESET, (AH,)),  # again, in the live tree
    **{(lane, Event.NOTED): _row(SAME, R, requires=(R,)) for lane in (I, A, RV, H)},
    # not the task's fault: no attempt used
    **{(lane, Event.AGENT_WAITS): _row(SAME, Q, requires=(R,)) for lane in (I, RV)},
    (A, Event.AGENT_WAITS): _row(B, Q, requires=(R,)),
    **{(lane, Event.AGENT_PAUSED): _row(SAME, Q, requires=(R,), notify=AP) for lane in (I, RV)},
    (A, Event.AGENT_PAUSED): _row(B, Q, requires=(R,), notify=AP),
    **{(lane, ev): _row(SAME, AH, requires=(R,), notify=AP) for lane in (I, RV) for ev in _PARKING},
    **{(A, ev): _row(B, AH, requires=(R,), notify=AP) for ev in _PARKING},
    **{(H, ev): _row(SAME, AH, requires=(R,), notify=HAH) for ev in _PARKING},
    **{(lane, Event.INTERRUPTED): _row(SAME, Q, requires=(R,)) for lane in _WORK_LANES},
    (A, Event.INTERRUPTED): _row(B, Q),
    # a hotfix is never re-run by itself: the live tree may hold half a patch
    (H, Event.INTERRUPTED): _row(SAME, AH, requires=(R,), notify=HAH),
    # landing (pipeline.land = "merge")
    (D, Event.LANDED): _row(SAME, CL, requires=(AH,)),
    (D, Event.LAND_FAILED): _row(SAME, BL, requires=(AH,)),
    # the merge queue (pipeline.land = "queue", see `landing`): done/ only once landed
    (RV, Event.LAND_QUEUED): _row(SAME, LQ, Attempts.ADD, (R,)),
    (RV, Event.LAND_WAITING): _row(SAME, LQ, requires=(LQ,)),
    (RV, Event.LANDED): _row(D, CL, requires=(LQ,), notify="task_landed"),
    (RV, Event.LAND_BOUNCED): _row(B, Q, requires=(LQ,), notify="land_bounced"),
    (RV, Event.LAND_REFUSED): _row(F, CL, requires=(LQ,), notify="task_failed"),
    # pipeline.land = "pr"; `retry` of a failed one (blocked -> awaiting-human) pushes again
    (D, Event.PR_OPENED): _row(SAME, CL, requires=(AH,), notify="pr_opened"),
    (D, Event.PR_FAILED): _row(SAME, BL, requires=(AH,), notify="pr_failed"),
    # a person's decisions
    (B, Event.APPROVED): _row(SAME, Q, requires=(AA,)),
    (I, Event.APPROVED): _row(B, Q, requires=(AA,)),  # a gate a crash left in inbox/
    (F, Event.RETRIED): _row(RETRY_LANE, Q, Attempts.RESET),
    **{(lane, Event.RETRIED): _row(SAME, Q, Attempts.RESET, _PARKED) for lane in _WORK_LANES},
    (D, Event.RETRIED): _row(SAME, AH, requires=(BL,)),  # land again after a failed merge
    **{(lane, Event.CANCELLED): _row(F, CL) for lane in (I, B, A, RV)},
    # back to the Coder with notes, on its branch (`rework`); never while a run owns it
    (RV, Event.REWORK): _row(B, Q, Attempts.RESET, (Q, AH, BL)),
    (B, Event.REWORK): _row(SAME, Q, Attempts.RESET, (Q, AH, BL)),
    (D, Event.REWORK): _row(B, Q, Attempts.RESET, (AH, BL, CL)),  # CL: only with a PR open
    (F, Event.REWORK): _row(B, Q, Attempts.RESET),
}

#: What each status means in each lane; anything else is put right by `Event.RECONCILED`.
LANE_STATUSES: dict[Lane, frozenset[Status]] = {
    I: frozenset({Q, R, AH, BL}),
    B: frozenset({Q, AA, AH, BL}),
    A: frozenset({R}),
    RV: frozenset({Q, R, AH, BL, LQ}),
    D: frozenset({AH, BL, CL}),
    F: frozenset({CL}),
    H: frozenset({Q, R, AH}),
}
#: The status a file gets when it arrives in a lane by a person's hand.
ARRIVAL_STATUS: dict[Lane, Status] = {I: Q, B: Q, RV: Q, D: CL, F: CL, H: Q}


class TaskMoved(ShopfloorError):
    """The task file is no longer where the caller expected (a person moved or removed it)."""


class TransitionRefused(ShopfloorError):
    """The event does not apply to the task in its lane and status; the message says why."""


# ---------------------------------------------------------------------------- the keeper


class Keeper(Protocol):
    """What apply() needs: the board, the journal (None: not available), notify and log."""

    @property
    def board(self) -> Board: ...

    @property
    def journal(self) -> Journal | None: ...

    def notify(self, event: str, **payload: Any) -> object: ...

    def log(self, event: str, **fields: Any) -> None: ...


@dataclass
class Hands:
    """A Keeper for one-shot commands (CLI, chat): they notify nothing, log nothing."""

    board: Board
    journal: Journal | None = None
    notify: Callable[..., object] = lambda event, **payload: None
    log: Callable[..., None] = lambda event, **fields: None


#: One writer per task inside this process; other processes are caught by the CAS.
_task_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def _task_lock(task_id: str) -> Iterator[None]:
    with _locks_guard:
        lock = _task_locks.setdefault(task_id, threading.Lock())
    with lock:
        yield


#: Test seam: called with a point name before each write of a transition ("write", "move").
fault_hook: Callable[[str, Event], None] | None = None


def fault_point(point: str, event: Event) -> None:
    """The same test seam at a point outside `apply` (the daemon's hotfix snapshot)."""
    _fault_point(point, event)


def _fault_point(point: str, event: Event) -> None:
    if fault_hook is not None:
        fault_hook(point, event)
    spec = os.environ.get("SHOPFLOOR_FAULT")  # "<point>:<event>": the crash fuzz kills here
    if spec and spec == f"{point}:{event.value}":
        os.kill(os.getpid(), 9)


# ---------------------------------------------------------------------------- apply


@dataclass
class Change:
    """Besides status/attempts: fields, sections and notification details a stage adds."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    sections: Mapping[str, str] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


#: A person's events, named as the command they typed.
_VERBS = {
    Event.APPROVED: "approve",
    Event.RETRIED: "retry",
    Event.CANCELLED: "cancel",
    Event.WITHDRAWN: "cancel",
    Event.HOTFIX_CLOSED: "hotfix close",
    Event.REWORK: "rework",
}


def rule(lane: Lane, event: Event) -> Row:
    try:
        return TRANSITIONS[(lane, event)]
    except KeyError:
        what = _VERBS.get(event, event.value)
        raise TransitionRefused(f"{what} does not apply to a task in {lane.value}/") from None


def apply(
    keeper: Keeper, entry: Entry, event: Event, line: str, change: Change | None = None
) -> Entry:
    """Carry out `event` on the task file `entry` names; returns where the file is now."""
    row = rule(entry.lane, event)
    with _task_lock(entry.id):
        for _ in range(20):  # an editor saving again and again: bounded, then a clear error
            try:
                return _apply_once(keeper, entry, event, row, line, change or Change())
            except _fs.FileChangedError:
                continue
    raise ConflictError(f"{entry.id} keeps changing under the daemon; try again in a moment")


def _read(board: Board, path: Path, task_id: str) -> tuple[str, os.stat_result]:
    try:
        st = os.lstat(path)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise TaskMoved(f"{task_id}: {path.name} is no longer a regular file")
        text = board.read_text(Entry(task.Header(task_id, "?"), Lane(path.parent.name), path))
    except FileNotFoundError:
        raise TaskMoved(f"{task_id} left {path.parent.name}/") from None
    header = task.parse(text)
    if header.id != task_id:
        raise TaskMoved(f"{path.name} now holds task {header.id}, not {task_id}")
    return text, st


def _apply_once(
    keeper: Keeper, entry: Entry, event: Event, row: Row, line: str, change: Change
) -> Entry:
    board = keeper.board
    text, st = _read(board, entry.path, entry.id)
    header = task.parse(text)
    current = Status(header.status)
    if row.requires is not None and current not in row.requires:
        wanted = " or ".join(sorted(s.value for s in row.requires))
        raise TransitionRefused(
            f"{entry.id} is in {entry.lane.value}/ with status {current.value}; "
            f"{_VERBS.get(event, event.value)} needs status {wanted}"
        )
    attempts = _attempts(row.attempts, header.attempts)
    target, status, suffix = _destination(row, entry.lane, text, attempts, header.max_attempts)
    now = task.utc_now()
    stamped = f"{now} {line}{suffix}"
    fields: dict[str, Any] = {"status": status.value, **change.fields}
    if attempts != header.attempts:
        fields["attempts"] = attempts
    fields["updated"] = now
    new_text = task.set_fields(text, fields)
    for name, content in change.sections.items():
        new_text = task.set_section(new_text, name, content)
    if row.tracked:
        new_text = task.append_tracker(new_text, stamped)
    new_header = task.parse(new_text)
    notify = _notification(row, target, entry, new_header, line, change)
    intent = _begin(
        keeper, entry, event, target, status, attempts, stamped, notify, (text, new_text)
    )
    _fault_point("write", event)
    moves = target is not entry.lane
    _write(keeper, entry, (new_text, st), intent, stamped, moves, durable=row.durable)
    moved = Entry(new_header, entry.lane, entry.path)
    if target is not entry.lane:
        _fault_point("move", event)
        try:
            moved = _move(board, moved, target, durable=row.durable)
        except (TaskMoved, ConflictError):  # a person's move or file won: not carried out
            _end(keeper, intent, "abandoned")
            raise
    _end(keeper, intent, "applied")
    if notify is not None:
        keeper.notify(notify[0], **notify[1])
    return moved


def _write(
    keeper: Keeper,
    entry: Entry,
    new: tuple[str, os.stat_result],
    intent: int | None,
    stamped: str,
    moves: bool,
    durable: bool = True,
) -> None:
    """The compare-and-swap write; whatever stops it, the journal row is settled."""
    try:
        # A move follows: its rename fsyncs both folders, so this write fsyncs only the data.
        _fs.replace_if_same(entry.path, new[0], new[1], durable=durable, sync_dir=not moves)
    except FileNotFoundError:
        _end(keeper, intent, "abandoned")
        raise TaskMoved(f"{entry.id} left {entry.lane.value}/") from None
    except _fs.FileChangedError:
        _end(keeper, intent, "abandoned")
        raise
    except OSError:  # a full disk, a read-only lane: settle the record, the caller has a fault
        _settle(keeper, intent, entry.path, stamped, moves=moves)
        raise


def _attempts(rule_: Attempts, attempts: int) -> int:
    if rule_ is Attempts.ADD:
        return attempts + 1
    if rule_ is Attempts.RESET:
        return 0
    return attempts


def _destination(
    row: Row, lane: Lane, text: str, attempts: int, max_attempts: int
) -> tuple[Lane, Status, str]:
    """(lane, status, tracker suffix) — past max_attempts a failing verdict ends in failed/."""
    if row.exhausted and attempts >= max_attempts:
        return F, CL, f"; attempt {attempts} of {max_attempts}: giving up"
    if row.to == SAME:
        return lane, row.status, ""
    target = _retry_lane(text) if row.to == RETRY_LANE else Lane(row.to)
    suffix = f"; back to {target.value}/" if row.exhausted else ""
    return target, row.status, suffix


def _retry_lane(text: str) -> Lane:
    """A retried task goes back to where its work starts: a hotfix to hotfix/ (it runs again
    in the live tree, never as a coder task), else coding if it has a spec."""
    if task.parse(text).is_hotfix:
        return H
    return B if task.get_section(text, "Spec") else I


def _notification(
    row: Row, target: Lane, entry: Entry, header: task.Header, line: str, change: Change
) -> tuple[str, dict[str, Any]] | None:
    event = "task_failed" if row.exhausted and target is F else row.notify
    if event is None:
        return None
    payload: dict[str, Any] = {"task_id": entry.id, "title": header.title}
    if event == "task_failed":
        payload["reason"] = line
    return event, {**payload, **change.payload}


def _move(board: Board, entry: Entry, target: Lane, durable: bool) -> Entry:
    """The transition's rename; its write fsynced the data already when `durable`."""
    destination = board.lane_dir(target) / entry.name
    try:
        _fs.move_noreplace(entry.path, destination, durable=durable, data_synced=durable)
    except FileNotFoundError:
        raise TaskMoved(f"{entry.id} was moved away while the daemon moved it") from None
    except FileExistsError:
        raise ConflictError(
            f"{board.relative(destination)} already exists; {entry.id} stays in "
            f"{entry.lane.value}/ — keep one of the two files"
        ) from None
    return Entry(entry.header, target, destination)


# ---------------------------------------------------------------------------- the journal


def _begin(
    keeper: Keeper,
    entry: Entry,
    event: Event,
    target: Lane,
    status: Status,
    attempts: int,
    stamped: str,
    notify: tuple[str, dict[str, Any]] | None,
    texts: tuple[str, str],
) -> int | None:
    """Journal the transition before it is written: the audit trail, and for a crash in the
    middle, what `finish_pending` needs to complete it (the old text's hash, the new text).

    Without a journal, a move is refused (an InfrastructureError: nothing written, no
    attempt used) — except in hotfix/, which works as long as the live tree is writable. A
    write in place is one atomic step and goes on, unrecorded.
    """
    journal = keeper.journal
    try:
        if journal is None:
            raise InfrastructureError("no journal")
        return journal.begin_transition(
            {
                "task_id": entry.id,
                "event": event.value,
                "from_lane": entry.lane.value,
                "to_lane": target.value,
                "name": entry.name,
                "status": status.value,
                "attempts": attempts,
                "line": stamped,
                "notify": {"event": notify[0], "payload": notify[1]} if notify else None,
                "old_sha": _sha(texts[0]),
                "text": texts[1],
            }
        )
    except Exception as exc:
        if target is entry.lane or entry.lane is H:
            keeper.log("journal.unavailable", task=entry.id, error=str(exc))
            return None
        raise InfrastructureError(
            f"cannot journal the move of {entry.id} to {target.value}/ ({exc}); "
            "it waits until the journal is writable"
        ) from exc


def _settle(keeper: Keeper, intent: int | None, path: Path, stamped: str, moves: bool) -> None:
    """After a failed write: abandoned if the file is as it was, applied if the new text is
    in place and nothing is left to move; else still pending, for `finish_pending`."""
    try:
        written = stamped in path.read_text("utf-8")
    except (OSError, UnicodeError):
        return  # cannot tell: the start-up recovery decides
    if not written:
        _end(keeper, intent, "abandoned")
    elif not moves:
        _end(keeper, intent, "applied")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _end(keeper: Keeper, intent: int | None, state: str) -> None:
    if intent is None or keeper.journal is None:
        return
    try:
        keeper.journal.end_transition(intent, state)
    except Exception as exc:  # the board is already right; recovery settles the record
        keeper.log("journal.unavailable", error=str(exc))


def finish_pending(keeper: Keeper, busy: frozenset[str] = frozenset()) -> list[str]:
    """At start, and after a fault clears: complete every transition a crash or a fault cut in
    the middle, or record that it could not. `busy`: tasks whose job is running (theirs are
    in flight, not interrupted).

    The file is looked for where the transition left it. Still the text it was computed
    from: the new text is written and the file moved now. Rewritten but not moved: moved
    now. Already moved: closed. Gone, or edited by a person since: abandoned (the
    reconcile then treats the file as it finds it). A claim not yet written is abandoned, not
    completed: its job died with the daemon, and a completed claim would only be undone as
    "interrupted" — for a hotfix that means parked for a human, its agent never started.
    """
    journal = keeper.journal
    if journal is None:
        return []
    finished = []
    for row in journal.pending_transitions():
        if row["task_id"] in busy:
            continue
        with _task_lock(str(row["task_id"])):
            state = _finish_one(keeper, row)
        journal.end_transition(int(row["id"]), state)
        if state == "applied":
            finished.append(str(row["task_id"]))
            notify = row.get("notify")
            if isinstance(notify, dict):
                keeper.notify(str(notify["event"]), **dict(notify["payload"]))
        keeper.log("transition.recovered", task=row["task_id"], what=row["event"], state=state)
    return finished


def _finish_one(keeper: Keeper, row: Mapping[str, Any]) -> str:
    board = keeper.board
    name = str(row["name"])
    check_name(name)
    source = board.lane_dir(Lane(row["from_lane"])) / name
    target = board.lane_dir(Lane(row["to_lane"])) / name
    if target.exists() and source != target:
        return "applied"
    try:
        text, st = _read(board, source, str(row["task_id"]))
        # Written already: the new text, or its tracker line under a person's later edit.
        written = text == row.get("text") or f"- {row['line']}" in text
        if not written:
            if row["event"] == Event.CLAIMED.value:
                return "abandoned"  # its job died with the daemon: the task stays queued
            if row.get("text") is None or _sha(text) != row.get("old_sha"):
                return "abandoned"
            _fs.replace_if_same(source, str(row["text"]), st)
        if source != target:
            _fs.durable_rename(source, target)
    except (OSError, ShopfloorError):
        return "abandoned"
    return "applied"


# ---------------------------------------------------------------------------- reading


def legal(lane: Lane, status: str) -> bool:
    try:
        return Status(status) in LANE_STATUSES[lane]
    except (ValueError, KeyError):
        return False


def reconcile_event(entry: Entry, live: bool) -> Event | None:
    """What the board needs for a task no job is working on (None: it is fine as it is).

    `live`: a job of this daemon owns the task right now (then nothing is touched).
    """
    if live:
        return None
    # entry.status, not entry.header: a cached entry's header is made on first use.
    return _reconcile_for(entry.lane, entry.status)


@functools.lru_cache(maxsize=256)
def _reconcile_for(lane: Lane, status: str) -> Event | None:
    """reconcile_event's answer, a function of the lane and the status alone: remembered, as
    a start-up asks it for each of 50,000 closed tasks (256: a person's odd statuses too)."""
    if lane is Lane.INVALID:
        return None
    if lane is A or (status == R.value and (lane, Event.INTERRUPTED) in TRANSITIONS):
        return Event.INTERRUPTED  # done/ and failed/ have no run to interrupt: reconciled
    if lane is I and status == AA.value:
        return None  # a gate a crash left in inbox/: `approve` finishes it
    if not legal(lane, status):
        return Event.RECONCILED
    return None


def reconcile(
    keeper: Keeper, entry: Entry, event: Event, why: str, change: Change | None = None
) -> Entry:
    """Put a task right after a crash, a fault or a person's move (never burns an attempt)."""
    if event is Event.RECONCILED:
        status = ARRIVAL_STATUS[entry.lane]
        line = f"status {entry.header.status} means nothing in {entry.lane.value}/"
        return _apply_status(keeper, entry, status, f"{line}; now {status.value} ({why})")
    return apply(keeper, entry, event, why, change)


def _apply_status(keeper: Keeper, entry: Entry, status: Status, line: str) -> Entry:
    """RECONCILED: the only transition whose status depends on the lane, not the table."""
    with _task_lock(entry.id):
        text, st = _read(keeper.board, entry.path, entry.id)
        if legal(entry.lane, task.parse(text).status):
            return entry  # put right meanwhile
        now = task.utc_now()
        stamped = f"{now} {line}"
        new_text = task.set_fields(text, {"status": status.value, "updated": now})
        new_text = task.append_tracker(new_text, stamped)
        texts, lane, attempts = (text, new_text), entry.lane, entry.header.attempts
        intent = _begin(
            keeper, entry, Event.RECONCILED, lane, status, attempts, stamped, None, texts
        )
        _write(keeper, entry, (new_text, st), intent, stamped, moves=False)
        _end(keeper, intent, "applied")
        return Entry(task.parse(new_text), entry.lane, entry.path)


def locate(board: Board, task_id: str, name: str) -> Entry | None:
    """Where a task file is now, looked for by its name in every lane (cheap: no scan)."""
    for lane in Lane:
        if lane is Lane.INVALID:
            continue
        path = board.lane_dir(lane) / name
        if path.exists():
            try:
                text, _ = _read(board, path, task_id)
            except (ShopfloorError, OSError):
                continue
            return Entry(task.parse(text), lane, path)
    return None


__all__ = [
    "TRANSITIONS",
    "Change",
    "Hands",
    "Keeper",
    "TaskMoved",
    "TransitionRefused",
    "apply",
    "finish_pending",
    "reconcile",
    "reconcile_event",
]
