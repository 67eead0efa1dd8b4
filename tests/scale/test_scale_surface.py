"""What a person sees of `[scale] engine = "temporal"`: `status` (text, --json, the daemon's
socket answer), the web board's state and page, the engine notifications, and `doctor`
against a real Temporal dev server, a closed port, and remotes that exist or not."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfloor import actions, config, statusd
from shopfloor.board import Board
from shopfloor.journal import Journal, open_journal
from shopfloor.notify import events
from shopfloor.scale import state
from shopfloor.scale.contract import agent_queue
from shopfloor.scale.queues import project_key
from tests.scale.cluster import free_port, started_server
from tests.support import git, make_project, shopfloor

# ---------------------------------------------------------------------------- helpers


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped): what a killed daemon leaves."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_engine(root: Path, *, up: bool, pid: int | None = None) -> None:
    state.write_engine_state(
        root,
        address="127.0.0.1:7233",
        namespace="default",
        task_queue="shopfloor",
        up=up,
        error=None if up else "connection refused",
        since="2026-12-04T10:00:00Z",
        pid=pid,
    )


def remote_run(root: Path, task_id: str, worker: str | None) -> None:
    with open_journal(root) as journal:
        journal.insert_run(
            f"R-{task_id}", task_id, "coder", agent="sim", state="running", worker=worker
        )


def status_json(root: Path) -> dict[str, Any]:
    return json.loads(shopfloor(root, "status", "--json").stdout)


# ---------------------------------------------------------------------------- engine.json


def test_no_engine_file_is_the_embedded_mode(project: Path) -> None:
    assert state.read_engine_state(project) is None
    assert status_json(project)["engine"] is None


def test_engine_state_reads_up_down_and_a_dead_daemon_as_unknown(project: Path) -> None:
    write_engine(project, up=True)  # this process stands for the daemon: it is alive
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "up" and seen.error is None
    assert seen.since == "2026-12-04T10:00:00Z" and seen.pid == os.getpid()
    write_engine(project, up=False)
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "down" and seen.error == "connection refused"
    write_engine(project, up=True, pid=dead_pid())
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "unknown" and not seen.daemon_running
    assert seen.since == "" and "not running" in (seen.error or "")
    state.engine_path(project).write_text("{not json")
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "unknown"
    # What the daemon's dispatch.Engine says, in its own words (epoch seconds).
    scale = config.ScaleConfig(engine="temporal", address="10.0.0.9:7233")
    state.record_engine(project, scale, "connecting", since=1_800_000_000.0)
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "connecting" and seen.error is None
    assert seen.since == "2027-01-15T08:00:00Z" and seen.address == "10.0.0.9:7233"
    state.record_engine(project, scale, "down", "deadline exceeded")
    seen = state.read_engine_state(project)
    assert seen is not None and seen.state == "down" and seen.error == "deadline exceeded"
    with pytest.raises(ValueError, match="one of up, down, connecting"):
        state.record_engine(project, scale, "sideways")
    state.clear_engine_state(project)
    assert state.read_engine_state(project) is None


# ---------------------------------------------------------------------------- status


def test_status_shows_the_worker_and_the_engine_up(project: Path) -> None:
    board = Board(project)
    remote = actions.create_task(board, actions.NewTask("Runs on a worker"))
    local = actions.create_task(board, actions.NewTask("Runs here"))
    remote_run(project, remote.id, "machine-b")
    remote_run(project, local.id, None)
    write_engine(project, up=True)
    doc = status_json(project)
    workers = {r["task_id"]: r["worker"] for r in doc["runs"]}
    assert workers == {remote.id: "machine-b", local.id: None}
    assert doc["engine"]["state"] == "up" and doc["engine"]["address"] == "127.0.0.1:7233"
    text = shopfloor(project, "status", "--width", "200").stdout
    assert f"{remote.id} coder sim on machine-b R-{remote.id}" in text
    assert f"{local.id} coder sim R-{local.id}" in text
    assert "engine  temporal 127.0.0.1:7233 up since 2026-12-04T10:00:00Z" in text


def test_status_says_tasks_wait_while_the_engine_is_down(project: Path) -> None:
    write_engine(project, up=False)
    doc = status_json(project)
    assert doc["engine"]["state"] == "down" and doc["engine"]["error"] == "connection refused"
    text = shopfloor(project, "status", "--width", "200").stdout
    assert "DOWN since 2026-12-04T10:00:00Z: connection refused" in text
    assert "tasks wait for the engine; hotfixes still run here" in text
    # The engine is read on every status, never kept in the cache beside the journal's.
    write_engine(project, up=True)
    assert status_json(project)["engine"]["state"] == "up"


def test_status_shows_a_stale_engine_file_as_unknown(project: Path) -> None:
    write_engine(project, up=False, pid=dead_pid())
    doc = status_json(project)
    assert doc["engine"]["state"] == "unknown" and doc["engine"]["daemon_running"] is False
    text = shopfloor(project, "status", "--width", "200").stdout
    assert "state unknown" in text and "DOWN" not in text


def test_the_daemon_socket_answer_carries_engine_and_worker(project: Path) -> None:
    """The status server's document (what `status` gets from a running daemon) equals the
    one `status` builds without a daemon, engine and workers included."""
    task = actions.create_task(Board(project), actions.NewTask("Remote"))
    remote_run(project, task.id, "machine-c")
    write_engine(project, up=False)
    journal = Journal.for_project(project)
    try:
        server = statusd.StatusServer(project, lambda: journal)
        from_daemon = json.loads(server.document())
    finally:
        journal.close()
    from_files = json.loads(statusd.status_text(str(project), ask_daemon=False) or "null")
    for doc in (from_daemon, from_files):
        assert doc["engine"]["state"] == "down"
        assert [r["worker"] for r in doc["runs"]] == ["machine-c"]
    assert list(from_daemon) == list(from_files)  # the same keys in the same order


# ---------------------------------------------------------------------------- web


def test_web_state_and_page_show_the_worker_and_the_engine(project: Path) -> None:
    from tests.web.support import TOKEN, served

    task = actions.create_task(Board(project), actions.NewTask("Remote"))
    remote_run(project, task.id, "machine-d")
    write_engine(project, up=False)
    with (
        served(project) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as api,
    ):
        doc = api.get("/api/v1/state").json()
        assert doc["engine"]["state"] == "down"
        assert [r["worker"] for r in doc["running"]] == ["machine-d"]
        page = api.get("/").text
        assert 'class="engine down"' in page and "hotfixes still run here" in page
        assert "on machine-d" in page
        write_engine(project, up=True)
        # What board.js fetches on an event and swaps region by region: the engine region
        # is always there (empty while up), so the banner can come and go live.
        fragment = api.get("/fragment/board").text
        assert '<section class="engine none" data-region="engine"></section>' in fragment
        assert api.get("/api/v1/state").json()["engine"]["state"] == "up"


def test_the_event_stream_says_when_the_engine_changed(project: Path) -> None:
    from tests.web.support import EventReader, served

    with served(project) as url:
        reader = EventReader(url)
        try:
            reader.wait_for(lambda e: e["event"] == "hello", timeout=10)
            write_engine(project, up=False)
            changed = reader.wait_for(lambda e: e.get("engine") is True, timeout=10)
            assert changed["event"] == "changed"
        finally:
            reader.close()


# ---------------------------------------------------------------------------- notifications


def test_engine_notifications_render_for_every_channel() -> None:
    down = events.render(events.ENGINE_DOWN, {"address": "10.0.0.5:7233", "error": "refused"})
    assert "Temporal unreachable at 10.0.0.5:7233" in down and "hotfixes still run here" in down
    assert "refused" in down
    up = events.render(events.ENGINE_UP, {"address": "10.0.0.5:7233", "down_for": 125})
    assert "reachable again" in up and "2m05s" in up
    # As urgent as a fault of the machine; subscribable by name in [notify.*] events.
    assert events.priority(events.ENGINE_DOWN) == events.priority(events.FAULT)
    assert {events.ENGINE_DOWN, events.ENGINE_UP} <= set(events.ALL_EVENTS)


def test_the_bots_status_names_the_worker_and_the_engine(project: Path) -> None:
    from shopfloor.notify.bot import Commands

    task = actions.create_task(Board(project), actions.NewTask("Remote"))
    remote_run(project, task.id, "machine-e")
    commands = Commands(project)
    try:
        assert "engine" not in commands.answer("/status")  # the embedded mode says nothing
        write_engine(project, up=False)
        answer = commands.answer("/status")
    finally:
        commands.close_journal()
    assert f"R-{task.id} coder {task.id} on machine-e" in answer
    assert "engine: temporal 127.0.0.1:7233 DOWN since" in answer
    assert "hotfixes still run here" in answer


# ---------------------------------------------------------------------------- doctor


@pytest.fixture(scope="module")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `temporal server start-dev` on 127.0.0.1, stopped after the module."""
    server = started_server(tmp_path_factory.mktemp("temporal"))
    try:
        yield server.address
    finally:
        server.stop()


