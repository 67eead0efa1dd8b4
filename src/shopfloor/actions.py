"""What a person can do to the board, in one place for the CLI, chat and web front ends."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor import defaults, lifecycle, task
from shopfloor.board import Board, Entry, Lane
from shopfloor.errors import ShopfloorError
from shopfloor.statusdoc import JSON_SCHEMA_VERSION as JSON_SCHEMA_VERSION  # status document
from shopfloor.statusdoc import paused_json as paused_json
from shopfloor.statusdoc import run_json as run_json
from shopfloor.statusdoc import spend_json as spend_json
from shopfloor.words import Event, Status


@dataclass(frozen=True)
class NewTask:
    title: str
    body: str = ""
    backlog: bool = False
    priority: str = defaults.DEFAULT_PRIORITY
    type: str = "feature"
    agent: str | None = None
    source: str = "cli"
    max_attempts: int | None = None  # None: the project's pipeline.max_attempts


def project_max_attempts(root: Path) -> int:
    """pipeline.max_attempts from shopfloor.toml, read cheaply; the default if unset or broken."""
    import tomllib

    try:
        data = tomllib.loads((root / defaults.CONFIG_FILE).read_text("utf-8"))
        value = data.get("pipeline", {}).get("max_attempts")
    except (OSError, ValueError, AttributeError):
        return defaults.DEFAULT_MAX_ATTEMPTS
    return value if isinstance(value, int) and value >= 1 else defaults.DEFAULT_MAX_ATTEMPTS


def _check_title(title: str) -> str:
    clean = " ".join(title.split())
    if not clean:
        raise ShopfloorError('a task needs a title, e.g. shopfloor new "Retry Telegram sends"')
    if len(clean) > 200:
        raise ShopfloorError("the title is over 200 characters; put the details in --body")
    return clean


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ShopfloorError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def create_task(board: Board, spec: NewTask) -> Entry:
    """A request in inbox/ (or a ready spec in backlog/) with a fresh, unique id."""
    title = _check_title(spec.title)
    _check_choice("priority", spec.priority, defaults.PRIORITIES)
    _check_choice("type", spec.type, defaults.TYPES)
    now = task.utc_now()
    header = task.Header(
        id=board.allocate_id(),
        title=title,
        type=spec.type,
        priority=spec.priority,
        max_attempts=spec.max_attempts or project_max_attempts(board.root),
        agent=spec.agent,
        created=now,
        updated=now,
    )
    section = "Spec" if spec.backlog else "Request"
    text = task.render_new(
        header,
        sections={section: spec.body or title},
        tracker=f"{now} {spec.source} created in {'backlog' if spec.backlog else 'inbox'}",
    )
    lane = Lane.BACKLOG if spec.backlog else Lane.INBOX
    path = board.create(lane, f"{header.id}-{task.slugify(title)}.md", text)
    return Entry(header, lane, path)


def _fenced(text: str, info: str = "text") -> str:
    """A code fence longer than any backtick run inside `text`."""
    ticks = "`" * max(3, _longest_backticks(text) + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def _longest_backticks(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return best


def log_tail(path: Path) -> str:
    """The last lines of a log or stack trace, bounded in lines and bytes."""
    if str(path) == "-":
        raise ShopfloorError("read the log from a file: --log FILE")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(0, size - defaults.HOTFIX_LOG_TAIL_BYTES))
            raw = fh.read()
    except OSError as exc:
        raise ShopfloorError(f"cannot read log {path}: {exc.strerror or exc}") from None
    text = raw.replace(b"\x00", b"").decode("utf-8", "replace")
    lines = text.splitlines()[-defaults.HOTFIX_LOG_TAIL_LINES :]
    if size > len(raw) and lines:
        lines = lines[1:]  # the first line was cut in the middle
    return "\n".join(lines)


def create_hotfix(
    board: Board, title: str, body: str = "", log: Path | None = None, source: str = "cli"
) -> Entry:
    """A HOTFIX-<slug>.md in hotfix/: the daemon starts its agent the moment it appears."""
    clean = _check_title(title)
    sections = {"Request": body or clean}
    if log is not None:
        tail = log_tail(log)
        sections["Evidence"] = f"Tail of `{log.name}`:\n\n{_fenced(tail)}"
    now = task.utc_now()
    # Ids are ASCII: a title with no ASCII word (another script) is named by its time.
    slug = task.id_slug(clean) or now.replace(":", "").replace("-", "").lower()
    for _ in range(100):  # a parallel hotfix with the same title takes the next suffix
        task_id, name = board.hotfix_name(slug)
        header = task.Header(
            id=task_id,
            title=clean,
            type="hotfix",
            priority="P0",
            max_attempts=1,
            created=now,
            updated=now,
        )
        text = task.render_new(header, sections=sections, tracker=f"{now} {source} hotfix filed")
        try:
            return Entry(header, Lane.HOTFIX, board.create(Lane.HOTFIX, name, text))
        except FileExistsError:
            continue
    raise ShopfloorError("could not find a free HOTFIX file name; clean up tasks/hotfix/")


# ---------------------------------------------------------------------------- reading


def entry_json(board: Board, entry: Entry) -> dict[str, Any]:
    # The path relative to the root, without pathlib (this runs for every task on `status`).
    path = f"{defaults.TASKS_DIR}/{entry.lane.value}/{entry.name}"
    return {**entry.header.to_json(), "lane": entry.lane.value, "path": path}


def task_document(board: Board, entry: Entry) -> dict[str, Any]:
    """What `new --json` and `hotfix --json` print: a task object in the shared envelope."""
    return {"schema": JSON_SCHEMA_VERSION, **entry_json(board, entry)}


def status_report(
    board: Board, sweep: bool = True, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The board at a glance, as the documented JSON document (schema 1)."""
    scan = board.sweep() if sweep else board.scan()
    counts = {lane.value: 0 for lane in Lane}
    for entry in scan.entries:
        counts[entry.lane.value] += 1
    counts[Lane.INVALID.value] = len(scan.invalid)
    tasks = [entry_json(board, e) for e in scan.entries]
    from shopfloor import landing  # the merge queue's own record (a file: no sqlite)

    return {
        "schema": JSON_SCHEMA_VERSION,
        "root": str(board.root),
        "counts": counts,
        "tasks": tasks,
        "landing": landing.report(board.root, tasks),
        "invalid": [{"path": board.relative(q.path), "reason": q.reason} for q in scan.invalid],
        "unreadable": [{"path": board.relative(p.path), "reason": p.reason} for p in scan.problems],
        "conflicts": [
            {"id": task_id, "paths": [board.relative(e.path) for e in entries]}
            for task_id, entries in sorted(scan.conflicts.items())
        ],
        "unknown_folders": scan.unknown,
        "runs": [run_json(r) for r in runs or []],
    }


