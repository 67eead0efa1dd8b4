"""The hotfix lane's watcher: inotify read by one thread of ours, straight to the daemon.

watchdog hands an event through three threads (the inotify reader, its emitter, the
observer's dispatcher) and two queues before our handler sees it; on a daemon busy with a
1,000-file burst each hand-off waits for the interpreter (the GIL), and that was up to
18 ms of a hotfix's reaction before the daemon even knew of the file (issue 14). Here one
thread sleeps in `select` on the inotify descriptor and calls `on_file` itself. Linux
only: elsewhere (or when inotify cannot be had) the caller keeps watchdog's observer.

Level-triggered like the rest (see watch.py): an event names a file to read again, an
overflow or anything about the folder itself says "read the whole lane".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from shopfloor.board import is_temp_name

_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
#: What changes the lane (as watch.event_filter: never opens and reads, never each write).
_MASK = (
    _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
#: The folder itself changed, or events were lost: read the whole lane.
_WHOLE_LANE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_Q_OVERFLOW | _IN_IGNORED
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_BUFFER = 64 * 1024


class HotfixWatch:
    """One thread reading one inotify watch on the lane folder. `stop` ends it."""

    def __init__(
        self,
        folder: Path,
        on_file: Callable[[str | None], None],
        on_overflow: Callable[[], None],
    ) -> None:
        self._on_file = on_file
        self._on_overflow = on_overflow
        self._fd = _inotify_watch(folder)
        self._wake_r, self._wake_w = os.pipe()
        self._guard = threading.Lock()
        self._closed = False  # the descriptors, closed by the thread as it ends
        self._thread = threading.Thread(target=self._run, name="hotfix-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Wake the thread to end; it closes the descriptors (never under its feet)."""
        with self._guard:
            if self._closed:
                return  # the number may belong to another file by now: never written to
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._fd, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                try:
                    data = os.read(self._fd, _BUFFER)
                except BlockingIOError:
                    continue
                try:
                    self._handle(data)
                except Exception:  # a batch not handed on: the whole board is looked at
                    self._on_overflow()
        except OSError:  # the descriptor failed: never a silent end (reconciles still run)
            self._on_overflow()
        finally:
            with self._guard:
                self._closed = True
                for fd in (self._fd, self._wake_r, self._wake_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _handle(self, data: bytes) -> None:
        names: list[str] = []
        whole = False
        offset = 0
        while offset + _HEADER.size <= len(data):
            _wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            raw = data[offset : offset + length].split(b"\0", 1)[0]
            offset += length
            if mask & _IN_Q_OVERFLOW:
                self._on_overflow()  # events were lost everywhere, not only here
            if mask & _WHOLE_LANE:
                whole = True
            elif raw:
                name = os.fsdecode(raw)
                if not is_temp_name(name) and name not in names:
                    names.append(name)
        for name in names:
            self._on_file(name)
        if whole:
            self._on_file(None)


def _inotify_watch(folder: Path) -> int:
    """A non-blocking inotify descriptor watching `folder`; OSError when it cannot be had."""
    if not sys.platform.startswith("linux"):
        raise OSError("inotify is Linux's")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1 failed")
    wd = int(libc.inotify_add_watch(fd, os.fsencode(folder), _MASK))
    if wd < 0:
        errno = ctypes.get_errno()
        os.close(fd)
        raise OSError(errno, f"cannot watch {folder}")
    return fd
