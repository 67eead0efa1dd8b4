"""The journal: SQLite in WAL mode, numbered migrations, events, runs, the outbox."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from shopfloor import journal
from shopfloor.journal import MIGRATIONS, Journal

from .conftest import CliRun


def test_journal_is_wal_with_a_busy_timeout(tmp_path: Path) -> None:
    """Rule: WAL mode (readers never block the writer) and a busy timeout."""
    with Journal(tmp_path / ".shopfloor" / "journal.db") as j:
        assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    # WAL is a property of the file: a fresh plain connection sees it too.
    raw = sqlite3.connect(tmp_path / ".shopfloor" / "journal.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_migrations_set_user_version_and_run_once(tmp_path: Path) -> None:
    """Rule: schema changes are numbered migrations recorded in PRAGMA user_version."""
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        assert j.schema_version == len(MIGRATIONS)
        j.save_task_state("T-0001", base="abc")
    with Journal(path) as j:  # reopening applies nothing twice and keeps the data
        assert j.schema_version == len(MIGRATIONS)
        assert j.task_state("T-0001") == {"base": "abc"}
    raw = sqlite3.connect(path)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert {"transitions", "task_state", "runs", "outbox"} <= tables
    assert "events" not in tables  # never written by anything: dropped by migration 3


def test_transitions_are_pending_until_ended_and_form_the_history(tmp_path: Path) -> None:
    """Rule: a transition is journaled before it is written, and closed after."""
    row = {
        "task_id": "T-0001",
        "event": "claimed",
        "from_lane": "backlog",
        "to_lane": "active",
        "name": "T-0001-x.md",
        "status": "running",
        "attempts": 0,
        "line": "2026-01-01T00:00:00Z coder claimed",
        "notify": {"event": "task_done", "payload": {"task_id": "T-0001"}},
    }
    with Journal(tmp_path / "j.db") as j:
        first = j.begin_transition(row)
        second = j.begin_transition({**row, "task_id": "T-0002", "notify": None})
        assert [t["id"] for t in j.pending_transitions()] == [first, second]
        j.end_transition(first, "applied")
        assert [t["id"] for t in j.pending_transitions()] == [second]
        (history,) = j.history("T-0001")
        assert history["state"] == "applied" and history["notify"]["event"] == "task_done"


def test_task_state_merges_and_none_removes(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        j.save_task_state("T-0001", base="abc", checks=[{"exit_code": 0}])
        j.save_task_state("T-0001", checks=None, head="def")
        assert j.task_state("T-0001") == {"base": "abc", "head": "def"}
        assert j.task_state("T-0002") == {}


def test_runs_insert_update_and_filter(tmp_path: Path) -> None:
    """Rule: runs are rows that can be updated and queried by task and state."""
    with Journal(tmp_path / "j.db") as j:
        j.insert_run("R-1", "T-0001", "coder", agent="claude", attempt=1)
        j.insert_run("R-2", "T-0002", "qa")
        j.update_run("R-1", state="running", pid=123)
        assert [r["id"] for r in j.runs(state="running")] == ["R-1"]
        assert j.runs(task_id="T-0002")[0]["state"] == "starting"
        assert j.runs(task_id="T-0001")[0]["pid"] == 123


def test_outbox_pending_order_is_priority_then_age(tmp_path: Path) -> None:
    """Rule: pending() gives due unsent items, lowest priority number first, then oldest."""
    with Journal(tmp_path / "j.db") as j:
        low = j.enqueue("telegram", "task.done", {"id": "T-1"}, priority=5)
        urgent = j.enqueue("telegram", "hotfix.ready", {"id": "HOTFIX-x"}, priority=0)
        low2 = j.enqueue("telegram", "task.failed", {"id": "T-2"}, priority=5)
        j.enqueue("webhook", "task.done", {"id": "T-1"})
        pending = j.pending("telegram", now=1e12)
        assert [i.id for i in pending] == [urgent, low, low2]
        assert pending[0].payload == {"id": "HOTFIX-x"} and pending[0].event == "hotfix.ready"
        assert j.unsent_count() == 4 and j.unsent_count("telegram") == 3


def test_outbox_mark_sent_and_defer(tmp_path: Path) -> None:
    """Rule: a sent item leaves the queue; a deferred one waits until its time, counting tries."""
    with Journal(tmp_path / "j.db") as j:
        a = j.enqueue("telegram", "x", {})
        b = j.enqueue("telegram", "y", {})
        j.mark_sent(a)
        j.defer(b, next_attempt_at=2000.0, error="network down " * 100)
        assert j.pending("telegram", now=1999.0) == []
        (item,) = j.pending("telegram", now=2000.0)
        assert item.id == b and item.attempts == 1
        row = j._db.execute("SELECT last_error FROM outbox WHERE id = ?", (b,)).fetchone()
        assert len(row[0]) == 500  # errors are bounded
        assert j.unsent_count() == 1


def test_writes_from_threads_are_serialised(tmp_path: Path) -> None:
    """Rule: one writer at a time; concurrent writers in one process all land."""
    with Journal(tmp_path / "j.db") as j:

        def write(n: int) -> None:
            for i in range(25):
                j.insert_run(f"R-{n}-{i}", f"T-{n}", "coder")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(j.runs()) == 100


def test_open_if_present_tolerates_missing_and_corrupt_journals(tmp_path: Path) -> None:
    """Rule: read-only commands work without the journal (the board is the truth)."""
    assert journal.open_if_present(tmp_path) is None
    state = tmp_path / ".shopfloor"
    state.mkdir()
    (state / "journal.db").write_bytes(b"this is not a database" * 100)
    assert journal.open_if_present(tmp_path) is None


def test_status_works_with_the_journal_missing_or_corrupt(project: Path, cli: CliRun) -> None:
    """Rule (issue 2, journal): `shopfloor status` works when the journal is missing or broken."""
    assert cli(project, "new", "First").returncode == 0
    db = project / ".shopfloor" / "journal.db"
    assert not db.exists()
    missing = cli(project, "status", "--json")
    assert missing.returncode == 0, missing.stderr
    assert [t["id"] for t in json.loads(missing.stdout)["tasks"]] == ["T-0001"]
    db.write_bytes(b"\x00garbage" * 1000)
    corrupt = cli(project, "status", "--json")
    assert corrupt.returncode == 0, corrupt.stderr
    doc = json.loads(corrupt.stdout)
    assert doc["runs"] == [] and "journal.db is unreadable" in doc["journal_error"]
    assert json.loads(missing.stdout)["journal_error"] is None
    human = cli(project, "status")
    assert human.returncode == 0 and "unreadable" in human.stdout, human.stderr
    shown = cli(project, "show", "T-0001", "--json")
    assert shown.returncode == 0 and "unreadable" in json.loads(shown.stdout)["journal_error"]
    assert db.read_bytes() == b"\x00garbage" * 1000  # status never "repairs" it away


def test_status_says_a_truncated_journal_is_unreadable(project: Path, cli: CliRun) -> None:
    """Rule (trust): damage deep in the file (found by a query, not at open) is reported."""
    with Journal.for_project(project) as j:
        fill(j)
        j.insert_run("R-1", "T-0001", "coder", state="running")
    db = project / ".shopfloor" / "journal.db"
    cut = db.read_bytes()[: db.stat().st_size // 2]
    db.write_bytes(cut)
    proc = cli(project, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "unreadable" in json.loads(proc.stdout)["journal_error"]
    assert db.read_bytes() == cut


def test_status_lists_running_runs_from_the_journal(project: Path, cli: CliRun) -> None:
    """Rule: when the journal is there, status shows the runs it records as running."""
    with Journal.for_project(project) as j:
        j.insert_run("R-7", "T-0001", "coder", agent="claude", state="running")
        j.insert_run("R-8", "T-0002", "qa", state="finished")
    report = json.loads(cli(project, "status", "--json").stdout)
    assert [(r["run_id"], r["role"], r["agent"]) for r in report["runs"]] == [
        ("R-7", "coder", "claude")
    ]
    assert report["runs"][0]["age_seconds"] >= 0


def test_many_connections_opening_a_new_journal_at_once_all_succeed(tmp_path: Path) -> None:
    """Rule: opening the journal concurrently never fails with 'database is locked'."""
    import threading

    from shopfloor.journal import Journal

    errors: list[BaseException] = []
    for round_number in range(15):  # the race is narrow: many fresh journals make it show
        path = tmp_path / f"j{round_number}.db"
        gate = threading.Barrier(8)

        def open_one(path: Path = path, gate: threading.Barrier = gate) -> None:
            gate.wait()
            try:
                Journal(path).close()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []


# ---------------------------------------------------------------------------- faults


def fill(j: Journal, events: int = 400) -> None:
    """Enough rows for a journal of several pages (so a truncation cuts real data)."""
    for i in range(events):
        j.insert_run(f"R-fill-{i}", f"T-{i:04d}", "pm", summary="x" * 200)


def test_open_journal_moves_a_garbage_file_and_its_sidecars_aside(tmp_path: Path) -> None:
    """Rule (trust): a damaged journal never stops work; it is kept aside for a human."""
    state = tmp_path / ".shopfloor"
    state.mkdir()
    db = state / "journal.db"
    db.write_bytes(b"this is not a database" * 100)
    (state / "journal.db-wal").write_bytes(b"old wal")
    (state / "journal.db-shm").write_bytes(b"old shm")
    lines: list[tuple[str, dict[str, object]]] = []
    with journal.open_journal(tmp_path, log=lambda event, **f: lines.append((event, f))) as j:
        j.insert_run("R-after.repair", "T-1", "pm")
        assert [r["id"] for r in j.runs()] == ["R-after.repair"]
    ((event, fields),) = lines
    assert event == "journal.corrupt" and "not a database" in str(fields["reason"])
    moved = Path(str(fields["moved_to"]))
    assert moved.parent == state and moved.name.startswith("journal.db.corrupt-")
    assert moved.read_bytes() == b"this is not a database" * 100
    assert Path(f"{moved}-wal").read_bytes() == b"old wal"
    assert Path(f"{moved}-shm").read_bytes() == b"old shm"


def test_open_journal_moves_a_truncated_journal_aside(tmp_path: Path) -> None:
    """Rule (trust): damage SQLite finds only by reading (a cut file) is caught at open."""
    with journal.open_journal(tmp_path) as j:
        fill(j)
    db = tmp_path / ".shopfloor" / "journal.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    lines: list[str] = []
    with journal.open_journal(tmp_path, log=lambda event, **f: lines.append(event)) as j:
        assert j.runs() == []  # a fresh journal: the board is the truth
    assert lines == ["journal.corrupt"]
    (kept,) = (tmp_path / ".shopfloor").glob("journal.db.corrupt-*")
    assert kept.read_bytes() == data[: len(data) // 2]


def test_open_journal_creates_a_missing_state_folder_private(tmp_path: Path) -> None:
    with journal.open_journal(tmp_path) as j:
        j.insert_run("R-first", "T-1", "pm")
    assert (tmp_path / ".shopfloor").stat().st_mode & 0o777 == 0o700


def test_a_journal_deleted_under_an_open_connection_is_recreated(tmp_path: Path) -> None:
    """Rule (trust): SQLite would write on to the unlinked file; a stat notices, and the next
    write goes to a new journal at the right place."""
    import shutil

    j = journal.open_journal(tmp_path)
    with j:
        j.insert_run("R-before", "T-1", "pm")
        assert j.is_current()
        shutil.rmtree(tmp_path / ".shopfloor")
        assert not j.is_current()
        j.insert_run("R-1", "T-0001", "coder")
        assert j.is_current()
    with Journal.for_project(tmp_path) as fresh:
        assert [r["id"] for r in fresh.runs()] == ["R-1"]


def test_a_full_disk_is_an_infrastructure_error_and_the_next_write_recovers(
    tmp_path: Path,
) -> None:
    """Rule (trust): a write the machine refuses says what to do, not a raw sqlite3 error;
    the connection is reopened before the next write."""
    import pytest

    from shopfloor.errors import InfrastructureError

    with journal.open_journal(tmp_path) as j:
        j.insert_run("R-1-small", "T-1", "pm")
        pages = j._db.execute("PRAGMA page_count").fetchone()[0]
        j._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
        with pytest.raises(InfrastructureError, match=r"database or disk is full.*free disk"):
            j.insert_run("R-big", "T-1", "pm", summary="x" * 100_000)
        j.insert_run("R-2-after", "T-1", "pm")  # a fresh connection, without the limit
        assert [r["id"] for r in j.runs()] == ["R-1-small", "R-2-after"]
