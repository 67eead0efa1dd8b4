"""The qwen backend on hand-made output and command lines (what the recordings cannot show).

The result items are cut down from real qwen 0.24.4 runs (tests/agents/test_qwen_live.py).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, RunContext
from shopfloor.agents.qwen import QwenBackend
from tests.agents.contexts import run_context

_INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "permission_mode": "default"}


#: Backends write policy/guard files beside the prompt file: a private folder per test run.
_HERE = Path(tempfile.mkdtemp(prefix="shopfloor-parse-"))


def _result(**fields: Any) -> dict[str, Any]:
    base = {
        "type": "result",
        "subtype": "success",
        "session_id": "s-1",
        "is_error": False,
        "result": "done",
        "usage": {"input_tokens": 2000, "output_tokens": 100, "cache_read_input_tokens": 500},
        "permission_denials": [],
    }
    return {**base, **fields}


def _ctx(role: str, prompt: str = "You are the **Coder**", **agent: Any) -> RunContext:
    return run_context("qwen", role, _HERE, prompt, **agent)


def test_the_json_array_form_parses_like_the_stream() -> None:
    items = [_INIT, _result()]
    as_array = QwenBackend().parse(json.dumps(items), "")
    as_lines = QwenBackend().parse("\n".join(json.dumps(i) for i in items), "")
    assert as_array == as_lines
    # input_tokens already counts the cached ones (Gemini's promptTokenCount)
    assert (as_array.tokens_in, as_array.tokens_out, as_array.session_id) == (2000, 100, "s-1")
    assert as_array.outcome is None and as_array.final_text == "done"


def test_a_declined_write_is_permission_denied_though_it_says_success() -> None:
    denial = {"tool_name": "write_file", "tool_use_id": "call_1", "tool_input": {}}
    parsed = QwenBackend().parse(json.dumps(_result(permission_denials=[denial])), "")
    assert parsed.outcome is Outcome.PERMISSION_DENIED
    assert parsed.error == "qwen was denied 1 tool use(s): write_file"


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("[API Error: 401 Incorrect API key provided: fake.]", Outcome.AUTH_ERROR),
        ("[API Error: 429 Rate limit reached. Please try again in 30s.]", Outcome.RATE_LIMITED),
        ("[API Error: 500 The server had an error processing your request.]", Outcome.AGENT_ERROR),
    ],
)
def test_api_errors_are_read_from_the_result(message: str, outcome: Outcome) -> None:
    doc = _result(subtype="error_during_execution", is_error=True, error={"message": message})
    doc.pop("result")
    parsed = QwenBackend().parse(json.dumps(doc), "")
    assert parsed.outcome is outcome and parsed.error == message
    assert (parsed.reset_at is not None) is (outcome is Outcome.RATE_LIMITED)


def test_a_run_cut_short_before_a_result_reads_the_error_from_stderr() -> None:
    stderr = 'Warning: something\n{\n  "error": {\n    "message": "No API key found"\n  }\n}\n'
    parsed = QwenBackend().parse(json.dumps(_INIT), stderr)
    assert parsed.outcome is Outcome.AUTH_ERROR and parsed.error == "No API key found"
    assert parsed.session_id == "s-1"


def test_a_result_that_is_no_success_is_an_agent_error() -> None:
    parsed = QwenBackend().parse(json.dumps(_result(subtype="error_max_turns")), "")
    assert parsed.outcome is Outcome.AGENT_ERROR and parsed.error == "qwen stopped: error_max_turns"


@pytest.mark.parametrize(
    ("role", "mode", "excluded"),
    [
        ("coder", "yolo", None),
        ("hotfix", "yolo", None),
        ("pm", "default", "--exclude-tools=run_shell_command"),
        ("qa", "default", "--exclude-tools=write_file,edit,notebook_edit,run_shell_command"),
    ],
)
def test_each_role_gets_its_approval_mode(role: str, mode: str, excluded: str | None) -> None:
    argv = QwenBackend().arguments(_ctx(role), [])
    assert argv[argv.index("--approval-mode") + 1] == mode
    assert [a for a in argv if a.startswith("--exclude-tools")] == ([excluded] if excluded else [])


def test_the_prompt_goes_by_stdin_and_user_flags_last() -> None:
    ctx = _ctx("coder", model="m", args=["--max-session-turns", "5"])
    invocation = QwenBackend().build(ctx)
    assert invocation.stdin == b"You are the **Coder**"
    argv = invocation.argv
    assert argv[1:3] == ["--output-format", "stream-json"]
    assert argv[-2:] == ["--max-session-turns", "5"]
    assert argv[argv.index("--model") + 1] == "m"
    assert argv[argv.index("--output-format") + 1] == "stream-json"


def test_a_prompt_yargs_would_read_as_options_goes_verbatim_by_stdin() -> None:
    invocation = QwenBackend().build(_ctx("coder", "--help me"))
    assert invocation.stdin == b"--help me" and "--help" not in invocation.argv
