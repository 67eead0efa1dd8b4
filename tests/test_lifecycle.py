"""The lifecycle table and apply(): one read-modify-write, a compare-and-swap on the file's
place, every transition journaled, crashes in the middle completed at start."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shopfloor import actions, lifecycle, task
from shopfloor.board import Board, Entry, Lane
from shopfloor.errors import ConflictError, InfrastructureError
from shopfloor.journal import Journal
from shopfloor.words import Event, Status

ROOT = Path(__file__).resolve().parents[1]


class Crash(Exception):
    """Stands in for a kill at a fault point, inside one process."""


@pytest.fixture
def hands(project: Path) -> Iterator[lifecycle.Hands]:
    sent: list[tuple[str, dict[str, Any]]] = []
    with Journal.for_project(project) as journal:
        keeper = lifecycle.Hands(Board(project), journal, notify=lambda e, **p: sent.append((e, p)))
        keeper.sent = sent  # type: ignore[attr-defined]
        yield keeper


@pytest.fixture(autouse=True)
def no_fault_hook() -> Iterator[None]:
    yield
    lifecycle.fault_hook = None


def new(hands: lifecycle.Hands, backlog: bool = True, **fields: Any) -> Entry:
    entry = actions.create_task(hands.board, actions.NewTask("Do a thing", "x", backlog=backlog))
    if fields:
        text = task.set_fields(entry.path.read_text(), fields)
        entry.path.write_text(text)
        entry = Entry(task.parse(text), entry.lane, entry.path)
    return entry


def sent_events(hands: lifecycle.Hands) -> list[str]:
    return [e for e, _ in hands.sent]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- the table


def _docs_table() -> dict[tuple[str, str], tuple[str, ...]]:
    """The transition table as docs/architecture.md states it."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("<!-- transitions -->")[1].split("<!-- /transitions -->")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("lane", "") or set(cells[0]) <= {"-"}:
            continue
        lanes, event, to, status, attempts, requires, notify = cells
        for lane in lanes.split(", "):
            rows[(lane, event)] = (to, status, attempts, requires, notify)
    return rows


def _code_table() -> dict[tuple[str, str], tuple[str, ...]]:
    rows = {}
    for (lane, event), row in lifecycle.TRANSITIONS.items():
        to = row.to.value if isinstance(row.to, Lane) else row.to
        if row.exhausted:
            to += "; failed past max"
        requires = ", ".join(sorted(s.value for s in row.requires)) if row.requires else "any"
        rows[(lane.value, event.value)] = (
            to,
            row.status.value,
            row.attempts.value,
            requires,
            row.notify or "—",
        )
    return rows


def test_the_table_in_the_docs_is_the_table_in_the_code() -> None:
    """Rule: docs/architecture.md states every transition exactly as lifecycle.TRANSITIONS."""
    docs, code = _docs_table(), _code_table()
    assert sorted(docs) == sorted(code), set(docs) ^ set(code)
    for key in code:
        assert docs[key] == code[key], key


def test_every_status_a_transition_leaves_means_something_in_its_lane() -> None:
    """Rule: no transition leaves a status its lane does not define (no queued in failed/)."""
    for (lane, _event), row in lifecycle.TRANSITIONS.items():
        targets = [lane] if row.to == lifecycle.SAME else [Lane.BACKLOG, Lane.INBOX, Lane.HOTFIX]
        if isinstance(row.to, Lane):
            targets = [row.to]
        for target in targets:
            assert row.status in lifecycle.LANE_STATUSES[target], (lane, _event, target)
        if row.exhausted:
            assert Status.CLOSED in lifecycle.LANE_STATUSES[Lane.FAILED]


# ---------------------------------------------------------------------------- apply


def test_a_claim_then_a_failed_attempt_counts_one_attempt(hands: lifecycle.Hands) -> None:
    """Rule: attempts count verdicts, not claims."""
    entry = new(hands)
    entry = lifecycle.apply(hands, entry, Event.CLAIMED, "coder claimed")
    assert (entry.lane, entry.header.status, entry.header.attempts) == (Lane.ACTIVE, "running", 0)
    entry = lifecycle.apply(hands, entry, Event.CODE_FAILED, "coder failed")
    assert (entry.lane, entry.header.status, entry.header.attempts) == (Lane.BACKLOG, "queued", 1)
    assert "coder failed; back to backlog/" in entry.path.read_text()


