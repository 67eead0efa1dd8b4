"""Stopping, re-running and closing a hotfix: cancel, retry and `hotfix close` (issue 9).

Real git, a real journal, and for the daemon cases a real daemon with a `command` agent that
patches the live tree and then works on until it is stopped (tests/fakes/hanging_hotfix.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from shopfloor import actions, hotfix_report, lifecycle, task
from shopfloor.board import Board, Entry, Lane
from shopfloor.errors import ShopfloorError
from shopfloor.journal import Journal
from shopfloor.runner import Ending, Runner, RunSpec
from shopfloor.scheduler import Daemon
from shopfloor.words import Event
from tests.conftest import wait_until
from tests.support import (
    FAKES,
    git,
    make_project,
    shopfloor,
    start_daemon,
    status_of,
    stop,
    tracker,
)

AGENT = FAKES / "hanging_hotfix.py"


def _project(tmp_path: Path, marks: Path, mode: str = "hang") -> Path:
    command = [sys.executable, str(AGENT), str(marks), mode]
    return make_project(tmp_path, agents={"a": {"backend": "command", "command": command}})


def _commit(root: Path, *paths: str, message: str = "fix") -> str:
    git(root, "add", "--", *paths)
    git(root, "-c", "user.name=h", "-c", "user.email=h@h", "commit", "--quiet", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def _running_hotfix(root: Path, title: str = "Export crashes") -> Entry:
    """A hotfix claimed as the daemon claims it, its start recorded as `do_hotfix` records it,
    and the agent's patch in the live tree — with no daemon (its agent died with it)."""
    board = Board(root)
    entry = actions.create_hotfix(board, title)
    with Journal.for_project(root) as journal:
        hands = lifecycle.Hands(board, journal)
        entry = lifecycle.apply(hands, entry, Event.CLAIMED, "hotfix claimed")
        start = hotfix_report.begin(root, entry.id)
        hotfix_report.end(root, entry.id)
        journal.save_task_state(entry.id, **start.state())
    with open(root / "app.py", "a") as fh:
        fh.write("# hotfix: half a patch\n")
    (root / "hotfix_note.txt").write_text("made by the hotfix agent\n")
    return entry


def _state(root: Path, task_id: str) -> dict[str, Any]:
    with Journal.for_project(root) as journal:
        return journal.task_state(task_id)


def _fields(root: Path, task_id: str) -> dict[str, Any]:
    board = Board(root)
    text = board.read_text(board.find(task_id))
    return dict(
        task.parse_front_matter(text[task.layout(text).fm_start : task.layout(text).fm_end])
    )


# ---------------------------------------------------------------------------- cancel


def test_cancel_of_a_queued_hotfix_withdraws_it_and_retry_files_it_again(tmp_path: Path) -> None:
    """Rule: a hotfix cancelled before its agent started goes to failed/ (closed, nothing ran);
    `retry` brings it back to hotfix/ as a hotfix, never to backlog/ or inbox/."""
    root = make_project(tmp_path)
    board = Board(root)
    entry = actions.create_hotfix(board, "DB down")
    done = actions.cancel_hotfix(board, entry.id)
    assert not done.started and done.left is None
    assert (done.entry.lane, done.entry.header.status) == (Lane.FAILED, "closed")
    assert "before its agent started; nothing ran" in tracker(root, entry.id)
    again = actions.retry(board, entry.id)
    assert (again.lane, again.header.status, again.header.attempts) == (Lane.HOTFIX, "queued", 0)
    assert "runs again as a hotfix, in the live tree" in tracker(root, entry.id)


def test_cancel_of_a_hotfix_waiting_for_its_human_points_to_close_and_retry(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path)
    board = Board(root)
    entry = _running_hotfix(root)
    lifecycle.apply(lifecycle.Hands(board), board.find(entry.id), Event.HOTFIX_RAN, "ran")
    with pytest.raises(ShopfloorError) as refused:
        actions.cancel(board, entry.id)
    message = str(refused.value)
    assert "not running (awaiting-human)" in message
    assert f"shopfloor hotfix close {entry.id}" in message and f"retry {entry.id}" in message


