"""The pi backend on hand-made output and command lines (what the recordings cannot show)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, RunContext
from shopfloor.agents.pi import PiBackend
from tests.agents.contexts import run_context

#: Backends write policy/guard files beside the prompt file: a private folder per test run.
_HERE = Path(tempfile.mkdtemp(prefix="shopfloor-parse-"))


def _assistant(text: str = "", stop: str = "stop", **usage: Any) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": [{"type": "text", "text": text}] if text else [],
        "usage": usage,
        "stopReason": stop,
    }
    return json.dumps({"type": "message_end", "message": message})


def _ctx(role: str, prompt: str = "You are the **Coder**", **agent: Any) -> RunContext:
    return run_context("pi", role, _HERE, prompt, **agent)


def test_usage_and_cost_add_up_over_replies_and_the_last_text_wins() -> None:
    out = "\n".join(
        [
            json.dumps({"type": "session", "id": "s-1"}),
            _assistant("", "toolUse", input=10, cacheRead=5, cacheWrite=1, output=2,
                       cost={"total": 0.5}),
            _assistant("first", "toolUse", input=20, output=3, cost={"total": 0.25}),
            _assistant("final", "stop", input=30, output=4, cost={"total": 0.25}),
        ]
    )  # fmt: skip
    parsed = PiBackend().parse(out, "")
    assert (parsed.session_id, parsed.final_text) == ("s-1", "final")
    assert (parsed.tokens_in, parsed.tokens_out, parsed.cost_usd) == (66, 9, 1.0)
    assert parsed.outcome is None


def test_an_aborted_request_is_an_agent_error() -> None:
    parsed = PiBackend().parse(_assistant("half", "aborted"), "")
    assert parsed.outcome is Outcome.AGENT_ERROR and parsed.error == "request aborted"


def test_a_rate_limit_error_message_carries_the_reset_time() -> None:
    line = json.dumps(
        {
            "type": "message_end",
            "message": {
                "role": "assistant",
                "content": [],
                "stopReason": "error",
                "errorMessage": "429 You exceeded your quota. Please try again in 2m.",
            },
        }
    )
    parsed = PiBackend().parse(line, "")
    assert parsed.outcome is Outcome.RATE_LIMITED and parsed.reset_at is not None


def test_no_output_reads_the_reason_from_stderr() -> None:
    parsed = PiBackend().parse("", "No API key found for anthropic.")
    assert parsed.outcome is Outcome.AUTH_ERROR


@pytest.mark.parametrize(
    ("role", "tools"),
    [
        ("coder", "read,grep,find,ls,edit,write,bash"),
        ("hotfix", "read,grep,find,ls,edit,write,bash"),
        ("pm", "read,grep,find,ls,edit,write"),
        ("qa", "read,grep,find,ls"),
    ],
)
def test_each_role_gets_its_tools(role: str, tools: str) -> None:
    argv = PiBackend().arguments(_ctx(role), [])
    assert argv[argv.index("--tools") + 1] == tools


def test_user_flags_go_before_print_mode_and_the_model_is_passed() -> None:
    argv = PiBackend().arguments(_ctx("coder", model="fake/m"), ["--thinking", "low"])
    assert argv[-3:] == ["--thinking", "low", "-p"]
    assert argv[argv.index("--model") + 1] == "fake/m"


@pytest.mark.parametrize("prompt", ["@notes.md fix it", "--help me"])
def test_a_prompt_pi_would_read_as_a_file_or_a_flag_goes_verbatim_by_stdin(prompt: str) -> None:
    invocation = PiBackend().build(_ctx("coder", prompt))
    assert invocation.stdin == prompt.encode() and invocation.argv[-1] == "-p"