def show_report(board: Board, task_id: str) -> dict[str, Any]:
    entry = board.find(task_id)
    text = board.read_text(entry)
    tracker = task.get_section(text, "Tracker") or ""
    return {
        "schema": JSON_SCHEMA_VERSION,
        **entry_json(board, entry),
        "sections": {
            name: task.get_section(text, name)
            for name in ("Request", "Spec", "Verification", "QA notes", "Rework notes")
            if task.get_section(text, name) is not None
        },
        "tracker": [line[2:] for line in tracker.splitlines() if line.startswith("- ")],
        "text": text,
    }


def cwd_relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- decisions
# These only change the board, through the lifecycle like every other writer; the daemon
# reacts to what it sees there (a task that left active/ has its run stopped), so they work
# the same with or without a daemon running.


@contextlib.contextmanager
def _hands(board: Board) -> Iterator[lifecycle.Hands]:
    """The lifecycle's hands for a one-shot command: the board and, if it opens, the journal."""
    from shopfloor.journal import Journal, open_journal

    try:
        journal: Journal | None = open_journal(board.root)
    except Exception:  # a move then says the journal is needed; in-place edits go on
        journal = None
    try:
        yield lifecycle.Hands(board, journal)
    finally:
        if journal is not None:
            journal.close()


def decide(board: Board, task_id: str, event: Event, line: str) -> Entry:
    """Apply a person's decision to the task's file where it is now."""
    with _hands(board) as hands:
        return lifecycle.apply(hands, board.find(task_id), event, line)


