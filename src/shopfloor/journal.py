"""The journal: SQLite (WAL) for events, runs and the notification outbox.

The board is the truth; the journal is history and bookkeeping that can be rebuilt. Schema
changes are numbered migrations applied in order (PRAGMA user_version).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor.paths import PRIVATE_FILE_MODE, StatePaths, make_private_dir
from shopfloor.task import utc_now

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


class Journal:
    """One connection, one writer at a time (a lock), BEGIN IMMEDIATE for every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        make_private_dir(path.parent)
        # Created 0600 before SQLite opens it; SQLite gives -wal and -shm the db file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._enable_wal(deadline=time.monotonic() + 10.0)
        # WAL + NORMAL survives any process crash (kill -9); only a power loss may drop the
        # last transactions, and the board (fsynced) stays the truth the journal is rebuilt from.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    def _enable_wal(self, deadline: float) -> None:
        """Switch to WAL. The switch ignores busy_timeout when two processes open a new
        journal at the same moment, so it is retried until the deadline."""
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

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
        rows = self._db.execute(
            "SELECT * FROM transitions WHERE state = 'pending' ORDER BY id"
        ).fetchall()
        return [_transition(r) for r in rows]

    def history(self, task_id: str) -> list[dict[str, Any]]:
        """A task's transitions, oldest first (`shopfloor show ID --history`)."""
        rows = self._db.execute(
            "SELECT * FROM transitions WHERE task_id = ? ORDER BY id", (task_id,)
        ).fetchall()
        return [_transition(r) for r in rows]

    # ------------------------------------------------------------------ task state

    def task_state(self, task_id: str) -> dict[str, Any]:
        """What the pipeline remembers about a task between stages (base commit, checks)."""
        row = self._db.execute(
            "SELECT data FROM task_state WHERE task_id = ?", (task_id,)
        ).fetchone()
        data = json.loads(row[0]) if row else {}
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
        rows = self._db.execute(f"SELECT * FROM runs{where} ORDER BY started_at, id", args)
        return [dict(r) for r in rows.fetchall()]

    # ------------------------------------------------------------------ spend and pauses

    def cost_by_task(self) -> dict[str, float]:
        """Dollars reported by the agents, summed per task."""
        rows = self._db.execute(
            "SELECT task_id, SUM(cost_usd) FROM runs WHERE cost_usd IS NOT NULL GROUP BY task_id"
        ).fetchall()
        return {str(r[0]): float(r[1]) for r in rows}

    def cost_of_task(self, task_id: str) -> float:
        """Dollars reported by the agents for one task (runs_task index)."""
        row = self._db.execute(
            "SELECT SUM(cost_usd) FROM runs WHERE task_id = ?", (task_id,)
        ).fetchone()
        return float(row[0] or 0.0)

    def cost_since(self, started_at: str) -> float:
        """Dollars of every run started at or after `started_at` (an ISO UTC timestamp)."""
        row = self._db.execute(
            "SELECT SUM(cost_usd) FROM runs WHERE started_at >= ?", (started_at,)
        ).fetchone()
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
        row = self._db.execute(
            "SELECT strikes FROM agent_pauses WHERE agent = ?", (agent,)
        ).fetchone()
        return int(row[0]) if row else 0

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
        rows = self._db.execute(
            "SELECT agent, until, reason FROM agent_pauses WHERE until > ?", (now,)
        ).fetchall()
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
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE channel = ? AND sent_at IS NULL AND next_attempt_at <= ?"
            " ORDER BY priority, id LIMIT ?",
            (channel, now, limit),
        ).fetchall()
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
        rows = self._db.execute(
            "SELECT channel, COUNT(*) FROM outbox WHERE sent_at IS NULL GROUP BY channel"
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def unsent_count(self, channel: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"
        args: tuple[str, ...] = ()
        if channel is not None:
            query += " AND channel = ?"
            args = (channel,)
        return int(self._db.execute(query, args).fetchone()[0])


def _transition(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["notify"] = json.loads(data["notify"]) if data.get("notify") else None
    return data


def open_if_present(root: Path) -> Journal | None:
    """The journal for read-only commands: absent is fine (the board is the truth)."""
    path = StatePaths(root).journal
    if not path.exists():
        return None
    try:
        return Journal(path)
    except sqlite3.DatabaseError:
        return None
