"""The daemon as a real process: hotfix lane, one daemon per repo, signals, crash safety."""

from __future__ import annotations

import random
import time
from pathlib import Path

import psutil

from shopfloor import actions
from shopfloor.board import Board, Lane
from tests.conftest import wait_until
from tests.invariants import journal_violations, leftover_agents
from tests.support import (
    agent_command,
    edit_fields,
    lane_of,
    make_project,
    marks,
    shopfloor,
    start_daemon,
    status_of,
    stop,
    tracker,
)


def test_hotfix_starts_at_once_while_every_coder_slot_is_busy(tmp_path: Path) -> None:
    mark = tmp_path / "marks.txt"
    root = make_project(
        tmp_path,
        agents={
            "slow": {
                "backend": "command",
                "command": agent_command(f"*:mark={mark}", "coder:hang"),
            },
            "fix": {
                "backend": "command",
                "command": agent_command(f"*:mark={mark}", "hotfix:patch"),
            },
        },
        roles={"hotfix": "fix"},
        pipeline={"concurrency": {"coder": 1, "pm": 1, "qa": 1}},
    )
    board = Board(root)
    for n in range(3):
        actions.create_task(board, actions.NewTask(f"busy {n}", "x", backlog=True))
    daemon = start_daemon(root)
    try:
        wait_until(lambda: any(m[0] == "coder" for m in marks(mark)), 30)
        hotfix = actions.create_hotfix(board, "prod is down")
        wait_until(lambda: any(m[0] == "hotfix" for m in marks(mark)), 10)
        wait_until(lambda: status_of(root, hotfix.id) == "awaiting-human", 30)
        coders = [m for m in marks(mark) if m[0] == "coder"]
        assert len(coders) == 1  # the slot stayed full: the hotfix bypassed the limit
    finally:
        assert stop(daemon) == 0
    # A clean stop: the hung coder was stopped and its task is queued again, attempt restored.
    busy = [e for e in Board(root).scan().entries if e.header.title.startswith("busy")]
    assert all(e.lane is Lane.BACKLOG and e.header.status == "queued" for e in busy)
    assert all(e.header.attempts == 0 for e in busy)


def test_a_second_daemon_refuses_naming_the_first(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    first = start_daemon(root)
    try:
        wait_for_lock(root)
        second = shopfloor(root, "run", check=False, timeout=30)
        assert second.returncode != 0
        assert f"pid {first.pid}" in second.stderr and "already running" in second.stderr
    finally:
        assert stop(first) == 0


def wait_for_lock(root: Path) -> None:
    """Until the daemon holds its lock (and has installed its signal handlers)."""
    pid_file = root / ".shopfloor" / "daemon.pid"  # written once the lock is held
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 15)


def hanging_coder(tmp_path: Path, mark: Path) -> tuple[Path, str]:
    """A project whose coder hangs, with one task in backlog."""
    command = agent_command(f"*:mark={mark}", "coder:hang")
    root = make_project(tmp_path, agents={"a": {"backend": "command", "command": command}})
    task_id = actions.create_task(Board(root), actions.NewTask("hang", "x", backlog=True)).id
    return root, task_id


def test_cancel_stops_a_running_agent_and_parks_the_task(tmp_path: Path) -> None:
    mark = tmp_path / "marks.txt"
    root, task_id = hanging_coder(tmp_path, mark)
    daemon = start_daemon(root)
    try:
        pid = int(wait_until(lambda: marks(mark), 30)[0][4])
        shopfloor(root, "cancel", task_id)
        wait_until(
            lambda: (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            ),
            30,
        )
        assert lane_of(root, task_id) is Lane.FAILED
    finally:
        assert stop(daemon) == 0
    assert "cancelled" in tracker(root, task_id)


def test_status_shows_running_runs_with_their_age(tmp_path: Path) -> None:
    mark = tmp_path / "marks.txt"
    root, task_id = hanging_coder(tmp_path, mark)
    daemon = start_daemon(root)
    try:
        wait_until(lambda: marks(mark), 30)
        import json

        report = json.loads(shopfloor(root, "status", "--json").stdout)
        (run,) = report["runs"]
        assert run["task_id"] == task_id and run["role"] == "coder" and run["age_seconds"] >= 0
        assert "running" in shopfloor(root, "status").stdout
    finally:
        assert stop(daemon) == 0


def assert_no_attempt_finished_twice(root: Path) -> None:
    """An interrupted run goes again under the same attempt number (it used no attempt), and
    a run killed before its verdict was journaled may go again; a verdict is applied once."""
    ids = {e.id for e in Board(root).scan().entries}
    assert not journal_violations(root, ids)


def test_kill_9_at_random_moments_loses_nothing_and_never_reruns_an_attempt(tmp_path: Path) -> None:
    """Invariant: every task in exactly one lane, no attempt run twice, no orphan left."""
    mark = tmp_path / "marks.txt"
    root = make_project(
        tmp_path,
        agents={
            "a": {
                "backend": "command",
                "command": agent_command(
                    f"*:mark={mark}", "*:sleep=0.3", "pm:spec", "coder:write", "qa:pass"
                ),
            }
        },
        pipeline={"max_attempts": 10, "concurrency": {"coder": 3, "pm": 2, "qa": 2}},
    )
    board = Board(root)
    ids = [
        actions.create_task(board, actions.NewTask(f"t{n}", "x", backlog=n % 2 == 0)).id
        for n in range(6)
    ]
    rng = random.Random(7)
    for _ in range(6):
        daemon = start_daemon(root)
        time.sleep(rng.uniform(0.3, 1.5))  # the random moment of the kill is the point
        daemon.kill()
        daemon.wait(10)
        daemon.communicate()
    final = start_daemon(root, "--once")
    assert final.wait(120) in (0, 1)
    final.communicate()
    entries = Board(root).scan().entries
    assert sorted(e.id for e in entries) == sorted(ids)  # each task exactly once
    assert all(e.lane is Lane.DONE for e in entries), [(e.id, e.lane) for e in entries]
    assert_no_attempt_finished_twice(root)
    wait_until(lambda: not leftover_agents(root), 15)


