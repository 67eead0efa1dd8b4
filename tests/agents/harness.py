"""Drive one real agent CLI through Shopfloor's own run contract against the model server.

`run_cli("claude", tmp_path, script, role="hotfix")` makes a project whose agent is the pinned
CLI, starts the scripted model server, and calls `shop.run_agent` — the same code path the
daemon takes — returning the judged run, the server (to inspect requests) and the repo root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shopfloor import actions, config
from shopfloor.board import Board, Entry
from shopfloor.journal import Journal
from shopfloor.shop import AgentRun, Shop, run_agent
from tests import clis
from tests.fakes.model_server import (
    Append,
    ModelServer,
    Script,
    ScriptFor,
    Shell,
    Write,
    result_block,
)
from tests.support import make_project

FIXED_APP = "def answer():\n    return 43\n"
#: The standard editing run: write code, append verification steps to the task, run a command.
FIX = Script(
    steps=(
        Write("{workdir}/app.py", FIXED_APP),
        Append(
            "{task_file}", "\n## Verification\n1. python -c 'import app; print(app.answer())'\n"
        ),
        Shell("echo checked > {workdir}/ran.txt"),
    ),
    final=result_block("ok", "answer fixed"),
)


@dataclass
class CliRun:
    run: AgentRun
    server: ModelServer
    root: Path
    entry: Entry

    @property
    def stdout(self) -> str:
        return (self.run.run_dir / "stdout.log").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.run.run_dir / "stderr.log").read_text(errors="replace")


def project_for(cli: str, tmp: Path, url: str, extra: str = "", **agent: object) -> Path:
    binary = clis.require(cli)
    env = clis.prepare(cli, tmp / "cli-home", url)
    table = {
        "backend": cli,
        "command": str(binary),
        "env": env,
        "stall": "60s",
        "timeout": "180s",
        **agent,
    }
    return make_project(tmp, agents={cli: table}, extra=extra)


def run_cli(
    cli: str,
    tmp: Path,
    script: Script | ScriptFor,
    role: str = "hotfix",
    extra: str = "",
    body: str = "answer() must return 43",
    **agent: object,
) -> CliRun:
    """`extra`: more shopfloor.toml (a [budget], say); `body`: the task's request; `agent`:
    the agent's own table."""
    with ModelServer(script) as server:
        root = project_for(cli, tmp, server.url, extra, **agent)
        run, entry = run_role(root, role, root, body)
        return CliRun(run, server, root, Board(root).find(entry.id))


def run_role(
    root: Path, role: str, workdir: Path, body: str = "answer() must return 43"
) -> tuple[AgentRun, Entry]:
    """One run of `role` through `run_agent`, for a fresh hotfix-shaped task, in `workdir`."""
    board = Board(root)
    entry = actions.create_hotfix(board, "Fix the answer", body=body)
    shop = Shop(root, config.load(root / "shopfloor.toml"), board, Journal.for_project(root))
    values = {"task_text": board.read_text(entry), "previous_attempt": "", "checks": "none"}
    return run_agent(shop, role, entry, workdir, values), entry


def coder_run_in_worktree(root: Path) -> tuple[AgentRun, Path]:
    """A Coder run in its own git worktree, as the pipeline gives it (the result file and the
    task file then lie outside its working directory)."""
    from shopfloor import gitops

    workdir = root / ".shopfloor" / "worktrees" / "coder"
    gitops.add_worktree(root, workdir, "shopfloor/coder")
    run, _ = run_role(root, "coder", workdir)
    return run, workdir


def assert_fixed(done: CliRun, app: str = FIXED_APP) -> tuple[int, int]:
    """A FIX run did all three things, its result was read, and the tokens the CLI reported
    are the ones the server sent; returns those tokens (in, out)."""
    from shopfloor.agents import Outcome

    assert done.run.outcome is Outcome.OK, done.stdout + done.stderr
    assert (done.root / "app.py").read_text().endswith(app)
    assert (done.root / "ran.txt").read_text().strip() == "checked"
    assert "## Verification" in done.entry.path.read_text()
    assert done.run.result["summary"] == "answer fixed"
    tokens = done.server.tokens()
    assert (done.run.parsed.tokens_in, done.run.parsed.tokens_out) == tokens
    return tokens
