"""Crash-safe file primitives: atomic replace, durable rename, exclusive create."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

#: The names of the temp files `atomic_write` and `create_exclusive` make, and nothing else:
#: `.<name>.sf-<12 hex digits>.tmp`. Start-up clean-up removes exactly these (a process
#: killed mid-write leaves one behind); an editor's or a person's files never match.
TEMP_RE = re.compile(r"\..+\.sf-[0-9a-f]{12}\.tmp")

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symlink"),
)


class NotRegularFileError(OSError):
    """A FIFO, socket, device or directory where a regular file was expected."""


def kind_of(mode: int) -> str:
    """What a file is, in words for a person (`st_mode` from stat or lstat)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "an unknown kind of file"


def open_regular(path: Path) -> int:
    """A read-only fd on a regular file; NotRegularFileError for anything else.

    Callers stat first and never get here with a FIFO or device. O_NONBLOCK is for the file
    swapped for a FIFO between that stat and this open: opening a FIFO blocks until a writer
    comes, which would hang the daemon; non-blocking, it returns at once and fstat refuses it.
    (O_NONBLOCK changes nothing for reads of a regular file.)
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(f"not a regular file: {kind_of(mode)}")
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of a regular file (one more than allowed tells "too big")."""
    fd = open_regular(path)
    try:
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _new_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A fresh temp file beside `path`, unique per writer (never shared by parallel writers)."""
    while True:
        tmp = path.parent / f".{path.name}.sf-{secrets.token_hex(6)}.tmp"
        try:
            # O_EXCL: never reuse another writer's temp, nor follow a planted symlink.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue  # 48 random bits taken: draw again


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create, rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes, durable: bool = True) -> None:
    """Replace `path` so that a reader sees the old or the new file, never a torn one.

    `durable=False` skips the fsyncs: still atomic, but a power loss may undo it. For
    bookkeeping a crash makes moot anyway (run folders), where fsyncs would slow a hotfix.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _new_temp(path, 0o600)  # private until the chmod below copies the old mode
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def create_exclusive(path: Path, data: str) -> None:
    """Create a new file durably; FileExistsError if the name is taken (never clobbers).

    Safe for many processes racing for one name: each writes its own temp file, and exactly
    one link(2) wins; the others get FileExistsError and can try the next name.
    """
    fd, tmp = _new_temp(path, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        # link(2) fails if the target exists, so a concurrent writer can never be overwritten.
        os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """rename(2) that fails with FileExistsError instead of replacing `dst` (renameat2)."""
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    # Filesystems without RENAME_NOREPLACE: check, then rename (a narrow race, documented).
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(errno.EEXIST, "file exists", str(dst))
    os.rename(src, dst)


_RENAME_EXCHANGE = 2


class FileChangedError(OSError):
    """Another writer replaced the file since it was read: re-read and try again."""


def _exchange(a: Path, b: Path) -> bool:
    """Swap two names atomically; False where the filesystem cannot (then the caller falls back).

    FileNotFoundError when either is missing, which is the point: a file a person moved away
    is never re-created by a late writer.
    """
    if _renameat2 is None:
        return False
    rc = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def replace_if_same(
    path: Path, data: str, expect: os.stat_result, durable: bool = True, sync_dir: bool = True
) -> None:
    """Replace `path` with `data`, but only if it is still the file `expect` (an lstat) saw.

    Compare-and-swap for task files that people edit and move at any moment:
    FileNotFoundError if it is gone (never re-created), FileChangedError if an editor saved a
    new version meanwhile (that version is put back untouched; re-read and retry).
    `sync_dir=False` leaves the folder's fsync to a `durable_rename` that follows at once.
    """
    mode = expect.st_mode & 0o777 if not _is_link(expect) else 0o644
    fd, tmp = _new_temp(path, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8"))
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask does not narrow a task file's mode
        if _exchange(tmp, path):
            if not same_file(os.lstat(tmp), expect):
                _put_back(tmp, path)  # not ours to replace: the other writer's file goes back
                raise FileChangedError(errno.ESTALE, "changed by another writer", str(path))
        else:
            if not same_file(os.lstat(path), expect):  # a narrow race without renameat2
                raise FileChangedError(errno.ESTALE, "changed by another writer", str(path))
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if durable and sync_dir:
        fsync_dir(path.parent)


def _put_back(theirs: Path, path: Path) -> None:
    try:
        _exchange(theirs, path)
    except FileNotFoundError:  # ours was moved away meanwhile: theirs takes the name back
        _rename_noreplace(theirs, path)


def _is_link(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISLNK(st.st_mode)


def durable_rename(src: Path, dst: Path, data_synced: bool = False) -> None:
    """rename(2) within one filesystem, never replacing an existing file, then fsync both dirs.

    Works for any kind of file (quarantine moves FIFOs and sockets too): only a regular
    file's data is fsynced, and nothing else is ever opened. `data_synced`: the caller has
    just fsynced the file's data (a transition's write), so it is not fsynced again.
    """
    move_noreplace(src, dst, durable=True, data_synced=data_synced)


def move_noreplace(src: Path, dst: Path, durable: bool, data_synced: bool = False) -> None:
    """`durable_rename`, or with `durable=False` the rename alone: it survives a kill -9, and
    a power loss may undo it (for a move whose loss the crash protocol treats as not made)."""
    if durable and not data_synced and stat.S_ISREG(os.lstat(src).st_mode):
        _fsync_file(src)
    _rename_noreplace(src, dst)
    if durable:
        fsync_dir(dst.parent)
        if src.parent != dst.parent:
            fsync_dir(src.parent)


def _fsync_file(path: Path) -> None:
    """fsync a regular file's data; skipped if it was swapped for something else meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            return  # now a symlink or a socket: no data of ours to make durable
        raise
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the duration of the block (flock, released on crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # our locks live in private .shopfloor/
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
