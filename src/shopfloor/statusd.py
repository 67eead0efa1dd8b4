"""`status` from what is already known: the daemon answers over a unix socket, else the
persisted status index answers.

The socket is `.shopfloor/status.sock`, mode 0600 inside the 0700 `.shopfloor/`: only this
user can connect. It is bound under a temporary name in the same folder, made 0600, then
renamed into place, so it is never reachable with a wider mode, and a stale socket left by
a killed daemon is replaced in the same rename (the daemon holds the daemon lock, so no live
server owns it). A unix socket's path is limited to 107 bytes; a deeper repository uses
`/tmp/shopfloor-<uid>/<repo id>.sock` instead (`paths.repo_identity`: one per repository),
the folder 0700 and checked to be this user's and no symlink, by the server and the client.
Both ends also check the other's uid (SO_PEERCRED).

Protocol: the client sends one line, `status <version>\\n`; the server answers `ok\\n` and
the document, or `no <why>\\n`, and closes. A daemon of another version is not asked twice:
the client falls back. The client gives up after a second (a stopped or hung daemon), and
then answers from the status index itself (`status_text`).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shopfloor import __version__
from shopfloor.defaults import CONFIG_FILE
from shopfloor.status_index import TASK_LANES, StatusIndex

if TYPE_CHECKING:
    from pathlib import Path

    from shopfloor.journal import Journal

SOCKET_NAME = "status.sock"
#: sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH = 107
CLIENT_TIMEOUT = 1.0
#: How long `stop` waits for an answer or a listing in progress (the daemon's stop is bounded).
STOP_WAIT = 0.5
#: Every lane is re-listed (one stat a file) this often, between questions, by the server
#: thread: a lost inotify event cannot leave the daemon's answer stale for longer.
RELIST_EVERY = 60.0
_REQUEST = f"status {__version__}\n".encode()
_INDEX_FILE = ("cache", "status-index")


def index_path(root: str) -> str:
    return os.path.join(root, ".shopfloor", *_INDEX_FILE)


def _short_dir() -> str:
    return os.path.join("/tmp", f"shopfloor-{os.getuid()}")


def socket_path(root: str) -> str:
    """Where this repository's daemon listens (see the module doc for the fallback)."""
    path = os.path.join(root, ".shopfloor", SOCKET_NAME)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    from pathlib import Path

    from shopfloor.paths import repo_identity

    return os.path.join(_short_dir(), repo_identity(Path(root)) + ".sock")


def _private_dir_ok(path: str, create: bool) -> bool:
    """The fallback folder: ours, a real folder (no symlink), 0700."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


# ---------------------------------------------------------------------------- client


def find_root(directory: str | None = None) -> str | None:
    """`project.locate` without the board: the nearest folder with shopfloor.toml, resolved."""
    here = os.path.realpath(directory or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(here, CONFIG_FILE)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def ask(root: str, timeout: float = CLIENT_TIMEOUT) -> str | None:
    """The daemon's `status --json` text, or None: no daemon, a stale socket, another
    version, or silence for `timeout` seconds at any step (a stopped or hung daemon)."""
    path = socket_path(root)
    if os.path.dirname(path) != os.path.join(root, ".shopfloor") and not _private_dir_ok(
        os.path.dirname(path), create=False
    ):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)  # per step: a hung daemon is given up on, a busy one not
        sock.connect(path)
        if _peer_uid(sock) != os.getuid():
            return None
        sock.sendall(_REQUEST)
        chunks = []
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:  # refused (stale socket), missing, timed out, reset
        return None
    finally:
        sock.close()
    answer = b"".join(chunks)
    if not answer.startswith(b"ok\n"):
        return None
    return answer[3:].decode("utf-8")


def status_text(root: str, ask_daemon: bool = True) -> str | None:
    """`status --json`'s one-line text: from the daemon if one answers, else from the
    persisted index (refreshed and written back). None when the board has files that are
    not tasks: the caller's sweep quarantines them, as `status` always did."""
    if ask_daemon:
        text = ask(root)
        if text is not None:
            return text
    from pathlib import Path

    from shopfloor import statusdoc

    path = index_path(root)
    index = StatusIndex.load(root, path)
    try:
        text = statusdoc.document_text(Path(root), index)
    except (TypeError, ValueError, IndexError):  # a record damaged in a way load let pass
        index = StatusIndex(root)
        text = statusdoc.document_text(Path(root), index)
    index.save(path)
    if index.has_problems():
        return None
    return text


# ---------------------------------------------------------------------------- server


