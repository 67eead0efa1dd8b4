"""Server-Sent Events: the board's changes on disk, pushed to every connected browser.

One watchdog observer (inotify on Linux) watches each lane folder, the tasks folder and the
run folders' parent; its events are gathered for `debounce` seconds (a move is a delete and a
create; an agent's run writes several files) and sent as one `changed` event to each client.
Nothing is polled and nothing is cached: the event names the files touched and what each now
holds (its header as `status --json` lists it), read from disk when the event is sent, so a
file moved by hand, by the CLI or by the daemon reaches the browsers alike.

Each client has its own bounded queue: a client too slow to keep up gets a `resync` event in
place of what it missed (read the whole state again) rather than making the server hold an
ever-growing backlog. A comment line every `heartbeat` seconds keeps proxies from closing an
idle stream.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from shopfloor import actions, defaults, runlogs, task
from shopfloor.board import Board, Entry, Lane, is_temp_name
from shopfloor.errors import ShopfloorError
from shopfloor.scale.state import engine_path
from shopfloor.web.auth import safe_json

#: Events a client may have waiting before it is told to resync instead.
QUEUE_SIZE = 64
#: watchdog event types that change nothing.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})
#: Bytes of a run log sent when a client starts following it (the rest: `shopfloor logs`).
LOG_BACKLOG = 256 * 1024
#: Seconds between looks at a followed run log (the file is appended by another process).
LOG_POLL = 0.2

_CLOSE: dict[str, Any] = {"type": "_close"}


def sse(event: dict[str, Any], name: str | None = None) -> str:
    """One SSE message: `event: <type>` and the JSON on one `data:` line (json.dumps never
    emits a raw newline, so the message cannot be split or forged by task text)."""
    kind = name or str(event.get("type", "message"))
    return f"event: {kind}\ndata: {safe_json(event)}\n\n"


class _QuietStop(logging.Filter):
    """watchdog logs an error when an inotify read races the observer's stop: harmless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_QuietStop())


