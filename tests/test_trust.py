"""Trust: what a kill -9, a full disk, a read-only lane or a person's hand leaves behind.

Real daemons as subprocesses, real git, real files, real mounts (root only). The fault seam
`SHOPFLOOR_FAULT=<point>:<event>` makes the daemon SIGKILL itself inside `lifecycle.apply`
just before the named write; every test then lets a fresh daemon finish the work and checks
the board with `tests.invariants.assert_board_sound`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shopfloor import actions
from shopfloor.board import Board
from tests.invariants import Expected, assert_board_sound, kill_leftovers, stop
from tests.support import agent_command, make_project, shopfloor, start_daemon

OK_CHECK = [sys.executable, "-c", "print('1 passed')"]


def marks(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def command_agent(*behaviour: str) -> dict[str, object]:
    return {"backend": "command", "command": agent_command(*behaviour), "timeout": "60s"}


def new(root: Path, title: str, backlog: bool = False, agent: str | None = None) -> str:
    spec = actions.NewTask(title, "do it", backlog, agent=agent)
    return actions.create_task(Board(root), spec).id


def run_once(root: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return shopfloor(root, "run", "--once", check=False, timeout=timeout)


def die_by_fault(root: Path, fault: str, timeout: float = 60) -> None:
    """Start a daemon that kills itself at `fault`; it must die by SIGKILL (the point is
    reached), never finish or hang."""
    daemon = start_daemon(root, env={"SHOPFLOOR_FAULT": fault})
    try:
        code = daemon.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(daemon)
        raise AssertionError(f"the daemon never reached {fault}") from None
    finally:
        if daemon.poll() is not None:
            daemon.communicate()
    assert code == -9, f"the daemon exited {code}, not by SIGKILL at {fault}"


# ------------------------------------------------------------ 1. a kill at every write

#: Every (point, event) the pipeline reaches for an inbox request that QA fails once, and a
#: backlog spec that passes first time: inbox -> PM -> backlog -> Coder -> checks -> QA.
PIPELINE_FAULTS = [
    "write:claimed",
    "move:claimed",
    "write:spec-written",
    "move:spec-written",
    "write:noted",
    "write:coded",
    "move:coded",
    "write:qa-failed",
    "move:qa-failed",
    "write:qa-passed",
    "move:qa-passed",
]
#: ... and for a hotfix (its file never leaves hotfix/).
HOTFIX_FAULTS = ["write:claimed", "write:noted", "write:hotfix-ran"]


def pipeline_project(tmp_path: Path) -> tuple[Path, Expected]:
    fast = ("pm:spec", "coder:write", "qa:pass", "hotfix:patch")
    root = make_project(
        tmp_path,
        agents={
            "a": command_agent(f"*:mark={tmp_path / 'marks.txt'}", *fast),
            "picky": command_agent(f"*:mark={tmp_path / 'marks.txt'}", *fast, "qa:failfirst"),
        },
        pipeline={"checks": [OK_CHECK], "concurrency": {"pm": 2, "coder": 2, "qa": 2}},
    )
    twice = new(root, "Needs two attempts", agent="picky")  # QA FAIL, then PASS
    once = new(root, "Ready spec", backlog=True)
    return root, Expected(done={twice: 2, once: 1})


@pytest.mark.parametrize("fault", PIPELINE_FAULTS)
def test_a_kill_at_any_pipeline_write_is_finished_by_the_next_daemon(
    tmp_path: Path, fault: str
) -> None:
    """Invariant: wherever the daemon dies, the next one finishes every task exactly once,
    with the attempts the agent needed, no verdict applied twice, nothing pending, no orphan."""
    root, expected = pipeline_project(tmp_path)
    try:
        die_by_fault(root, fault)
        final = run_once(root)
        assert final.returncode == 0, final.stderr
        assert_board_sound(root, expected)
    finally:
        kill_leftovers(root)


@pytest.mark.parametrize("fault", HOTFIX_FAULTS)
def test_a_kill_at_any_hotfix_write_leaves_it_for_the_human(tmp_path: Path, fault: str) -> None:
    """A hotfix killed anywhere ends awaiting-human with its verification steps, never re-run
    by itself once its agent ran (the live tree may hold half a patch)."""
    mark = tmp_path / "marks.txt"
    root = make_project(tmp_path, agents={"a": command_agent(f"*:mark={mark}", "hotfix:patch")})
    hotfix = actions.create_hotfix(Board(root), "prod is down").id
    try:
        die_by_fault(root, fault)
        final = run_once(root)
        assert final.returncode == 0, final.stderr
        assert_board_sound(root, Expected(hotfixes=(hotfix,)))
        ran = [m for m in marks(mark) if m[0] == "hotfix"]
        assert len(ran) == 1, ran  # killed before its claim: run once after; else never again
    finally:
        kill_leftovers(root)
