"""`shopfloor doctor`: can every configured agent actually run here?

For each agent in shopfloor.toml: is its backend known, is its binary found, which version is
it (and is that a version Shopfloor is tested with), and do credentials appear to be set up.
Every problem comes with the command or setting that fixes it. Credentials are only looked
for (environment variables and the files each CLI's own login writes), never read or printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import agents
from shopfloor.agents.versions import PINS, TESTED
from shopfloor.config import ROLES, AgentConfig, Config
from shopfloor.errors import ConfigError
from shopfloor.shop import agent_environment

_VERSION = re.compile(r"\d+\.\d+\.\d+")
_VERSION_TIMEOUT = 20.0

#: backend -> (environment variables, files under HOME) that show a login or key exists,
#: and how to log in.
CREDENTIALS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "claude": (
        ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
         "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"),
        (".claude/.credentials.json",),
        "run `claude` once and /login, or set ANTHROPIC_API_KEY",
    ),
    "codex": (
        ("OPENAI_API_KEY", "CODEX_API_KEY"),
        (".codex/auth.json",),
        "run `codex login`, or set OPENAI_API_KEY",
    ),
    "gemini": (
        ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
         "GOOGLE_APPLICATION_CREDENTIALS"),
        (".gemini/oauth_creds.json",),
        "run `gemini` once to sign in, or set GEMINI_API_KEY",
    ),
    "opencode": (
        ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY",
         "OPENCODE_CONFIG_CONTENT"),
        (".local/share/opencode/auth.json",),
        "run `opencode auth login`, or set a provider key such as ANTHROPIC_API_KEY",
    ),
    "pi": (
        ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"),
        (".pi/agent/auth.json", ".pi/agent/models.json"),
        "run `pi` once and /login, or set a provider key such as ANTHROPIC_API_KEY",
    ),
    "qwen": (
        ("OPENAI_API_KEY", "DASHSCOPE_API_KEY"),
        (".qwen/oauth_creds.json",),
        "run `qwen` once to sign in, or set OPENAI_API_KEY with OPENAI_BASE_URL",
    ),
    "aider": (
        ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
         "OPENROUTER_API_KEY"),
        (".aider.conf.yml",),
        "set the key for your model, e.g. OPENAI_API_KEY or ANTHROPIC_API_KEY",
    ),
}  # fmt: skip


@dataclass
class AgentCheck:
    """What doctor found for one configured agent."""

    agent: str
    backend: str
    roles: list[str]
    binary: str | None = None
    version: str | None = None
    tested_version: str | None = None
    credentials: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_all(config: Config) -> list[AgentCheck]:
    """Check every configured agent (in parallel: each CLI takes a moment to start)."""
    names = sorted(config.agents)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        return list(pool.map(lambda n: check_agent(config, n), names))


def check_agent(config: Config, name: str) -> AgentCheck:
    agent = config.agents[name]
    # The environment a run of this agent gets: its own env table, the daemon's secrets removed.
    env = agent_environment(config, agent.env)
    roles = [role for role in ROLES if getattr(config.roles, role) == name]
    check = AgentCheck(name, agent.backend, roles, tested_version=TESTED.get(agent.backend))
    try:
        agents.get(agent.backend)
    except ConfigError as exc:
        check.errors.append(f"{exc}; upgrade shopfloor or choose another backend")
        return check
    if agent.backend == "simulator":
        check.warnings.append("the simulator is a scripted stand-in for demos, not an AI")
        return check
    check.binary = find_binary(agent, env)
    if check.binary is None:
        check.errors.append(f"{binary_name(agent)!r} not found on PATH; {_install_hint(agent)}")
        return check
    if agent.backend == "command":
        return check
    _check_version(check, agent, env)
    _check_credentials(check, agent, env)
    return check


def binary_name(agent: AgentConfig) -> str:
    command = agent.command
    if isinstance(command, list):
        return command[0]
    return command or agent.backend


def find_binary(agent: AgentConfig, env: Mapping[str, str]) -> str | None:
    name = binary_name(agent)
    path = {**env, **agent.env}.get("PATH")  # the agent's own env table may set PATH
    return shutil.which(name, path=path)


def install_command(backend: str) -> str | None:
    """The command that installs the tested version of a backend's CLI (None: not a CLI)."""
    pin = next((p for p in PINS if p.cli == backend), None)
    if pin is None:
        return None
    if pin.registry == "pypi":
        return f"pipx install {pin.package}=={pin.version}"
    return f"npm install -g {pin.package}@{pin.version}"


def _install_hint(agent: AgentConfig) -> str:
    command = install_command(agent.backend)
    return f"install it: {command}" if command else "check `command` in shopfloor.toml"