class EventHub:
    """The watcher and the connected clients. Start and stop it on the server's loop."""

    def __init__(self, board: Board, debounce: float = 0.05, heartbeat: float = 15.0) -> None:
        self.board = board
        self.debounce = debounce
        self.heartbeat = heartbeat
        self.clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self.seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Any = None
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_lock = asyncio.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        """The server is stopping: streams end."""
        return self._closed

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start watching (on the running loop); a missing folder is simply not watched."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self._loop = asyncio.get_running_loop()
        self._flush_lock = asyncio.Lock()
        self._closed = False
        hub = self

        class Handler(FileSystemEventHandler):
            def dispatch(self, event: Any) -> None:
                if event.event_type not in _READ_ONLY_EVENTS:
                    hub._touched(event.src_path, getattr(event, "dest_path", ""))

        handler = Handler()
        observer = Observer()
        with contextlib.suppress(OSError):  # runs/ as the daemon makes it, so it can be watched
            self.board.paths.ensure()
        folders = [self.board.tasks_dir, *(self.board.lane_dir(lane) for lane in Lane)]
        folders.append(runlogs.runs_dir(self.board.root))
        # .shopfloor/ itself for engine.json (the daemon's view of Temporal: the banner)
        folders.append(self.board.paths.state_dir)
        for folder in folders:
            if folder.is_dir():
                observer.schedule(handler, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    async def stop(self) -> None:
        """Stop the watcher and end every client's stream."""
        await self.close_clients()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            await asyncio.get_running_loop().run_in_executor(None, observer.join, 5.0)

    async def close_clients(self) -> None:
        """End every stream now (the server is stopping: it must not wait for browsers)."""
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for queue in list(self.clients):
            _put_latest(queue, _CLOSE)

    # ------------------------------------------------------------------ watcher side

    def _touched(self, *raw_paths: bytes | str) -> None:
        """From the watchdog thread: remember the paths, schedule one flush on the loop."""
        paths = {os.fsdecode(p) for p in raw_paths if p}
        if not paths:
            return
        with self._pending_lock:
            first = not self._pending
            self._pending |= paths
        loop = self._loop
        if first and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._schedule_flush)

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._closed and self._loop is not None:
            self._flush_handle = self._loop.call_later(self.debounce, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        with self._pending_lock:
            paths, self._pending = self._pending, set()
        if paths and self.clients:
            # Reading the touched files' headers is disk work: off the loop.
            task_ = asyncio.ensure_future(self._flush(paths))
            task_.add_done_callback(_ignore_result)

    async def _flush(self, paths: set[str]) -> None:
        # One at a time: each reads the disk when it runs, so events leave in the order of
        # what they saw (a slow read must not deliver an older state after a newer one).
        async with self._flush_lock:
            loop = asyncio.get_running_loop()
            event = await loop.run_in_executor(None, self.describe, paths)
            if event is not None:
                self.publish(event)

    def describe(self, paths: set[str]) -> dict[str, Any] | None:
        """The `changed` event for these paths, read from disk now; None if none matters."""
        tasks_dir = str(self.board.tasks_dir)
        runs = str(runlogs.runs_dir(self.board.root))
        engine_file = str(engine_path(self.board.root))
        lanes: set[str] = set()
        present: list[dict[str, Any]] = []
        gone: list[dict[str, str]] = []
        runs_changed = engine_changed = False
        for raw in sorted(paths):
            path = Path(raw)
            parent = str(path.parent)
            if raw == engine_file:
                engine_changed = True
                continue
            if parent == runs or raw == runs:
                runs_changed = True
                continue
            if is_temp_name(path.name):
                continue
            if parent == tasks_dir:
                with contextlib.suppress(ValueError):
                    lanes.add(Lane(path.name).value)  # a lane folder itself changed
                continue
            if path.parent.parent != self.board.tasks_dir or not path.name.endswith(".md"):
                continue
            try:
                lane = Lane(path.parent.name)
            except ValueError:
                continue
            lanes.add(lane.value)
            where = f"{defaults.TASKS_DIR}/{lane.value}/{path.name}"
            entry = _read_entry(self.board, lane, path)
            if entry is None:
                gone.append({"lane": lane.value, "path": where})
            else:
                present.append(actions.entry_json(self.board, entry))
        if not lanes and not runs_changed and not engine_changed:
            return None
        self.seq += 1
        return {
            "type": "changed",
            "seq": self.seq,
            "lanes": sorted(lanes),
            "tasks": present,
            "gone": gone,
            "runs": runs_changed,
            "engine": engine_changed,
        }

    # ------------------------------------------------------------------ clients

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event to every client (on the loop); a full queue is told to resync."""
        for queue in list(self.clients):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                _put_latest(queue, {"type": "resync", "reason": "events were dropped"})

    async def stream(self, hello: dict[str, Any] | None = None) -> AsyncIterator[str]:
        """One client's SSE stream: a `hello`, then events and heartbeats until the end."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.clients.add(queue)
        try:
            yield "retry: 1000\n\n"
            yield sse({"type": "hello", "seq": self.seq, **(hello or {})})
            while not self._closed:
                try:
                    event = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is _CLOSE or event.get("type") == "_close":
                    return
                if event.get("type") == "resync":
                    _drain(queue)
                yield sse(event)
        finally:
            self.clients.discard(queue)


def _read_entry(board: Board, lane: Lane, path: Path) -> Entry | None:
    """The task in that file now, or None when it is gone or not a readable task."""
    try:
        st = path.stat()
        if st.st_size == 0 or st.st_size > defaults.MAX_TASK_BYTES:
            return None
        header = task.read_header_fast(path.read_text("utf-8", "replace"))
    except (OSError, ShopfloorError, ValueError):
        return None
    return Entry(header, lane, path)


def _put_latest(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    """Put `event` even into a full queue: what was waiting is dropped (it is superseded)."""
    if queue.full():
        _drain(queue)
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(event)


def _drain(queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed flush is not logged as "never retrieved"


# ---------------------------------------------------------------------------- run logs


async def follow_run_log(run: runlogs.RunInfo, is_closed: Callable[[], bool]) -> AsyncIterator[str]:
    """A run's output as SSE: the last LOG_BACKLOG bytes of each log, then what is appended
    (`tail -f`), then an `end` event once the run has its result."""
    tails: dict[Path, _Tail] = {}
    yield "retry: 2000\n\n"
    while True:
        finished = run_finished(run)  # before reading: nothing written before the result is lost
        sent = False
        for path in runlogs.log_files(run):
            if path not in tails:  # the backlog of a log seen for the first time
                tails[path] = _Tail(path, start_back=LOG_BACKLOG)
            text = await asyncio.to_thread(tails[path].read)
            if text:
                yield sse({"type": "log", "file": _rel(run, path), "text": text})
                sent = True
        if finished and not sent:
            yield sse({"type": "end", "run_id": run.run_id})
            return
        if is_closed():
            return
        await asyncio.sleep(LOG_POLL)


class _Tail:
    """What a growing log file gained since the last read, decoded without splitting a
    UTF-8 character across two reads."""

    def __init__(self, path: Path, start_back: int) -> None:
        self.path = path
        self.offset: int | None = None
        self.start_back = start_back
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self) -> str:
        try:
            size = self.path.stat().st_size
            if self.offset is None:
                self.offset = max(0, size - self.start_back)
            if size <= self.offset:
                return ""
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(min(size - self.offset, 4 * LOG_BACKLOG))
        except OSError:
            return ""
        self.offset += len(data)
        return self.decoder.decode(data)


def run_finished(run: runlogs.RunInfo) -> bool:
    """The run has its result (an agent's result.json, or checks.json for checks)."""
    return (run.run_dir / "result.json").exists() or (run.run_dir / "checks.json").exists()


def _rel(run: runlogs.RunInfo, path: Path) -> str:
    return str(path.relative_to(run.run_dir))