def test_a_verdict_fsyncs_the_data_once_and_both_folders_and_a_claim_none(
    hands: lifecycle.Hands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsyncs only where the crash protocol needs them (docs/architecture.md, "Crash safety"):
    a verdict that rewrites and moves fsyncs the new text's data, then the two folders after
    the rename — three, not five; a claim none (one a power loss undoes was never made)."""
    entry = new(hands)
    synced: list[str] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    claimed = lifecycle.apply(hands, entry, Event.CLAIMED, "coder claimed")
    assert claimed.lane is Lane.ACTIVE and synced == [], synced
    coded = lifecycle.apply(hands, claimed, Event.CODED, "coded")
    monkeypatch.undo()
    active, review = hands.board.lane_dir(Lane.ACTIVE), hands.board.lane_dir(Lane.REVIEW)
    assert len(synced) == 3, synced
    assert synced[0].startswith(str(active / ".")), synced  # the temp file's data
    assert synced[1:] == [str(review), str(active)], synced
    assert coded.lane is Lane.REVIEW and "coded" in coded.path.read_text()


def test_past_max_attempts_a_verdict_ends_in_failed_closed_and_says_so(
    hands: lifecycle.Hands,
) -> None:
    entry = new(hands, attempts=2, max_attempts=3)
    entry = lifecycle.apply(hands, entry, Event.CLAIMED, "coder claimed")
    entry = lifecycle.apply(hands, entry, Event.CODE_FAILED, "coder failed")
    assert (entry.lane, entry.header.status, entry.header.attempts) == (Lane.FAILED, "closed", 3)
    assert "attempt 3 of 3: giving up" in entry.path.read_text()
    assert sent_events(hands) == ["task_failed"]


def test_an_interrupted_run_uses_no_attempt(hands: lifecycle.Hands) -> None:
    entry = lifecycle.apply(hands, new(hands, attempts=1), Event.CLAIMED, "coder claimed")
    entry = lifecycle.apply(hands, entry, Event.INTERRUPTED, "the daemon stopped")
    assert (entry.lane, entry.header.status, entry.header.attempts) == (Lane.BACKLOG, "queued", 1)


def test_a_file_a_person_moved_is_never_re_created(hands: lifecycle.Hands) -> None:
    """Rule: the CAS on the file's place — a late writer raises TaskMoved, writes nothing."""
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")
    elsewhere = hands.board.lane_dir(Lane.FAILED) / entry.name
    os.rename(entry.path, elsewhere)
    before = elsewhere.read_text()
    with pytest.raises(lifecycle.TaskMoved):
        lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    assert not entry.path.exists() and not (hands.board.lane_dir(Lane.REVIEW) / entry.name).exists()
    assert elsewhere.read_text() == before
    assert hands.journal is not None and not hands.journal.pending_transitions()


def test_a_file_moved_between_rewrite_and_rename_stays_where_the_person_put_it(
    hands: lifecycle.Hands,
) -> None:
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")
    elsewhere = hands.board.lane_dir(Lane.INBOX) / entry.name

    def human_moves_it(point: str, event: Event) -> None:
        if point == "move":
            os.rename(entry.path, elsewhere)

    lifecycle.fault_hook = human_moves_it
    with pytest.raises(lifecycle.TaskMoved):
        lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    assert [p.parent.name for p in hands.board.tasks_dir.glob("*/*.md")] == ["inbox"]


def test_an_editors_save_during_apply_is_kept_and_apply_tries_again(
    hands: lifecycle.Hands,
) -> None:
    """Rule: a person's save (a new file renamed over ours) is never overwritten."""
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")
    saves = []

    def editor_saves(point: str, event: Event) -> None:
        if point == "write" and not saves:
            text = entry.path.read_text().replace("\nx\n", "\nx — and a human's edit\n")
            tmp = entry.path.with_name(".edit.tmp")
            tmp.write_text(text)
            os.rename(tmp, entry.path)
            saves.append(1)

    lifecycle.fault_hook = editor_saves
    moved = lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    text = moved.path.read_text()
    assert "a human's edit" in text and "coder ok" in text and moved.lane is Lane.REVIEW
    assert saves == [1]


def test_a_move_onto_an_existing_file_is_a_conflict_and_moves_nothing(
    hands: lifecycle.Hands,
) -> None:
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")
    squatter = hands.board.lane_dir(Lane.REVIEW) / entry.name
    squatter.write_text("someone else's file")
    with pytest.raises(ConflictError, match="keep one"):
        lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    assert squatter.read_text() == "someone else's file" and entry.path.exists()


def test_refusals_name_the_lane_the_status_and_what_was_needed(hands: lifecycle.Hands) -> None:
    entry = new(hands)
    with pytest.raises(lifecycle.TransitionRefused, match="status queued; approve needs"):
        lifecycle.apply(hands, entry, Event.APPROVED, "approve")
    with pytest.raises(lifecycle.TransitionRefused, match="does not apply to a task in backlog"):
        lifecycle.apply(hands, entry, Event.QA_PASSED, "qa")


def test_a_move_without_a_journal_writes_nothing(project: Path) -> None:
    """Rule: a move needs its intent journaled; without one it is an infrastructure fault
    (no attempt used), and the file is untouched."""
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("t", "x", backlog=True))
    before = entry.path.read_text()
    with pytest.raises(InfrastructureError, match="cannot journal"):
        lifecycle.apply(lifecycle.Hands(board), entry, Event.CLAIMED, "coder claimed")
    assert entry.path.read_text() == before


