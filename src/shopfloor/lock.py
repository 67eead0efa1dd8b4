"""One daemon per repository: an flock on the repository folder itself.

Not on a file under .shopfloor/: deleting that folder under a running daemon must not let a
second one start. The kernel drops a flock when its holder dies, even by kill -9.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from shopfloor import _fs
from shopfloor.errors import ShopfloorError
from shopfloor.paths import StatePaths


class DaemonLockedError(ShopfloorError):
    """Another daemon holds this repository."""


@contextlib.contextmanager
def daemon_lock(root: Path) -> Iterator[None]:
    """One daemon per repository: flock on the repository root directory itself.

    Not on a file under .shopfloor/: deleting that folder under a running daemon must not let
    a second one start. The kernel drops a flock when its holder dies, even by kill -9. The
    owner's pid goes to .shopfloor/daemon.pid, only for the message a second daemon prints.
    """
    pid_file = StatePaths(root).daemon_pid
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DaemonLockedError(_already_running(root, pid_file)) from None
        StatePaths(root).ensure()
        _fs.atomic_write(pid_file, f"{os.getpid()}\n")
        try:
            yield
        finally:
            _forget_pid(pid_file)  # while still locked: no other daemon's pid can be there
    finally:
        os.close(fd)


def daemon_running(root: Path) -> bool:
    """Whether a daemon holds this repository's lock now.

    Read from /proc/locks (an flock on the repository folder's device and inode), never by
    taking the lock: a probe that held it for an instant could make a daemon starting at that
    instant refuse to run. Where /proc/locks cannot be read, a shared-lock probe decides.
    """
    st = os.stat(root)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            table = fh.read()
    except OSError:
        return _probe(root)
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 7405 fe:00:260072 0 EOF"; a waiter's line has a "->"
        if "FLOCK" in fields and "->" not in fields and key in fields:
            return True
    return False


def _probe(root: Path) -> bool:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _already_running(root: Path, pid_file: Path) -> str:
    try:
        owner = pid_file.read_text().strip()
    except OSError:
        owner = ""
    if owner.isdigit():
        return (
            f"a shopfloor daemon is already running for {root} (pid {owner}); "
            "stop it first (kill -TERM that pid)"
        )
    # Just starting (the pid is written after the lock), or .shopfloor/ was deleted under it.
    return (
        f"a shopfloor daemon is already running for {root} (pid unknown: "
        f"{pid_file.relative_to(root)} is missing); stop it first"
    )


def _forget_pid(pid_file: Path) -> None:
    with contextlib.suppress(OSError):
        if pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
