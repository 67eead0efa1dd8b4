"""Tier (a): Codex output the scripted server cannot provoke, and the command line per role."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, RunContext
from shopfloor.agents.codex import CodexBackend, usage_limit_reset
from tests.agents.contexts import run_context

NOW = datetime(2026, 8, 8, 10, 0, tzinfo=timezone(timedelta(hours=2)))


def stream(*events: dict[str, Any]) -> str:
    return "\n".join(json.dumps(e) for e in events) + "\n"


def failed(message: str) -> str:
    return stream(
        {"type": "thread.started", "thread_id": "t-1"},
        {"type": "turn.started"},
        {"type": "error", "message": message},
        {"type": "turn.failed", "error": {"message": message}},
    )


def test_a_usage_limit_is_rate_limited_with_its_reset_time() -> None:
    text = (
        "You've hit your usage limit. To get more access now, send a request to your admin "
        "or try again in 3 days 6 hours 57 minutes."
    )
    parsed = CodexBackend().parse(failed(text), "")
    assert parsed.outcome is Outcome.RATE_LIMITED and parsed.error == text
    assert parsed.reset_at is not None
    expected = datetime.now().timestamp() + 3 * 86400 + 6 * 3600 + 57 * 60
    assert abs(parsed.reset_at - expected) < 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("or try again in 45 minutes.", NOW + timedelta(minutes=45)),
        ("or try again at 3:28 PM.", NOW.replace(hour=15, minute=28)),
        ("or try again at 9:05 AM.", NOW.replace(hour=9, minute=5) + timedelta(days=1)),
        ("or try again at Aug 9th, 2026 12:30 PM.", NOW.replace(day=9, hour=12, minute=30)),
        ("Try again later.", None),
    ],
)
def test_usage_limit_reset_reads_codex_wording(text: str, expected: datetime | None) -> None:
    got = usage_limit_reset(f"You've hit your usage limit. {text}", NOW)
    assert got == (expected.timestamp() if expected else None)


def test_a_missing_api_key_variable_is_an_auth_error() -> None:
    parsed = CodexBackend().parse(failed("Missing environment variable: `OPENAI_API_KEY`."), "")
    assert parsed.outcome is Outcome.AUTH_ERROR


def test_warning_items_do_not_fail_a_run_and_usage_adds_up_over_turns() -> None:
    out = stream(
        {"type": "thread.started", "thread_id": "t-9"},
        {"type": "item.completed", "item": {"type": "error", "message": "Model metadata..."}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "first"}},
        {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 8}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "last"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 7}},
    )
    parsed = CodexBackend().parse(out, "WARNING: noise\n")
    assert parsed.outcome is None and parsed.error is None
    assert (parsed.final_text, parsed.session_id) == ("last", "t-9")
    assert (parsed.tokens_in, parsed.tokens_out, parsed.cost_usd) == (15, 7, None)


def test_a_usage_error_with_no_events_reports_stderr() -> None:
    stderr = "error: unexpected argument '--bogus' found\n\nUsage: codex exec [OPTIONS] [PROMPT]\n"
    parsed = CodexBackend().parse("", stderr)
    assert parsed.outcome is Outcome.AGENT_ERROR
    assert parsed.error and "--bogus" in parsed.error


def _ctx(role: str, tmp: Path, **agent: Any) -> RunContext:
    return run_context("codex", role, tmp, "-starts with a dash", workdir=tmp / "wt", **agent)


def _sandbox_of(argv: list[str]) -> tuple[str, str, str | None]:
    added = argv[argv.index("--add-dir") + 1] if "--add-dir" in argv else None
    return argv[argv.index("-s") + 1], argv[argv.index("-C") + 1], added


def test_each_role_gets_its_sandbox(tmp_path: Path) -> None:
    run = str(tmp_path / ".shopfloor" / "runs" / "R-1")
    wt, lane = str(tmp_path / "wt"), str(tmp_path / "tasks" / "active")
    expected = {
        "coder": ("workspace-write", wt, run),
        "hotfix": ("workspace-write", wt, run),
        "pm": ("workspace-write", lane, run),
        "qa": ("read-only", wt, None),
    }
    for role, sandbox in expected.items():
        argv = CodexBackend().build(_ctx(role, tmp_path)).argv
        assert _sandbox_of(argv) == sandbox, role
    pm = CodexBackend().build(_ctx("pm", tmp_path)).argv
    assert "sandbox_workspace_write.exclude_slash_tmp=true" in pm


def test_model_and_user_args_come_before_the_stdin_prompt(tmp_path: Path) -> None:
    ctx = _ctx("coder", tmp_path, model="gpt-5.5", args=["-c", "x=1"], command="/opt/codex")
    invocation = CodexBackend().build(ctx)
    argv = invocation.argv
    assert argv[:4] == ["/opt/codex", "exec", "--json", "--skip-git-repo-check"]
    assert argv[argv.index("--model") + 1] == "gpt-5.5"
    assert argv[-4:] == ["-c", "x=1", "--", "-"]  # `-`: the prompt is read from stdin
    assert invocation.stdin == b"-starts with a dash"


#: What Codex logs for one HTTP response with RUST_LOG=codex_http_client::client=debug.
def http_log(at: str, status: str, headers: dict[str, str]) -> str:
    shown = ", ".join(f'"{k}": "{v}"' for k, v in headers.items())
    return (
        f"{at} DEBUG session_loop{{thread_id=t-1}}:turn{{model=m}}: codex_http_client::client: "
        f"Request completed method=POST url=https://api.example/v1/responses status={status} "
        f"headers={{{shown}}} version=HTTP/1.1"
    )


LIMITED = stream(
    {"type": "thread.started", "thread_id": "t-1"},
    {"type": "turn.started"},
    {"type": "error", "message": "exceeded retry limit, last status: 429 Too Many Requests"},
    {"type": "turn.failed", "error": {"message": "exceeded retry limit, last status: 429"}},
)


def test_a_429_takes_its_reset_from_the_logged_retry_after() -> None:
    stderr = "\n".join(
        [
            "WARNING: proceeding, even though we could not create PATH aliases",
            http_log("2026-12-03T15:25:48.467754Z", "200 OK", {"x-request-id": "a"}),
            http_log("2026-12-03T15:26:00Z", "429 Too Many Requests", {"retry-after": "120"}),
        ]
    )
    parsed = CodexBackend().parse(LIMITED, stderr)
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at == datetime(2026, 12, 3, 15, 28, tzinfo=UTC).timestamp()


def test_a_retry_after_date_and_no_retry_after_at_all() -> None:
    date = {"retry-after": "Thu, 03 Dec 2026 16:00:00 GMT"}
    parsed = CodexBackend().parse(LIMITED, http_log("2026-12-03T15:26:00Z", "429 Too", date))
    assert parsed.reset_at == datetime(2026, 12, 3, 16, 0, tzinfo=UTC).timestamp()
    bare = CodexBackend().parse(LIMITED, http_log("2026-12-03T15:26:00Z", "429 Too", {}))
    assert bare.outcome is Outcome.RATE_LIMITED and bare.reset_at is None  # the back-off decides


def test_a_reconnect_that_then_completes_is_ok() -> None:
    """Codex retried a 429 on its own and the turn went on: not a failure."""
    out = stream(
        {"type": "thread.started", "thread_id": "t-1"},
        {"type": "turn.started"},
        {"type": "error", "message": "Reconnecting... 1/3 (last status: 429 Too Many Requests)"},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "done"}},
        {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 2}},
    )
    parsed = CodexBackend().parse(out, "")
    assert parsed.outcome is None and parsed.error is None and parsed.final_text == "done"


def test_stopped_while_waiting_to_retry_a_429_is_rate_limited_not_stalled() -> None:
    from shopfloor.runner import Ending, RunResult

    out = stream(
        {"type": "thread.started", "thread_id": "t-1"},
        {"type": "turn.started"},
        {"type": "error", "message": "Reconnecting... 1/4 (last status: 429 Too Many Requests)"},
    )
    stderr = http_log("2026-12-03T15:26:00Z", "429 Too Many Requests", {"retry-after": "600"})
    parsed = CodexBackend().parse(out, stderr)
    stalled = RunResult(Ending.STALLED, None, 15, 60.0, Path("o"), Path("e"), 0, 0, False, None)
    assert CodexBackend().classify(stalled, parsed) is Outcome.RATE_LIMITED
    assert parsed.reset_at == datetime(2026, 12, 3, 15, 36, tzinfo=UTC).timestamp()
    assert "x-request-id" not in (parsed.error or "")


def test_logged_response_headers_never_reach_an_error_message() -> None:
    stderr = http_log("2026-12-03T15:26:00Z", "200 OK", {"openai-organization": "org-secret"})
    parsed = CodexBackend().parse("", stderr + "\nerror: unexpected argument '--bogus'\n")
    assert parsed.error is not None and "--bogus" in parsed.error
    assert "org-secret" not in parsed.error


def test_debug_logging_of_http_responses_keeps_the_users_rust_log(tmp_path: Path) -> None:
    env = CodexBackend().build(_ctx("coder", tmp_path)).env
    assert env["RUST_LOG"] == "error,codex_http_client::client=debug"
    mine = _ctx("coder", tmp_path, env={"RUST_LOG": "codex_core=info"})
    assert CodexBackend().build(mine).env["RUST_LOG"] == "codex_core=info," + (
        "codex_http_client::client=debug"
    )
