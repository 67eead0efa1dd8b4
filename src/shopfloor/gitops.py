"""Git, always as an argv list (never a shell), always with `--` before paths.

Every git call runs with stdin closed, a timeout and `LC_MESSAGES=C` (git's words in English,
so a full disk reads the same on every machine). Worktree adds, removes and prunes of one repository
are serialised by an flock on `StatePaths(repo).git_lock`: `git worktree prune` racing a `git
worktree add` corrupts the add. Nothing here deletes uncommitted work: a dirty worktree is
snapshotted to a ref before it is removed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shopfloor import _fs
from shopfloor.errors import InfrastructureError, ShopfloorError
from shopfloor.paths import StatePaths


class GitError(ShopfloorError):
    """A git command failed; the message carries git's own words."""


class NoCommitsError(GitError):
    """The repository has no commits yet: there is nothing to branch a task from."""


class GitFault(GitError, InfrastructureError):
    """git failed because of the machine (full disk, read-only or forbidden folder, a lock)."""


class LockedError(GitFault):
    """A git lock file (`index.lock`, a ref's `.lock`) is in the way."""

    def __init__(self, message: str, lock: Path) -> None:
        super().__init__(message)
        self.lock = lock


#: git's (and the C library's) words for a fault of the machine, not of the task. Lower case.
_FAULT_WORDS = (
    "no space left on device",
    "disk quota exceeded",
    "read-only file system",
    "permission denied",
    "insufficient permission",
    "operation not permitted",
    "input/output error",
    "cannot allocate memory",
    "out of memory",
    "too many open files",
    "stale file handle",
)
_LOCK_EXISTS = re.compile(r"unable to create '([^']+\.lock)': file exists", re.IGNORECASE)
_FAULT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
        errno.ENOMEM,
        errno.EMFILE,
        errno.ENFILE,
        errno.ESTALE,
    }
)


