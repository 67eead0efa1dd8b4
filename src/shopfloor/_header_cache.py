"""A listing cache: each task file's header, keyed by what changes when the file changes.

Reading 10,000 front matters costs ~37 µs a file in Python; a stat and a lookup cost a few.
The key is (inode, size, mtime_ns, ctime_ns), so any write or rename-over is a miss (ctime
changes on every write). As git does with its index, a file changed in the last two seconds
is never cached: an edit within the same clock tick cannot hide behind a stale entry.
The cache is only an optimisation: delete it any time; a version change discards it.

Kept per lane (`{lane: {file name: (stamp, row)}}`): a scan looks a lane's files up by name
in one dict and replaces the lane's records at its end, so a daemon restarting on 50,000
closed tasks does a `stat` and a dict lookup per file, and no work per file for the files a
lane no longer holds. Every file is still stat'ed: an edit in place (`>>`, an editor that
rewrites the file) leaves the lane folder's mtime alone, so the folder's cannot vouch for its
files.

Stored with marshal, each header as a tuple of its fields (`ROW_FIELDS`): a daemon restarting
on 50,000 tasks loads it in a fraction of the time JSON dicts took (it is private to this
machine and this Python: .shopfloor/ is 0700 and the format names the Python version).
"""

from __future__ import annotations

import marshal
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shopfloor import __version__, _fs
from shopfloor.paths import make_private_dir
from shopfloor.task import Header

#: Header's fields in the order a cached row keeps them.
ROW_FIELDS = tuple(Header.__dataclass_fields__)
#: A cache written by another version, Python or Header is discarded.
_FORMAT = f"3:{__version__}:{sys.version_info[:2]}:{marshal.version}:{','.join(ROW_FIELDS)}"
#: Files modified more recently than this are read every time (racy-clean, like git).
SETTLED_SECONDS = 2.0
SETTLED_NS = int(SETTLED_SECONDS * 1e9)

Stamp = tuple[int, int, int, int]
#: A header as a tuple of its fields (ROW_FIELDS order; depends_on a tuple).
Row = tuple[Any, ...]
#: What a lane keeps per file name.
Record = tuple[Stamp, Row]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def row_of(header: Header) -> Row:
    return tuple(
        tuple(v) if isinstance(v, list) else v for v in (getattr(header, n) for n in ROW_FIELDS)
    )


def header_of(row: Row) -> Header | None:
    """The Header a row keeps; None if the row does not fit this Header."""
    try:
        header = Header(*row)
    except TypeError:
        return None
    header.depends_on = list(header.depends_on)  # stored as a tuple; a list is expected
    return header


def _split(key: str) -> tuple[str, str]:
    lane, _, name = key.partition("/")
    return lane, name


class HeaderCache:
    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        # Disabled: an always-empty cache that never reads or writes its file.
        self._lanes: dict[str, dict[str, Record]] | None = None if enabled else {}
        self._enabled = enabled
        self._changed = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Record]]:
        if self._lanes is None:
            try:
                raw = marshal.loads(self.path.read_bytes())
                ok = isinstance(raw, dict) and raw.get("format") == _FORMAT
                lanes = raw["lanes"] if ok else {}
                self._lanes = lanes if isinstance(lanes, dict) else {}
            except (OSError, ValueError, EOFError, KeyError, TypeError):
                self._lanes = {}
        return self._lanes

    def lane(self, lane: str) -> dict[str, Record]:
        """The records of `lane` as last saved or scanned (do not modify: see replace_lane)."""
        with self._lock:
            records = self._load().get(lane)
        return records if isinstance(records, dict) else {}

    def replace_lane(self, lane: str, records: dict[str, Record], changed: bool) -> None:
        """What a scan of the whole of `lane` found: its records from now on. `changed`: a
        record was added or dropped (worth saving)."""
        if not self._enabled:
            return
        with self._lock:
            self._load()[lane] = records
            self._changed = self._changed or changed

    def get(self, key: str, stamp: Stamp) -> Row | None:
        lane, name = _split(key)
        hit = self.lane(lane).get(name)
        return hit[1] if hit is not None and hit[0] == stamp else None

    def record(self, stamp: Stamp, header: Header) -> Record | None:
        """The record to keep for a file just read; None while it is not settled."""
        if not self._enabled or time.time_ns() - stamp[2] < SETTLED_NS:
            return None
        return (stamp, row_of(header))

    def put(self, key: str, stamp: Stamp, header: Header) -> None:
        record = self.record(stamp, header)
        if record is None:
            return
        lane, name = _split(key)
        with self._lock:
            # In place: a scan only looks names up in a lane's dict (never iterates it).
            self._load().setdefault(lane, {})[name] = record
            self._changed = True

    def save(self) -> None:
        with self._lock:
            if not self._changed or self._lanes is None:
                return
            document = marshal.dumps({"format": _FORMAT, "lanes": self._lanes})
            self._changed = False
        try:
            make_private_dir(self.path.parent)
            _fs.atomic_write(self.path, document, durable=False)
        except OSError:
            pass  # a cache that cannot be written is just a slower listing