def test_cancel_with_no_daemon_records_what_the_agent_left(tmp_path: Path) -> None:
    """Rule: with no daemon running, `cancel` itself says on the board what the agent left:
    the files changed since its base (not the human's own earlier edit) and where that earlier
    work is saved. The hotfix stays in hotfix/, awaiting-human."""
    root = make_project(tmp_path)
    (root / "README.md").write_text("the human's own work in progress\n")  # before the hotfix
    entry = _running_hotfix(root)
    done = actions.cancel_hotfix(Board(root), entry.id, wait=5)
    assert done.started and done.recorded
    assert (done.entry.lane, done.entry.header.status) == (Lane.HOTFIX, "awaiting-human")
    line = done.left or ""
    assert line.startswith("hotfix agent stopped (cancelled); it left 2 changed files")
    assert "app.py, hotfix_note.txt" in line and "README.md" not in line.split(" saved at ")[0]
    assert f"saved at refs/shopfloor/snapshots/{entry.id}" in line
    lines = tracker(root, entry.id).splitlines()
    assert "human cancelled via cli" in lines[-2] and lines[-1].endswith(line)
    assert _state(root, entry.id)["hotfix_paths"] == ["app.py", "hotfix_note.txt"]


# ---------------------------------------------------------------------------- close


def test_close_refuses_uncommitted_changes_and_force_records_it(tmp_path: Path) -> None:
    """Rule: `hotfix close` refuses while a file the agent changed differs from HEAD (in the
    tree or the index), naming them; `--force` closes it and records that it was uncommitted."""
    root = make_project(tmp_path)
    entry = _running_hotfix(root)
    actions.cancel_hotfix(Board(root), entry.id)
    git(root, "add", "app.py")  # staged is not committed
    with pytest.raises(ShopfloorError) as refused:
        actions.close_hotfix(Board(root), entry.id)
    assert "not committed: app.py, hotfix_note.txt" in str(refused.value)
    assert "--force" in str(refused.value)
    assert Board(root).find(entry.id).lane is Lane.HOTFIX
    closed, _ = actions.close_hotfix(Board(root), entry.id, who="ana via cli", force=True)
    assert closed.lane is Lane.DONE
    fields = _fields(root, entry.id)
    assert fields["closed_by"] == "ana via cli" and fields["closed_uncommitted"] is True
    assert fields["fix_commit"] is None
    last = tracker(root, entry.id).splitlines()[-1]
    assert "hotfix closed by ana via cli; --force: the agent's changes were NOT committed" in last


def test_close_after_a_commit_records_the_commit_that_holds_the_fix(tmp_path: Path) -> None:
    """Rule: the fix commit is the newest commit since the hotfix started that touches the
    agent's files; a later commit of something else is not it."""
    root = make_project(tmp_path)
    entry = _running_hotfix(root)
    actions.cancel_hotfix(Board(root), entry.id)
    fix = _commit(root, "app.py", "hotfix_note.txt", message="Guard the export")
    (root / "other.py").write_text("unrelated\n")
    _commit(root, "other.py", message="unrelated")
    closed, _ = actions.close_hotfix(Board(root), entry.id, who="ana via cli")
    assert closed.lane is Lane.DONE
    fields = _fields(root, entry.id)
    assert fields["fix_commit"] == fix and fields["closed_by"] == "ana via cli"
    assert "closed_uncommitted" not in fields
    assert f"the fix is in commit {fix[:12]} “Guard the export”" in tracker(root, entry.id)


