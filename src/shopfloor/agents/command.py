"""The `command` backend: the run contract, literally. Any program can be an agent.

`command` is an argv list; `{prompt_file}`, `{result_file}`, `{task_file}`, `{role}`,
`{workdir}`, `{task_id}` and `{run_id}` are substituted in each argument (no shell).
The program also gets the SHOPFLOOR_* environment and writes its result JSON file. It may
report what it spent by printing JSON lines such as `{"cost_usd": 0.12, "tokens_in": 900,
"tokens_out": 80}` (running totals; the last one counts) — budgets then apply to it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from shopfloor.agents import Backend, Invocation, Outcome, Parsed, RunContext, classify_ending
from shopfloor.agents._cli import as_int, json_lines

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
        parsed = Parsed(final_text=stdout[-_TAIL_CHARS:])
        for line in json_lines(stdout):
            if isinstance(line.get("cost_usd"), int | float):
                parsed.cost_usd = float(line["cost_usd"])
                parsed.tokens_in = as_int(line.get("tokens_in"))
                parsed.tokens_out = as_int(line.get("tokens_out"))
        return parsed

    def classify(self, result: RunResult, parsed: Parsed) -> Outcome:
        ending = classify_ending(result)
        if ending is not None:
            return ending
        return Outcome.OK if result.exit_code == 0 else Outcome.AGENT_ERROR


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("command", CommandBackend)
