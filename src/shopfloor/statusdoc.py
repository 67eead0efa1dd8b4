"""The `status --json` document, encoded from the status index instead of a fresh scan.

`actions.status_report` (plus `journal_extras` and the config verdict, joined in
`cli.board_cmds.status_document`) is the definition of the document; this module builds the
very same bytes from a `StatusIndex`: the per-task JSON is pre-encoded, and everything else
(counts, problems, runs, spend, pauses, the config verdict) is encoded here with the same
`json.dumps` settings `print_json` uses for a program (one line, `ensure_ascii=False`,
`safe_json`). `tests/test_status_fast.py` holds the two to byte equality.

Light on purpose: no click, no pydantic, no YAML, no pathlib per task.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor import __version__, landing_record
from shopfloor.display import safe_json

if TYPE_CHECKING:
    from shopfloor.journal import Journal
    from shopfloor.status_index import StatusIndex

#: Version of the JSON documents `status --json` and `show --json` print (docs/cli.md).
JSON_SCHEMA_VERSION = 1


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    import datetime as dt

    started = dt.datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    age = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    return {
        "run_id": run["id"],
        "task_id": run["task_id"],
        "role": run["role"],
        "agent": run["agent"],
        "started_at": run["started_at"],
        "age_seconds": max(0, age),
        # [scale] engine = "temporal": the `shopfloor worker` running it (None: here)
        "worker": run.get("worker"),
    }


def spend_json(by_task: dict[str, float], today: float) -> dict[str, Any]:
    return {
        # Always floats, zero included (`0.0`, never `0`): one type per key for parsers.
        "today_usd": round(float(today), 4),
        "total_usd": round(float(sum(by_task.values(), 0.0)), 4),
        "by_task": {k: round(float(v), 4) for k, v in sorted(by_task.items())},
    }


def paused_json(pauses: dict[str, tuple[float, str]]) -> list[dict[str, Any]]:
    from shopfloor.task import utc_stamp

    return [
        {
            "agent": agent,
            "until": utc_stamp(until),
            "reason": reason,
        }
        for agent, (until, reason) in sorted(pauses.items())
    ]


def journal_extras(root: Path) -> dict[str, Any]:
    """Runs, spend, paused agents, unsent notifications; empty without a readable journal
    (the board is the truth), and `journal_error` saying why it could not be read. Then
    the engine's state (`engine_json`)."""
    from shopfloor.journal import open_for_reading

    journal, problem = open_for_reading(root)
    if journal is None:
        return {**_NO_JOURNAL, "journal_error": problem, "engine": engine_json(root)}
    with journal:
        return {**extras_of(journal), "engine": engine_json(root)}


def engine_json(root: Path | str) -> dict[str, Any] | None:
    """`[scale] engine = "temporal"`: the engine's state as the daemon last wrote it
    (scale/state.py); None in the embedded mode. Never cached: it changes without the
    journal changing."""
    from shopfloor.scale.state import engine_json as read

    return read(root)


_NO_JOURNAL: dict[str, Any] = {
    "runs": [],
    "outbox": {},
    "spend": spend_json({}, 0.0),
    "paused": [],
}


def extras_of(journal: Journal) -> dict[str, Any]:
    """`journal_extras` from an open journal (the daemon's own: a second connection of the
    same process must not be opened and closed beside it, see `journal.Journal._connect`)."""
    import sqlite3

    from shopfloor import budget
    from shopfloor.errors import ShopfloorError
    from shopfloor.journal import unreadable

    try:  # damage deep in the file shows only when a query reaches it
        return {
            "runs": journal.runs(state="running"),
            "outbox": journal.unsent_by_channel(),
            "spend": spend_json(journal.cost_by_task(), budget.spent_today(journal)),
            "paused": paused_json(journal.pauses()),
            "journal_error": None,
        }
    except (ShopfloorError, sqlite3.Error) as exc:
        return {**_NO_JOURNAL, "journal_error": unreadable(journal.path, exc)}


#: The journal's files: any write changes one of their stamps (WAL mode writes the -wal).
_JOURNAL_FILES = ("journal.db", "journal.db-wal")
#: Journal files modified more recently than this are not trusted to key a cache (racy-clean).
_SETTLED_NS = 2_000_000_000


def _journal_key(root: str) -> list[Any] | None:
    """What changes when the journal's answer may change: both files' stamps and the UTC
    day (`spend.today_usd`); None while a file was just written (within the same tick)."""
    key: list[Any] = [__version__, time.strftime("%Y-%m-%d", time.gmtime())]
    trusted_before = time.time_ns() - _SETTLED_NS
    for name in _JOURNAL_FILES:
        try:
            st = os.stat(os.path.join(root, ".shopfloor", name))
        except FileNotFoundError:
            key.append(None)
            continue
        if st.st_mtime_ns >= trusted_before:
            return None
        key.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return key


def journal_extras_cached(root: str) -> dict[str, Any]:
    """`journal_extras`, remembered in `.shopfloor/cache/status-extras.json` while the
    journal's files are unchanged (a `status` with no daemon then opens no SQLite and imports
    no journal). Only an answer time cannot change is kept: no run in progress (its age
    grows), no agent paused (a pause ends by itself); the day is part of the key."""
    cache = os.path.join(root, ".shopfloor", "cache", "status-extras.json")
    key = _journal_key(root)
    if key is not None:
        try:
            with open(cache, encoding="utf-8") as fh:
                kept = json.load(fh)
            if kept["key"] == key:
                return {**kept["extras"], "engine": engine_json(root)}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    extras = journal_extras(Path(root))
    if key is not None and not extras["runs"] and not extras["paused"]:
        from shopfloor import _fs

        with contextlib.suppress(OSError):
            _fs.atomic_write(Path(cache), json.dumps({"key": key, "extras": extras}), False)
    return extras


def encode(index: StatusIndex, extras: dict[str, Any], config_error: str | None) -> str:
    """`status --json`'s one-line text (no newline) from a refreshed index: the same bytes
    `print_json(status_document(...))` prints to a pipe. `extras` is `journal_extras`."""
    extras = dict(extras)
    invalid = index.quarantined()
    counts = index.counts()
    counts["invalid"] = len(invalid)
    head = {"schema": JSON_SCHEMA_VERSION, "root": index.root, "counts": counts}
    ready = index.ids_with_status("review", "landing")
    tail = {
        "landing": landing_record.report(index.root, ready),
        "invalid": invalid,
        "unreadable": index.unreadable(),
        "conflicts": index.conflicts(),
        "unknown_folders": index.unknown_folders(),
        "runs": [run_json(r) for r in extras.pop("runs")],
        **extras,
        "config_error": config_error,
    }
    # json.dumps renders {"a": 1, "b": 2} as '{"a": 1, "b": 2}': the head without its "}",
    # the tasks array spliced in with its key, then the tail without its "{".
    return (
        safe_json(json.dumps(head, ensure_ascii=False)[:-1])
        + ', "tasks": '
        + index.tasks_json()
        + ", "
        + safe_json(json.dumps(tail, ensure_ascii=False)[1:])
    )


def config_verdict(root: Path) -> str | None:
    from shopfloor import config_check, defaults

    return config_check.config_error(root, root / defaults.CONFIG_FILE)


def document_text(root: Path, index: StatusIndex) -> str:
    """Refresh the whole index and encode the document (the no-daemon path)."""
    index.refresh()
    return encode(index, journal_extras_cached(str(root)), config_verdict(root))
