"""Tier (b): the real, pinned aider, driven by Shopfloor against the scripted server.

Aider has no tools: the server plays the script as an answer in aider's SEARCH/REPLACE format
(`aider_reply`), aider applies it. Each run costs 8-10 s, most of it importing litellm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import FIX, assert_fixed, run_cli
from tests.fakes.model_server import Append, Script, Shell, Write, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]


def test_aider_hotfix_edits_files_runs_commands_and_reports_tokens_and_cost(
    tmp_path: Path,
) -> None:
    # --no-stream: only then does aider report the server's usage instead of its own estimate
    done = run_cli("aider", tmp_path, FIX, args=["--no-stream"])
    tokens_in, _ = assert_fixed(done)
    assert tokens_in > 0  # the first answer names app.py: aider adds it and asks again
    assert done.run.parsed.cost_usd and done.run.parsed.cost_usd > 0
    leftovers = {p.name for p in done.root.iterdir() if p.name.startswith(".aider")}
    assert not leftovers, leftovers  # history in the run dir, no repo-map cache


def test_aider_pm_edits_its_task_file_without_shell(tmp_path: Path) -> None:
    script = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"), Shell("touch {workdir}/x")),
        final=result_block("ok", "specced"),
    )
    done = run_cli("aider", tmp_path, script, role="pm")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert "## Spec\nReturn 43." in done.entry.path.read_text()
    assert not (done.root / "x").exists()


def test_aider_qa_cannot_write(tmp_path: Path) -> None:
    script = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"), Shell("touch {workdir}/x")),
        final=result_block("ok", "looked", verdict="pass"),
    )
    done = run_cli("aider", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    assert not (done.root / "x").exists()
    assert "(--dry-run)" in done.stdout  # it did try: the answer carried the edit
    assert done.run.result["verdict"] == "pass"


@pytest.mark.parametrize(
    ("fail", "outcome"),
    [("401", Outcome.AUTH_ERROR), ("429", Outcome.RATE_LIMITED), ("500", Outcome.AGENT_ERROR)],
)
def test_aider_api_errors_are_classified(tmp_path: Path, fail: str, outcome: Outcome) -> None:
    done = run_cli("aider", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr
    assert done.run.result == {}


def test_aider_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("aider", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED
