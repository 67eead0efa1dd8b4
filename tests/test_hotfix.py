"""The hotfix tells the human the truth: their work is kept, and only the agent's change shown.

Real git throughout: `gitops.capture_worktree` / `changed_since` on real repositories, and
`pipeline.do_hotfix` with `command` agents that edit, commit, or change nothing.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shopfloor import actions, config, gitops, hotfix_report, pipeline, task
from shopfloor.board import Board, Lane
from shopfloor.errors import InfrastructureError
from shopfloor.notify import events
from shopfloor.scheduler import Daemon
from tests.conftest import wait_until
from tests.support import FAKES, git, make_project, run_hotfix_once, task_state, tracker

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
    (root / "notes" / "odd [1] *.py").write_text("a name git could read as a pattern\n")
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
    assert git(root, "show", f"{REF}:notes/odd [1] *.py").startswith("a name")
    assert set(shot.paths) == {"app.py", "util.py", "notes/draft.py", "notes/odd [1] *.py"}
    assert _fingerprint(root) == before  # index bytes, status and HEAD unchanged
    assert not list((root / ".git").glob("shopfloor-index*"))


def test_a_staged_rename_is_kept_as_a_rename(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    git(root, "mv", "util.py", "helpers.py")
    shot = gitops.capture_worktree(root, REF)
    assert set(shot.paths) == {"util.py", "helpers.py"}
    assert git(root, "ls-tree", "-r", "--name-only", REF).split() == [
        ".gitignore",
        "app.py",
        "helpers.py",
        "tasks/hotfix/HOTFIX-0001.md",
    ]


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
        "notes/odd [1] *.py",
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


def test_branches_with_new_commits_names_other_branches_not_ours_or_old_ones(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "branch", "old-work")
    since = time.time() - 1
    for branch in ("elsewhere", "shopfloor/T-0001"):
        sha = git(root, "commit-tree", "-p", "HEAD", "-m", "new", "HEAD^{tree}").strip()
        git(root, "update-ref", f"refs/heads/{branch}", sha)
    assert gitops.branches_with_new_commits(root, since, head, "main") == ["elsewhere"]
    assert gitops.branches_with_new_commits(root, time.time() + 60, head, "main") == []


def test_hotfixes_in_the_same_tree_know_of_each_other(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    first = hotfix_report.begin(root, "HOTFIX-a")
    second = hotfix_report.begin(root, "HOTFIX-b")
    hotfix_report.end(root, second.task_id)
    assert hotfix_report.alongside(root, "HOTFIX-a") == ["HOTFIX-b"]  # met, though it ended
    hotfix_report.end(root, first.task_id)
    alone = hotfix_report.begin(root, "HOTFIX-c")
    assert hotfix_report.alongside(root, "HOTFIX-c") == []
    hotfix_report.end(root, alone.task_id)


@pytest.mark.parametrize("dirty", [True, False])
def test_hotfixes_filed_at_once_share_one_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dirty: bool
) -> None:
    root = _repo(tmp_path)
    if dirty:
        _human_edits(root)
    before = _fingerprint(root)
    captures: list[str] = []
    real = gitops.capture_worktree

    def capture(where: Path, ref: str) -> gitops.Snapshot:
        captures.append(ref)  # the first one waits until all twenty have arrived
        wait_until(lambda: len(hotfix_report._running) == 20, 10, "twenty hotfixes began")
        return real(where, ref)

    monkeypatch.setattr(gitops, "capture_worktree", capture)
    starts: dict[str, hotfix_report.Start] = {}
    ids = [f"HOTFIX-{n:04d}" for n in range(20)]
    threads = [
        threading.Thread(target=lambda i=i: starts.update({i: hotfix_report.begin(root, i)}))
        for i in ids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(captures) == 1 and len(starts) == 20
        shas = {start.snapshot for start in starts.values()}
        assert len(shas) == 1
        refs = git(root, "for-each-ref", "--format=%(objectname)", "refs/shopfloor/snapshots/")
        assert refs.split() == ([next(iter(shas))] * 20 if dirty else [])
        for i in ids if dirty else []:  # each keeps a reflog: a later snapshot hides none
            git(root, "reflog", "exists", hotfix_report.snapshot_ref(i))
        assert all(hotfix_report.alongside(root, i) == sorted(set(ids) - {i}) for i in ids)
        assert _fingerprint(root) == before
    finally:
        for i in ids:
            hotfix_report.end(root, i)


# ---------------------------------------------------------------------------- do_hotfix


def _project(tmp_path: Path, *script: str) -> Path:
    """A project whose hotfix agent runs tests/fakes/hotfix_agent.py with `script`."""
    agent = [sys.executable, str(FAKES / "hotfix_agent.py"), *script]
    root = make_project(
        tmp_path, agents={"a": {"backend": "command", "command": agent, "timeout": "60s"}}
    )
    (root / "util.py").write_text("X = 1\n")
    git(root, "add", "util.py")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "util")
    return root


def _dirty(root: Path) -> None:
    """The human's work in progress when the pager goes off."""
    (root / "app.py").write_text("def answer():\n    return 41  # the human's edit\n")
    (root / "util.py").write_text("X = 2  # the human's edit\n")
    (root / "mine.py").write_text("print('the human, untracked')\n")


