"""Watching the board: watchdog (inotify) on each lane folder marks that lane dirty.

Level-triggered: an event only says "rescan this lane now"; the daemon's periodic reconcile
makes sure a missed event never strands a task. The hotfix lane has an observer (an
inotify instance and a thread) of its own, so a burst of 1,000 inbox files cannot queue
in front of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.board import Board, Lane, is_temp_name

#: watchdog event types that change nothing on the board.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


class _LaneEvents:
    """watchdog handler: an event marks its lane dirty and wakes the loop (level-triggered)."""

    def __init__(self, tasks_dir: Path, on_dirty: Callable[[Lane], None]) -> None:
        super().__init__()
        self.tasks_dir = tasks_dir
        self.on_dirty = on_dirty

    def dispatch(self, event: Any) -> None:
        if event.event_type in _READ_ONLY_EVENTS:
            return  # our own scans open and read files: those must not trigger another scan
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = Path(os.fsdecode(raw))
            if is_temp_name(path.name) and path.parent.parent != self.tasks_dir:
                continue
            lane_name = path.parent.name if path.parent.parent == self.tasks_dir else path.name
            with contextlib.suppress(ValueError):
                self.on_dirty(Lane(lane_name))


#: What watchdog logs when an inotify read races the observer's stop: harmless at shutdown.
_STOPPING = "thread is inactive"


class _OverflowHook(logging.Handler):
    """watchdog reports trouble (a kernel queue overflow, a lost watch) only through its
    loggers: any of it means events may be lost, so the daemon reconciles fully. Handled
    here, a record never reaches Python's last-resort handler, which printed it on stderr."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if _STOPPING not in record.getMessage():
            self.on_overflow()


def start(
    board: Board, on_dirty: Callable[[Lane], None], on_overflow: Callable[[], None]
) -> list[Any]:
    """Start the observers (the hotfix lane's first); the caller stops them."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    logging.getLogger("watchdog").addHandler(_OverflowHook(on_overflow))  # all its loggers

    class Handler(_LaneEvents, FileSystemEventHandler):
        pass

    handler = Handler(board.tasks_dir, on_dirty)
    lanes, hotfix = Observer(), Observer()  # the hotfix lane never queues behind a burst
    for lane in Lane:
        target = hotfix if lane is Lane.HOTFIX else lanes
        target.schedule(handler, str(board.lane_dir(lane)), recursive=False)
    lanes.schedule(handler, str(board.tasks_dir), recursive=False)
    for observer in (hotfix, lanes):
        observer.daemon = True
        observer.start()
    return [hotfix, lanes]