def test_close_without_a_record_of_the_agents_files_says_so(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    board = Board(root)
    entry = actions.create_hotfix(board, "Never ran")
    head = git(root, "rev-parse", "HEAD").strip()
    closed, _ = actions.close_hotfix(board, entry.id, who="telegram")
    assert closed.lane is Lane.DONE and _fields(root, entry.id)["fix_commit"] == head
    assert "what the agent changed is not recorded, so not checked" in tracker(root, entry.id)


# ---------------------------------------------------------------------------- the daemon


def test_a_stop_asked_before_the_agent_starts_still_stops_it(tmp_path: Path) -> None:
    """Rule: a cancel that lands between the claim and the agent's start stops that agent
    before it starts (the stop is kept for the task until its job ends)."""
    root = make_project(tmp_path)
    from shopfloor import config

    shop = Daemon(root, config.load(root / "shopfloor.toml")).shop
    try:
        shop.stop_task("HOTFIX-x", "hotfix cancelled")
        runner = Runner(_spec(root, tmp_path, "R-1", "sleep", "30"))
        shop.track("R-1", "HOTFIX-x", runner)
        began = time.monotonic()
        assert runner.run().ending is Ending.STOPPED and time.monotonic() - began < 5
        shop.clear_stop("HOTFIX-x")  # its job ended: the next run of the task is not stopped
        other = Runner(_spec(root, tmp_path, "R-2", "true"))
        shop.track("R-2", "HOTFIX-x", other)
        assert other.run().ending is Ending.EXITED
    finally:
        shop.journal.close()


def _spec(root: Path, tmp_path: Path, run_id: str, *argv: str) -> RunSpec:
    return RunSpec(
        run_id=run_id, argv=list(argv), cwd=root, env={}, run_dir=tmp_path / run_id,
        timeout=60, stall=60,
    )  # fmt: skip


def _agent(marks: Path, n: int) -> tuple[int, str]:
    """The n-th agent run's (pid, workdir), once it has patched the tree."""
    lines = wait_until(
        lambda: len(marks.read_text().splitlines()) >= n if marks.exists() else 0, 30
    )
    assert lines
    pid, workdir, _ = marks.read_text().splitlines()[n - 1].split()
    return int(pid), workdir


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cancel_stops_a_running_hotfix_retry_reruns_it_close_records_the_fix(
    tmp_path: Path,
) -> None:
    """The story with a running daemon: `cancel` stops the agent (its process is gone), the
    file stays in hotfix/ awaiting-human and the CLI prints what it left; `retry` runs it
    again at once as a hotfix in the live tree; `hotfix close` refuses the uncommitted patch,
    then records the human's commit."""
    marks = tmp_path / "marks.txt"
    root = _project(tmp_path, marks)
    daemon = start_daemon(root)
    try:
        filed = shopfloor(root, "hotfix", "Export crashes").stdout.split()[0]
        pid, workdir = _agent(marks, 1)
        assert Path(workdir).resolve() == root.resolve()
        began = time.monotonic()
        out = shopfloor(root, "cancel", filed).stdout
        assert time.monotonic() - began < 15
        assert f"{filed}  hotfix/  status awaiting-human" in out
        assert "hotfix agent stopped (cancelled); it left 2 changed files" in out, out
        assert "app.py, hotfix_note.txt" in out
        assert _gone(pid)
        entry = Board(root).find(filed)
        assert (entry.lane, entry.header.status) == (Lane.HOTFIX, "awaiting-human")
        assert "hotfix agent stopped (cancelled)" in tracker(root, filed).splitlines()[-1]
        with Journal.for_project(root) as journal:
            (run,) = journal.runs(task_id=filed)
        assert run["outcome"] == "stopped"

        again = shopfloor(root, "retry", filed).stdout
        assert f"{filed}  hotfix/  status queued" in again
        pid2, workdir2 = _agent(marks, 2)  # at once: the watcher saw the file change in place
        assert Path(workdir2).resolve() == root.resolve() and pid2 != pid
        assert not (root / ".shopfloor" / "worktrees" / filed).exists()
        assert Board(root).find(filed).lane is Lane.HOTFIX
        out = shopfloor(root, "cancel", filed).stdout
        assert "hotfix agent stopped (cancelled)" in out and _gone(pid2)

        refused = shopfloor(root, "hotfix", "close", filed, check=False)
        assert refused.returncode == 1
        assert "not committed: app.py, hotfix_note.txt" in refused.stderr
        fix = _commit(root, "app.py", "hotfix_note.txt", message="Guard the export")
        closed = shopfloor(root, "hotfix", "close", filed)
        assert f"the fix is in commit {fix[:12]}" in closed.stdout
        assert Board(root).find(filed).lane is Lane.DONE
        assert _fields(root, filed)["fix_commit"] == fix
        assert _fields(root, filed)["closed_by"].endswith("via cli")
    finally:
        assert stop(daemon) == 0


def test_force_close_is_recorded_from_the_command_line(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    root = _project(tmp_path, marks, mode="finish")
    daemon = start_daemon(root)
    try:
        filed = shopfloor(root, "hotfix", "Export crashes").stdout.split()[0]
        wait_until(lambda: status_of(root, filed) == "awaiting-human", 30)
    finally:
        assert stop(daemon) == 0
    closed = shopfloor(root, "hotfix", "close", filed, "--force")
    assert "--force: the agent's changes were NOT committed: app.py, hotfix_note.txt" in (
        closed.stdout
    )
    assert _fields(root, filed)["closed_uncommitted"] is True


def test_cancel_of_a_hung_hotfix_stays_bounded_without_a_confirmation(tmp_path: Path) -> None:
    """Rule: a daemon that does not confirm the stop in time (here a lock holder that is no
    daemon at all) is waited for at most `wait` seconds; then the tree as it is now is said,
    and nothing is written for the daemon to write later."""
    root = make_project(tmp_path)
    entry = _running_hotfix(root)
    holder = subprocess.Popen(  # holds the repository's daemon lock, as a daemon does
        [sys.executable, "-c", _HOLD_LOCK, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        began = time.monotonic()
        done = actions.cancel_hotfix(Board(root), entry.id, wait=1.0)
        assert 1.0 <= time.monotonic() - began < 5
        assert done.started and not done.recorded
        assert (done.left or "").startswith("hotfix agent stopped (cancelled); it left 2 changed")
        assert "hotfix agent stopped" not in tracker(root, entry.id)  # the daemon's to write
    finally:
        holder.kill()
        holder.communicate()


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from shopfloor.lock import daemon_lock
with daemon_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""
