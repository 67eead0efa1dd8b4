"""The engine's state as the daemon last saw it: `.shopfloor/engine.json`.

The daemon writes it (`write_engine_state`) at start and whenever the connection to Temporal
comes or goes; `status`, the web board and the bot read it (`read_engine_state`). No file
means the embedded, single-machine mode. The file names the daemon's pid: when that process
is gone the file says nothing about now, so the state reads as "unknown", never as fact.

Stdlib only and cheap: `status` reads it on every call, without a daemon and without
importing Temporal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopfloor.config import ScaleConfig

ENGINE_FILE = "engine.json"
#: The largest engine.json read (a real one is a few hundred bytes).
_MAX_BYTES = 64 * 1024
UP, DOWN, UNKNOWN = "up", "down", "unknown"
#: The daemon has started and not yet reached Temporal (dispatch.Engine's first state).
CONNECTING = "connecting"
_RECORDED = (UP, DOWN, CONNECTING)


@dataclass(frozen=True)
class EngineState:
    """What `status --json` shows under "engine"."""

    engine: str
    address: str
    namespace: str
    task_queue: str
    #: up | down | connecting (the daemon started, Temporal not reached yet) | unknown (the
    #: daemon that wrote it is gone, or the file is bad)
    state: str
    since: str  # UTC stamp of the last change the daemon saw ("" when unknown)
    error: str | None  # why it is down (or why the file could not be read)
    pid: int | None
    daemon_running: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def engine_path(root: Path | str) -> Path:
    return Path(root) / ".shopfloor" / ENGINE_FILE


def _stamp(when: dt.datetime | None = None) -> str:
    return (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_engine_state(
    root: Path | str,
    *,
    address: str,
    namespace: str,
    task_queue: str,
    up: bool,
    error: str | None = None,
    since: str | None = None,
    pid: int | None = None,
) -> None:
    """Record the engine's state (the daemon: at start and on every change up <-> down).

    `since` defaults to now; `pid` to this process (the daemon's). Not durable on purpose:
    after a power loss the file may be lost or old, and a dead pid makes it read "unknown"."""
    _write(root, address, namespace, task_queue, UP if up else DOWN, error, since, pid)


def record_engine(
    root: Path | str, scale: ScaleConfig, state: str, error: str = "", since: float | None = None
) -> None:
    """`write_engine_state` from `[scale]` and dispatch.Engine's own words: `state` is up,
    down or connecting, `since` its epoch seconds (default now)."""
    if state not in _RECORDED:
        raise ValueError(f"engine state {state!r}: one of {', '.join(_RECORDED)}")
    when = None if since is None else _stamp(dt.datetime.fromtimestamp(since, dt.UTC))
    _write(root, scale.address, scale.namespace, scale.task_queue, state, error, when, None)


def _write(
    root: Path | str,
    address: str,
    namespace: str,
    task_queue: str,
    state: str,
    error: str | None,
    since: str | None,
    pid: int | None,
) -> None:
    from shopfloor import _fs

    document = {
        "engine": "temporal",
        "address": address,
        "namespace": namespace,
        "task_queue": task_queue,
        "state": state,
        "since": since or _stamp(),
        "error": (error or "unreachable") if state == DOWN else None,
        "pid": os.getpid() if pid is None else pid,
    }
    path = engine_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.atomic_write(path, json.dumps(document, ensure_ascii=False) + "\n", durable=False)


def clear_engine_state(root: Path | str) -> None:
    """The daemon in local mode: remove an engine.json a former temporal daemon left."""
    with contextlib.suppress(FileNotFoundError):
        engine_path(root).unlink()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def read_engine_state(root: Path | str) -> EngineState | None:
    """The engine's state, or None in embedded mode (no file, or an engine other than
    temporal). A file whose daemon is gone, or that cannot be read, reads as "unknown"."""
    try:
        with open(engine_path(root), "rb") as fh:
            raw = fh.read(_MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unknown({}, f"cannot read {ENGINE_FILE}: {exc.strerror or exc}")
    try:
        doc = json.loads(raw)
    except ValueError:
        return _unknown({}, f"{ENGINE_FILE} is not JSON")
    if not isinstance(doc, dict):
        return _unknown({}, f"{ENGINE_FILE} is not a JSON object")
    if doc.get("engine", "temporal") != "temporal":
        return None
    pid = doc.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return _unknown(doc, "the daemon that wrote this is not running")
    state = doc.get("state")
    if state not in _RECORDED:
        return _unknown(doc, f"{ENGINE_FILE} names no state")
    error = str(doc.get("error") or "unreachable") if state == DOWN else None
    return _from(doc, state, str(doc.get("since") or ""), error, running=True)


def _unknown(doc: dict[str, Any], why: str) -> EngineState:
    return _from(doc, UNKNOWN, "", why, running=False)


def _from(
    doc: dict[str, Any], state: str, since: str, error: str | None, running: bool
) -> EngineState:
    pid = doc.get("pid")
    return EngineState(
        engine="temporal",
        address=str(doc.get("address") or ""),
        namespace=str(doc.get("namespace") or ""),
        task_queue=str(doc.get("task_queue") or ""),
        state=state,
        since=since,
        error=error,
        pid=pid if isinstance(pid, int) else None,
        daemon_running=running,
    )


def engine_json(root: Path | str) -> dict[str, Any] | None:
    """`status --json`'s "engine": null in embedded mode."""
    state = read_engine_state(root)
    return None if state is None else state.to_json()


#: What a person reads while the engine is down (status, the web banner).
DOWN_ADVICE = "tasks wait for the engine; hotfixes still run here"


def engine_text(engine: dict[str, Any]) -> str:
    """One line about the engine, for `status` and the board: where, state, since when."""
    where = f"temporal {engine.get('address') or '?'}"
    if engine.get("namespace") and engine["namespace"] != "default":
        where += f" ({engine['namespace']})"
    state = engine.get("state")
    if state == UP:
        return f"{where} up since {engine.get('since') or '?'}"
    if state == CONNECTING:
        return f"{where} connecting since {engine.get('since') or '?'}"
    if state == DOWN:  # the caller adds DOWN_ADVICE (a line of its own in a terminal)
        return f"{where} DOWN since {engine.get('since') or '?'}: {engine.get('error')}"
    return f"{where} state unknown ({engine.get('error')})"
