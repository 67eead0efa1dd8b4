"""Tier (c): a hotfix by a real CLI in a live tree the human left dirty, and one that commits.

The daemon runs the hotfix as at 2 AM: the human's uncommitted work must be kept (in the tree
and under refs/shopfloor/snapshots/<id>), only the agent's change reported, and a commit the
agent makes flagged loudly in the tracker and the notification.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shopfloor.notify import events
from tests import clis
from tests.fakes.model_server import Append, ModelServer, Script, Shell, Write, result_block
from tests.support import git, make_project, run_hotfix_once, task_state, tracker

pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

GUARDED = "def answer():\n    try:\n        return 42\n    except Exception:\n        return 0\n"
HUMAN_UTIL = "X = 2  # the human's edit, not committed\n"
HUMAN_NEW = "print('the human, untracked')\n"
VERIFY = Append("{task_file}", "\n## Verification\n1. python -c 'import app; app.answer()'\n")
FIX = Script(steps=(Write("{workdir}/app.py", GUARDED), VERIFY), final=result_block("ok", "ok"))
COMMIT = "git -c user.name=agent -c user.email=agent@localhost commit -qam 'hotfix: guard answer'"
FIX_AND_COMMIT = Script(
    steps=(Write("{workdir}/app.py", GUARDED), VERIFY, Shell(COMMIT)),
    final=result_block("ok", "guarded and committed"),
)


def _hotfix(cli: str, tmp: Path, script: Script) -> tuple[Path, str, list[Any], ModelServer]:
    """A project with `cli` as its hotfix agent and a dirty tree; one daemon pass."""
    binary = clis.require(cli)
    with ModelServer(script) as server:
        env = clis.prepare(cli, tmp / "cli-home", server.url)
        agent = {"backend": cli, "command": str(binary), "env": env, "timeout": "180s"}
        root = make_project(tmp, agents={cli: agent})
        (root / "util.py").write_text("X = 1\n")
        git(root, "add", "util.py")
        git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "util")
        (root / "util.py").write_text(HUMAN_UTIL)
        (root / "mine.py").write_text(HUMAN_NEW)
        task_id, sent = run_hotfix_once(root, "answer() crashes in production")
    return root, task_id, sent, server


def _waiting(sent: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return next(p for e, p in sent if e == events.HOTFIX_AWAITING_HUMAN)


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_a_dirty_tree_keeps_the_humans_work_and_its_snapshot(tmp_path: Path, cli: str) -> None:
    root, task_id, sent, server = _hotfix(cli, tmp_path, FIX)
    assert any(r.role == "hotfix" for r in server.requests)
    ref = f"refs/shopfloor/snapshots/{task_id}"
    # The human's work is still in the tree, beside the agent's fix...
    assert (root / "app.py").read_text() == GUARDED
    assert (root / "util.py").read_text() == HUMAN_UTIL
    assert (root / "mine.py").read_text() == HUMAN_NEW
    # ...and kept under the snapshot ref, as it was before the agent started.
    assert git(root, "show", f"{ref}:util.py") == HUMAN_UTIL
    assert git(root, "show", f"{ref}:mine.py") == HUMAN_NEW
    assert git(root, "show", f"{ref}:app.py") == "def answer():\n    return 42\n"
    state = task_state(root, task_id)
    assert state["hotfix_snapshot"] == git(root, "rev-parse", ref).strip()
    assert "app.py" in state["hotfix_paths"]
    assert not {"util.py", "mine.py"} & set(state["hotfix_paths"])  # never the human's
    log = tracker(root, task_id)
    assert f"your uncommitted work (2 files: util.py, mine.py) is saved at {ref}" in log
    last = log.splitlines()[-1]
    assert "since your snapshot" in last and "util.py" not in last and "mine.py" not in last
    assert "WARNING" not in log and "INCOMPLETE" not in log
    assert _waiting(sent)["snapshot"] == ref


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_a_hotfix_agent_that_commits_is_flagged(tmp_path: Path, cli: str) -> None:
    root, task_id, sent, server = _hotfix(cli, tmp_path, FIX_AND_COMMIT)
    state = task_state(root, task_id)
    before, after = state["hotfix_head_before"], state["hotfix_head_after"]
    assert (root / "util.py").read_text() == HUMAN_UTIL  # in the tree still, whatever happened
    log = tracker(root, task_id)
    waiting = _waiting(sent)
    if after == before:
        # codex's workspace-write sandbox keeps .git read-only: the commit was refused (the
        # model saw why), so there is nothing to flag, and the tracker must not invent it.
        assert cli == "codex", f"{cli} did not commit:\n{log}"
        seen = " ".join(json.dumps(r.body) for r in server.requests)
        assert "index.lock': Read-only file system" in seen
        assert "WARNING" not in log and waiting["head_moved"] is False
        assert git(root, "log", "-1", "--format=%s") == "util\n"
        return
    assert git(root, "log", "-1", "--format=%s") == "hotfix: guard answer\n"
    flag = f"WARNING: a commit was made while the hotfix agent ran: HEAD moved {before[:10]} → "
    assert flag + f"{after[:10]} (1 new commit)" in log
    # `commit -a` swept the human's util.py into it: said, and the snapshot still has it alone.
    assert "those commits also hold your uncommitted work from before the hotfix: util.py" in log
    assert waiting["head_moved"] is True and waiting["commits"] == 1
    assert "⚠️ WARNING: a commit was made" in events.render(events.HOTFIX_AWAITING_HUMAN, waiting)
