"""Trust: no fault of machine or human loses work, and nothing a human drops in a lane hangs us.

FIFOs, sockets and devices in a lane are quarantined without ever being opened; parallel
`new` and `hotfix` never collide; only our own stale temp files are cleaned up.
Anything that could hang on a regression runs with a deadline, so it fails instead.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from shopfloor import _fs, actions
from shopfloor.board import ERROR_SUFFIX, Board, check_task_id
from shopfloor.errors import TaskFormatError
from tests.support import make_project, shopfloor

from .conftest import CliRun

T = TypeVar("T")
DEADLINE = 20.0


def within_deadline(fn: Callable[[], T], timeout: float = DEADLINE) -> T:
    """fn() run in a thread: a call blocked in open(2) on a FIFO fails the test, not hangs it."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed back to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{fn} did not return within {timeout}s (blocked opening a FIFO?)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def task_text(task_id: str, title: str = "A task") -> str:
    return f"---\nid: {task_id}\ntitle: {title}\n---\n# {title}\n\n## Request\nwords\n"


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    # Bound in a child with a relative path: AF_UNIX paths are limited to ~108 bytes, and a
    # bound socket file stays after its process exits.
    code = "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, path.name], cwd=path.parent, check=True)


def make_link_to_fifo(path: Path) -> None:
    """A symlink to a FIFO inside the repository (so not refused as leaving it)."""
    fifo = path.parents[2] / "pipe-target"
    if not fifo.exists():
        os.mkfifo(fifo)
    path.symlink_to(os.path.relpath(fifo, path.parent))


def make_char_device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


SPECIAL = {
    "fifo": (make_fifo, "not a regular file: a FIFO", stat.S_ISFIFO),
    "socket": (make_socket, "not a regular file: a socket", stat.S_ISSOCK),
    "link-to-fifo": (make_link_to_fifo, "not a regular file: a FIFO", stat.S_ISLNK),
    "char-device": (make_char_device, "not a regular file: a character device", stat.S_ISCHR),
}


def sidecar_reason(path: Path) -> str:
    return path.with_name(path.name + ERROR_SUFFIX).read_text().splitlines()[0]


# ---------------------------------------------------------------------------- special files


@pytest.mark.parametrize("lane", ["inbox", "backlog", "hotfix"])
@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_a_special_file_in_a_lane_is_quarantined_unopened(
    project: Path, kind: str, lane: str
) -> None:
    """Rule: a FIFO, socket, device (or a link to one) is quarantined, never opened: opening a
    FIFO blocks until a writer comes, which hung the daemon and `status` forever."""
    make, reason, is_kind = SPECIAL[kind]
    path = project / "tasks" / lane / "weird.md"
    make(path)
    (project / "tasks" / lane / "T-0001-ok.md").write_text(task_text("T-0001"))
    scan = within_deadline(Board(project).sweep)
    assert [e.id for e in scan.entries] == ["T-0001"]
    moved = project / "tasks" / "invalid" / "weird.md"
    assert is_kind(moved.lstat().st_mode), "moved as it is, not copied or replaced"
    assert not path.exists() and not path.is_symlink()
    assert sidecar_reason(moved) == reason
    assert [(q.path.name, q.reason) for q in scan.invalid] == [("weird.md", reason)]


