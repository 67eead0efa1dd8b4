"""What the real agent CLI backends share: argv assembly, JSON-lines reading, error wording.

A CLI backend subclasses `CliBackend` and fills in three things — `arguments` (the headless
command line for a role), `parse` (its machine output) and, where its output is structured
enough, `Parsed.outcome`. `classify` here then applies the rule every CLI needs: the process
ending first (timeout, stall, crash), then what the output says, and the exit code last,
because exit codes lie (AGENT-CLIS.md).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor import _fs
from shopfloor.agents import Invocation, Outcome, Parsed, RunContext, classify_ending
from shopfloor.paths import make_private_dir

if TYPE_CHECKING:
    from shopfloor.runner import RunResult

#: For CLIs with a system-prompt channel: nobody will answer a question in a headless run.
HEADLESS_NOTE = (
    "You are running headless under Shopfloor: no human will answer questions or approve "
    "anything during this run. Decide, act, and end your final message with the fenced json "
    "result block your instructions describe."
)

#: Roles that change files. PM edits only its task file; QA only reads.
EDITING_ROLES = frozenset({"coder", "hotfix"})

_AUTH = re.compile(
    r"\b401\b|unauthori[sz]ed|invalid[ _-]?(?:x-)?api[ _-]?key|api key not valid|"
    r"authentication[ _]error|not logged in|please run /login|no api key|"
    r"missing (?:an )?api key|UNAUTHENTICATED|invalid_api_key|auth(?:entication)? failed",
    re.IGNORECASE,
)
_RATE = re.compile(
    r"\b429\b|rate[ _-]?limit|usage limit|too many requests|quota|RESOURCE_EXHAUSTED|"
    r"overloaded|rate_limit_exceeded",
    re.IGNORECASE,
)
_RETRY_IN = re.compile(
    r"(?:try again in|retry[ -]after[:= ]*|retryDelay\W+|retry in|resets? in)\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?)?",
    re.IGNORECASE,
)
_RESET_EPOCH = re.compile(r"limit reached\|(\d{10})")
_UNIT = {"m": 60.0, "h": 3600.0}


def outcome_from_text(text: str) -> Outcome | None:
    """auth-error / rate-limited when an error message says so, else None."""
    if _AUTH.search(text):
        return Outcome.AUTH_ERROR
    if _RATE.search(text):
        return Outcome.RATE_LIMITED
    return None


def reset_time(text: str, now: float | None = None) -> float | None:
    """When a rate limit lifts (epoch seconds), from the wording of the error, if it says."""
    now = time.time() if now is None else now
    epoch = _RESET_EPOCH.search(text)
    if epoch:
        return float(epoch.group(1))
    match = _RETRY_IN.search(text)
    if not match:
        return None
    unit = (match.group(2) or "s").lower()
    factor = 0.001 if unit == "ms" else _UNIT.get(unit[0], 1.0)  # s, m/min/minutes, h/hours
    return now + float(match.group(1)) * factor


def retry_after_time(headers: Mapping[str, object], received: float | None = None) -> float | None:
    """When a 429 says to come back, from its `retry-after-ms` or `retry-after` header (seconds
    or an HTTP date), as epoch seconds; `received`: when the response came (default now)."""
    received = time.time() if received is None else received
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    try:
        return received + float(lowered.get("retry-after-ms", "")) / 1000.0
    except ValueError:
        pass
    value = lowered.get("retry-after", "")
    try:
        return received + float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def json_lines(text: str) -> Iterator[dict[str, Any]]:
    """Every line of `text` that is a JSON object (CLIs mix logs into their streams)."""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in `text` (a whole-output document or the last line)."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    found = None
    for found in json_lines(text):  # noqa: B007 - the last one wins
        pass
    return found


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def error_outcome(parsed: Parsed, text: str) -> None:
    """Mark `parsed` failed by the wording of `text` (auth / rate limit / agent error)."""
    parsed.error = parsed.error or " ".join(text.split())[:500] or "the agent reported an error"
    kind = outcome_from_text(text)
    parsed.outcome = kind or Outcome.AGENT_ERROR
    if kind is Outcome.RATE_LIMITED:
        parsed.reset_at = reset_time(text)


def mark_denials(parsed: Parsed, denials: Any, cli: str) -> bool:
    """permission-denied when the CLI lists tool uses it refused (claude and qwen report
    `permission_denials` the same way); True if it did."""
    if not isinstance(denials, list) or not denials:
        return False
    tools = sorted({str(d.get("tool_name", "?")) for d in denials if isinstance(d, dict)})
    parsed.outcome = Outcome.PERMISSION_DENIED
    parsed.error = f"{cli} was denied {len(denials)} tool use(s): {', '.join(tools)}"
    return True


def write_run_file(ctx: RunContext, name: str, text: str) -> Path:
    """A file the CLI is pointed at (a policy, an extension), in the run's private folder."""
    folder = ctx.prompt_file.parent
    make_private_dir(folder)  # there already in a run; unit tests build argv without one
    path = folder / name
    _fs.atomic_write(path, text, durable=False)
    return path


class CliBackend:
    """Base for a real agent CLI: subclasses set `name`/`binary` and define `arguments`/`parse`."""

    name: str = ""
    binary: str = ""
    #: How `parse` starts `Parsed.error` when the CLI was sleeping before retrying a 429: a run
    #: stopped then (stall, timeout) was silent because it waited, not because it hung.
    waiting_mark: str = ""

    def build(self, ctx: RunContext) -> Invocation:
        command = ctx.agent.command
        prefix = list(command) if isinstance(command, list) else [command or self.binary]
        argv = self.arguments(ctx, list(ctx.agent.args))
        return Invocation([*prefix, *argv], env=self.environment(ctx), stdin=self.stdin(ctx))

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        raise NotImplementedError

    def environment(self, ctx: RunContext) -> dict[str, str]:
        return {}

    def stdin(self, ctx: RunContext) -> bytes | None:
        return b""  # a closed stdin: some CLIs wait on it when it is a terminal or a pipe

    def parse(self, stdout: str, stderr: str) -> Parsed:
        raise NotImplementedError

    def classify(self, result: RunResult, parsed: Parsed) -> Outcome:
        ending = classify_ending(result)
        waiting = bool(self.waiting_mark) and (parsed.error or "").startswith(self.waiting_mark)
        if ending in (Outcome.STALLED, Outcome.TIMED_OUT) and waiting and parsed.outcome:
            return parsed.outcome
        if ending is not None:
            return ending
        if parsed.outcome is not None:
            return parsed.outcome
        if result.exit_code != 0:
            return Outcome.AGENT_ERROR
        return Outcome.OK


def prompt_on_stdin(ctx: RunContext) -> bytes:
    """The whole prompt as the CLI's standard input — never an argument: any local user can
    read a process's argv (`ps`, /proc/PID/cmdline), and one argument may not exceed 128 KiB."""
    return ctx.prompt.encode()
