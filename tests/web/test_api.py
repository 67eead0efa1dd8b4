"""The JSON API: shapes, errors in one envelope, and writes through the real lifecycle."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from shopfloor import actions, task
from shopfloor.board import Board, Lane
from tests.support import edit_fields, tracker


def _new(root: Path, title: str = "A task", backlog: bool = False) -> str:
    return actions.create_task(Board(root), actions.NewTask(title, backlog=backlog)).id


def _envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_state_lists_every_lane_with_its_tasks(api: httpx.Client, project: Path) -> None:
    inbox = _new(project, "In the inbox")
    ready = _new(project, "Ready", backlog=True)
    state = api.get("/api/v1/state").json()
    assert state["schema"] == actions.JSON_SCHEMA_VERSION
    assert set(state["lanes"]) == {lane.value for lane in Lane if lane is not Lane.INVALID}
    assert [t["id"] for t in state["lanes"]["inbox"]] == [inbox]
    assert [t["id"] for t in state["lanes"]["backlog"]] == [ready]
    task = state["lanes"]["inbox"][0]
    assert task["title"] == "In the inbox"
    assert task["lane"] == "inbox"
    assert task["path"].startswith("tasks/inbox/")
    assert state["running"] == []
    assert state["paused"] == []
    assert state["totals"]["tasks"] == 2
    assert state["totals"]["running"] == 0
    assert state["counts"]["inbox"] == 1
    assert {"cost_usd", "today_usd"} <= set(state["totals"])
    assert state["generated_at"].endswith("Z")


def test_state_lists_only_the_lanes_asked_for_and_counts_the_rest(
    api: httpx.Client, project: Path
) -> None:
    inbox = _new(project, "Waiting")
    done = _new(project, "Finished", backlog=True)
    path = Board(project).find(done).path
    os.rename(path, project / "tasks" / "done" / path.name)
    full = api.get("/api/v1/state").json()
    part = api.get("/api/v1/state", params={"lanes": "inbox,hotfix"}).json()
    assert set(part["lanes"]) == {"inbox", "hotfix"}
    assert [t["id"] for t in part["lanes"]["inbox"]] == [inbox]
    assert part["counts"] == full["counts"]
    assert part["counts"]["done"] == 1
    assert part["totals"]["tasks"] == full["totals"]["tasks"] == 2
    _envelope(api.get("/api/v1/state", params={"lanes": "inbox,nowhere"}), 400, "invalid_request")
    _envelope(api.get("/api/v1/state", params={"lanes": "invalid"}), 400, "invalid_request")


def test_state_reads_the_files_on_every_request(api: httpx.Client, project: Path) -> None:
    assert api.get("/api/v1/state").json()["totals"]["tasks"] == 0
    task_id = _new(project)  # behind the server's back, as the CLI would
    assert [t["id"] for t in api.get("/api/v1/state").json()["lanes"]["inbox"]] == [task_id]


def test_a_task_document_has_its_sections_and_runs(api: httpx.Client, project: Path) -> None:
    task_id = actions.create_task(
        Board(project), actions.NewTask("Show me", body="The request text")
    ).id
    doc = api.get(f"/api/v1/{task_id}").json()
    assert doc["id"] == task_id
    assert doc["sections"]["Request"] == "The request text"
    assert "Tracker" in doc["sections"]
    assert doc["runs"] == []
    assert doc["run_logs"] == []
    assert doc["checks"] == []
    assert doc["cost_usd"] == 0.0
    assert "The request text" in doc["text"]


def test_an_unknown_task_is_404_task_not_found(api: httpx.Client) -> None:
    _envelope(api.get("/api/v1/T-9999"), 404, "task_not_found")
    _envelope(api.post("/api/v1/T-9999/approve"), 404, "task_not_found")


def test_a_wrong_method_is_405_in_the_envelope(api: httpx.Client) -> None:
    response = api.delete("/api/v1/state")
    _envelope(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]
    _envelope(api.get("/api/v1/tasks"), 405, "method_not_allowed")
    _envelope(api.get("/api/v1/hotfix"), 405, "method_not_allowed")
    _envelope(api.post("/api/v1/state"), 405, "method_not_allowed")
    _envelope(api.put("/api/v1/T-0001/approve"), 405, "method_not_allowed")


def test_unknown_endpoints_and_actions_are_404(api: httpx.Client, project: Path) -> None:
    task_id = _new(project)
    _envelope(api.post(f"/api/v1/{task_id}/explode"), 404, "not_found")
    _envelope(api.get("/api/v1/a/b/c/d/e"), 404, "not_found")


def test_bad_bodies_are_400(api: httpx.Client, project: Path) -> None:
    _envelope(api.post("/api/v1/tasks", content=b"{not json"), 400, "invalid_json")
    for body in (
        {},
        {"title": 7},
        {"title": "x", "evil": 1},
        {"title": "   "},
        {"title": "x", "priority": "P9"},
        ["a list"],
    ):
        _envelope(api.post("/api/v1/tasks", json=body), 400, "invalid_request")
    _envelope(api.post("/api/v1/hotfix", json={"body": "no title"}), 400, "invalid_request")
    assert Board(project).scan().entries == []


def test_create_task_writes_the_file(api: httpx.Client, project: Path) -> None:
    response = api.post(
        "/api/v1/tasks", json={"title": "Add a web board", "body": "With SSE", "backlog": True}
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["schema"] == 1
    assert doc["lane"] == "backlog"
    assert response.headers["location"] == f"/api/v1/{doc['id']}"
    entry = Board(project).find(doc["id"])
    assert entry.lane is Lane.BACKLOG
    assert (project / doc["path"]).is_file()
    assert "With SSE" in Board(project).read_text(entry)
    assert "web created in backlog" in tracker(project, doc["id"])


def test_create_hotfix_writes_the_file_with_the_pasted_log(
    api: httpx.Client, project: Path
) -> None:
    log = "\n".join(f"line {n}" for n in range(500)) + "\nTraceback: boom"
    response = api.post("/api/v1/hotfix", json={"title": "Prod is down", "log": log})
    assert response.status_code == 201, response.text
    doc = response.json()
    entry = Board(project).find(doc["id"])
    assert entry.lane is Lane.HOTFIX
    assert entry.header.is_hotfix
    text = Board(project).read_text(entry)
    assert "Traceback: boom" in text
    assert "line 0\n" not in text  # only the tail is kept


def test_approve_through_the_lifecycle(api: httpx.Client, project: Path) -> None:
    task_id = _new(project, backlog=True)
    edit_fields(Board(project).find(task_id).path, status="awaiting-approval")
    response = api.post(f"/api/v1/{task_id}/approve")
    assert response.status_code == 200, response.text
    assert response.json()["task"]["status"] == "queued"
    assert Board(project).find(task_id).header.status == "queued"
    assert "human approved via web" in tracker(project, task_id)


def test_a_refused_transition_is_409(api: httpx.Client, project: Path) -> None:
    task_id = _new(project)  # queued in inbox: nothing to approve
    _envelope(api.post(f"/api/v1/{task_id}/approve"), 409, "transition_refused")
    assert Board(project).find(task_id).header.status == "queued"


def test_cancel_then_retry_move_the_file(api: httpx.Client, project: Path) -> None:
    task_id = _new(project)
    cancelled = api.post(f"/api/v1/{task_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert Board(project).find(task_id).lane is Lane.FAILED
    assert "human cancelled via web" in tracker(project, task_id)
    _envelope(api.post(f"/api/v1/{task_id}/cancel"), 409, "refused")  # already in failed/
    retried = api.post(f"/api/v1/{task_id}/retry")
    assert retried.status_code == 200, retried.text
    entry = Board(project).find(task_id)
    assert entry.lane is not Lane.FAILED
    assert entry.header.status == "queued"
    assert retried.json()["task"]["lane"] == entry.lane.value


def test_close_a_hotfix_moves_it_to_done(api: httpx.Client, project: Path) -> None:
    hotfix = api.post("/api/v1/hotfix", json={"title": "Disk full"}).json()["id"]
    response = api.post(f"/api/v1/{hotfix}/close", json={"force": True})
    assert response.status_code == 200, response.text
    assert response.json()["task"]["lane"] == "done"
    entry = Board(project).find(hotfix)
    assert entry.lane is Lane.DONE
    assert "web" in tracker(project, hotfix)
    _envelope(api.post(f"/api/v1/{hotfix}/close"), 409, "refused")  # not in hotfix/ any more


def test_rework_sends_the_notes_through_actions(api: httpx.Client, project: Path) -> None:
    if not hasattr(actions, "rework"):
        pytest.skip("actions.rework is not on this branch yet (helper rework-pr, issue 12)")
    # QA passed, waiting in done/ for a person: the moment a reviewer asks for rework.
    task_id = _new(project, backlog=True)
    path = Board(project).find(task_id).path
    done = project / "tasks" / "done" / path.name
    os.rename(path, done)
    edit_fields(done, status="awaiting-human")
    body = {
        "notes": "Tighten the error handling",
        "comments": [{"path": "app.py", "line": 2, "text": "return 43 here"}],
    }
    response = api.post(f"/api/v1/{task_id}/rework", json=body)
    assert response.status_code == 200, response.text
    entry = Board(project).find(task_id)
    assert entry.lane is not Lane.DONE
    notes = task.get_section(Board(project).read_text(entry), "Rework notes") or ""
    assert "Tighten the error handling" in notes
    assert "`app.py:2`: return 43 here" in notes


def test_rework_without_notes_is_400_or_501(api: httpx.Client, project: Path) -> None:
    task_id = _new(project)
    response = api.post(f"/api/v1/{task_id}/rework", json={"notes": ""})
    expected = (400, "invalid_request") if hasattr(actions, "rework") else (501, "not_implemented")
    _envelope(response, *expected)


def test_refresh_is_202(api: httpx.Client) -> None:
    response = api.post("/api/v1/refresh")
    assert response.status_code == 202
    assert response.json()["queued"] is True
    assert response.json()["daemon_running"] is False


def test_a_script_title_comes_back_json_escaped(api: httpx.Client, project: Path) -> None:
    title = '<script>alert("x")</script> & more'
    task_id = api.post("/api/v1/tasks", json={"title": title}).json()["id"]
    for response in (api.get(f"/api/v1/{task_id}"), api.get("/api/v1/state")):
        assert "<script>" not in response.text
        assert "\\u003cscript\\u003e" in response.text
        assert response.headers["content-type"].startswith("application/json")
    assert api.get(f"/api/v1/{task_id}").json()["title"] == title
