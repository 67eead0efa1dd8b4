"""Fresh daemons under a burst: every job finds its agent backend.

The backend registry loads on the first run of a process. It used to be published while it
was still being filled, so a fresh daemon given several jobs at once sent some of them to
"unknown agent backend 'claude' (available: command)": a hotfix parked with no agent run, a
task's attempt burned. Here the agent is named `claude` but played by the simulator (any
backend but `command`, which registered first, showed it), and each trial is a new daemon
process given three hotfixes, three backlog specs and two inbox requests in the same instant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from shopfloor import actions
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from tests.conftest import wait_until
from tests.support import make_project, start_daemon, status_of, stop, tracker

TRIALS = 6
HOTFIXES = 5
BACKLOG = 2
INBOX = 1


def patch(path: str, content: str) -> str:
    """A request the simulator carries out: write `content` to `path`."""
    return f"Change {path}.\n\n```sim-patch path={path}\n{content}\n```\n"


def file_burst(root: Path) -> tuple[list[str], list[str]]:
    """Hotfix ids and task ids, all filed before the daemon starts (its first tick claims
    them together)."""
    board = Board(root)
    hotfixes = [
        actions.create_hotfix(board, f"prod down {n}", body=patch(f"fix_{n}.py", f"X = {n}")).id
        for n in range(HOTFIXES)
    ]
    tasks = []
    for n in range(BACKLOG + INBOX):
        spec = actions.NewTask(f"task {n}", patch(f"feature_{n}.py", f"Y = {n}"), n < BACKLOG)
        tasks.append(actions.create_task(board, spec).id)
    return hotfixes, tasks


def all_done(root: Path, task_ids: list[str]) -> bool:
    """Every task went through its pipeline and waits for its merge (no run is still going)."""
    lanes = {e.id: e.lane for e in Board(root).scan().entries}
    return all(lanes.get(t) in (Lane.DONE, Lane.FAILED) for t in task_ids)


def test_a_burst_of_hotfixes_and_tasks_into_fresh_daemons_all_reach_their_agent(
    tmp_path: Path,
) -> None:
    for trial in range(TRIALS):
        here = tmp_path / f"trial-{trial}"
        here.mkdir()
        one_fresh_daemon(make_project(here, agents={"claude": {"backend": "simulator"}}), trial)


def one_fresh_daemon(root: Path, trial: int) -> None:
    hotfixes, tasks = file_burst(root)
    daemon = start_daemon(root)
    try:
        for hotfix_id in hotfixes:
            wait_until(
                lambda h=hotfix_id: status_of(root, h) == "awaiting-human",
                30,
                f"trial {trial}: {hotfix_id} awaiting a human",
            )
        wait_until(lambda: all_done(root, tasks), 60, f"trial {trial}: tasks through")
    finally:
        assert stop(daemon) == 0
    check_every_job_ran(root, hotfixes, tasks, trial)


def check_every_job_ran(root: Path, hotfixes: list[str], tasks: list[str], trial: int) -> None:
    with Journal.for_project(root) as journal:
        runs = journal.runs()
    for hotfix_id in hotfixes:
        lines = tracker(root, hotfix_id)
        assert "unknown agent backend" not in lines, f"trial {trial}: {lines}"
        assert "hotfix claude run R-" in lines, f"trial {trial}: {lines}"
        assert [r["outcome"] for r in runs if r["task_id"] == hotfix_id] == ["ok"], lines
        n = hotfixes.index(hotfix_id)
        assert (root / f"fix_{n}.py").read_text().strip() == f"X = {n}"
    board = Board(root)
    for task_id in tasks:
        entry = board.find(task_id)
        lines = tracker(root, task_id)
        assert "unknown agent backend" not in lines, f"trial {trial}: {lines}"
        assert entry.lane is Lane.DONE and entry.header.attempts == 1, lines  # none burned
        outcomes = [r["outcome"] for r in runs if r["task_id"] == task_id]
        assert outcomes and set(outcomes) == {"ok"}, (task_id, outcomes, lines)
    # Nothing was left half-done in the live tree beyond the hotfixes' own files.
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "feature_" not in status, status
