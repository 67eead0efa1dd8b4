"""Tier (b): the real, pinned Claude Code, driven by Shopfloor against the scripted server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import FIX, assert_fixed, run_cli
from tests.fakes.model_server import Script, Shell, Write, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]


def test_claude_hotfix_edits_files_and_reports_tokens_and_cost(tmp_path: Path) -> None:
    done = run_cli("claude", tmp_path, FIX)
    assert_fixed(done)
    systems = [json.dumps(r.body.get("system")) for r in done.server.requests if r.tools]
    assert all("running headless under Shopfloor" in s for s in systems)  # no questions asked
    assert done.run.parsed.cost_usd and done.run.parsed.cost_usd > 0
    assert done.run.parsed.session_id


def test_claude_qa_cannot_write(tmp_path: Path) -> None:
    script = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"),),
        final=result_block("ok", "looked", verdict="pass"),
    )
    done = run_cli("claude", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    offered = {t for r in done.server.requests if r.role == "qa" for t in r.tools}
    assert "Write" not in offered and "Bash" not in offered, offered


@pytest.mark.parametrize(
    ("fail", "outcome"),
    [("401", Outcome.AUTH_ERROR), ("429", Outcome.RATE_LIMITED), ("500", Outcome.AGENT_ERROR)],
)
def test_claude_api_errors_are_classified(tmp_path: Path, fail: str, outcome: Outcome) -> None:
    done = run_cli("claude", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr


def test_claude_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("claude", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED


def test_claude_rate_limited_pauses_the_agent_and_the_task_waits(tmp_path: Path) -> None:
    from shopfloor import actions, config
    from shopfloor.board import Board, Lane
    from shopfloor.journal import Journal
    from shopfloor.scheduler import Daemon
    from tests.agents.harness import project_for
    from tests.fakes.model_server import ModelServer
    from tests.support import tracker

    with ModelServer(Script(fail="429")) as server:
        root = project_for("claude", tmp_path, server.url)
        spec = actions.NewTask("Needs claude", "do it", backlog=True)
        task_id = actions.create_task(Board(root), spec).id
        assert Daemon(root, config.load(root / "shopfloor.toml"), once=True).run() == 0
    entry = Board(root).find(task_id)
    assert entry.lane is Lane.BACKLOG and entry.header.status == "queued"
    assert entry.header.attempts == 0
    assert "paused until" in tracker(root, task_id)
    with Journal.for_project(root) as journal:
        assert set(journal.pauses()) == {"claude"}


def test_claude_stops_itself_at_what_the_task_budget_leaves(tmp_path: Path) -> None:
    """The remaining budget goes to --max-budget-usd; claude's own stop reads as over-budget."""
    steps = tuple(Shell(f"echo {i} >> {{workdir}}/n.txt") for i in range(6))
    many = Script(steps=steps, final=result_block("ok", "all six"))
    done = run_cli("claude", tmp_path, many, role="coder", extra="[budget]\ntask_usd = 0.01\n")
    assert done.run.outcome is Outcome.OVER_BUDGET, done.stdout
    assert len((done.root / "n.txt").read_text().splitlines()) < 6  # it stopped early
