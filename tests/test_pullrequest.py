"""`land = "pr"` (issue 12 item 5): the branch is pushed to a real (local, bare) remote and a
pull request opened by the configured command — here a stand-in `gh` first on PATH that
records its arguments. Real daemon passes, real git, real subprocesses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from shopfloor import actions, pullrequest
from shopfloor.board import Board, Lane
from tests.conftest import wait_until
from tests.support import (
    agent_command,
    git,
    lane_of,
    make_project,
    run_once_recording,
    shopfloor,
    start_daemon,
    stop,
    task_state,
    tracker,
)

URL = "https://forge.example/acme/app/pull/7"
SECRET = "123456:telegram-secret"


def stand_in_gh(bin_dir: Path, calls: Path, exit_code: int = 0, hold: Path | None = None) -> None:
    """A `gh` that appends {argv, cwd, secret_seen} to `calls`, then prints a URL (exit 0) or
    a forge's error on stderr (exit_code != 0). With `hold`: a slow forge, answering only once
    that file exists (60 s at most)."""
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        f"with open({str(calls)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
        "        'secret_seen': 'SHOPFLOOR_TELEGRAM_TOKEN' in os.environ}) + '\\n')\n"
        f"hold, until = {str(hold) if hold else ''!r}, time.monotonic() + 60\n"
        "while hold and not os.path.exists(hold) and time.monotonic() < until:\n"
        "    time.sleep(0.05)\n"
        f"if {exit_code}:\n"
        "    print('GraphQL: Head sha can not be blank (createPullRequest)', file=sys.stderr)\n"
        f"    sys.exit({exit_code})\n"
        "print('Creating pull request for shopfloor/x into main in acme/app')\n"
        "print()\n"
        f"print({URL!r})\n"
    )
    gh.chmod(0o755)


def recorded(calls: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


@pytest.fixture
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A project with land = "pr", a bare remote named `forge`, and `gh` first on PATH."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    agent = {"backend": "command", "command": agent_command("coder:write", "qa:pass")}
    root = make_project(
        tmp_path,
        agents={"a": agent},
        pipeline={
            "land": "pr",
            "pr_remote": "forge",
            "pr_command": ["gh", "pr", "create", "--fill", "--head", "{branch}", "--title", "{id}"],
        },
    )
    git(root, "remote", "add", "forge", str(remote))
    bin_dir, calls = tmp_path / "bin", tmp_path / "gh-calls.jsonl"
    stand_in_gh(bin_dir, calls)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("SHOPFLOOR_TELEGRAM_TOKEN", SECRET)
    return {"root": root, "remote": remote, "bin": bin_dir, "calls": calls}


def new(root: Path) -> str:
    return actions.create_task(Board(root), actions.NewTask("Add a flag", "spec", True)).id


def remote_sha(remote: Path, branch: str) -> str:
    return git(remote, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").strip()


def test_a_done_task_is_pushed_and_its_pull_request_opened(forge: dict[str, Path]) -> None:
    root, remote = forge["root"], forge["remote"]
    task_id = new(root)
    sent = run_once_recording(root)
    branch = f"shopfloor/{task_id}"
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.DONE, "closed")
    # The branch is on the remote, with the Coder's commit on top of main.
    local = git(root, "rev-parse", branch).strip()
    assert remote_sha(remote, branch) == local
    assert f"Shopfloor-Task: {task_id}" in git(remote, "log", "-1", "--format=%B", branch)
    assert git(remote, "rev-list", "--count", branch).strip() == "2"
    # The configured command ran once, in the live repository, with {id} and {branch} put in
    # and without the daemon's secrets.
    [call] = recorded(forge["calls"])
    assert call["argv"] == ["pr", "create", "--fill", "--head", branch, "--title", task_id]
    assert Path(call["cwd"]).resolve() == root.resolve() and call["secret_seen"] is False
    # The URL: tracker, state, notification.
    assert f"pr opened: {URL} (pushed {branch} to forge)" in tracker(root, task_id)
    assert task_state(root, task_id)["pr_url"] == URL
    opened = [p for e, p in sent if e == "pr_opened"]
    assert opened and opened[0]["url"] == URL and opened[0]["task_id"] == task_id


def test_a_failing_command_leaves_the_task_waiting_and_retry_opens_it(
    forge: dict[str, Path],
) -> None:
    root, remote = forge["root"], forge["remote"]
    stand_in_gh(forge["bin"], forge["calls"], exit_code=1)
    task_id = new(root)
    sent = run_once_recording(root)
    branch = f"shopfloor/{task_id}"
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.DONE, "blocked")
    log = tracker(root, task_id)
    assert "pr failed: `gh pr create --fill --head" in log and "exit 1: GraphQL: Head sha" in log
    assert f"`shopfloor retry {task_id}`" in log
    assert git(root, "rev-parse", branch).strip() == remote_sha(remote, branch)  # kept, pushed
    failed = [p for e, p in sent if e == "pr_failed"]
    assert failed and "GraphQL" in failed[0]["error"]
    assert "pr_url" not in task_state(root, task_id)

    run_once_recording(root)  # blocked: nothing is tried again by itself
    assert len(recorded(forge["calls"])) == 1

    stand_in_gh(forge["bin"], forge["calls"])  # the human fixed it
    shopfloor(root, "retry", task_id)
    run_once_recording(root)
    assert len(recorded(forge["calls"])) == 2
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.DONE, "closed")
    assert f"pr opened: {URL}" in tracker(root, task_id)


def test_a_rejected_push_never_touches_the_branch(forge: dict[str, Path]) -> None:
    """Rule: a push the remote refuses (someone else's branch of that name) is never forced:
    the task waits, blocked, with git's reason; the command is not run."""
    root, remote = forge["root"], forge["remote"]
    task_id = new(root)
    branch = f"shopfloor/{task_id}"
    other = git(root, "commit-tree", "-m", "someone else's", "HEAD^{tree}").strip()
    git(root, "push", "--quiet", "forge", f"{other}:refs/heads/{branch}")
    run_once_recording(root)
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.DONE, "blocked")
    assert f"pr failed: push of {branch} to forge failed" in tracker(root, task_id)
    assert remote_sha(remote, branch) == other  # their branch is as it was
    assert git(root, "rev-list", "--count", branch).strip() == "2"  # ours too
    assert recorded(forge["calls"]) == []


