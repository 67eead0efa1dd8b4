"""`status` from what is already known (issue 14): the daemon's socket, the status index.

The definition of the document is the scan (`status_document` over `actions.status_report`);
the index and the daemon must print the very same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor import statusd, statusdoc
from shopfloor.cli.board_cmds import status_document
from shopfloor.display import safe_json
from shopfloor.journal import open_journal
from shopfloor.project import Project
from shopfloor.status_index import StatusIndex
from shopfloor.statusd import StatusServer

from .conftest import CliRun, wait_until
from .support import start_daemon, stop


def task_text(task_id: str, title: str, lane_status: str = "queued") -> str:
    return (
        f"---\nid: {task_id}\ntitle: {title}\ntype: bug\npriority: P1\nstatus: {lane_status}\n"
        f"depends_on: [T-0001]\ncreated: 2026-11-25T10:00:00Z\n---\n# {title}\n\n"
        "## Request\nwords\n"
    )


def put(root: Path, lane: str, name: str, text: str, settled: bool = True) -> Path:
    path = root / "tasks" / lane / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if settled:  # older than the index's racy window, as a real board's files are
        old = time.time() - 3600
        os.utime(path, (old, old))
    return path


def age(path: Path, seconds: float = 60.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def scanned_text(root: Path) -> str:
    """What `status --json` printed to a program before the index: the scan's document."""
    return safe_json(json.dumps(status_document(Project(root.resolve())), ensure_ascii=False))


def a_board(root: Path) -> None:
    """Every kind of line: lanes, odd titles, a conflict, an unknown folder, a quarantined
    file (the scan's sweep moves the bad file first, so both sides see the same board)."""
    put(root, "inbox", "T-0001-a.md", task_text("T-0001", "Plain"))
    put(root, "backlog", "T-0002-b.md", task_text("T-0002", "Ünïcode \u202e bidi \x1b[31m"))
    put(root, "done", "T-0003-c.md", task_text("T-0003", "Done", "closed"))
    put(root, "done", "T-0004-d.md", task_text("T-0004", "Twice", "closed"))
    put(root, "failed", "T-0004-d.md", task_text("T-0004", "Twice", "awaiting-human"))
    put(root, "review", "HOTFIX-x.md", task_text("HOTFIX-x", "'quoted' \"title\""))
    (root / "tasks" / "misc").mkdir()
    put(root, "active", "broken.md", "no front matter at all\n")
    scanned_text(root)  # quarantines broken.md


# ---------------------------------------------------------------------------- no daemon