def _hotfix(root: Path) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """File a hotfix and run the daemon once; the task id and the notifications sent."""
    return run_hotfix_once(root, "prod down")


def _payload(sent: list[tuple[str, dict[str, Any]]], event: str) -> dict[str, Any]:
    return next(p for e, p in sent if e == event)


def _pasted(root: Path, line: str, command_start: str) -> subprocess.CompletedProcess[str]:
    """Run the backquoted command in a tracker line, as a person pasting it into a shell."""
    command = next(part for part in line.split("`") if part.startswith(command_start))
    return subprocess.run(shlex.split(command), cwd=root, capture_output=True, text=True)


def test_an_agent_editing_the_humans_file_is_told_apart_from_the_human(tmp_path: Path) -> None:
    root = _project(tmp_path, "append=app.py", "create=fix.py", "verify")
    head = git(root, "rev-parse", "HEAD").strip()
    _dirty(root)
    task_id, sent = _hotfix(root)
    ref = f"refs/shopfloor/snapshots/{task_id}"
    log = tracker(root, task_id)
    lines = log.splitlines()
    # Before the agent: the human's work is saved, and the tracker says where and how back.
    saved = next(line for line in lines if "your uncommitted work (3 files" in line)
    assert ref in saved and "git restore --source=" in saved
    state = task_state(root, task_id)
    assert hotfix_report.Start.from_state(task_id, state) == hotfix_report.Start(
        task_id,
        state["hotfix_snapshot"],
        head,
        ("app.py", "util.py", "mine.py"),  # as git status lists them
        state["hotfix_started_at"],
        "main",
    )
    assert git(root, "rev-parse", ref).strip() == state["hotfix_snapshot"] == state["hotfix_base"]
    assert state["hotfix_head_before"] == state["hotfix_head_after"] == head
    assert state["hotfix_paths"] == ["app.py", "fix.py"]  # never util.py or mine.py
    started = _payload(sent, events.HOTFIX_STARTED)
    assert started["snapshot"] == ref and started["snapshot_files"] == 3
    assert "saved at " + ref in events.render(events.HOTFIX_STARTED, started)
    # After: only the agent's change, with the file both touched named.
    summary = lines[-1]
    assert "hotfix changed 2 files since your snapshot" in summary and "app.py, fix.py" in summary
    assert "untracked (not in git diff): fix.py" in summary
    assert "util.py" not in summary and "mine.py" not in summary
    both = next(line for line in lines if "also changed by you before the hotfix: app.py" in line)
    shown = _pasted(root, both, "git show ")
    assert shown.stdout == "def answer():\n    return 41  # the human's edit\n"
    assert "WARNING" not in log and "changed nothing" not in log
    waiting = _payload(sent, events.HOTFIX_AWAITING_HUMAN)
    assert waiting["paths"] == ["app.py", "fix.py"] and waiting["overlap"] == ["app.py"]
    text = events.render(events.HOTFIX_AWAITING_HUMAN, waiting)
    assert "Changed 2 files: app.py, fix.py" in text and "Also changed by you" in text
    # The human's work survived in the tree, beside the agent's.
    assert (root / "app.py").read_text().startswith("def answer():\n    return 41  # the human")
    assert "hotfix: guarded" in (root / "app.py").read_text()
    assert (root / "util.py").read_text() == "X = 2  # the human's edit\n"
    assert (root / "mine.py").exists()
    # The commands in the tracker work when pasted: the diff shows the agent's line only...
    diff = _pasted(root, summary, "git diff ")
    assert diff.returncode == 0 and "+# hotfix: guarded" in diff.stdout
    changes = [ln for ln in diff.stdout.splitlines() if ln[:1] in "+-" and ln[:3] not in "+++---"]
    assert changes == ["+# hotfix: guarded"] and "mine.py" not in diff.stdout
    # ...and the restore puts back the tree as the human left it (the agent's edit undone).
    restore = _pasted(root, saved, "git restore ")
    assert restore.returncode == 0, restore.stderr
    assert (root / "app.py").read_text() == "def answer():\n    return 41  # the human's edit\n"
    assert (root / "util.py").read_text() == "X = 2  # the human's edit\n"
    assert Board(root).find(task_id).lane is Lane.HOTFIX  # the board was not restored


