"""`shopfloor board` (`status --watch`): the board full-screen, redrawn as task files move.

The lanes are watched with watchdog (`watch.start`, inotify on Linux), not polled: an event
wakes the loop through a pipe and the board is read again. Once a second the running runs
are read again too (from the journal), so their ages and last output lines stay current
without rescanning the lanes. Keys are read in cbreak mode; q (or Ctrl-C) quits and the
terminal is given back as it was.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shopfloor import boardview, runlogs
from shopfloor.display import safe
from shopfloor.errors import ShopfloorError
from shopfloor.project import Project

#: Seconds between redraws when nothing moves (run ages, last output lines, the clock).
TICK = 1.0
#: Bytes read from the end of a run's log to find its last line.
_TAIL_BYTES = 4096


def last_output_line(run_dir: Path) -> str:
    """The last non-blank line a run wrote (stdout.log, else stderr.log), "" when none."""
    for name in ("stdout.log", "stderr.log"):
        try:
            with open(run_dir / name, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - _TAIL_BYTES))
                tail = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        for line in reversed(tail.splitlines()):
            if line.strip():
                return line.strip()
    return ""


def run_lines(root: Path, runs: list[dict[str, Any]], width: int) -> list[str]:
    """Each running run (task, role, agent, age) and, under it, the last line it printed."""
    base = runlogs.runs_dir(root)
    lines = []
    for run in runs:
        lines.append(boardview.run_line(run, width, True))
        last = last_output_line(base / run["run_id"])
        if last:
            lines.append(boardview.paint(boardview.fit(f"  > {safe(last)}", width), "dim", True))
    return lines


def screen_lines(
    proj: Project, report: dict[str, Any], width: int, height: int, show_all: bool
) -> list[str]:
    """One frame: a title line, the counts, the running runs, the tasks, the notes; cut to
    the screen's height with a line saying how many did not fit."""
    clock = time.strftime("%H:%M:%S")
    head = boardview.fit(f"shopfloor board  {safe(proj.root)}", width - len(clock) - 12)
    title = f"{boardview.pad(head, width - len(clock) - 11)}q quits  {clock}"
    lines = [boardview.paint(title, "bold", True)]
    lines.extend(boardview.count_lines(report, width, True))
    lines.extend(run_lines(proj.root, report["runs"], width))
    rows, left_out = boardview.select_rows(report, show_all)
    lines.extend(boardview.task_lines(rows, width, True))
    if left_out:
        lines.append(boardview.paint(f"not listed: {', '.join(left_out)}", "dim", True))
    others = report | {"runs": []}  # the runs are listed above, with their output
    lines.extend(boardview.note_lines(others, width, True))
    if len(lines) > height:
        hidden = len(lines) - height + 1
        lines = [*lines[: height - 1], boardview.paint(f"… {hidden} more lines", "dim", True)]
    return lines


@contextlib.contextmanager
def _keys(stream: Any) -> Iterator[int | None]:
    """The terminal in cbreak mode (keys arrive one by one, Ctrl-C still interrupts); the
    previous mode restored on the way out. None when stdin is not a terminal."""
    if not stream.isatty():
        yield None
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wake_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    return read_end, write_end


def run(proj: Project, show_all: bool) -> None:
    """Show the live board until q or Ctrl-C."""
    if not sys.stdout.isatty():
        raise ShopfloorError("the live board needs a terminal; `shopfloor status` prints it once")
    with contextlib.suppress(KeyboardInterrupt):  # how one leaves a live view: not an error
        _loop(proj, show_all)


def _loop(proj: Project, show_all: bool) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from shopfloor import watch
    from shopfloor.cli.board_cmds import status_document

    console = Console(highlight=False)
    read_end, write_end = _wake_pipe()

    def wake(*_: object) -> None:  # from watchdog's threads
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(write_end, b"x")

    observers = watch.start(proj.board, wake, wake)
    try:
        with (
            _keys(sys.stdin) as keys,
            Live(console=console, screen=True, auto_refresh=False) as live,
        ):
            report = status_document(proj, sweep=False)
            while True:
                width, height = console.size
                frame = screen_lines(proj, report, width, height, show_all)
                live.update(Text.from_ansi("\n".join(frame)), refresh=True)
                ready, _, _ = select.select(
                    [read_end, *([keys] if keys is not None else [])], [], [], TICK
                )
                if (
                    keys is not None
                    and keys in ready
                    and os.read(keys, 32).lower().startswith(b"q")
                ):
                    return
                if read_end in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(read_end, 4096)
                    report = status_document(proj, sweep=False)
                else:
                    report = _with_fresh_runs(proj, report)
    finally:
        for observer in observers:
            observer.stop()
        for observer in observers:
            observer.join(timeout=2)
        os.close(read_end)
        os.close(write_end)


def _with_fresh_runs(proj: Project, report: dict[str, Any]) -> dict[str, Any]:
    """The same board with the running runs (their ages move every second) and the
    engine's state read again."""
    from shopfloor import actions
    from shopfloor.cli.board_cmds import journal_extras

    extras = journal_extras(proj.root)
    runs = [actions.run_json(r) for r in extras["runs"]]
    return report | {"runs": runs, "engine": extras["engine"]}
