"""The board: lane folders whose contents are the state, read fast and moved atomically."""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shopfloor import _fs, defaults, task
from shopfloor._header_cache import (
    ROW_FIELDS,
    HeaderCache,
    Record,
    Row,
    header_of,
    stamp_of,
)
from shopfloor.errors import (
    AmbiguousIdError,
    ConflictError,
    NotAProjectError,
    TaskFormatError,
    TaskNotFoundError,
    UnsafePathError,
)
from shopfloor.paths import StatePaths
from shopfloor.words import Lane as Lane  # re-exported: the board is where lanes are used

#: Lanes that hold task files (invalid/ holds what could not be read).
TASK_LANES = tuple(lane for lane in Lane if lane is not Lane.INVALID)
ERROR_SUFFIX = ".error.txt"
_TEMP_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_C1_RE = re.compile(r"[\x80-\x9f]")  # with _CONTROL_RE: Unicode category Cc, exactly
_NUMBERED_ID_RE = re.compile(rf"{re.escape(defaults.ID_PREFIX)}(\d+)")
_COMPLETE_NUMBERED_ID_RE = re.compile(rf"{re.escape(defaults.ID_PREFIX)}\d{{{defaults.ID_WIDTH},}}")
#: Our temp files younger than this may belong to a live writer (`shopfloor new` running
#: while the daemon starts); older ones were left by a process killed mid-write.
STALE_TEMP_SECONDS = 60.0


def is_temp_name(name: str) -> bool:
    """Editor swap files, our temp files, dotfiles: never tasks, never quarantined."""
    return name.startswith(".") or name.endswith(_TEMP_SUFFIXES) or name.startswith("#")


def check_name(name: str) -> None:
    """Refuse a file name that could leave its lane or confuse a terminal."""
    if not name or "/" in name or "\\" in name or "\x00" in name:
        raise UnsafePathError(f"unsafe file name {name!r}: path separators are not allowed")
    if ".." in name:
        raise UnsafePathError(f"unsafe file name {name!r}: '..' is not allowed")
    if _CONTROL_RE.search(name) or _C1_RE.search(name):
        raise UnsafePathError(f"unsafe file name {name!r}: control characters are not allowed")


def require_regular(st: os.stat_result) -> None:
    """Refuse a FIFO, socket or device before it is opened: opening a FIFO blocks forever."""
    if not stat.S_ISREG(st.st_mode):
        raise TaskFormatError(f"not a regular file: {_fs.kind_of(st.st_mode)}")


def check_task_id(task_id: str) -> None:
    """Ids from people (CLI, chat): the rules of a file, checked before any path use.

    Up to 255 characters: a hotfix's full slug (longer than its id) is accepted.
    """
    check_name(task_id)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", task_id):
        raise UnsafePathError(f"{task_id!r} is not a task id (like T-0042 or HOTFIX-db-down)")


_ID = ROW_FIELDS.index("id")
_STATUS = ROW_FIELDS.index("status")

#: How often `find` lists the board again when a task seems to be nowhere or in two places.
FIND_RETRIES = 2


def _hits(scan: Scan, task_id: str) -> list[Entry]:
    """The entries `task_id` names: its exact id, else what it is a prefix or slug of."""
    return [e for e in scan.entries if e.id == task_id] or _id_matches(scan.entries, task_id)


def _id_matches(entries: list[Entry], ref: str) -> list[Entry]:
    """Tasks a person's `ref` names when it is not an exact id: a hotfix's full slug (its id is
    cut at defaults.SLUG_MAX), else the tasks whose id starts with `ref`. A complete numbered
    id (T-1000) is never a prefix: T-1000 must not quietly name T-10004."""
    if ref.startswith(defaults.HOTFIX_PREFIX):
        slug = ref.removeprefix(defaults.HOTFIX_PREFIX)
        full = [
            e
            for e in entries
            if e.id.startswith(defaults.HOTFIX_PREFIX)
            and task.id_slug(e.header.title, limit=defaults.MAX_ID_CHARS) == slug
        ]
        if full:
            return full
    if _COMPLETE_NUMBERED_ID_RE.fullmatch(ref):
        return []
    return [e for e in entries if e.id.startswith(ref)]


