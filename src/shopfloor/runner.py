"""One supervised agent subprocess: the only place Shopfloor starts agent processes.

Why it is built this way:
- The agent runs in its own session, so "the agent" is a process group and every kill goes to the
  whole group (as rq and mini-swe-agent do): a CLI that starts shells, tools or a dev server
  cannot leave them behind. After the leader exits the group is always swept.
- Output goes straight to per-run log files in fixed-size chunks, capped per stream, and the pipes
  are read until the end, so memory stays flat whatever the agent prints and the agent never
  blocks on a full pipe.
- Every limit is a deadline on the monotonic clock. The loop sleeps in select() until the next
  deadline, and wakes at once on output, on the leader's exit (a pidfd) or on stop() (a
  self-pipe), so a quiet agent costs the daemon no CPU.
- Agent misbehaviour (a missing binary, a crash, a hang, a flood) is a RunResult, never an
  exception; run() never returns while a process of its group is still known to be alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO

import psutil

from shopfloor.paths import PRIVATE_FILE_MODE, make_private_dir

#: Bytes read from a pipe at a time; also the most one read can add to memory.
CHUNK = 64 * 1024

#: Pipe buffer asked for (Linux, best effort): a flooding agent blocks less, and the kernel
#: holds the bytes, not us. 256 KiB measured fastest (benchmarks/bench_runner_output.py).
PIPE_SIZE = 256 * 1024

#: Longest single sleep in the supervision loop: a safety net if no wake-up source fires.
MAX_WAIT = 0.5

#: Grace for the group sweep after the leader has exited (capped by the run's own grace).
SWEEP_GRACE = 1.0

#: After the leader exits, leftover pipe data is read for at most this long, then dropped.
DRAIN_TIMEOUT = 2.0

#: How long kill_group waits for a group to vanish after SIGKILL before giving up on it.
KILL_WAIT = 1.0

#: The variable that tags every process of a run (see find_orphans).
RUN_ID_VAR = "SHOPFLOOR_RUN_ID"

#: The variable that tags every process with the repository it works for (see find_orphans).
REPO_ID_VAR = "SHOPFLOOR_REPO_ID"

#: Create times of one process read twice agree to the clock tick (10 ms); allow for that.
_CREATE_TIME_SLACK = 0.05


@dataclass(frozen=True)
class RunSpec:
    """What to run and the limits it runs under.

    A limit (timeout, stall) of zero or less means "no limit". `env` is the complete child
    environment: nothing from the daemon's own environment is added.
    """

    run_id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    run_dir: Path
    timeout: float
    stall: float
    grace: float = 5.0
    log_cap: int = 64 * 1024 * 1024
    stdin_data: bytes | None = None
    #: Beyond log_cap, the last bytes of a stream are still kept and written after the
    #: truncation marker: CLI agents print their final message last, and backends parse it.
    keep_tail: int = 64 * 1024
    #: Linux: the leader gets SIGKILL when the thread that started it exits, so a worker that
    #: dies (kill -9) never leaves its agent running while Temporal hands the run to another.
    #: The spawning thread must live as long as the run (Runner.run blocks in it: it does).
    die_with_parent: bool = False


class Ending(StrEnum):
    """Why supervision ended; how the process itself ended is in exit_code / signal."""

    EXITED = "exited"
    TIMED_OUT = "timed-out"
    STALLED = "stalled"
    STOPPED = "stopped"
    FAILED_TO_START = "failed-to-start"


@dataclass(frozen=True)
class RunResult:
    """What happened, for the backend to classify; byte counts include discarded output.

    exit_code is None when the leader died of a signal (then `signal` says which) or never
    started; `error` says in words why supervision ended early ("timed out after 30 s").
    """

    ending: Ending
    exit_code: int | None
    signal: int | None
    duration: float
    stdout_path: Path
    stderr_path: Path
    stdout_bytes: int
    stderr_bytes: int
    truncated: bool
    error: str | None


class _StartError(Exception):
    """The process could not be started; the message says why, for the run record."""


# -- process groups -------------------------------------------------------------------------


def _check_pgid(pgid: int) -> None:
    """Refuse groups whose kill would hit init, everything, or the daemon itself."""
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}")


def _signal_group(pgid: int, sig: int) -> bool:
    """Send sig to the group; False when the group no longer exists (ESRCH is not an error)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member we may not signal (setuid) still means the group exists
    return True


