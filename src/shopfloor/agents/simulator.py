"""The `simulator` backend: a scripted stand-in agent for demos and tests. NOT an AI.

It runs `python -m shopfloor.agents._simulator_agent` under the run contract. It follows
instructions written for it in the task file (```sim-patch path=FILE``` blocks), so a demo
shows a real spec, a real code change, real checks and a real verdict without an API key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from shopfloor.agents import Backend, Invocation, RunContext
from shopfloor.agents.command import CommandBackend


class SimulatorBackend(CommandBackend):
    name = "simulator"

    def build(self, ctx: RunContext) -> Invocation:
        return Invocation([sys.executable, "-m", "shopfloor.agents._simulator_agent"])


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    register("simulator", SimulatorBackend)
