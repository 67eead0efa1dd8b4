"""How much git a task costs the daemon (issue 14), and that the savings keep every guarantee.

A task's git processes are counted with an audit hook on `subprocess.Popen` in this process
(the daemon's; an agent's own git is not counted). Real git, real agent subprocesses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shopfloor import actions, config, gitops
from shopfloor.board import Board, Lane
from shopfloor.scheduler import Daemon
from tests.support import agent_command, git, lane_of, make_project

#: The argv of every process this test process started while `recording` ran; None otherwise.
_started: list[list[str]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen" and _started is not None:
        argv = args[1]
        _started.append([os.fsdecode(a) for a in argv] if argv else [os.fsdecode(args[0])])


sys.addaudithook(_audit)  # hooks cannot be removed: it records only inside `recording`


@contextmanager
def recording() -> Iterator[list[list[str]]]:
    """The git commands this process starts inside the block (threads included)."""
    global _started
    _started = []
    gits: list[list[str]] = []
    try:
        yield gits
    finally:
        gits += [argv for argv in _started if Path(argv[0]).name == "git"]
        _started = None


def age(path: Path, seconds: float = 60) -> None:
    """Make `path` look last written `seconds` ago (a config file not being edited now)."""
    when = time.time() - seconds
    os.utime(path, (when, when))


# ---------------------------------------------------------------------------- per task


#: git processes one task takes from backlog/ to done/ (no checks, the coder changes a file,
#: QA changes nothing), the daemon's start-up shared by 4 tasks: 26.5 before issue 14, 11.75
#: after (one status per look at a tree, no lookups for a branch made just now, ...).
PER_TASK_AT_MOST = 13


#: The same counting the processes git starts itself too (`git worktree add -b` starts a
#: `git branch`, `git commit` a `git maintenance`), from GIT_TRACE: 29.5 before, 13 after.
IN_ALL_AT_MOST = 14


def test_a_task_through_the_pipeline_costs_few_git_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = {"backend": "command", "command": agent_command("coder:write", "qa:pass")}
    root = make_project(tmp_path, agents={"a": agent}, pipeline={"checks": []})
    age(root / ".git" / "config")  # as in a repository made before today
    board = Board(root)
    ids = [
        actions.create_task(board, actions.NewTask(f"t{n}", "x", backlog=True)).id for n in range(4)
    ]
    trace = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # every git process says it started
    daemon = Daemon(root, config.load(root / "shopfloor.toml"), once=True)
    with recording() as gits:
        assert daemon.run() == 0
    assert [lane_of(root, task_id) for task_id in ids] == [Lane.DONE] * 4
    kinds = sorted(" ".join(argv[1:3]) for argv in gits)
    assert len(gits) <= PER_TASK_AT_MOST * len(ids), kinds
    started = re.findall(r"trace: built-in: (git [a-z-]+)", trace.read_text())
    assert len(started) <= IN_ALL_AT_MOST * len(ids), sorted(started)


def test_a_crash_after_the_commit_still_finds_the_attempt(tmp_path: Path) -> None:
    """The attempt lookup is skipped only for a branch made just now: a branch left by a
    killed coder is searched, and its committed attempt is not done again."""
    agent = {"backend": "command", "command": agent_command("coder:write", "qa:pass")}
    root = make_project(tmp_path, agents={"a": agent}, pipeline={"checks": []})
    task_id = actions.create_task(Board(root), actions.NewTask("t", "x", backlog=True)).id
    made = gitops.add_worktree(root, tmp_path / "wt", f"shopfloor/{task_id}")
    assert made.created and made.base == git(root, "rev-parse", "HEAD").strip()
    (tmp_path / "wt" / "done.txt").write_text("the killed coder's work\n")
    trailers = {"Shopfloor-Task": task_id, "Shopfloor-Attempt": "1", "Shopfloor-Run": "R-x"}
    sha = gitops.commit_all(tmp_path / "wt", "work", trailers=trailers)
    gitops.remove_worktree(root, tmp_path / "wt")
    again = gitops.add_worktree(root, tmp_path / "wt", f"shopfloor/{task_id}")
    assert not again.created
    gitops.remove_worktree(root, tmp_path / "wt")
    assert Daemon(root, config.load(root / "shopfloor.toml"), once=True).run() == 0
    text = Board(root).find(task_id).path.read_text()
    assert sha is not None and f"coder attempt 1 already committed ({sha[:10]})" in text


# ---------------------------------------------------------------------------- the parts


def test_commit_all_names_the_commit_it_made_in_full(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "app.py").write_text("changed\n")
    with recording() as gits:
        sha = gitops.commit_all(root, f"a change [like {'0' * 40}] this")  # a title says it
    assert sha == git(root, "rev-parse", "HEAD").strip()
    assert [argv[1:2] for argv in gits if "rev-parse" in argv] == []
    assert gitops.commit_all(root, "nothing") is None


def test_the_identity_is_read_once_and_a_changed_one_is_seen(tmp_path: Path) -> None:
    root = make_project(tmp_path)  # no user.email anywhere (conftest)
    age(root / ".git" / "config")
    shopfloor = ["-c", "user.name=Shopfloor", "-c", "user.email=shopfloor@localhost"]
    assert gitops.identity(root) == shopfloor
    with recording() as gits:
        assert gitops.identity(root) == shopfloor
    assert gits == []
    git(root, "config", "user.email", "me@example.org")  # the repository's own config
    assert gitops.identity(root) == []
    git(root, "config", "--unset", "user.email")
    age(root / ".git" / "config")
    assert gitops.identity(root) == shopfloor
    global_config = Path(os.environ["HOME"]) / ".gitconfig"  # a file that was not there
    global_config.write_text("[user]\n\temail = me@example.org\n")
    assert gitops.identity(root) == []


def test_a_worktree_shares_the_identity_its_repository_read(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    age(root / ".git" / "config")
    gitops.identity(root)
    made = gitops.add_worktree(root, tmp_path / "wt", "shopfloor/T-0001")
    with recording() as gits:
        gitops.identity(tmp_path / "wt")
    assert made.created and gits == []


def test_an_identity_from_an_include_is_asked_every_time(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (tmp_path / "who").write_text("[user]\n\temail = me@example.org\n")
    git(root, "config", "include.path", str(tmp_path / "who"))
    age(root / ".git" / "config")
    assert gitops.identity(root) == []
    with recording() as gits:
        assert gitops.identity(root) == []
    assert len(gits) == 1  # an includeIf may depend on the branch: never kept


def test_removal_of_a_folder_with_a_broken_git_inside_the_repository_keeps_it(
    tmp_path: Path,
) -> None:
    """One status looks at a worktree being removed; git must not find the repository
    around a folder whose `.git` is broken and call that folder's files clean."""
    root = make_project(tmp_path)
    folder = root / ".shopfloor" / "worktrees" / "T-0001"
    folder.mkdir(parents=True)
    (folder / ".git").write_text("gitdir: /nowhere\n")
    (folder / "work.txt").write_text("someone's work\n")
    assert gitops.remove_worktree(root, folder) is None
    aside = list((folder.parent / ".stale").iterdir())
    assert [(p / "work.txt").read_text() for p in aside] == ["someone's work\n"]


