"""One layout for `.shopfloor/`: every path of the project's private state is built here.

`.shopfloor/` is private (0700); what it holds may carry prompts, agent output and spend, so
files written there are 0600 (`_fs` writes them so). The board (`tasks/`) is the truth; all of
this can be lost and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from shopfloor import defaults

#: Mode of `.shopfloor/` and every folder made inside it.
PRIVATE_DIR_MODE = 0o700
#: Mode of every file Shopfloor creates inside `.shopfloor/`.
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class StatePaths:
    """The files and folders under `<root>/.shopfloor/`."""

    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / defaults.STATE_DIR

    @property
    def journal(self) -> Path:
        return self.state_dir / defaults.JOURNAL_FILE

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    def worktree(self, task_id: str) -> Path:
        return self.worktrees_dir / task_id

    @property
    def landing_dir(self) -> Path:
        """The merge queue's own: its scratch checkout, its lock and its record."""
        return self.state_dir / "landing"

    @property
    def land_target(self) -> Path:
        """The branch checked out when `init` ran: the merge queue's default target."""
        return self.state_dir / "land-target"

    @property
    def roles_dir(self) -> Path:
        return self.state_dir / "roles"

    def role(self, role: str) -> Path:
        return self.roles_dir / f"{role}.md"

    @property
    def header_cache(self) -> Path:
        return self.state_dir / "cache" / "headers.bin"  # marshal (see _header_cache.py)

    @property
    def config_check(self) -> Path:
        """The last verdict on shopfloor.toml, keyed by its stat (see config_check)."""
        return self.state_dir / "cache" / "config-check.json"

    @property
    def next_id(self) -> Path:
        return self.state_dir / "next-id"

    @property
    def ids_lock(self) -> Path:
        return self.state_dir / "ids.lock"

    @property
    def next_run(self) -> Path:
        return self.state_dir / "next-run"

    @property
    def runs_lock(self) -> Path:
        return self.state_dir / "runs.lock"

    @property
    def daemon_pid(self) -> Path:
        return self.state_dir / "daemon.pid"

    @property
    def git_lock(self) -> Path:
        """Serialises this repository's worktree adds, removes and prunes."""
        return self.state_dir / "git.lock"

    @property
    def telegram_offset(self) -> Path:
        return self.state_dir / "telegram-offset.json"

    def ensure(self) -> Path:
        """Create `.shopfloor/` and its fixed folders (0700) if missing, e.g. deleted under a
        running daemon; tighten a `.shopfloor/` left group- or world-readable (older versions,
        or a git checkout of `roles/`). Cheap enough to call before every run."""
        _tighten_dir(self.state_dir)
        # worktrees/ before git makes it (0755) for a coder's checkout; the others for order.
        for folder in (
            self.runs_dir,
            self.worktrees_dir,
            self.header_cache.parent,
        ):
            make_private_dir(folder)
        return self.state_dir


def repo_identity(root: Path) -> str:
    """A short id of this repository on this machine, the same for every process asking.

    Tags every child process (SHOPFLOOR_REPO_ID) so a restarting daemon kills only its own
    orphans: run ids start at R-1 in every repository. The resolved path tells two live
    repositories apart; the root's device and inode tell apart a repository deleted and
    re-created at the same path. Not a secret: anyone who can see the path can compute it.
    """
    resolved = root.resolve()
    info = os.stat(resolved)
    key = f"{resolved}\0{info.st_dev}\0{info.st_ino}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()[:16]


def _tighten_dir(path: Path) -> None:
    """make_private_dir, and 0700 on `path` itself if it exists with group or other bits."""
    make_private_dir(path)
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
        os.chmod(path, PRIVATE_DIR_MODE)


def make_private_dir(path: Path) -> None:
    """mkdir -p with 0700 on every folder this creates (umask notwithstanding)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)
