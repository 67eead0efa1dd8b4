"""Tier (b): the real, pinned Qwen Code, driven by Shopfloor against the scripted server.

qwen retries a 429 (honouring Retry-After: 30 s) and a 500 up to 7 times on its own, with no
setting to stop it, so `test_qwen_server_error_is_an_agent_error` takes ~80 s; the rate-limit
test uses a spent quota, which qwen gives up on at once (the plain 429 is in the recordings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tests.fakes.model_server as model_server
from shopfloor.agents import Outcome
from shopfloor.journal import Journal
from tests.agents.harness import assert_fixed, run_cli
from tests.fakes.model_server import Append, Reply, Script, Shell, result_block

# Real CLIs retry API errors on their own schedule (qwen, opencode: over a minute).
pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

# qwen refuses to overwrite a file it has not read in the session, so the fix is an Append
# (read_file, then write_file): a later definition wins.
FIX = Script(
    steps=(
        Append("{workdir}/app.py", "\n\ndef answer():\n    return 43\n"),
        Append(
            "{task_file}", "\n## Verification\n1. python -c 'import app; print(app.answer())'\n"
        ),
        Shell("echo checked > {workdir}/ran.txt"),
    ),
    final=result_block("ok", "answer fixed"),
)


def test_qwen_hotfix_edits_files_and_reports_tokens(tmp_path: Path) -> None:
    done = run_cli("qwen", tmp_path, FIX)
    assert_fixed(done, app="\n\ndef answer():\n    return 43\n")
    assert done.run.parsed.cost_usd is None  # qwen reports no cost
    assert done.run.parsed.session_id


def test_qwen_qa_gives_its_verdict_in_default_mode(tmp_path: Path) -> None:
    script = Script(final=result_block("ok", "looked", verdict="pass"))
    done = run_cli("qwen", tmp_path, script, role="qa")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert done.run.result["verdict"] == "pass"
    assert '"permission_mode":"default"' in done.stdout


def _exit_code(run_dir: Path) -> int | None:
    rows = [r for r in Journal.for_project(run_dir.parents[2]).runs() if r["id"] == run_dir.name]
    return rows[0]["exit_code"] if rows else None


def _forcing(tool: str, args: dict[str, Any]) -> Any:
    """A `decide` whose model calls `tool` first, offered or not (as a model may)."""
    original = model_server.decide

    def decide(script: Script, tools: dict[str, Any], n_results: int, text: str) -> Reply:
        if tools and n_results == 0:
            return Reply(tool=(tool, args))
        return original(script, tools, n_results, text)

    return decide


def test_qwen_qa_write_is_declined_and_the_run_is_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "project" / "app.py"
    args = {"file_path": str(target), "content": "broken = True\n"}
    monkeypatch.setattr(model_server, "decide", _forcing("write_file", args))
    script = Script(final=result_block("ok", "looked", verdict="pass"))
    done = run_cli("qwen", tmp_path, script, role="qa")
    assert (done.root / "app.py").read_text() == "def answer():\n    return 42\n"
    assert done.run.outcome is Outcome.PERMISSION_DENIED, done.stdout + done.stderr
    assert "write_file" in (done.run.parsed.error or "")
    assert _exit_code(done.run.run_dir) == 0  # the lie: exit 0, subtype "success"


def test_qwen_pm_edits_its_task_file_but_may_not_run_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"),),
        final=result_block("ok", "specced"),
    )
    done = run_cli("qwen", tmp_path, script, role="pm")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert "## Spec" in done.entry.path.read_text()

    shell = {"command": f"echo ran > {tmp_path}/pm-ran.txt"}
    monkeypatch.setattr(model_server, "decide", _forcing("run_shell_command", shell))
    denied = run_cli("qwen", tmp_path / "again", script, role="pm")
    assert not (tmp_path / "pm-ran.txt").exists()
    assert denied.run.outcome is Outcome.PERMISSION_DENIED, denied.stdout + denied.stderr


@pytest.mark.parametrize(
    ("fail", "outcome"), [("401", Outcome.AUTH_ERROR), ("429-quota", Outcome.RATE_LIMITED)]
)
def test_qwen_api_errors_are_classified(tmp_path: Path, fail: str, outcome: Outcome) -> None:
    done = run_cli("qwen", tmp_path, Script(fail=fail))
    assert done.run.outcome is outcome, done.stdout + done.stderr
    assert len(done.server.requests) == 1  # neither is retried
    if outcome is Outcome.RATE_LIMITED:
        assert done.run.parsed.reset_at is not None  # "it will reset in 2 hours"


def test_qwen_server_error_is_an_agent_error(tmp_path: Path) -> None:
    # qwen prints nothing while it backs off (1.5 s doubling to 30 s): not a stall at 60 s
    done = run_cli("qwen", tmp_path, Script(fail="500"), stall="300s", timeout="400s")
    assert done.run.outcome is Outcome.AGENT_ERROR, done.stdout + done.stderr
    assert "500" in (done.run.parsed.error or "")


def test_qwen_model_flag_reaches_the_server(tmp_path: Path) -> None:
    done = run_cli("qwen", tmp_path, Script(final=result_block()), model="other-model")
    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert {r.body.get("model") for r in done.server.requests if r.tools} == {"other-model"}


def test_qwen_against_a_hanging_server_is_stalled(tmp_path: Path) -> None:
    done = run_cli("qwen", tmp_path, Script(fail="hang"), stall="3s")
    assert done.run.outcome is Outcome.STALLED