class Entry:
    """One readable task file on the board.

    A scan of an unchanged board makes 50,000 of these from the header cache: the header and
    the path are then made on first use only (`id`, `status`, `name` and `lane` never need
    them), since most closed tasks are never looked at again."""

    __slots__ = ("_dir", "_header", "_name", "_path", "_row", "lane")

    def __init__(self, header: task.Header, lane: Lane, path: Path) -> None:
        self.lane = lane
        self._header: task.Header | None = header
        self._row: Row | None = None
        self._path: Path | None = path
        self._dir: Path | None = None
        self._name = path.name

    @classmethod
    def from_row(cls, row: Row, lane: Lane, directory: Path, name: str) -> Entry:
        """A cached file's entry: `row` is a header cache row (see _header_cache)."""
        entry = cls.__new__(cls)
        entry.lane = lane
        entry._header = None
        entry._row = row
        entry._path = None
        entry._dir = directory
        entry._name = name
        return entry

    @property
    def header(self) -> task.Header:
        if self._header is None:
            assert self._row is not None
            header = header_of(self._row)
            if header is None:  # cannot happen: a scan uses only rows of Header's width
                raise TaskFormatError("header cache row does not fit the header")
            self._header = header
        return self._header

    @property
    def path(self) -> Path:
        if self._path is None:
            assert self._dir is not None
            self._path = self._dir / self._name
        return self._path

    @property
    def id(self) -> str:
        return self._row[_ID] if self._header is None and self._row is not None else self.header.id

    @property
    def status(self) -> str:
        if self._header is None and self._row is not None:
            return str(self._row[_STATUS])
        return self.header.status

    @property
    def name(self) -> str:
        return self._name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return (self.header, self.lane, self.path) == (other.header, other.lane, other.path)

    __hash__ = None  # type: ignore[assignment]  # as the dataclass it was: mutable, unhashable

    def __repr__(self) -> str:
        return f"Entry(header={self.header!r}, lane={self.lane!r}, path={self.path!r})"


@dataclass(slots=True)
class Problem:
    """A file in a lane that cannot be a task, and why."""

    path: Path
    reason: str
    adoptable: bool = False  # a plain-text request in inbox/ that can be given front matter


@dataclass(slots=True)
class Quarantined:
    """A file already in invalid/, with the reason from its sidecar."""

    path: Path
    reason: str


@dataclass(slots=True)
class Scan:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    invalid: list[Quarantined] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> dict[str, list[Entry]]:
        by_id: dict[str, list[Entry]] = {}
        for entry in self.entries:
            by_id.setdefault(entry.id, []).append(entry)
        return {k: v for k, v in by_id.items() if len(v) > 1}

    def lane(self, lane: Lane) -> list[Entry]:
        return [e for e in self.entries if e.lane is lane]

    def by_lane(self, lanes: Iterable[Lane]) -> dict[Lane, list[Entry]]:
        """`lane(lane)` for each of `lanes`, in one pass over the entries."""
        found: dict[Lane, list[Entry]] = {lane: [] for lane in lanes}
        for entry in self.entries:
            if entry.lane in found:
                found[entry.lane].append(entry)
        return found


def _by_name(entry: Entry) -> str:
    return entry.name


def _by_value(lane: Lane) -> str:
    return lane.value


class ScanStopped(Exception):
    """A scan given a `stop` event ended early because it was set (the daemon is stopping)."""


def _read_head(path: Path, size: int) -> str:
    """Enough of the file to hold its front matter, decoded and checked for binary content."""
    fd = _fs.open_regular(path)  # os.open, not open(): a third of the cost
    try:
        raw = os.read(fd, defaults.HEAD_BYTES)
        if len(raw) < size and b"\n---" not in raw[3:] and b"\n..." not in raw[3:]:
            raw += os.read(fd, defaults.MAX_FRONT_MATTER_BYTES)
    finally:
        os.close(fd)
    if len(raw) < size:
        raw = raw[: raw.rfind(b"\n") + 1]  # never decode half a character
    return task.decode(raw)


