"""Tier (b): the real, pinned OpenCode, driven by Shopfloor against the scripted server.

Roles are permission rules in OPENCODE_PERMISSION (see shopfloor/agents/opencode.py); these
tests prove each role gets what it may do and no more, that a refused call (which exits 0)
is still read as permission-denied, and that OpenCode's silent retries of a 429 end as a
rate limit, not as a stall.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import FIX, assert_fixed, coder_run_in_worktree, project_for, run_cli
from tests.fakes.model_server import Append, ModelServer, Script, Write, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

ORIGINAL = "def answer():\n    return 42\n"
FIXED = "def answer():\n    return 43\n"
#: Longer than OpenCode's silent start (it prints nothing until the first model reply),
#: which is under 3 s here (its complete runs take 3.5 s): 15 s leaves a loaded machine 4x.
STALL = "15s"


def test_opencode_hotfix_edits_files_and_reports_tokens(tmp_path: Path) -> None:
    done = run_cli("opencode", tmp_path, FIX)
    assert_fixed(done)
    assert done.run.parsed.cost_usd == 0  # a custom provider has no prices
    assert done.run.parsed.session_id and done.run.parsed.session_id.startswith("ses_")


def test_opencode_gets_the_prompt_verbatim_and_makes_no_title_call(tmp_path: Path) -> None:
    done = run_cli("opencode", tmp_path, Script(final=result_block("ok", "hello")))
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert all(r.tools for r in done.server.requests), "a tool-less call: a session title?"
    messages = done.server.requests[0].body["messages"]
    sent = next(m["content"] for m in messages if m["role"] == "user")
    text = sent if isinstance(sent, str) else "".join(p.get("text", "") for p in sent)
    prompt = (done.run.run_dir / "prompt.md").read_text()
    assert text.strip() == prompt.strip()  # as an argument it would arrive re-quoted


def test_opencode_coder_writes_its_worktree_and_the_result_file_outside_it(
    tmp_path: Path,
) -> None:
    script = Script(
        steps=(
            Write("{workdir}/app.py", FIXED),
            Write("{result_file}", json.dumps({"outcome": "ok", "summary": "from the file"})),
        ),
        final="finished, result written",  # no fenced block: the result must be the file
    )
    with ModelServer(script) as server:
        root = project_for("opencode", tmp_path, server.url)
        run, workdir = coder_run_in_worktree(root)
    assert run.outcome is Outcome.OK, run.error
    assert (workdir / "app.py").read_text() == FIXED
    assert (root / "app.py").read_text() == ORIGINAL
    assert run.result["summary"] == "from the file"


def test_opencode_qa_is_offered_no_tool_that_writes(tmp_path: Path) -> None:
    done = run_cli(
        "opencode", tmp_path, Script(final=result_block("ok", "looked", verdict="pass")), "qa"
    )
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert done.run.result["verdict"] == "pass"
    offered = {t for r in done.server.requests for t in r.tools}
    assert {"read", "grep"} <= offered, offered
    assert not offered & {"write", "edit", "bash", "apply_patch"}, offered


def test_opencode_pm_edits_its_task_file_and_nothing_else(tmp_path: Path) -> None:
    script = Script(
        steps=(
            Append("{task_file}", "\n## Spec\nReturn 43.\n"),
            Write("{workdir}/app.py", "broken = True\n"),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("opencode", tmp_path, script, "pm")
    assert "## Spec" in done.entry.path.read_text()
    assert (done.root / "app.py").read_text() == ORIGINAL
    assert done.run.outcome is Outcome.PERMISSION_DENIED, done.stdout  # yet it exited 0
    assert "bash" not in {t for r in done.server.requests for t in r.tools}


def test_opencode_write_outside_the_working_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "outside" / "denied.txt"
    target.parent.mkdir()
    script = Script(steps=(Write(str(target), "x\n"),), final=result_block())
    done = run_cli("opencode", tmp_path / "inside", script)
    assert not target.exists()
    assert done.run.outcome is Outcome.PERMISSION_DENIED, done.stdout  # yet it exited 0
    assert "auto-rejecting" in done.stderr  # refused at once, never waiting on a prompt


def test_opencode_auth_error_is_classified(tmp_path: Path) -> None:
    done = run_cli("opencode", tmp_path, Script(fail="401"))
    assert done.run.outcome is Outcome.AUTH_ERROR, done.stdout + done.stderr


def test_opencode_server_error_is_an_agent_error_after_its_retries(tmp_path: Path) -> None:
    # OpenCode waits what `retry-after-ms` says (on a 5xx too) instead of its own back-off
    # (2, 4, 8, 16, 32 s): the same 6 calls and the same end, in a second instead of a minute.
    done = run_cli("opencode", tmp_path, Script(fail="500", retry_after_ms="50"))
    assert done.run.outcome is Outcome.AGENT_ERROR, done.stdout + done.stderr
    assert len(done.server.requests) == 6


def test_opencode_waiting_out_a_rate_limit_is_rate_limited_not_stalled(tmp_path: Path) -> None:
    script = Script(fail="429", retry_after="3600")  # it would sleep an hour, silently
    done = run_cli("opencode", tmp_path, script, stall=STALL)
    assert done.run.outcome is Outcome.RATE_LIMITED, done.stdout + done.stderr
    assert done.run.parsed.reset_at is not None


def test_opencode_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("opencode", tmp_path, Script(fail="hang"), stall=STALL)
    assert done.run.outcome is Outcome.STALLED
    assert done.server.requests  # it did reach the model, and hung there
