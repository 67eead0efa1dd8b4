"""`shopfloor init`: lanes, a commented shopfloor.toml for the agent CLIs found, .gitignore."""

from __future__ import annotations

import json
import re
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
# DEMO AGENT. No agent CLI was found on PATH, so the built-in simulator plays every role. It is
# a scripted stand-in, not an AI: it only writes files that a task spells out in ```sim-patch```
# blocks (docs/simulator.md); a request without one waits for you, parked, no attempt used.
# For real work install an agent CLI (`shopfloor doctor` then checks it), for example
{installs}
# then add it here and name it in [roles] below:
#   [agents.claude]
#   backend = "claude"
#   command = "claude"
[agents.simulator]
backend = "simulator"             # the demo agent (scripted, not an AI)
"""

#: Install commands shown when no agent CLI is found: the first few of doctor's pins.
_SUGGESTED = ("claude", "codex", "gemini")

_REST = """\
[roles]                       # which agent plays each role{roles_note}
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
    #: The checks written into a new shopfloor.toml (None: the config was kept as it was).
    checks: list[Check] | None = None


def detect_agents() -> list[str]:
    """Agent CLIs on PATH."""
    return [name for name, binary in KNOWN_CLIS if shutil.which(binary)]


@dataclass(frozen=True)
class Check:
    """A test command `init` chose, and what it saw that made it choose it."""

    command: str
    reason: str


_PYTEST_CONFIG = (
    ("pytest.ini", ""),
    ("conftest.py", ""),
    ("pyproject.toml", "[tool.pytest"),
    ("setup.cfg", "[tool:pytest]"),
    ("tox.ini", "[pytest]"),
)
#: npm's placeholder `test` script: not a test suite.
_NPM_PLACEHOLDER = "no test specified"
_MAKE_TEST = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
_MAX_SCANNED = 200  # test files read for their imports: enough to judge, bounded on big repos


def detect_checks(root: Path) -> list[str]:
    """The project's test commands, guessed from the files it has."""
    return [check.command for check in find_checks(root)]


def find_checks(root: Path) -> list[Check]:
    """One test command per kind of project found (Python, Node, Go, Rust); a Makefile `test`
    target only when nothing more specific is found (it may do much more than test)."""
    found = [
        c for c in (_python_check(root), _npm_check(root), _go_check(root), _cargo_check(root)) if c
    ]
    return found or [c for c in (_make_check(root),) if c]


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


def _python_test_files(root: Path) -> list[Path]:
    """test_*.py and *_test.py at the top and under tests/ (or test/)."""
    files: list[Path] = []
    for folder, pattern in (
        (root, "*.py"),
        (root / "tests", "**/*.py"),
        (root / "test", "**/*.py"),
    ):
        if folder.is_dir():
            files += sorted(
                p
                for p in folder.glob(pattern)
                if p.name.startswith("test_") or p.name.endswith("_test.py")
            )
    return files[:_MAX_SCANNED]


def _python() -> str:
    """`python`, or `python3` where only that is on PATH (Debian without python-is-python3)."""
    return "python" if shutil.which("python") or not shutil.which("python3") else "python3"


def _python_check(root: Path) -> Check | None:
    configured = [
        name
        for name, marker in _PYTEST_CONFIG
        if marker in _read(root / name) and (root / name).is_file()
    ]
    if configured:
        return Check(f"{_python()} -m pytest -q", f"pytest configured in {configured[0]}")
    tests = _python_test_files(root)
    if not tests:
        return None
    where = _where(root, tests)
    texts = [_read(p) for p in tests]
    if any(re.search(r"^\s*(import|from)\s+pytest\b", t, re.MULTILINE) for t in texts):
        return Check(f"{_python()} -m pytest -q", f"test files import pytest ({where})")
    if all(re.search(r"^\s*(import|from)\s+unittest\b", t, re.MULTILINE) for t in texts):
        return Check(_unittest_command(root, tests), f"unittest test files ({where})")
    return Check(f"{_python()} -m pytest -q", f"Python test files ({where})")


def _where(root: Path, tests: list[Path]) -> str:
    first = tests[0].relative_to(root).as_posix()
    return first if len(tests) == 1 else f"{first} and {len(tests) - 1} more"


def _unittest_command(root: Path, tests: list[Path]) -> str:
    """unittest discovers only test*.py, only in packages below its start folder."""
    command = f"{_python()} -m unittest"
    folders = {p.parent for p in tests}
    start = next(iter(folders)) if len(folders) == 1 else root
    args = []
    if start != root and not (start / "__init__.py").exists():
        args += ["-s", start.relative_to(root).as_posix()]
    if not all(p.name.startswith("test") for p in tests):
        args += ["-p", "'*_test.py'"]
    return f"{command} discover {' '.join(args)}" if args else command


