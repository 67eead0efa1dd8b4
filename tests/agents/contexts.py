"""One `RunContext` for the tests that look at a backend's command line or parse its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopfloor.agents import RunContext
from shopfloor.config import AgentConfig


def run_context(
    backend: str,
    role: str,
    root: Path,
    prompt: str = "You are the **Coder**",
    *,
    run_id: str = "R-1",
    lane: str = "active",
    workdir: Path | None = None,
    **agent: Any,
) -> RunContext:
    """A run of task T-1 in the repository at `root`, laid out as the daemon lays it out."""
    run = root / ".shopfloor" / "runs" / run_id
    return RunContext(
        role=role,
        run_id=run_id,
        task_id="T-1",
        task_file=root / "tasks" / lane / "T-1.md",
        prompt_file=run / "prompt.md",
        result_file=run / "result.json",
        workdir=workdir or root,
        prompt=prompt,
        agent=AgentConfig(backend=backend, **agent),
    )