class Board:
    """The lanes under `<root>/tasks`: reading, creating, quarantining. Every change to a
    task's state is `lifecycle.apply`'s; the board only files new tasks and sets aside what
    cannot be read."""

    def __init__(self, root: Path, header_cache: bool = True) -> None:
        self.root = root.resolve()
        self.tasks_dir = self.root / defaults.TASKS_DIR
        self.paths = StatePaths(self.root)
        self.state_dir = self.paths.state_dir
        if not self.tasks_dir.is_dir():
            raise NotAProjectError(f"no tasks/ folder in {self.root}; run `shopfloor init` there")
        if not self.tasks_dir.resolve().is_relative_to(self.root):
            raise UnsafePathError(f"{self.tasks_dir} is a symlink leaving the repository")
        # One-shot commands (`status`) list from the header cache; the daemon keeps its own
        # view in memory and must not rewrite a 10,000-entry file on its hotfix path.
        self._headers = HeaderCache(self.paths.header_cache, header_cache)

    # ------------------------------------------------------------------ paths

    def lane_dir(self, lane: Lane) -> Path:
        return self.tasks_dir / lane.value

    def ensure_lanes(self) -> None:
        for lane in Lane:
            self.lane_dir(lane).mkdir(parents=True, exist_ok=True)

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------ reading

    def scan(
        self,
        lanes: Iterable[Lane] = TASK_LANES,
        stop: threading.Event | None = None,
        save_cache: bool = True,
        pause: Callable[[], None] | None = None,
    ) -> Scan:
        """Read every lane's front matter; problems are reported, nothing is moved.

        Raises ScanStopped as soon as `stop` is set: a half-read board is never returned.
        `save_cache=False` keeps what the header cache learnt in memory only (for now).
        `pause` is called before each file (the daemon's: a hotfix starting goes first)."""
        result = Scan()
        wanted = set(lanes)
        for lane in sorted(wanted, key=_by_value):  # each lane's entries come sorted by name
            self._scan_lane(lane, result, stop, pause)
        if save_cache:
            self._headers.save()
        if Lane.INVALID in wanted or wanted == set(TASK_LANES):
            result.invalid = self.quarantined()
        known = {lane.value for lane in Lane}
        with os.scandir(self.tasks_dir) as it:
            result.unknown = sorted(
                f"{defaults.TASKS_DIR}/{e.name}"
                for e in it
                if e.is_dir() and e.name not in known and not e.name.startswith(".")
            )
        return result

    def _scan_lane(
        self,
        lane: Lane,
        result: Scan,
        stop: threading.Event | None = None,
        pause: Callable[[], None] | None = None,
    ) -> None:
        directory = self.lane_dir(lane)
        try:
            it = os.scandir(directory)
        except FileNotFoundError:
            return
        # The lane's records by file name: an unchanged file costs its stat and a lookup.
        old = self._headers.lane(lane.value)
        new: dict[str, Record] = {}
        entries: list[Entry] = []
        width = len(ROW_FIELDS)
        fresh = False
        with it:
            for dirent in it:
                if stop is not None and stop.is_set():
                    raise ScanStopped(f"stopped while scanning {lane.value}/")
                if pause is not None:
                    pause()
                name = dirent.name
                rec = old.get(name)  # only regular, settled task files are ever recorded
                if rec is not None and not dirent.is_symlink():
                    try:
                        st = dirent.stat()
                    except OSError:
                        st = None
                    if (
                        st is not None
                        and rec[0] == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                        and len(rec[1]) == width
                    ):
                        new[name] = rec
                        entries.append(Entry.from_row(rec[1], lane, directory, name))
                        continue
                if is_temp_name(name) or dirent.is_dir():
                    continue
                try:
                    entry, record = self._read_entry_recorded(lane, dirent)
                except TaskFormatError as exc:
                    path = Path(dirent.path)
                    adoptable = lane is Lane.INBOX and self._is_plain_request(path)
                    result.problems.append(Problem(path, str(exc), adoptable))
                    continue
                except OSError as exc:
                    result.problems.append(Problem(Path(dirent.path), f"unreadable: {exc}"))
                    continue
                entries.append(entry)
                if record is not None:
                    new[name] = record
                    fresh = True
        entries.sort(key=_by_name)
        result.entries.extend(entries)
        # Without a new record, new holds a subset of old's names: equal sizes, same names.
        self._headers.replace_lane(lane.value, new, changed=fresh or len(new) != len(old))

    def read_entry(self, lane: Lane, name: str) -> Entry | None:
        """One file of a lane, read as a scan reads it, for a watcher that knows which file
        changed; None when it is gone, a folder, a temp file or not a readable task (the next
        scan says why)."""
        if is_temp_name(name):
            return None
        path = self.lane_dir(lane) / name
        try:
            check_name(name)
            link = os.lstat(path)
            if stat.S_ISDIR(link.st_mode):
                return None
            symlink = stat.S_ISLNK(link.st_mode)
            if symlink:
                self._check_link(path)
            st = os.stat(path) if symlink else link
            return self._read_file(lane, f"{lane.value}/{name}", path, symlink, st)
        except (OSError, TaskFormatError, UnsafePathError):
            return None

    def _read_entry(self, lane: Lane, key: str, dirent: os.DirEntry[str]) -> Entry:
        entry, record = self._read_entry_recorded(lane, dirent)
        if record is not None:
            self._headers.put(key, record[0], entry.header)
        return entry

    def _read_entry_recorded(
        self, lane: Lane, dirent: os.DirEntry[str]
    ) -> tuple[Entry, Record | None]:
        """The entry of one file of a lane, and the cache record to keep for it (None: not
        cacheable, not settled yet, or kept already)."""
        check_name(dirent.name)
        path = Path(dirent.path)
        symlink = dirent.is_symlink()
        if symlink:
            self._check_link(path)
        st = dirent.stat()  # the target's, for a symlink: a link to a FIFO is a FIFO
        return self._read_file_recorded(lane, f"{lane.value}/{dirent.name}", path, symlink, st)

    def _read_file(
        self, lane: Lane, key: str, path: Path, symlink: bool, st: os.stat_result
    ) -> Entry:
        entry, record = self._read_file_recorded(lane, key, path, symlink, st)
        if record is not None:
            self._headers.put(key, record[0], entry.header)
        return entry

    def _read_file_recorded(
        self, lane: Lane, key: str, path: Path, symlink: bool, st: os.stat_result
    ) -> tuple[Entry, Record | None]:
        require_regular(st)
        if not path.name.endswith(".md"):
            raise TaskFormatError("not a task file: task file names end in .md")
        cacheable = not symlink
        stamp = stamp_of(st)
        if cacheable and (row := self._headers.get(key, stamp)) is not None:
            cached = header_of(row)
            if cached is not None:
                return Entry(cached, lane, path), None  # already kept
        size = st.st_size
        if size > defaults.MAX_TASK_BYTES:
            raise TaskFormatError(
                f"file is {size:,} bytes; task files are limited to {defaults.MAX_TASK_BYTES:,}"
            )
        if size == 0:
            raise TaskFormatError("empty file")
        header = task.read_header_fast(_read_head(path, size))
        record = self._headers.record(stamp, header) if cacheable else None
        return Entry(header, lane, path), record

    def _check_link(self, path: Path) -> None:
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise UnsafePathError("broken or looping symlink") from None
        if not target.is_relative_to(self.root):
            raise UnsafePathError(f"symlink leaves the repository (points to {target})")

    def _is_plain_request(self, path: Path) -> bool:
        """A human's note dropped in inbox/ without front matter: text, small, not a symlink."""
        try:
            if not path.name.endswith(".md") or not stat.S_ISREG(path.lstat().st_mode):
                return False  # a symlink, a FIFO, a socket, a device: never opened here
            check_name(path.name)
            raw = _fs.read_regular(path, defaults.MAX_TASK_BYTES)
            if len(raw) > defaults.MAX_TASK_BYTES:
                return False
            text = task.decode(raw)
        except (OSError, TaskFormatError):
            return False
        return bool(text.strip()) and not task.has_front_matter(text)

    def quarantined(self) -> list[Quarantined]:
        directory = self.lane_dir(Lane.INVALID)
        if not directory.is_dir():
            return []
        found = []
        for path in sorted(directory.iterdir()):
            if path.name.endswith(ERROR_SUFFIX) or is_temp_name(path.name):
                continue
            sidecar = path.with_name(path.name + ERROR_SUFFIX)
            try:
                raw = _fs.read_regular(sidecar, defaults.MAX_FRONT_MATTER_BYTES)
                reason = raw.decode("utf-8", "replace").splitlines()[0]
            except (OSError, IndexError):
                reason = "no reason recorded"
            found.append(Quarantined(path, reason))
        return found

    def read_text(self, entry: Entry) -> str:
        """The whole file, re-validated (the header may have changed since the scan)."""
        if entry.path.is_symlink():
            self._check_link(entry.path)
        st = entry.path.stat()
        require_regular(st)  # swapped for a FIFO since the scan: refuse, never hang
        if st.st_size > defaults.MAX_TASK_BYTES:
            raise TaskFormatError(f"file is {st.st_size:,} bytes; task files are limited to 1 MiB")
        raw = self._read_bounded(entry.path)
        text = task.decode(raw)
        task.parse(text)
        return text

    @staticmethod
    def _read_bounded(path: Path) -> bytes:
        try:
            raw = _fs.read_regular(path, defaults.MAX_TASK_BYTES)
        except _fs.NotRegularFileError as exc:
            raise TaskFormatError(str(exc)) from None
        if len(raw) > defaults.MAX_TASK_BYTES:
            raise TaskFormatError(
                f"file is over {defaults.MAX_TASK_BYTES:,} bytes; task files are limited to 1 MiB"
            )
        return raw

    def find(self, task_id: str, scan: Scan | None = None) -> Entry:
        """The task a person means by `task_id`: its exact id, a hotfix's full slug, or a
        prefix of one id (a prefix of several is an error listing them)."""
        check_task_id(task_id)
        hits = _hits(scan or self.scan(), task_id)
        for _ in range(FIND_RETRIES if scan is None else 0):
            # Lanes are listed one after another: a task moved between two listings is seen
            # twice or not at all. Seen twice, a copy gone since is no conflict; else look again.
            hits = [e for e in hits if os.path.lexists(e.path)]
            if len(hits) == 1 or (len(hits) > 1 and len({e.id for e in hits}) > 1):
                break
            hits = _hits(self.scan(), task_id)
        if not hits:
            raise TaskNotFoundError(f"no task {task_id} on the board (see `shopfloor status`)")
        ids = sorted({e.id for e in hits})
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            raise AmbiguousIdError(f"{task_id} could be {shown}; give more of the id")
        if len(hits) > 1:
            where = ", ".join(self.relative(e.path) for e in hits)
            raise ConflictError(f"{hits[0].id} is in more than one place: {where}; keep one")
        return hits[0]

    # ------------------------------------------------------------------ writing

    def create(self, lane: Lane, name: str, text: str) -> Path:
        """A new task file; never replaces an existing one."""
        check_name(name)
        task.parse(text)  # we never write a file we could not read back
        path = self.lane_dir(lane) / name
        _fs.create_exclusive(path, text)
        return path

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move an unreadable file to invalid/ with a sidecar saying why. Never deletes."""
        invalid = self.lane_dir(Lane.INVALID)
        invalid.mkdir(parents=True, exist_ok=True)
        safe = _CONTROL_RE.sub("_", path.name).replace("..", "_.") or "unnamed"
        target = invalid / safe
        n = 1
        while target.exists() or target.is_symlink():
            target = invalid / f"{safe}.{n}"
            n += 1
        lane = path.parent.name
        note = (
            f"{reason}\n\noriginal: {defaults.TASKS_DIR}/{lane}/{path.name!r}\n"
            f"quarantined: {task.utc_now()}\n"
            "Fix the file, then move it back into a lane (e.g. tasks/inbox/).\n"
        )
        sidecar = target.with_name(target.name + ERROR_SUFFIX)
        _fs.atomic_write(sidecar, note)
        try:
            _fs.durable_rename(path, target)
        except BaseException:
            # The file stays reported in its lane; a note for a file not in invalid/ would lie.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)
            raise
        return target

    # ------------------------------------------------------------------ ids

    def allocate_id(self) -> str:
        """The next T-NNNN, unique even when many processes ask at once (flock + counter)."""
        self.paths.ensure()
        counter = self.paths.next_id
        with _fs.locked(self.paths.ids_lock):
            highest = self._highest_id_on_disk()
            with contextlib.suppress(FileNotFoundError, ValueError):
                highest = max(highest, int(counter.read_text().strip() or 0))
            number = highest + 1
            _fs.atomic_write(counter, f"{number}\n")
        return f"{defaults.ID_PREFIX}{number:0{defaults.ID_WIDTH}d}"

    def _highest_id_on_disk(self) -> int:
        highest = 0
        for lane in Lane:
            try:
                names = os.listdir(self.lane_dir(lane))
            except FileNotFoundError:
                continue
            for name in names:
                match = _NUMBERED_ID_RE.match(name)
                if match:
                    highest = max(highest, int(match.group(1)))
        return highest

    def hotfix_name(self, slug: str) -> tuple[str, str]:
        """(id, file name) for a new hotfix; a numeric suffix keeps repeated titles apart."""
        base = f"{defaults.HOTFIX_PREFIX}{slug}"
        taken = {p.stem for lane in Lane for p in self._names(lane)}
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        return candidate, f"{candidate}.md"

    def _names(self, lane: Lane) -> list[Path]:
        try:
            return [Path(n) for n in os.listdir(self.lane_dir(lane))]
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------------ hygiene

    def sweep(self, min_age: float = 0.0, lanes: Iterable[Lane] = TASK_LANES) -> Scan:
        """Quarantine unreadable files and adopt plain-text requests, then rescan.

        `min_age` (seconds since last modification) lets the daemon leave a file that a
        person is still writing alone for a moment instead of quarantining half a file.
        """
        lanes = list(lanes)
        scan = self.scan(lanes)
        if not scan.problems:
            return scan
        now = time.time()
        for problem in scan.problems:
            try:
                if min_age and now - problem.path.lstat().st_mtime < min_age:
                    continue
                if problem.adoptable:
                    self.adopt(problem.path)
                else:
                    self.quarantine(problem.path, problem.reason)
            except FileNotFoundError:
                continue  # moved away by someone else meanwhile: nothing to do
            except TaskFormatError:
                continue  # changed under us (no longer a plain note): the next sweep decides
            except OSError:
                continue  # cannot be moved (permissions, invalid/ not a folder): stays reported
        return self.scan(lanes)

    def adopt(self, path: Path) -> Entry:
        """Give a plain Markdown note in inbox/ an id and front matter, keeping its words.

        Renamed first, then rewritten if still the same file: a note a person moves or saves
        again meanwhile is never re-created or overwritten (FileNotFoundError/FileChangedError).
        """
        st = os.lstat(path)
        text = task.decode(self._read_bounded(path))
        lines = text.strip().splitlines()
        first = lines[0].lstrip("#").strip() if lines else ""
        title = (first or path.stem)[:120]
        request = "\n".join(lines[1:]) if lines and lines[0].startswith("#") else text
        now = task.utc_now()
        header = task.Header(id=self.allocate_id(), title=title, created=now, updated=now)
        new_text = task.render_new(
            header,
            sections={"Request": request.strip() or title},
            tracker=f"{now} board adopted {path.name!r} from inbox",
        )
        target = path.with_name(f"{header.id}-{task.slugify(title)}.md")
        _fs.durable_rename(path, target)
        _fs.replace_if_same(target, new_text, st)
        return Entry(header, Lane.INBOX, target)

    def clean_temps(self, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
        """Remove our own temp files left by a process killed mid-write; returns what went.

        Only names `_fs` makes (`_fs.TEMP_RE`), only regular files, only older than
        `older_than` seconds (a younger one may be a live writer's). Looks in the lanes and
        under .shopfloor/, but not in .shopfloor/worktrees/ (agents' checkouts are theirs).
        An editor's swap file or a person's dotfile never matches, so it is never touched.
        """
        cutoff = time.time() - older_than
        removed: list[Path] = []
        for directory in self._temp_dirs():
            try:
                names = os.listdir(directory)
            except OSError:
                continue  # gone or unreadable: nothing of ours to clean there
            for name in names:
                if not _fs.TEMP_RE.fullmatch(name):
                    continue
                path = directory / name
                try:
                    st = path.lstat()
                    if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                        path.unlink()
                        removed.append(path)
                except OSError:
                    continue  # removed meanwhile, or not ours to remove: start anyway
        return removed

    def _temp_dirs(self) -> list[Path]:
        dirs = [self.lane_dir(lane) for lane in Lane]
        worktrees = self.paths.worktrees_dir
        for top, subdirs, _files in os.walk(self.state_dir):  # never follows symlinks
            if Path(top) == self.state_dir:
                subdirs[:] = [d for d in subdirs if self.state_dir / d != worktrees]
            dirs.append(Path(top))
        return dirs

    def newest(self, lane: Lane, count: int) -> tuple[list[Entry], int]:
        """The `count` most recently written task files of `lane` (by mtime: every transition
        rewrites the file) and how many files the lane holds, reading only those `count`
        headers: what the web board shows of done/ and failed/ without reading thousands.
        Files that cannot be read are skipped here (`scan` reports them)."""
        try:
            with os.scandir(self.lane_dir(lane)) as it:
                files = [d for d in it if not is_temp_name(d.name) and not d.is_dir()]
        except FileNotFoundError:
            return [], 0
        stamped = []
        for dirent in files:
            with contextlib.suppress(OSError):
                stamped.append((dirent.stat().st_mtime_ns, dirent.name, dirent))
        entries = []
        for _, name, dirent in heapq.nlargest(count, stamped, key=lambda i: (i[0], i[1])):
            with contextlib.suppress(TaskFormatError, UnsafePathError, OSError):
                entries.append(self._read_entry(lane, f"{lane.value}/{name}", dirent))
        return entries, len(files)
