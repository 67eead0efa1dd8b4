"""Rework (issue 12 item 4, issue 11 item 5): a task goes back to the Coder with notes, on its
branch. Real daemon passes, real git, a real `command` agent that keeps its prompts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shopfloor import actions, config, lifecycle, task
from shopfloor.board import Board, Lane
from shopfloor.errors import ShopfloorError
from shopfloor.journal import Journal
from shopfloor.scheduler import Daemon
from shopfloor.words import Event
from tests.support import FAKES, edit_fields, git, lane_of, make_project, shopfloor, task_state

OK_CHECK = [sys.executable, "-c", "print('1 passed')"]
RECORDER = FAKES / "recording_agent.py"
#: The heading of the rework notes in the Coder's prompt (besides the task file's own section).
SENT_BACK = "## Rework notes (the task was sent back to you"


def run_once(root: Path) -> int:
    return Daemon(root, config.load(root / "shopfloor.toml"), once=True).run()


def recorder(record: Path) -> dict[str, object]:
    return {"backend": "command", "command": [sys.executable, str(RECORDER), str(record)]}


def shop_with_recorder(tmp_path: Path, **pipeline: object) -> tuple[Path, Path]:
    record = tmp_path / "record"
    agents = {"a": recorder(record)}
    root = make_project(tmp_path, agents=agents, pipeline={"checks": [OK_CHECK], **pipeline})
    return root, record


def new(root: Path, title: str = "Add a flag") -> str:
    spec = "1. Add the flag.\n2. Tests pass."
    return actions.create_task(Board(root), actions.NewTask(title, spec, backlog=True)).id


def text_of(root: Path, task_id: str) -> str:
    board = Board(root)
    return board.read_text(board.find(task_id))


def with_stdin(root: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", "-C", str(root), *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


def board_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in (root / "tasks").rglob("*.md")}


# ---------------------------------------------------------------------------- end to end


def test_rework_from_done_continues_on_the_branch_with_the_notes(tmp_path: Path) -> None:
    """Rule: `shopfloor rework` sends a done task back to backlog/ with fresh attempts and its
    branch as it was; the next Coder prompt shows the notes, its worktree holds the first
    attempt's commit, and QA's diff still starts at the original base."""
    root, record = shop_with_recorder(tmp_path)
    task_id = new(root)
    assert run_once(root) == 0 and lane_of(root, task_id) is Lane.DONE
    branch = f"shopfloor/{task_id}"
    first = git(root, "rev-parse", branch).strip()
    base = task_state(root, task_id)["base"]

    proc = shopfloor(
        root, "rework", task_id, "-m", "Rename the flag to --all.", "-m", "Keep --every as alias."
    )
    assert proc.stdout.strip() == f"{task_id}  backlog/  status queued"
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status, entry.header.attempts) == (Lane.BACKLOG, "queued", 0)
    assert git(root, "rev-parse", branch).strip() == first  # the branch is kept as it was
    notes = task.get_section(text_of(root, task_id), "Rework notes") or ""
    assert "Rename the flag to --all.\n\nKeep --every as alias." in notes
    assert "via cli" in notes.splitlines()[0] and notes.startswith("### ")

    assert run_once(root) == 0 and lane_of(root, task_id) is Lane.DONE
    prompt = (record / "coder-2.md").read_text()
    assert SENT_BACK in prompt and "Rename the flag to --all." in prompt
    assert first in (record / "coder-2.head").read_text().split()  # continues from attempt 1
    commits = git(root, "rev-list", f"{base}..{branch}").split()
    assert len(commits) == 2 and commits[1] == first
    assert git(root, "show", f"{branch}:work.txt").count("coder run") == 2
    assert task_state(root, task_id)["base"] == base
    qa_prompt = (record / "qa-2.md").read_text()  # the diff from the original base: both runs
    assert "+coder run 1, attempt 1" in qa_prompt and "+coder run 2, attempt 1" in qa_prompt
    assert f"rework via {_who()}: Rename the flag" in text_of(root, task_id)


def _who() -> str:
    import getpass

    return f"{getpass.getuser()} via cli"


def test_rework_from_failed_shows_qa_notes_and_rework_notes_to_the_coder(tmp_path: Path) -> None:
    """Rule: a task that failed QA for good can be reworked (notes from stdin, `-F -`); the
    Coder's prompt carries QA's notes and the rework notes, and it starts from its branch."""
    root, record = shop_with_recorder(tmp_path, max_attempts=1)
    record.mkdir()
    (record / "verdict").write_text("fail")
    task_id = new(root)
    assert run_once(root) == 1 and lane_of(root, task_id) is Lane.FAILED
    first = git(root, "rev-parse", f"shopfloor/{task_id}").strip()

    proc = with_stdin(root, "", "rework", task_id, "-F", "-", "--json")
    assert proc.returncode == 1 and "rework needs notes" in proc.stderr  # empty notes refused
    proc = with_stdin(root, "Handle the empty input.\n", "rework", task_id, "-F", "-", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    where = (doc["schema"], doc["id"], doc["lane"], doc["status"])
    assert where == (1, task_id, "backlog", "queued")
    assert doc["attempts"] == 0 and doc["max_attempts"] == 1

    (record / "verdict").write_text("pass")
    assert run_once(root) == 0 and lane_of(root, task_id) is Lane.DONE
    prompt = (record / "coder-2.md").read_text()
    assert "scripted QA fail: mind the edge case" in prompt  # QA's notes
    assert "Handle the empty input." in prompt  # the rework notes
    assert prompt.index("## Notes from the previous attempt") < prompt.index(SENT_BACK)
    assert first in (record / "coder-2.head").read_text().split()


def test_rework_from_review_replaces_the_waiting_worktree_and_keeps_every_round(
    tmp_path: Path,
) -> None:
    """Rule: a task waiting in review/ (its QA agent cannot run, so it is parked there with its
    worktree) can be reworked; each round's notes are kept, dated and signed, and the Coder
    works in a fresh worktree on the same branch."""
    record = tmp_path / "record"
    agents = {
        "a": recorder(record),
        "q": {"backend": "command", "command": [str(tmp_path / "no-such-qa-agent")]},
    }
    root = make_project(tmp_path, agents=agents, roles={"qa": "q"}, pipeline={"checks": [OK_CHECK]})
    task_id = new(root)
    run_once(root)
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.REVIEW, "awaiting-human")
    worktree = root / ".shopfloor" / "worktrees" / task_id
    assert (worktree / "work.txt").exists()  # the checked-out attempt QA was to read
    first = git(root, "rev-parse", f"shopfloor/{task_id}").strip()

    shopfloor(root, "rework", task_id, "-m", "First round: rename it.")
    assert lane_of(root, task_id) is Lane.BACKLOG
    assert git(root, "rev-parse", f"shopfloor/{task_id}").strip() == first
    board = Board(root)
    actions.rework(board, task_id, "Second round: and\n## not a heading", who="telegram")
    notes = task.get_section(text_of(root, task_id), "Rework notes") or ""
    assert notes.index("First round") < notes.index("Second round")
    assert f"— {_who()}" in notes and "— telegram" in notes
    assert "\\## not a heading" in notes  # a person's text cannot open a section
    assert task.get_section(text_of(root, task_id), "not a heading") is None

    run_once(root)  # the Coder runs again; QA still cannot, so it parks in review/ again
    assert lane_of(root, task_id) is Lane.REVIEW
    prompt = (record / "coder-2.md").read_text()
    assert "First round: rename it." in prompt and "Second round: and" in prompt
    assert first in (record / "coder-2.head").read_text().split()
    assert (worktree / "work.txt").read_text().count("coder run") == 2


def test_a_retry_after_failing_runs_the_coder_again_on_its_branch(tmp_path: Path) -> None:
    """Rule: attempts start again at 1 after a retry; the branch's earlier "attempt 1" commit is
    not taken for this round's (the Coder runs again instead of being skipped)."""
    root, record = shop_with_recorder(tmp_path, max_attempts=1)
    record.mkdir()
    (record / "verdict").write_text("fail")
    task_id = new(root)
    assert run_once(root) == 1 and lane_of(root, task_id) is Lane.FAILED
    shopfloor(root, "retry", task_id)
    (record / "verdict").write_text("pass")
    assert run_once(root) == 0 and lane_of(root, task_id) is Lane.DONE
    assert (record / "coder-2.md").exists()
    assert git(root, "show", f"shopfloor/{task_id}:work.txt").count("coder run") == 2


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("lane", "status", "said"),
    [
        ("inbox", "queued", "nothing is coded yet"),
        ("backlog", "awaiting-approval", "waits for approval"),
        ("review", "running", "is running in review/"),
        ("done", "closed", "its branch has landed"),
    ],
)
def test_rework_is_refused_with_a_clear_error_and_changes_nothing(
    project: Path, lane: str, status: str, said: str
) -> None:
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Refuse me", "spec", backlog=True))
    target = project / "tasks" / lane / entry.name
    entry.path.rename(target)
    edit_fields(target, status=status)
    before = board_bytes(project)
    with pytest.raises(ShopfloorError, match=said):
        actions.rework(board, entry.id, "Change it.")
    assert board_bytes(project) == before
    with Journal.for_project(project) as journal:
        assert journal.task_state(entry.id) == {}


