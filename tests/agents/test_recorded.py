"""Tier (a): every backend's parser and classifier on real recorded output of its CLI.

The recordings in `tests/agents/recorded/<cli>/` were made by `python -m tests.clis.record`
from real runs of the pinned CLI (ok, QA verdict, 401, 429, 500, and each CLI's own lies).
Each `<case>.json` holds the exit code and the outcome the case must be classified as.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor import agents
from shopfloor.agents import Outcome
from shopfloor.runner import Ending, RunResult

RECORDED = Path(__file__).resolve().parent / "recorded"
CASES = sorted(RECORDED.glob("*/*.json"))


def judge(case: Path) -> tuple[agents.Parsed, Outcome]:
    meta = json.loads(case.read_text())
    stdout, stderr = case.with_suffix(".stdout"), case.with_suffix(".stderr")
    backend = agents.get(case.parent.name)
    result = RunResult(
        Ending.EXITED,
        meta["exit_code"],
        None,
        1.0,
        stdout,
        stderr,
        stdout.stat().st_size,
        stderr.stat().st_size,
        False,
        None,
    )
    parsed = backend.parse(stdout.read_text(), stderr.read_text())
    return parsed, backend.classify(result, parsed)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recorded_output_is_classified_as_recorded(case: Path) -> None:
    parsed, outcome = judge(case)
    assert outcome.value == json.loads(case.read_text())["expect"], parsed


@pytest.mark.parametrize("case", [c for c in CASES if c.stem == "ok"], ids=lambda p: p.parent.name)
def test_a_successful_run_yields_the_final_text_with_the_result_block(case: Path) -> None:
    parsed, _ = judge(case)
    assert '"outcome": "ok"' in parsed.final_text and "```json" in parsed.final_text


def test_every_cli_backend_has_recordings() -> None:
    recorded = {p.parent.name for p in CASES}
    cli_backends = set(agents.available()) - {"command", "simulator"}
    assert cli_backends <= recorded, cli_backends - recorded


#: What each CLI's recorded 429 (`retry-after: 30`, and "30s" in the OpenAI/Gemini bodies)
#: reports of the wait. Claude says nothing (docs/agents.md); codex logs the header with the
#: moment it came; the others word it in their error message.
REPORTED_WAIT = {"claude": None, "codex": 30.0, "gemini": 30.0, "opencode": 30.0, "pi": 30.0}
REPORTED_WAIT |= {"qwen": 30.0, "aider": 30.0}


@pytest.mark.parametrize("cli", sorted(REPORTED_WAIT))
def test_a_recorded_429_resets_when_its_cli_said(cli: str) -> None:
    import re
    import time
    from datetime import datetime

    case = RECORDED / cli / "rate-429.json"
    parsed, outcome = judge(case)
    assert outcome is Outcome.RATE_LIMITED
    wait = REPORTED_WAIT[cli]
    if wait is None:
        assert parsed.reset_at is None
        return
    logged = re.search(r"^(\S+Z) DEBUG .*status=429", case.with_suffix(".stderr").read_text(), re.M)
    since = datetime.fromisoformat(logged.group(1)).timestamp() if logged else time.time()
    assert parsed.reset_at == pytest.approx(since + wait, abs=2)