class AgentPoller:
    """A real Temporal worker polling one agent's queue under a given identity (a stand-in for
    `shopfloor worker` on another machine: doctor only asks who polls)."""

    def __init__(self, address: str, queue: str, identity: str) -> None:
        self.address, self.queue, self.identity = address, queue, identity
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._polling = threading.Event()

    async def _run(self) -> None:
        from temporalio import activity
        from temporalio.client import Client
        from temporalio.worker import Worker

        @activity.defn(name="noop")
        async def noop() -> None:
            return None

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await Client.connect(self.address, identity=self.identity)
        async with Worker(client, task_queue=self.queue, activities=[noop]):
            self._polling.set()
            await self._stop.wait()

    def __enter__(self) -> AgentPoller:
        self._thread.start()
        assert self._polling.wait(30), "the worker did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the worker did not stop"


def scale_project(tmp_path: Path, address: str, remote: str = "origin") -> Path:
    root = make_project(
        tmp_path,
        agents={"sim": {"backend": "simulator"}, "sim2": {"backend": "simulator"}},
        roles={"qa": "sim2", "hotfix": "sim"},
        extra=(
            f'[scale]\nengine = "temporal"\naddress = "{address}"\n'
            f'task_queue = "sq"\nremote = "{remote}"\n'
        ),
    )
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(root, "remote", "add", "origin", str(bare))
    return root


