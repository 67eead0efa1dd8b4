"""Tier (c): the whole pipeline with one real agent CLI playing every role.

PM writes the spec, the Coder changes code in its worktree, the orchestrator runs the checks,
QA gives its verdict, and a hotfix patches the live tree — each run a real, pinned CLI talking
to the scripted model server, which plays the role its request's bootloader names.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shopfloor import actions, config
from shopfloor.board import Board, Lane
from shopfloor.scheduler import Daemon
from tests import clis
from tests.fakes.model_server import Append, ModelServer, Script, Write, result_block, role_of
from tests.support import git, make_project, tracker

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

FIXED = "def answer():\n    return 43\n"
GUARDED = "def answer():\n    try:\n        return 42\n    except Exception:\n        return 0\n"
CHECK = [sys.executable, "-c", "import app, sys; sys.exit(0 if app.answer() == 43 else 1)"]

SCRIPTS = {
    "pm": Script(
        steps=(
            Append("{task_file}", "\n## Spec\n1. answer() returns 43.\n2. The check passes.\n"),
        ),
        final=result_block("ok", "spec written"),
    ),
    "coder": Script(
        steps=(Write("{workdir}/app.py", FIXED),), final=result_block("ok", "answer is 43")
    ),
    "qa": Script(final=result_block("ok", "meets the spec", verdict="pass", notes="checked")),
    "hotfix": Script(
        steps=(
            Write("{workdir}/app.py", GUARDED),
            Append("{task_file}", "\n## Verification\n1. python -c 'import app; app.answer()'\n"),
        ),
        final=result_block("ok", "guarded the call"),
    ),
}


def play(text: str) -> Script:
    return SCRIPTS.get(role_of(text), Script())


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_every_role_played_by_one_real_cli(tmp_path: Path, cli: str) -> None:
    binary = clis.require(cli)
    with ModelServer(play) as server:
        env = clis.prepare(cli, tmp_path / "cli-home", server.url)
        agent = {"backend": cli, "command": str(binary), "env": env, "timeout": "180s"}
        root = make_project(tmp_path, agents={cli: agent}, pipeline={"checks": [CHECK]})
        board = Board(root)
        task_id = actions.create_task(board, actions.NewTask("Answer 43", "make it 43")).id
        hotfix_id = actions.create_hotfix(board, "answer() crashes in production").id
        assert Daemon(root, config.load(root / "shopfloor.toml"), once=True).run() == 0
    roles_seen = {r.role for r in server.requests}
    assert {"pm", "coder", "qa", "hotfix"} <= roles_seen, roles_seen

    done = Board(root).find(task_id)
    lines = tracker(root, task_id)
    assert done.lane is Lane.DONE, lines
    for role in ("pm", "coder", "qa"):
        assert f"{role} {cli} run R-" in lines
    assert "exit 0 — passed" in lines, lines
    assert git(root, "show", f"shopfloor/{task_id}:app.py") == FIXED
    assert "## Spec" in Board(root).read_text(done)

    hotfix = Board(root).find(hotfix_id)
    assert hotfix.lane is Lane.HOTFIX and hotfix.header.status == "awaiting-human"
    assert (root / "app.py").read_text() == GUARDED  # the live tree, uncommitted
    assert "app.py" in git(root, "status", "--porcelain")
    assert "INCOMPLETE" not in tracker(root, hotfix_id)