def _check_version(check: AgentCheck, agent: AgentConfig, env: dict[str, str]) -> None:
    assert check.binary is not None
    try:
        proc = subprocess.run(
            [check.binary, "--version"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        check.errors.append(f"`{check.binary} --version` failed: {exc}")
        return
    found = _VERSION.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 or found is None:
        tail = " ".join((proc.stderr or proc.stdout).split())[:200]
        check.errors.append(f"`{check.binary} --version` exited {proc.returncode}: {tail}")
        return
    check.version = found.group(0)
    if check.tested_version and check.version != check.tested_version:
        check.warnings.append(
            f"version {check.version} is not the tested {check.tested_version}; it may work "
            f"(flags drift between releases) — {_install_hint(agent)} to be sure"
        )


def _check_credentials(check: AgentCheck, agent: AgentConfig, env: dict[str, str]) -> None:
    names, files, advice = CREDENTIALS.get(agent.backend, ((), (), ""))
    found = [n for n in names if env.get(n)]
    home = Path(env.get("HOME") or Path.home())
    codex_home = env.get("CODEX_HOME")
    paths = [home / f for f in files]
    if codex_home:
        paths.append(Path(codex_home) / "auth.json")
    found += [str(p) for p in paths if p.is_file()]
    if found:
        check.credentials = ", ".join(found)
    else:
        check.warnings.append(f"no credentials found; {advice}")


def role_problems(checks: list[AgentCheck]) -> list[AgentCheck]:
    """The agent checks that would stop a role from running."""
    return [c for c in checks if c.roles and not c.ok]


@dataclass
class RoleCheck:
    """Which agent plays a role, whether shopfloor.toml said so, and whether it can."""

    role: str
    agent: str
    configured: bool  # named in [roles]; False: the built-in default
    defined: bool  # shopfloor.toml has [agents.<agent>]
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_roles(config: Config, checks: list[AgentCheck]) -> list[RoleCheck]:
    """Every role: its agent, set or defaulted, and why it cannot run (None when it can)."""
    by_name = {c.agent: c for c in checks}
    result = []
    for role in ROLES:
        name = getattr(config.roles, role)
        row = RoleCheck(role, name, config.role_is_set(role), name in config.agents)
        if not row.defined:
            said = (
                f"roles.{role} = {name!r}"
                if row.configured
                else f"roles.{role} is not set and its default is the agent {name!r}"
            )
            row.problem = (
                f"{said}, but shopfloor.toml has no [agents.{name}]: the daemon will not start"
            )
        elif not by_name[name].ok:
            row.problem = f"the agent {name!r} cannot run: " + "; ".join(by_name[name].errors)
        result.append(row)
    return result


def advice(config: Config, roles: list[RoleCheck]) -> list[str]:
    """What to do about roles that have no agent: `init`, or the table to add."""
    if all(r.defined for r in roles):
        return []
    from shopfloor import scaffold

    lines = []
    if not config.agents:
        lines.append(
            "shopfloor.toml defines no agents, so no role can run. `shopfloor init` writes a "
            "working one for the agent CLIs on PATH (it keeps an existing file: move this one "
            "aside first), or add an [agents.NAME] table with a backend and set [roles]"
        )
    for name in sorted({r.agent for r in roles if not r.defined}):
        if install_command(name):
            lines.append(f'add [agents.{name}] with backend = "{name}" (docs/agents.md)')
        else:
            lines.append(
                f"define [agents.{name}] (backend, command: docs/agents.md) or name another "
                "agent in [roles]"
            )
    found = scaffold.detect_agents()
    if found:
        lines.append("agent CLIs on PATH: " + ", ".join(found))
    else:
        installs = "; ".join(f"{cli}: {install_command(cli)}" for cli in ("claude", "codex"))
        lines.append(
            f"no agent CLI is on PATH; install one ({installs}; others in docs/agents.md), "
            "or try the built-in simulator: `shopfloor demo`"
        )
    return lines


def report(config: Config, root: Path | None = None) -> dict[str, Any]:
    """`doctor --json`: the shared envelope (schema), the verdict, roles, agents, advice,
    and with `[scale] engine = "temporal"` the engine, the remote and the workers (`root`:
    the repository whose remote is checked; None checks no engine)."""
    from shopfloor.actions import JSON_SCHEMA_VERSION

    checks = check_all(config)
    roles = check_roles(config, checks)
    engine = None
    if root is not None and config.scale.engine == "temporal":
        from shopfloor.scale.health import check_engine

        engine = check_engine(config, root)
    return {
        "schema": JSON_SCHEMA_VERSION,
        "ok": all(r.ok for r in roles) and (engine is None or engine.ok),
        "config_error": None,
        "roles": [r.to_json() for r in roles],
        "agents": [c.to_json() for c in checks],
        "engine": None if engine is None else engine.to_json(),
        "advice": advice(config, roles),
    }


def unloadable(error: str) -> dict[str, Any]:
    """`doctor --json` when shopfloor.toml cannot be loaded at all."""
    from shopfloor.actions import JSON_SCHEMA_VERSION

    return {
        "schema": JSON_SCHEMA_VERSION,
        "ok": False,
        "config_error": error,
        "roles": [],
        "agents": [],
        "engine": None,
        "advice": ["fix shopfloor.toml as the error says; README.md (Configuration)"],
    }
