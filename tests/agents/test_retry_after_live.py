"""Live: a 429's `retry-after` sets how long the agent pauses, wherever the CLI reports it.

The scripted server answers every request with a 429 whose `retry-after` header says 120 s
(the OpenAI and Gemini bodies name the same wait, as those APIs do). A CLI that reports it
must pause its agent until ~120 s after the 429, not for the 60 s back-off Shopfloor falls
back on when a CLI says nothing. What each CLI reports is in docs/agents.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shopfloor.agents import Outcome
from shopfloor.journal import Journal
from tests import clis
from tests.agents.harness import CliRun, run_cli
from tests.fakes.model_server import Script

pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

RETRY_AFTER = 120.0
BACK_OFF = 60.0  # Shopfloor's first pause when the CLI gave no time (budget.backoff)
LIMITED = Script(fail="429", retry_after=str(int(RETRY_AFTER)))


def paused_for(done: CliRun, started: float) -> float:
    """How long after the run's start its agent is paused (checked against the journal)."""
    assert done.run.outcome is Outcome.RATE_LIMITED, done.stdout[-3000:] + done.stderr[-3000:]
    until = done.run.paused_until
    assert until is not None
    with Journal.for_project(done.root) as journal:
        assert journal.pauses()[done.run.agent][0] == pytest.approx(until)
    return until - started


def assert_about(seconds: float, expected: float, run_took: float) -> None:
    """The pause counts from the 429, which came somewhere within the run."""
    assert expected - 2 <= seconds <= expected + run_took + 2, (seconds, expected, run_took)


@pytest.mark.parametrize(
    ("cli", "agent"),
    [
        ("codex", {}),
        ("gemini", {}),  # "Suggested retry after 120s." (from the body's RetryInfo)
        ("pi", {}),  # the body's "try again in 120s"
        # It sleeps on retry-after itself (silently): the stall watchdog stops it meanwhile,
        # as soon as it may (test_opencode_live.STALL: longer than OpenCode's silent start).
        ("opencode", {"stall": "15s"}),
    ],
)
def test_the_pause_lasts_as_long_as_the_429_said(
    tmp_path: Path, cli: str, agent: dict[str, str]
) -> None:
    started = time.time()
    done = run_cli(cli, tmp_path, LIMITED, **agent)
    assert_about(paused_for(done, started), RETRY_AFTER, time.time() - started)


def test_codex_stopped_while_it_sleeps_on_retry_after_is_paused_until_then(
    tmp_path: Path,
) -> None:
    """With its own retries on (its default), codex sleeps out the 429 silently after a
    "Reconnecting..." event; the stall watchdog stops it; the logged header sets the pause."""
    provider = "model_providers.fake"
    retries = ["-c", f"{provider}.request_max_retries=3", "-c", f"{provider}.stream_max_retries=3"]
    started = time.time()
    done = run_cli("codex", tmp_path, LIMITED, stall="5s", args=retries)
    assert "Reconnecting..." in done.stdout
    assert_about(paused_for(done, started), RETRY_AFTER, time.time() - started)


def test_claude_says_nothing_of_a_long_retry_after_so_the_back_off_applies(
    tmp_path: Path,
) -> None:
    """Above 60 s Claude Code gives up at once and reports no time: the pause is the back-off."""
    started = time.time()
    done = run_cli("claude", tmp_path, LIMITED)
    assert done.run.parsed.reset_at is None
    # It never said it would wait: no `api_retry` event (the text "120" can be in any uuid).
    assert not [ln for ln in done.stdout.splitlines() if '"api_retry"' in ln], done.stdout[-2000:]
    assert_about(paused_for(done, started), BACK_OFF, time.time() - started)


def test_claude_that_waited_out_a_short_retry_after_pauses_for_that_wait(tmp_path: Path) -> None:
    """Up to 60 s it waits itself and says how long (`api_retry`); when it still fails, that
    wait is the pause. 5 s: far from both its own back-off (0.5 s) and ours (60 s)."""
    from tests.agents.harness import project_for, run_role
    from tests.fakes.model_server import ModelServer

    wait = 5
    with ModelServer(Script(fail="429", retry_after=str(wait))) as server:
        env = {**clis.prepare("claude", tmp_path / "cli-home", server.url)}
        env["CLAUDE_CODE_MAX_RETRIES"] = "1"
        root = project_for("claude", tmp_path, server.url, env=env)
        started = time.time()
        run, _ = run_role(root, "hotfix", root)
        returned = time.time()
    stdout = (run.run_dir / "stdout.log").read_text()
    assert '"subtype":"api_retry"' in stdout and len(server.requests) == 2
    assert run.outcome is Outcome.RATE_LIMITED and run.paused_until is not None
    # The pause is set when the output is read, a moment before run_role returns: `wait` s
    # from then — not the 60 s back-off, and never before the run began.
    pause = run.paused_until - returned
    assert started + wait <= run.paused_until and pause <= wait * 1.3 + 2, (
        pause,
        returned - started,
    )


def test_codex_that_gets_past_a_429_on_its_own_is_ok(tmp_path: Path) -> None:
    """Its "Reconnecting..." error event is not a failure when the turn then completes."""
    from tests.agents.harness import FIX

    answered: list[str] = []

    def first_limited(request: str) -> Script:
        answered.append(request)
        return Script(fail="429", retry_after="1") if len(answered) == 1 else FIX

    provider = "model_providers.fake"
    retries = ["-c", f"{provider}.request_max_retries=3", "-c", f"{provider}.stream_max_retries=3"]
    done = run_cli("codex", tmp_path, first_limited, args=retries)
    assert "Reconnecting..." in done.stdout
    assert done.run.outcome is Outcome.OK and done.run.paused_until is None
    assert (done.root / "app.py").read_text().endswith("return 43\n")
