"""Is shopfloor.toml valid right now? Asked by the daemon (to reload it) and by `status`.

`status` must stay fast and never import pydantic on its path, yet warn about a broken
config. So the verdict is cached in `.shopfloor/cache/config-check.json`, keyed by the
file's stat (device, inode, size, mtime_ns) and the Shopfloor version; the config module
(pydantic) is imported only when that key changed. The daemon writes the same cache when
it reloads, so a `status` after the daemon saw an edit costs a stat and a small read.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor import __version__
from shopfloor.errors import ShopfloorError
from shopfloor.paths import StatePaths

if TYPE_CHECKING:
    from shopfloor.config import Config

#: (st_dev, st_ino, st_size, st_mtime_ns) of the config file; None when it is missing.
Stamp = tuple[int, int, int, int] | None


def stamp(path: Path) -> Stamp:
    """What changes when the file is edited, replaced or deleted: one stat, no read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def validate(path: Path) -> Config:
    """The config at `path` as the daemon would accept it; ConfigError saying what to fix."""
    from shopfloor import config  # pydantic: only here, only when the file changed
    from shopfloor.scheduler import check_agents  # the daemon's own start-up rule

    loaded = config.load(path)
    check_agents(loaded)
    return loaded


def remember(root: Path, key: Stamp, error: str | None) -> None:
    """Cache the verdict on the config file with stat `key` (best effort: a cache)."""
    from shopfloor import _fs  # only to write: `status` mostly recalls
    from shopfloor.paths import make_private_dir

    cache = StatePaths(root).config_check
    document = {"version": __version__, "stamp": None if key is None else list(key)}
    document["error"] = error
    with contextlib.suppress(OSError):
        make_private_dir(cache.parent)
        _fs.atomic_write(cache, json.dumps(document) + "\n", durable=False)


def recalled(root: Path, key: Stamp) -> tuple[bool, str | None]:
    """(known, error): the cached verdict if it was made for this very file and version."""
    try:
        document = json.loads(StatePaths(root).config_check.read_text("utf-8"))
    except (OSError, ValueError):
        return False, None
    if not isinstance(document, dict) or document.get("version") != __version__:
        return False, None
    cached = document.get("stamp")
    if (None if cached is None else tuple(cached)) != key:
        return False, None
    error = document.get("error")
    return True, error if isinstance(error, str) else None


def config_error(root: Path, config_file: Path) -> str | None:
    """Why `config_file` is invalid, or None if it is fine: from the cache when unchanged."""
    key = stamp(config_file)
    known, error = recalled(root, key)
    if known:
        return error
    try:
        validate(config_file)
        error = None
    except ShopfloorError as exc:
        error = str(exc)
    remember(root, key, error)
    return error
