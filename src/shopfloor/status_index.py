"""The board's listing as pre-encoded JSON: what `status` prints, kept per task file.

`status` on 10,000 tasks must not parse 10,000 front matters, build 10,000 paths or encode
10,000 dicts each time. The index keeps, per task file (`lane/name`), its stat stamp
(inode, size, mtime_ns, ctime_ns), its id and the JSON of its entry in `status --json`
(`"tasks"`), already made terminal-safe (`display.safe_json`). A refresh is one `scandir`
per lane and one `stat` per file; only a file whose stamp changed is read again, through
the board's own reader (`Board._read_entry`), so the rules for what is a task stay in one
place. As git does with its index, a file modified in the last two seconds is never trusted
(an edit within the same clock tick cannot hide behind a stale stamp) and never persisted.

Two owners: the daemon keeps one in memory (`statusd`, refreshed for the lanes its watcher
saw change), and a `status` without a daemon loads the persisted copy,
`.shopfloor/cache/status-index` (marshal: the fastest load in the standard library), refreshes
it and writes it back if anything changed (an atomic replace: concurrent writers each leave a
whole file; the last one wins). A file that cannot be loaded (damaged, another version,
another repository) is ignored and rebuilt. Delete it any time.
"""

from __future__ import annotations

import json
import marshal
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shopfloor import __version__
from shopfloor.display import safe_json
from shopfloor.words import Lane

if TYPE_CHECKING:
    from shopfloor.board import Board

#: The lanes that hold task files, by name (what a record's key starts with).
TASK_LANES = tuple(lane.value for lane in Lane if lane is not Lane.INVALID)
_FORMAT = f"status-index 1 {__version__}"
#: Files modified more recently than this are read every time (racy-clean, like git).
SETTLED_NS = 2_000_000_000
_TEMP_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload")
_ERROR_SUFFIX = ".error.txt"

#: (st_ino, st_size, st_mtime_ns, st_ctime_ns, task id, the entry's JSON)
Record = tuple[int, int, int, int, str, str]


def is_temp_name(name: str) -> bool:
    """board.is_temp_name, without importing the board (and the task parser) for a listing."""
    return name.startswith(".") or name.endswith(_TEMP_SUFFIXES) or name.startswith("#")


def task_json(header: dict[str, Any], lane: str, name: str) -> dict[str, Any]:
    """A task's entry in `status --json`: `actions.entry_json`, from the header's JSON."""
    return {**header, "lane": lane, "path": f"tasks/{lane}/{name}"}