def approve(board: Board, task_id: str, who: str = "cli") -> Entry:
    """Release a spec waiting for a human's go-ahead."""
    return decide(board, task_id, Event.APPROVED, f"human approved via {who}")


def retry(board: Board, task_id: str, who: str = "cli") -> Entry:
    """Give a failed or parked task a fresh set of attempts where its work starts again.

    A hotfix runs again as a hotfix: queued in hotfix/ (from failed/ too), where the daemon
    starts its agent at once in the live tree."""
    entry = board.find(task_id)
    task_id = entry.id  # a prefix or a full hotfix slug named it
    line = f"human retry via {who}"
    hotfix = entry.header.is_hotfix and entry.lane in (Lane.HOTFIX, Lane.FAILED)
    if hotfix:
        line += "; runs again as a hotfix, in the live tree"
    else:
        _restart_attempts(board, task_id)
    entry = decide(board, task_id, Event.RETRIED, line)
    if hotfix:
        _keep_earlier_hotfix_paths(board.root, task_id)
    _lift_setup_pauses(board.root)
    return entry


def _restart_attempts(board: Board, task_id: str) -> None:
    """Attempt numbers start again: the branch's earlier "attempt 1" is not this round's."""
    from shopfloor import rework as rework_

    with _hands(board) as hands:
        if hands.journal is not None:
            rework_.restart_attempts(hands.journal, board.root, task_id)


def _keep_earlier_hotfix_paths(root: Path, task_id: str) -> None:
    """A re-run starts from a snapshot that holds the last run's changes, so it names only its
    own: `hotfix close` must still check the earlier runs' files (`hotfix_earlier_paths`)."""
    from shopfloor.journal import open_journal

    with open_journal(root) as journal:
        state = journal.task_state(task_id)
        earlier = set(state.get("hotfix_earlier_paths") or []) | set(
            state.get("hotfix_paths") or []
        )
        journal.save_task_state(task_id, hotfix_earlier_paths=sorted(earlier) or None)


def _lift_setup_pauses(root: Path) -> None:
    """A retry says "I fixed the agent": agents paused for a login or a binary run again."""
    from shopfloor import budget
    from shopfloor.journal import open_journal

    with open_journal(root) as journal:
        journal.clear_pauses(budget.SETUP_PROBLEMS)


def rework(board: Board, task_id: str, notes: str, who: str = "cli") -> Entry:
    """Send a task back to the Coder with `notes` for its next attempt, keeping its branch.

    From review/, backlog/, done/ (not landed, or with its pull request open) and failed/;
    a running task is refused, never stopped (see `rework.refusal`). Fresh attempts, like
    `retry`; the notes are appended to `## Rework notes`, which the next Coder prompt shows."""
    from shopfloor import rework as rework_

    notes = rework_.check_notes(notes)
    entry = board.find(task_id)
    with _hands(board) as hands:
        if hands.journal is None:
            raise ShopfloorError(f"cannot rework {entry.id}: the journal (.shopfloor/) cannot open")
        state = hands.journal.task_state(entry.id)
        pr_open = bool(state.get("pr_url")) or state.get("land") == "opened"
        why = rework_.refusal(entry, board.read_text(entry), pr_open)
        if why is not None:
            raise ShopfloorError(why)
        return rework_.send_back(hands, entry, notes, who)


def format_comments(notes: str, comments: Sequence[Mapping[str, Any]]) -> str:
    """Rework notes from a general note and inline diff comments (`{path, line, text}`, and
    optionally `quote`: the diff line); the web board and the CLI share this format."""
    from shopfloor import rework as rework_

    return rework_.format_comments(notes, comments)


