"""A hotfix on its way to its agent goes first: the daemon's busy loops step aside meanwhile.

Python runs one thread at a time (the GIL). While the main thread reads a burst of 1,000
inbox files and the status server lists the board, the hotfix thread gets a share of the
interpreter, not all of it: measured, its path to the agent's `Popen` (a read, the claim,
`git status`, the run folder, a few journal rows) took 100+ ms instead of 10. So from the
hotfix watcher's event until the agent process exists, the loops that read many files call
`give_way()` between files, and wait there, for a bounded time, until the hotfix is on its
way. An idle daemon pays one attribute test per file.
"""

from __future__ import annotations

import threading
import time

#: The longest a busy loop waits for hotfixes at once: a hotfix whose start is slow (a huge
#: tree's `git status`) must not stall the board behind it for that long.
LONGEST_WAIT = 0.25


class Precedence:
    """Holders (a hotfix event being read, a hotfix not yet spawned) keep the gate shut;
    `give_way` waits while it is, at most `longest` seconds after the latest `hold`."""

    def __init__(self, longest: float = LONGEST_WAIT) -> None:
        self._longest = longest
        self._guard = threading.Lock()
        self._holders: set[str] = set()
        self._open = threading.Event()
        self._open.set()
        self._until = 0.0
        self._skip_until = 0.0  # after a wait that ran out: no more waiting for a while
        #: Read without the lock on the fast path: a stale True costs one Event check.
        self.held = False

    def hold(self, key: str) -> None:
        """Shut the gate for `key` (idempotent) until `release(key)`."""
        with self._guard:
            self._holders.add(key)
            self._until = time.monotonic() + self._longest
            self._open.clear()
            self.held = True

    def release(self, key: str) -> None:
        """`key` no longer needs the interpreter to itself (idempotent)."""
        with self._guard:
            self._holders.discard(key)
            if not self._holders:
                self.held = False
                self._open.set()

    def open(self) -> None:
        """Every holder dropped at once (the daemon is stopping: nothing more starts)."""
        with self._guard:
            self._holders.clear()
            self.held = False
            self._open.set()

    def give_way(self) -> None:
        """Called between units of bulk work: wait while a hotfix starts (bounded)."""
        if not self.held:
            return
        now = time.monotonic()
        left = self._until - now
        if left > 0 and now >= self._skip_until and not self._open.wait(left):
            # Hotfixes kept coming for a whole wait: the board gets as long again before
            # the next one (never starved by a stream of hotfix files).
            self._skip_until = time.monotonic() + self._longest

    def holders(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._holders)
