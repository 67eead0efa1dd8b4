"""Tier (a): Claude Code's retry reports, which the scripted server provokes only slowly.

Claude waits out a 429's `retry-after` of up to 60 s itself, announcing each wait as a
`system`/`api_retry` event (recorded from the pinned version in test_retry_after_live.py);
that is the only place its output carries the server's retry time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from shopfloor.agents import Outcome
from shopfloor.agents.claude import ClaudeBackend
from shopfloor.runner import Ending, RunResult

RECORDED = Path(__file__).resolve().parent / "recorded" / "claude"


def api_retry(delay_ms: int, status: int = 429) -> str:
    event = {
        "type": "system",
        "subtype": "api_retry",
        "attempt": 1,
        "max_retries": 1,
        "retry_delay_ms": delay_ms,
        "error_status": status,
        "error": "rate_limit",
        "session_id": "s-1",
    }
    return json.dumps(event)


def limited_run(*events: str) -> str:
    """The recorded 429 run (retries off) with `events` before its final result."""
    lines = (RECORDED / "rate-429.stdout").read_text().splitlines()
    return "\n".join([*lines[:-1], *events, lines[-1]]) + "\n"


def test_a_429_after_announced_waits_resets_after_the_last_wait() -> None:
    parsed = ClaudeBackend().parse(limited_run(api_retry(5173), api_retry(22806)), "")
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at is not None and abs(parsed.reset_at - (time.time() + 22.806)) < 2


def test_a_429_with_no_announced_wait_leaves_the_pause_to_the_back_off() -> None:
    """Above 60 s claude gives up at once and says nothing of the time."""
    parsed = ClaudeBackend().parse(limited_run(api_retry(3000, status=529)), "")
    assert parsed.outcome is Outcome.RATE_LIMITED and parsed.reset_at is None


def test_stopped_while_waiting_to_retry_is_rate_limited_not_stalled() -> None:
    head = (RECORDED / "rate-429.stdout").read_text().splitlines()[0]  # the init event
    parsed = ClaudeBackend().parse(f"{head}\n{api_retry(45000)}\n", "")
    stalled = RunResult(Ending.STALLED, None, 15, 60.0, Path("o"), Path("e"), 0, 0, False, None)
    assert ClaudeBackend().classify(stalled, parsed) is Outcome.RATE_LIMITED
    assert parsed.reset_at is not None and abs(parsed.reset_at - (time.time() + 45)) < 2
    hung = ClaudeBackend().parse(f"{head}\n", "")
    assert ClaudeBackend().classify(stalled, hung) is Outcome.STALLED