def cancel(board: Board, task_id: str, who: str = "cli") -> Entry:
    """Park a task in failed/ (a running agent is stopped by the daemon when it sees this);
    a hotfix: see `cancel_hotfix`."""
    entry = board.find(task_id)
    task_id = entry.id  # a prefix or a full hotfix slug named it
    if entry.lane in (Lane.DONE, Lane.FAILED):
        raise ShopfloorError(f"{task_id} is already in {entry.lane.value}/")
    if entry.lane is Lane.HOTFIX:
        return cancel_hotfix(board, task_id, who).entry
    return decide(board, task_id, Event.CANCELLED, f"human cancelled via {who}")


@dataclass(frozen=True)
class HotfixCancel:
    """What cancelling a hotfix did."""

    entry: Entry
    started: bool  # its agent had been started: it is stopped, the file stays in hotfix/
    left: str | None = None  # what the agent left in the tree (None: not waited for)
    recorded: bool = False  # `left` is the board's `hotfix-stopped` line (else: read now)


#: How long `shopfloor cancel` waits for the daemon to stop a hotfix agent and say what it left
#: (the runner's grace for SIGTERM is 5 s).
CANCEL_WAIT = 15.0


def cancel_hotfix(board: Board, task_id: str, who: str = "cli", wait: float = 0.0) -> HotfixCancel:
    """Stop a hotfix.

    Running: it stays in hotfix/, `awaiting-human` (the live tree may hold half a patch); the
    daemon stops its agent and records what it left (`hotfix-stopped`), which this waits for
    up to `wait` seconds. With no daemon running, this records it itself.
    Queued (its agent never started): to failed/, closed; `retry` files it again.
    Awaiting the human: nothing to stop; the message points to `hotfix close` and `retry`.
    """
    from shopfloor import hotfix_controls, lock

    with _hands(board) as hands:
        for _ in range(5):  # the daemon may claim it meanwhile: read again and decide again
            entry = board.find(task_id)
            task_id = entry.id  # a prefix or a full hotfix slug named it
            if entry.lane is not Lane.HOTFIX:
                raise ShopfloorError(f"{task_id} is not in hotfix/ (it is in {entry.lane.value}/)")
            status = entry.header.status
            try:
                if status == Status.QUEUED:
                    line = f"human cancelled via {who} before its agent started; nothing ran"
                    moved = lifecycle.apply(hands, entry, Event.WITHDRAWN, line)
                    return HotfixCancel(moved, started=False)
                if status == Status.RUNNING:
                    line = (
                        f"human cancelled via {who}; stopping its agent, then saying what it left"
                    )
                    payload = {
                        "ok": False,
                        "cancelled": True,
                        "summary": f"cancelled via {who}; its agent is being stopped",
                    }
                    change = lifecycle.Change(payload=payload)
                    entry = lifecycle.apply(hands, entry, Event.CANCELLED, line, change)
                    break
            except lifecycle.TransitionRefused:
                continue
            raise ShopfloorError(
                f"{task_id} is not running ({status}): nothing to stop. Close it with "
                f"`shopfloor hotfix close {task_id}`, or run it again with "
                f"`shopfloor retry {task_id}`"
            )
        else:
            raise ShopfloorError(f"{task_id} keeps changing; try again in a moment")
        marked = len(_tracker_lines(board, entry))
        state = hands.journal.task_state(task_id) if hands.journal is not None else {}
        if not lock.daemon_running(board.root):  # nobody else will: record it here
            left = hotfix_controls.record_stop(hands, entry, state)
            return HotfixCancel(board.find(task_id), True, left.line, recorded=True)
        if wait <= 0:
            return HotfixCancel(entry, started=True)
        said = _wait_for_stop(board, entry, marked, wait)
        if said is not None:
            return HotfixCancel(board.find(task_id), True, said, recorded=True)
        # Not confirmed in time (an agent slow to die): the tree as it is now.
        return HotfixCancel(entry, True, hotfix_controls.stopped(board.root, task_id, state).line)


def _tracker_lines(board: Board, entry: Entry) -> list[str]:
    try:
        text = board.read_text(entry)
    except (OSError, ShopfloorError):
        return []
    return (task.get_section(text, "Tracker") or "").splitlines()


