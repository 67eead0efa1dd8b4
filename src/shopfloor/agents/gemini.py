"""Gemini CLI: `gemini --output-format stream-json --approval-mode MODE < PROMPT`.

Its lies (measured on 0.61, AGENT-CLIS.md):
- the exit code is the HTTP status mod 256 (401 -> 145, 429 -> 173, 500 -> 244), 41 when no
  auth type or API key is set (then stdout is empty and the reason is only on stderr);
- it exits 0 with `result.status: "success"` when a tool call was refused (a path outside the
  workspace, a policy denial) and also after an `error` event such as "Maximum session turns
  exceeded" — so the tool results and error events are read on every run;
- `--approval-mode` other than `default` silently falls back to `default` in a folder it does
  not trust, so `--skip-trust` always goes with it.

stream-json rather than json: it prints each tool call as it happens, which keeps Shopfloor's
stall watchdog fed on long runs (json prints nothing until the end) and leaves a partial
record when a run is killed. Roles map to approval modes; in headless mode every tool that
would ask for confirmation is not even offered to the model, which is what makes them safe:
Coder and Hotfix get `yolo`; the PM gets `default` plus a policy file allowing write_file and
replace on its task file and result file only (`write_pm_policy`); QA gets `default`
(read-only tools only: no write_file, replace or run_shell_command). No cost is reported.
Without a configured model no `-m` is passed and the CLI picks its own (GEMINI_MODEL, settings
`model.name`, else its "auto" router).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    CliBackend,
    as_int,
    error_outcome,
    json_lines,
    prompt_on_stdin,
    write_run_file,
)

_APPROVAL = {"coder": "yolo", "hotfix": "yolo", "pm": "default", "qa": "default"}
#: The file-editing tools a PM policy opens for its own two files.
_EDIT_TOOLS = ("write_file", "replace")
#: What the policy engine escapes in a literal (gemini-cli's own `escapeRegex`).
_REGEX_SPECIAL = re.compile(r'[-\[\]{}()*+?.,\\^$|#\s"]')

#: Tool error types that mean "you may not", not "it failed" (ToolErrorType in gemini-cli).
_DENIED = frozenset(
    {"policy_violation", "path_not_in_workspace", "permission_denied", "sandbox_expansion_required"}
)
#: A write outside the workspace is refused as `invalid_tool_params`: only the wording tells.
_DENIED_TEXT = re.compile(r"^Path not in workspace|denied by policy|execution blocked")
#: Start-up chatter on stderr that would bury the reason a run died.
_NOISE = re.compile(r"^(?:Warning: 256-color|YOLO mode is enabled|Ripgrep is not available)")
#: What it prints on stderr (exit 41) when it has no credentials at all.
_NO_AUTH = re.compile(
    r"auth method|must specify the \w+ environment variable|set an auth", re.IGNORECASE
)


class GeminiBackend(CliBackend):
    name = "gemini"
    binary = "gemini"

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        # No --prompt: with stdin not a terminal it runs headless on what stdin holds.
        argv = ["--output-format", "stream-json"]
        argv += ["--approval-mode", _APPROVAL.get(ctx.role, "default"), "--skip-trust"]
        if ctx.role == "pm":
            argv.append(f"--policy={_without_commas(write_pm_policy(ctx), ctx.workdir)}")
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        return argv + extra  # last, so a repeated flag of the user's (e.g. --model) wins

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)

    def environment(self, ctx: RunContext) -> dict[str, str]:
        # It re-executes itself in a child node by default: one process keeps the exit code
        # and the signals Shopfloor sends its own.
        return {"GEMINI_CLI_NO_RELAUNCH": "1"}

    def parse(self, stdout: str, stderr: str) -> Parsed:
        events = list(json_lines(stdout))
        init = next((e for e in events if e.get("type") == "init"), {})
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        session = init.get("session_id")
        parsed = Parsed(
            final_text=_final_text(events),
            session_id=session if isinstance(session, str) else None,
        )
        if result is None:
            parsed.final_text = parsed.final_text or stdout[-4000:]
            _no_result(parsed, stderr)
            return parsed
        stats = result.get("stats")
        if isinstance(stats, dict):
            parsed.tokens_in = as_int(stats.get("input_tokens"))
            parsed.tokens_out = as_int(stats.get("output_tokens"))
        _judge(parsed, result, events)
        return parsed


def write_pm_policy(ctx: RunContext) -> Path:
    """The PM's policy file, in its run folder: write_file and replace are allowed for its
    task file and its result file only; every other call of theirs, and the shell, is denied.

    In `default` mode those tools would ask a human, which headless means no; the allow rules
    (they carry an `argsPattern`) keep them offered to the model. Rules go in at the top of
    the user tier, above any rule of the user's own."""
    rules = [_rule(_EDIT_TOOLS, "allow", 999, _file_path_is(p)) for p in own_files(ctx)]
    rules.append(_rule(_EDIT_TOOLS, "deny", 998, None, "The PM may edit only its task file."))
    rules.append(_rule(("run_shell_command",), "deny", 998, None, "The PM runs no commands."))
    return write_run_file(ctx, "gemini-pm-policy.toml", "\n".join(rules))