def test_an_idle_daemon_does_not_rescan_because_of_its_own_reads(tmp_path: Path) -> None:
    """Rule: reading the board (open/close events) never wakes the loop: idle means idle."""
    root = make_project(tmp_path)
    board = Board(root)
    for n in range(200):
        actions.create_task(board, actions.NewTask(f"parked {n}", "x", backlog=True))
    for entry in board.scan().entries:
        edit_fields(entry.path, status="blocked")
    daemon = start_daemon(root)
    try:
        wait_for_lock(root)
        proc = psutil.Process(daemon.pid)
        wait_until(lambda: proc.cpu_percent(interval=0.5) < 5, 20)  # start-up work is over
        before = proc.cpu_times()
        window = time.monotonic()
        while time.monotonic() - window < 3:  # the measured idle window itself
            time.sleep(0.1)
        after = proc.cpu_times()
        busy = (after.user - before.user) + (after.system - before.system)
        assert busy < 0.3, f"idle daemon used {busy:.2f} s of CPU in 3 s"
    finally:
        assert stop(daemon) == 0


def test_an_editors_save_by_rename_into_a_lane_is_picked_up(tmp_path: Path) -> None:
    """Rule: a temp file renamed into inbox/ (how editors save) wakes the daemon; the swap
    file itself is never treated as a task."""
    mark = tmp_path / "marks.txt"
    root = make_project(
        tmp_path,
        agents={"a": {"backend": "command", "command": agent_command(f"*:mark={mark}", "pm:spec")}},
    )
    daemon = start_daemon(root)
    try:
        wait_for_lock(root)
        inbox = root / "tasks" / "inbox"
        swap = inbox / ".T-0100-from-vim.md.swp"
        swap.write_text("binary-ish swap \x00 content")
        temp = inbox / ".T-0100-from-vim.md.tmp"
        temp.write_text("---\nid: T-0100\ntitle: From an editor\n---\n## Request\nhi\n")
        temp.rename(inbox / "T-0100-from-vim.md")
        wait_until(lambda: any(m[:2] == ["pm", "T-0100"] for m in marks(mark)), 30)
        assert swap.exists()  # ignored, not quarantined
        assert not list((root / "tasks" / "invalid").glob("*swp*"))
    finally:
        assert stop(daemon) == 0


def test_logs_prints_the_newest_run_and_all_runs_on_request(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        agents={
            "a": {
                "backend": "command",
                "command": agent_command("pm:spec", "coder:write", "qa:pass"),
            }
        },
    )
    task_id = actions.create_task(Board(root), actions.NewTask("logged", "x")).id
    shopfloor(root, "run", "--once")
    newest = shopfloor(root, "logs", task_id).stdout
    assert newest.count("==> R-") == 1 and " qa " in newest
    every = shopfloor(root, "logs", task_id, "--all").stdout
    assert [line.split()[2] for line in every.splitlines() if line.startswith("==> R-")] == [
        "pm",
        "coder",
        "checks",
        "qa",
    ]
    assert shopfloor(root, "logs", "T-9999", check=False).returncode == 4


def test_the_daemon_refuses_a_role_without_an_agent(tmp_path: Path) -> None:
    """Rule: a role whose agent is not defined stops the daemon at start, before any task is
    touched."""
    root = make_project(tmp_path)
    (root / "shopfloor.toml").write_text("[pipeline]\nchecks = []\n")  # no [agents.*] at all
    task_id = actions.create_task(Board(root), actions.NewTask("untouched", "x")).id
    proc = shopfloor(root, "run", "--once", check=False)
    assert proc.returncode == 1
    assert (
        "roles.pm is not set, so it defaults to the agent 'claude', but [agents.claude] is not "
        "defined" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.INBOX, "queued")


def test_a_sigterm_the_kernel_hands_to_another_thread_still_stops_the_daemon(
    tmp_path: Path,
) -> None:
    """Rule: the daemon stops within seconds whichever of its threads receives SIGTERM (the
    kernel picks any; the Python handler runs only when the main thread wakes)."""
    import signal
    import sys
    import threading

    from shopfloor import config
    from shopfloor.scheduler import Daemon

    root = make_project(tmp_path)
    daemon = Daemon(root, config.load(root / "shopfloor.toml"), watch=False)
    stopped_late: list[bool] = []

    main = threading.get_ident()

    def main_thread_waits() -> bool:
        frame = sys._current_frames().get(main)
        return not daemon._starting and frame is not None and frame.f_code.co_name == "wait"

    def signal_from_a_worker_thread() -> None:
        wait_until(main_thread_waits, 30, "the daemon's main thread asleep")
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # this thread, not main

    def rescue() -> None:  # never leave the test hanging: stop it by hand, and say so
        if not finished.wait(15):
            stopped_late.append(True)
            daemon.stop()

    finished = threading.Event()
    threading.Thread(target=signal_from_a_worker_thread, daemon=True).start()
    threading.Thread(target=rescue, daemon=True).start()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert daemon.run() == 0
    finally:
        finished.set()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert not stopped_late, "SIGTERM on another thread did not stop the daemon in 15 s"
