"""pi (`@mariozechner/pi-coding-agent`): `pi --mode json [--model M] -p < PROMPT`.

Its lies: with `--mode json` it exits 0 whatever the model API answered — a 401, a 429 and a
500 all end in an assistant `message_end` with `stopReason: "error"` and an `errorMessage`
("401 Incorrect API key provided ..."), so the last assistant message decides. Only failures
before the session starts (no API key for the model) exit 1, with the reason on stderr.
The prompt goes by stdin, which `-p` reads when it is given no message argument (an argument
would also be read as a file to attach when it starts with `@`, as an option with `-`).

pi never asks for approval; what a role may do is the set of tools it gets (`--tools`, an
allowlist the model is offered and held to): Coder and Hotfix edit files and run commands,
the PM edits without a shell, QA only reads. pi has no path rules, so the PM also gets an
extension (`write_pm_guard`) that blocks `write` and `edit` of anything but its task file and
result file; a blocked call is an error tool result the model sees, read as permission-denied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    CliBackend,
    add,
    as_int,
    error_outcome,
    json_lines,
    prompt_on_stdin,
    write_run_file,
)

_READ = "read,grep,find,ls"
_TOOLS = {
    "coder": f"{_READ},edit,write,bash",
    "hotfix": f"{_READ},edit,write,bash",
    "pm": f"{_READ},edit,write",
    "qa": _READ,
}


#: What a refusal by the PM's guard says (the tool result the model sees), and how to spot it.
DENIED_MARK = "Shopfloor refused:"

#: The PM's guard: a pi extension that blocks `write` and `edit` of any path but the PM's own
#: two files. The path is resolved the way pi's tools resolve it (an `@` prefix, `~`, Unicode
#: spaces, relative to the working directory); a path with `..` in it is refused outright.
_GUARD = """\
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";

const ALLOWED = new Set(%(allowed)s);
const SPACES = /[\\u00A0\\u2000-\\u200A\\u202F\\u205F\\u3000]/g;

function target(raw, cwd) {
  let path = String(raw ?? "").replace(SPACES, " ");
  if (path.startsWith("@")) path = path.slice(1);
  if (path === "~") path = homedir();
  else if (path.startsWith("~/")) path = homedir() + path.slice(1);
  if (path.split(/[\\\\/]/).includes("..")) return null;
  return isAbsolute(path) ? resolve(path) : resolve(cwd, path);
}

export default function (pi) {
  pi.on("tool_call", async (event, ctx) => {
    if (event.toolName !== "write" && event.toolName !== "edit") return undefined;
    const path = target(event.input?.path, ctx.cwd ?? process.cwd());
    if (path !== null && ALLOWED.has(path)) return undefined;
    return { block: true, reason: %(reason)s };
  });
}
"""


def write_pm_guard(ctx: RunContext) -> Path:
    """The PM's guard extension, in its run folder, naming the two files it may write."""
    allowed = json.dumps([str(ctx.task_file), str(ctx.result_file)])
    reason = json.dumps(f"{DENIED_MARK} the PM may edit only its task file, {ctx.task_file}")
    return write_run_file(ctx, "pi-pm-guard.ts", _GUARD % {"allowed": allowed, "reason": reason})


class PiBackend(CliBackend):
    name = "pi"
    binary = "pi"

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        argv = ["--mode", "json", "--tools", _TOOLS.get(ctx.role, _TOOLS["qa"])]
        if ctx.role == "pm":
            argv += ["--extension", str(write_pm_guard(ctx))]
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        return [*argv, *extra, "-p"]  # print mode; the message comes from stdin

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)

    def environment(self, ctx: RunContext) -> dict[str, str]:
        return {"PI_SKIP_VERSION_CHECK": "1"}  # no update check at every start of a run

    def parse(self, stdout: str, stderr: str) -> Parsed:
        parsed = Parsed()
        last: dict[str, Any] | None = None
        refused: list[str] = []
        for event in json_lines(stdout):
            if event.get("type") == "session" and isinstance(event.get("id"), str):
                parsed.session_id = event["id"]
            refused += _refusal(event)
            message = event.get("message")
            if event.get("type") != "message_end" or not isinstance(message, dict):
                continue
            if message.get("role") == "assistant":  # one per model reply, errors included
                _count(parsed, message)
                last = message
                parsed.final_text = _text(message) or parsed.final_text
        if last is None:
            parsed.final_text = stdout[-4000:]
            error_outcome(parsed, stderr.strip() or "pi printed no assistant message")
        elif last.get("stopReason") in ("error", "aborted"):
            reason = str(last.get("errorMessage") or f"request {last.get('stopReason')}")
            error_outcome(parsed, reason)
        elif refused:
            parsed.outcome = Outcome.PERMISSION_DENIED
            tools = ", ".join(sorted(set(refused)))
            parsed.error = (
                f"pi was refused {len(refused)} tool use(s) by Shopfloor's guard: {tools}"
            )
        return parsed


def _refusal(event: dict[str, Any]) -> list[str]:
    """The tool name, when this event is a tool call the PM's guard blocked."""
    result = event.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    if event.get("type") != "tool_execution_end" or not event.get("isError"):
        return []
    texts = [c.get("text") for c in content or [] if isinstance(c, dict)]
    if any(isinstance(t, str) and t.startswith(DENIED_MARK) for t in texts):
        return [str(event.get("toolName") or "?")]
    return []


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, list):
        return ""
    parts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
    return "".join(p for p in parts if isinstance(p, str))


def _count(parsed: Parsed, message: dict[str, Any]) -> None:
    """Add one model reply's usage: pi reports it per assistant message, never as a total."""
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return
    for key in ("input", "cacheRead", "cacheWrite"):
        parsed.tokens_in = add(parsed.tokens_in, as_int(usage.get(key)))
    parsed.tokens_out = add(parsed.tokens_out, as_int(usage.get("output")))
    cost = usage.get("cost")
    total = cost.get("total") if isinstance(cost, dict) else None
    if isinstance(total, int | float) and not isinstance(total, bool):
        parsed.cost_usd = (parsed.cost_usd or 0.0) + float(total)


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("pi", PiBackend)
