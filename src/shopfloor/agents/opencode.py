"""OpenCode: `opencode run --format json --pure --dir WORKDIR [-m PROVIDER/MODEL] < PROMPT`.

Its lies, as recorded against the pinned version:
- A tool call the permission rules refuse does not fail the run. An `ask` rule has no one to
  ask in `run`, so OpenCode rejects it ("permission requested: ...; auto-rejecting" on stderr),
  stops the session and exits 0; the only trace in the JSON stream is a `tool_use` event whose
  state is `error` ("The user rejected permission ..."). A `deny` rule fails the tool call the
  same way and lets the model go on. Both are read as permission-denied.
- API errors do exit 1, with an `error` event carrying the HTTP status. But before that it
  retries a 429 or 5xx five times (not configurable), sleeping as long as `retry-after` says,
  uncapped, and printing nothing: a long rate limit looks like a stalled run. So it runs with
  `--print-logs --log-level ERROR`, which puts each failed model call on stderr ("stream
  error"), and a run stopped (stall, timeout) while waiting to retry is judged by that error.
- It takes its working directory from $PWD, not from the process's cwd: without `--dir` it
  works (and asks for "external_directory" permission) wherever the daemon was started.
- A prompt given as an argument is not sent as given: each argument holding a space is wrapped
  in double quotes with its inner quotes escaped. So the prompt goes by stdin, which OpenCode
  reads when it is not a terminal (and which has no argv size limit).
- `--pure` leaves out external plugins, yet every start still tries `npm install` of
  `@opencode-ai/plugin` into ~/.config/opencode in the background (harmless when offline).
- Some failures (an unknown model, say) reach the JSON stream only as "Unexpected server
  error. Check server logs for details." with a `ref`; the logs on stderr hold the cause.
- `cost` is 0 for a model whose prices it does not know (custom providers).

Roles map to permission rules passed in OPENCODE_PERMISSION, which OpenCode merges over the
user's own config (the rest of that config — providers, models, keys — stays theirs):
- coder / hotfix: edits and shell allowed.
- pm: edits only to its task file (and its result file); no shell.
- qa: no edits, no shell (the tools are not even offered); the verdict comes back in the
  final message's fenced JSON.
Every role may also reach the task file's folder and the run folder, which lie outside a
coder's worktree. Any other path outside the working directory is an `ask`, so it is refused.
Rules in a user's per-agent config (`agent.build.permission`) would still apply over these.

Each run keeps its sessions in its own database (`run_database`): runs sharing one break each
other.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import (
    EDITING_ROLES,
    CliBackend,
    add,
    as_int,
    error_outcome,
    json_lines,
    outcome_from_text,
    prompt_on_stdin,
    reset_time,
    retry_after_time,
)

if TYPE_CHECKING:
    pass

#: Errors only, to stderr: a failed model call shows there while OpenCode waits to retry it.
_LOGS = ["--print-logs", "--log-level", "ERROR"]
#: A failed model call in those logs: its time and message.
_STREAM_ERROR = re.compile(
    r'^timestamp=(\S+) level=ERROR .*message="stream error" .*error\.error="(.*)"\s*$', re.MULTILINE
)
#: Marks `Parsed.error` when the run was stopped while OpenCode was waiting to retry.
_RETRYING = "opencode was waiting to retry: "
#: How a refused tool call reads in a `tool_use` event (rejected ask / deny rule).
_DENIED = ("rejected permission", "prevents you from using")


class OpencodeBackend(CliBackend):
    name = "opencode"
    binary = "opencode"
    waiting_mark = _RETRYING

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        # --pure: no plugins fetched from npm at run time; --title: no extra paid model call
        # to name the session; --dir: OpenCode follows $PWD, not the cwd it was started in.
        argv = ["run", "--format", "json", "--pure", "--dir", str(ctx.workdir), *_LOGS]
        argv += ["--title", f"shopfloor {ctx.task_id} {ctx.role} {ctx.run_id}"]
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        return argv + extra

    def stdin(self, ctx: RunContext) -> bytes | None:
        return prompt_on_stdin(ctx)  # an argument would also reach the model re-quoted

    def environment(self, ctx: RunContext) -> dict[str, str]:
        env = {
            "OPENCODE_PERMISSION": json.dumps(permissions(ctx)),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",  # never update itself mid-pipeline
        }
        if "OPENCODE_DB" not in ctx.agent.env:  # a user who sets one shares it knowingly
            env["OPENCODE_DB"] = str(run_database(ctx))
        return env

    def parse(self, stdout: str, stderr: str) -> Parsed:
        parsed = Parsed()
        texts: dict[str, list[str]] = {}
        denied: list[str] = []
        errors: list[dict[str, Any]] = []
        finished, last_ms = False, 0.0
        for event in json_lines(stdout):
            parsed.session_id = parsed.session_id or _str(event.get("sessionID"))
            last_ms = max(last_ms, _number(event.get("timestamp")))
            kind, part = event.get("type"), _dict(event.get("part"))
            if kind == "text":
                texts.setdefault(str(part.get("messageID")), []).append(str(part.get("text") or ""))
            elif kind == "step_finish":
                finished = True
                _count(parsed, part)
            elif kind == "tool_use":
                denied += _denial(part)
            elif kind == "error":
                errors.append(_dict(event.get("error")))
        if texts:  # the answer is the text of the last message that said anything
            parsed.final_text = "".join(list(texts.values())[-1])
        _judge(parsed, errors, denied, finished, stderr)
        if not errors:  # no final error yet: was it stopped while waiting to retry one?
            _retrying(parsed, stderr, last_ms)
        return parsed


def run_database(ctx: RunContext) -> Path:
    """This run's own OpenCode database, in its (private) run folder.

    OpenCode keeps every session in one SQLite file in its data folder; runs started at the
    same time fight over it ("database is locked", or a failed `CREATE TABLE workspace` when
    two create it at once). `OPENCODE_DB` moves only the database: credentials (auth.json),
    config, plugins and caches stay where the user keeps them."""
    return ctx.prompt_file.parent / "opencode.db"


def permissions(ctx: RunContext) -> dict[str, Any]:
    """The OPENCODE_PERMISSION rules for one run's role (see the module docstring)."""
    reach = {_folder(ctx.task_file.parent): "allow", _folder(ctx.result_file.parent): "allow"}
    if ctx.role in EDITING_ROLES:
        return {"edit": "allow", "bash": "allow", "external_directory": reach}
    if ctx.role == "pm":
        # Edit rules match the path relative to the git worktree; the last matching rule wins.
        top = _worktree(ctx.workdir)
        own = {os.path.relpath(f, top): "allow" for f in (ctx.task_file, ctx.result_file)}
        return {"edit": {"*": "deny", **own}, "bash": "deny", "external_directory": reach}
    # A plain "deny" (not a rule set) replaces any rules of the user's, and hides the tools.
    return {"edit": "deny", "bash": "deny", "external_directory": reach}