def test_an_agent_that_commits_is_flagged_loudly(tmp_path: Path) -> None:
    root = _project(tmp_path, "append=app.py", "verify", "commit")
    head = git(root, "rev-parse", "HEAD").strip()
    (root / "util.py").write_text("X = 2  # the human's edit\n")  # `commit -a` takes it too
    task_id, sent = _hotfix(root)
    after = git(root, "rev-parse", "HEAD").strip()
    assert after != head
    log = tracker(root, task_id)
    assert (
        f"WARNING: a commit was made while the hotfix agent ran: HEAD moved {head[:10]} → "
        f"{after[:10]} (1 new commit)" in log
    )
    assert "the fix is (at least partly) in those commits" in log
    assert "WARNING: those commits also hold your uncommitted work from before the hotfix: " in log
    state = task_state(root, task_id)
    assert (state["hotfix_head_before"], state["hotfix_head_after"]) == (head, after)
    assert state["hotfix_paths"] == ["app.py"]  # against the snapshot: not the human's util.py
    waiting = _payload(sent, events.HOTFIX_AWAITING_HUMAN)
    assert waiting["head_moved"] is True and waiting["commits"] == 1
    text = events.render(events.HOTFIX_AWAITING_HUMAN, waiting)
    assert "⚠️ WARNING: a commit was made while the hotfix agent ran" in text


def test_an_agent_that_switches_branch_and_commits_is_flagged(tmp_path: Path) -> None:
    root = _project(tmp_path, "branch=quickfix", "append=app.py", "commit")
    task_id, _ = _hotfix(root)
    log = tracker(root, task_id)
    assert "HEAD was on main, now on quickfix" in log and "WARNING" in log
    assert "INCOMPLETE: no ## Verification steps recorded" in log


def test_an_agent_that_changes_nothing_says_so_even_in_a_dirty_tree(tmp_path: Path) -> None:
    root = _project(tmp_path)  # no words: the agent changes nothing
    _dirty(root)
    task_id, sent = _hotfix(root)
    log = tracker(root, task_id)
    last = log.splitlines()[-1]
    assert "hotfix changed nothing: no file differs from your snapshot" in last
    assert "verify, commit" not in last and "app.py" not in last
    assert task_state(root, task_id)["hotfix_paths"] == []
    waiting = _payload(sent, events.HOTFIX_AWAITING_HUMAN)
    assert waiting["changed_nothing"] is True
    text = events.render(events.HOTFIX_AWAITING_HUMAN, waiting)
    assert text.startswith("🚨 Hotfix changed nothing") and "changed no file" in text
    assert "Verify" not in text and "INCOMPLETE" not in text and "waits for you" not in text
    assert (root / "app.py").read_text() == "def answer():\n    return 41  # the human's edit\n"


def test_a_clean_tree_gets_no_snapshot_and_no_snapshot_line(tmp_path: Path) -> None:
    root = _project(tmp_path, "append=app.py", "verify")
    head = git(root, "rev-parse", "HEAD").strip()
    task_id, sent = _hotfix(root)
    log = tracker(root, task_id)
    assert "uncommitted work" not in log and "refs/shopfloor" not in log
    assert f"hotfix changed 1 file since HEAD ({head[:12]}): app.py" in log
    assert git(root, "for-each-ref", "refs/shopfloor/") == ""
    state = task_state(root, task_id)
    assert "hotfix_snapshot" not in state and state["hotfix_base"] == head
    assert _payload(sent, events.HOTFIX_STARTED)["snapshot"] is None


