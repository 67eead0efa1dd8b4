"""Git, always as an argv list (never a shell), always with `--` before paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shopfloor.errors import ShopfloorError


class GitError(ShopfloorError):
    """A git command failed; the message carries git's own words."""


def git(cwd: Path, *args: str, check: bool = True, timeout: float = 120.0) -> str:
    """Run git and return stdout; GitError with stderr when it fails."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (Shopfloor needs it on PATH)") from None
    if check and proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        raise GitError(f"git {' '.join(args[:2])} failed: {detail}")
    return proc.stdout


def toplevel(path: Path) -> Path | None:
    """The root of the git repository containing `path`, or None outside any repository."""
    try:
        out = git(path, "rev-parse", "--show-toplevel", check=True)
    except GitError:
        return None
    return Path(out.strip()).resolve() if out.strip() else None