def _folder(path: Path) -> str:
    return str(path / "*")


def _worktree(workdir: Path) -> Path:
    """The git worktree OpenCode roots its edit rules at (it uses "/" outside git)."""
    for folder in (workdir, *workdir.parents):
        if (folder / ".git").exists():
            return folder
    return Path("/")


def _count(parsed: Parsed, part: dict[str, Any]) -> None:
    """Add one step's usage: OpenCode splits cached input and reasoning out of the totals."""
    tokens = _dict(part.get("tokens"))
    cache = _dict(tokens.get("cache"))
    parsed.tokens_in = add(parsed.tokens_in, as_int(tokens.get("input")))
    for key in ("read", "write"):
        parsed.tokens_in = add(parsed.tokens_in, as_int(cache.get(key)))
    for key in ("output", "reasoning"):
        parsed.tokens_out = add(parsed.tokens_out, as_int(tokens.get(key)))
    cost = part.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        parsed.cost_usd = (parsed.cost_usd or 0.0) + float(cost)


def _denial(part: dict[str, Any]) -> list[str]:
    state = _dict(part.get("state"))
    error = str(state.get("error") or "")
    if state.get("status") == "error" and any(d in error for d in _DENIED):
        return [str(part.get("tool") or "?")]
    return []


def _judge(
    parsed: Parsed, errors: list[dict[str, Any]], denied: list[str], finished: bool, stderr: str
) -> None:
    if errors:
        _api_error(parsed, errors[-1], stderr)
    elif denied:
        parsed.outcome = Outcome.PERMISSION_DENIED
        tools = ", ".join(sorted(set(denied)))
        parsed.error = f"opencode was denied {len(denied)} tool use(s): {tools}"
    elif not finished:  # bad flags, unknown model, a crash: the reason is on stderr
        error_outcome(parsed, stderr.strip()[-2000:] or "opencode printed no step_finish")


def _api_error(parsed: Parsed, error: dict[str, Any], stderr: str) -> None:
    data = _dict(error.get("data"))
    status = as_int(data.get("statusCode"))
    name = str(error.get("name") or "error")
    message = str(data.get("message") or data.get("responseBody") or name)
    if data.get("ref"):  # "Unexpected server error": the cause is only in the logs
        message = _logged_cause(stderr, str(data["ref"])) or message
    error_outcome(parsed, f"{name} {status or ''} {message}")
    if status in (401, 403) or name == "ProviderAuthError":
        parsed.outcome = Outcome.AUTH_ERROR
    elif status == 429:
        parsed.outcome = Outcome.RATE_LIMITED
        headers = _dict(data.get("responseHeaders"))
        parsed.reset_at = retry_after_time(headers) or reset_time(message)


def _logged_cause(stderr: str, ref: str) -> str | None:
    """The error logged under `ref` (e.g. "ProviderModelNotFoundError: Model not found: x")."""
    found = re.search(rf'ref={re.escape(ref)} error="((?:[^"\\]|\\.)*)"', stderr)
    return found.group(1) if found else None


def _retrying(parsed: Parsed, stderr: str, last_event_ms: float) -> None:
    """Mark a model call that failed after the last event: OpenCode was still retrying it."""
    found = _STREAM_ERROR.findall(stderr)
    if not found:
        return
    stamp, message = found[-1]
    try:
        at_ms = datetime.fromisoformat(stamp).timestamp() * 1000
    except ValueError:
        return
    if at_ms > last_event_ms:
        kind = outcome_from_text(message)
        parsed.outcome, parsed.error = kind or Outcome.AGENT_ERROR, f"{_RETRYING}{message}"
        if kind is Outcome.RATE_LIMITED:
            parsed.reset_at = reset_time(message, now=at_ms / 1000)  # from when it failed


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("opencode", OpencodeBackend)
