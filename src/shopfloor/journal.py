"""The journal: SQLite (WAL) for lifecycle transitions, runs, per-task state, agent pauses and the
notification outbox.

The board is the truth; the journal is history and bookkeeping that can be rebuilt. Schema
changes are numbered migrations applied in order (PRAGMA user_version).

So a journal fault never stops work: `open_journal` (the daemon and every command that
writes) moves a corrupt file aside and starts a fresh one; a journal deleted or replaced
under an open connection is noticed by a stat (`is_current`) and reopened before the next
write; a write the machine refuses (disk full, read-only) raises InfrastructureError.
Read-only commands use `open_for_reading`, which never repairs anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from shopfloor import _fs
from shopfloor.errors import InfrastructureError
from shopfloor.paths import PRIVATE_FILE_MODE, StatePaths, make_private_dir
from shopfloor.task import utc_now

#: Logs one structured event: `log("journal.corrupt", moved_to=..., reason=...)`.
Log = Callable[..., None]

#: SQLite's words for a fault of the machine (not of our SQL): translated to
#: InfrastructureError, and the connection is reopened before the next write.
_MACHINE_FAULTS = (
    "database or disk is full",
    "readonly database",
    "disk i/o error",
    "unable to open database file",
)
#: SQLite result codes that mean the file itself is damaged (Python 3.11+ names them).
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT,
        run_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_task ON events(task_id, id);
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        role TEXT NOT NULL,
        agent TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        pid INTEGER,
        proc_started REAL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT,
        exit_code INTEGER,
        summary TEXT,
        tokens_in INTEGER,
        tokens_out INTEGER,
        cost_usd REAL,
        workdir TEXT,
        run_dir TEXT
    );
    CREATE INDEX runs_task ON runs(task_id, started_at);
    CREATE INDEX runs_state ON runs(state);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        channel TEXT NOT NULL,
        event TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 5,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        sent_at TEXT,
        last_error TEXT
    );
    CREATE INDEX outbox_pending ON outbox(channel, sent_at, priority, id);
    """,
    # 2: rate-limited agents wait here until their reset time; spend is summed from runs
    """
    CREATE TABLE agent_pauses (
        agent TEXT PRIMARY KEY,
        until REAL NOT NULL,
        reason TEXT NOT NULL,
        strikes INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX runs_started ON runs(started_at);
    """,
    # 3: every lifecycle transition (the audit trail, and the intent a crash may interrupt);
    # per-task bookkeeping moves here from .shopfloor/state/*.json; the unused events table goes
    """
    DROP TABLE IF EXISTS events;
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        task_id TEXT NOT NULL,
        event TEXT NOT NULL,
        from_lane TEXT NOT NULL,
        to_lane TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        line TEXT NOT NULL,
        state TEXT NOT NULL,
        notify TEXT,
        old_sha TEXT,
        text TEXT
    );
    CREATE INDEX transitions_task ON transitions(task_id, id);
    CREATE INDEX transitions_state ON transitions(state);
    CREATE TABLE task_state (
        task_id TEXT PRIMARY KEY,
        data TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    );
    """,
    # 4: `[scale] engine = "temporal"`: which `shopfloor worker` runs (ran) a remote run, and
    # the Temporal workflow it belongs to (NULL for runs on this machine)
    """
    ALTER TABLE runs ADD COLUMN worker TEXT;
    ALTER TABLE runs ADD COLUMN workflow_id TEXT;
    """,
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    channel: str
    event: str
    priority: int
    payload: dict[str, Any]
    attempts: int
    created_at: str


class JournalCorruptError(sqlite3.DatabaseError):
    """`PRAGMA quick_check` found damage that SQLite did not report on its own."""


def is_corruption(exc: BaseException) -> bool:
    """The file is damaged ("file is not a database", "database disk image is malformed")."""
    if isinstance(exc, JournalCorruptError):
        return True
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False  # OperationalError: locked, I/O, disk full - the file may be fine
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc).lower()
    return name in _CORRUPT_CODES or "malformed" in text or "not a database" in text


def _machine_fault(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        marker in str(exc).lower() for marker in _MACHINE_FAULTS
    )


def _default_log(event: str, **fields: Any) -> None:
    details = " ".join(f"{k}={v}" for k, v in fields.items())
    logging.getLogger("shopfloor.journal").warning("%s %s", event, details)


