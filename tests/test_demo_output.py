"""What a newcomer sees of `shopfloor demo` and of an install: whole lines when the output is
piped, the demo's own test command in the hotfix's steps, no stray warnings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_piped_demo_output_is_not_wrapped_and_names_the_real_test_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,  # not a terminal: rich used to cut every line at 80 columns
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(len(line) > 80 for line in lines)  # long lines stay whole
    for line in lines:  # no piece of a log line broken onto a line of its own
        assert not line.startswith(("role=", "verdict=", "exit=", "— ", "file(s)")), line
        if " run.end " in line:
            assert "outcome=" in line and "secs=" in line, line
    # The hotfix's verification runs the demo's own unittest checks, not pytest.
    verification = proc.stdout.split("Verification recorded by the hotfix agent:")[1]
    assert f"`{sys.executable} -m unittest -q`" in verification
    assert "-m pytest" not in proc.stdout
    # And nothing on stderr: no warning at daemon shutdown, no other noise.
    assert proc.stderr == "", proc.stderr


_CHURN = """
import sys, threading, time
from pathlib import Path
from shopfloor import scaffold, watch
from shopfloor.board import Board

board = Board(scaffold.init(Path(sys.argv[1]), agents=[]).root)
for _ in range(int(sys.argv[2])):
    observers = watch.start(board, lambda lane: None, lambda: None)
    done = threading.Event()

    def churn() -> None:
        n = 0
        while not done.is_set():
            (board.tasks_dir / "inbox" / f"x{n % 5}.md").write_text("x")
            n += 1

    writer = threading.Thread(target=churn)
    writer.start()
    time.sleep(0.03)
    for observer in observers:
        observer.stop()
    for observer in observers:
        observer.join()
    done.set()
    writer.join()
"""


def test_stopping_the_board_watchers_mid_burst_prints_nothing(tmp_path: Path) -> None:
    """watchdog logs an error when an inotify read races the observer's stop; unhandled, Python
    printed it on stderr at every few daemon shutdowns ("... called when the thread is
    inactive"). 100 stops in a burst of file writes: before the fix about 5 printed."""
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHURN), str(tmp_path), "100"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_watchdog_trouble_still_asks_for_a_full_reconcile() -> None:
    import logging

    from shopfloor import watch

    asked: list[bool] = []
    hook = watch._OverflowHook(lambda: asked.append(True))
    logger = logging.getLogger("watchdog")  # where watch.start hangs it: all of watchdog
    logger.addHandler(hook)
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        logging.getLogger("watchdog.observers.inotify").error(
            "InotifyEmitter.queue_events() called when the thread is inactive"
        )
    finally:
        logger.removeHandler(hook)
    assert asked == [True]  # the overflow, not the stop


def test_the_package_metadata_uses_an_spdx_license_string() -> None:
    """setuptools deprecated `project.license` as a table (a warning at every install); the
    SPDX string needs setuptools >= 77, which the build system must then require."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert meta["project"]["license"] == "MIT"
    assert all((ROOT / name).is_file() for name in meta["project"]["license-files"])
    assert "setuptools>=77" in meta["build-system"]["requires"]