def doctor_json(root: Path) -> tuple[int, dict[str, Any]]:
    proc = shopfloor(root, "doctor", "--json", check=False)
    return proc.returncode, json.loads(proc.stdout)


def queue_pollers(engine: dict[str, Any]) -> dict[str | None, list[str]]:
    return {q["agent"]: q["pollers"] for q in engine["queues"]}


def test_doctor_sees_the_engine_the_remote_and_which_agents_have_workers(
    tmp_path: Path, temporal_address: str
) -> None:
    root = scale_project(tmp_path, temporal_address)
    queue = f"sq.{project_key(root)}"  # [scale] task_queue, this repository's own
    with AgentPoller(temporal_address, agent_queue(queue, "sim"), "machine-a"):
        deadline = time.monotonic() + 30
        while True:  # Temporal lists a poller once its first poll reached the server
            code, doc = doctor_json(root)
            if queue_pollers(doc["engine"])["sim"] == ["machine-a"]:
                break
            assert time.monotonic() < deadline, doc["engine"]
    engine = doc["engine"]
    assert code == 0 and doc["ok"] and engine["ok"], engine
    assert engine["connected"] and engine["remote_reachable"]
    assert engine["remote_url"] == str(tmp_path / "shared.git")
    assert queue_pollers(engine)["sim2"] == []
    warnings = " ".join(engine["warnings"])
    assert "no worker has the agent 'sim2' (qa)" in warnings and f"{queue}.agent.sim2" in warnings
    assert "'sim' (" not in warnings  # sim has its worker
    assert f"no worker polls {queue}:" in warnings  # the stand-in polls no workflows
    with AgentPoller(temporal_address, agent_queue(queue, "sim"), "machine-a"):
        human = shopfloor(root, "doctor", check=False).stdout
    assert f"engine temporal {temporal_address}" in human and "connected" in human
    assert f"agent sim (pm, coder) on {queue}.agent.sim: machine-a" in human


def test_doctor_fails_on_a_closed_port_and_names_the_fallback(tmp_path: Path) -> None:
    root = scale_project(tmp_path, f"127.0.0.1:{free_port()}")
    code, doc = doctor_json(root)
    assert code == 1 and not doc["ok"]
    engine = doc["engine"]
    assert not engine["connected"] and engine["remote_reachable"]  # the remote is fine
    (error,) = engine["errors"]
    assert "is unreachable" in error and "hotfixes still run here" in error
    assert "temporal server start-dev" in error
    human = shopfloor(root, "doctor", check=False)
    assert human.returncode == 1 and "cannot be used" in human.stdout


def test_doctor_fails_on_a_remote_that_is_missing_or_unreadable(tmp_path: Path) -> None:
    root = scale_project(tmp_path, f"127.0.0.1:{free_port()}", remote="upstream")
    code, doc = doctor_json(root)
    assert code == 1
    assert any("'upstream' is not a git remote" in e for e in doc["engine"]["errors"])
    secret_url = "https://user:s3cret-token@127.0.0.1:1/nothing.git"
    git(root, "remote", "add", "upstream", secret_url)
    code, doc = doctor_json(root)
    engine = doc["engine"]
    assert code == 1 and not engine["remote_reachable"]
    assert engine["remote_url"] == "https://…@127.0.0.1:1/nothing.git"
    assert any("'upstream'" in e and "cannot be read" in e for e in engine["errors"])
    assert "s3cret-token" not in json.dumps(doc)  # a token in a URL is never printed


def test_doctor_without_the_sdk_names_the_extra(tmp_path: Path) -> None:
    root = scale_project(tmp_path, "127.0.0.1:1")
    # The SDK made unimportable in the doctor's own process (as on a machine without it).
    code = (
        "import runpy, sys; sys.modules['temporalio'] = None; "
        f"sys.argv = ['shopfloor', '-C', {str(root)!r}, 'doctor', '--json']; "
        "runpy.run_module('shopfloor', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    errors = json.loads(proc.stdout)["engine"]["errors"]
    assert any("pip install 'shopfloor[temporal]'" in e for e in errors)


def test_doctor_in_local_mode_has_no_engine(project: Path) -> None:
    cfg = config.load(project / "shopfloor.toml")
    assert cfg.scale.engine == "local"
    _, doc = doctor_json(project)
    assert doc["engine"] is None
