"""The opencode backend on hand-made output and command lines (what the recordings cannot show).

The events are cut down from real OpenCode 1.18.33 runs (tests/agents/recorded/opencode/).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, Parsed, RunContext
from shopfloor.agents.opencode import OpencodeBackend, permissions
from shopfloor.runner import Ending, RunResult
from tests.agents.contexts import run_context

T0 = 1796069808000  # ms, as in the events' "timestamp"


def stream(*events: dict[str, Any]) -> str:
    return "\n".join(json.dumps({"sessionID": "ses_1", **e}) for e in events) + "\n"


def text(message: str, body: str, at: int = T0) -> dict[str, Any]:
    return {"type": "text", "timestamp": at, "part": {"messageID": message, "text": body}}


def step(at: int = T0, **tokens: Any) -> dict[str, Any]:
    usage = {"input": 1000, "output": 50, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    return {
        "type": "step_finish",
        "timestamp": at,
        "part": {"reason": "stop", "tokens": {**usage, **tokens}, "cost": 0.01},
    }


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> str:
    data = {"message": message, "statusCode": status, "responseHeaders": headers or {}}
    return stream({"type": "error", "timestamp": T0, "error": {"name": "APIError", "data": data}})


def log(at_ms: int, error: str) -> str:
    when = datetime.fromtimestamp(at_ms / 1000, UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"  # as OpenCode logs
    return (
        f'timestamp={stamp} level=ERROR run=ab12 message="stream error" providerID=p '
        f'modelID=m small=false agent=build mode=primary error.error="{error}"\n'
    )


def judged(ending: Ending, parsed: Parsed, tmp: Path) -> Outcome:
    out = tmp / "out"
    out.write_text("")
    result = RunResult(ending, None, None, 30.0, out, out, 0, 0, False, "stalled: no output")
    return OpencodeBackend().classify(result, parsed)


def test_the_final_text_is_the_last_message_and_usage_adds_up_over_steps() -> None:
    out = stream(
        text("msg_1", "looking"),
        step(cache={"read": 300, "write": 20}),
        text("msg_2", "done\n\n"),
        text("msg_2", '```json\n{"outcome": "ok"}\n```\n'),
        step(output=40, reasoning=10),
    )
    parsed = OpencodeBackend().parse(out, "")
    assert parsed.outcome is None and parsed.error is None
    assert parsed.final_text == 'done\n\n```json\n{"outcome": "ok"}\n```\n'
    assert (parsed.tokens_in, parsed.tokens_out) == (2320, 100)
    assert parsed.cost_usd == pytest.approx(0.02)
    assert parsed.session_id == "ses_1"


def test_a_429_takes_its_reset_time_from_retry_after_seconds() -> None:
    parsed = OpencodeBackend().parse(api_error(429, "Too many", {"retry-after": "120"}), "")
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at == pytest.approx(time.time() + 120, abs=5)


def test_a_429_takes_its_reset_time_from_a_retry_after_date() -> None:
    when = datetime.fromtimestamp(int(time.time()) + 3600, UTC)
    headers = {"retry-after": format_datetime(when, usegmt=True)}
    parsed = OpencodeBackend().parse(api_error(429, "Slow down", headers), "")
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at == pytest.approx(when.timestamp(), abs=1)


@pytest.mark.parametrize(
    ("status", "name", "outcome"),
    [
        (401, "APIError", Outcome.AUTH_ERROR),
        (403, "APIError", Outcome.AUTH_ERROR),
        (None, "ProviderAuthError", Outcome.AUTH_ERROR),
        (500, "APIError", Outcome.AGENT_ERROR),
        (400, "APIError", Outcome.AGENT_ERROR),
    ],
)
def test_error_events_are_judged_by_status_and_name(
    status: int | None, name: str, outcome: Outcome
) -> None:
    error = {"name": name, "data": {"message": "it failed", "statusCode": status}}
    parsed = OpencodeBackend().parse(stream({"type": "error", "error": error}), "")
    assert parsed.outcome is outcome and parsed.error and "it failed" in parsed.error


def test_an_unexplained_error_event_takes_its_cause_from_the_logs() -> None:
    error = {"name": "UnknownError", "data": {"message": "Unexpected server error.", "ref": "e_9"}}
    logs = 'level=ERROR message=failed ref=e_9 error="ProviderModelNotFoundError: nope/x."\n'
    parsed = OpencodeBackend().parse(stream({"type": "error", "error": error}), logs)
    assert parsed.outcome is Outcome.AGENT_ERROR
    assert parsed.error == "UnknownError ProviderModelNotFoundError: nope/x."


def test_no_events_at_all_is_an_agent_error_with_stderr() -> None:
    parsed = OpencodeBackend().parse("", "Error: unknown option --bogus\n")
    assert parsed.outcome is Outcome.AGENT_ERROR and parsed.error
    assert "--bogus" in parsed.error


def test_a_run_stopped_while_waiting_to_retry_a_rate_limit_is_rate_limited(
    tmp_path: Path,
) -> None:
    out = stream(text("msg_1", "working"), step())
    logs = log(T0 + 5000, "AI_APICallError: Rate limit reached. Please try again in 60s.")
    parsed = OpencodeBackend().parse(out, logs)
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at == pytest.approx((T0 + 5000) / 1000 + 60)  # from the failed call
    assert judged(Ending.STALLED, parsed, tmp_path) is Outcome.RATE_LIMITED
    assert judged(Ending.TIMED_OUT, parsed, tmp_path) is Outcome.RATE_LIMITED


def test_a_model_call_that_failed_before_later_events_does_not_explain_a_stall(
    tmp_path: Path,
) -> None:
    logs = log(T0, "AI_APICallError: Rate limit reached.")
    out = stream(text("msg_1", "working", at=T0 + 9000), step(at=T0 + 9000))
    parsed = OpencodeBackend().parse(out, logs)
    assert parsed.outcome is None
    assert judged(Ending.STALLED, parsed, tmp_path) is Outcome.STALLED


def test_a_refused_tool_call_is_permission_denied_though_the_run_went_on() -> None:
    refused = {
        "type": "tool_use",
        "part": {
            "tool": "write",
            "state": {
                "status": "error",
                "error": "The user has specified a rule which prevents you from using this ...",
            },
        },
    }
    failed = {"type": "tool_use", "part": {"tool": "read", "state": {"status": "error"}}}
    parsed = OpencodeBackend().parse(stream(failed, refused, text("m", "ok"), step()), "")
    assert parsed.outcome is Outcome.PERMISSION_DENIED
    assert parsed.error == "opencode was denied 1 tool use(s): write"


def _ctx(role: str, tmp: Path, **agent: Any) -> RunContext:
    odd = '-starts with a dash and has "quotes"'
    return run_context("opencode", role, tmp / "repo", odd, **agent)


def test_the_prompt_goes_by_stdin_and_user_args_and_model_reach_the_command(
    tmp_path: Path,
) -> None:
    ctx = _ctx("coder", tmp_path, model="prov/model-1", args=["--variant", "high"])
    invocation = OpencodeBackend().build(ctx)
    assert invocation.stdin == ctx.prompt.encode()
    assert ctx.prompt not in invocation.argv
    argv = invocation.argv
    assert argv[:4] == ["opencode", "run", "--format", "json"] and "--pure" in argv
    assert argv[argv.index("--dir") + 1] == str(tmp_path / "repo")
    assert argv[argv.index("--model") + 1] == "prov/model-1"
    assert argv[-2:] == ["--variant", "high"]


@pytest.mark.parametrize("role", ["coder", "hotfix"])
def test_editing_roles_may_edit_and_run_commands(tmp_path: Path, role: str) -> None:
    rules = permissions(_ctx(role, tmp_path))
    assert rules["edit"] == "allow" and rules["bash"] == "allow"
    run, lane = tmp_path / "repo/.shopfloor/runs/R-1", tmp_path / "repo/tasks/active"
    assert rules["external_directory"] == {f"{lane}/*": "allow", f"{run}/*": "allow"}


def test_qa_may_neither_edit_nor_run_commands(tmp_path: Path) -> None:
    rules = permissions(_ctx("qa", tmp_path))
    assert rules["edit"] == "deny" and rules["bash"] == "deny"  # strings: no user rule survives


def test_the_pm_may_edit_only_its_task_and_result_files_relative_to_the_git_top(
    tmp_path: Path,
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    ctx = _ctx("pm", tmp_path)
    ctx = replace(ctx, workdir=tmp_path / "repo" / "sub")
    rules = permissions(ctx)
    assert rules["bash"] == "deny"
    assert rules["edit"] == {
        "*": "deny",
        "tasks/active/T-1.md": "allow",
        ".shopfloor/runs/R-1/result.json": "allow",
    }


def test_the_environment_carries_the_role_rules_as_json(tmp_path: Path) -> None:
    env = OpencodeBackend().environment(_ctx("qa", tmp_path))
    assert json.loads(env["OPENCODE_PERMISSION"])["edit"] == "deny"
    assert env["OPENCODE_DISABLE_AUTOUPDATE"] == "1"
