"""What the merge queue last said about itself, read without loading the queue.

`status` (from files, from the cache or from the daemon) shows the queue; the fast paths must
not import git, the lifecycle or the board for it, so the record's reader lives here.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shopfloor.defaults import STATE_DIR


def queue_file(root: str | os.PathLike[str]) -> str:
    """`.shopfloor/landing/queue.json` (`StatePaths.landing_dir`)."""
    return os.path.join(root, STATE_DIR, "landing", "queue.json")


def read_record(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The record ({} when there is none or it cannot be read): no sqlite, no git."""
    try:
        with open(queue_file(root), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def report(root: str | os.PathLike[str], ready: list[str]) -> dict[str, Any]:
    """The queue for `status` (and `status --json`, `/status`): the tasks ready to land (in
    review/, status landing), what is being checked, why it waits."""
    record = read_record(root)
    return {
        "ready": ready,
        "target": record.get("target"),
        "checking": record.get("checking") or [],
        "waiting": record.get("waiting"),
        "problem": record.get("problem"),
    }