def test_one_status_tells_head_and_the_changes(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "app.py").write_text("changed\n")
    with recording() as gits:
        state = gitops.tree_state(root)
    assert len(gits) == 1
    assert state.head == git(root, "rev-parse", "HEAD").strip()
    assert dict(state.codes) == {"app.py": " M"}


def test_resolve_names_several_commits_in_one_process(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    head = git(root, "rev-parse", "HEAD").strip()
    with recording() as gits:
        found = gitops.resolve(root, "HEAD", "refs/heads/nope", "main")
    assert found == (head, None, head) and len(gits) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "init", "--quiet"], cwd=empty, check=True)
    assert gitops.resolve(empty, "HEAD") == (None,)


def test_a_coder_killed_between_the_registration_and_the_checkout_starts_again(
    tmp_path: Path,
) -> None:
    """A new branch is made by the worktree's checkout: killed before it, a registered,
    detached, empty worktree and no branch are left; the next add makes both."""
    root = make_project(tmp_path)
    path = root / ".shopfloor" / "worktrees" / "T-0001"
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "worktree", "add", "--detach", "--no-checkout", "--force", "--", str(path), head)
    made = gitops.add_worktree(root, path, "shopfloor/T-0001")
    assert made.created and made.base == head
    assert (path / "app.py").is_file()
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/shopfloor/T-0001"
    assert git(path, "status", "--porcelain").strip() == ""
