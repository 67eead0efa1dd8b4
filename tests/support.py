"""Helpers for tests that drive a real project: git repo, config, CLI subprocess, waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from shopfloor import scaffold
from shopfloor.board import Board, Entry, Lane
from shopfloor.words import Event

ROOT = Path(__file__).resolve().parents[1]
FAKES = Path(__file__).resolve().parent / "fakes"
PIPELINE_AGENT = FAKES / "pipeline_agent.py"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def agent_command(*behaviour: str) -> list[str]:
    """A `command` agent running the scripted pipeline agent with the given behaviour."""
    return [sys.executable, str(PIPELINE_AGENT), *behaviour]


def config_text(
    agents: dict[str, dict[str, Any]],
    *,
    roles: dict[str, str] | None = None,
    pipeline: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """A shopfloor.toml: [agents], [roles] (every role to the first agent unless given),
    [pipeline] (no checks, 3 attempts unless given), then `extra` (more tables)."""
    default = next(iter(agents))
    every = {"pm": default, "coder": default, "qa": default, "hotfix": default, **(roles or {})}
    pipe = {"checks": [], "max_attempts": 3, **(pipeline or {})}
    lines = []
    for name, table in agents.items():
        lines.append(f"[agents.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    lines.append("[roles]")
    lines += [f"{k} = {toml_value(v)}" for k, v in every.items()]
    lines.append("[pipeline]")
    lines += [f"{k} = {toml_value(v)}" for k, v in pipe.items()]
    return "\n".join(lines) + "\n" + extra


def make_project(
    tmp: Path,
    *,
    agents: dict[str, dict[str, Any]] | None = None,
    roles: dict[str, str] | None = None,
    pipeline: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """A git repository with one commit, scaffolded, with the given config."""
    root = tmp / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "app.py").write_text("def answer():\n    return 42\n")
    scaffold.init(root, agents=[])
    agents = agents or {"sim": {"backend": "simulator"}}
    text = config_text(agents, roles=roles, pipeline=pipeline, extra=extra)
    (root / "shopfloor.toml").write_text(text)
    git(root, "add", "--all")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "initial")
    return root


def shopfloor(
    root: Path,
    *args: str,
    check: bool = True,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor", "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"shopfloor {args} exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def start_daemon(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def lane_of(root: Path, task_id: str) -> Lane | None:
    hits = [e.lane for e in Board(root).scan().entries if e.id == task_id]
    return hits[0] if len(hits) == 1 else None


def status_of(root: Path, task_id: str) -> str | None:
    """The task's status, or None while its file cannot be read: an agent rewriting the task
    file (truncate, then write — real CLIs do) leaves it empty for a moment."""
    hits = [e for e in Board(root).scan().entries if e.id == task_id]
    return str(hits[0].header.status) if len(hits) == 1 else None


def entry(root: Path, task_id: str) -> Any:
    return Board(root).find(task_id)


def tracker(root: Path, task_id: str) -> str:
    from shopfloor import task

    board = Board(root)
    return task.get_section(board.read_text(board.find(task_id)), "Tracker") or ""


def edit_fields(path: Path, **fields: Any) -> None:
    """Change front-matter fields as a person would, with an editor (not through Shopfloor)."""
    from shopfloor import task

    path.write_text(task.set_fields(path.read_text(), fields))


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Signal a daemon, wait for it (bounded), and never leave it running."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.communicate()


def marks(path: Path) -> list[list[str]]:
    """Lines `role task attempt run pid` the scripted agent appends when it starts."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def run_once_recording(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """One daemon pass (`run --once`, in this process); every notification it sent."""
    from shopfloor import config
    from shopfloor.scheduler import Daemon

    daemon = Daemon(root, config.load(root / "shopfloor.toml"), once=True)
    sent: list[tuple[str, dict[str, Any]]] = []
    original = daemon.shop.notify

    def notify(event: str, **payload: Any) -> object:
        sent.append((event, payload))
        return original(event, **payload)

    daemon.shop.notify = notify  # type: ignore[method-assign]
    daemon.run()
    return sent


def run_hotfix_once(root: Path, title: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """File a hotfix and run one daemon pass (`run --once`, in this process): the hotfix's id
    and every notification the daemon sent. The hotfix must end waiting for the human."""
    from shopfloor import actions

    task_id = actions.create_hotfix(Board(root), title).id
    sent = run_once_recording(root)
    entry = Board(root).find(task_id)
    assert (entry.lane, entry.header.status) == (Lane.HOTFIX, "awaiting-human")
    return task_id, sent


#: What the daemon does to a spec until QA passes it for the merge queue: claimed, coded,
#: claimed by QA, queued to land (review/, status landing).
TO_LANDING = (Event.CLAIMED, Event.CODED, Event.CLAIMED, Event.LAND_QUEUED)


def apply_events(root: Path, entry: Entry, *events: Event) -> Entry:
    """Walk a task through `events` with the real lifecycle, as the daemon would."""
    from shopfloor import lifecycle
    from shopfloor.journal import open_journal

    journal = open_journal(root)
    try:
        hands = lifecycle.Hands(Board(root), journal)
        for event in events:
            entry = lifecycle.apply(hands, entry, event, f"test: {event.value}")
    finally:
        journal.close()
    return entry


def task_state(root: Path, task_id: str) -> dict[str, Any]:
    """The task's per-task state in the journal."""
    from shopfloor.journal import Journal

    with Journal.for_project(root) as journal:
        return journal.task_state(task_id)
