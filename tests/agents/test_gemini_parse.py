"""The gemini backend on hand-made output and command lines (what the recordings cannot show)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, RunContext
from shopfloor.agents.gemini import GeminiBackend
from tests.agents.contexts import run_context

#: Backends write policy/guard files beside the prompt file: a private folder per test run.
_HERE = Path(tempfile.mkdtemp(prefix="shopfloor-parse-"))


def _lines(*events: dict[str, Any]) -> str:
    return "\n".join(json.dumps(e) for e in events) + "\n"


INIT = {"type": "init", "session_id": "s-1", "model": "gemini-2.5-pro"}
STATS = {"input_tokens": 70, "output_tokens": 9, "total_tokens": 79}


def _say(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": text, "delta": True}


def _result(status: str = "success", **extra: Any) -> dict[str, Any]:
    return {"type": "result", "status": status, "stats": STATS, **extra}


def _tool(tool_id: str, name: str, **result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    use = {"type": "tool_use", "tool_name": name, "tool_id": tool_id, "parameters": {}}
    return use, {"type": "tool_result", "tool_id": tool_id, **result}


def _ctx(role: str, prompt: str = "You are the **Coder**", **agent: Any) -> RunContext:
    return run_context("gemini", role, _HERE, prompt, **agent)


def test_streamed_chunks_after_the_last_tool_call_are_the_final_text() -> None:
    use, done = _tool("t1", "write_file", status="success")
    out = _lines(
        INIT, _say("let me "), _say("look"), use, done, _say("fixed "), _say("it"), _result()
    )
    parsed = GeminiBackend().parse(out, "")
    assert (parsed.final_text, parsed.session_id) == ("fixed it", "s-1")
    assert (parsed.tokens_in, parsed.tokens_out, parsed.cost_usd) == (70, 9, None)
    assert parsed.outcome is None and parsed.error is None


def test_turn_limit_reported_as_success_is_an_agent_error() -> None:
    limit = {"type": "error", "severity": "error", "message": "Maximum session turns exceeded"}
    parsed = GeminiBackend().parse(_lines(INIT, _say("working"), limit, _result()), "")
    assert parsed.outcome is Outcome.AGENT_ERROR
    assert parsed.error == "Maximum session turns exceeded"


def test_an_error_it_recovered_from_and_warnings_do_not_fail_the_run() -> None:
    busy = {"type": "error", "severity": "error", "message": "Resource has been exhausted"}
    loop = {"type": "error", "severity": "warning", "message": "slow response"}
    parsed = GeminiBackend().parse(_lines(INIT, busy, _say("done"), loop, _result()), "")
    assert parsed.outcome is None and parsed.final_text == "done"


def test_an_error_result_without_detail_takes_the_error_event() -> None:
    bad = {"type": "error", "severity": "error", "message": "Invalid stream from the model"}
    parsed = GeminiBackend().parse(_lines(INIT, bad, _result("error")), "")
    assert parsed.outcome is Outcome.AGENT_ERROR
    assert parsed.error == "Invalid stream from the model"


def test_a_quota_error_is_rate_limited_until_the_suggested_time() -> None:
    error = {
        "type": "unknown",
        "message": "[API Error: Quota exceeded. Suggested retry after 90s.]",
    }
    before = time.time()
    parsed = GeminiBackend().parse(_lines(INIT, _result("error", error=error)), "")
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at is not None and before + 89 <= parsed.reset_at <= time.time() + 91


def test_a_fatal_authentication_error_type_is_an_auth_error() -> None:
    error = {"type": "FatalAuthenticationError", "message": "Could not sign in"}
    parsed = GeminiBackend().parse(_lines(INIT, _result("error", error=error)), "")
    assert parsed.outcome is Outcome.AUTH_ERROR


def test_a_policy_denial_is_permission_denied_though_it_says_success() -> None:
    message = "Tool execution denied by policy."
    use, denied = _tool(
        "t1", "run_shell_command", status="error",
        error={"type": "policy_violation", "message": message},
    )  # fmt: skip
    parsed = GeminiBackend().parse(_lines(INIT, use, denied, _say("ok"), _result()), "")
    assert parsed.outcome is Outcome.PERMISSION_DENIED
    assert parsed.error == f"gemini was refused 1 tool call(s): run_shell_command: {message}"


def test_ordinary_tool_failures_are_not_denials() -> None:
    use, failed = _tool(
        "t1", "read_file", status="error",
        error={"type": "file_not_found", "message": "File not found: /tmp/x/a.py"},
    )  # fmt: skip
    parsed = GeminiBackend().parse(_lines(INIT, use, failed, _say("ok"), _result()), "")
    assert parsed.outcome is None


@pytest.mark.parametrize(
    ("stderr", "outcome"),
    [
        ("YOLO mode is enabled. All tool calls will be automatically approved.\n"
         "Invalid auth method selected.\n", Outcome.AUTH_ERROR),
        ("When using Gemini API, you must specify the GEMINI_API_KEY environment variable.\n",
         Outcome.AUTH_ERROR),
        ("Error: something broke\n", Outcome.AGENT_ERROR),
        ("", Outcome.AGENT_ERROR),
    ],
)  # fmt: skip
def test_no_result_line_is_judged_by_stderr(stderr: str, outcome: Outcome) -> None:
    parsed = GeminiBackend().parse("", stderr)
    assert parsed.outcome is outcome
    assert parsed.error and "YOLO mode" not in parsed.error


@pytest.mark.parametrize(
    ("role", "mode"),
    [("coder", "yolo"), ("hotfix", "yolo"), ("pm", "default"), ("qa", "default"),
     ("someone", "default")],
)  # fmt: skip
def test_each_role_gets_its_approval_mode_and_trust(role: str, mode: str) -> None:
    argv = GeminiBackend().arguments(_ctx(role), [])
    assert argv[argv.index("--approval-mode") + 1] == mode
    assert "--skip-trust" in argv and "--model" not in argv


def test_prompt_model_and_extra_arguments_are_placed() -> None:
    ctx = _ctx("coder", "- starts like a flag", model="gemini-2.5-flash", args=["--debug"])
    invocation = GeminiBackend().build(ctx)
    assert invocation.stdin == b"- starts like a flag"
    assert invocation.argv == [
        "gemini", "--output-format", "stream-json",
        "--approval-mode", "yolo", "--skip-trust", "--model", "gemini-2.5-flash", "--debug",
    ]  # fmt: skip
    assert invocation.env == {"GEMINI_CLI_NO_RELAUNCH": "1"}