def test_the_index_prints_the_scans_bytes_cold_and_warm(project: Path, cli: CliRun) -> None:
    a_board(project)
    want = scanned_text(project)
    index_file = Path(statusd.index_path(str(project)))
    assert not index_file.exists()
    assert statusd.status_text(str(project), ask_daemon=False) == want  # cold: builds it
    assert index_file.exists() and stat.S_IMODE(index_file.stat().st_mode) == 0o600
    assert statusd.status_text(str(project), ask_daemon=False) == want  # warm
    shown = cli(project, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == want + "\n"


def test_the_fast_path_takes_c_like_the_cli(project: Path, tmp_path: Path, cli: CliRun) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Here"))
    (project / "src" / "deep").mkdir(parents=True)
    for args in (("-C", str(project / "src" / "deep")), ("--directory", str(project))):
        shown = cli(tmp_path, *args, "status", "--json")
        assert shown.returncode == 0 and shown.stdout == scanned_text(project) + "\n"
    not_a_folder = cli(tmp_path, "-C", str(project / "shopfloor.toml"), "status", "--json")
    assert not_a_folder.returncode == 2 and "is a file" in not_a_folder.stderr


def test_the_human_status_reads_the_same_document(project: Path, cli: CliRun) -> None:
    from shopfloor import boardview

    a_board(project)
    report = status_document(Project(project.resolve()))
    want = "".join(f"{line}\n" for line in boardview.status_lines(report, 80, True, False))
    Path(statusd.index_path(str(project))).unlink(missing_ok=True)
    for _ in range(2):  # cold, then from the index
        shown = cli(project, "status", "--all", "--width", "80")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == want


def test_a_hand_edit_of_the_same_size_is_read_again(project: Path) -> None:
    path = put(project, "backlog", "T-0001-x.md", task_text("T-0001", "Title AAAA"))
    assert '"Title AAAA"' in (statusd.status_text(str(project), ask_daemon=False) or "")
    before = path.stat()
    path.write_text(task_text("T-0001", "Title BBBB"))  # same size, as an editor saves it
    later = before.st_mtime + 7
    os.utime(path, (later, later))  # settled, but another mtime
    assert path.stat().st_size == before.st_size
    text = statusd.status_text(str(project), ask_daemon=False) or ""
    assert '"Title BBBB"' in text and "AAAA" not in text
    assert text == scanned_text(project)


def test_a_task_moved_by_mv_shows_in_its_new_lane(project: Path) -> None:
    path = put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Moving"))
    assert (
        json.loads(statusd.status_text(str(project), ask_daemon=False) or "")["counts"]["inbox"]
        == 1
    )
    os.rename(path, project / "tasks" / "backlog" / path.name)  # mv keeps inode and mtime
    report = json.loads(statusd.status_text(str(project), ask_daemon=False) or "")
    assert report["counts"]["inbox"] == 0 and report["counts"]["backlog"] == 1
    assert report["tasks"][0]["lane"] == "backlog"
    assert report["tasks"][0]["path"] == "tasks/backlog/T-0001-x.md"


@pytest.mark.parametrize(
    "damage",
    [b"", b"garbage\n\n\x00\x01", b"status-index 1 x\n/elsewhere\n00000000\n\n{}"],
)
def test_a_damaged_index_is_rebuilt(project: Path, damage: bytes) -> None:
    a_board(project)
    text = statusd.status_text(str(project), ask_daemon=False)
    index_file = Path(statusd.index_path(str(project)))
    whole = index_file.read_bytes()
    index_file.write_bytes(damage or whole[: len(whole) // 2])  # empty: cut in half
    assert statusd.status_text(str(project), ask_daemon=False) == text == scanned_text(project)
    assert StatusIndex.load(str(project), str(index_file)).lanes  # written whole again


def test_a_flipped_byte_in_the_index_is_caught_by_its_checksum(project: Path) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Title AAAA"))
    statusd.status_text(str(project), ask_daemon=False)
    index_file = Path(statusd.index_path(str(project)))
    index_file.write_bytes(index_file.read_bytes().replace(b"AAAA", b"ZZZZ"))
    assert StatusIndex.load(str(project), str(index_file)).lanes == {}
    assert "ZZZZ" not in (statusd.status_text(str(project), ask_daemon=False) or "")


def test_status_without_daemon_or_index_works(project: Path, cli: CliRun) -> None:
    path = put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Fresh"), settled=False)
    age(path, -30)  # modified "now" however slow this machine is: inside the racy window
    cache = project / ".shopfloor" / "cache"
    for name in os.listdir(cache):
        os.unlink(cache / name)
    shown = cli(project, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == scanned_text(project) + "\n"
    # A fresh file (inside the racy window) is never kept in the index.
    kept = StatusIndex.load(str(project), statusd.index_path(str(project))).lanes
    assert kept == {"inbox": {}}


def test_the_journals_part_is_remembered_only_while_the_journal_is_unchanged(
    project: Path,
) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Fine"))
    journal = open_journal(project)
    state = project / ".shopfloor"
    try:
        for n in (1, 2):
            journal.enqueue("telegram", "task_failed", {"task_id": "T-0001"})
            text = statusd.status_text(str(project), ask_daemon=False) or ""
            assert f'"outbox": {{"telegram": {n}}}' in text  # just written: read, not recalled
            assert statusdoc._journal_key(str(project)) is None  # and not trusted yet
            assert text == scanned_text(project)
            for name in ("journal.db", "journal.db-wal"):
                age(state / name)
            assert statusd.status_text(str(project), ask_daemon=False) == text  # remembered
        kept = json.loads((state / "cache" / "status-extras.json").read_text())
        assert kept["extras"]["outbox"] == {"telegram": 2}
    finally:
        journal.close()


def test_a_file_to_quarantine_is_still_swept_by_status(project: Path, cli: CliRun) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Fine"))
    statusd.status_text(str(project), ask_daemon=False)
    put(project, "backlog", "bad.md", "---\nid: [unclosed\n---\n")
    shown = cli(project, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["counts"]["invalid"] == 1 and report["unreadable"] == []
    assert (project / "tasks" / "invalid" / "bad.md").exists()


# ---------------------------------------------------------------------------- the socket


@contextlib.contextmanager
def serving(root: Path) -> Iterator[StatusServer]:
    """A status server as the daemon runs it, on the repository's journal."""
    journal = open_journal(root)
    server = StatusServer(root, lambda: journal)
    try:
        assert server.start()
        yield server
    finally:
        server.stop()
        journal.close()


def test_the_socket_answers_the_scans_bytes_and_is_private(project: Path) -> None:
    a_board(project)
    with serving(project) as server:
        path = Path(server.path)
        assert path.parent == project / ".shopfloor" and path.name == "status.sock"
        info = path.lstat()
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == os.getuid()
        assert statusd.ask(str(project)) == scanned_text(project)
        put(project, "inbox", "T-0009-new.md", task_text("T-0009", "New"))
        server.mark_dirty("inbox")  # what the daemon's watcher does
        assert statusd.ask(str(project)) == scanned_text(project)
        assert '"T-0009"' in scanned_text(project)
    assert not path.exists()


def test_a_stale_socket_falls_back_to_the_files_at_once(project: Path, cli: CliRun) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Fine"))
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(statusd.socket_path(str(project)))  # a killed daemon's: nobody listens
    stale.close()
    started = time.monotonic()
    assert statusd.ask(str(project)) is None
    assert time.monotonic() - started < 0.5  # refused, not waited for
    shown = cli(project, "status", "--json")
    assert shown.stdout == scanned_text(project) + "\n"


def test_a_hung_daemon_is_given_up_on_after_a_second(project: Path, cli: CliRun) -> None:
    put(project, "inbox", "T-0001-x.md", task_text("T-0001", "Fine"))
    hung = socket.socket(socket.AF_UNIX)
    hung.bind(statusd.socket_path(str(project)))
    hung.listen(4)  # connects are queued, never answered (a stopped daemon)
    try:
        started = time.monotonic()
        shown = cli(project, "status", "--json")
        took = time.monotonic() - started
        assert shown.returncode == 0 and shown.stdout == scanned_text(project) + "\n"
        assert 1.0 <= took < 20.0  # waited for the daemon's second, then read the files
    finally:
        hung.close()


def test_a_stale_socket_is_replaced_when_the_server_starts(project: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(statusd.socket_path(str(project)))
    stale.close()
    with serving(project):
        assert statusd.ask(str(project)) == scanned_text(project)


def test_a_deep_repository_gets_a_short_private_socket_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopfloor import scaffold

    from .conftest import git

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    git(deep, "init", "--quiet")
    scaffold.init(deep, agents=[])
    put(deep, "inbox", "T-0001-x.md", task_text("T-0001", "Deep"))
    path = statusd.socket_path(str(deep.resolve()))
    assert len(os.fsencode(str(deep / ".shopfloor" / "status.sock"))) > statusd.MAX_SOCKET_PATH
    assert path.startswith(f"/tmp/shopfloor-{os.getuid()}/") and len(path) < 100
    with serving(deep):
        folder = os.lstat(os.path.dirname(path))
        assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert statusd.ask(str(deep.resolve())) == scanned_text(deep)
    assert not os.path.exists(path)


def test_another_version_is_not_answered(project: Path) -> None:
    with serving(project) as server:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(server.path)
            sock.sendall(b"status 0.0.0-other\n")
            assert sock.recv(100).startswith(b"no ")
        assert statusd.ask(str(project)) is not None  # and the server goes on


def test_a_change_no_event_announced_shows_after_the_periodic_relisting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statusd, "RELIST_EVERY", 0.3)
    with serving(project):
        assert '"T-0001"' not in (statusd.ask(str(project)) or "")
        put(project, "done", "T-0001-x.md", task_text("T-0001", "Unannounced", "closed"))
        wait_until(
            lambda: '"T-0001"' in (statusd.ask(str(project)) or ""),
            30,
            "the server to re-list a lane no event marked dirty",
        )
        assert statusd.ask(str(project)) == scanned_text(project)


def test_the_server_stops_promptly(project: Path) -> None:
    journal = open_journal(project)
    server = StatusServer(project, lambda: journal)
    assert server.start()
    assert statusd.ask(str(project)) is not None
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    journal.close()


# ---------------------------------------------------------------------------- the daemon


def settled_board(root: Path) -> None:
    """Tasks the daemon leaves alone: done and closed, so the board holds still."""
    for n in range(1, 30):
        put(root, "done", f"T-{n:04d}-x.md", task_text(f"T-{n:04d}", f"Task {n}", "closed"))


def test_a_running_daemon_answers_status_and_sees_new_files(project: Path, cli: CliRun) -> None:
    settled_board(project)
    daemon = start_daemon(project)
    try:
        sock = Path(statusd.socket_path(str(project.resolve())))
        wait_until(lambda: statusd.ask(str(project.resolve())) is not None, 60, "the socket")
        assert stat.S_IMODE(sock.lstat().st_mode) == 0o600
        assert statusd.ask(str(project.resolve())) == scanned_text(project)
        put(project, "done", "T-0100-late.md", task_text("T-0100", "Late", "closed"))
        wait_until(
            lambda: '"T-0100"' in (statusd.ask(str(project.resolve())) or ""),
            30,
            "the daemon's answer to show a file filed after it started",
        )
        shown = cli(project, "status", "--json")
        assert shown.stdout == scanned_text(project) + "\n"
    finally:
        assert stop(daemon) == 0
    assert not sock.exists()


def test_two_repositories_each_have_their_own_daemon_socket(tmp_path: Path, cli: CliRun) -> None:
    from shopfloor import scaffold

    from .conftest import git

    roots = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        git(root, "init", "--quiet")
        scaffold.init(root, agents=[])
        put(root, "done", f"T-0001-{name}.md", task_text("T-0001", f"In {name}", "closed"))
        roots.append(root.resolve())
    daemons = [start_daemon(root) for root in roots]
    try:
        for root in roots:
            wait_until(lambda r=root: statusd.ask(str(r)) is not None, 60, f"socket of {root}")
        assert statusd.socket_path(str(roots[0])) != statusd.socket_path(str(roots[1]))
        for root, name in zip(roots, ("one", "two"), strict=True):
            report = json.loads(statusd.ask(str(root)) or "")
            assert report["root"] == str(root)
            assert [t["title"] for t in report["tasks"]] == [f"In {name}"]
    finally:
        for daemon in daemons:
            assert stop(daemon) == 0


def test_a_killed_daemons_socket_never_hangs_status(project: Path, cli: CliRun) -> None:
    settled_board(project)
    daemon = start_daemon(project)
    sock = Path(statusd.socket_path(str(project.resolve())))
    try:
        wait_until(lambda: statusd.ask(str(project.resolve())) is not None, 60, "the socket")
    finally:
        stop(daemon, signal.SIGKILL)
    assert sock.exists()  # left behind
    shown = cli(project, "status", "--json", timeout=30)
    assert shown.returncode == 0 and shown.stdout == scanned_text(project) + "\n"


# ---------------------------------------------------------------------------- imports


HEAVY = ("click", "rich", "pydantic", "ruamel", "watchdog", "telegram", "httpx", "starlette")


def loaded_after_status(root: Path) -> set[str]:
    """Top-level packages and shopfloor modules loaded by `status --json` to a pipe."""
    code = (
        "import sys\n"
        "from shopfloor.cli import main\n"
        "try:\n"
        "    main(['status', '--json'])\n"
        "finally:\n"
        "    print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == scanned_text(root) + "\n"
    return set(proc.stderr.split())


def test_status_json_loads_no_heavy_package_from_the_index(project: Path) -> None:
    settled_board(project)
    statusd.status_text(str(project), ask_daemon=False)  # a warm index
    loaded = loaded_after_status(project)
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)
    # No file read again, no journal opened: its answer is remembered while it is unchanged.
    assert not {"shopfloor.board", "shopfloor.task", "shopfloor.journal", "sqlite3"} & loaded


def test_status_json_from_the_daemon_loads_no_journal_or_parser(project: Path) -> None:
    settled_board(project)
    daemon = start_daemon(project)
    try:
        wait_until(lambda: statusd.ask(str(project.resolve())) is not None, 60, "the socket")
        loaded = loaded_after_status(project)
    finally:
        assert stop(daemon) == 0
    assert not {m.split(".")[0] for m in loaded} & {*HEAVY, "sqlite3"}
    assert not {"shopfloor.task", "shopfloor.board", "shopfloor.journal", "pathlib"} & loaded