def _npm_check(root: Path) -> Check | None:
    try:
        scripts = json.loads(_read(root / "package.json") or "{}").get("scripts") or {}
    except (json.JSONDecodeError, AttributeError):
        return None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or _NPM_PLACEHOLDER in script:
        return None
    return Check("npm test", f"package.json has a test script ({script[:40]})")


def _go_check(root: Path) -> Check | None:
    return Check("go test ./...", "go.mod") if (root / "go.mod").is_file() else None


def _cargo_check(root: Path) -> Check | None:
    return Check("cargo test", "Cargo.toml") if (root / "Cargo.toml").is_file() else None


def _make_check(root: Path) -> Check | None:
    for name in ("GNUmakefile", "makefile", "Makefile"):
        if _MAKE_TEST.search(_read(root / name)):
            return Check("make test", f"{name} has a test target")
    return None


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
        installs = "\n".join(f"#   {command}" for command in install_commands())
        parts.append(_SIMULATOR.format(installs=installs) + "\n")
    note = "run by the orchestrator itself, split like a shell but never run by one"
    parts.append(
        _REST.format(
            roles_note="" if agents else " (for now: the demo simulator)",
            agent=agents[0] if agents else "simulator",
            checks=_toml_list(checks),
            checks_note=f"  # {note}" + ("" if checks else "; add your test commands"),
        )
    )
    return "".join(parts)


def summary(report: InitReport) -> list[str]:
    """What `init` tells a person about the agents and checks it chose."""
    if report.agents or report.checks is None:  # a kept config says who plays the roles
        lines = [f"agent CLIs on PATH: {', '.join(report.agents) or 'none'}"]
    else:
        lines = [
            "agent CLIs on PATH: none. Until you install one, the built-in simulator plays every",
            "  role: a demo agent (scripted, not an AI) that only applies the sim-patch blocks a",
            "  task spells out (docs/simulator.md); other requests wait for you. Install e.g.:",
            *(f"    {command}" for command in install_commands()),
            "  then add it to shopfloor.toml ([agents] and [roles]); `shopfloor doctor` checks it.",
        ]
    if report.checks is None:
        return lines
    if not report.checks:
        return [
            *lines,
            "checks: none found (no pytest, unittest, npm, go, cargo or make test set-up);",
            "  add your test commands to [pipeline] checks in shopfloor.toml",
        ]
    return [*lines, *(f"checks: {c.command}  ({c.reason})" for c in report.checks)]


def install_commands() -> list[str]:
    """How to install the agent CLIs Shopfloor suggests first (doctor's tested versions)."""
    from shopfloor import doctor  # loads the agent backends: only `init` needs it

    return [c for c in (doctor.install_command(name) for name in _SUGGESTED) if c]


def _ensure_gitignore(root: Path, report: InitReport) -> None:
    path = root / ".gitignore"
    current = path.read_text("utf-8") if path.exists() else ""
    if "/.shopfloor/*" in current:
        report.kept.append(".gitignore")
        return
    sep = "" if not current or current.endswith("\n") else "\n"
    _fs.atomic_write(path, f"{current}{sep}{GITIGNORE_BLOCK}")
    report.created.append(".gitignore entry")


def _remember_branch(root: Path) -> None:
    """The branch checked out now is where the merge queue lands by default (`land_target`);
    kept from the first init on (a second init on another branch changes nothing)."""
    target = StatePaths(root).land_target
    branch = gitops.current_branch(root)
    if branch and not target.exists():
        _fs.atomic_write(target, f"{branch}\n")


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
    _remember_branch(root)
    config_path = root / defaults.CONFIG_FILE
    report.agents = detect_agents() if agents is None else agents
    if config_path.exists():
        report.kept.append(defaults.CONFIG_FILE)
    else:
        checks = find_checks(root)
        text = render_config(report.agents, [c.command for c in checks])
        try:
            _fs.create_exclusive(config_path, text)
            report.created.append(defaults.CONFIG_FILE)
            report.checks = checks
        except FileExistsError:
            report.kept.append(defaults.CONFIG_FILE)
    _ensure_gitignore(root, report)
    if defaults.CONFIG_FILE in report.created:
        # The verdict on the new config, so that `status` need not load the validator (a
        # second init changes no byte: a kept config is judged by the first `status`).
        config_check.config_error(root, config_path)
    return report
