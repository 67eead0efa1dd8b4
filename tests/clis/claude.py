"""Claude Code against the scripted model server (Anthropic Messages, SSE)."""

from __future__ import annotations

from pathlib import Path


def prepare(home: Path, url: str) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "fake",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "DISABLE_ERROR_REPORTING": "1",
    }


def _extra_cases() -> dict[str, object]:
    from tests.clis.record import Case
    from tests.fakes.model_server import Script, Shell, Write, result_block

    outside = Script(steps=(Write("/etc/shopfloor-denied.txt", "x\n"),), final=result_block())
    steps = tuple(Shell(f"echo {i} >> {{workdir}}/n.txt") for i in range(6))
    capped = (("args", ["--max-budget-usd", "0.01"]),)
    return {
        "denied-write": Case(outside, "permission-denied"),
        "over-budget": Case(Script(steps, result_block()), "over-budget", "coder", capped),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
