"""Live: two hotfixes filed at once into a fresh daemon both reach their real agent.

The backend registry loads on a process's first run; it used to be published half-filled, so
the second of two simultaneous hotfixes could fail with "unknown agent backend 'claude'" and
wait for a human with no agent ever started. Here a new `shopfloor run` process gets two
hotfixes in the same instant, each played by the real CLI against the scripted server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor import actions
from shopfloor.board import Board
from shopfloor.journal import Journal
from tests.agents.harness import project_for
from tests.conftest import wait_until
from tests.fakes.model_server import Append, ModelServer, Script, Write, result_block
from tests.support import git, start_daemon, status_of, stop, tracker

pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

FIXES = {name: f"def {name}():\n    return 'guarded'\n" for name in ("checkout", "login")}


def fix_for(request: str) -> Script:
    """Each hotfix writes its own module: which one, its request says."""
    name = "checkout" if "checkout is down" in request else "login"
    return Script(
        steps=(
            Write(f"{{workdir}}/{name}.py", FIXES[name]),
            Append("{task_file}", f"\n## Verification\n1. python -c 'import {name}'\n"),
        ),
        final=result_block("ok", f"guarded {name}"),
    )


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_two_hotfixes_filed_at_once_into_a_fresh_daemon_both_run(tmp_path: Path, cli: str) -> None:
    with ModelServer(fix_for) as server:
        root = project_for(cli, tmp_path, server.url)
        board = Board(root)
        ids = [
            actions.create_hotfix(board, f"{name} crashes", body=f"{name} is down in production").id
            for name in FIXES
        ]
        daemon = start_daemon(root)
        try:
            for hotfix_id in ids:
                wait_until(
                    lambda h=hotfix_id: status_of(root, h) == "awaiting-human",
                    180,
                    f"{hotfix_id} awaiting a human",
                )
        finally:
            assert stop(daemon) == 0
    with Journal.for_project(root) as journal:
        runs = journal.runs()
    for hotfix_id in ids:
        lines = tracker(root, hotfix_id)
        assert "unknown agent backend" not in lines, lines
        assert f"hotfix {cli} run R-" in lines, lines
        assert [r["outcome"] for r in runs if r["task_id"] == hotfix_id] == ["ok"], lines
    changed = git(root, "status", "--porcelain")
    for name, content in FIXES.items():  # the hotfix diff: both fixes, uncommitted, live tree
        assert (root / f"{name}.py").read_text() == content
        assert f"{name}.py" in changed
