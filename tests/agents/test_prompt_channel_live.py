"""Live: each real CLI gets its prompt from Shopfloor, yet no process ever shows it in argv.

While the model server answers a request the CLI is running, so at that moment every command
line on the machine (/proc/PID/cmdline, what `ps` shows any local user) is searched for a
marker that exists only in the task's text. A short prompt would fit in an argument; a long
one (past 100 KiB) used to be replaced by a pointer to the prompt file — both must reach the
model whole.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psutil
import pytest

from shopfloor.agents import Outcome
from tests.agents.harness import run_cli
from tests.fakes.model_server import Script, result_block

pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

LOG_LINE = "A line of the incident log the human pasted into the hotfix request.\n"
CLIS = ["claude", "codex", "gemini", "qwen", "pi", "opencode", "aider"]
#: (cli, log lines in the request): every CLI with a long request, claude and codex short too.
CASES = [(cli, 1700) for cli in CLIS] + [("claude", 3), ("codex", 3)]


def command_lines_holding(marker: str) -> list[str]:
    """The command lines of running processes that contain `marker`."""
    hits = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(marker in arg for arg in cmdline):
            hits.append(f"{proc.info['pid']}: {' '.join(cmdline)[:200]}")
    return hits


@pytest.mark.parametrize(("cli", "lines"), CASES)
def test_the_model_gets_the_prompt_and_no_command_line_shows_it(
    tmp_path: Path, cli: str, lines: int
) -> None:
    marker = f"SECRET-{uuid.uuid4().hex}"
    scans: list[list[str]] = []

    def answer(request: str) -> Script:
        scans.append(command_lines_holding(marker))  # the CLI is running right now
        return Script(final=result_block("ok", "read the request"))

    body = f"The error code is {marker}.\n\n{LOG_LINE * lines}\nAgain: {marker}\n"
    done = run_cli(cli, tmp_path, answer, body=body)
    assert done.run.outcome is Outcome.OK, done.stdout[-2000:] + done.stderr[-2000:]
    received = [json.dumps(r.body) for r in done.server.requests]
    assert any(r.count(marker) >= 2 for r in received), "the whole request reached the model"
    assert scans and not any(scans), scans
