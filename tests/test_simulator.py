"""The simulator as a newcomer meets it: what it cannot do parks the task once, and the daemon's
log says of every run what the tracker says."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from shopfloor import actions, demo, task
from shopfloor.board import Board, Lane
from tests.support import make_project, shopfloor, tracker

ROOT = Path(__file__).resolve().parent.parent


def test_a_request_without_a_sim_patch_block_is_parked_once_awaiting_a_human(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path)  # the simulator plays every role
    board = Board(root)
    task_id = actions.create_task(board, actions.NewTask("Add dark mode", "Make it dark.")).id
    proc = shopfloor(root, "run", "--once", check=False)
    found = Board(root).find(task_id)
    assert (found.lane, found.header.status) == (Lane.BACKLOG, "awaiting-human"), proc.stderr
    assert found.header.attempts == 0  # no attempt burned
    log = tracker(root, task_id)
    assert log.count("coder sim run") == 1, log  # once, not three times
    assert "cannot act" in log and "sim-patch" in log and "docs/simulator.md" in log
    assert "shopfloor retry" in log
    assert "outcome=cannot-act" in proc.stderr
    assert proc.returncode == 0, proc.stderr  # parked for a person is not a failure


def test_after_a_sim_patch_block_is_added_retry_carries_the_task_through(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    board = Board(root)
    task_id = actions.create_task(board, actions.NewTask("Add a file", "Add hello.txt.")).id
    shopfloor(root, "run", "--once", check=False)
    found = Board(root).find(task_id)
    text = found.path.read_text("utf-8")
    patch = "```sim-patch path=hello.txt\nhello\n```\n"
    found.path.write_text(task.set_section(text, "Request", f"Add hello.txt.\n\n{patch}"), "utf-8")
    shopfloor(root, "retry", task_id)
    shopfloor(root, "run", "--once")
    assert Board(root).find(task_id).lane is Lane.DONE


def test_the_documented_worked_example_runs_as_written(tmp_path: Path) -> None:
    """docs/simulator.md's example request, filed as it says, ends in done/."""
    doc = (ROOT / "docs" / "simulator.md").read_text("utf-8")
    example = re.search(r"<!-- example -->\n````markdown\n(.*?)````", doc, re.DOTALL)
    assert example is not None, "docs/simulator.md lost its worked example"
    check = [sys.executable, "-m", "unittest", "-q"]
    root = make_project(tmp_path, pipeline={"checks": [check]})
    board = Board(root)
    task_id = actions.create_task(board, actions.NewTask("Greet", example.group(1))).id
    shopfloor(root, "run", "--once")
    assert Board(root).find(task_id).lane is Lane.DONE, tracker(root, task_id)
    assert not (root / "greet.py").exists()  # the work is on the task's branch, not here


_RUN_WORD = re.compile(r"run (?P<run>R-\S+) (?P<word>\S+) ")


def test_the_log_and_the_tracker_give_every_run_the_same_verdict(tmp_path: Path) -> None:
    """The demo's QA fails attempt 1 of "Count words": the process ran fine (outcome=ok), the
    tracker says FAIL; the log line must say FAIL too."""
    root = demo.create(tmp_path / "demo")
    proc = shopfloor(root, "run", "--once", check=False)
    said = {}
    for entry in Board(root).scan().entries:
        for m in _RUN_WORD.finditer(tracker(root, entry.id)):
            said[m["run"]] = m["word"]
    logged = {}
    for line in proc.stderr.splitlines():
        if "event=run.end" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            logged[fields["run"]] = fields["verdict"]
    assert "FAIL" in logged.values(), proc.stderr
    assert logged == {run: word for run, word in said.items() if run in logged}
    assert set(logged) == set(said)
    assert "event=stage.end" in proc.stderr and "step=qa-failed" in proc.stderr