def test_the_simulator_claims_no_change_it_did_not_make(tmp_path: Path) -> None:
    root = make_project(tmp_path)  # the simulator; the request has no sim-patch block
    task_id, _ = _hotfix(root)
    text = Board(root).read_text(Board(root).find(task_id))
    assert task.get_section(text, "Verification") is None
    log = tracker(root, task_id)
    assert "changed nothing: no sim-patch block" in log and "hotfix changed nothing" in log


def test_the_simulator_records_verification_only_for_a_change_it_made(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    request = "```sim-patch path=app.py\ndef answer():\n    return 42  # guarded\n```\n"
    fixed = actions.create_hotfix(Board(root), "prod down", request)
    Daemon(root, config.load(root / "shopfloor.toml"), once=True).run()
    board = Board(root)
    assert task.get_section(board.read_text(board.find(fixed.id)), "Verification")
    assert "hotfix changed 1 file since HEAD" in tracker(root, fixed.id)
    # The same patch again: already there, so this time nothing is claimed.
    again = actions.create_hotfix(board, "prod down again", request)
    Daemon(root, config.load(root / "shopfloor.toml"), once=True).run()
    board = Board(root)
    assert task.get_section(board.read_text(board.find(again.id)), "Verification") is None
    assert "already applied" in tracker(root, again.id)
    assert "hotfix changed nothing" in tracker(root, again.id)
    assert "INCOMPLETE" not in tracker(root, again.id)


def test_snapshot_ref_is_the_pipeline_s_too() -> None:
    assert pipeline.snapshot_ref("HOTFIX-x") == "refs/shopfloor/snapshots/HOTFIX-x"


def test_the_waiting_message_without_a_report_still_reads_as_before() -> None:
    """The scheduler's own payload (an interrupted run) has none of the report's fields."""
    payload = {"task_id": "HOTFIX-x", "ok": False, "incomplete": True, "summary": "interrupted"}
    text = events.render(events.HOTFIX_AWAITING_HUMAN, payload)
    assert text.startswith("🚨 Hotfix waits for you") and "did not finish cleanly" in text
    assert "INCOMPLETE" in text and "/close HOTFIX-x" in text


def test_the_waiting_message_names_hotfixes_that_ran_beside_it() -> None:
    payload = {"task_id": "HOTFIX-x", "paths": ["a.py"], "paths_count": 1, "alongside": ["H-2"]}
    text = events.render(events.HOTFIX_AWAITING_HUMAN, payload)
    assert "Changed 1 file: a.py" in text and "Ran beside H-2 in the same tree" in text


def test_a_journal_that_cannot_be_written_never_stops_a_hotfix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, "append=app.py", "verify")
    _dirty(root)

    def full(*args: object, **fields: object) -> None:
        raise InfrastructureError("cannot write the journal: database or disk is full")

    monkeypatch.setattr(pipeline, "save_state", full)
    task_id, _ = _hotfix(root)
    assert "hotfix: guarded" in (root / "app.py").read_text()  # the agent ran
    log = tracker(root, task_id)
    assert "your uncommitted work (3 files" in log
    assert "hotfix changed 1 file since your snapshot" in log.splitlines()[-1]


def test_a_snapshot_that_fails_never_stops_a_hotfix_and_is_said_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, "append=app.py", "verify")
    _dirty(root)

    def broken(where: Path, ref: str) -> gitops.Snapshot:
        raise gitops.GitFault("git add failed: No space left on device")

    monkeypatch.setattr(gitops, "capture_worktree", broken)
    task_id, sent = _hotfix(root)
    assert "hotfix: guarded" in (root / "app.py").read_text()  # the agent ran
    log = tracker(root, task_id)
    assert "WARNING: your uncommitted work could NOT be saved before the agent started" in log
    assert "No space left on device" in log
    assert "the files named here may hold your changes too" in log
    started = _payload(sent, events.HOTFIX_STARTED)
    assert "could NOT be saved" in events.render(events.HOTFIX_STARTED, started)
    assert _payload(sent, events.HOTFIX_AWAITING_HUMAN)["warnings"]
