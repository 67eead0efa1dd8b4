"""A daemon restarting on an unchanged board does work in proportion to what changed (issue 14,
item 4): before it is ready it lists done/ once and opens none of its files but the one a
person edited while the daemon was down, and that edit (same size, same mtime) is seen.

What the daemon touches is observed, not assumed: a `sitecustomize` on its PYTHONPATH installs
an audit hook (PEP 578) that writes each listing and each open under done/ to stderr, where
the daemon's own log lines go; the ready line (`notify.daemon_started`, or `daemon_recovered`
when the start put a task right) splits before from after.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import wait_until
from tests.invariants import kill_leftovers
from tests.support import agent_command, make_project, stop

BOARD = 3_000
#: Files written this long ago count as settled (the header cache skips younger ones).
LONG_AGO = 3_600
#: The ready line: daemon_recovered when the start put a task right (the edited one).
READY = re.compile(rb"event=notify\.daemon_(started|recovered)")
HOOK = """\
import os
import sys

_WATCHED = os.environ["SHOPFLOOR_TEST_AUDIT"]


def _audit(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(_WATCHED):
            os.write(2, f"audit {event} {os.fspath(path)}\\n".encode())


sys.addaudithook(_audit)
"""


def fill_done(done: Path, count: int) -> None:
    """`count` closed tasks, as a board at rest holds them, written long ago."""
    for n in range(1, count + 1):
        path = done / f"T-{n:05d}-task-{n}.md"
        path.write_text(
            f"---\nid: T-{n:05d}\ntitle: Task {n}\ntype: feature\npriority: P2\nstatus: closed\n"
            f"attempts: 1\nmax_attempts: 3\ndepends_on: []\ncreated: 2026-11-25T10:00:00Z\n"
            f"updated: 2026-11-25T10:00:00Z\n---\n# Task {n}\n\n## Request\nWords.\n\n"
            "## Tracker\n- x\n"
        )
        st = path.stat()
        os.utime(path, (st.st_atime - LONG_AGO, st.st_mtime - LONG_AGO))


def run_until_ready(root: Path, env: dict[str, str], log: Path) -> bytes:
    """Start the daemon, wait for its daemon_started line, stop it; its stderr up to then."""
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        wait_until(lambda: READY.search(log.read_bytes()), 45, "the daemon is ready")
    finally:
        stop(daemon)  # type: ignore[arg-type]  # stderr is a file: no text pipe to read
    text = log.read_bytes()
    ready = READY.search(text)
    assert ready is not None, text[-3000:]
    return text[: ready.start()]


def test_a_restart_lists_done_once_and_reads_only_the_file_edited_meanwhile(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path, agents={"idle": {"backend": "command", "command": agent_command("*:hang")}}
    )
    done = root / "tasks" / "done"
    fill_done(done, BOARD)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "SHOPFLOOR_TEST_AUDIT": str(done.resolve())}
    try:
        first = run_until_ready(root, env, tmp_path / "first.log")
        assert b"audit os.scandir" in first, first[-3000:]  # the hook works: the cold start lists
        # While the daemon is down, a person edits a closed task in place: same size, same
        # mtime (`closed` and `queued` are both six letters); only its ctime tells.
        edited = done / "T-00042-task-42.md"
        before = edited.stat()
        edited.write_text(edited.read_text().replace("status: closed", "status: queued"))
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert edited.stat().st_size == before.st_size

        restart = run_until_ready(root, env, tmp_path / "restart.log")
    finally:
        kill_leftovers(root)
    audited = [line.split(" ", 2)[1:] for line in restart.decode().splitlines()]
    audited = [pair for pair in audited if len(pair) == 2 and pair[0].startswith(("os.", "open"))]
    listings = [where for event, where in audited if event in ("os.scandir", "os.listdir")]
    assert listings == [str(done.resolve())], restart[-3000:]  # done/ listed once, not twice
    folder = str(done.resolve())  # opened to fsync a rename into it: not a file read
    opened = {Path(where).name for event, where in audited if event == "open" and where != folder}
    assert opened, restart[-3000:]  # the edited file was read (and put right)
    assert all(edited.name in name for name in opened), opened  # it and its temp files only
    # The edit was seen: `queued` means nothing in done/, so the restart put it right.
    text = edited.read_text()
    assert "status: closed" in text and "status queued means nothing in done/" in text, text
