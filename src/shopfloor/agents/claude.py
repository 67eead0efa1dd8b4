"""Claude Code: `claude -p --output-format stream-json --verbose < PROMPT`.

Its lies (AGENT-CLIS.md): it exits 1 on API errors while printing `subtype: "success"` (the
truth is `is_error` and `api_error_status`), and without a permission mode it silently denies
writes and exits 0 with "done" — so `permission_denials` is read on every run. Roles map to
permission modes: Coder and Hotfix may edit and run commands; the PM may edit its task file and
its result file and nothing else, and run no commands (`pm_permissions`); QA may only read.

A 429's `retry-after` is not in its output. Up to 60 s it waits that long itself and retries
(CLAUDE_CODE_MAX_RETRIES times), printing a `system`/`api_retry` event with `retry_delay_ms`
before each wait; above 60 s it gives up at once and says nothing of the time (not on stderr,
not in `--debug-file`). So the last `api_retry` delay is the reset time when it then fails,
or is stopped (stall, timeout) while waiting; otherwise the pause is Shopfloor's back-off.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    HEADLESS_NOTE,
    CliBackend,
    add,
    as_int,
    error_outcome,
    json_lines,
    last_json_object,
    mark_denials,
    prompt_on_stdin,
    reset_time,
)

if TYPE_CHECKING:
    pass

#: Marks `Parsed.error` when the run was stopped while claude was waiting to retry a 429.
_WAITING = "claude was waiting to retry: "
_READ_TOOLS = "Read,Glob,Grep,LS"
_WRITE_TOOLS = "Edit,MultiEdit,Write,NotebookEdit"
_PERMISSIONS = {
    "coder": ["--permission-mode", "acceptEdits", "--allowedTools", f"Bash,{_READ_TOOLS}"],
    "hotfix": ["--permission-mode", "acceptEdits", "--allowedTools", f"Bash,{_READ_TOOLS}"],
    "qa": ["--permission-mode", "default", "--disallowedTools", f"Bash,{_WRITE_TOOLS}"],
}


def pm_permissions(ctx: RunContext) -> list[str]:
    """The PM may read anything and edit exactly two files: its task file and its result file.

    In `default` mode a tool use no rule allows would ask a human; headless, it is refused and
    listed in `permission_denials`. `Edit(//PATH)` (two slashes: an absolute path) covers every
    file-editing tool (Edit, MultiEdit, Write) for that one path."""
    own = [f"Edit(/{_literal(path)})" for path in (ctx.task_file, ctx.result_file)]
    settings = json.dumps({"permissions": {"allow": own}})
    allowed = ["--allowedTools", _READ_TOOLS, "--settings", settings]
    return ["--permission-mode", "default", *allowed, "--disallowedTools", "Bash"]


def _literal(path: Path) -> str:
    """A path as a gitignore-style pattern matching only itself (its glob characters escaped)."""
    return re.sub(r"([\\*?\[\]!#])", r"\\\1", str(path))


class ClaudeBackend(CliBackend):
    name = "claude"
    binary = "claude"
    waiting_mark = _WAITING

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        # stream-json (it needs --verbose): `json` prints nothing until the end, so a long run
        # would look stalled; the last line is the same `result` object.
        # The prompt goes by stdin, which `-p` reads when no prompt argument is given.
        argv = ["-p", "--output-format", "stream-json", "--verbose"]
        argv += ["--append-system-prompt", HEADLESS_NOTE]
        argv += (
            pm_permissions(ctx)
            if ctx.role == "pm"
            else _PERMISSIONS.get(ctx.role, _PERMISSIONS["qa"])
        )
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        if ctx.budget_usd is not None:
            argv += ["--max-budget-usd", f"{max(ctx.budget_usd, 0.01):.2f}"]
        return argv + extra

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)

    def environment(self, ctx: RunContext) -> dict[str, str]:
        return {"DISABLE_AUTOUPDATER": "1"}  # never update itself in the middle of a pipeline

    def parse(self, stdout: str, stderr: str) -> Parsed:
        doc = last_json_object(stdout)
        wait = retry_wait(stdout)
        if doc is None or doc.get("type") != "result":
            parsed = Parsed(final_text=stdout[-4000:])
            if wait is not None:  # stopped while it slept before retrying a 429
                parsed.outcome, parsed.reset_at = Outcome.RATE_LIMITED, time.time() + wait
                parsed.error = f"{_WAITING}HTTP 429 (rate limited)"
                return parsed
            error_outcome(parsed, stderr.strip() or stdout.strip() or "claude printed no result")
            return parsed
        raw_usage = doc.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        tokens_in = as_int(usage.get("input_tokens"))
        for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            tokens_in = add(tokens_in, as_int(usage.get(key)))
        cost = doc.get("total_cost_usd")
        parsed = Parsed(
            final_text=str(doc.get("result") or ""),
            session_id=doc.get("session_id"),
            tokens_in=tokens_in,
            tokens_out=as_int(usage.get("output_tokens")),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        )
        _judge(parsed, doc)
        if parsed.outcome is Outcome.RATE_LIMITED and parsed.reset_at is None and wait:
            parsed.reset_at = time.time() + wait  # the last wait the server asked for
        return parsed


def retry_wait(stdout: str) -> float | None:
    """Seconds claude last said it would wait before retrying a 429 (`api_retry` events)."""
    wait = None
    retries = "\n".join(line for line in stdout.splitlines() if "api_retry" in line)
    for event in json_lines(retries):
        delay = event.get("retry_delay_ms")
        if event.get("subtype") == "api_retry" and event.get("error_status") == 429:
            wait = float(delay) / 1000.0 if isinstance(delay, int | float) else wait
    return wait


def _judge(parsed: Parsed, doc: dict[str, Any]) -> None:
    text = parsed.final_text
    status = doc.get("api_error_status")
    subtype = str(doc.get("subtype") or "success")
    if "budget" in subtype:  # --max-budget-usd: it stopped itself at the task's limit
        parsed.outcome = Outcome.OVER_BUDGET
        parsed.error = f"claude stopped: {subtype}"
        return
    if doc.get("is_error"):
        error_outcome(parsed, f"{status or ''} {text}")
        if status in (401, 403):
            parsed.outcome = Outcome.AUTH_ERROR
        elif status == 429:
            parsed.outcome, parsed.reset_at = Outcome.RATE_LIMITED, reset_time(text)
        return
    if mark_denials(parsed, doc.get("permission_denials"), "claude"):
        return
    if subtype != "success":
        parsed.outcome = Outcome.AGENT_ERROR
        parsed.error = f"claude stopped: {subtype}"


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("claude", ClaudeBackend)
