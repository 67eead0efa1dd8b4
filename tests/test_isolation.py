"""A project is alone on its machine: its orphans only, its lock, its private state folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psutil

from shopfloor import actions, paths, runner
from shopfloor.board import Board, Lane
from tests.conftest import wait_until
from tests.support import (
    agent_command,
    lane_of,
    make_project,
    marks,
    shopfloor,
    start_daemon,
    stop,
)

OK_CHECK = [sys.executable, "-c", "print('1 passed')"]


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting for a parent (init) that may never reap it in a container."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def agents_of(root: Path) -> list[psutil.Process]:
    """Live agent processes working on this project's board (by the run contract's env)."""
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if env.get("SHOPFLOOR_TASK_FILE", "").startswith(f"{root}/") and not gone(proc.pid):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def hanging_project(parent: Path, mark: Path) -> Path:
    """A project under `parent` whose coder hangs, with one task in backlog."""
    parent.mkdir()
    command = agent_command(f"*:mark={mark}", "coder:hang")
    root = make_project(parent, agents={"a": {"backend": "command", "command": command}})
    actions.create_task(Board(root), actions.NewTask("hang", "x", backlog=True))
    return root


def test_a_restarted_daemon_kills_its_own_orphan_and_not_another_projects_agent(
    tmp_path: Path,
) -> None:
    mark_a, mark_b = tmp_path / "marks-a.txt", tmp_path / "marks-b.txt"
    root_a = hanging_project(tmp_path / "a", mark_a)
    root_b = hanging_project(tmp_path / "b", mark_b)
    daemon_a, daemon_b = start_daemon(root_a), start_daemon(root_b)
    restarted = None
    try:
        (_, _, _, run_a, pid_a) = wait_until(lambda: marks(mark_a), 30)[0]  # type: ignore[index]
        (_, _, _, run_b, pid_b) = wait_until(lambda: marks(mark_b), 30)[0]  # type: ignore[index]
        assert run_a == run_b  # every repository numbers its runs from R-1: the id is no proof
        agent_b = psutil.Process(int(pid_b))
        born_b = agent_b.create_time()

        daemon_a.kill()  # a crash: A's agent lives on as an orphan
        daemon_a.wait(10)
        daemon_a.communicate()
        assert not gone(int(pid_a))

        restarted = start_daemon(root_a)
        wait_until(lambda: gone(int(pid_a)), 30, "A's orphan killed by A's recovery")
        # The recovered task is claimed again: recovery is over by then.
        wait_until(lambda: len(marks(mark_a)) == 2, 30, "A's next coder run")
        assert not gone(agent_b.pid) and agent_b.create_time() == born_b  # B's agent untouched
        assert len(marks(mark_b)) == 1
    finally:
        for daemon in (restarted, daemon_b, daemon_a):
            if daemon is not None:
                stop(daemon)
    assert restarted.returncode == 0 and daemon_b.returncode == 0
    wait_until(lambda: not agents_of(root_a) and not agents_of(root_b), 15, "no agent left")


def test_find_orphans_knows_a_leader_by_pid_and_create_time(tmp_path: Path) -> None:
    """Without tags in its environment (unreadable, or lost) the journaled leader is still
    found; the same pid with another create time is some other process that reused it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    code = "import time\nwhile True: time.sleep(1)"
    leader = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        created = runner.process_create_time(leader.pid)
        assert created is not None

        def found(*stale: runner.StaleRun) -> bool:
            return leader.pid in {p.pid for p in runner.find_orphans("this-repo", stale)}

        assert found(runner.StaleRun("R-1", leader.pid, created))
        assert not found(runner.StaleRun("R-1", leader.pid, created + 5.0))
        assert not found(runner.StaleRun("R-1", leader.pid, None))
        assert not found(runner.StaleRun("R-1", leader.pid + 1, created))
        assert not found()
    finally:
        leader.kill()
        leader.wait()


