"""The hotfix tells the human the truth: their work is kept, and only the agent's change shown.

Real git throughout: `gitops.capture_worktree` / `changed_since` on real repositories, and
`pipeline.do_hotfix` with `command` agents that edit, commit, or change nothing.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from shopfloor import gitops
from tests.support import git

REF = "refs/shopfloor/snapshots/HOTFIX-0001"


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / ".gitignore").write_text("*.log\n.shopfloor/\n")
    (root / "app.py").write_text("def answer():\n    return 42\n")
    (root / "util.py").write_text("X = 1\n")
    (root / "tasks" / "hotfix").mkdir(parents=True)
    (root / "tasks" / "hotfix" / "HOTFIX-0001.md").write_text("# board\n")
    git(root, "add", "--all")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "initial")
    return root


def _human_edits(root: Path) -> None:
    """Tracked and staged, tracked and unstaged, untracked, ignored, and the board."""
    (root / "app.py").write_text("def answer():\n    return 43  # staged\n")
    git(root, "add", "app.py")
    (root / "app.py").write_text("def answer():\n    return 44  # and then unstaged\n")
    (root / "util.py").unlink()
    (root / "notes").mkdir()
    (root / "notes" / "draft.py").write_text("print('mine')\n")
    (root / "debug.log").write_text("ignored\n")
    (root / "tasks" / "hotfix" / "HOTFIX-0001.md").write_text("# board, changed\n")


def _fingerprint(root: Path) -> tuple[str, str, str]:
    """What a snapshot must leave alone: the index bytes, `git status`, HEAD."""
    index = hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest()
    status = git(root, "--no-optional-locks", "status", "--porcelain=v2", "--untracked-files=all")
    return index, status, git(root, "rev-parse", "HEAD")


# ---------------------------------------------------------------------------- gitops


def test_snapshot_keeps_tracked_and_untracked_work_but_not_ignored_or_the_board(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    head = git(root, "rev-parse", "HEAD").strip()
    _human_edits(root)
    before = _fingerprint(root)
    shot = gitops.capture_worktree(root, REF)
    assert shot.sha is not None and shot.head == head and shot.base == shot.sha
    assert git(root, "rev-parse", REF).strip() == shot.sha
    assert git(root, "rev-parse", f"{REF}^").strip() == head  # parent: HEAD
    files = set(git(root, "ls-tree", "-r", "--name-only", REF).split())
    assert "notes/draft.py" in files and "util.py" not in files and "debug.log" not in files
    unstaged = "def answer():\n    return 44  # and then unstaged\n"
    assert git(root, "show", f"{REF}:app.py") == unstaged
    assert git(root, "show", f"{REF}:tasks/hotfix/HOTFIX-0001.md") == "# board\n"  # not the board
    assert set(shot.paths) == {"app.py", "util.py", "notes/draft.py"}
    assert _fingerprint(root) == before  # index bytes, status and HEAD unchanged
    assert not list((root / ".git").glob("shopfloor-index*"))


def test_a_clean_tree_stores_nothing(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "debug.log").write_text("ignored\n")
    (root / "tasks" / "hotfix" / "HOTFIX-0001.md").write_text("# board, changed\n")
    shot = gitops.capture_worktree(root, REF)
    assert shot.sha is None and shot.paths == () and shot.base == shot.head
    assert gitops.snapshot_worktree(root, REF) is None
    assert git(root, "for-each-ref", "refs/shopfloor/") == ""


def test_a_snapshot_before_the_first_commit_has_no_parent(git_repo: Path) -> None:
    (git_repo / "app.py").write_text("x = 1\n")
    shot = gitops.capture_worktree(git_repo, REF)
    assert shot.sha is not None and shot.head is None
    assert git(git_repo, "rev-list", "--count", REF).strip() == "1"
    assert git(git_repo, "show", f"{REF}:app.py") == "x = 1\n"


def test_a_second_snapshot_under_the_same_ref_keeps_the_first_in_its_reflog(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    (root / "app.py").write_text("first\n")
    first = gitops.snapshot_worktree(root, REF)
    (root / "app.py").write_text("second\n")
    second = gitops.snapshot_worktree(root, REF)
    assert first and second and first != second
    assert git(root, "rev-parse", f"{REF}@{{1}}").strip() == first


def test_concurrent_snapshots_of_one_tree_never_interfere(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _human_edits(root)
    before = _fingerprint(root)
    shas: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def take(n: int) -> None:
        try:
            shas[n] = gitops.snapshot_worktree(root, f"refs/shopfloor/snapshots/HOTFIX-{n:04d}")
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    trees = {git(root, "rev-parse", f"{sha}^{{tree}}").strip() for sha in shas.values() if sha}
    assert len(shas) == 20 and len(trees) == 1  # every one holds the same work
    assert _fingerprint(root) == before
    assert not list((root / ".git").glob("shopfloor-index*"))


def test_changed_since_names_only_what_changed_after_the_base(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _human_edits(root)
    shot = gitops.capture_worktree(root, REF)
    assert shot.sha is not None
    assert gitops.changed_since(root, shot.sha) == []
    before = _fingerprint(root)
    (root / "app.py").write_text("agent\n")  # also the human's
    (root / "fix.py").write_text("new\n")  # untracked
    (root / "notes" / "draft.py").unlink()
    (root / "trace.log").write_text("ignored\n")
    (root / "tasks" / "hotfix" / "HOTFIX-0001.md").write_text("# board, changed again\n")
    assert gitops.changed_since(root, shot.sha) == ["app.py", "fix.py", "notes/draft.py"]
    assert gitops.changed_between(root, str(shot.head), shot.sha) == [
        "app.py",
        "notes/draft.py",
        "util.py",
    ]
    index, _, head = before
    assert (_fingerprint(root)[0], _fingerprint(root)[2]) == (index, head)


def test_commits_between_counts_new_commits_and_spots_rewritten_history(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    old = git(root, "rev-parse", "HEAD").strip()
    for n in range(2):
        (root / "app.py").write_text(f"v{n}\n")
        git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", f"c{n}")
    new = git(root, "rev-parse", "HEAD").strip()
    assert gitops.commits_between(root, old, new) == 2
    assert gitops.commits_between(root, new, old) is None


def test_a_ref_that_is_not_full_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        gitops.capture_worktree(_repo(tmp_path), "HOTFIX-0001")