class StatusServer:
    """The daemon's status answerer: an index kept current by the watcher's lane events,
    and a thread answering on the socket. `start` never raises: without a socket, `status`
    still answers from files."""

    def __init__(
        self,
        root: Path,
        journal: Callable[[], Journal],
        log: Callable[..., object] | None = None,
        wait_for_board: bool = False,
        give_way: Callable[[], None] | None = None,
    ) -> None:
        self.root = str(root.resolve())
        self.path = socket_path(self.root)
        self._journal = journal  # the daemon's own (see statusdoc.extras_of)
        self._log = log
        self._give_way = give_way  # called between files of a listing (see precedence.py)
        self._index = StatusIndex(self.root)  # loaded in the thread: start-up waits not
        self._dirty: set[str] = set(TASK_LANES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # A daemon's: the first listing (a stat of every task file) waits for `board_ready`,
        # or for a first question, so that it does not compete with the daemon's start-up.
        self._board_ready = threading.Event()
        if not wait_for_board:
            self._board_ready.set()
        self._wake_r = self._wake_w = -1  # a pipe from `start` on: a Daemon never run has none
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None

    def mark_dirty(self, lane: str) -> None:
        """A watcher saw `lane` change: re-list it before the next answer."""
        with self._lock:
            self._dirty.add(str(lane))

    def mark_dirty_all(self) -> None:
        with self._lock:
            self._dirty.update(TASK_LANES)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # a listing problem must not end the daemon
            self._say("status.error", error=repr(exc))

    def start(self) -> bool:
        try:
            self._listener = self._bind()
        except OSError as exc:
            self._say("status.socket_unavailable", path=self.path, error=str(exc))
            return False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="status", daemon=True)
        self._thread.start()
        return True

    def _bind(self) -> socket.socket:
        folder = os.path.dirname(self.path)
        if folder != os.path.join(self.root, ".shopfloor") and not _private_dir_ok(folder, True):
            raise OSError(f"{folder} is not a private folder of this user")
        # No longer than the final name (a pid has at most 7 digits): it fits where that fits.
        temp = os.path.join(folder, f".s-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(temp)
            os.chmod(temp, 0o600)
            listener.listen(16)
            os.rename(temp, self.path)  # replaces a stale socket of a killed daemon
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return listener

    def stop(self) -> None:
        """Stop answering (promptly: the thread waits on a pipe too), remove our socket,
        and keep the index for the next `status` without a daemon."""
        self._stop.set()
        if self._thread is None:
            return  # never started
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=STOP_WAIT)
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:  # not a successor's socket
                    os.unlink(self.path)
        if not self._thread.is_alive():  # else it is mid-listing: it ends with the process
            self._index.save(index_path(self.root))
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def board_ready(self) -> None:
        """The daemon is ready: list the board now (if not asked meanwhile)."""
        self._board_ready.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"r")

    def _until_ready_or_asked(self, listening: int) -> None:
        while not self._board_ready.is_set() and not self._stop.is_set():
            try:
                ready, _, _ = select.select([listening, self._wake_r], [], [])
            except (OSError, ValueError):  # closed by a `stop` that did not wait for us
                return
            if listening in ready:
                return  # a question: answered from a listing made now
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 64)  # board_ready's byte (or stop's: see the loop)

    def _serve(self) -> None:
        assert self._listener is not None
        self._until_ready_or_asked(self._listener.fileno())
        if self._stop.is_set():
            return
        self._guarded(self._first_listing)
        relist_at = time.monotonic() + RELIST_EVERY
        while not self._stop.is_set():
            listening = self._listener.fileno()
            wait = max(0.0, relist_at - time.monotonic())
            try:
                ready, _, _ = select.select([listening, self._wake_r], [], [], wait)
            except (OSError, ValueError):  # closed by a `stop` that did not wait for us
                return
            if self._stop.is_set():
                return
            if time.monotonic() >= relist_at:  # between questions, not while one waits
                self.mark_dirty_all()
                self._guarded(self._refresh)
                relist_at = time.monotonic() + RELIST_EVERY
            if listening not in ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    self._answer(conn)
                except Exception as exc:  # one bad exchange must not end the server
                    self._say("status.error", error=repr(exc))

    def _first_listing(self) -> None:
        """Before the first question: from the persisted index, only changed files read."""
        self._index = StatusIndex.load(self.root, index_path(self.root))
        self._refresh()
        self._index.save(index_path(self.root))

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        if _peer_uid(conn) != os.getuid():
            return
        request = b""
        while not request.endswith(b"\n") and len(request) < 256:
            chunk = conn.recv(256)
            if not chunk:
                return
            request += chunk
        if request != _REQUEST:
            conn.sendall(b"no unknown request or another version\n")
            return
        conn.sendall(b"ok\n" + self.document().encode("utf-8"))

    def document(self) -> str:
        """The `status --json` text of the board as the daemon knows it now."""
        from pathlib import Path

        from shopfloor import statusdoc

        self._refresh()
        root = Path(self.root)
        extras = {**statusdoc.extras_of(self._journal()), "engine": statusdoc.engine_json(root)}
        return statusdoc.encode(self._index, extras, statusdoc.config_verdict(root))

    def _refresh(self) -> None:
        with self._lock:
            lanes = set(self._dirty)
            self._dirty.clear()
        lanes.add("hotfix")  # a few files, and a hotfix watcher of its own may bypass us
        try:
            self._index.refresh(sorted(lanes), self._give_way)
        except BaseException:
            with self._lock:
                self._dirty.update(lanes)
            raise

    def _say(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log(event, **fields)
