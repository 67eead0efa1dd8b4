"""The daemon keeps working through faults of the machine or of a human edit: a damaged or
deleted journal, `.shopfloor/` removed while it runs, an edited (or broken) shopfloor.toml."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shopfloor import actions
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from tests.conftest import wait_until
from tests.support import agent_command, lane_of, make_project, shopfloor, start_daemon, status_of


def command_agent(*behaviour: str) -> dict[str, object]:
    return {"backend": "command", "command": agent_command(*behaviour), "timeout": "60s"}


def stop(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    """SIGTERM, then the exit code and everything the daemon logged."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, stderr


def wait_for_lock(root: Path) -> None:
    lock = root / ".shopfloor" / "daemon.pid"
    wait_until(lambda: lock.exists() and lock.read_text().strip(), 15, "the daemon's lock")


def write_atomically(path: Path, text: str) -> None:
    """As editors save: a whole new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def runs_of(root: Path, task_id: str) -> list[dict[str, object]]:
    path = root / ".shopfloor" / "journal.db"
    if not path.exists():
        return []
    with Journal(path) as j:
        return j.runs(task_id=task_id)


def damage_garbage(db: Path) -> None:
    db.write_bytes(b"\x00garbage" * 1000)


def damage_truncated(db: Path) -> None:
    with Journal(db) as j:
        for i in range(400):
            j.insert_run(f"R-fill-{i}", f"T-{i:04d}", "pm", summary="x" * 200)
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


@pytest.mark.parametrize("damage", [damage_garbage, damage_truncated], ids=["garbage", "cut"])
def test_a_damaged_journal_is_set_aside_and_the_hotfix_runs(tmp_path: Path, damage: object) -> None:
    """Rule (trust): a corrupt journal.db never stops the daemon, hotfix lane included."""
    root = make_project(tmp_path, agents={"a": command_agent("hotfix:patch")})
    db = root / ".shopfloor" / "journal.db"
    assert callable(damage)
    damage(db)
    damaged = db.read_bytes()
    hotfix = actions.create_hotfix(Board(root), "prod down")
    proc = shopfloor(root, "run", "--once", check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "event=journal.corrupt" in proc.stderr and "moved_to=" in proc.stderr
    fixed = Board(root).find(hotfix.id)
    assert (fixed.lane, fixed.header.status) == (Lane.HOTFIX, "awaiting-human")
    (kept,) = db.parent.glob("journal.db.corrupt-*[0-9Z]")  # the sidecars end in -wal/-shm
    assert kept.read_bytes() == damaged  # the history, untouched, for a human
    assert [r["role"] for r in runs_of(root, hotfix.id)] == ["hotfix"]  # the fresh journal
    status = shopfloor(root, "status", "--json")
    assert json.loads(status.stdout)["journal_error"] is None


def test_state_folder_deleted_under_a_running_daemon_is_recreated(tmp_path: Path) -> None:
    """Rule (trust): `.shopfloor/` removed while the daemon runs: the next task still runs and
    is recorded in a new journal at the usual place."""
    root = make_project(tmp_path, agents={"a": command_agent("hotfix:patch")})
    daemon = start_daemon(root)
    try:
        wait_for_lock(root)
        shutil.rmtree(root / ".shopfloor")
        hotfix = actions.create_hotfix(Board(root), "prod down after rm -rf")
        wait_until(
            lambda: status_of(root, hotfix.id) == "awaiting-human",
            60,
            "the hotfix to finish",
        )
        wait_until(
            lambda: [r["state"] for r in runs_of(root, hotfix.id)] == ["ended"],
            30,
            "the hotfix run recorded in the recreated journal",
        )
        assert (root / ".shopfloor").stat().st_mode & 0o777 == 0o700
    finally:
        code, log = stop(daemon)
    assert code == 0, log
    assert "event=journal.reopened" in log and "Traceback" not in log


def marker_check(marker: Path) -> list[str]:
    return [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('checked\\n')"]


def test_a_running_daemon_reloads_its_config_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    """Rule (trust): shopfloor.toml edits apply without a restart; a broken edit is reported
    (log, notification, status) and the daemon goes on with the last good config."""
    extra = '[[notify.webhook]]\nurl = "http://127.0.0.1:9/nobody-listens"\n'
    agents = {"a": command_agent("coder:write", "qa:pass")}
    root = make_project(tmp_path, agents=agents, extra=extra)
    config = root / "shopfloor.toml"
    original = config.read_text()
    marker = tmp_path / "checks-ran.txt"
    daemon = start_daemon(root)
    try:
        wait_for_lock(root)
        # The checks the daemon started with are none; the edit adds one that leaves a mark.
        checks = f"checks = {json.dumps([marker_check(marker)])}"
        write_atomically(config, original.replace("checks = []", checks))
        first = actions.create_task(Board(root), actions.NewTask("one", "x", backlog=True)).id
        wait_until(lambda: lane_of(root, first) is Lane.DONE, 60, "the first task done")
        assert marker.read_text() == "checked\n"  # the new checks ran
        good = shopfloor(root, "status", "--json")
        assert json.loads(good.stdout)["config_error"] is None
        # A broken edit: the daemon keeps the last good config (the marker check).
        broken = config.read_text().replace("max_attempts = 3", "max_attempts = 0")
        write_atomically(config, broken)
        second = actions.create_task(Board(root), actions.NewTask("two", "x", backlog=True)).id
        wait_until(lambda: lane_of(root, second) is Lane.DONE, 60, "the second task done")
        assert marker.read_text() == "checked\n" * 2
        status = json.loads(shopfloor(root, "status", "--json").stdout)
        assert "max_attempts" in status["config_error"]
        with Journal.for_project(root) as j:
            queued = [i.event for i in j.pending("webhook", now=1e12, limit=100)]
        assert "config_invalid" in queued
    finally:
        code, log = stop(daemon)
    assert code == 0, log
    assert "event=config.reloaded" in log
    assert "event=config.invalid" in log and "max_attempts" in log
