"""The prompt never goes on a command line.

Any local user can read another process's argv (`ps`, /proc/PID/cmdline), and a task's text is
up to 100 KiB of somebody's code and logs. Every backend hands the CLI its prompt on stdin, or
(aider) names the prompt file, which is 0600 in the run directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor import agents
from shopfloor.agents import RunContext
from tests.agents.contexts import run_context

MARKER = "PROMPT-MARKER-7f3a9c"
#: Far past what one argv string may hold, so nothing could fall back to an argument.
BIG_PROMPT = f"You are the **Coder**. {MARKER}\n" + "task text line\n" * 12_000 + MARKER
#: The CLIs that read the prompt from a file Shopfloor names, by the flag that names it.
BY_FILE = {"aider": "--message-file"}


def context(backend: str, role: str, tmp: Path, prompt: str) -> RunContext:
    return run_context(backend, role, tmp / "repo", prompt, model="some-model", args=["--extra"])


CLI_BACKENDS = sorted(set(agents.available()) - {"command", "simulator"})


@pytest.mark.parametrize("role", ["pm", "coder", "qa", "hotfix"])
@pytest.mark.parametrize("backend", CLI_BACKENDS)
def test_no_backend_puts_the_prompt_in_argv_or_env(tmp_path: Path, backend: str, role: str) -> None:
    ctx = context(backend, role, tmp_path, BIG_PROMPT)
    invocation = agents.get(backend).build(ctx)
    assert not [a for a in invocation.argv if MARKER in a], invocation.argv[:3]
    assert not [k for k, v in invocation.env.items() if MARKER in v]
    if backend in BY_FILE:
        flag = invocation.argv.index(BY_FILE[backend])
        assert invocation.argv[flag + 1] == str(ctx.prompt_file)
        assert not invocation.stdin  # aider answers its own questions from a closed stdin
    else:
        assert invocation.stdin == BIG_PROMPT.encode()  # the whole prompt, verbatim
