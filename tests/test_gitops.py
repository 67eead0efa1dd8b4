"""gitops: what the orchestrator commits on a task branch."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor import gitops
from shopfloor.errors import InfrastructureError
from tests.conftest import wait_until
from tests.support import git, make_project


def test_commit_all_leaves_out_the_board_our_state_and_agent_caches(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "app.py").write_text("def answer():\n    return 43\n")
    (root / ".aider.tags.cache.v4").mkdir()
    (root / ".aider.tags.cache.v4" / "cache.db").write_text("x")
    (root / ".aider.chat.history.md").write_text("chat")
    (root / "tasks" / "inbox" / "note.md").write_text("not code")
    sha = gitops.commit_all(root, "change")
    assert sha is not None
    committed = git(root, "show", "--name-only", "--format=", sha).split()
    assert committed == ["app.py"]


def _repo_with_commit(git_repo: Path) -> Path:
    (git_repo / "app.py").write_text("def answer():\n    return 42\n")
    git(git_repo, "add", "--all")
    git(git_repo, "commit", "--quiet", "-m", "initial")
    return git_repo


def test_concurrent_worktree_adds_and_removes_never_fail(git_repo: Path) -> None:
    repo = _repo_with_commit(git_repo)
    errors: list[str] = []

    def worker(n: int) -> None:
        path = repo / ".shopfloor" / "worktrees" / f"T-{n:04d}"
        for _ in range(20):
            try:
                gitops.add_worktree(repo, path, f"shopfloor/T-{n:04d}")
                assert (path / "app.py").is_file()
                gitops.remove_worktree(repo, path)
            except Exception as exc:  # every failure is collected, none hidden
                errors.append(f"T-{n:04d}: {exc}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def _killed_worktree_add(repo: Path, path: Path, branch: str) -> None:
    """Start a real `git worktree add` and SIGKILL it mid-checkout.

    A smudge filter announces that the checkout has begun (the admin entry is locked
    "initializing" by then) and blocks on a FIFO, so the kill lands there every time.
    """
    gate = repo.parent / "gate"
    os.mkfifo(gate)
    started = repo.parent / "checkout-started"
    script = f'touch "{started}"; cat "{gate}" >/dev/null; cat'
    git(repo, "config", "filter.gate.smudge", f"sh -c '{script}'")
    (repo / ".gitattributes").write_text("*.gated filter=gate\n")
    (repo / "big.gated").write_text("data\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "gated file")
    git(repo, "branch", branch)
    proc = subprocess.Popen(
        ["git", "worktree", "add", "--", str(path), branch],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(started.exists, what="the checkout to reach the smudge filter")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    git(repo, "config", "--unset", "filter.gate.smudge")


def test_add_worktree_repairs_an_add_killed_midway(git_repo: Path) -> None:
    repo = _repo_with_commit(git_repo)
    path = repo / ".shopfloor" / "worktrees" / "T-0001"
    _killed_worktree_add(repo, path, "shopfloor/T-0001")
    admin = repo / ".git" / "worktrees" / "T-0001"
    assert (admin / "locked").read_text().strip() == "initializing"
    assert path.exists() and not (path / "big.gated").exists()  # the checkout never finished

    gitops.add_worktree(repo, path, "shopfloor/T-0001")

    assert (path / "big.gated").read_text() == "data\n"
    assert not (admin / "locked").exists()
    assert gitops.current_branch(path) == "shopfloor/T-0001"
    assert git(repo, "worktree", "list").count(str(path)) == 1


def test_add_worktree_repairs_a_locked_entry_with_no_checkout(git_repo: Path) -> None:
    repo = _repo_with_commit(git_repo)
    path = repo / ".shopfloor" / "worktrees" / "T-0002"
    git(repo, "worktree", "add", "--quiet", "-b", "shopfloor/T-0002", "--", str(path))
    (repo / ".git" / "worktrees" / "T-0002" / "locked").write_text("initializing")
    shutil.rmtree(path)
    orphan = repo / ".git" / "worktrees" / "T-00021"  # killed before it wrote its gitdir
    orphan.mkdir()
    (orphan / "locked").write_text("initializing")

    gitops.add_worktree(repo, path, "shopfloor/T-0002")

    assert (path / "app.py").is_file()
    assert sorted(p.name for p in (repo / ".git" / "worktrees").iterdir()) == ["T-0002"]


def test_add_worktree_sets_aside_an_unregistered_folder_in_the_way(git_repo: Path) -> None:
    repo = _repo_with_commit(git_repo)
    path = repo / ".shopfloor" / "worktrees" / "T-0003"
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("someone's notes")

    gitops.add_worktree(repo, path, "shopfloor/T-0003")

    assert (path / "app.py").is_file()
    kept = list((path.parent / ".stale").glob("T-0003-*/notes.txt"))
    assert [p.read_text() for p in kept] == ["someone's notes"]


def test_no_commits_is_its_own_error(git_repo: Path) -> None:
    with pytest.raises(gitops.NoCommitsError, match="commit something first"):
        gitops.add_worktree(git_repo, git_repo / "wt", "shopfloor/T-0001")
    assert not (git_repo / "wt").exists()


# ---------------------------------------------------------------------------- faults and locks


def _worktree(tmp_path: Path, task_id: str = "T-0001") -> tuple[Path, Path]:
    repo = make_project(tmp_path)
    path = repo / ".shopfloor" / "worktrees" / task_id
    gitops.add_worktree(repo, path, f"shopfloor/{task_id}")
    return repo, path


def test_commit_all_names_a_lock_in_the_main_repository_and_repair_leaves_it(
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    (repo / "app.py").write_text("def answer():\n    return 43\n")
    with pytest.raises(gitops.LockedError) as caught:
        gitops.commit_all(repo, "change")
    assert caught.value.lock == lock
    assert f"if no git is running, delete {lock}" in str(caught.value)
    assert isinstance(caught.value, InfrastructureError) and gitops.git_fault(caught.value)
    assert gitops.repair_locks(repo, repo) == []
    assert lock.exists()


def test_repair_locks_removes_a_stale_index_lock_in_our_worktree(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    lock = Path(git(path, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    lock.write_text("")
    (repo / ".git" / "index.lock").write_text("")  # a human's git, maybe: never ours to delete
    (path / "app.py").write_text("def answer():\n    return 43\n")
    with pytest.raises(gitops.LockedError):
        gitops.commit_all(path, "change")

    assert gitops.repair_locks(repo, path) == [lock]

    assert gitops.commit_all(path, "change") is not None
    assert (repo / ".git" / "index.lock").exists()


def test_repair_locks_leaves_a_lock_a_process_holds_open(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    lock = Path(git(path, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    hold = f"import sys; f = open({str(lock)!r}, 'w'); print('held', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        assert gitops.repair_locks(repo, path) == []
        assert lock.exists()
    finally:
        holder.stdin.close()
        holder.wait()
        holder.stdout.close()
    assert gitops.repair_locks(repo, path) == [lock]


def test_repair_locks_ignores_a_folder_that_is_not_a_worktree(tmp_path: Path) -> None:
    repo = make_project(tmp_path)
    folder = repo / ".shopfloor" / "worktrees" / "T-0009"
    folder.mkdir(parents=True)  # git inside it would find the main repository
    (repo / ".git" / "index.lock").write_text("")
    assert gitops.repair_locks(repo, folder) == []
    assert (repo / ".git" / "index.lock").exists()


def test_an_ordinary_git_failure_is_not_a_fault(tmp_path: Path) -> None:
    repo = make_project(tmp_path)
    with pytest.raises(gitops.GitError) as caught:
        gitops.git(repo, "checkout", "no-such-branch")
    assert not isinstance(caught.value, gitops.GitFault)
    assert not gitops.git_fault(caught.value)
    assert gitops.git_fault(OSError(errno.ENOSPC, "No space left on device"))
    assert not gitops.git_fault(ValueError("no"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: a disk that really fills up and can really be made read-only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        repo = disk / "repo"
        repo.mkdir()
        git(repo, "init", "--quiet", "--initial-branch=main")
        _repo_with_commit(repo)
        (repo / "app.py").write_text("def answer():\n    return 43\n")
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, stdin=subprocess.DEVNULL)


def test_a_full_disk_is_a_git_fault(small_disk: Path) -> None:
    with pytest.raises(OSError) as full, open(small_disk / "filler", "wb", buffering=0) as fh:
        while True:
            fh.write(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(gitops.GitFault, match="No space left on device") as caught:
        gitops.commit_all(small_disk / "repo", "change")
    assert isinstance(caught.value, InfrastructureError)


def test_a_read_only_folder_is_a_git_fault(small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(gitops.GitFault, match="Read-only file system") as caught:
        gitops.commit_all(small_disk / "repo", "change")
    assert not isinstance(caught.value, gitops.LockedError)


def test_a_forbidden_folder_is_a_git_fault(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits; the tmpfs tests cover faults as root")
    _repo, path = _worktree(tmp_path)
    gitdir = Path(git(path, "rev-parse", "--absolute-git-dir").strip())
    (path / "app.py").write_text("def answer():\n    return 43\n")
    gitdir.chmod(0o500)
    try:
        with pytest.raises(gitops.GitFault, match="Permission denied"):
            gitops.commit_all(path, "change")
    finally:
        gitdir.chmod(0o700)


# ---------------------------------------------------------------------------- trailers


def test_commits_carry_their_attempt_and_are_found_by_it(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    shas = {}
    for attempt in (1, 2):
        (path / "app.py").write_text(f"def answer():\n    return {42 + attempt}\n")
        trailers = {
            "Shopfloor-Task": "T-0001",
            "Shopfloor-Attempt": str(attempt),
            "Shopfloor-Run": f"R-{attempt}",
        }
        shas[attempt] = gitops.commit_all(path, f"T-0001: answer (attempt {attempt})", trailers)
    message = git(repo, "log", "-1", "--format=%B", "shopfloor/T-0001")
    assert message.rstrip().endswith(
        "\n\nShopfloor-Task: T-0001\nShopfloor-Attempt: 2\nShopfloor-Run: R-2"
    )
    assert gitops.attempt_commit(repo, "shopfloor/T-0001", "T-0001", 1) == shas[1]
    assert gitops.attempt_commit(repo, "shopfloor/T-0001", "T-0001", 2) == shas[2]
    assert gitops.attempt_commit(repo, "shopfloor/T-0001", "T-0001", 3) is None
    assert gitops.attempt_commit(repo, "shopfloor/T-0001", "T-0002", 1) is None
    assert gitops.attempt_commit(repo, "shopfloor/T-0404", "T-0404", 1) is None


def test_a_trailer_cannot_smuggle_a_line(tmp_path: Path) -> None:
    repo = make_project(tmp_path)
    (repo / "app.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="not a git trailer"):
        gitops.commit_all(repo, "change", {"Shopfloor-Task": "T-1\nSigned-off-by: someone"})
    with pytest.raises(ValueError, match="not a git trailer"):
        gitops.commit_all(repo, "change", {"Bad Key": "x"})


# ---------------------------------------------------------------------------- snapshots


def _dirty(path: Path) -> None:
    (path / "app.py").write_text("def answer():\n    return 99\n")
    (path / "new.txt").write_text("brand new\n")
    (path / "tasks" / "inbox" / "scratch.md").write_text("board, never snapshotted\n")


def test_snapshot_keeps_tracked_and_untracked_work_without_touching_the_worktree(
    tmp_path: Path,
) -> None:
    repo, path = _worktree(tmp_path)
    _dirty(path)
    git(path, "add", "new.txt")  # one staged change too: the index must stay as it is
    before = git(path, "status", "--porcelain", "--untracked-files=all")
    head = gitops.head(path)
    ref = "refs/shopfloor/snapshots/T-0001/R-7"

    sha = gitops.snapshot(path, ref)

    assert sha is not None and git(repo, "rev-parse", ref).strip() == sha
    assert git(repo, "rev-parse", f"{sha}^").strip() == head
    assert git(repo, "show", f"{ref}:app.py") == "def answer():\n    return 99\n"
    assert git(repo, "show", f"{ref}:new.txt") == "brand new\n"
    assert "scratch.md" not in git(repo, "ls-tree", "-r", "--name-only", ref)
    assert git(path, "status", "--porcelain", "--untracked-files=all") == before
    assert gitops.head(path) == head
    assert git(path, "diff", "--cached", "--name-only").split() == ["new.txt"]


def test_snapshot_of_a_clean_worktree_is_none(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    (path / "tasks" / "inbox" / "scratch.md").write_text("the board does not count\n")
    assert gitops.snapshot(path, "refs/shopfloor/snapshots/T-0001/R-1") is None
    assert git(repo, "for-each-ref", "refs/shopfloor/") == ""


def test_a_second_snapshot_under_the_same_ref_keeps_the_first(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    ref = "refs/shopfloor/snapshots/T-0001/R-1"
    (path / "one.txt").write_text("1\n")
    first = gitops.snapshot(path, ref)
    (path / "two.txt").write_text("2\n")
    second = gitops.snapshot(path, ref)
    assert first is not None and second is not None and first != second
    assert git(repo, "rev-parse", f"{second}^2").strip() == first


def test_remove_worktree_keeps_dirty_work_under_the_given_ref(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    _dirty(path)
    ref = "refs/shopfloor/snapshots/T-0001/R-7"

    sha = gitops.remove_worktree(repo, path, keep_ref=ref)

    assert not path.exists()
    assert sha is not None and git(repo, "rev-parse", ref).strip() == sha
    assert git(repo, "show", f"{ref}:new.txt") == "brand new\n"
    assert gitops.branch_exists(repo, "shopfloor/T-0001")


def test_remove_and_re_add_without_a_ref_still_keep_the_work(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    _dirty(path)
    assert gitops.remove_worktree(repo, path, keep_ref=None) is not None
    gitops.add_worktree(repo, path, "shopfloor/T-0001")
    (path / "second.txt").write_text("left by a crash\n")
    gitops.add_worktree(repo, path, "shopfloor/T-0001")  # over the crash's leftover

    assert not (path / "second.txt").exists()
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/shopfloor/").split()
    assert len(refs) == 2
    assert all(r.startswith("refs/shopfloor/snapshots/T-0001/removed-") for r in refs)
    kept = {git(repo, "ls-tree", "-r", "--name-only", r) for r in refs}
    assert any("new.txt" in k for k in kept) and any("second.txt" in k for k in kept)


def test_removing_a_clean_worktree_makes_no_snapshot(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    assert gitops.remove_worktree(repo, path) is None
    assert not path.exists()
    assert git(repo, "for-each-ref", "refs/shopfloor/") == ""


# ---------------------------------------------------------------------------- merge base


def test_merge_base_finds_the_fork_point_or_none(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    fork = gitops.head(repo)
    (path / "app.py").write_text("x = 1\n")
    gitops.commit_all(path, "on the branch")
    (repo / "other.py").write_text("y = 2\n")
    gitops.commit_all(repo, "on main")
    assert gitops.merge_base(repo, "HEAD", "shopfloor/T-0001") == fork
    git(repo, "checkout", "--quiet", "--orphan", "unrelated")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "alone")
    assert gitops.merge_base(repo, "unrelated", "shopfloor/T-0001") is None
    assert gitops.merge_base(repo, "main", "no-such-branch") is None


def test_a_killed_add_next_to_a_dirty_worktree_costs_it_nothing(tmp_path: Path) -> None:
    repo, path = _worktree(tmp_path)
    _dirty(path)
    orphan = repo / ".git" / "worktrees" / "T-00011"  # a killed add that never said where to
    orphan.mkdir()
    (orphan / "locked").write_text("initializing")

    gitops.add_worktree(repo, path, "shopfloor/T-0001")

    assert not orphan.exists()
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/shopfloor/").split()
    assert len(refs) == 1 and git(repo, "show", f"{refs[0]}:new.txt") == "brand new\n"


def test_snapshot_in_a_repository_with_no_commits(git_repo: Path) -> None:
    assert gitops.snapshot(git_repo, "refs/shopfloor/snapshots/HOTFIX-1") is None
    (git_repo / "first.txt").write_text("first\n")
    sha = gitops.snapshot(git_repo, "refs/shopfloor/snapshots/HOTFIX-1")
    assert sha is not None
    assert git(git_repo, "rev-list", "--parents", "-n", "1", sha).split() == [sha]
    assert git(git_repo, "show", f"{sha}:first.txt") == "first\n"
    assert git(git_repo, "status", "--porcelain") == "?? first.txt\n"
