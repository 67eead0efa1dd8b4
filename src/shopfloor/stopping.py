"""How a daemon stops on SIGTERM or Ctrl-C, always within its grace period.

A Python signal handler runs in the main thread between two bytecodes, whatever that thread
was doing: holding a `threading.Event`'s inner lock in its wake-up wait, the shop's lock, the
stderr buffer. A handler that takes any lock can deadlock on it (one CI run and one benchmark
saw the daemon hang for over a minute in its wake-up wait). So the handler here only writes
a byte to a pipe, which takes no lock; a thread of its own reads the byte and does the
stopping, and from then on it keeps a deadline: if the daemon has not exited by the grace
plus `BACKSTOP` seconds (a wedged thread, a C call that does not return), it SIGKILLs the
agents' process groups and ends the process. The crash protocol already recovers anything a
stop cuts short (docs/architecture.md, "Stopping").
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

#: Seconds past its stop deadline a daemon may still take before it is ended outright.
BACKSTOP = 1.0
#: The exit status of a daemon ended by the backstop (a clean stop exits 0).
OVERDUE_EXIT = 3
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalStop:
    """SIGTERM/SIGINT -> `stop()` on a thread; then `overdue()` if not `done()` in time.

    `deadline()` is read after `stop()` returned: the monotonic time by which the daemon
    means to have exited. Install from the main thread; `uninstall` restores the handlers
    that were there before (a daemon run inside a test process leaves no trace).
    """

    def __init__(
        self,
        stop: Callable[[], None],
        deadline: Callable[[], float],
        overdue: Callable[[], None],
    ) -> None:
        self._stop = stop
        self._deadline = deadline
        self._overdue = overdue
        self._done = threading.Event()
        self._write_fd: int | None = None
        self._previous: dict[int, Any] = {}
        #: When the first signal came (time.monotonic): the backstop counts from there, not
        #: from when a starved thread got round to stopping.
        self.signalled_at: float | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread can take signals; the caller stops us itself
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(write_fd, False)  # a full pipe drops a byte, never blocks the handler
        self._write_fd = write_fd
        threading.Thread(
            target=self._wait_for_signal, args=(read_fd,), name="stop-signal", daemon=True
        ).start()
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """The daemon has exited its run: the backstop stands down, old handlers return."""
        self._done.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._write_fd is not None:
            os.close(self._write_fd)  # the thread's read sees end-of-file and it ends
            self._write_fd = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # No lock, no logging, no Event.set: a float stored, a write(2) to a non-blocking pipe.
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        fd = self._write_fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, b"!")

    def _wait_for_signal(self, read_fd: int) -> None:
        try:
            if not os.read(read_fd, 1):
                return  # uninstalled without a signal
        finally:
            os.close(read_fd)
        self._stop()
        # The daemon's deadline counts from `signalled_at` (see Daemon.stop).
        if not self._done.wait(max(0.0, self._deadline() - time.monotonic()) + BACKSTOP):
            self._overdue()


__all__ = ["BACKSTOP", "OVERDUE_EXIT", "SignalStop"]