def test_rework_refusals_through_the_cli(project: Path) -> None:
    """Rule: a hotfix, a task with no spec in failed/ and empty notes are refused by the CLI
    with one line and exit 1; nothing on the board changes."""
    board = Board(project)
    hotfix = actions.create_hotfix(board, "Prod is down")
    bare = actions.create_task(board, actions.NewTask("No spec yet"))
    bare.path.rename(project / "tasks" / "failed" / bare.name)
    edit_fields(project / "tasks" / "failed" / bare.name, status="closed")
    before = board_bytes(project)
    cases = [
        ([hotfix.id, "-m", "x"], "is a hotfix"),
        ([bare.id, "-m", "x"], "never got a spec"),
        ([bare.id], "rework needs notes"),
        ([bare.id, "-m", "  "], "rework needs notes"),
    ]
    for args, said in cases:
        proc = shopfloor(project, "rework", *args, check=False)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and said in lines[0], lines
    assert board_bytes(project) == before


def test_the_lifecycle_refuses_a_rework_of_a_task_a_run_owns(project: Path) -> None:
    """Rule: the table itself refuses a running task (the CAS re-checks what actions read)."""
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Owned", "spec", backlog=True))
    target = project / "tasks" / "review" / entry.name
    entry.path.rename(target)
    edit_fields(target, status="running")
    with Journal.for_project(project) as journal:
        hands = lifecycle.Hands(board, journal)
        with pytest.raises(lifecycle.TransitionRefused, match="rework needs status"):
            lifecycle.apply(hands, board.find(entry.id), Event.REWORK, "x")


