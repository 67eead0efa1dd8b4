"""One layout for `.shopfloor/`: every path of the project's private state is built here.

`.shopfloor/` is private (0700); what it holds may carry prompts, agent output and spend, so
files written there are 0600 (`_fs` writes them so). The board (`tasks/`) is the truth; all of
this can be lost and rebuilt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shopfloor import defaults

#: Mode of `.shopfloor/` and every folder made inside it.
PRIVATE_DIR_MODE = 0o700


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
    def roles_dir(self) -> Path:
        return self.state_dir / "roles"

    def role(self, role: str) -> Path:
        return self.roles_dir / f"{role}.md"

    @property
    def header_cache(self) -> Path:
        return self.state_dir / "cache" / "headers.json"

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
        """Create `.shopfloor/` (0700) if it is missing, e.g. deleted under a running daemon."""
        make_private_dir(self.state_dir)
        return self.state_dir


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
