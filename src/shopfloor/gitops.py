"""Git, always as an argv list (never a shell), always with `--` before paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shopfloor.errors import ShopfloorError


class GitError(ShopfloorError):
    """A git command failed; the message carries git's own words."""


class NoCommitsError(GitError):
    """The repository has no commits yet: a worktree needs one to start from."""


def run_git(cwd: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (Shopfloor needs it on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:2])} took longer than {timeout:.0f}s") from None


def git(cwd: Path, *args: str, check: bool = True, timeout: float = 120.0) -> str:
    """Run git and return stdout; GitError with stderr when it fails."""
    proc = run_git(cwd, *args, timeout=timeout)
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


#: What a task branch never carries: the board, Shopfloor's own state, agent CLI caches.
_EXCLUDE = (":(exclude)tasks", ":(exclude).shopfloor", ":(exclude).aider*")


def head(repo: Path) -> str | None:
    out = git(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
    return out or None


def current_branch(repo: Path) -> str | None:
    out = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return out or None


def branch_exists(repo: Path, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).strip() != ""


def add_worktree(repo: Path, path: Path, branch: str) -> str:
    """A worktree for `branch` at `path` (the branch is made from HEAD the first time).

    Returns the base commit the diff is taken against. A leftover worktree at `path` (from a
    crash) is removed first; the branch and its commits are kept.
    """
    base = head(repo)
    if base is None:
        raise NoCommitsError("the repository has no commits yet; commit something first")
    remove_worktree(repo, path)
    if branch_exists(repo, branch):
        git(repo, "worktree", "add", "--force", "--", str(path), branch)
    else:
        git(repo, "worktree", "add", "--force", "-b", branch, "--", str(path), base)
    return base


def remove_worktree(repo: Path, path: Path) -> None:
    if path.exists():
        git(repo, "worktree", "remove", "--force", "--", str(path), check=False)
    git(repo, "worktree", "prune", check=False)


def commit_all(workdir: Path, message: str, trailers: dict[str, str] | None = None) -> str | None:
    """Commit every change in `workdir` except the board; None when nothing changed."""
    git(workdir, "add", "--all", "--", ".", *_EXCLUDE)
    staged = git(workdir, "diff", "--cached", "--name-only").strip()
    if not staged:
        return None
    if trailers:
        message += "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers.items())
    git(workdir, *identity(workdir), "commit", "--quiet", "--no-verify", "-m", message)
    return git(workdir, "rev-parse", "HEAD").strip()


def diff(workdir: Path, base: str, stat: bool = False, limit: int = 200_000) -> str:
    """The task branch against its base (committed changes), cut at `limit` characters."""
    args = ["diff", "--stat"] if stat else ["diff"]
    text = git(workdir, *args, f"{base}..HEAD", "--", ".", *_EXCLUDE)
    if len(text) > limit:
        return text[:limit] + f"\n[diff cut at {limit} characters]\n"
    return text


def working_diff_stat(repo: Path) -> str:
    """Uncommitted changes in the live tree (what a hotfix left), without the board."""
    return git(repo, "diff", "--stat", "HEAD", "--", ".", *_EXCLUDE, check=False)


def is_clean(repo: Path) -> bool:
    """No uncommitted human work outside the board (the board changes all the time)."""
    return git(repo, "status", "--porcelain", "--", ".", *_EXCLUDE).strip() == ""


def identity(repo: Path) -> list[str]:
    """The human's git identity when configured, else Shopfloor's (never fails a commit)."""
    if git(repo, "config", "user.email", check=False).strip():
        return []
    return ["-c", "user.name=Shopfloor", "-c", "user.email=shopfloor@localhost"]


def merge(repo: Path, branch: str) -> tuple[bool, str]:
    """Merge a task branch into the current branch; on any failure abort and leave it alone."""
    proc = run_git(repo, *identity(repo), "merge", "--no-ff", "--no-edit", branch)
    if proc.returncode == 0:
        return True, f"merged {branch} into {current_branch(repo) or 'HEAD'}"
    if git(repo, "rev-parse", "-q", "--verify", "MERGE_HEAD", check=False).strip():
        git(repo, "merge", "--abort", check=False)
    detail = (proc.stderr or proc.stdout).strip().splitlines()
    return False, f"merge failed, nothing merged: {detail[0] if detail else 'unknown error'}"


def attempt_commit(repo: Path, branch: str, task_id: str, attempt: int) -> str | None:
    """The newest commit on `branch` made for this task's attempt (its trailers say so)."""
    if not branch_exists(repo, branch):
        return None
    out = git(repo, "log", "-50", "--format=%H%x00%B%x01", f"refs/heads/{branch}", "--not", "HEAD")
    want = {f"Shopfloor-Task: {task_id}", f"Shopfloor-Attempt: {attempt}"}
    for record in out.split("\x01"):
        sha, _, body = record.strip().partition("\x00")
        if sha and want <= {line.strip() for line in body.splitlines()}:
            return sha
    return None


def merge_base(repo: Path, a: str, b: str) -> str | None:
    out = git(repo, "merge-base", a, b, check=False).strip()
    return out or None


def snapshot(workdir: Path, ref: str) -> str | None:
    """Uncommitted work of a worktree kept as a commit under `ref` (placeholder: none kept)."""
    return None
