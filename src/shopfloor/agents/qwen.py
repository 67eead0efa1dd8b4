"""Qwen Code (`@qwen-code/qwen-code`): `qwen --output-format stream-json < PROMPT`.

`stream-json` rather than `json`: both end in the same `result` item, but `json` prints one
array only when the run ends, so a long run looks silent (stalled) until then.

Its lies: a permission it declines (a write in QA, a shell command for the PM) ends the run
with exit 0, `subtype: "success"` and the model's cheerful final text; only
`permission_denials` in the result says so. API errors end in `is_error: true` with the
message in `error.message` ("[API Error: 401 ...]") and, in 0.24, exit 1 — older releases
exited 0, so the result item decides, never the exit code. It retries 429s and 5xx itself
(7 attempts, honouring Retry-After) before giving up; only a quota that "will reset" fails
at once. It reports tokens (`input_tokens` already counts cached ones) but no cost.

Roles map to approval modes: Coder and Hotfix run in `yolo` (no sandbox: writes anywhere
the user may); the PM in `default` with the shell excluded and allow rules for its task file
and result file only (`pm_permissions`); QA in `default`, which in a headless run declines
every edit and command, with the editing tools excluded too. In 0.24
`--exclude-tools` is a deny rule checked at call time — the tools are still offered to the
model, and a call is declined and listed in `permission_denials`. (`plan` mode would hide
them, but it tells the model to pair-plan with a user and call exit_plan_mode.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    CliBackend,
    as_int,
    error_outcome,
    json_lines,
    mark_denials,
    prompt_on_stdin,
)

_QA = [
    "--approval-mode",
    "default",
    "--exclude-tools=write_file,edit,notebook_edit,run_shell_command",
]
# `--exclude-tools` takes an array: in `--flag=a,b` form it cannot swallow the next argument.
_PERMISSIONS = {
    "coder": ["--approval-mode", "yolo"],
    "hotfix": ["--approval-mode", "yolo"],
    "qa": _QA,
}


def pm_permissions(ctx: RunContext) -> list[str]:
    """The PM may read anything and edit exactly two files: its task file and its result file.

    In `default` mode an edit no rule allows would ask a human; headless, it is declined and
    listed in `permission_denials`. `Edit(//PATH)` (two slashes: an absolute path) allows the
    `edit` tool on that path, `WriteFile(//PATH)` the `write_file` tool (the result file is
    new). A path rule is a glob, so the path's other characters are escaped.
    """
    own = [_literal(path) for path in (ctx.task_file, ctx.result_file)]
    rules = [f"{tool}(/{path})" for tool in ("Edit", "WriteFile") for path in own]
    allowed = f"--allowed-tools={','.join(rules)}"
    return ["--approval-mode", "default", "--exclude-tools=run_shell_command", allowed]


def _literal(path: Path) -> str:
    """`path` as a glob matching only itself — but for a comma, which qwen splits every
    `--allowed-tools` value at: a comma becomes `?` (any one character), the one widening."""
    escaped = re.sub(r"([^\w/.,-])", r"\\\1", str(path))
    return escaped.replace(",", "?")


class QwenBackend(CliBackend):
    name = "qwen"
    binary = "qwen"

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        # No positional prompt: with stdin not a terminal it runs headless on what stdin holds.
        argv = ["--output-format", "stream-json"]
        argv += pm_permissions(ctx) if ctx.role == "pm" else _PERMISSIONS.get(ctx.role, _QA)
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        return argv + extra

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)

    def environment(self, ctx: RunContext) -> dict[str, str]:
        return {"QWEN_CODE_SKIP_UPDATE_CHECK_ONCE": "true"}  # no update check per run

    def parse(self, stdout: str, stderr: str) -> Parsed:
        items = list(_items(stdout))
        result = next((i for i in reversed(items) if i.get("type") == "result"), None)
        if result is None:
            parsed = Parsed(final_text=_last_text(items) or stdout[-4000:])
            parsed.session_id = next((_session(i) for i in items if _session(i)), None)
            error_outcome(parsed, _stderr_error(stderr) or "qwen printed no result")
            return parsed
        raw_usage = result.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        parsed = Parsed(
            final_text=str(result.get("result") or ""),
            session_id=_session(result),
            tokens_in=as_int(usage.get("input_tokens")),
            tokens_out=as_int(usage.get("output_tokens")),
        )
        _judge(parsed, result)
        return parsed


def _items(stdout: str) -> Iterator[dict[str, Any]]:
    """The output's items: one JSON array (`--output-format json`) or JSON lines."""
    try:
        whole = json.loads(stdout.strip() or "null")
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, list):
        yield from (item for item in whole if isinstance(item, dict))
    else:
        yield from json_lines(stdout)


def _session(item: dict[str, Any]) -> str | None:
    value = item.get("session_id")
    return value if isinstance(value, str) else None


def _last_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        message = item.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if item.get("type") == "assistant" and isinstance(content, list):
            texts = [c.get("text") for c in content if isinstance(c, dict)]
            return "".join(t for t in texts if isinstance(t, str))
    return ""


def _stderr_error(stderr: str) -> str:
    """The `{"error": {...}}` qwen prints on stderr when it fails, else all of stderr."""
    doc = _trailing_object(stderr)
    error = doc.get("error") if doc else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return stderr.strip()


def _trailing_object(text: str) -> dict[str, Any] | None:
    start = text.rfind("\n{")
    try:
        value = json.loads(text[start + 1 :] if start >= 0 else text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _judge(parsed: Parsed, result: dict[str, Any]) -> None:
    if result.get("is_error"):
        error = result.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        error_outcome(parsed, str(message or result.get("subtype") or parsed.final_text))
        return
    if mark_denials(parsed, result.get("permission_denials"), "qwen"):
        return
    if result.get("subtype") not in (None, "success"):
        parsed.outcome = Outcome.AGENT_ERROR
        parsed.error = f"qwen stopped: {result.get('subtype')}"


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("qwen", QwenBackend)
