"""`shopfloor init`: lanes, a commented shopfloor.toml for the agent CLIs found, .gitignore."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from shopfloor import _fs, config_check, defaults, gitops
from shopfloor.board import Lane
from shopfloor.errors import NotAProjectError
from shopfloor.paths import StatePaths

#: Agent CLIs `init` looks for on PATH, in the order they are preferred for the roles.
KNOWN_CLIS: tuple[tuple[str, str], ...] = (
    ("claude", "claude"),
    ("codex", "codex"),
    ("gemini", "gemini"),
    ("opencode", "opencode"),
    ("qwen", "qwen"),
    ("pi", "pi"),
    ("aider", "aider"),
)

GITIGNORE_BLOCK = """\
# shopfloor: run logs, the journal and locks stay on this machine
/.shopfloor/*
!/.shopfloor/roles/
"""

_AGENT_TEMPLATE = """\
[agents.{name}]
backend = "{backend}"{backend_note}
command = "{command}"{command_note}
args = []                     # extra arguments
model = ""                    # optional: the model the CLI should use
env = {{}}                      # extra environment, e.g. a base URL
timeout = "30m"               # hard limit per run
stall = "5m"                  # no output for this long = stalled
"""

_SIMULATOR = """\
# No agent CLI was found on PATH, so the built-in simulator plays every role. It is a scripted
# stand-in for demos and tests, not an AI. Install e.g. Claude Code or Codex CLI, then add:
#   [agents.claude]
#   backend = "claude"
#   command = "claude"
[agents.simulator]
backend = "simulator"
"""

_REST = """\
[roles]                       # which agent plays each role
pm = "{agent}"
coder = "{agent}"
qa = "{agent}"
hotfix = "{agent}"

[pipeline]
checks = {checks}{checks_note}
max_attempts = 3
concurrency = {{ pm = 1, coder = 2, qa = 1 }}   # the hotfix lane ignores these
require_approval = false      # true: a spec waits for `shopfloor approve ID` before coding
land = "none"                 # "merge": merge a done task's branch when the main tree is clean

# Notifications and phone control (secrets come from the environment, never this file):
# [notify.telegram]
# token_env = "SHOPFLOOR_TELEGRAM_TOKEN"
# chat_ids = [123456789]      # the allowlist, for notifications and commands
"""


_COMMAND_NOTE = "           # the binary: a name on PATH or a path"


@dataclass
class InitReport:
    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)


def detect_agents() -> list[str]:
    """Agent CLIs on PATH."""
    return [name for name, binary in KNOWN_CLIS if shutil.which(binary)]


def detect_checks(root: Path) -> list[str]:
    """The project's test command, guessed from the files it has."""
    if any((root / f).exists() for f in ("pyproject.toml", "setup.py", "pytest.ini", "tests")):
        return ["python -m pytest -q"]
    for marker, command in (
        ("package.json", "npm test"),
        ("Cargo.toml", "cargo test"),
        ("go.mod", "go test ./..."),
        ("Makefile", "make test"),
    ):
        if (root / marker).exists():
            return [command]
    return []


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def render_config(agents: list[str], checks: list[str]) -> str:
    parts = [
        "# Shopfloor configuration. See README.md (Configuration) and docs/agents.md.\n"
        "# Secrets never go in this file: name an environment variable instead (token_env).\n"
        "# `shopfloor doctor` checks that every agent below can run here.\n\n"
    ]
    if agents:
        parts.append("# Agent CLIs found on PATH by `shopfloor init`. Add or remove freely.\n")
        for i, name in enumerate(agents):
            first = i == 0
            parts.append(
                _AGENT_TEMPLATE.format(
                    name=name,
                    backend=name,
                    command=name,
                    backend_note=(
                        "           # claude codex gemini opencode pi qwen aider command"
                        if first
                        else ""
                    ),
                    command_note="           # the binary: a name on PATH or a path"
                    if first
                    else "",
                )
                + "\n"
            )
    else:
        parts.append(_SIMULATOR + "\n")
    note = "run by the orchestrator itself, split like a shell but never run by one"
    parts.append(
        _REST.format(
            agent=agents[0] if agents else "simulator",
            checks=_toml_list(checks),
            checks_note=f"  # {note}" + ("" if checks else "; add your test commands"),
        )
    )
    return "".join(parts)


def _ensure_gitignore(root: Path, report: InitReport) -> None:
    path = root / ".gitignore"
    current = path.read_text("utf-8") if path.exists() else ""
    if "/.shopfloor/*" in current:
        report.kept.append(".gitignore")
        return
    sep = "" if not current or current.endswith("\n") else "\n"
    _fs.atomic_write(path, f"{current}{sep}{GITIGNORE_BLOCK}")
    report.created.append(".gitignore entry")


def init(path: Path, agents: list[str] | None = None) -> InitReport:
    """Scaffold a project at the top of the git repository containing `path`; idempotent."""
    root = gitops.toplevel(path)
    if root is None:
        raise NotAProjectError(
            f"{path} is not inside a git repository; run `git init` first "
            "(Shopfloor keeps its board in git)"
        )
    report = InitReport(root)
    for lane in Lane:
        lane_dir = root / defaults.TASKS_DIR / lane.value
        keep = lane_dir / ".gitkeep"
        if keep.exists():
            continue
        lane_dir.mkdir(parents=True, exist_ok=True)
        keep.touch()
        report.created.append(f"{defaults.TASKS_DIR}/{lane.value}/")
    StatePaths(root).ensure()  # private (0700): prompts, agent output and spend live there
    config_path = root / defaults.CONFIG_FILE
    report.agents = detect_agents() if agents is None else agents
    if config_path.exists():
        report.kept.append(defaults.CONFIG_FILE)
    else:
        text = render_config(report.agents, detect_checks(root))
        try:
            _fs.create_exclusive(config_path, text)
            report.created.append(defaults.CONFIG_FILE)
        except FileExistsError:
            report.kept.append(defaults.CONFIG_FILE)
    _ensure_gitignore(root, report)
    if defaults.CONFIG_FILE in report.created:
        # The verdict on the new config, so that `status` need not load the validator (a
        # second init changes no byte: a kept config is judged by the first `status`).
        config_check.config_error(root, config_path)
    return report