def test_status_with_special_files_returns_and_lists_them(project: Path, cli: CliRun) -> None:
    """Rule: `status` with a FIFO, a socket and a link to a FIFO in inbox/ and backlog/ returns
    (the real CLI, with a timeout so a regression fails) and lists each with its reason."""
    for lane in ("inbox", "backlog"):
        for kind in ("fifo", "socket", "link-to-fifo"):
            SPECIAL[kind][0](project / "tasks" / lane / f"{kind}.md")
    proc = cli(project, "status", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    reasons = {q["path"]: q["reason"] for q in doc["invalid"]}
    names = {Path(p).name for p in reasons}
    assert {"fifo.md", "socket.md", "link-to-fifo.md"} <= names
    assert doc["unreadable"] == []
    assert doc["counts"]["invalid"] == 6  # the second of each name got a .1 suffix
    assert set(reasons.values()) == {
        "not a regular file: a FIFO",
        "not a regular file: a socket",
    }
    again = cli(project, "status", timeout=60)  # and again, with them now in invalid/
    assert again.returncode == 0, again.stderr


def test_read_text_refuses_a_task_swapped_for_a_fifo(project: Path) -> None:
    """Rule: a task file replaced by a FIFO after the scan is refused when read, not waited on."""
    path = project / "tasks" / "backlog" / "T-0001-x.md"
    path.write_text(task_text("T-0001"))
    board = Board(project)
    entry = board.find("T-0001")
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(TaskFormatError, match="not a regular file: a FIFO"):
        within_deadline(lambda: board.read_text(entry))


def test_open_regular_returns_at_once_for_a_fifo(tmp_path: Path) -> None:
    """Rule: the belt and braces for a file swapped between stat and open: a non-blocking open
    and fstat refuse a FIFO at once."""
    fifo = tmp_path / "swapped.md"
    os.mkfifo(fifo)
    with pytest.raises(_fs.NotRegularFileError, match="a FIFO"):
        within_deadline(lambda: _fs.open_regular(fifo))


def test_durable_rename_moves_a_fifo_without_opening_it(tmp_path: Path) -> None:
    """Rule: a durable rename fsyncs only regular files; a FIFO is just renamed."""
    fifo = tmp_path / "a"
    os.mkfifo(fifo)
    within_deadline(lambda: _fs.durable_rename(fifo, tmp_path / "b"))
    assert stat.S_ISFIFO((tmp_path / "b").lstat().st_mode) and not fifo.exists()


def test_a_plain_note_in_inbox_is_still_adopted_beside_a_fifo(project: Path) -> None:
    """Rule: the FIFO check does not cost the adoption of a human's note."""
    os.mkfifo(project / "tasks" / "inbox" / "pipe.md")
    (project / "tasks" / "inbox" / "idea.md").write_text("# Make it faster\n\nplease\n")
    scan = within_deadline(Board(project).sweep)
    assert [e.header.title for e in scan.entries] == ["Make it faster"]
    assert [q.path.name for q in scan.invalid] == ["pipe.md"]


def test_daemon_once_with_a_fifo_in_inbox_finishes(tmp_path: Path) -> None:
    """Rule: `shopfloor run --once` with a FIFO in inbox/ and in hotfix/ finishes and
    quarantines them (a timeout turns a regression into a failure)."""
    root = make_project(tmp_path)
    os.mkfifo(root / "tasks" / "inbox" / "pipe.md")
    os.mkfifo(root / "tasks" / "hotfix" / "HOTFIX-pipe.md")
    proc = shopfloor(root, "run", "--once", timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    invalid = root / "tasks" / "invalid"
    for name in ("pipe.md", "HOTFIX-pipe.md"):
        assert stat.S_ISFIFO((invalid / name).lstat().st_mode)
        assert sidecar_reason(invalid / name) == "not a regular file: a FIFO"


# ---------------------------------------------------------------------------- parallel filing


def _parallel(root: Path, n: int, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """n real `shopfloor` processes started together; each must finish within the deadline."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(n)
    ]
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _leftover_temps(root: Path) -> list[str]:
    return [p.name for p in (root / "tasks").rglob("*") if _fs.TEMP_RE.fullmatch(p.name)]


def test_twenty_parallel_hotfixes_with_one_title_all_file(project: Path) -> None:
    """Rule: 20 `shopfloor hotfix "Same title"` at once all file, as HOTFIX-same-title,
    HOTFIX-same-title-2 .. -20 (each writer has its own temp file; a lost race takes the
    next suffix), without a traceback."""
    results = _parallel(project, 20, "hotfix", "Same title", "--json")
    for proc in results:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    ids = [json.loads(proc.stdout)["id"] for proc in results]
    expected = {"HOTFIX-same-title"} | {f"HOTFIX-same-title-{n}" for n in range(2, 21)}
    assert sorted(ids) == sorted(expected)
    files = sorted(p.name for p in (project / "tasks" / "hotfix").glob("*.md"))
    assert files == sorted(f"{i}.md" for i in expected)
    board = Board(project)
    assert {e.id for e in board.scan().entries} == expected  # each file reads back as its id
    assert _leftover_temps(project) == []


def test_twenty_parallel_new_tasks_get_distinct_ids(project: Path) -> None:
    """Rule: 20 `shopfloor new "x"` at once get 20 distinct ids (the id counter is locked)."""
    results = _parallel(project, 20, "new", "x", "--json")
    for proc in results:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    ids = {json.loads(proc.stdout)["id"] for proc in results}
    assert ids == {f"T-{n:04d}" for n in range(1, 21)}
    assert len(list((project / "tasks" / "inbox").glob("T-*.md"))) == 20
    assert _leftover_temps(project) == []


def test_hotfix_ids_stay_valid_for_long_titles_and_suffixes(project: Path) -> None:
    """Rule: a hotfix id is a valid task id and its file is <id>.md, also with a suffix."""
    board = Board(project)
    title = "Database connection pool exhausted under load " * 4
    first = actions.create_hotfix(board, title)
    second = actions.create_hotfix(board, title)
    symbols = actions.create_hotfix(board, "!!! ??? ***")
    for entry in (first, second, symbols):
        check_task_id(entry.id)
        assert entry.name == f"{entry.id}.md"
    assert second.id == f"{first.id}-2"
    assert symbols.id == "HOTFIX-task"
    assert len(first.id) <= len("HOTFIX-") + 48


# ---------------------------------------------------------------------------- temp files


def _killed_writer_temp(target: Path) -> Path:
    """The temp file a writer leaves when killed mid-write: made by our own code, in a child
    that dies (SIGKILL-like os._exit) before it can rename or remove it."""
    code = (
        "import os, sys\nfrom pathlib import Path\nfrom shopfloor import _fs\n"
        "fd, tmp = _fs._new_temp(Path(sys.argv[1]), 0o600)\n"
        "os.write(fd, b'half a fi')\nprint(tmp, flush=True)\nos._exit(9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 9, proc.stderr
    return Path(proc.stdout.strip())


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old), follow_symlinks=False)


def test_clean_temps_removes_only_our_own_stale_temp_files(project: Path) -> None:
    """Rule: at start, temp files a killed writer of ours left in the lanes and under
    .shopfloor/ go; an editor's swap file, a person's dotfile, a young temp (a live writer's),
    anything under .shopfloor/worktrees/, and anything not exactly our pattern stay."""
    state = project / ".shopfloor"
    (state / "runs" / "R-0001").mkdir(parents=True, exist_ok=True)
    (state / "worktrees" / "T-0001").mkdir(parents=True, exist_ok=True)
    ours = [
        _killed_writer_temp(project / "tasks" / "inbox" / "T-0001-x.md"),
        _killed_writer_temp(project / "tasks" / "invalid" / "x.md.error.txt"),
        _killed_writer_temp(project / "tasks" / "hotfix" / "HOTFIX-db.md"),
        _killed_writer_temp(state / "next-id"),
        _killed_writer_temp(state / "runs" / "R-0001" / "meta.json"),
    ]
    young = _killed_writer_temp(project / "tasks" / "backlog" / "T-0002-y.md")
    in_worktree = _killed_writer_temp(state / "worktrees" / "T-0001" / "app.py")
    inbox = project / "tasks" / "inbox"
    humans = [inbox / ".foo.md.swp", inbox / ".hidden.md", inbox / "notes.tmp"]
    humans += [inbox / ".x.md.sf-zzzzzzzzzzzz.tmp", inbox / ".x.md.sf-0123456789ab.tmp.bak"]
    humans += [inbox / ".x.md.new.tmp", state / ".y.sf-0123456789ab.tmpx"]
    for path in humans:
        path.write_text("a person's bytes\n")
    lookalike_dir = inbox / ".d.md.sf-0123456789ab.tmp"
    lookalike_dir.mkdir()
    lookalike_fifo = inbox / ".f.md.sf-abcdefabcdef.tmp"
    os.mkfifo(lookalike_fifo)
    for path in [*ours, in_worktree, *humans, lookalike_dir, lookalike_fifo]:
        _age(path, 3600)
    removed = within_deadline(lambda: Board(project).clean_temps(older_than=60))
    assert sorted(removed) == sorted(ours)
    assert not any(p.exists() for p in ours)
    for kept in [young, in_worktree, *humans, lookalike_dir, lookalike_fifo]:
        assert kept.exists(), kept


def test_temp_files_of_ours_match_the_clean_up_pattern(tmp_path: Path) -> None:
    """Rule: what atomic_write and create_exclusive leave when killed is what clean-up
    recognises, and editor names are not."""
    leftover = _killed_writer_temp(tmp_path / "T-0001-x.md")
    assert leftover.parent == tmp_path
    assert _fs.TEMP_RE.fullmatch(leftover.name)
    for name in (".T-0001-x.md.swp", ".T-0001-x.md.tmp", "T-0001-x.md~", ".hidden.md"):
        assert not _fs.TEMP_RE.fullmatch(name)


def test_daemon_start_cleans_stale_temps(tmp_path: Path) -> None:
    """Rule: `shopfloor run` removes a stale temp of ours left in a lane when it starts."""
    root = make_project(tmp_path)
    stale = _killed_writer_temp(root / "tasks" / "inbox" / "T-0001-x.md")
    _age(stale, 3600)
    swap = root / "tasks" / "inbox" / ".T-0001-x.md.swp"
    swap.write_text("vim\n")
    _age(swap, 3600)
    proc = shopfloor(root, "run", "--once", timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and swap.exists()