def git_fault(exc: BaseException) -> bool:
    """True when `exc` is the machine's fault (disk, permissions, a lock), not the task's.

    Knows GitFault and every InfrastructureError, OSErrors with such an errno, and GitErrors
    made elsewhere whose message carries git's words for such a fault.
    """
    if isinstance(exc, InfrastructureError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FAULT_ERRNOS
    if isinstance(exc, GitError):
        return _classify(str(exc)) is not GitError
    return False


def _classify(detail: str) -> type[GitError]:
    lowered = detail.lower()
    if _LOCK_EXISTS.search(detail):
        return LockedError
    if any(word in lowered for word in _FAULT_WORDS):
        return GitFault
    return GitError


def _failure(args: tuple[str, ...], detail: str) -> GitError:
    """The typed error for a failed git command; the message keeps git's words."""
    what = f"git {' '.join(args[:2])}"
    found = _LOCK_EXISTS.search(detail)
    if found:
        lock = Path(found.group(1))
        return LockedError(
            f"{what} failed: {lock} exists — another git process is working there, or one was "
            f"killed and left it behind; if no git is running, delete {lock}. ({detail})",
            lock,
        )
    return _classify(detail)(f"{what} failed: {detail}")


def run_git(
    cwd: Path,
    *args: str,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """git with stdin closed (or fed `stdin`), a timeout and `env` added to the environment;
    never raises for git's own exit code (GitError only when git cannot be run at all)."""
    if not Path(cwd).is_dir():
        # Deleted under a run (rm -rf .shopfloor): the machine's state, not the task's doing.
        raise GitFault(f"git {' '.join(args[:2])}: {cwd} is not a folder (was it deleted?)")
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            env=_environment(env),
        )
    except FileNotFoundError:
        raise GitError("git is not installed (Shopfloor needs it on PATH)") from None
    except subprocess.TimeoutExpired:
        # A hung git (a dead network mount, a stuck lock) is the machine's, never the task's.
        raise GitFault(f"git {' '.join(args[:2])} took longer than {timeout:.0f}s") from None
    except OSError as exc:
        kind = GitFault if exc.errno in _FAULT_ERRNOS else GitError
        raise kind(f"git {' '.join(args[:2])} could not start: {exc}") from None


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's environment with git's messages (and strerror's) in English, so faults
    classify the same everywhere; the character set (LC_CTYPE) stays the user's."""
    env = dict(os.environ)
    everything = env.pop("LC_ALL", "")
    if everything:
        env["LANG"] = everything
    env.pop("LANGUAGE", None)
    env["LC_MESSAGES"] = "C"
    return {**env, **(extra or {})}


def git(
    cwd: Path,
    *args: str,
    check: bool = True,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    """Run git and return stdout; a (typed) GitError with stderr when it fails."""
    proc = run_git(cwd, *args, timeout=timeout, env=env, stdin=stdin)
    if check and proc.returncode != 0:
        raise _failure(args, proc.stderr.strip() or proc.stdout.strip())
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


def resolve(repo: Path, *names: str) -> tuple[str | None, ...]:
    """The commit each of `names` names (None for none), from one git process."""
    if any("\n" in name for name in names):
        raise ValueError(f"not a revision: {names!r}")
    asked = "".join(f"{name}^{{commit}}\n" for name in names)
    out = git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=asked)
    lines = out.splitlines()
    if len(lines) != len(names):
        raise GitError(f"git cat-file answered {len(lines)} lines for {len(names)} names")
    found: list[str | None] = []
    for line in lines:
        sha, _, kind = line.partition(" ")
        found.append(sha if kind == "commit" else None)
    return tuple(found)


def merge_base(repo: Path, a: str, b: str) -> str | None:
    """The best common ancestor of `a` and `b`; None when they share none or either is unknown."""
    proc = run_git(repo, "merge-base", a, b)  # one process when both are known, as mostly
    if proc.returncode == 1 and not proc.stdout.strip():
        return None  # unrelated histories
    if proc.returncode != 0:
        if any(rev(repo, name) is None for name in (a, b)):
            return None
        raise _failure(("merge-base", a), proc.stderr.strip())
    return proc.stdout.strip() or None


# ---------------------------------------------------------------------------- worktrees


@contextlib.contextmanager
def worktree_lock(repo: Path) -> Iterator[None]:
    """Hold the repository's worktree lock (not re-entrant: never nest it).

    A file-system error inside (taking the lock, clearing a leftover) becomes a GitError, a
    GitFault when it is the machine's (full disk, read-only, forbidden).
    """
    paths = StatePaths(repo)
    try:
        paths.ensure()
        with _fs.locked(paths.git_lock):
            yield
    except OSError as exc:
        kind = GitFault if exc.errno in _FAULT_ERRNOS else GitError
        raise kind(f"worktree housekeeping in {repo} failed: {exc}") from exc


@functools.lru_cache(maxsize=16)
def _common_dir(repo: Path) -> Path:
    """The repository's shared .git folder (asked once per repository and process)."""
    return _git_dir(repo, "--git-common-dir")


def _git_dir(cwd: Path, which: str = "--git-dir") -> Path:
    out = git(cwd, "rev-parse", which).strip()
    return (cwd / out).resolve()


def _is_worktree_root(path: Path) -> bool:
    """`path` is the top of a working tree of its own (not a folder inside another one)."""
    if not (path / ".git").exists():
        return False
    proc = run_git(path, "rev-parse", "--show-toplevel")
    top = proc.stdout.strip()
    return proc.returncode == 0 and bool(top) and Path(top).resolve() == path.resolve()


def _own_tree_state(path: Path) -> TreeState | None:
    """`tree_state` of the working tree whose top is `path`; None when `path` is not the top of
    a working tree of its own (git would look at an enclosing one).

    One git process: GIT_CEILING_DIRECTORIES keeps git from looking above `path`, so a broken
    or missing `.git` there fails instead of finding the repository around it.
    """
    if not (path / ".git").exists():
        return None
    try:
        return tree_state(path, env={"GIT_CEILING_DIRECTORIES": str(path.resolve().parent)})
    except GitError:
        if _is_worktree_root(path):
            raise  # a tree git knows but cannot read (a lock, a full disk): not ours to judge
        return None


def _admin_entries(repo: Path, path: Path) -> list[Path]:
    """The `.git/worktrees/<name>` entries for a checkout at `path`.

    Also a locked entry without a `gitdir` named after `path` (`T-0001`, `T-00011`): a `git
    worktree add` killed before it wrote where its checkout lives. Under the worktree lock no add
    of ours is running, so such an entry is a leftover.
    """
    admin_root = _common_dir(repo) / "worktrees"
    if not admin_root.is_dir():
        return []
    target = path.resolve()
    orphan = re.compile(re.escape(path.name) + r"[0-9]*")
    hits = []
    for entry in sorted(admin_root.iterdir()):
        try:
            gitdir = (entry / "gitdir").read_text("utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            gitdir = ""
        if gitdir:
            if (entry / gitdir).resolve().parent == target:
                hits.append(entry)
        elif (entry / "locked").exists() and orphan.fullmatch(entry.name):
            hits.append(entry)
    return hits


def _lock_reason(admin: Path) -> str | None:
    try:
        return (admin / "locked").read_text("utf-8").strip()
    except FileNotFoundError:
        return None


#: Told what the last look at a worktree about to be removed saw (its files still there)
Look = Callable[["TreeState"], None]


def _keep_and_discard(path: Path, keep_ref: str | None, look: Look | None = None) -> str | None:
    """Outside the lock: keep a worktree's uncommitted work, then delete its checkout. Only its
    own task's job ever touches it; its registration is forgotten under the lock."""
    state = _own_tree_state(path) if path.exists() else None
    if state is None:
        return None
    if look is not None:
        look(state)
    kept = None if state.clean else _keep_work(path, keep_ref, state.head)
    shutil.rmtree(path)
    return kept


def _clear_path(repo: Path, path: Path) -> None:
    """Make `path` free for a new worktree (its work already kept). Hold the lock.

    Its registrations (`.git/worktrees/<name>`) are deleted directly, as `git worktree
    remove` would, but without reading every other worktree's entry: that read fails on an
    entry another add is making. A `git worktree add` killed midway (an entry locked
    "initializing") is repaired the same way; an entry with no gitdir never got to say where
    its checkout is, so `path` is left to the other checks then.
    """
    repaired = False
    for admin in _admin_entries(repo, path):
        killed_add = _lock_reason(admin) == "initializing"
        registered = (admin / "gitdir").exists()
        shutil.rmtree(admin)
        if killed_add:
            repaired = True
            if registered and path.exists():
                shutil.rmtree(path)  # a partial checkout no one ever worked in
    if path.exists() or path.is_symlink():
        # Not a worktree git knows (its registration is gone): set it aside, never delete it.
        aside = path.parent / ".stale" / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        while aside.exists():
            aside = aside.with_name(aside.name + "-")
        os.rename(path, aside)
        repaired = True
    if repaired:  # only then: a prune on every add and remove slowed and broke parallel adds
        git(repo, "worktree", "prune", check=False)


@dataclass(frozen=True)
class Checkout:
    """What `add_worktree` made."""

    base: str  # HEAD when it was made: a new branch starts there
    created: bool  # the branch was made just now (it holds no commit of its own yet)


def add_worktree(repo: Path, path: Path, branch: str, keep_ref: str | None = None) -> Checkout:
    """A worktree for `branch` at `path` (the branch is made from HEAD the first time).

    Returns HEAD (the base of a new branch) and whether the branch was made now. A leftover
    worktree at `path` (from a crash, or a `git worktree add` killed midway) is removed first;
    the branch and its commits are kept, and uncommitted work in it is snapshotted (see
    `remove_worktree`). NoCommitsError when the repository has no commits.
    """
    base, tip = resolve(repo, "HEAD", f"refs/heads/{branch}")  # one process for both
    if base is None:
        raise NoCommitsError(
            f"the repository {repo} has no commits yet; commit something first "
            "(e.g. git commit --allow-empty -m 'first commit')"
        )
    _keep_and_discard(path, keep_ref)
    known = tip is not None  # our own branch: no other job touches it
    with worktree_lock(repo):  # the registration alone: a checkout takes far longer
        _clear_path(repo, path)
        if known:
            git(repo, "worktree", "add", "--no-checkout", "--force", "--", str(path), branch)
        else:  # detached: `-b` here would start a `git branch` and a `git symbolic-ref`
            detached = ("--detach", "--no-checkout", "--force")
            git(repo, "worktree", "add", *detached, "--", str(path), base)
    # The files, beside other jobs' checkouts; a new branch is made by the same process, and
    # no hook runs (none did when a `git reset` made the files).
    if known:
        git(path, "reset", "--hard", "--quiet")
    else:
        no_hooks = ("-c", "core.hooksPath=/dev/null")
        git(path, *no_hooks, "checkout", "--force", "--quiet", "-b", branch, base)
    return Checkout(base, created=not known)


def remove_worktree(
    repo: Path, path: Path, keep_ref: str | None = None, look: Look | None = None
) -> str | None:
    """Remove the worktree at `path` (and a half-made one); the branch stays.

    Uncommitted work is snapshotted first (see `snapshot`) under `keep_ref`, or when it is None
    under `refs/shopfloor/snapshots/<path.name>/removed-<sha12>`: removal never loses work.
    `look` is told what the one `git status` it takes saw, before anything is deleted (not
    called when there is no worktree). Returns the snapshot's sha, None when the worktree was
    clean or absent.
    """
    kept = _keep_and_discard(path, keep_ref, look)
    with worktree_lock(repo):
        _clear_path(repo, path)
    return kept


def prune_worktrees(repo: Path) -> None:
    """Forget worktrees whose folders are gone (at daemon start; never beside an add)."""
    with worktree_lock(repo):
        git(repo, "worktree", "prune", check=False)


def _keep_work(workdir: Path, keep_ref: str | None, base: str | None) -> str | None:
    """Snapshot the uncommitted work (on HEAD, `base`) of a tree about to be removed; None
    when it holds none after all."""
    if keep_ref is not None:
        return _snapshot(workdir, keep_ref, base)
    sha = _snapshot_commit(workdir, None, base)
    if sha is not None:
        ref = f"refs/shopfloor/snapshots/{workdir.name}/removed-{sha[:12]}"
        git(workdir, "update-ref", "-m", "shopfloor: work kept on removal", ref, sha)
    return sha


# ---------------------------------------------------------------------------- commits


_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def with_trailers(message: str, trailers: Mapping[str, str] | None) -> str:
    """`message` with `Key: value` git trailers in a last paragraph of their own."""
    if not trailers:
        return message
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key) or any(c in value for c in "\r\n") or not value:
            raise ValueError(f"not a git trailer: {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    return message.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Committed:
    sha: str
    stat: str  # git's "1 file changed, 2 insertions(+)" for this commit alone ("" if unsaid)


def commit_all(
    workdir: Path, message: str, trailers: Mapping[str, str] | None = None
) -> str | None:
    """Commit every change in `workdir` except the board; None when nothing changed.

    `trailers` (e.g. Shopfloor-Task, Shopfloor-Attempt, Shopfloor-Run) end the message, so
    `attempt_commit` finds the work after a crash. LockedError when an `index.lock` is in the way.
    """
    done = commit_work(workdir, message, trailers)
    return done.sha if done is not None else None


def commit_work(
    workdir: Path, message: str, trailers: Mapping[str, str] | None = None
) -> Committed | None:
    """`commit_all`, with the commit's own diffstat line from git's summary (the stat against
    its parent: no `git diff --stat` needed when the parent is the base)."""
    text = with_trailers(message, trailers)
    git(workdir, "add", "--all", "--", ".", *_EXCLUDE)
    # Not --quiet: the summary's first line names the new commit ("[branch <sha>] subject"),
    # in full with core.abbrev=no, so no rev-parse follows.
    full = ("-c", "core.abbrev=no", *_maintenance())
    proc = run_git(workdir, *full, *identity(workdir), "commit", "--no-verify", "-m", text)
    if proc.returncode != 0:
        if run_git(workdir, "diff", "--cached", "--quiet").returncode == 0:
            return None  # nothing staged: asked only now, as a commit almost always has work
        raise _failure(("commit", "--no-verify"), proc.stderr.strip() or proc.stdout.strip())
    named = _SUMMARY.match(proc.stdout)
    sha = named.group(1) if named else git(workdir, "rev-parse", "HEAD").strip()
    stat = _STAT.search(proc.stdout)
    return Committed(sha, stat.group(1) if stat else "")


#: The first line of `git commit`'s summary: `[main (root-commit) <sha>] subject`; the first
#: such sha (a branch name has no space; the subject may hold anything).
_SUMMARY = re.compile(r"\[[^\n]*? ([0-9a-f]{40}|[0-9a-f]{64})\] ")
#: The summary's diffstat line (git's messages are in English: see `_environment`).
_STAT = re.compile(r"^ (\d+ files? changed[^\n]*)$", re.MULTILINE)
#: Every how many of our commits git checks whether the repository needs a `gc`.
_MAINTENANCE_EVERY = 16
_commits = itertools.count()


def _maintenance() -> tuple[str, ...]:
    """`git commit` starts a `git maintenance run --auto` after each commit, a process that
    mostly finds nothing to do: let it run after one commit of ours in _MAINTENANCE_EVERY (a
    repository's settings still decide what it does then)."""
    return () if next(_commits) % _MAINTENANCE_EVERY == 0 else ("-c", "maintenance.auto=false")


def attempt_commit(
    repo: Path,
    branch: str,
    task_id: str,
    attempt: int,
    look_back: int = 50,
    since: str | None = None,
) -> str | None:
    """The newest of the last `look_back` commits on `branch` whose trailers name this task
    and attempt (`Shopfloor-Task`, `Shopfloor-Attempt`); None if there is none or no branch.
    `since`: only commits after it (attempt numbers start again after a rework or a retry).
    `branch` may be a full ref (`refs/remotes/origin/...`)."""
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    span = ref
    if since and run_git(repo, "cat-file", "-e", f"{since}^{{commit}}").returncode == 0:
        span = f"{since}..{ref}"
    trailers = "--format=%H%x00%(trailers:only,unfold)%x1e"
    proc = run_git(repo, "log", f"--max-count={look_back}", trailers, span, "--")
    if proc.returncode != 0:  # no branch yet (a first attempt)? Asked only when log failed
        if rev(repo, ref) is None:
            return None
        raise _failure(("log", span), proc.stderr.strip())
    for record in proc.stdout.split("\x1e"):
        sha, _, block = record.strip("\n").partition("\x00")
        found: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                found.setdefault(key.strip().lower(), value.strip())
        if found.get("shopfloor-task") == task_id and found.get("shopfloor-attempt") == str(
            attempt
        ):
            return sha.strip()
    return None


def newest_commit_touching(
    repo: Path, since: str | None, paths: list[str] | tuple[str, ...]
) -> tuple[str, str] | None:
    """(sha, subject) of the newest commit on HEAD after `since` (all of HEAD's history when
    None) that touches any of `paths` (literal paths, never globs); None when there is none."""
    if not paths:
        return None
    span = f"{since}..HEAD" if since else "HEAD"
    proc = run_git(
        repo,
        "--literal-pathspecs",
        "log",
        "--max-count=1",
        "--format=%H%x00%s",
        span,
        "--",
        *paths,
    )
    if proc.returncode != 0:  # `since` no longer exists, or no commit yet
        return None
    sha, _, subject = proc.stdout.strip("\n").partition("\x00")
    return (sha, subject) if sha else None


# ---------------------------------------------------------------------------- snapshots


def _snapshot_commit(workdir: Path, ref: str | None, base: str | None) -> str | None:
    """A commit of the worktree's full state on `base` (its HEAD), built in a temporary index."""
    with tempfile.TemporaryDirectory(prefix="shopfloor-snapshot-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if base is not None:
            git(workdir, "read-tree", base, env=env)
        git(workdir, "add", "--all", "--", ".", *_EXCLUDE, env=env)
        tree = git(workdir, "write-tree", env=env).strip()
    before = git(workdir, "rev-parse", f"{base}^{{tree}}").strip() if base else _empty_tree(workdir)
    if tree == before:
        return None
    parents = ["-p", base] if base else []
    old = (
        git(workdir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if ref
        else ""
    )
    if old.strip() and old.strip() != base:
        parents += ["-p", old.strip()]  # a snapshot already under that ref stays reachable
    message = f"shopfloor snapshot of {workdir}\n\nUncommitted work kept by Shopfloor.\n"
    return git(workdir, *identity(workdir), "commit-tree", tree, *parents, "-m", message).strip()


def _empty_tree(workdir: Path) -> str:
    return git(workdir, "hash-object", "-t", "tree", "--stdin", "-w", env=None).strip()


def snapshot(workdir: Path, ref: str) -> str | None:
    """Record the worktree's uncommitted state (tracked changes and untracked, not ignored,
    files; never the board, `.shopfloor` or agent caches) as a commit whose first parent is
    HEAD, under `ref`; the worktree's index, HEAD and files are not touched. None when there is
    nothing uncommitted. A different commit already under `ref` becomes a second parent."""
    return _snapshot(workdir, ref, head(workdir))


def _snapshot(workdir: Path, ref: str, base: str | None) -> str | None:
    """`snapshot` of a tree whose HEAD is `base`."""
    if not ref.startswith("refs/"):
        raise ValueError(f"snapshot ref must be a full ref name (refs/...): {ref!r}")
    sha = _snapshot_commit(workdir, ref, base)
    if sha is not None:
        git(workdir, "update-ref", "-m", "shopfloor: snapshot", ref, sha)
    return sha


# ---------------------------------------------------------------------------- the live tree


#: Who makes the live tree's snapshot commits: Shopfloor, not the human (and no config lookup).
_SNAPSHOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Shopfloor",
    "GIT_AUTHOR_EMAIL": "shopfloor@localhost",
    "GIT_COMMITTER_NAME": "Shopfloor",
    "GIT_COMMITTER_EMAIL": "shopfloor@localhost",
}


@dataclass(frozen=True)
class TreeState:
    """The live tree as `git status` sees it, outside the board and `.shopfloor/`."""

    head: str | None  # None before the first commit
    paths: tuple[str, ...]  # uncommitted: changed, staged, deleted, untracked (not ignored)
    branch: str | None = None  # None when HEAD is detached
    untracked: tuple[str, ...] = ()  # of `paths`, those git does not track
    #: The paths a `git add` of this work names: not those already gone from the index too
    #: (a staged deletion, a rename's source), which no pathspec can match.
    to_add: tuple[str, ...] = ()
    #: Each of `paths` with its two-letter `git status --short` code (" M", "R ", "??")
    codes: Mapping[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.paths


@dataclass(frozen=True)
class Snapshot:
    """What `capture_worktree` found and kept."""

    sha: str | None  # the snapshot commit; None when the tree was clean (nothing stored)
    head: str | None  # HEAD when it was taken
    paths: tuple[str, ...]  # the uncommitted paths it holds
    branch: str | None = None  # HEAD's branch when it was taken; None when detached

    @property
    def base(self) -> str | None:
        """What an agent starting now starts from: the snapshot, else HEAD."""
        return self.sha or self.head


def tree_state(root: Path, env: Mapping[str, str] | None = None) -> TreeState:
    """HEAD and the uncommitted paths, from one `git status` that never writes the index."""
    out = git(
        root,
        "--no-optional-locks",
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--no-ahead-behind",
        "--untracked-files=all",
        "--",
        ".",
        *_EXCLUDE,
        env=env,
    )
    head: str | None = None
    branch: str | None = None
    codes: dict[str, str] = {}
    to_add: list[str] = []
    untracked: list[str] = []
    records = iter(out.split("\0"))
    for record in records:
        kind, code = record[:2], record[2:4].replace(".", " ")
        if record.startswith("# branch.oid "):
            oid = record.removeprefix("# branch.oid ")
            head = None if oid == "(initial)" else oid
        elif record.startswith("# branch.head "):
            name = record.removeprefix("# branch.head ")
            branch = None if name == "(detached)" else name
        elif kind == "1 ":
            path = record.split(" ", 8)[8]
            codes[path] = code
            if record[2] != "D":  # staged deletion: in neither the index nor the tree
                to_add.append(path)
        elif kind == "2 ":  # a staged rename or copy: its source path is the next record
            path = record.split(" ", 9)[9]
            codes[path] = codes[next(records, "")] = code
            to_add.append(path)
        elif kind == "u ":
            path = record.split(" ", 10)[10]
            codes[path] = code
            to_add.append(path)
        elif kind == "? ":
            codes[record[2:]] = "??"
            to_add.append(record[2:])
            untracked.append(record[2:])
    codes.pop("", None)
    return TreeState(head, tuple(codes), branch, tuple(untracked), tuple(to_add), codes)


def _own_git_dir(root: Path) -> Path:
    """The git dir of the tree at `root` (its own, for a linked worktree); no git process
    when `.git` is right there."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    return _cached_git_dir(root)


@functools.lru_cache(maxsize=16)
def _cached_git_dir(root: Path) -> Path:
    return _git_dir(root)


@contextlib.contextmanager
def _scratch_index(root: Path, name: str) -> Iterator[dict[str, str]]:
    """The environment for git to work on a private copy of `root`'s index.

    A copy, not an empty index: its stat data lets `git add` hash only the files that changed.
    Named per task, process and thread, so hotfixes starting at the same instant never share
    one; the real index is only read.
    """
    gitdir = _own_git_dir(root)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    scratch = gitdir / f"shopfloor-index.{safe}.{os.getpid()}.{threading.get_ident()}"
    try:
        shutil.copy2(gitdir / "index", scratch)  # keeps the mtime: git's racy-clean check
    except FileNotFoundError:
        pass  # no index yet: git starts from an empty one
    except OSError as exc:
        kind = GitFault if exc.errno in _FAULT_ERRNOS else GitError
        raise kind(f"cannot copy the index of {root}: {exc}") from exc
    try:
        yield {"GIT_INDEX_FILE": str(scratch)}
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def capture_worktree(root: Path, ref: str) -> Snapshot:
    """Keep the live tree's uncommitted work (tracked and untracked, not ignored) as a commit
    under `ref`, like `git stash create` with untracked files, touching neither the files nor
    the index.

    The board (`tasks/`), `.shopfloor/` and agent caches are left out: the board changes while
    a hotfix runs (its own task file), and a diff against the snapshot must show the code, not
    the board. The snapshot's first and only parent is HEAD; its tree is the working tree as
    it was (staged and unstaged alike; the real index, untouched, still knows which was which).
    A snapshot already under `ref` stays in the ref's reflog (`<ref>@{1}`). Clean tree: one
    git process and nothing stored.
    """
    if not ref.startswith("refs/"):
        raise ValueError(f"snapshot ref must be a full ref name (refs/...): {ref!r}")
    state = tree_state(root)
    if state.clean:
        return Snapshot(None, state.head, (), state.branch)
    with _scratch_index(root, ref.rsplit("/", 1)[-1]) as env:
        _add_work(root, state, env)
        tree = git(root, "write-tree", env=env).strip()
    parents = ["-p", state.head] if state.head else []
    message = (
        f"shopfloor snapshot: uncommitted work in {root}\n\n"
        "Taken before an agent worked in this tree; nothing in the tree was changed.\n"
    )
    sha = git(
        root, "commit-tree", "--no-gpg-sign", tree, *parents, "-m", message, env=_SNAPSHOT_IDENTITY
    ).strip()
    keep_snapshot(root, ref, sha)
    return Snapshot(sha, state.head, state.paths, state.branch)


def keep_snapshot(root: Path, ref: str, sha: str) -> None:
    """Point `ref` at snapshot `sha`; what it pointed at before stays in its reflog."""
    keep_snapshots(root, [ref], sha)


def keep_snapshots(root: Path, refs: list[str], sha: str) -> None:
    """Point every ref in `refs` at snapshot `sha`, in one git process; what each pointed at
    before stays in its reflog."""
    for ref in refs:
        if not ref.startswith("refs/") or any(c.isspace() for c in ref):
            raise ValueError(f"snapshot ref must be a full ref name (refs/...): {ref!r}")
    note = ("update-ref", "--create-reflog", "-m", "shopfloor: snapshot")
    if len(refs) == 1:
        git(root, *note, refs[0], sha)
    elif refs:
        git(root, *note, "--stdin", stdin="".join(f"update {ref} {sha}\n" for ref in refs))


def _add_work(root: Path, state: TreeState, env: Mapping[str, str]) -> None:
    """Stage the uncommitted work into the scratch index `env` names.

    Only the paths status named, so git looks at those and not at every file again (half the
    time on 2,000 files); when one of them vanished meanwhile (another agent in the same tree),
    everything, as `git add --all` would.
    """
    if state.to_add:
        listed = "".join(f"{path}\0" for path in state.to_add)
        named = ("--literal-pathspecs", "add", "--all", "--pathspec-file-nul")
        proc = run_git(root, *named, "--pathspec-from-file=-", env=env, stdin=listed)
        if proc.returncode == 0:
            return
        if _classify(proc.stderr) is not GitError:
            raise _failure(named[1:], proc.stderr.strip())
    git(root, "add", "--all", "--", ".", *_EXCLUDE, env=env)


def snapshot_worktree(root: Path, ref: str) -> str | None:
    """The sha of the live tree's uncommitted work kept under `ref` (see `capture_worktree`);
    None when the tree was clean (then nothing is stored)."""
    return capture_worktree(root, ref).sha


def changed_since(root: Path, base: str) -> list[str]:
    """Paths whose working-tree content (untracked files too, not ignored ones) differs from
    commit `base`, outside the board and `.shopfloor/`; the index is only read."""
    with _scratch_index(root, f"since-{base[:12]}") as env:
        git(root, "add", "--all", "--", ".", *_EXCLUDE, env=env)
        out = git(
            root,
            "diff",
            "--cached",
            "--name-only",
            "--no-renames",
            "-z",
            base,
            "--",
            ".",
            *_EXCLUDE,
            env=env,
        )
    return sorted(p for p in out.split("\0") if p)


def changed_between(root: Path, old: str, new: str) -> list[str]:
    """Paths that differ between two commits, outside the board and `.shopfloor/`."""
    out = git(root, "diff", "--name-only", "--no-renames", "-z", old, new, "--", ".", *_EXCLUDE)
    return sorted(p for p in out.split("\0") if p)


def branches_with_new_commits(
    root: Path, since: float, old_head: str | None, current: str | None
) -> list[str]:
    """Branches and tags other than `current` (and Shopfloor's own task branches) that got
    commits dated `since` or later and not in `old_head`'s history: work made elsewhere while
    an agent ran in the live tree."""
    excluded = ["--exclude=shopfloor/*"]
    old = [f"^{old_head}"] if old_head else []
    proc = run_git(
        root,
        "log",
        "--source",
        "--format=%S",
        f"--since=@{int(since)}",
        *excluded,
        "--branches",
        "--tags",
        *old,
        "--",
    )
    if proc.returncode != 0:
        raise _failure(("log", "--source"), proc.stderr.strip())
    out = proc.stdout
    found = {line.strip().removeprefix("refs/heads/") for line in out.splitlines()}
    return sorted(name for name in found if name and name != current)


def commits_between(root: Path, old: str | None, new: str) -> int | None:
    """How many commits `new` has that `old` lacks (all of them when `old` is None: no commit
    before); None when `old` is not an ancestor (history was rewritten) or either is unknown."""
    if old is None:
        return int(git(root, "rev-list", "--count", new).strip() or 0)
    proc = run_git(root, "merge-base", "--is-ancestor", old, new)
    if proc.returncode != 0:
        return None
    return int(git(root, "rev-list", "--count", f"{old}..{new}").strip() or 0)


# ---------------------------------------------------------------------------- locks


def repair_locks(repo: Path, worktree: Path) -> list[Path]:
    """Delete stale git locks of one of our worktrees; returns what was deleted.

    Only the worktree's own `index.lock` and `HEAD.lock` and its branch's ref lock, and only
    when no process holds the file open or runs git inside the worktree. The main repository's
    locks are never touched (a human's git may be running): `worktree` must be a linked
    worktree of `repo`, else nothing happens.
    """
    if not worktree.is_dir() or not _is_worktree_root(worktree):
        return []
    gitdir = _git_dir(worktree)
    common = _common_dir(repo)
    if gitdir == common or gitdir.parent != common / "worktrees":
        return []  # the main checkout, or a worktree of another repository
    locks = [gitdir / "index.lock", gitdir / "HEAD.lock"]
    branch = git(worktree, "symbolic-ref", "--quiet", "HEAD", check=False).strip()
    if branch.startswith("refs/heads/"):
        locks.append(common / f"{branch}.lock")
    removed = []
    for lock in locks:
        if lock.exists() and not _in_use(lock, worktree):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                removed.append(lock)
    return removed


def _in_use(lock: Path, worktree: Path) -> bool:
    """Some process holds `lock` open, or a git process works inside `worktree` (Linux /proc;
    elsewhere False: the caller runs this at daemon start, when only our git could run)."""
    proc_root = Path("/proc")
    if not (proc_root / "self" / "fd").is_dir():
        return False
    wanted = str(lock)
    tree = worktree.resolve()
    for pid in proc_root.iterdir():
        if not pid.name.isdigit() or pid.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):
            for fd in (pid / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == wanted:
                        return True
        with contextlib.suppress(OSError):
            comm = (pid / "comm").read_text().strip()
            cwd = Path(os.readlink(pid / "cwd"))
            if comm.startswith("git") and (cwd == tree or tree in cwd.parents):
                return True
    return False


# ---------------------------------------------------------------------------- the rest


def diff(workdir: Path, base: str, stat: bool = False, limit: int = 200_000) -> str:
    """The task branch against its base (committed changes), cut at `limit` characters."""
    args = ["diff", "--stat"] if stat else ["diff"]
    text = git(workdir, *args, f"{base}..HEAD", "--", ".", *_EXCLUDE)
    if len(text) > limit:
        return text[:limit] + f"\n[diff cut at {limit} characters]\n"
    return text


def diff_refs(repo: Path, old: str, new: str | None, limit: int = 200_000) -> str:
    """`old` against `new` (a commit or branch; None: the working tree), without the board,
    cut at `limit` characters: what the web board shows of a task's branch or a hotfix."""
    refs = (old, new) if new else (old,)
    text = git(repo, "diff", *refs, "--", ".", *_EXCLUDE)
    if len(text) > limit:
        return text[:limit] + f"\n[diff cut at {limit} characters]\n"
    return text


def working_diff_stat(repo: Path) -> str:
    """Uncommitted changes in the live tree (what a hotfix left), without the board."""
    return git(repo, "diff", "--stat", "HEAD", "--", ".", *_EXCLUDE, check=False)


def status_entries(tree: Path) -> dict[str, str]:
    """Each uncommitted path outside the board (changed, staged, deleted, untracked but not
    ignored) with its two-letter `git status` code; a rename also lists its old path.
    Never writes the index (an agent's own git may be working there)."""
    return dict(tree_state(tree).codes)


def is_clean(repo: Path, optional_locks: bool = True) -> bool:
    """No uncommitted human work outside the board (the board changes all the time).

    `optional_locks=False`: git does not refresh (write) the index while it looks.
    """
    flags = [] if optional_locks else ["--no-optional-locks"]
    return git(repo, *flags, "status", "--porcelain", "--", ".", *_EXCLUDE).strip() == ""


def identity(repo: Path) -> list[str]:
    """The human's git identity when configured, else Shopfloor's (never fails a commit).

    Asked once per repository while none of the config files git read, nor git's environment,
    changes: every commit asked again before (a git process per task).
    """
    common = _common_dir_of(repo)
    known = _IDENTITIES.get(common) if common is not None else None
    if known is not None and known.stamp == _config_stamp(known.files):
        return list(known.args)
    read, lasting = _read_identity(repo)
    if common is not None and lasting:
        _IDENTITIES[common] = read
    return list(read.args)


@dataclass(frozen=True)
class _Identity:
    files: tuple[Path, ...]  # every config file git read, or would read once it exists
    stamp: tuple[tuple[_FileStamp, ...], tuple[str, ...]]  # see `_config_stamp`
    args: tuple[str, ...]  # what `identity` returns


#: Per repository (its shared git folder): the identity `identity` last read.
_IDENTITIES: dict[Path, _Identity] = {}
_SHOPFLOOR = ("-c", "user.name=Shopfloor", "-c", "user.email=shopfloor@localhost")


def _read_identity(repo: Path) -> tuple[_Identity, bool]:
    """The identity from one `git config --list`, and whether it may be kept: not with an
    include (it may depend on the branch or the folder), per-worktree config, a config file
    changed in the last two seconds (an edit in the same tick keeps its stamp: git's racy-clean
    problem) or a config git cannot read."""
    proc = run_git(repo, "config", "--list", "--show-origin", "-z")
    fields = proc.stdout.split("\0") if proc.returncode == 0 else []
    files = set(_config_candidates(repo))
    email, lasting = "", proc.returncode == 0
    for origin, entry in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = entry.partition("\n")
        email = value if key == "user.email" else email
        if key.startswith(("include.", "includeif.")) or key == "extensions.worktreeconfig":
            lasting = False
        if origin.startswith("file:"):
            files.add((repo / origin.removeprefix("file:")).resolve())
        elif origin != "command line:":  # `-c` from the environment, which is stamped
            lasting = False
    ordered = tuple(sorted(files))
    stamp = _config_stamp(ordered)
    recent = time.time_ns() - 2_000_000_000
    lasting = lasting and all(s is None or s[0] < recent for s in stamp[0])
    return _Identity(ordered, stamp, () if email.strip() else _SHOPFLOOR), lasting


def _config_candidates(repo: Path) -> list[Path]:
    """The global and system config files, whether or not they exist yet (see git-config)."""
    env = os.environ
    home = Path(env.get("HOME") or Path.home())
    xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    found = [Path(env["GIT_CONFIG_GLOBAL"])] if env.get("GIT_CONFIG_GLOBAL") else []
    found = found or [home / ".gitconfig", xdg / "git" / "config"]
    if not env.get("GIT_CONFIG_NOSYSTEM"):
        found.append(Path(env.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
    return [(repo / path).resolve() for path in found]


#: A config file's (mtime, size, inode); None when it is absent. `git config` writes a new
#: file (a new inode); an edit in place moves the mtime.
_FileStamp = tuple[int, int, int] | None


def _config_stamp(files: tuple[Path, ...]) -> tuple[tuple[_FileStamp, ...], tuple[str, ...]]:
    """Each file's stamp, and git's environment (which may name other files or add `-c`)."""
    stamps: list[_FileStamp] = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
    env = sorted(
        f"{k}={v}" for k, v in os.environ.items() if k.startswith(("GIT_", "HOME", "XDG_"))
    )
    return tuple(stamps), tuple(env)


def _common_dir_of(tree: Path) -> Path | None:
    """The shared git folder of the working tree whose top is `tree`, read from its `.git`
    without a git process; None when `.git` is not there or not as git writes it."""
    dot_git = tree / ".git"
    try:
        if dot_git.is_dir():
            return dot_git.resolve()
        line = dot_git.read_text("utf-8").strip()
        if not line.startswith("gitdir: "):
            return None
        gitdir = (tree / line.removeprefix("gitdir: ")).resolve()
        common = gitdir / "commondir"
        return (gitdir / common.read_text("utf-8").strip()).resolve() if common.exists() else gitdir
    except (OSError, UnicodeDecodeError):
        return None


def push_branch(repo: Path, remote: str, branch: str, timeout: float = 120.0) -> None:
    """Push `branch` to the branch of the same name on `remote`: never forced (a rejected
    push is a GitError with git's reason) and never prompting for credentials."""
    ref = f"refs/heads/{branch}"
    if not git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).strip():
        raise GitError(f"there is no branch {branch} to push")
    quiet = {"GIT_TERMINAL_PROMPT": "0"}  # the daemon has no one to type a password
    git(repo, "push", "--quiet", "--", remote, f"{ref}:{ref}", timeout=timeout, env=quiet)


def merge(repo: Path, branch: str) -> tuple[bool, str]:
    """Merge a task branch into the current branch; on any failure abort and leave it alone."""
    proc = run_git(repo, *identity(repo), "merge", "--no-ff", "--no-edit", branch)
    if proc.returncode == 0:
        return True, f"merged {branch} into {current_branch(repo) or 'HEAD'}"
    if git(repo, "rev-parse", "-q", "--verify", "MERGE_HEAD", check=False).strip():
        git(repo, "merge", "--abort", check=False)
    detail = (proc.stderr or proc.stdout).strip().splitlines()
    return False, f"merge failed, nothing merged: {detail[0] if detail else 'unknown error'}"


# ---------------------------------------------------------------------------- the merge queue


def rev(repo: Path, name: str) -> str | None:
    """The commit `name` names; None when it names none."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
    return out.strip() or None


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """`ancestor` is `descendant` or in its history."""
    return run_git(repo, "merge-base", "--is-ancestor", ancestor, descendant).returncode == 0


@dataclass(frozen=True)
class Squash:
    """A task's changes merged onto another commit, as a tree (no commit, no checkout yet)."""

    tree: str | None  # None when it conflicts
    conflicts: tuple[str, ...] = ()


def squash_tree(repo: Path, onto: str, tip: str) -> Squash:
    """The tree of `onto` plus what `tip` changed since their merge base (a three-way merge
    done in the object store: no worktree, no index); the conflicting paths when it does not
    fit. Works on branches that merged their target meanwhile (a rework), unlike a rebase,
    which replays each commit and meets the same conflict again."""
    proc = run_git(repo, "merge-tree", "--write-tree", "--name-only", "-z", onto, tip)
    if proc.returncode not in (0, 1):
        raise _failure(("merge-tree", onto), proc.stderr.strip())
    head_part = proc.stdout.split("\0\0", 1)[0]
    tree, *files = head_part.split("\0")
    if proc.returncode == 0:
        return Squash(tree.strip())
    return Squash(None, tuple(sorted({f for f in files if f})))


def commit_tree(repo: Path, tree: str, parent: str, message: str) -> str:
    """A commit of `tree` on `parent` (nothing checked out, no ref moved)."""
    return git(repo, *identity(repo), "commit-tree", tree, "-p", parent, "-m", message).strip()


def tree_of(repo: Path, commit: str) -> str:
    return git(repo, "rev-parse", f"{commit}^{{tree}}").strip()


def compare_and_swap(repo: Path, ref: str, new: str, old: str, reason: str) -> bool:
    """Point `ref` at `new` only if it still points at `old` (git's own atomic check under
    the ref's lock); False when someone moved it meanwhile. Never a force."""
    proc = run_git(repo, "update-ref", "-m", reason, ref, new, old)
    if proc.returncode == 0:
        return True
    detail = proc.stderr.strip()
    if _classify(detail) is not GitError:
        raise _failure(("update-ref", ref), detail)
    return False


def checked_out_at(repo: Path, branch: str) -> Path | None:
    """The working tree (the live tree or a linked worktree) that has `branch` checked out."""
    out = git(repo, "worktree", "list", "--porcelain", "-z")
    path: Path | None = None
    for field_ in out.split("\0"):
        if field_.startswith("worktree "):
            path = Path(field_.removeprefix("worktree "))
        elif field_ == f"branch refs/heads/{branch}" and path is not None:
            return path
    return None


def index_matches(tree_root: Path, commit: str) -> bool:
    """The index of the tree at `tree_root` holds exactly `commit`'s tree."""
    proc = run_git(tree_root, "diff-index", "--cached", "--quiet", commit, "--")
    return proc.returncode == 0


def carry_forward(tree_root: Path, old: str, new: str) -> str | None:
    """After its branch moved from `old` to `new`: bring the index and files of the tree that
    has it checked out along (a two-way `read-tree -m -u`: what `git merge --ff-only` does to
    the files, without touching the ref). A local change in its way stops it with nothing
    changed; returns git's words then, else None."""
    proc = run_git(tree_root, "read-tree", "-m", "-u", old, new)
    if proc.returncode == 0:
        return None
    return (proc.stderr or proc.stdout).strip() or "read-tree failed"


def checkout_scratch(repo: Path, path: Path, commit: str) -> None:
    """A detached checkout of `commit` at `path` with nothing else in it: made the first
    time, reused after (a leftover of a killed run included), cleaned of every untracked and
    ignored file so the checks see the commit and only it."""
    if not (path.exists() and _is_worktree_root(path)):
        _keep_and_discard(path, None)
        with worktree_lock(repo):
            _clear_path(repo, path)
            git(repo, "worktree", "add", "--detach", "--no-checkout", "--force", "--", str(path))
    git(path, "checkout", "--detach", "--force", "--quiet", commit)
    git(path, "clean", "-ffdxq")


def task_ids_between(repo: Path, old: str, new: str, paths: tuple[str, ...] = ()) -> list[str]:
    """The `Shopfloor-Task` trailers of the commits in `old..new` (touching `paths` when
    given), newest first, each once."""
    limit = ["--", *paths] if paths else []
    out = git(
        repo,
        "--literal-pathspecs",
        "log",
        "--format=%(trailers:key=Shopfloor-Task,valueonly,separator=%x00)%x1e",
        f"{old}..{new}",
        *limit,
    )
    seen: list[str] = []
    for record in out.split("\x1e"):
        for value in record.split("\0"):
            value = value.strip()
            if value and value not in seen:
                seen.append(value)
    return seen
