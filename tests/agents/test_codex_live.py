"""Tier (b): the real, pinned Codex CLI, driven by Shopfloor against the scripted server.

Each role runs in Codex's own sandbox (see shopfloor/agents/codex.py); these tests prove the
sandbox works here and that a denied write leaves the files alone — which the output does not
reliably say (the run exits 0; the denied command is only sometimes in the --json stream).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import FIX, assert_fixed, coder_run_in_worktree, project_for, run_cli
from tests.fakes.model_server import Append, ModelServer, Script, Shell, Write, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

ORIGINAL = "def answer():\n    return 42\n"


def test_codex_hotfix_edits_files_and_reports_tokens(tmp_path: Path) -> None:
    done = run_cli("codex", tmp_path, FIX)
    assert_fixed(done)
    assert done.run.parsed.cost_usd is None  # Codex reports no cost
    assert done.run.parsed.session_id


def test_codex_coder_writes_its_worktree_and_the_result_file_outside_it(tmp_path: Path) -> None:
    script = Script(
        steps=(
            Write("{workdir}/app.py", "def answer():\n    return 43\n"),
            Write("{result_file}", json.dumps({"outcome": "ok", "summary": "from the file"})),
        ),
        final="finished, result written",  # no fenced block: the result must be the file
    )
    with ModelServer(script) as server:
        root = project_for("codex", tmp_path, server.url)
        run, workdir = coder_run_in_worktree(root)
    assert run.outcome is Outcome.OK, run.error
    assert (workdir / "app.py").read_text() == "def answer():\n    return 43\n"
    assert (root / "app.py").read_text() == ORIGINAL
    assert run.result["summary"] == "from the file"


def test_codex_pm_edits_its_task_file_and_nothing_else(tmp_path: Path) -> None:
    script = Script(
        steps=(
            Append("{task_file}", "\n## Spec\nanswer() returns 43.\n"),
            Write("{workdir}/app.py", "broken = True\n"),
            Write("{workdir}/notes.txt", "stray\n"),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("codex", tmp_path, script, role="pm")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert "## Spec" in done.entry.path.read_text()
    assert (done.root / "app.py").read_text() == ORIGINAL
    assert not (done.root / "notes.txt").exists()


def test_codex_qa_cannot_write(tmp_path: Path) -> None:
    script = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"), Shell("touch {workdir}/qa.txt")),
        final=result_block("ok", "looked", verdict="pass"),
    )
    done = run_cli("codex", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == ORIGINAL
    assert not (done.root / "qa.txt").exists()
    assert done.run.outcome is Outcome.OK and done.run.result["verdict"] == "pass"


def test_codex_denied_write_outside_the_workspace_exits_ok_but_writes_nothing(
    tmp_path: Path,
) -> None:
    target = Path("/etc/shopfloor-codex-denied.txt")
    script = Script(steps=(Write(str(target), "x\n"),), final=result_block())
    done = run_cli("codex", tmp_path, script)
    assert not target.exists()
    assert done.run.outcome is Outcome.OK  # the lie: exit 0, and the stream may not even show it


@pytest.mark.parametrize(
    ("fail", "outcome"),
    [("401", Outcome.AUTH_ERROR), ("429", Outcome.RATE_LIMITED), ("500", Outcome.AGENT_ERROR)],
)
def test_codex_api_errors_are_classified(tmp_path: Path, fail: str, outcome: Outcome) -> None:
    done = run_cli("codex", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr
    assert done.run.parsed.error


def test_codex_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("codex", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED
