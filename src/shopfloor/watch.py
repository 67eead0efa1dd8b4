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

#: Called with the lane and the name of the file in it an event was about (None: an event
#: about the lane folder itself, so the whole lane).
OnFile = Callable[[Lane, str | None], None]


def event_filter() -> list[Any]:
    """What the kernel is asked to report (watchdog 7 turns this into the inotify mask):
    creations, deletions, moves and a write's close. Not opens and reads (the daemon's own
    scans: half the CPU of a reconcile went on those), not each write(2) (its close follows),
    not attribute changes."""
    from watchdog import events as ev

    return [
        ev.FileCreatedEvent,
        ev.FileDeletedEvent,
        ev.FileMovedEvent,
        ev.FileClosedEvent,
        ev.DirCreatedEvent,
        ev.DirDeletedEvent,
        ev.DirMovedEvent,
    ]


class _LaneEvents:
    """watchdog handler: an event marks its lane dirty and wakes the loop (level-triggered).

    Plain string work: a burst brings thousands of events, each once through here."""

    def __init__(
        self, tasks_dir: Path, on_file: OnFile, give_way: Callable[[], None] | None = None
    ) -> None:
        super().__init__()
        self.tasks_dir = tasks_dir
        self._tasks = os.fspath(tasks_dir)
        self.on_file = on_file
        self.give_way = give_way

    def dispatch(self, event: Any) -> None:
        if event.event_type in _READ_ONLY_EVENTS:
            return  # our own scans open and read files: those must not trigger another scan
        if self.give_way is not None:
            self.give_way()  # a burst's events wait while a hotfix starts (precedence.py)
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            folder, name = os.path.split(os.fsdecode(raw))
            above, folder_name = os.path.split(folder)
            in_lane = above == self._tasks
            if is_temp_name(name) and not in_lane:
                continue
            with contextlib.suppress(ValueError):
                self.on_file(Lane(folder_name if in_lane else name), name if in_lane else None)


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


def _no_move_pairing_delay() -> None:
    """watchdog holds each IN_MOVED_FROM back for half a second to pair it with its
    IN_MOVED_TO, and its reader sleeps out that half second whenever one is first in its
    queue — even once the pair arrived — with every event behind it waiting too. Each
    atomic write of the daemon (a temp file renamed over the task) makes such a pair, so a
    hotfix filed just after one could wait 500 ms (seen in benchmarks/bench_hotfix.py).
    Unpaired, a rename is a deletion of the temp name and a creation of the task's name:
    the same two files to look at, which is all an event means here (level-triggered)."""
    import importlib

    # Where the half second lives: watchdog 7's grouper, else the older versions' buffer.
    for module, name in (
        ("watchdog.observers.inotify_move_event_grouper", "InotifyMoveEventGrouper"),
        ("watchdog.observers.inotify_buffer", "InotifyBuffer"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            holder = getattr(importlib.import_module(module), name)
            if hasattr(holder, "delay"):
                holder.delay = 0.0
                return


def start(
    board: Board,
    on_dirty: Callable[[Lane], None],
    on_overflow: Callable[[], None],
    on_file: OnFile | None = None,
    give_way: Callable[[], None] | None = None,
) -> list[Any]:
    """Start the observers (the hotfix lane's first); the caller stops them.

    `on_file`, when given, is told which file each event was about (the daemon's hotfix lane
    reads just that file) and is called instead of `on_dirty`; the hotfix lane is then read
    by a thread of our own (`hotfix_watch`, Linux), not by a watchdog observer. `give_way` is
    called before each event of the other lanes is handled (never the hotfix lane's)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    logging.getLogger("watchdog").addHandler(_OverflowHook(on_overflow))  # all its loggers
    _no_move_pairing_delay()

    class Handler(_LaneEvents, FileSystemEventHandler):
        pass

    told = on_file or (lambda lane, _name: on_dirty(lane))
    first, handler = Handler(board.tasks_dir, told), Handler(board.tasks_dir, told, give_way)
    direct = _hotfix_watch(board, on_file, on_overflow) if on_file is not None else None
    lanes = Observer()
    hotfix: Any = direct or Observer()  # the hotfix lane never queues behind a burst
    wanted = event_filter()
    for lane in Lane:
        if lane is Lane.HOTFIX:
            if direct is None:
                folder = str(board.lane_dir(lane))
                hotfix.schedule(first, folder, recursive=False, event_filter=wanted)
            continue
        lanes.schedule(handler, str(board.lane_dir(lane)), recursive=False, event_filter=wanted)
    lanes.schedule(handler, str(board.tasks_dir), recursive=False, event_filter=wanted)
    if direct is None:
        hotfix.daemon = True
    lanes.daemon = True
    hotfix.start()
    lanes.start()
    return [hotfix, lanes]


def _hotfix_watch(board: Board, on_file: OnFile, on_overflow: Callable[[], None]) -> Any:
    """The hotfix lane's own inotify reader (hotfix_watch.py); None where it cannot be had
    (not Linux, no inotify left): watchdog's observer then watches the lane."""
    from shopfloor.hotfix_watch import HotfixWatch

    try:
        return HotfixWatch(
            board.lane_dir(Lane.HOTFIX), lambda name: on_file(Lane.HOTFIX, name), on_overflow
        )
    except OSError:
        return None
