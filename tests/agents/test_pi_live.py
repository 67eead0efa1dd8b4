"""Tier (b): the real, pinned pi, driven by Shopfloor against the scripted server."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import FIX, assert_fixed, run_cli
from tests.fakes.model_server import Append, Script, Write, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]


def test_pi_hotfix_edits_files_and_reports_tokens_and_cost(tmp_path: Path) -> None:
    done = run_cli("pi", tmp_path, FIX)
    tokens_in, tokens_out = assert_fixed(done)
    # tests/clis/pi.py prices the model at $3 / $15 per million tokens in and out.
    expected = (tokens_in * 3 + tokens_out * 15) / 1e6
    assert done.run.parsed.cost_usd == pytest.approx(expected)
    assert done.run.parsed.session_id


def test_pi_qa_is_offered_no_tool_that_writes(tmp_path: Path) -> None:
    script = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"),),
        final=result_block("ok", "looked", verdict="pass"),
    )
    done = run_cli("pi", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    offered = {t for r in done.server.requests if r.role == "qa" for t in r.tools}
    assert offered and not offered & {"write", "edit", "bash"}, offered


def test_pi_pm_edits_its_task_file_without_a_shell(tmp_path: Path) -> None:
    script = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"),),
        final=result_block("ok", "specced"),
    )
    done = run_cli("pi", tmp_path, script, role="pm")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert "## Spec" in done.entry.path.read_text()
    offered = {t for r in done.server.requests if r.role == "pm" for t in r.tools}
    assert {"read", "write", "edit"} <= offered and "bash" not in offered, offered


@pytest.mark.parametrize(
    ("fail", "outcome"),
    [("401", Outcome.AUTH_ERROR), ("429", Outcome.RATE_LIMITED), ("500", Outcome.AGENT_ERROR)],
)
def test_pi_api_errors_are_classified_though_it_exits_0(
    tmp_path: Path, fail: str, outcome: Outcome
) -> None:
    done = run_cli("pi", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr
    assert done.run.parsed.error and fail in done.run.parsed.error
    if fail == "429":
        assert done.run.parsed.reset_at is not None  # "Please try again in 30s."


def test_pi_without_an_api_key_is_an_auth_error(tmp_path: Path) -> None:
    done = run_cli("pi", tmp_path, Script(), model="openai/gpt-4o-mini")
    assert done.run.outcome is Outcome.AUTH_ERROR, done.stdout + done.stderr
    assert not done.server.requests


def test_pi_model_flag_reaches_the_server(tmp_path: Path) -> None:
    done = run_cli("pi", tmp_path, Script(final=result_block()), model="fake/other-model")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert {r.body.get("model") for r in done.server.requests} == {"other-model"}


def test_pi_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("pi", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED
