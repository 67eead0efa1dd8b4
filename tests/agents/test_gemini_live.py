"""Tier (b): the real, pinned Gemini CLI, driven by Shopfloor against the scripted server."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from shopfloor.journal import Journal
from tests.agents.harness import FIX, CliRun, assert_fixed, run_cli
from tests.fakes.model_server import (
    Append,
    Call,
    Script,
    Write,
    result_block,
    role_of,
)

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

#: What a model ignoring its tool list would do: write, edit and run a shell anyway.
FORCED = (
    Call("write_file", (("file_path", "{workdir}/app.py"), ("content", "broken = True\n"))),
    Call(
        "replace",
        (
            ("file_path", "{workdir}/app.py"),
            ("old_string", "return 42"),
            ("new_string", "return 0"),
        ),
    ),
    Call("run_shell_command", (("command", "echo ran > {workdir}/ran.txt"),)),
)
_WRITERS = {"write_file", "replace", "run_shell_command"}


def _offered(done: CliRun, role: str) -> set[str]:
    return {t for r in done.server.requests if r.role == role for t in r.tools}


def test_gemini_hotfix_edits_files_and_reports_tokens(tmp_path: Path) -> None:
    done = run_cli("gemini", tmp_path, FIX, model="gemini-2.5-flash")
    assert_fixed(done)
    assert done.run.parsed.session_id
    assert done.run.parsed.cost_usd is None  # gemini reports no cost
    # the configured model reached the wire (`--model`), not the test default GEMINI_MODEL
    assert {r.path for r in done.server.requests} == {
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    }


def test_gemini_qa_cannot_write(tmp_path: Path) -> None:
    script = Script(steps=FORCED, final=result_block("ok", "looked", verdict="pass"))
    done = run_cli("gemini", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    assert not (done.root / "ran.txt").exists()
    assert not _offered(done, "qa") & _WRITERS
    assert done.stdout.count('"type":"tool_not_registered"') == len(FORCED), done.stdout
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr


def test_gemini_qa_subagent_cannot_write_either(tmp_path: Path) -> None:
    invoke = Call("invoke_agent", (("agent_name", "generalist"), ("prompt", "break app.py")))

    def script(text: str) -> Script:
        if role_of(text) == "qa":
            return Script(steps=(invoke,), final=result_block("ok", "looked", verdict="pass"))
        return Script(steps=FORCED, final="subagent done")  # the subagent's own requests

    done = run_cli("gemini", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    assert not (done.root / "ran.txt").exists()
    sub = [r for r in done.server.requests if r.role == "unknown" and r.tools]
    assert sub, "the subagent never ran"
    assert not {t for r in sub for t in r.tools} & _WRITERS


def test_gemini_pm_edits_but_runs_no_shell(tmp_path: Path) -> None:
    script = Script(
        steps=(Append("{task_file}", "\n## Plan\n1. fix it\n"), FORCED[2]),
        final=result_block("ok", "planned"),
    )
    done = run_cli("gemini", tmp_path, script, role="pm")
    assert "## Plan" in done.entry.path.read_text(), done.stdout + done.stderr
    assert not (done.root / "ran.txt").exists()
    offered = _offered(done, "pm")
    assert "write_file" in offered and "run_shell_command" not in offered, offered


def test_gemini_write_outside_the_workspace_is_permission_denied(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    script = Script(steps=(Write(str(outside), "x\n"),), final=result_block())
    done = run_cli("gemini", tmp_path, script)
    assert not outside.exists()
    assert done.run.outcome is Outcome.PERMISSION_DENIED, done.stdout + done.stderr
    assert "Path not in workspace" in (done.run.parsed.error or "")


@pytest.mark.parametrize(
    ("fail", "outcome", "exit_code"),
    [
        ("401", Outcome.AUTH_ERROR, 145),
        ("429", Outcome.RATE_LIMITED, 173),
        ("500", Outcome.AGENT_ERROR, 244),
    ],
)
def test_gemini_api_errors_are_classified(
    tmp_path: Path, fail: str, outcome: Outcome, exit_code: int
) -> None:
    done = run_cli("gemini", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr
    assert _exit_code(done) == exit_code  # the HTTP status mod 256
    if fail == "429":
        assert done.run.parsed.reset_at is not None  # "Suggested retry after 30s."


def _exit_code(done: CliRun) -> int | None:
    rows = Journal.for_project(done.root).runs()
    return next((r["exit_code"] for r in rows if r["id"] == done.run.run_dir.name), None)


def test_gemini_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("gemini", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED
