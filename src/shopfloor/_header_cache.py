"""A listing cache: each task file's header, keyed by what changes when the file changes.

Reading 10,000 front matters costs ~37 µs a file in Python; a stat and a lookup cost a few.
The key is (inode, size, mtime_ns, ctime_ns), so any write or rename-over is a miss (ctime
changes on every write). As git does with its index, a file changed in the last two seconds
is never cached: an edit within the same clock tick cannot hide behind a stale entry.
The cache is only an optimisation: delete it any time; a version change discards it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from shopfloor import __version__, _fs
from shopfloor.paths import make_private_dir
from shopfloor.task import Header

_FORMAT = f"1:{__version__}"
#: Files modified more recently than this are read every time (racy-clean, like git).
SETTLED_SECONDS = 2.0

Stamp = tuple[int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class HeaderCache:
    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        # Disabled: an always-empty cache that never reads or writes its file.
        self._entries: dict[str, list[Any]] | None = None if enabled else {}
        self._enabled = enabled
        self._changed = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            try:
                raw = json.loads(self.path.read_bytes())
                ok = isinstance(raw, dict) and raw.get("format") == _FORMAT
                self._entries = raw["entries"] if ok else {}
            except (OSError, ValueError, KeyError, TypeError):
                self._entries = {}
        return self._entries

    def get(self, key: str, stamp: Stamp) -> Header | None:
        with self._lock:
            hit = self._load().get(key)
        if hit is None or tuple(hit[0]) != stamp:
            return None
        try:
            return Header(**hit[1])
        except TypeError:
            return None

    def put(self, key: str, stamp: Stamp, header: Header) -> None:
        if not self._enabled or time.time_ns() - stamp[2] < SETTLED_SECONDS * 1e9:
            return
        with self._lock:
            self._load()[key] = [list(stamp), header.to_json()]
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
            document = json.dumps({"format": _FORMAT, "entries": self._entries})
            self._changed = False
        try:
            make_private_dir(self.path.parent)
            _fs.atomic_write(self.path, document, durable=False)
        except OSError:
            pass  # a cache that cannot be written is just a slower listing
