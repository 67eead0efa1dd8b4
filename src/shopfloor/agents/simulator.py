"""The `simulator` backend: a scripted stand-in agent for demos and tests. NOT an AI.

It runs `python -m shopfloor.agents._simulator_agent` under the run contract. It follows
instructions written for it in the task file (```sim-patch path=FILE``` blocks, documented in
docs/simulator.md), so a demo shows a real spec, a real code change, real checks and a real
verdict without an API key. A coder run with no block to apply ends `cannot-act`: the task
waits for a person, no attempt used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from shopfloor.agents import Backend, Invocation, Outcome, Parsed, RunContext, classify_ending
from shopfloor.agents._cli import json_lines
from shopfloor.agents.command import CommandBackend

if TYPE_CHECKING:
    from shopfloor.runner import RunResult


class SimulatorBackend(CommandBackend):
    name = "simulator"

    def build(self, ctx: RunContext) -> Invocation:
        return Invocation([sys.executable, "-m", "shopfloor.agents._simulator_agent"])

    def parse(self, stdout: str, stderr: str) -> Parsed:
        parsed = super().parse(stdout, stderr)
        if any(line.get("cannot_act") for line in json_lines(stdout)):
            parsed.outcome = Outcome.CANNOT_ACT  # no sim-patch block: a person must add one
        return parsed

    def classify(self, result: RunResult, parsed: Parsed) -> Outcome:
        ending = classify_ending(result)
        if ending is None and parsed.outcome is not None:
            return parsed.outcome
        return super().classify(result, parsed)


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("simulator", SimulatorBackend)
