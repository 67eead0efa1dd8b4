"""The daemon notices a PM or QA run that changed a tree it must not change (issue 9).

Whatever a CLI can be held to, a change to the live tree (PM, QA) or to QA's worktree made
while the run was going is said in the tracker line and in a `tree_changed` notification —
and nothing is reverted. Real agent subprocesses (the `command` backend running the scripted
pipeline agent), real git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopfloor import actions, config, gitops, treewatch
from shopfloor.board import Board, Lane
from shopfloor.notify import events
from shopfloor.scheduler import Daemon
from tests.support import agent_command, git, lane_of, make_project, tracker


def command_agent(*behaviour: str) -> dict[str, object]:
    return {"backend": "command", "command": agent_command(*behaviour), "timeout": "60s"}


def run_once(root: Path, code: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """One daemon pass (ending with `code`); the notifications it published."""
    sent: list[tuple[str, dict[str, Any]]] = []
    daemon = Daemon(
        root,
        config.load(root / "shopfloor.toml"),
        once=True,
        notify=lambda event, **payload: sent.append((event, payload)),
    )
    assert daemon.run() == code
    return sent


def new_task(root: Path) -> str:
    return actions.create_task(Board(root), actions.NewTask("Add a thing", "do it")).id


def pm_line(root: Path, task_id: str) -> str:
    return next(line for line in tracker(root, task_id).splitlines() if " pm " in line)


def changed(sent: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [payload for event, payload in sent if event == events.TREE_CHANGED]


# ---------------------------------------------------------------------------- PM


def test_a_pm_that_creates_a_file_in_the_live_tree_is_flagged_and_the_file_kept(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, agents={"a": command_agent("pm:spec", "pm:touch=stray.txt")})
    task_id = new_task(root)
    sent = run_once(root)
    line = pm_line(root, task_id)
    assert "WARNING: the live tree changed while the PM ran: stray.txt" in line, line
    assert "nothing was reverted" in line
    assert (root / "stray.txt").read_text() == "pm was here\n"  # never deleted
    [note] = changed(sent)
    assert note["task_id"] == task_id and note["role"] == "pm"
    [change] = note["changes"]
    assert (change["tree"], change["paths"]) == ("the live tree", ["stray.txt"])
    assert change["head_before"] == change["head_after"] == git(root, "rev-parse", "HEAD").strip()
    assert lane_of(root, task_id) is not Lane.INBOX  # the spec itself still counts
    text = events.render(events.TREE_CHANGED, note)
    assert "Changed while the PM ran" in text and "stray.txt" in text


def test_a_pm_that_changes_nothing_is_not_flagged_in_a_dirty_tree(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents={"a": command_agent("pm:spec")})
    (root / "app.py").write_text("# the human's unsaved work\n")
    (root / "notes.txt").write_text("untracked, the human's\n")
    task_id = new_task(root)
    sent = run_once(root)
    assert "WARNING" not in pm_line(root, task_id)
    assert not changed(sent)


def test_a_pm_that_edits_a_file_already_dirty_is_flagged(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents={"a": command_agent("pm:spec", "pm:touch=app.py")})
    (root / "app.py").write_text("# the human's unsaved work\n")
    task_id = new_task(root)
    sent = run_once(root)
    assert "changed while the PM ran: app.py" in pm_line(root, task_id)
    assert (root / "app.py").read_text() == "# the human's unsaved work\npm was here\n"
    assert [c["paths"] for c in changed(sent)[0]["changes"]] == [["app.py"]]


def test_a_pm_that_commits_is_flagged_by_the_moved_head(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, agents={"a": command_agent("pm:spec", "pm:touch=extra.txt", "pm:commit")}
    )
    before = git(root, "rev-parse", "HEAD").strip()
    task_id = new_task(root)
    sent = run_once(root)
    line = pm_line(root, task_id)
    after = git(root, "rev-parse", "HEAD").strip()
    assert after != before
    assert f"HEAD moved {before[:10]} → {after[:10]}" in line, line
    [note] = changed(sent)
    assert note["changes"][0]["head_after"] == after


# ---------------------------------------------------------------------------- QA


def test_qa_that_writes_in_its_worktree_is_flagged(tmp_path: Path) -> None:
    agent = command_agent("pm:spec", "coder:write", "qa:pass", "qa:touch=qa-notes.txt")
    root = make_project(tmp_path, agents={"a": agent})
    task_id = new_task(root)
    sent = run_once(root)
    qa = next(line for line in tracker(root, task_id).splitlines() if " qa " in line)
    assert "WARNING: its worktree changed while QA ran: qa-notes.txt" in qa, qa
    [note] = changed(sent)
    assert note["role"] == "qa"
    assert [c["tree"] for c in note["changes"]] == ["its worktree"]
    # The worktree is gone after the verdict, but its uncommitted work was kept under a ref.
    refs = git(root, "for-each-ref", "--format=%(refname)", f"refs/shopfloor/snapshots/{task_id}")
    assert refs.strip(), "QA's stray file was not kept"


def test_qa_that_writes_in_the_live_tree_is_flagged(tmp_path: Path) -> None:
    agent = command_agent("pm:spec", "coder:write", "qa:pass", "qa:touchroot=from-qa.txt")
    root = make_project(tmp_path, agents={"a": agent})
    task_id = new_task(root)
    sent = run_once(root)
    qa = next(line for line in tracker(root, task_id).splitlines() if " qa " in line)
    assert "WARNING: the live tree changed while QA ran: from-qa.txt" in qa, qa
    assert (root / "from-qa.txt").exists()
    assert [c["tree"] for c in changed(sent)[0]["changes"]] == ["the live tree"]


def test_qa_that_changes_nothing_is_not_flagged(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents={"a": command_agent("pm:spec", "coder:write", "qa:pass")})
    task_id = new_task(root)
    sent = run_once(root)
    assert lane_of(root, task_id) is Lane.DONE
    assert "WARNING" not in tracker(root, task_id)
    assert not changed(sent)


# ---------------------------------------------------------------------------- the parts


def test_status_entries_lists_every_uncommitted_path_outside_the_board(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "sub dir").mkdir()
    (root / "sub dir" / "new file.txt").write_text("x")  # untracked, in a folder, spaces
    (root / "app.py").write_text("changed\n")
    git(root, "mv", "shopfloor.toml", "renamed.toml")
    (root / "tasks" / "inbox" / "T-9-x.md").write_text("the board is not the tree\n")
    entries = gitops.status_entries(root)
    assert entries == {
        "sub dir/new file.txt": "??",
        "app.py": " M",
        "renamed.toml": "R ",
        "shopfloor.toml": "R ",
    }


def test_a_tree_git_cannot_read_is_reported_unknown_not_unchanged(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    before = treewatch.mark(root, "the live tree")
    (root / ".git").rename(root / "not-git")
    seen = treewatch.changes_since(before)
    assert seen.error is not None
    assert "could not be checked" in seen.describe("the PM")


def test_the_steps_own_notification_carries_the_change_too(tmp_path: Path) -> None:
    agent = command_agent("pm:spec", "coder:write", "qa:fail", "qa:touch=qa-notes.txt")
    root = make_project(tmp_path, agents={"a": agent})
    new_task(root)
    sent = run_once(root, code=1)  # 1: a task failed
    failures = [p for e, p in sent if e in (events.QA_FAILED, events.TASK_FAILED)]
    assert failures, sent
    for failed in failures:  # one per QA run: each wrote its file anew in a fresh worktree
        assert [c["paths"] for c in failed["tree_changed"]] == [["qa-notes.txt"]]


def test_a_hotfix_patching_the_live_tree_while_the_pm_runs_is_named_not_blamed_on_the_pm(
    tmp_path: Path,
) -> None:
    """The hotfix works in the live tree by design: its change, seen by the PM's tree check,
    is said to be most likely the hotfix's — no WARNING, no `tree_changed` notification."""
    pm = command_agent("pm:sleep=6", "pm:spec")
    fixer = command_agent("hotfix:sleep=2", "hotfix:patch")
    root = make_project(tmp_path, agents={"pm": pm, "fixer": fixer}, roles={"hotfix": "fixer"})
    task_id = new_task(root)
    hotfix = actions.create_hotfix(Board(root), "prod is down").id
    sent = run_once(root)
    line = pm_line(root, task_id)
    assert f"as hotfix {hotfix} worked in it: app.py" in line, line
    assert "WARNING" not in line
    assert changed(sent) == []


def test_live_tree_writers_name_every_hotfix_at_work_since_a_mark() -> None:
    from shopfloor.shop import LiveTreeWriters

    writers = LiveTreeWriters()
    with writers.working("HOTFIX-before"):
        pass
    with writers.working("HOTFIX-across"):
        mark = writers.mark()
    with writers.working("HOTFIX-during"):
        pass
    assert writers.since(mark) == ["HOTFIX-across", "HOTFIX-during"]
    assert writers.since(writers.mark()) == []
