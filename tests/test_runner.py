"""The runner against real subprocesses: limits, kills of the whole group, bounded output.

Every wait is a condition with a deadline (wait_until), never a sleep that hopes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from shopfloor import runner
from shopfloor.runner import Ending, Runner, RunResult, RunSpec

FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll predicate until it holds or the deadline passes; True when it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting for a parent (init) that may never reap it in a container."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    """A small, complete environment: the runner adds nothing to it."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "PYTHONCOERCECLOCALE": "0",  # else Python adds LC_CTYPE to its own environment
        "SHOPFLOOR_RUN_ID": f"R-test-{uuid.uuid4().hex[:8]}",
        "SHOPFLOOR_RESULT_FILE": str(tmp_path / "result.json"),
    }


@pytest.fixture
def make_spec(tmp_path: Path, child_env: dict[str, str]) -> Callable[..., RunSpec]:
    def make(*args: str, **overrides: object) -> RunSpec:
        fields: dict[str, object] = {
            "run_id": child_env["SHOPFLOOR_RUN_ID"],
            "argv": [sys.executable, str(FAKE_AGENT), *args],
            "cwd": tmp_path,
            "env": child_env,
            "run_dir": tmp_path / "run",
            "timeout": 30.0,
            "stall": 30.0,
            "grace": 1.0,
        }
        fields.update(overrides)
        return RunSpec(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def reap_strays() -> Iterator[list[int]]:
    """Pids a test started indirectly; killed at teardown even when the test failed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not gone(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def read_pid(path: Path) -> int:
    assert wait_until(path.exists), f"{path} never appeared"
    return int(path.read_text())


def run(spec: RunSpec) -> RunResult:
    return Runner(spec).run()


# -- how processes end ----------------------------------------------------------------------


def test_success_logs_output_and_the_result_file(make_spec: Callable[..., RunSpec]) -> None:
    spec = make_spec("success")
    result = run(spec)
    assert result.ending is Ending.EXITED
    assert (result.exit_code, result.signal, result.error) == (0, None, None)
    assert json.loads(Path(spec.env["SHOPFLOOR_RESULT_FILE"]).read_text())["outcome"] == "ok"
    assert result.stdout_path == spec.run_dir / "stdout.log"
    assert b"done" in result.stdout_path.read_bytes()
    assert result.stdout_bytes == result.stdout_path.stat().st_size
    assert result.stderr_bytes == 0
    assert not result.truncated


def test_failure_keeps_the_exit_code_and_stderr(make_spec: Callable[..., RunSpec]) -> None:
    result = run(make_spec("failure"))
    assert (result.ending, result.exit_code, result.signal) == (Ending.EXITED, 3, None)
    assert b"something went wrong" in result.stderr_path.read_bytes()


def test_exit_zero_without_a_result_is_still_just_an_exit(
    make_spec: Callable[..., RunSpec],
) -> None:
    spec = make_spec("no-result")
    result = run(spec)
    assert (result.ending, result.exit_code) == (Ending.EXITED, 0)
    assert not Path(spec.env["SHOPFLOOR_RESULT_FILE"]).exists()


def test_a_crash_reports_the_signal(make_spec: Callable[..., RunSpec]) -> None:
    result = run(make_spec("crash"))
    assert result.ending is Ending.EXITED
    assert (result.exit_code, result.signal) == (None, signal.SIGSEGV)


# -- failing to start -------------------------------------------------------------------------


def test_a_missing_executable_fails_to_start(make_spec: Callable[..., RunSpec]) -> None:
    result = run(make_spec(argv=["shopfloor-no-such-agent-cli", "-p"]))
    assert result.ending is Ending.FAILED_TO_START
    assert result.error == "executable not found: shopfloor-no-such-agent-cli"
    assert (result.exit_code, result.signal) == (None, None)
    assert result.stdout_path.exists() and result.stdout_bytes == 0


def test_a_file_without_execute_permission_fails_to_start(
    make_spec: Callable[..., RunSpec], tmp_path: Path
) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run(make_spec(argv=[str(script)]))
    assert result.ending is Ending.FAILED_TO_START
    assert result.error == f"permission denied: {script}"


def test_a_missing_working_directory_fails_to_start(
    make_spec: Callable[..., RunSpec], tmp_path: Path
) -> None:
    result = run(make_spec("success", cwd=tmp_path / "gone"))
    assert result.ending is Ending.FAILED_TO_START
    assert result.error == f"working directory not found: {tmp_path / 'gone'}"


# -- limits and stops ---------------------------------------------------------------------------


def test_timeout_kills_the_whole_group(
    make_spec: Callable[..., RunSpec], tmp_path: Path, reap_strays: list[int]
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    agent = Runner(make_spec("grandchild", str(pidfile), "hang", timeout=1.5))
    result = agent.run()
    grandchild = read_pid(pidfile)
    reap_strays.append(grandchild)
    assert result.ending is Ending.TIMED_OUT
    assert result.signal == signal.SIGTERM
    assert result.error == "timed out after 1.5 s"
    assert 1.5 <= result.duration < 10
    assert agent.pid is not None and gone(agent.pid)
    assert wait_until(lambda: gone(grandchild))


def test_no_output_for_the_stall_limit_is_a_stall(make_spec: Callable[..., RunSpec]) -> None:
    result = run(make_spec("stall", stall=1.0))
    assert result.ending is Ending.STALLED
    assert result.signal == signal.SIGTERM
    assert 1.0 <= result.duration < 10
    assert b"thinking" in result.stdout_path.read_bytes()


def test_steady_output_is_not_a_stall(make_spec: Callable[..., RunSpec]) -> None:
    # 6 lines 0.3 s apart: 1.8 s in all, longer than the stall limit, never 1 s silent.
    result = run(make_spec("tick", "6", "0.3", stall=1.0))
    assert (result.ending, result.exit_code) == (Ending.EXITED, 0)
    assert result.stdout_path.read_bytes().count(b"tick") == 6


def test_stop_from_another_thread(make_spec: Callable[..., RunSpec]) -> None:
    agent = Runner(make_spec("hang"))

    def stop_when_started() -> None:
        if wait_until(lambda: agent.pid is not None):
            agent.stop("human cancelled")
            agent.stop("second call is ignored")

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    result = agent.run()
    stopper.join(5)
    assert result.ending is Ending.STOPPED
    assert result.error == "stopped: human cancelled"
    assert result.signal == signal.SIGTERM
    assert result.duration < 10


def test_stop_before_run_starts_nothing(make_spec: Callable[..., RunSpec]) -> None:
    started: list[int] = []
    agent = Runner(make_spec("hang"), on_started=lambda pid, _: started.append(pid))
    agent.stop("daemon stopping")
    result = agent.run()
    assert result.ending is Ending.STOPPED
    assert agent.pid is None and started == []


def test_sigterm_ignored_means_sigkill_after_grace(make_spec: Callable[..., RunSpec]) -> None:
    agent = Runner(make_spec("ignore-term", grace=0.5))

    def stop_when_ignoring() -> bool:
        log = agent.spec.run_dir / "stdout.log"
        ready = wait_until(lambda: log.exists() and b"ignoring" in log.read_bytes())
        stop_sent.append(time.monotonic())
        agent.stop()
        return ready

    stop_sent: list[float] = []
    stopper = threading.Thread(target=stop_when_ignoring)
    stopper.start()
    result = agent.run()
    ended = time.monotonic()
    stopper.join(5)
    assert result.ending is Ending.STOPPED
    assert result.signal == signal.SIGKILL
    assert ended - stop_sent[0] >= 0.5


def test_a_grandchild_holding_stdout_is_killed_after_the_leader_exits(
    make_spec: Callable[..., RunSpec], tmp_path: Path, reap_strays: list[int]
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    result = run(make_spec("grandchild", str(pidfile)))
    grandchild = read_pid(pidfile)
    reap_strays.append(grandchild)
    assert (result.ending, result.exit_code) == (Ending.EXITED, 0)
    assert result.duration < 10  # not until the grandchild's sleep ends
    assert wait_until(lambda: gone(grandchild))
    assert b"started grandchild" in result.stdout_path.read_bytes()


# -- output -----------------------------------------------------------------------------------


def test_a_flood_is_capped_counted_and_drained(make_spec: Callable[..., RunSpec]) -> None:
    size, cap, tail = 200 * 1024 * 1024, 1024 * 1024, 64 * 1024
    result = run(make_spec("flood", str(size), log_cap=cap, keep_tail=tail))
    assert (result.ending, result.exit_code) == (Ending.EXITED, 0)
    assert result.stdout_bytes == size
    assert result.truncated
    log = result.stdout_path.read_bytes()
    assert cap < len(log) < cap + tail + 200
    marker = (
        f"\n[shopfloor: output truncated at {cap} bytes; {size - cap - tail} bytes discarded]\n"
    )
    assert log[:cap] == (b"x" * 1023 + b"\n") * (cap // 1024)
    assert log[cap:].startswith(marker.encode())
    assert log.endswith(b"END\n")  # the kept tail: where CLI agents print their final message


def test_stdin_is_dev_null_unless_data_is_given(make_spec: Callable[..., RunSpec]) -> None:
    assert run(make_spec("stdin")).stdout_bytes == 0
    fed = run(make_spec("stdin", run_dir=make_spec().run_dir / "fed", stdin_data=b"the prompt"))
    assert fed.stdout_path.read_bytes() == b"the prompt"


def test_the_child_gets_exactly_the_given_environment(
    make_spec: Callable[..., RunSpec], tmp_path: Path, child_env: dict[str, str]
) -> None:
    dump = tmp_path / "env.json"
    assert run(make_spec("env", str(dump))).exit_code == 0
    assert json.loads(dump.read_text()) == child_env


def test_on_started_gets_the_leader_pid_and_start_time(
    make_spec: Callable[..., RunSpec],
) -> None:
    seen: list[tuple[int, float]] = []
    before = time.time()
    agent = Runner(make_spec("success"), on_started=lambda pid, ct: seen.append((pid, ct)))
    result = agent.run()
    [(pid, create_time)] = seen
    assert pid == agent.pid
    assert f"pid={pid} ".encode() in result.stdout_path.read_bytes()
    assert before - 1 <= create_time <= time.time()


# -- helpers for the daemon's restart ----------------------------------------------------------


def test_find_orphans_finds_a_tagged_process_group(
    child_env: dict[str, str], reap_strays: list[int]
) -> None:
    run_id = child_env["SHOPFLOOR_RUN_ID"]
    env = {**child_env, runner.REPO_ID_VAR: "repo-a"}
    orphan = subprocess.Popen(
        [sys.executable, str(FAKE_AGENT), "hang"], env=env, start_new_session=True
    )
    reap_strays.append(orphan.pid)

    def found(repo_id: str, run: str) -> bool:
        return orphan.pid in {p.pid for p in runner.find_orphans(repo_id, [runner.StaleRun(run)])}

    try:
        assert wait_until(lambda: found("repo-a", run_id))
        assert not found("repo-a", "R-someone-else")
        assert not found("repo-b", run_id)  # the same run id in another repository
        assert runner.process_create_time(orphan.pid) is not None
        assert runner.group_alive(orphan.pid)
        runner.kill_group(orphan.pid, grace=1.0)
        assert orphan.wait(5) == -signal.SIGTERM
        assert not runner.group_alive(orphan.pid)
    finally:
        orphan.kill()
        orphan.wait()


def test_kill_group_refuses_our_own_group() -> None:
    with pytest.raises(ValueError):
        runner.kill_group(os.getpgrp(), grace=0)
    with pytest.raises(ValueError):
        runner.kill_group(1, grace=0)


def test_a_runner_runs_once(make_spec: Callable[..., RunSpec]) -> None:
    agent = Runner(make_spec("no-result"))
    agent.run()
    with pytest.raises(RuntimeError):
        agent.run()


_SUPERVISOR = """
import sys, threading, time
from pathlib import Path
from shopfloor.runner import Runner, RunSpec
die = sys.argv[2] == "1"
spec = RunSpec("R-1", [sys.executable, "-c", "import time; time.sleep(60)"], Path(sys.argv[1]),
               {}, Path(sys.argv[1]) / "run", timeout=0, stall=0, die_with_parent=die)
runner = Runner(spec, on_started=lambda pid, _: print(pid, flush=True))
threading.Thread(target=runner.run, daemon=True).start()
time.sleep(60)
"""


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_die_with_parent_kills_the_agent_when_its_supervisor_is_killed(
    tmp_path: Path, die_with_parent: bool
) -> None:
    """A worker killed with -9 cannot stop its agent: the kernel does (PR_SET_PDEATHSIG)."""
    flag = "1" if die_with_parent else "0"
    with subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR, str(tmp_path), flag],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(runner.__file__).parents[1])},
    ) as supervisor:
        assert supervisor.stdout is not None
        pid = int(supervisor.stdout.readline())
        try:
            supervisor.kill()
            supervisor.wait(10)
            assert wait_until(lambda: gone(pid), 3.0) is die_with_parent
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
