"""Named limits and defaults, each documented once."""

from __future__ import annotations

#: A task file larger than this is quarantined: task files are notes, not data dumps.
MAX_TASK_BYTES = 1024 * 1024

#: Bytes read first when listing; the front matter almost always fits, else we read on.
HEAD_BYTES = 4096

#: Front matter longer than this is treated as broken (a missing closing '---').
MAX_FRONT_MATTER_BYTES = 64 * 1024

#: Slugs in file names are cut to this many characters (at a word boundary when possible).
#: Kept for hotfixes too: a 200-character title in a non-Latin script is ~600 UTF-8 bytes,
#: over the 255-byte file-name limit, and short names keep `git status` readable. A hotfix's
#: full slug (and any unique prefix of an id) is accepted wherever an id is (`Board.find`).
SLUG_MAX = 48
#: The longest id a person may type: a hotfix's full slug (a title is at most 200 characters).
MAX_ID_CHARS = 255

#: Width of the number in task ids: T-0001.
ID_WIDTH = 4
ID_PREFIX = "T-"
HOTFIX_PREFIX = "HOTFIX-"

PRIORITIES = ("P0", "P1", "P2", "P3")
DEFAULT_PRIORITY = "P2"
TYPES = ("feature", "bug", "chore", "hotfix")
STATUSES = (
    "queued",
    "running",
    "awaiting-approval",
    "awaiting-human",
    "blocked",
    "landing",
    "closed",
)
DEFAULT_MAX_ATTEMPTS = 3

#: Lines of a log embedded into a HOTFIX file by `shopfloor hotfix --log`.
HOTFIX_LOG_TAIL_LINES = 60
HOTFIX_LOG_TAIL_BYTES = 16 * 1024

CONFIG_FILE = "shopfloor.toml"
STATE_DIR = ".shopfloor"
TASKS_DIR = "tasks"
JOURNAL_FILE = "journal.db"
