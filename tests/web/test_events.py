"""The event stream: a change on disk, however it is made, reaches every client quickly."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx

from shopfloor import actions
from shopfloor.board import Board, Entry
from shopfloor.web import events
from tests.conftest import CliRun
from tests.support import git
from tests.web.support import TOKEN, EventReader


def _new(root: Path, title: str = "Move me") -> Entry:
    return actions.create_task(Board(root), actions.NewTask(title))


def test_a_hand_made_move_reaches_the_stream_within_a_second(web: str, project: Path) -> None:
    entry = _new(project)
    reader = EventReader(web)
    try:
        assert reader.next(timeout=10)["event"] == "hello"
        target = project / "tasks" / "backlog" / entry.path.name
        moved_at = time.monotonic()
        os.rename(entry.path, target)  # by hand, outside the server
        event = reader.wait_for(
            lambda e: any(t["id"] == entry.id for t in e.get("tasks", [])), timeout=1.0
        )
        latency = time.monotonic() - moved_at
    finally:
        reader.close()
    assert event["event"] == "changed"
    assert "backlog" in event["lanes"]
    [task] = [t for t in event["tasks"] if t["id"] == entry.id]
    assert task["lane"] == "backlog"
    assert task["path"] == f"tasks/backlog/{entry.path.name}"
    assert latency < 1.0


def test_a_deleted_file_is_reported_gone(web: str, project: Path) -> None:
    entry = _new(project)
    reader = EventReader(web)
    try:
        reader.next(timeout=10)
        entry.path.unlink()
        event = reader.wait_for(lambda e: e.get("gone"), timeout=2.0)
    finally:
        reader.close()
    assert event["gone"] == [{"lane": "inbox", "path": f"tasks/inbox/{entry.path.name}"}]


def test_an_api_write_and_a_cli_write_reach_every_client(
    web: str, project: Path, cli: CliRun
) -> None:
    readers = [EventReader(web) for _ in range(3)]
    try:
        for reader in readers:
            reader.next(timeout=10)
        with httpx.Client(base_url=web, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            created = api.post("/api/v1/tasks", json={"title": "From the API"}).json()["id"]
        by_cli = cli(project, "new", "From the CLI", "--json")
        assert by_cli.returncode == 0, by_cli.stderr
        for task_id in (created, json.loads(by_cli.stdout)["id"]):
            for reader in readers:
                reader.wait_for(
                    lambda e, i=task_id: any(t["id"] == i for t in e.get("tasks", [])),
                    timeout=2.0,
                )
    finally:
        for reader in readers:
            reader.close()


def test_a_burst_of_changes_is_debounced(web: str, project: Path) -> None:
    reader = EventReader(web)
    try:
        reader.next(timeout=10)
        board = Board(project)
        ids = {actions.create_task(board, actions.NewTask(f"Task {n}")).id for n in range(20)}
        seen: set[str] = set()
        count = 0
        while seen != ids:
            event = reader.wait_for(lambda e: e["event"] == "changed", timeout=3.0)
            count += 1
            seen |= {t["id"] for t in event["tasks"]}
    finally:
        reader.close()
    assert count < 20  # grouped, not one event per file


def test_stopping_the_server_ends_open_streams(project: Path) -> None:
    from tests.web.support import served

    with served(project) as url:
        reader = EventReader(url)
        reader.next(timeout=10)
        started = time.monotonic()
    # served() returned: the server stopped although a client was still connected
    assert reader.wait_for(lambda e: e["event"] == "_eof", timeout=5)
    assert time.monotonic() - started < 5


def test_a_slow_client_is_told_to_resync_not_buffered_forever(project: Path) -> None:
    async def scenario() -> list[dict[str, object]]:
        hub = events.EventHub(Board(project), heartbeat=60)
        stream = hub.stream()
        received = [await anext(stream), await anext(stream)]  # retry, hello
        assert "hello" in received[1]
        for n in range(events.QUEUE_SIZE * 3):
            hub.publish({"type": "changed", "seq": n})
        first = await anext(stream)
        await stream.aclose()
        return [json.loads(first.split("data: ", 1)[1])]

    [event] = asyncio.run(scenario())
    assert event["type"] == "resync"


def test_a_run_log_streams_what_is_appended(web: str, project: Path) -> None:
    from shopfloor import runlogs

    entry = _new(project)
    run_dir = runlogs.runs_dir(project) / "R-000001"
    run_dir.mkdir(parents=True)
    runlogs.write_meta(run_dir, entry.id, "coder", "sim")
    (run_dir / "stdout.log").write_text("first line\n")
    reader = EventReader(web, f"/api/v1/{entry.id}/runs/R-000001/log")
    try:
        first = reader.wait_for(lambda e: e["event"] == "log", timeout=5)
        assert first["text"] == "first line\n"
        assert first["file"] == "stdout.log"
        with open(run_dir / "stdout.log", "a") as fh:
            fh.write("second line\n")
        second = reader.wait_for(lambda e: e["event"] == "log", timeout=3)
        assert second["text"] == "second line\n"
        with open(run_dir / "stdout.log", "ab") as raw:  # a character cut between two writes
            raw.write("café".encode()[:-1])
            raw.flush()
            time.sleep(events.LOG_POLL * 2)  # let the server read the first half alone
            raw.write("café".encode()[-1:] + b"\n")
        texts = ""
        while texts != "café\n":
            texts += reader.wait_for(lambda e: e["event"] == "log", timeout=3)["text"]
        (run_dir / "result.json").write_text("{}")
        reader.wait_for(lambda e: e["event"] == "end", timeout=3)
    finally:
        reader.close()
    git(project, "status")  # the repository is untouched by reading logs


def test_an_unknown_run_is_404(web: str, project: Path) -> None:
    entry = _new(project)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.get(f"{web}/api/v1/{entry.id}/runs/R-999/log", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"
    response = httpx.get(f"{web}/api/v1/T-4242/runs/R-999/log", headers=headers)
    assert response.json()["error"]["code"] == "task_not_found"
