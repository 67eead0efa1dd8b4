"""`shopfloor board` (`status --watch`) in a real terminal: tmux runs it in a 100×30 pane and
the test reads the screen back (`tmux capture-pane -p`). The board must redraw when a task
file moves (watchdog, not a poll of the lanes), show a running run with its last output
line, and quit on q leaving no process behind."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor import actions
from shopfloor.board import Board
from shopfloor.journal import open_journal
from shopfloor.paths import StatePaths

from .conftest import CliRun, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it for CI)"
)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A private tmux server (its own socket), killed at the end whatever happened."""
    base = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True)


def screen(tmux: list[str]) -> str:
    proc = subprocess.run([*tmux, "capture-pane", "-p", "-t", "board"], capture_output=True)
    return proc.stdout.decode("utf-8", "replace")


def shown(tmux: list[str], *needles: str) -> str:
    """The screen once it holds every needle, else "" (for wait_until)."""
    text = screen(tmux)
    return text if all(n in text for n in needles) else ""


def line_of(text: str, task_id: str) -> str:
    return next((line for line in text.splitlines() if task_id in line.split()), "")


def start_board(tmux: list[str], root: Path, *args: str) -> Path:
    """`shopfloor ARGS` in the pane; returns the file its exit code is written to when it
    ends (the pane then closes)."""
    status = root.parent / "board.exit"
    env = {"PYTHONPATH": os.pathsep.join(sys.path), "TERM": "xterm-256color"}
    board = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), sys.executable,
                        "-m", "shopfloor", *args])  # fmt: skip
    command = f"{board}; echo $? > {shlex.quote(str(status))}"
    size = ["-x", "100", "-y", "30"]
    subprocess.run(
        [*tmux, "new-session", "-d", *size, "-s", "board", "-c", str(root), command], check=True
    )
    return status


def exit_code(status: Path) -> str:
    return status.read_text().strip() if status.exists() else ""


def test_the_live_board_redraws_when_a_file_moves_and_quits_on_q(
    project: Path, tmux: list[str]
) -> None:
    board = Board(project)
    moved = actions.create_task(board, actions.NewTask("Retry Telegram sends with backoff"))
    actions.create_task(board, actions.NewTask("Add a --since flag to logs"))
    actions.create_hotfix(board, "DB down")
    run_dir = StatePaths(project).runs_dir / "R-7"
    run_dir.mkdir(parents=True)
    (run_dir / "stdout.log").write_text("reading notify/telegram.py\nediting send() now\n\n")
    with open_journal(project) as journal:
        journal.insert_run("R-7", "HOTFIX-db-down", "hotfix", agent="codex", state="running")

    status = start_board(tmux, project, "board")
    first = wait_until(lambda: shown(tmux, "q quits", moved.id), 30, "the board on the screen")
    assert isinstance(first, str)
    assert line_of(first, moved.id).startswith("inbox ")
    assert "HOTFIX-db-down hotfix codex R-7 for" in first
    assert "> editing send() now" in first  # the run's last output line
    table = [line.split() for line in first.splitlines() if line.split()[1:2] in (["P0"], ["P2"])]
    assert [row[0] for row in table] == ["hotfix", "inbox", "inbox"]  # hotfixes first
    assert all(len(line) <= 100 for line in first.splitlines())

    os.rename(moved.path, project / "tasks" / "backlog" / moved.path.name)
    wait_until(
        lambda: line_of(screen(tmux), moved.id).startswith("backlog "),
        10,
        "the board redrawn with the task in backlog/",
    )

    subprocess.run([*tmux, "send-keys", "-t", "board", "q"], check=True)
    assert wait_until(lambda: exit_code(status), 10, "the board to quit on q") == "0"


def test_status_watch_quits_cleanly_on_ctrl_c(project: Path, tmux: list[str]) -> None:
    actions.create_task(Board(project), actions.NewTask("Something to show"))
    status = start_board(tmux, project, "status", "--watch")
    wait_until(lambda: shown(tmux, "q quits", "T-0001"), 30, "the board on the screen")
    subprocess.run([*tmux, "send-keys", "-t", "board", "C-c"], check=True)
    assert wait_until(lambda: exit_code(status), 10, "the board to quit on Ctrl-C") == "0"


def test_the_live_board_wants_a_terminal(project: Path, cli: CliRun) -> None:
    proc = cli(project, "board")
    assert proc.returncode == 1
    assert "needs a terminal" in proc.stderr
