"""Aider: `aider --message-file PROMPT_FILE` (one request-and-apply turn, then it exits).

Aider has no tools and no machine output: the model answers in aider's edit format, aider
applies the edits and may run the ```bash commands the answer suggests, and everything it
prints is plain text — the answer, its notes, and one `Tokens: N sent, M received. Cost: $X
message, $Y session.` line per model request (tokens rounded to 0.1k past 1000).

Its lies: it exits 0 when the API refuses the key, rate-limits or fails (it prints the litellm
error and stops), so the text is read for those. It asks questions instead of failing: on a
closed stdin each takes its default, which is "yes" — that is how Coder and Hotfix get their
shell commands run (`--yes-always` would answer "no" to exactly those). A run whose answer
carries no applicable edit also exits 0; the result block decides then. Its token counts are
its own estimate while streaming (the default; litellm passes no usage then) and the server's
only with `--no-stream`. It retries a 429 or 500 for about a minute, printing each error, and
the OpenAI client beneath it first waits out `retry-after` in silence: give it a stall limit
above a minute.

Which files it edits: aider edits the files "in the chat" and asks before touching others.
The backend adds the task file (editable for PM and Hotfix, read-only for Coder and QA); code
files come in when the answer names them (aider adds them and asks again). The repo map is off
by default because it leaves `.aider.tags.cache.v4/` in the repository root, where Shopfloor
would commit it; give `args = ["--map-tokens", "1024"]` once `.aider*` is git-ignored. Its
chat and input history go to the run directory, not the repository.

Roles: Coder and Hotfix edit and run commands; the PM may edit (aider cannot limit it to the
task file: with `--yes-always` it edits any file the answer names; the daemon's tree check
flags that) but suggests no commands; QA runs with `--dry-run`, which applies no edit at all,
and no commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.agents._cli import CliBackend, error_outcome, reset_time

_QUIET = [
    "--no-pretty",  # plain text: no colours or rich markup in the log
    "--no-fancy-input",
    "--no-check-update",
    "--no-show-release-notes",
    "--no-analytics",
    "--no-notifications",
    "--no-detect-urls",  # an URL in the task would be fetched (and may offer to install a browser)
    "--no-gitignore",  # else it adds `.aider*` to the user's .gitignore
    "--no-auto-commits",  # Shopfloor commits (Coder) or the human does (Hotfix)
    "--no-dirty-commits",
    "--map-tokens",
    "0",  # see the module docstring: the map's cache lands in the repository
]
_ROLE_FLAGS = {
    "coder": ["--read"],
    "hotfix": ["--file"],
    "pm": ["--file", "--yes-always", "--no-suggest-shell-commands"],
    "qa": ["--read", "--yes-always", "--no-suggest-shell-commands", "--dry-run"],
}

_USAGE = re.compile(r"^Tokens: ([\d.]+k?) sent,.*?([\d.]+k?) received\.", re.MULTILINE)
_COST = re.compile(r"Cost: \$([\d.]+) message, \$([\d.]+) session\.")
#: A failed model request: aider prints litellm's exception (`litellm.RateLimitError: ...`).
_API_ERROR = re.compile(r"^litellm\.(\w+Error)\b.*$", re.MULTILINE)
_AUTH_ERRORS = frozenset({"AuthenticationError", "PermissionDeniedError"})
#: Aider's own preamble and bookkeeping lines, not the model's answer.
_CHATTER = re.compile(
    r"^(?:Aider v|Model: |Weak model: |Editor model: |Git repo: |Repo-map: |Added |Tokens: |"
    r"Update git |Applied edit to |Running |Retrying in |.*\[Yes\]: |.*\[No\]: )"
)


class AiderBackend(CliBackend):
    name = "aider"
    binary = "aider"

    def arguments(self, ctx: RunContext, extra: list[str]) -> list[str]:
        # The prompt goes by file whatever its size: aider cannot read a file it is pointed at.
        argv = ["--message-file", str(ctx.prompt_file)]
        run_dir = ctx.prompt_file.parent
        argv += ["--chat-history-file", str(run_dir / "aider.chat.history.md")]
        argv += ["--input-history-file", str(run_dir / "aider.input.history")]
        argv += _QUIET
        flags = _ROLE_FLAGS.get(ctx.role, _ROLE_FLAGS["qa"])
        argv += [flags[0], str(ctx.task_file), *flags[1:]]
        if ctx.agent.model:
            argv += ["--model", ctx.agent.model]
        return argv + extra  # aider takes the last of a repeated flag: the user's args win

    def environment(self, ctx: RunContext) -> dict[str, str]:
        # Aider offers to open documentation in a browser on some errors, and a closed stdin
        # says yes: a console browser would hang the run, so "opening" one does nothing.
        return {
            "BROWSER": "true",
            "PYTHONUNBUFFERED": "1",  # else its output sits in a pipe buffer: a false stall
            "COLUMNS": "400",  # else its console wraps error messages at 80 columns
        }

    def parse(self, stdout: str, stderr: str) -> Parsed:
        tokens_in, tokens_out = _tokens(stdout)
        parsed = Parsed(
            final_text=_answer(stdout),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=_cost(stdout),
        )
        _judge(parsed, stdout, stderr)
        return parsed


def _count(text: str) -> int:
    """Aider's `format_tokens`: `950`, `2.5k`, `12k`."""
    if text.endswith("k"):
        return round(float(text[:-1]) * 1000)
    return int(float(text))


def _tokens(stdout: str) -> tuple[int | None, int | None]:
    found = _USAGE.findall(stdout)
    if not found:
        return None, None
    return sum(_count(i) for i, _ in found), sum(_count(o) for _, o in found)


def _cost(stdout: str) -> float | None:
    found = _COST.findall(stdout)
    return float(found[-1][1]) if found else None  # the last session total covers every request


def _answer(stdout: str) -> str:
    """The model's answer(s) as printed, without aider's preamble and bookkeeping."""
    lines = [line for line in stdout.splitlines() if not _CHATTER.match(line)]
    return "\n".join(lines).strip()[-20000:]


def _judge(parsed: Parsed, stdout: str, stderr: str) -> None:
    """Exit 0 proves nothing: a failed model request is only in the text. Aider retries rate
    limits and server errors for a minute; what counts is whether its last request failed."""
    errors = list(_API_ERROR.finditer(stdout))
    answered = [m.start() for m in _USAGE.finditer(stdout)]
    if errors and (not answered or errors[-1].start() > answered[-1]):
        last = errors[-1]
        error_outcome(parsed, stdout[last.start() : last.start() + 600])
        kind = last.group(1)
        if kind in _AUTH_ERRORS:
            parsed.outcome = Outcome.AUTH_ERROR
        elif kind == "RateLimitError":
            parsed.outcome = Outcome.RATE_LIMITED
            parsed.reset_at = reset_time(stdout[last.start() :])
        elif parsed.outcome is not Outcome.AUTH_ERROR:
            # a 500 says "overloaded": a server error, not a rate limit with a reset time
            parsed.outcome, parsed.reset_at = Outcome.AGENT_ERROR, None
    elif not answered:
        error_outcome(
            parsed, stderr.strip()[-600:] or stdout.strip()[-600:] or "aider printed nothing"
        )


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("aider", AiderBackend)