class StatusIndex:
    """Per lane, per file name: a Record. Not thread-safe: one owner refreshes and renders."""

    def __init__(self, root: str) -> None:
        self.root = root  # resolved, as Board.root
        self.tasks_dir = os.path.join(root, "tasks")
        self.lanes: dict[str, dict[str, Record]] = {}
        #: Per lane: (path relative to the root, reason) of files that are not tasks.
        self.problems: dict[str, list[tuple[str, str]]] = {}
        self.changed = False  # since loaded: worth writing back
        self._tasks: str | None = None  # the rendered "tasks" array, until a lane changes
        self._board: Board | None = None

    # ------------------------------------------------------------------ refreshing

    def refresh(
        self,
        lanes: tuple[str, ...] | list[str] = TASK_LANES,
        pause: Callable[[], None] | None = None,
    ) -> None:
        """Re-list `lanes`; `pause` is called before each file (the daemon's: a hotfix
        starting goes first)."""
        for lane in lanes:
            self._refresh_lane(lane, pause)

    def _refresh_lane(self, lane: str, pause: Callable[[], None] | None = None) -> None:
        old = self.lanes.get(lane, {})
        new: dict[str, Record] = {}
        problems: list[tuple[str, str]] = []
        trusted_before = time.time_ns() - SETTLED_NS
        try:
            it = os.scandir(os.path.join(self.tasks_dir, lane))
        except (FileNotFoundError, NotADirectoryError):
            it = None
        if it is not None:
            with it:
                for dirent in it:
                    if pause is not None:
                        pause()
                    name = dirent.name
                    rec = old.get(name)  # a record: a task file when last seen, no temp name
                    if rec is None and (is_temp_name(name) or dirent.is_dir()):
                        continue
                    if rec is not None and not dirent.is_symlink():
                        try:
                            st = dirent.stat()  # the one stat of an unchanged file
                        except OSError:
                            st = None
                        if (
                            st is not None
                            and rec[2] < trusted_before
                            and rec[0] == st.st_ino
                            and rec[1] == st.st_size
                            and rec[2] == st.st_mtime_ns
                            and rec[3] == st.st_ctime_ns
                        ):
                            new[name] = rec
                            continue
                    problem = self._read(lane, dirent, new)
                    if problem is not None:
                        problems.append((f"tasks/{lane}/{name}", problem))
        if new != old:
            self.lanes[lane] = dict(sorted(new.items()))  # kept in Board.scan's order
            self.changed = True
            self._tasks = None
        if problems or self.problems.get(lane):
            self.problems[lane] = problems

    def _read(self, lane: str, dirent: os.DirEntry[str], into: dict[str, Record]) -> str | None:
        """Read a new or changed file with the board's reader; why it is no task, or None."""
        from shopfloor.errors import TaskFormatError

        board = self._the_board()
        try:
            entry = board._read_entry(Lane(lane), f"{lane}/{dirent.name}", dirent)
            st = dirent.stat()
        except TaskFormatError as exc:
            return str(exc)
        except OSError as exc:
            return f"unreadable: {exc}"
        encoded = json.dumps(
            task_json(entry.header.to_json(), lane, dirent.name), ensure_ascii=False
        )
        into[dirent.name] = (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            entry.id,
            safe_json(encoded),
        )
        return None

    def _the_board(self) -> Board:
        if self._board is None:
            from pathlib import Path

            from shopfloor.board import Board

            self._board = Board(Path(self.root), header_cache=False)
        return self._board

    # ------------------------------------------------------------------ reading

    def has_problems(self) -> bool:
        return any(self.problems.values())

    def unreadable(self) -> list[dict[str, str]]:
        return [
            {"path": path, "reason": reason}
            for lane in sorted(self.problems)
            for path, reason in self.problems[lane]
        ]

    def counts(self) -> dict[str, int]:
        """Tasks per lane, every lane named in Lane order (invalid/ is the caller's)."""
        return {lane.value: len(self.lanes.get(lane.value, ())) for lane in Lane}

    def _ordered(self) -> list[tuple[str, str, Record]]:
        """(lane, name, record) sorted as Board.scan sorts its entries: by lane, then name."""
        return [
            (lane, name, rec)
            for lane, records in sorted(self.lanes.items())
            for name, rec in records.items()  # sorted by name: see _refresh_lane
        ]

    def tasks_json(self) -> str:
        """The `"tasks"` array of `status --json`, encoded once per change of the board."""
        if self._tasks is None:
            fragments = [
                rec[5] for _, records in sorted(self.lanes.items()) for rec in records.values()
            ]
            self._tasks = "[" + ", ".join(fragments) + "]"
        return self._tasks

    def ids_with_status(self, lane: str, status: str) -> list[str]:
        """The ids in `lane` whose status is `status` (decodes only that lane's entries)."""
        return [
            rec[4]
            for rec in self.lanes.get(lane, {}).values()
            if json.loads(rec[5]).get("status") == status
        ]

    def conflicts(self) -> list[dict[str, Any]]:
        """Ids filed more than once, as `status --json` lists them (sorted by id)."""
        ids = Counter(rec[4] for records in self.lanes.values() for rec in records.values())
        twice = {task_id for task_id, n in ids.items() if n > 1}
        if not twice:
            return []
        paths: dict[str, list[str]] = {}
        for lane, name, rec in self._ordered():
            if rec[4] in twice:
                paths.setdefault(rec[4], []).append(f"tasks/{lane}/{name}")
        return [{"id": task_id, "paths": paths[task_id]} for task_id in sorted(paths)]

    def quarantined(self) -> list[dict[str, str]]:
        """invalid/'s files with their reasons; the board's reader only if there are any."""
        directory = os.path.join(self.tasks_dir, Lane.INVALID.value)
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        if not any(not n.endswith(_ERROR_SUFFIX) and not is_temp_name(n) for n in names):
            return []
        board = self._the_board()
        return [{"path": board.relative(q.path), "reason": q.reason} for q in board.quarantined()]

    def unknown_folders(self) -> list[str]:
        known = {lane.value for lane in Lane}
        with os.scandir(self.tasks_dir) as it:
            return sorted(
                f"tasks/{e.name}"
                for e in it
                if e.is_dir() and e.name not in known and not e.name.startswith(".")
            )

    # ------------------------------------------------------------------ persisting

    @classmethod
    def load(cls, root: str, path: str) -> StatusIndex:
        """The persisted index if it is whole (its checksum holds), this version's and this
        root's; else an empty one (the next refresh reads every file once)."""
        index = cls(root)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
            head, _, payload = raw.partition(b"\n\n")
            fmt, saved_root, crc = head.decode("utf-8", "surrogateescape").split("\n")
            if fmt != _FORMAT or saved_root != root or int(crc, 16) != zlib.crc32(payload):
                return index
            lanes = marshal.loads(payload)
        except (OSError, EOFError, ValueError, TypeError):
            return index
        if isinstance(lanes, dict):
            index.lanes = {lane: lanes[lane] for lane in TASK_LANES if lane in lanes}
        return index

    def save(self, path: str) -> None:
        """Write the index if it changed (atomic; only settled records; best effort)."""
        if not self.changed:
            return
        from pathlib import Path

        from shopfloor import _fs
        from shopfloor.paths import make_private_dir

        settled_before = time.time_ns() - SETTLED_NS
        lanes = {
            lane: {name: rec for name, rec in records.items() if rec[2] < settled_before}
            for lane, records in self.lanes.items()
        }
        payload = marshal.dumps(lanes)
        head = f"{_FORMAT}\n{self.root}\n{zlib.crc32(payload):08x}\n\n"
        try:
            target = Path(path)
            make_private_dir(target.parent)
            _fs.atomic_write(target, head.encode("utf-8", "surrogateescape") + payload, False)
        except OSError:
            return  # a cache that cannot be written is just a slower listing
        self.changed = False