def _without_commas(path: Path, cwd: Path) -> str:
    """`--policy` splits its value at commas: a path with one goes relative to the working
    directory the CLI starts in (the run folder lies under the repository it reads)."""
    if "," not in str(path):
        return str(path)
    return os.path.relpath(path, cwd)


def own_files(ctx: RunContext) -> tuple[Path, Path]:
    return ctx.task_file, ctx.result_file


def _file_path_is(path: Path) -> str:
    """A regex for `file_path` being exactly `path`. The policy engine tests it against the
    arguments as sorted JSON with each top-level pair between NUL characters."""
    literal = _REGEX_SPECIAL.sub(r"\\\g<0>", json.dumps(str(path), ensure_ascii=False))
    return f'\\x00"file_path":{literal}\\x00'


def _rule(
    tools: tuple[str, ...], decision: str, priority: int, pattern: str | None, why: str = ""
) -> str:
    lines = ["[[rule]]", f"toolName = {json.dumps(list(tools))}", f'decision = "{decision}"']
    lines.append(f"priority = {priority}")
    if pattern is not None:
        lines.append(f"argsPattern = {json.dumps(pattern)}")  # a JSON string is a TOML string
    if why:
        lines.append(f"denyMessage = {json.dumps(why)}")
    return "\n".join(lines) + "\n"


def _final_text(events: list[dict[str, Any]]) -> str:
    """The assistant's text after its last tool call (its streamed chunks joined)."""
    chunks: list[str] = []
    everything: list[str] = []
    for event in events:
        if event.get("type") in ("tool_use", "tool_result"):
            chunks = []
        elif event.get("type") == "message" and event.get("role") == "assistant":
            text = str(event.get("content") or "")
            chunks.append(text)
            everything.append(text)
    return "".join(chunks) or "".join(everything)


def _no_result(parsed: Parsed, stderr: str) -> None:
    """It died before printing a result: the reason, if any, is the end of stderr."""
    lines = [line for line in stderr.strip().splitlines() if not _NOISE.match(line)]
    tail = "\n".join(lines)[-1500:]
    error_outcome(parsed, tail or "gemini printed no result")
    if _NO_AUTH.search(tail):
        parsed.outcome = Outcome.AUTH_ERROR


def _judge(parsed: Parsed, result: dict[str, Any], events: list[dict[str, Any]]) -> None:
    raw_error = result.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    problem = _unrecovered_error(events)
    if result.get("status") == "error":
        kind = str(error.get("type") or "")
        error_outcome(parsed, str(error.get("message") or problem or "gemini reported an error"))
        if "Authentication" in kind:
            parsed.outcome = Outcome.AUTH_ERROR
        return
    denied = _denials(events)
    if denied:
        parsed.outcome = Outcome.PERMISSION_DENIED
        parsed.error = f"gemini was refused {len(denied)} tool call(s): {'; '.join(denied)}"[:500]
    elif problem:
        error_outcome(parsed, problem)


def _unrecovered_error(events: list[dict[str, Any]]) -> str | None:
    """An `error` event of severity error with no assistant text after it (it gave up)."""
    problem: str | None = None
    for event in events:
        if event.get("type") == "error" and event.get("severity") == "error":
            problem = str(event.get("message") or "gemini reported an error")
        elif event.get("type") == "message" and event.get("role") == "assistant":
            problem = None
    return problem


def _denials(events: list[dict[str, Any]]) -> list[str]:
    """The refused tool calls, as "tool: reason"."""
    names = {e.get("tool_id"): e.get("tool_name") for e in events if e.get("type") == "tool_use"}
    denied = []
    for event in events:
        error = event.get("error") if event.get("type") == "tool_result" else None
        if isinstance(error, dict) and _is_denial(error):
            name = names.get(event.get("tool_id"), "?")
            denied.append(f"{name}: {error.get('message') or error.get('type')}")
    return denied


def _is_denial(error: dict[str, Any]) -> bool:
    return error.get("type") in _DENIED or bool(_DENIED_TEXT.search(str(error.get("message"))))


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("gemini", GeminiBackend)