# ---------------------------------------------------------------------------- comments


def test_format_comments_lists_each_inline_comment_with_its_line() -> None:
    text = actions.format_comments(
        "Mostly good.",
        [
            {"path": "src/app.py", "line": 12, "text": "rename this", "quote": "    return 42"},
            {"path": "README.md", "line": None, "text": "say it\nshorter"},
            {"path": "odd.py", "line": 3, "text": "x", "quote": "a = `b`"},
        ],
    )
    assert text == (
        "Mostly good.\n\nComments on the diff:\n\n"
        "- `src/app.py:12` — rename this\n"
        "  > `    return 42`\n"
        "- `README.md` — say it shorter\n"
        "- `odd.py:3` — x\n"
        "  > `` a = `b` ``"
    )
    assert actions.format_comments("", [{"path": "a", "line": 1, "text": "t"}]).startswith(
        "Comments on the diff:"
    )


@pytest.mark.parametrize(
    "comment",
    [{"path": "", "line": 1, "text": "t"}, {"path": "a", "line": 0, "text": "t"},
     {"path": "a", "line": "3", "text": "t"}, {"path": "a", "line": 1, "text": " "}],
)  # fmt: skip
def test_format_comments_refuses_a_malformed_comment(comment: dict[str, object]) -> None:
    with pytest.raises(ShopfloorError, match="comment 1"):
        actions.format_comments("note", [comment])
    with pytest.raises(ShopfloorError, match="needs a note"):
        actions.format_comments(" ", [])
