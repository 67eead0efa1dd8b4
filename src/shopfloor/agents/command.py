"""The `command` backend: the run contract, literally. Any program can be an agent.

`command` is an argv list; `{prompt_file}`, `{result_file}`, `{task_file}`, `{role}`,
`{workdir}`, `{task_id}` and `{run_id}` are substituted in each argument (no shell).
The program also gets the SHOPFLOOR_* environment and writes its result JSON file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from shopfloor.agents import Backend, Invocation, Outcome, Parsed, RunContext, classify_ending

if TYPE_CHECKING:
    from shopfloor.runner import RunResult

_PLACEHOLDER = re.compile(r"\{(prompt_file|result_file|task_file|role|workdir|task_id|run_id)\}")
_TAIL_CHARS = 64 * 1024


def substitute(argv: list[str], values: dict[str, str]) -> list[str]:
    """Fill the documented placeholders; other braces are left alone."""
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in argv]


class CommandBackend:
    name = "command"

    def build(self, ctx: RunContext) -> Invocation:
        command = ctx.agent.command
        argv = list(command) if isinstance(command, list) else [command or "true"]
        return Invocation(substitute([*argv, *ctx.agent.args], ctx.placeholders()))

    def parse(self, stdout: str, stderr: str) -> Parsed:
        return Parsed(final_text=stdout[-_TAIL_CHARS:])

    def classify(self, result: RunResult, parsed: Parsed) -> Outcome:
        ending = classify_ending(result)
        if ending is not None:
            return ending
        return Outcome.OK if result.exit_code == 0 else Outcome.AGENT_ERROR


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("command", CommandBackend)