def test_a_missing_command_says_so(forge: dict[str, Path]) -> None:
    root = forge["root"]
    toml = (root / "shopfloor.toml").read_text().replace('["gh", ', '["no-such-forge-cli", ')
    (root / "shopfloor.toml").write_text(toml)
    task_id = new(root)
    run_once_recording(root)
    assert lane_of(root, task_id) is Lane.DONE
    assert "could not start" in tracker(root, task_id)
    assert Board(root).find(task_id).header.status == "blocked"


def test_a_reworked_task_updates_its_open_pull_request(forge: dict[str, Path]) -> None:
    """Rule: a task whose pull request is open can be reworked from done/; after QA passes
    again, its new commits are pushed (a fast-forward) and the command is not run again."""
    root, remote = forge["root"], forge["remote"]
    task_id = new(root)
    run_once_recording(root)
    branch = f"shopfloor/{task_id}"
    first = remote_sha(remote, branch)
    actions.rework(Board(root), task_id, "Also document the flag.")
    assert lane_of(root, task_id) is Lane.BACKLOG
    sent = run_once_recording(root)
    assert Board(root).find(task_id).header.status == "closed"
    now = remote_sha(remote, branch)
    assert now != first and git(root, "merge-base", "--is-ancestor", first, now) == ""
    assert len(recorded(forge["calls"])) == 1
    assert f"pr updated: {URL}" in tracker(root, task_id)
    assert [p.get("updated") for e, p in sent if e == "pr_opened"] == [True]


def test_the_url_is_the_last_one_printed_and_braces_are_plain_text() -> None:
    out = "see https://docs.example/help\nWarning: x\nhttps://forge.example/a/b/pull/9.\n\n"
    assert pullrequest.last_url(out) == "https://forge.example/a/b/pull/9"
    assert pullrequest.last_url("no url here") is None
    argv = pullrequest.command_argv(["x", "{id}", "--head={branch}", "{other}"], "T-1", "sf/T-1")
    assert argv == ["x", "T-1", "--head=sf/T-1", "{other}"]


def test_a_slow_forge_never_holds_up_the_pipeline(forge: dict[str, Path]) -> None:
    """The push and the forge's command are network calls: a running daemon makes them off
    its loop, so other tasks go on while a pull request is being opened."""
    root, release = forge["root"], forge["root"].parent / "release"
    stand_in_gh(forge["bin"], forge["calls"], hold=release)
    first = new(root)
    daemon = start_daemon(root)
    try:
        wait_until(lambda: recorded(forge["calls"]), 60, "the forge asked for the first task")
        second = new(root)
        wait_until(lambda: lane_of(root, second) == "done", 60, "the second task coded, checked")
        assert len(recorded(forge["calls"])) == 1 and "pr opened" not in tracker(root, first)
        release.touch()
        wait_until(lambda: f"pr opened: {URL}" in tracker(root, second), 60, "both opened")
        wait_until(lambda: f"pr opened: {URL}" in tracker(root, first), 60, "the first opened")
    finally:
        release.touch()
        assert stop(daemon) == 0
