"""Codex CLI: `codex exec --json [flags] -- - < PROMPT` (JSONL events on stdout).

Its lies, as recorded against the pinned version:
- It exits 0 with a `type: "error"` *item* for mere warnings ("Model metadata for `x` not
  found"), so an error item is not a failure: only `turn.failed` and top-level `error` are.
- A command the sandbox denies ("Read-only file system") does not fail the run: it exits 0
  and the model may say "done". The denied command shows in the --json stream as a `failed`
  `command_execution` only sometimes (recorded both ways with the same version, even as the
  first command of a run), and a failing command is normal anyway (tests), so the parser does
  not judge by it: a denied write shows reliably only in the working tree.
- An HTTP 500 is reported as "We're currently experiencing high demand", which reads like
  overload; it stays an agent error. API errors do exit 1; a missing key variable says
  "Missing environment variable". There is no cost field, only tokens (`turn.completed.usage`).
- A 429 loses its retry time in the --json stream ("exceeded retry limit, last status: 429").
  Codex honours `retry-after` itself while it retries (silently, after a top-level `error`
  event "Reconnecting... 1/4 (...)" that is not a failure: the turn may still complete). So it
  runs with RUST_LOG raising one log target to debug, which puts each HTTP response's status
  and headers on stderr: the last 429's `retry-after` gives the reset time, also for a run
  stopped (stall, timeout) while Codex waits to retry. Those log lines never become an error
  message (response headers are nobody's business in a tracker or a chat).

Roles map to Codex's own sandbox (bubblewrap/seccomp on Linux; it works here even as root,
as `tests/agents/test_codex_live.py` proves), with approvals off so it never waits on a human:
- coder / hotfix: `workspace-write` rooted at the working directory, plus the run folder so
  the result file can be written (a coder's worktree does not contain it).
- pm: `workspace-write` rooted at the task file's lane folder plus the run folder — Codex
  reads and searches only through its shell, so the PM keeps the shell, but its writes are
  confined to the task folder instead of the whole repository. Not to the task file alone: a
  writable root must be a folder (given a file, bubblewrap fails every command).
- qa: `read-only`: commands (tests, grep) run but can write nothing, not even /tmp; the
  verdict comes back in the final message's fenced JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    EDITING_ROLES,
    CliBackend,
    add,
    as_int,
    error_outcome,
    json_lines,
    prompt_on_stdin,
    retry_after_time,
)

if TYPE_CHECKING:
    pass

#: The provider's API key variable (its `env_key`) is unset: an auth problem, not the task's.
_MISSING_KEY = re.compile(r"Missing environment variable: `\w+`")
#: Codex's own usage-limit wording (the shared reset_time reads "3 days" as 3 seconds).
_AGAIN_IN = re.compile(r"try again in ((?:\d+\s*(?:days?|hours?|minutes?|seconds?)(?:\s|,|and)*)+)")
_SPAN_PART = re.compile(r"(\d+)\s*(days?|hours?|minutes?|seconds?)")
_SPAN_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_AGAIN_AT = re.compile(
    r"try again at (?:([A-Z][a-z]{2,8}) (\d{1,2})(?:st|nd|rd|th)?, (\d{4}) )?"
    r"(\d{1,2}):(\d{2})\s*([AP]M)",
    re.IGNORECASE,
)
#: The log target that records each HTTP response (status and headers) at debug level.
_HTTP_LOG_TARGET = "codex_http_client::client=debug"
#: One such record (spans may come between level and target): when it came, its status and
#: its headers (a Rust map, printed like JSON).
_HTTP_RESPONSE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\dT[\d:.]+Z)\s+DEBUG\b.*?codex_http_client::client: Request completed "
    r".*?\bstatus=(?P<status>\d{3})\b.*?\bheaders=(?P<headers>\{.*\})",
    re.MULTILINE,
)
_HEADER = re.compile(r'"([\w-]+)": "((?:[^"\\]|\\.)*)"')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: A retry in progress, not a failure: Codex goes on (and says so again if it gives up).
_RECONNECTING = "Reconnecting..."
#: Marks `Parsed.error` when the run was stopped while Codex was waiting to retry a 429.
_WAITING = "codex was waiting to retry: "
#: Always: never stop to ask a human (there is none), never check for updates mid-pipeline.
_ALWAYS = ["-c", 'approval_policy="never"', "-c", "check_for_update_on_startup=false"]
#: workspace-write also opens /tmp and $TMPDIR; the PM writes one file, so it gets neither.
_NO_TMP = [
    "-c",
    "sandbox_workspace_write.exclude_slash_tmp=true",
    "-c",
    "sandbox_workspace_write.exclude_tmpdir_env_var=true",
]


class CodexBackend(CliBackend):
    name = "codex"
    binary = "codex"
    waiting_mark = _WAITING

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        argv = ["exec", "--json", "--skip-git-repo-check", *_ALWAYS, *_sandbox(ctx)]
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        # `-`: read the prompt from stdin (after `--`, so it is never taken for a flag).
        return [*argv, *extra, "--", "-"]

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)

    def environment(self, ctx: RunContext) -> dict[str, str]:
        # Codex's own default filter is "error"; a RUST_LOG in the agent's env is kept.
        base = ctx.agent.env.get("RUST_LOG") or "error"
        return {"RUST_LOG": f"{base},{_HTTP_LOG_TARGET}"}

    def parse(self, stdout: str, stderr: str) -> Parsed:
        events = list(json_lines(stdout))
        responses, stderr = http_responses(stderr)
        parsed = Parsed()
        failures: list[str] = []
        for event in events:
            _read_event(event, parsed, failures)
        if failures:  # `error` then `turn.failed` usually repeat one message
            error_outcome(parsed, " | ".join(dict.fromkeys(failures)))
            if _MISSING_KEY.search(parsed.error or ""):
                parsed.outcome = Outcome.AUTH_ERROR
            elif parsed.outcome is Outcome.RATE_LIMITED:
                reset = usage_limit_reset(parsed.error or "") or _retry_at(responses)
                parsed.reset_at = reset or parsed.reset_at
        elif not any(e.get("type") == "turn.completed" for e in events):
            if responses and responses[-1][1] == 429:  # stopped while waiting to retry
                parsed.outcome, parsed.reset_at = Outcome.RATE_LIMITED, _retry_at(responses)
                parsed.error = f"{_WAITING}HTTP 429 (rate limited)"
            else:  # usage errors (exit 2) and crashes print no events: stderr says why
                error_outcome(parsed, stderr.strip()[-2000:] or "codex printed no turn.completed")
        return parsed


def http_responses(stderr: str) -> tuple[list[tuple[float, int, dict[str, str]]], str]:
    """The HTTP responses Codex logged — (when, status, headers) — and stderr without them."""
    responses = []
    for match in _HTTP_RESPONSE.finditer(_ANSI.sub("", stderr)):
        try:
            at = datetime.fromisoformat(match["at"]).timestamp()
        except ValueError:
            continue
        headers = {k.lower(): v for k, v in _HEADER.findall(match["headers"])}
        responses.append((at, int(match["status"]), headers))
    rest = [line for line in stderr.splitlines() if "codex_http_client::client:" not in line]
    return responses, "\n".join(rest)


def _retry_at(responses: list[tuple[float, int, dict[str, str]]]) -> float | None:
    """When the last 429 Codex received said to come back (its retry-after)."""
    last = next((r for r in reversed(responses) if r[1] == 429), None)
    return retry_after_time(last[2], received=last[0]) if last else None


def _sandbox(ctx: RunContext) -> list[str]:
    run_dir = str(ctx.result_file.parent)
    if ctx.role in EDITING_ROLES:
        return ["-s", "workspace-write", "-C", str(ctx.workdir), "--add-dir", run_dir]
    if ctx.role == "pm":
        lane = str(ctx.task_file.parent)
        return ["-s", "workspace-write", "-C", lane, "--add-dir", run_dir, *_NO_TMP]
    return ["-s", "read-only", "-C", str(ctx.workdir)]


def _read_event(event: dict[str, Any], parsed: Parsed, failures: list[str]) -> None:
    kind = event.get("type")
    if kind == "thread.started":
        parsed.session_id = str(event.get("thread_id") or "") or None
    elif kind == "item.completed":
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "agent_message":
            parsed.final_text = str(item.get("text") or "")  # the last one is the answer
    elif kind == "turn.completed":
        usage = event.get("usage")
        if isinstance(usage, dict):  # cached input is part of input_tokens already
            parsed.tokens_in = add(parsed.tokens_in, as_int(usage.get("input_tokens")))
            parsed.tokens_out = add(parsed.tokens_out, as_int(usage.get("output_tokens")))
    elif kind == "turn.failed":
        failures.append(_message(event.get("error")) or "codex turn failed")
    elif kind == "error" and not _message(event).startswith(_RECONNECTING):
        failures.append(_message(event) or "codex reported an error")


def usage_limit_reset(text: str, now: datetime | None = None) -> float | None:
    """When Codex's subscription limit lifts: "try again in 3 days 6 hours 57 minutes" or
    "try again at 3:28 PM" / "at Aug 8th, 2026 12:30 PM" (local time), as epoch seconds."""
    now = now or datetime.now().astimezone()
    span = _AGAIN_IN.search(text)
    if span:
        parts = _SPAN_PART.findall(span.group(1))
        return now.timestamp() + sum(float(n) * _SPAN_UNIT[u[0].lower()] for n, u in parts)
    at = _AGAIN_AT.search(text)
    if not at:
        return None
    month, day, year, hour, minute, half = at.groups()
    hour_24 = int(hour) % 12 + (12 if half.upper() == "PM" else 0)
    when = now.replace(hour=hour_24, minute=int(minute), second=0, microsecond=0)
    if month:
        month_no = datetime.strptime(month[:3], "%b").month
        return when.replace(year=int(year), month=month_no, day=int(day)).timestamp()
    return (when if when > now else when + timedelta(days=1)).timestamp()


def _message(value: Any) -> str:
    return str(value.get("message") or "") if isinstance(value, dict) else ""


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("codex", CodexBackend)