class Journal:
    """One connection, one writer at a time (a lock), BEGIN IMMEDIATE for every write.

    `repair=True` (see `open_journal`): a damaged file is moved aside and a fresh journal
    started, at open and whenever the connection is reopened after a fault.
    """

    def __init__(self, path: Path, *, repair: bool = False, log: Log | None = None) -> None:
        self.path = path
        self.repair = repair
        self.log: Log = log or _default_log
        self._lock = threading.RLock()
        self._suspect = False  # a write failed: reopen before the next one
        self._db, self._identity = self._open()

    def _open(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        """A ready connection and the (st_dev, st_ino) of the file it holds open."""
        if not self.repair:
            return self._connect()
        seen = identity(self.path)
        try:
            _check_header(self.path)
            return self._connect(check=True)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            set_aside(self.path, str(exc), self.log, seen)
            return self._connect()

    def _connect(self, check: bool = False) -> tuple[sqlite3.Connection, tuple[int, int]]:
        make_private_dir(self.path.parent)
        # Created 0600 before SQLite opens it; SQLite gives -wal and -shm the db file's mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 5000")
            _enable_wal(db, deadline=time.monotonic() + 10.0)
            # WAL + NORMAL survives any process crash (kill -9); only a power loss may drop the
            # last transactions, and the board (fsynced) stays the truth it is rebuilt from.
            db.execute("PRAGMA synchronous = NORMAL")
            if check:
                # Reads every page once (~70 ms for 60 MB): only where a repair can follow.
                verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if verdict != "ok":
                    raise JournalCorruptError(f"quick_check: {verdict}")
            _migrate(db)
            stat = os.stat(self.path)
        except BaseException:
            db.close()
            raise
        return db, (stat.st_dev, stat.st_ino)

    @classmethod
    def for_project(cls, root: Path) -> Journal:
        return cls(StatePaths(root).journal)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ staying attached

    def is_current(self) -> bool:
        """False when the file at `path` is not the one this connection writes to: deleted
        (SQLite would go on writing to the unlinked inode) or replaced. One stat."""
        return identity(self.path) == self._identity

    def reopen(self) -> None:
        """Attach to the file at `path` again, creating it (and `.shopfloor/`) if missing.
        The old connection is kept if the new one cannot be opened."""
        with self._lock:
            db, identity = self._open()
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db, self._identity, self._suspect = db, identity, False
        self.log("journal.reopened", path=self.path)

    def ensure_current(self) -> None:
        """Reopen if the file was deleted or replaced, or after a failed write (cheap: a stat).
        InfrastructureError if it cannot be reopened now (the next call tries again)."""
        with self._lock:
            if not self._suspect and self.is_current():
                return
            try:
                self.reopen()
            except (sqlite3.Error, OSError) as exc:
                self._raise_fault(exc)

    def _raise_fault(self, exc: BaseException) -> NoReturn:
        """Raise what a failed SQLite call becomes: machine faults and damage become
        InfrastructureError (and a reopen before the next write); anything else (a mistake in
        our SQL) is raised unchanged."""
        fault = self._fault(exc)
        if fault is exc:
            raise exc
        raise fault from exc

    def _fault(self, exc: BaseException) -> BaseException:
        if isinstance(exc, OSError) or _machine_fault(exc):
            self._suspect = True
            return InfrastructureError(
                f"cannot write the journal {self.path}: {exc}; free disk space or fix the "
                "folder's permissions (the board is unaffected; Shopfloor retries)"
            )
        if is_corruption(exc):
            self._suspect = True
            return InfrastructureError(
                f"the journal {self.path} is damaged: {exc}; it is moved aside and started "
                "afresh at the next write by the daemon (or restart the daemon)"
            )
        return exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.ensure_current()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._raise_fault(exc)
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    self._raise_fault(exc)
                raise

    def _rows(self, query: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """A read, under the lock so that a reopen never closes a connection mid-query; of
        the file at `path` (another process, e.g. the outbox sender, may have replaced it)."""
        with self._lock:
            self.ensure_current()
            try:
                return list(self._db.execute(query, args).fetchall())
            except sqlite3.Error as exc:
                self._raise_fault(exc)

    @property
    def schema_version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])

    # ------------------------------------------------------------------ transitions

    def begin_transition(self, row: dict[str, Any]) -> int:
        """Record a transition about to be written (state 'pending'); returns its id."""
        row = {**row, "ts": utc_now(), "state": "pending"}
        if row.get("notify") is not None:
            row["notify"] = json.dumps(row["notify"], default=str)
        marks = ",".join("?" for _ in row)
        with self.transaction() as db:
            cur = db.execute(
                f"INSERT INTO transitions({','.join(row)}) VALUES ({marks})", tuple(row.values())
            )
            return int(cur.lastrowid or 0)

    def end_transition(self, transition_id: int, state: str) -> None:
        """'applied' (on the board), or 'abandoned' (the board was left as it was); the
        intended text is dropped (it is only kept while a crash could interrupt the write)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE transitions SET state = ?, text = NULL WHERE id = ?",
                (state, transition_id),
            )

    def pending_transitions(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM transitions WHERE state = 'pending' ORDER BY id")
        return [_transition(r) for r in rows]

    def history(self, task_id: str) -> list[dict[str, Any]]:
        """A task's transitions, oldest first (`shopfloor show ID --history`)."""
        rows = self._rows("SELECT * FROM transitions WHERE task_id = ? ORDER BY id", (task_id,))
        return [_transition(r) for r in rows]

    # ------------------------------------------------------------------ task state

    def task_state(self, task_id: str) -> dict[str, Any]:
        """What the pipeline remembers about a task between stages (base commit, checks)."""
        rows = self._rows("SELECT data FROM task_state WHERE task_id = ?", (task_id,))
        data = json.loads(rows[0][0]) if rows else {}
        return data if isinstance(data, dict) else {}

    def save_task_state(self, task_id: str, **fields: Any) -> None:
        """Merge `fields` into the task's record (None removes a key)."""
        with self.transaction() as db:
            row = db.execute("SELECT data FROM task_state WHERE task_id = ?", (task_id,)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update(fields)
            data = {k: v for k, v in data.items() if v is not None}
            db.execute(
                "INSERT INTO task_state(task_id, data, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(task_id) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at",
                (task_id, json.dumps(data, default=str), utc_now()),
            )

    # ------------------------------------------------------------------ runs

    def insert_run(self, run_id: str, task_id: str, role: str, **fields: Any) -> None:
        row = {"id": run_id, "task_id": task_id, "role": role, "state": "starting"}
        row.update(started_at=utc_now(), **fields)
        marks = ",".join("?" for _ in row)
        with self.transaction() as db:
            db.execute(f"INSERT INTO runs({','.join(row)}) VALUES ({marks})", tuple(row.values()))

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def runs(self, task_id: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        clauses, args = [], []
        if task_id is not None:
            clauses.append("task_id = ?")
            args.append(task_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM runs{where} ORDER BY started_at, id", args)
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ spend and pauses

    def cost_by_task(self) -> dict[str, float]:
        """Dollars reported by the agents, summed per task."""
        rows = self._rows(
            "SELECT task_id, SUM(cost_usd) FROM runs WHERE cost_usd IS NOT NULL GROUP BY task_id"
        )
        return {str(r[0]): float(r[1]) for r in rows}

    def cost_of_task(self, task_id: str) -> float:
        """Dollars reported by the agents for one task (runs_task index)."""
        (row,) = self._rows("SELECT SUM(cost_usd) FROM runs WHERE task_id = ?", (task_id,))
        return float(row[0] or 0.0)

    def cost_since(self, started_at: str) -> float:
        """Dollars of every run started at or after `started_at` (an ISO UTC timestamp)."""
        (row,) = self._rows("SELECT SUM(cost_usd) FROM runs WHERE started_at >= ?", (started_at,))
        return float(row[0] or 0.0)

    def pause_agent(self, agent: str, until: float, reason: str) -> None:
        """Record (or extend) a pause; `strikes` counts the pauses in a row (the back-off)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO agent_pauses(agent, until, reason) VALUES (?,?,?)"
                " ON CONFLICT(agent) DO UPDATE SET until = excluded.until,"
                " reason = excluded.reason, strikes = strikes + 1",
                (agent, until, reason[:500]),
            )

    def strikes(self, agent: str) -> int:
        rows = self._rows("SELECT strikes FROM agent_pauses WHERE agent = ?", (agent,))
        return int(rows[0][0]) if rows else 0

    def clear_pause(self, agent: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM agent_pauses WHERE agent = ?", (agent,))

    def clear_pauses(self, reason_prefixes: tuple[str, ...]) -> None:
        """Lift the pauses whose reason starts with one of the prefixes."""
        with self.transaction() as db:
            rows = db.execute("SELECT agent, reason FROM agent_pauses").fetchall()
            agents = [str(r[0]) for r in rows if str(r[1]).startswith(reason_prefixes)]
            db.executemany("DELETE FROM agent_pauses WHERE agent = ?", [(a,) for a in agents])

    def pauses(self, now: float | None = None) -> dict[str, tuple[float, str]]:
        """Agents paused right now: name -> (until epoch seconds, reason)."""
        now = time.time() if now is None else now
        rows = self._rows("SELECT agent, until, reason FROM agent_pauses WHERE until > ?", (now,))
        return {str(r[0]): (float(r[1]), str(r[2])) for r in rows}

    # ------------------------------------------------------------------ outbox

    def enqueue(self, channel: str, event: str, payload: dict[str, Any], priority: int = 5) -> int:
        """Queue a notification; a sender delivers it later (lower priority number = sooner)."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO outbox(created_at, channel, event, priority, payload)"
                " VALUES (?,?,?,?,?)",
                (utc_now(), channel, event, priority, json.dumps(payload, default=str)),
            )
            return int(cur.lastrowid or 0)

    def pending(self, channel: str, now: float | None = None, limit: int = 50) -> list[OutboxItem]:
        """Unsent items of a channel that are due, highest priority first, then oldest."""
        now = time.time() if now is None else now
        rows = self._rows(
            "SELECT * FROM outbox WHERE channel = ? AND sent_at IS NULL AND next_attempt_at <= ?"
            " ORDER BY priority, id LIMIT ?",
            (channel, now, limit),
        )
        return [
            OutboxItem(
                r["id"],
                r["channel"],
                r["event"],
                r["priority"],
                json.loads(r["payload"]),
                r["attempts"],
                r["created_at"],
            )
            for r in rows
        ]

    def mark_sent(self, item_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", (utc_now(), item_id))

    def defer(self, item_id: int, next_attempt_at: float, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE id = ?",
                (next_attempt_at, error[:500], item_id),
            )

    def unsent_by_channel(self) -> dict[str, int]:
        rows = self._rows(
            "SELECT channel, COUNT(*) FROM outbox WHERE sent_at IS NULL GROUP BY channel"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def unsent_count(self, channel: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"
        args: tuple[str, ...] = ()
        if channel is not None:
            query += " AND channel = ?"
            args = (channel,)
        return int(self._rows(query, args)[0][0])


#: The first bytes of every SQLite database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before SQLite touches it: on open SQLite may delete a
    -wal it cannot use, and that file belongs with the damaged journal for a human."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    if head and head != _SQLITE_MAGIC[: len(head)]:
        raise JournalCorruptError("file is not a database (no SQLite header)")


def _enable_wal(db: sqlite3.Connection, deadline: float) -> None:
    """Switch to WAL. The switch ignores busy_timeout when two processes open a new journal
    at the same moment, so it is retried until the deadline."""
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def corrupt_name(path: Path, when: float | None = None) -> Path:
    """Where a damaged journal goes: `journal.db.corrupt-<UTC stamp>` beside it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():  # two repairs in one second keep both files
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return target


def identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at `path`, None if there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def set_aside(path: Path, reason: str, log: Log, seen: tuple[int, int] | None) -> Path | None:
    """Move a damaged journal (and its -wal, -shm) aside for a human; None if another
    process did it first. Under a lock, and only if `path` is still the file found damaged
    (`seen`), so two processes finding the same damage never move a fresh journal away."""
    with _fs.locked(path.with_name(f"{path.name}.repair.lock")):
        if seen is not None and identity(path) != seen:
            return None
        target = corrupt_name(path)
        # The sidecars first: a fresh journal.db must never meet the old -wal.
        for suffix in ("-wal", "-shm", ""):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{path}{suffix}", f"{target}{suffix}")
    log("journal.corrupt", moved_to=target, reason=reason)
    return target


def open_journal(root: Path, log: Log | None = None) -> Journal:
    """The journal for the daemon and for every command that writes: never refuses.

    A missing journal (or `.shopfloor/`) is created; a damaged one is moved aside to
    `journal.db.corrupt-<stamp>` with one `journal.corrupt` log line and a fresh one
    started (the board is the truth; the old history stays in that file for a human).
    Machine faults (disk full, read-only folder) raise InfrastructureError.
    """
    try:
        return Journal(StatePaths(root).journal, repair=True, log=log)
    except (sqlite3.Error, OSError) as exc:
        raise InfrastructureError(
            f"cannot open the journal {StatePaths(root).journal}: {exc}; free disk space or "
            "fix the permissions of .shopfloor/ (the board is unaffected)"
        ) from exc


def open_for_reading(root: Path) -> tuple[Journal | None, str | None]:
    """The journal for read-only commands, and what is wrong with it if it cannot be read.

    Missing is fine and not a problem (the board is the truth); a damaged file is left as it
    is (the daemon repairs it) and described so the command can say so.
    """
    path = StatePaths(root).journal
    if not path.exists():
        return None, None
    try:
        return Journal(path), None
    except (sqlite3.Error, OSError, InfrastructureError) as exc:
        return None, unreadable(path, exc)


def unreadable(path: Path, exc: BaseException) -> str:
    """How read-only commands describe a journal they cannot read."""
    return f"{path.name} is unreadable ({exc}); history and spend are not shown"


def _transition(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["notify"] = json.loads(data["notify"]) if data.get("notify") else None
    return data


def open_if_present(root: Path) -> Journal | None:
    """The journal for read-only commands: absent or unreadable is fine (the board is the
    truth)."""
    return open_for_reading(root)[0]
