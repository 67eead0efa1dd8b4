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