def _has_live_member(pgid: int) -> bool:
    """Whether a process other than a zombie is in the group (one cheap getpgid per pid)."""
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue  # exited while we looked, or not ours to inspect
    return False


def group_alive(pgid: int) -> bool:
    """Whether any live process is still in the group.

    Zombies do not count: a killed grandchild is reparented to init, and an init that reaps
    slowly (or never, in some containers) must not make every sweep wait out its grace.
    """
    return _signal_group(pgid, 0) and _has_live_member(pgid)


def _wait_empty(pgid: int, timeout: float) -> bool:
    """Poll until the group is empty or the deadline passes; True when it emptied."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while group_alive(pgid):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
    return True


def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, give it `grace` seconds to exit cleanly, then SIGKILL what is left.

    Waiting is bounded: a zombie whose parent never reaps it cannot hold the caller forever.
    """
    _check_pgid(pgid)
    if not _signal_group(pgid, signal.SIGTERM) or _wait_empty(pgid, max(grace, 0.0)):
        return
    _signal_group(pgid, signal.SIGKILL)
    _wait_empty(pgid, KILL_WAIT)


def process_create_time(pid: int) -> float | None:
    """The process's start time (epoch seconds): with the pid it identifies a process uniquely."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _same_group_as_us(pid: int) -> bool:
    try:
        return os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        return True  # gone: nothing to report either


@dataclass(frozen=True, slots=True)
class StaleRun:
    """A run the journal says is running but no live daemon owns: what identifies its process."""

    run_id: str
    pid: int | None = None
    proc_started: float | None = None  # the leader's create time, journaled at spawn


def _tagged(env: object, repo_id: str, run_ids: set[str]) -> bool:
    """Both tags of the run contract: this repository, and one of its stale runs."""
    return (
        isinstance(env, dict) and env.get(REPO_ID_VAR) == repo_id and env.get(RUN_ID_VAR) in run_ids
    )


def _same_leader(pid: int, created: object, leaders: dict[int, float]) -> bool:
    """The journaled leader itself: same pid and same create time (a pid alone may have been
    reused by any process since the crash)."""
    started = leaders.get(pid)
    return (
        started is not None
        and isinstance(created, float)
        and abs(created - started) <= _CREATE_TIME_SLACK
    )


def find_orphans(repo_id: str, stale: Iterable[StaleRun]) -> list[psutil.Process]:
    """Live processes of this repository's stale runs (psutil.Process objects).

    Used at daemon start to find agent groups a dead daemon left behind. A process counts when
    its environment carries this repository's id and one of the stale run ids (any process of
    the run: leader or descendant), or when it is a stale run's leader by journaled pid and
    create time (found even if its environment cannot be read). The run id alone is not
    enough: every repository numbers its runs from R-1, and another project's agents must
    live on. We and our own process group are skipped (killing those would kill us).
    """
    runs = list(stale)
    if not runs:
        return []
    run_ids = {run.run_id for run in runs}
    leaders = {r.pid: r.proc_started for r in runs if r.pid and r.proc_started is not None}
    found = []
    for proc in psutil.process_iter(["environ", "create_time"], ad_value=None):
        info = proc.info
        ours = _tagged(info.get("environ"), repo_id, run_ids) or _same_leader(
            proc.pid, info.get("create_time"), leaders
        )
        if ours and proc.pid != os.getpid() and not _same_group_as_us(proc.pid):
            found.append(proc)
    return found


# -- output -----------------------------------------------------------------------------------


class _Sink:
    """One stream's log file: everything up to the cap, then counted and discarded.

    Unbuffered, so `shopfloor logs` sees output as it comes. A write error (a full disk) stops
    the writing, never the reading: the agent must not block on its pipe because we cannot log.
    """

    def __init__(self, path: Path, cap: int, keep_tail: int) -> None:
        self.path = path
        self.total = 0
        self.error: str | None = None
        # 0600 at creation: agent output may quote secrets from the code it read.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._cap = max(cap, 0)
        self._keep = max(keep_tail, 0)
        self._written = 0
        self._tail = bytearray()

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def truncated(self) -> bool:
        return self.total > self._cap

    def feed(self, data: bytes) -> None:
        """Log data up to the cap; beyond it only count it and remember the last bytes."""
        self.total += len(data)
        room = self._cap - self._written
        if room > 0:
            head = memoryview(data)[:room]
            self._write(head)
            self._written += len(head)
        if len(data) > room:
            self._remember(memoryview(data)[max(room, 0) :])

    def _remember(self, data: memoryview) -> None:
        if len(data) >= self._keep:
            self._tail = bytearray(data[len(data) - self._keep :])
            return
        self._tail += data
        excess = len(self._tail) - self._keep
        if excess > 0:
            del self._tail[:excess]

    def _write(self, data: memoryview | bytes) -> None:
        view = memoryview(data)
        while view and self.error is None:
            try:
                view = view[self._file.write(view) or 0 :]
            except OSError as exc:
                self.error = f"cannot write {self.path.name}: {exc.strerror or exc}"

    def close(self) -> None:
        """Write the truncation marker (with the final counts) and the kept tail, then close."""
        if self.truncated:
            discarded = self.total - self._written - len(self._tail)
            marker = (
                f"\n[shopfloor: output truncated at {self._cap} bytes; "
                f"{discarded} bytes discarded]\n"
            )
            self._write(marker.encode() + bytes(self._tail))
        self._file.close()


# -- starting ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _stdin_for(spec: RunSpec) -> Iterator[int | IO[bytes]]:
    """/dev/null, or the data in an unlinked temp file: a file never blocks us like a pipe can."""
    if spec.stdin_data is None:
        yield subprocess.DEVNULL
        return
    with tempfile.TemporaryFile(dir=spec.run_dir) as handle:
        handle.write(spec.stdin_data)
        handle.seek(0)
        yield handle


def _start_error(spec: RunSpec, exc: Exception) -> str:
    """A message that names what was missing: the binary, the directory, or the permission."""
    name = spec.argv[0]
    if isinstance(exc, FileNotFoundError):
        if not spec.cwd.is_dir():
            return f"working directory not found: {spec.cwd}"
        return f"executable not found: {name}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {getattr(exc, 'filename', None) or name}"
    return f"cannot start {name}: {exc}"


#: Run before the agent when it must die with its supervisor: set PR_SET_PDEATHSIG=SIGKILL,
#: make sure the supervisor did not die before that took effect, then exec the agent.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _argv(spec: RunSpec) -> list[str]:
    """The agent's argv; with `die_with_parent`, behind a small exec wrapper so the kernel
    kills the agent when its supervising thread dies (kill -9 of a worker).

    Not a preexec_fn: Python code in a child forked from a threaded process can deadlock
    before exec (seen: a worker's run stuck in fork for minutes under load). Not setpriv
    --pdeathsig either: it cannot tell that its parent died before the prctl (a worker
    killed in that instant would leave the agent running). A command that cannot be found
    is left alone, so starting it fails as it always did (not-installed)."""
    if not spec.die_with_parent or not sys.platform.startswith("linux"):
        return spec.argv
    if shutil.which(spec.argv[0], path=spec.env.get("PATH", os.defpath)) is None:
        return spec.argv
    wrapper = [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid())]
    return [*wrapper, *spec.argv]


def _spawn(spec: RunSpec) -> subprocess.Popen[bytes]:
    """Start argv (never a shell) as the leader of a new session, so its pgid is its pid."""
    if not spec.argv:
        raise _StartError("empty command")
    with _stdin_for(spec) as stdin:
        try:
            return subprocess.Popen(
                _argv(spec),
                cwd=spec.cwd,
                env=spec.env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                bufsize=0,
            )
        except (OSError, ValueError, TypeError, subprocess.SubprocessError) as exc:
            raise _StartError(_start_error(spec, exc)) from exc


def _kill_now(proc: subprocess.Popen[bytes]) -> None:
    """The last resort when supervision broke down: SIGKILL the group and reap the leader."""
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the process exits; None where unsupported."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _widen_pipe(fd: int) -> None:
    """Best effort: a full pipe limits throughput; refusal (limits, other OS) is harmless."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _limit(seconds: float) -> float:
    return seconds if seconds > 0 else math.inf


# -- supervision ------------------------------------------------------------------------------


@dataclass
class _Stopping:
    """A stop in progress: why, and when SIGTERM turns into SIGKILL (None once sent)."""

    ending: Ending
    error: str
    kill_at: float | None


@dataclass
class _Watch:
    """The supervision loop of one live process: its pipes, its deadlines, its stop."""

    spec: RunSpec
    proc: subprocess.Popen[bytes]
    sinks: tuple[_Sink, _Sink]
    wake_fd: int
    stop_reason: Callable[[], str | None]
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    open_streams: int = 0
    pidfd: int | None = None
    deadline: float = 0.0
    last_output: float = 0.0
    stopping: _Stopping | None = None

    def __post_init__(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, sink in zip((self.proc.stdout, self.proc.stderr), self.sinks, strict=True):
            os.set_blocking(stream.fileno(), False)
            _widen_pipe(stream.fileno())
            self.sel.register(stream.fileno(), selectors.EVENT_READ, sink)
            self.open_streams += 1
        self.sel.register(self.wake_fd, selectors.EVENT_READ, "wake")
        self.pidfd = _open_pidfd(self.proc.pid)
        if self.pidfd is not None:
            self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")
        now = time.monotonic()
        self.deadline = now + _limit(self.spec.timeout)
        self.last_output = now

    def watch(self) -> _Stopping | None:
        """Pump output and enforce the limits until the leader exits; how it was stopped, if."""
        while self.proc.poll() is None:
            now = time.monotonic()
            self._enforce(now)
            self._pump(self._wait_time(now))
        return self.stopping

    def _enforce(self, now: float) -> None:
        if self.stopping is None:
            cause = self._limit_reached(now)
            if cause is not None:
                self.stopping = _Stopping(*cause, kill_at=now + max(self.spec.grace, 0.0))
                _signal_group(self.proc.pid, signal.SIGTERM)
        elif self.stopping.kill_at is not None and now >= self.stopping.kill_at:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.stopping.kill_at = None

    def _limit_reached(self, now: float) -> tuple[Ending, str] | None:
        reason = self.stop_reason()
        if reason is not None:
            return Ending.STOPPED, f"stopped: {reason}"
        if now >= self.deadline:
            return Ending.TIMED_OUT, f"timed out after {self.spec.timeout:g} s"
        if now - self.last_output >= _limit(self.spec.stall):
            return Ending.STALLED, f"stalled: no output for {self.spec.stall:g} s"
        return None

    def _wait_time(self, now: float) -> float:
        """Sleep until the next deadline, never longer than MAX_WAIT."""
        if self.stopping is None:
            due = min(self.deadline, self.last_output + _limit(self.spec.stall))
        else:
            due = self.stopping.kill_at if self.stopping.kill_at is not None else math.inf
        return min(max(due - now, 0.0), MAX_WAIT)

    def _pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            if isinstance(key.data, _Sink):
                self._read(key.fd, key.data)
            elif key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(key.fd, CHUNK)
            # "exit": nothing to read; proc.poll() in the loop sees the exit.

    def _read(self, fd: int, sink: _Sink) -> None:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(fd)
            self.open_streams -= 1
            return
        sink.feed(data)
        self.last_output = time.monotonic()

    def finish(self) -> None:
        """Leave nothing behind: reap the leader, sweep its group, read what is left, close.

        A grandchild that kept stdout open is killed by the sweep; one that escaped the group
        (its own setsid) only costs us DRAIN_TIMEOUT before the pipes are closed under it.
        """
        if self.proc.poll() is None:  # only after an exception escaped watch()
            _kill_now(self.proc)
        kill_group(self.proc.pid, min(self.spec.grace, SWEEP_GRACE))
        self._drain(DRAIN_TIMEOUT)
        self._close()

    def _drain(self, seconds: float) -> None:
        self.sel.unregister(self.wake_fd)
        if self.pidfd is not None:
            self.sel.unregister(self.pidfd)
        end = time.monotonic() + seconds
        while self.open_streams and (left := end - time.monotonic()) > 0:
            self._pump(left)

    def _close(self) -> None:
        self.sel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        _close_pipes(self.proc)


# -- the runner -------------------------------------------------------------------------------


class Runner:
    """Runs one RunSpec once: spawn, supervise, sweep, report. stop() may come from any thread."""

    def __init__(
        self, spec: RunSpec, on_started: Callable[[int, float], None] | None = None
    ) -> None:
        self.spec = spec
        self._on_started = on_started
        self._lock = threading.RLock()  # re-entrant: stop() may run in a signal handler
        self._stop_reason: str | None = None
        self._wake_w: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._used = False

    @property
    def pid(self) -> int | None:
        """The leader's pid (= its process group id) once started."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def stop(self, reason: str = "stopped") -> None:
        """Ask for a clean stop (SIGTERM, grace, SIGKILL). Idempotent; the first reason wins."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            if self._wake_w is not None:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"!")

    def kill_now(self) -> None:
        """SIGKILL the run's whole group now, taking no lock (see Shop.kill_all_now)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)

    def _requested_stop(self) -> str | None:
        with self._lock:
            return self._stop_reason

    def run(self) -> RunResult:
        """Spawn, supervise and sweep; blocking. Raises only for our own faults (run_dir)."""
        with self._lock:
            if self._used:
                raise RuntimeError("a Runner runs once; make a new one for another run")
            self._used = True
        make_private_dir(self.spec.run_dir)
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            sinks = (
                stack.enter_context(self._sink("stdout.log")),
                stack.enter_context(self._sink("stderr.log")),
            )
            wake_r = self._open_wake(stack)
            ending, error = self._run(sinks, wake_r)
        # The sinks are closed here: truncation markers are written before anyone reads.
        return self._result(ending, error, sinks, time.monotonic() - started)

    def _sink(self, name: str) -> _Sink:
        return _Sink(self.spec.run_dir / name, self.spec.log_cap, self.spec.keep_tail)

    def _open_wake(self, stack: contextlib.ExitStack) -> int:
        """The self-pipe stop() writes to, so a stop wakes the loop at once."""
        wake_r, wake_w = os.pipe()
        stack.callback(self._close_wake, wake_r, wake_w)
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        with self._lock:
            self._wake_w = wake_w
        return wake_r

    def _close_wake(self, wake_r: int, wake_w: int) -> None:
        with self._lock:
            self._wake_w = None
        os.close(wake_r)
        os.close(wake_w)

    def _run(self, sinks: tuple[_Sink, _Sink], wake_r: int) -> tuple[Ending, str | None]:
        reason = self._requested_stop()
        if reason is not None:
            return Ending.STOPPED, f"stopped before start: {reason}"
        try:
            proc = _spawn(self.spec)
        except _StartError as exc:
            return Ending.FAILED_TO_START, str(exc)
        self._proc = proc
        try:
            watch = _Watch(self.spec, proc, sinks, wake_r, self._requested_stop)
        except BaseException:
            _kill_now(proc)
            _close_pipes(proc)
            raise
        try:
            self._announce(proc.pid)
            stopping = watch.watch()
        finally:
            watch.finish()
        if stopping is None:
            return Ending.EXITED, None
        return stopping.ending, stopping.error

    def _announce(self, pid: int) -> None:
        """Tell the caller (the daemon journals it) which process to find after a crash."""
        if self._on_started is not None:
            self._on_started(pid, process_create_time(pid) or time.time())

    def _result(
        self, ending: Ending, error: str | None, sinks: tuple[_Sink, _Sink], duration: float
    ) -> RunResult:
        out, err = sinks
        code = self._proc.returncode if self._proc is not None else None
        return RunResult(
            ending=ending,
            exit_code=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            duration=duration,
            stdout_path=out.path,
            stderr_path=err.path,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
            truncated=out.truncated or err.truncated,
            error=error or out.error or err.error,
        )