def test_repo_identity_is_stable_and_differs_between_repositories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = paths.repo_identity(tmp_path / "a")
    assert first == paths.repo_identity(tmp_path / "b" / ".." / "a")
    assert first != paths.repo_identity(tmp_path / "b")
    assert len(first) == 16


def test_the_daemon_lock_survives_deleting_the_state_folder(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    pid_file = root / ".shopfloor" / "daemon.pid"
    first = start_daemon(root)
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 15, "lock held")
        shutil.rmtree(root / ".shopfloor")
        second = shopfloor(root, "run", check=False, timeout=30)
        assert second.returncode != 0
        assert "already running" in second.stderr and "pid unknown" in second.stderr
    finally:
        first.kill()  # the kernel drops a flock with its holder, even on kill -9
        first.wait(10)
        first.communicate()
    assert shopfloor(root, "run", "--once", check=False, timeout=60).returncode == 0


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line under the common umask 022, so a file whose mode we do not set
    would come out world-readable and the test below would see it."""
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        umask=0o022,
        check=False,
    )


def test_the_state_folder_is_private_after_a_run(tmp_path: Path) -> None:
    agent = agent_command("pm:spec", "coder:write", "qa:pass")  # writes its result 0644
    root = make_project(
        tmp_path,
        agents={"a": {"backend": "command", "command": agent, "timeout": "60s"}},
        pipeline={"checks": [OK_CHECK]},
    )
    shutil.rmtree(root / ".shopfloor")  # made again by the CLI under umask 022
    assert cli(root, "new", "Add a thing").returncode == 0
    done = cli(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    (entry,) = Board(root).scan().entries
    assert lane_of(root, entry.id) is Lane.DONE
    # The board lives in git and is for everyone who may read the repository.
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o644

    state = root / ".shopfloor"
    worktrees = paths.StatePaths(root).worktrees_dir
    loose, names = [], set()
    for folder, dirnames, filenames in os.walk(state):
        here = Path(folder)
        if here.parent == worktrees:
            # A task's checkout: the project's own files, modes as git made them (scripts
            # stay executable); private all the same, since worktrees/ is 0700.
            dirnames.clear()
            continue
        if stat.S_IMODE(here.stat().st_mode) != 0o700:
            loose.append(f"{here} {oct(here.stat().st_mode)}")
        for name in filenames:
            mode = stat.S_IMODE((here / name).lstat().st_mode)
            names.add(name)
            if mode != 0o600:
                loose.append(f"{here / name} {oct(mode)}")
    assert not loose, loose
    # The walk saw what matters: journal, logs, prompt, result, meta, checks.
    expected = {"journal.db", "stdout.log", "stderr.log", "prompt.md", "result.json"}
    assert expected | {"meta.json", "checks.json", "next-run"} <= names


def test_the_journal_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    """SQLite makes -wal and -shm with the database file's mode: the db is created 0600."""
    from shopfloor.journal import Journal

    old = os.umask(0o022)
    try:
        with Journal(tmp_path / ".shopfloor" / "journal.db") as journal:
            journal.insert_run("R-1", "T-1", "pm")  # a write: the -wal and -shm files exist now
            made = sorted(p for p in (tmp_path / ".shopfloor").iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in made}
    finally:
        os.umask(old)
    assert modes == {"journal.db": 0o600, "journal.db-wal": 0o600, "journal.db-shm": 0o600}
    assert stat.S_IMODE((tmp_path / ".shopfloor").stat().st_mode) == 0o700


def test_ensure_makes_the_layout_private_and_tightens_an_old_loose_folder(tmp_path: Path) -> None:
    state = paths.StatePaths(tmp_path)
    state.state_dir.mkdir(mode=0o755)  # as an older version, or a git checkout of roles/, left it
    os.chmod(state.state_dir, 0o755)
    state.ensure()
    for folder in (state.state_dir, state.runs_dir, state.worktrees_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(state.header_cache.parent.stat().st_mode) == 0o700