def _wait_for_stop(board: Board, entry: Entry, after: int, timeout: float) -> str | None:
    """The daemon's `hotfix-stopped` line, once it appears after the first `after` tracker
    lines; None when it does not within `timeout` seconds or the file leaves hotfix/."""
    from shopfloor import hotfix_controls

    deadline = time.monotonic() + timeout
    while True:
        if not entry.path.exists():
            return None
        for line in _tracker_lines(board, entry)[after:]:
            if hotfix_controls.STOPPED in line:
                return line.removeprefix("- ")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)  # a file read per tick; the daemon's stop takes up to its 5 s grace


def close_hotfix(
    board: Board, task_id: str, followup: bool = False, who: str = "cli", force: bool = False
) -> tuple[Entry, Entry | None]:
    """Archive a verified hotfix to done/, optionally filing the root-cause task.

    Refused while the files its agent changed still differ from HEAD (the fix is not
    committed) unless `force`. Records who closed it and the commit that holds the fix
    (`closed_by`, `fix_commit` and, when forced over uncommitted changes,
    `closed_uncommitted: true`), with a tracker line saying the same."""
    entry = board.find(task_id)
    task_id = entry.id  # a prefix or a full hotfix slug named it
    if entry.lane is not Lane.HOTFIX:
        raise ShopfloorError(f"{task_id} is not in hotfix/ (it is in {entry.lane.value}/)")
    if entry.header.status == Status.RUNNING:
        raise ShopfloorError(
            f"{task_id} is still running; wait for its agent to finish, or stop it with "
            f"`shopfloor cancel {task_id}`"
        )
    from shopfloor import hotfix_controls  # git: only when a hotfix is closed

    with _hands(board) as hands:
        state = hands.journal.task_state(task_id) if hands.journal is not None else {}
        facts = hotfix_controls.closing(board.root, state)
        if facts.uncommitted and not force:
            paths = " ".join(shlex.quote(p) for p in facts.uncommitted)
            raise ShopfloorError(
                f"{task_id}: the agent's changes are not committed: "
                f"{', '.join(facts.uncommitted)} — commit them (`git add -- {paths} && git "
                f"commit`), or close it anyway with `shopfloor hotfix close {task_id} --force`"
            )
        change = lifecycle.Change(fields=facts.fields(who, force))
        closed = lifecycle.apply(hands, entry, Event.HOTFIX_CLOSED, facts.line(who, force), change)
    follow = None
    if followup:
        text = board.read_text(closed)
        body = (
            f"Root-cause fix for hotfix {task_id} ({closed.header.title}).\n\n"
            f"The hotfix contained the failure; find and fix the cause properly, with tests.\n\n"
            f"Hotfix notes:\n\n{task.get_section(text, 'Verification') or '(none recorded)'}"
        )
        follow = create_task(
            board,
            NewTask(
                f"Root cause: {closed.header.title}", body, type="bug", priority="P1", source=who
            ),
        )
    return closed, follow


# ---------------------------------------------------------------------------- landing


def land(root: Path, task_id: str | None = None) -> Any:
    """Land now what the merge queue holds (or one task of it), in this process, under the
    queue's lock — a running daemon's queue thread waits for it, and the other way round.
    Notifications go to the outbox as the daemon's would. Returns a `landing.Outcome`."""
    from shopfloor import config as config_module
    from shopfloor import landing
    from shopfloor.journal import open_journal
    from shopfloor.notify import publish
    from shopfloor.shop import Shop

    board = Board(root)
    wanted = board.find(task_id).id if task_id else None
    if wanted is not None and not landing.ready(board, wanted):
        entry = board.find(wanted)
        raise ShopfloorError(
            f"{wanted} is not in the merge queue (it is in {entry.lane.value}/ with status "
            f'{entry.header.status}); a task enters it when QA passes with land = "queue"'
        )
    settings = config_module.load(root / defaults.CONFIG_FILE)
    journal = open_journal(root)
    try:
        shop = Shop(
            root,
            settings,
            board,
            journal,
            notify=lambda event, **payload: publish(journal, settings, event, **payload),
            log=lambda event, **fields: None,
        )
        return landing.land(shop, wanted)
    finally:
        journal.close()
