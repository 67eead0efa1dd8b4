"""Agent backends: how to start one CLI headless, read its output, and judge the outcome.

A backend is a small protocol (build the command, parse the output, classify the outcome);
only the runner spawns processes. Backends register by name: the built-in ones are loaded
from this package, third-party ones through the `shopfloor.backends` entry-point group, so
the core never branches on a backend's name.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shopfloor.errors import ConfigError

if TYPE_CHECKING:
    from shopfloor.config import AgentConfig
    from shopfloor.runner import RunResult


class Outcome(StrEnum):
    """How a run ended, judged from its output, never from the exit code alone."""

    OK = "ok"
    AGENT_ERROR = "agent-error"
    AUTH_ERROR = "auth-error"
    RATE_LIMITED = "rate-limited"
    PERMISSION_DENIED = "permission-denied"
    TIMED_OUT = "timed-out"
    STALLED = "stalled"
    CRASHED = "crashed"
    NOT_INSTALLED = "not-installed"
    STOPPED = "stopped"
    OVER_BUDGET = "over-budget"
    #: The agent cannot act on the task as written (the simulator without a sim-patch block):
    #: a person must add what it needs, or give the task to a real agent.
    CANNOT_ACT = "cannot-act"


#: Outcomes that say nothing about the task: they must not burn one of its attempts.
NOT_THE_TASKS_FAULT = frozenset(
    {
        Outcome.AUTH_ERROR,
        Outcome.RATE_LIMITED,
        Outcome.NOT_INSTALLED,
        Outcome.STOPPED,
        Outcome.OVER_BUDGET,
        Outcome.CANNOT_ACT,
    }
)


@dataclass(frozen=True)
class RunContext:
    """Everything a backend may put on a command line for one run."""

    role: str
    run_id: str
    task_id: str
    task_file: Path
    prompt_file: Path
    result_file: Path
    workdir: Path
    prompt: str
    agent: AgentConfig
    budget_usd: float | None = None  # what this run may still spend (CLIs that can cap it)

    def placeholders(self) -> dict[str, str]:
        return {
            "prompt_file": str(self.prompt_file),
            "result_file": str(self.result_file),
            "task_file": str(self.task_file),
            "role": self.role,
            "workdir": str(self.workdir),
            "task_id": self.task_id,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None


@dataclass
class Parsed:
    """What a backend read from the CLI's machine output."""

    final_text: str = ""
    session_id: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    outcome: Outcome | None = None  # set when the output itself says how it went
    reset_at: float | None = None  # rate limits: when the agent may be used again (epoch s)


class Backend(Protocol):
    name: str

    def build(self, ctx: RunContext) -> Invocation:
        """The argv (no shell) and extra environment for one headless run."""
        ...

    def parse(self, stdout: str, stderr: str) -> Parsed:
        """Read the CLI's output: final text, session, tokens, cost, errors."""
        ...

    def classify(self, result: RunResult, parsed: Parsed) -> Outcome:
        """Judge the run; exit codes lie, so the output decides where it can."""
        ...


BackendFactory = Callable[[], Backend]
_BUILTINS = ("command", "simulator", "claude", "codex", "gemini", "opencode", "pi", "qwen", "aider")
#: The published registry: None until it is complete, then replaced whole, never filled in
#: place — a reader that sees a table sees every backend (two jobs of a fresh daemon, or
#: `doctor`'s threads, load it at once; a half-filled table said "unknown backend 'claude'").
_registry: dict[str, BackendFactory] | None = None
#: Backends registered by a direct call of `register`, kept so the first load includes them.
_registered: dict[str, BackendFactory] = {}
#: Serialises loading and publishing. Re-entrant: a plugin may call `register` while loading.
_lock = threading.RLock()


def register(name: str, factory: BackendFactory) -> None:
    """Make a backend available under `name` (what `backend = "..."` in config refers to)."""
    global _registry
    with _lock:
        _registered[name] = factory
        if _registry is not None:
            _registry = {**_registry, name: factory}


def _load() -> dict[str, BackendFactory]:
    """The registry, built completely on first use and only then published (double-checked)."""
    global _registry
    table = _registry
    if table is not None:
        return table
    with _lock:
        if _registry is None:
            _registry = _build()
        return _registry


def _build() -> dict[str, BackendFactory]:
    built: dict[str, BackendFactory] = {}
    for module in _BUILTINS:
        importlib.import_module(f"shopfloor.agents.{module}").register_backends(built.__setitem__)
    from importlib.metadata import entry_points  # slow to import; only when backends load

    for point in entry_points(group="shopfloor.backends"):
        point.load()(built.__setitem__)
    return {**built, **_registered}


def available() -> list[str]:
    return sorted(_load())


def get(name: str) -> Backend:
    try:
        factory = _load()[name]
    except KeyError:
        raise ConfigError(
            f"unknown agent backend {name!r} (available: {', '.join(available())})"
        ) from None
    return factory()


def classify_ending(result: RunResult) -> Outcome | None:
    """The outcomes every backend shares: how the process ended, before any output is read."""
    from shopfloor.runner import Ending

    by_ending = {
        Ending.TIMED_OUT: Outcome.TIMED_OUT,
        Ending.STALLED: Outcome.STALLED,
        Ending.STOPPED: Outcome.STOPPED,
        Ending.FAILED_TO_START: Outcome.NOT_INSTALLED,
    }
    if result.ending in by_ending:
        return by_ending[result.ending]
    if result.signal is not None or (result.exit_code is not None and result.exit_code < 0):
        return Outcome.CRASHED
    return None