def test_every_transition_is_in_the_history(hands: lifecycle.Hands) -> None:
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")
    entry = lifecycle.apply(hands, entry, Event.NOTED, "progress")
    lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    assert hands.journal is not None
    history = hands.journal.history(entry.id)
    assert [(h["event"], h["to_lane"], h["state"]) for h in history] == [
        ("claimed", "active", "applied"),
        ("noted", "active", "applied"),
        ("coded", "review", "applied"),
    ]


# ---------------------------------------------------------------------------- crashes


MOVES = [
    (Event.CLAIMED, "write"),
    (Event.CLAIMED, "move"),
    (Event.CODED, "write"),
    (Event.CODED, "move"),
    (Event.CODE_FAILED, "write"),
    (Event.CODE_FAILED, "move"),
]


@pytest.mark.parametrize(("event", "point"), MOVES, ids=[f"{e.value}-{p}" for e, p in MOVES])
def test_a_crash_inside_a_transition_is_completed_at_start(
    hands: lifecycle.Hands, event: Event, point: str
) -> None:
    """Rule: a transition cut at any of its writes is finished by finish_pending, once;
    a claim cut before its write is dropped (its job is gone)."""
    entry = new(hands)
    if event is not Event.CLAIMED:
        entry = lifecycle.apply(hands, entry, Event.CLAIMED, "coder claimed")

    def crash(at: str, ev: Event) -> None:
        if (at, ev) == (point, event):
            raise Crash

    lifecycle.fault_hook = crash
    with pytest.raises(Crash):
        lifecycle.apply(hands, entry, event, f"the {event.value} line")
    lifecycle.fault_hook = None
    if (event, point) == (Event.CLAIMED, "write"):  # no job holds it: it stays queued
        assert lifecycle.finish_pending(hands) == []
        (found,) = hands.board.scan().entries
        assert found.lane is entry.lane and found.header.status == "queued"
        return
    assert lifecycle.finish_pending(hands) == [entry.id]
    (found,) = hands.board.scan().entries
    row = lifecycle.TRANSITIONS[(entry.lane, event)]
    assert found.lane is row.to and found.header.status == row.status
    assert found.path.read_text().count(f"the {event.value} line") == int(row.tracked)
    assert lifecycle.finish_pending(hands) == []  # nothing done twice


def test_a_crashed_transition_of_a_file_a_person_then_edited_is_abandoned(
    hands: lifecycle.Hands,
) -> None:
    entry = lifecycle.apply(hands, new(hands), Event.CLAIMED, "coder claimed")

    def crash(at: str, ev: Event) -> None:
        raise Crash

    lifecycle.fault_hook = crash
    with pytest.raises(Crash):
        lifecycle.apply(hands, entry, Event.CODED, "coder ok")
    lifecycle.fault_hook = None
    entry.path.write_text(entry.path.read_text() + "\nA person's note.\n")
    assert lifecycle.finish_pending(hands) == []
    assert entry.path.exists() and "A person's note." in entry.path.read_text()


# ---------------------------------------------------------------------------- reconcile


@pytest.mark.parametrize(
    ("lane", "status", "expected"),
    [
        (Lane.FAILED, "queued", "closed"),
        (Lane.DONE, "queued", "closed"),
        (Lane.BACKLOG, "running", "queued"),
        (Lane.REVIEW, "awaiting-approval", "queued"),
    ],
)
def test_a_status_that_means_nothing_in_its_lane_is_put_right(
    hands: lifecycle.Hands, lane: Lane, status: str, expected: str
) -> None:
    entry = new(hands, status=status)
    target = hands.board.lane_dir(lane) / entry.name
    if target != entry.path:
        os.rename(entry.path, target)
    entry = Entry(entry.header, lane, target)
    event = lifecycle.reconcile_event(entry, live=False)
    assert event is not None
    fixed = lifecycle.reconcile(hands, entry, event, "a person moved it")
    assert fixed.lane is lane and fixed.header.status == expected
    assert fixed.header.attempts == entry.header.attempts
    assert re.search(r"a person moved it", fixed.path.read_text())
