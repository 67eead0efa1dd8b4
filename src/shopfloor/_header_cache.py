"""A listing cache: each task file's header, keyed by what changes when the file changes.

Reading 10,000 front matters costs ~37 µs a file in Python; a stat and a lookup cost a few.
The key is (inode, size, mtime_ns, ctime_ns), so any write or rename-over is a miss (ctime
changes on every write). As git does with its index, a file changed in the last two seconds
is never cached: an edit within the same clock tick cannot hide behind a stale entry.
The cache is only an optimisation: delete it any time; a version change discards it.

Stored with marshal, each header as a tuple of its fields: a daemon restarting on 50,000
tasks loads it in a fraction of the time JSON dicts took (it is private to this machine and
this Python: .shopfloor/ is 0700 and the format names the Python version).
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
_FIELDS = tuple(Header.__dataclass_fields__)
#: A cache written by another version, Python or Header is discarded.
_FORMAT = f"2:{__version__}:{sys.version_info[:2]}:{marshal.version}:{','.join(_FIELDS)}"
#: Files modified more recently than this are read every time (racy-clean, like git).
SETTLED_SECONDS = 2.0

Stamp = tuple[int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class HeaderCache:
    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        # Disabled: an always-empty cache that never reads or writes its file.
        self._entries: dict[str, tuple[Stamp, tuple[Any, ...]]] | None = None if enabled else {}
        self._enabled = enabled
        self._changed = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, tuple[Stamp, tuple[Any, ...]]]:
        if self._entries is None:
            try:
                raw = marshal.loads(self.path.read_bytes())
                ok = isinstance(raw, dict) and raw.get("format") == _FORMAT
                self._entries = raw["entries"] if ok else {}
            except (OSError, ValueError, EOFError, KeyError, TypeError):
                self._entries = {}
        return self._entries

    def get(self, key: str, stamp: Stamp) -> Header | None:
        with self._lock:
            hit = self._load().get(key)
        if hit is None or hit[0] != stamp:
            return None
        try:
            header = Header(*hit[1])
        except TypeError:
            return None
        header.depends_on = list(header.depends_on)  # stored as a tuple; a list is expected
        return header

    def put(self, key: str, stamp: Stamp, header: Header) -> None:
        if not self._enabled or time.time_ns() - stamp[2] < SETTLED_SECONDS * 1e9:
            return
        with self._lock:
            row = tuple(getattr(header, name) for name in _FIELDS)
            self._load()[key] = (
                stamp,
                tuple(v if not isinstance(v, list) else tuple(v) for v in row),
            )
            self._changed = True

    def forget_missing(self, prefix: str, present: set[str]) -> None:
        """Drop entries of a scanned lane whose files are gone."""
        with self._lock:
            entries = self._load()
            gone = [k for k in entries if k.startswith(prefix) and k not in present]
            for key in gone:
                del entries[key]
            self._changed = self._changed or bool(gone)

    def save(self) -> None:
        with self._lock:
            if not self._changed or self._entries is None:
                return
            document = marshal.dumps({"format": _FORMAT, "entries": self._entries})
            self._changed = False
        try:
            make_private_dir(self.path.parent)
            _fs.atomic_write(self.path, document, durable=False)
        except OSError:
            pass  # a cache that cannot be written is just a slower listing
