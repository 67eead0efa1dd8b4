"""shopfloor.toml: validation with errors that name the key path, the bad value and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopfloor import config, scaffold
from shopfloor.errors import ConfigError

DESIGN_CONFIG = """\
[agents.claude]                 # a named agent; any number of them
backend = "claude"              # claude | codex | gemini | opencode | pi | qwen | aider | command
command = "claude"              # the binary (name or path); for backend=command, an argv list
args = []                       # extra arguments
model = ""                      # optional
env = {}                        # extra environment, e.g. a base URL
timeout = "30m"                 # hard limit per run
stall = "5m"                    # no output for this long = stalled

[agents.local]
backend = "command"
command = ["python", "agent.py", "{prompt_file}", "{result_file}"]
timeout = "1h30m"
stall = "90s"

[roles]                         # which agent plays each role
pm = "claude"
coder = "claude"
qa = "claude"
hotfix = "local"

[pipeline]
checks = ["pytest -q"]          # the Run step: commands the orchestrator runs itself
max_attempts = 3
concurrency = { pm = 1, coder = 2, qa = 1 }   # the hotfix lane ignores these
require_approval = false        # gate between spec and code

[notify.telegram]
token_env = "SHOPFLOOR_TELEGRAM_TOKEN"   # secrets come from the environment, never the file
chat_ids = [123456789]                   # the allowlist, for notifications and commands
api_base = "https://api.telegram.org"    # overridable: self-hosted Bot API server, tests

[web]
host = "127.0.0.1"
port = 8765
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shopfloor.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


def test_the_design_config_loads(tmp_path: Path) -> None:
    """Rule: the documented shopfloor.toml is valid and reads as written."""
    cfg = config.load(write(tmp_path, DESIGN_CONFIG))
    assert cfg.agents["claude"].backend == "claude" and cfg.agents["claude"].timeout == 1800
    assert cfg.agents["local"].command == ["python", "agent.py", "{prompt_file}", "{result_file}"]
    assert (cfg.agents["local"].timeout, cfg.agents["local"].stall) == (5400, 90)
    assert cfg.roles.hotfix == "local" and cfg.pipeline.concurrency.coder == 2
    assert cfg.notify.telegram is not None and cfg.notify.telegram.chat_ids == [123456789]
    assert cfg.secret_env_names() == {"SHOPFLOOR_TELEGRAM_TOKEN", "SHOPFLOOR_WEB_TOKEN"}


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    """Rule: every section has defaults."""
    cfg = config.load(write(tmp_path, ""))
    assert cfg.pipeline.max_attempts == 3 and cfg.web.port == 8765 and cfg.notify.telegram is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("90s", 90), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400),
     (" 2h 5m ", 7500), ("1.5h", 5400), (45, 45), (0.5, 0.5)],
)  # fmt: skip
def test_durations(text: str | float, seconds: float) -> None:
    """Rule: durations are '30m', '90s', '1h30m' (or plain seconds)."""
    assert config.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "30", "m30", "1h-5m", "0s", "", -5, True, [1]])
def test_bad_durations_are_refused(bad: object) -> None:
    """Rule: anything else is an error showing the expected form."""
    with pytest.raises(ValueError, match="duration"):
        config.parse_duration(bad)


def test_a_bad_duration_in_the_file_names_the_key_and_value(tmp_path: Path) -> None:
    """Rule: the error names the key path and the bad value."""
    message = error_of(tmp_path, '[agents.a]\nbackend = "claude"\nstall = "soon"\n')
    assert "agents.a.stall" in message and "'soon'" in message and "'30m'" in message


@pytest.mark.parametrize(
    ("text", "path", "suggestion"),
    [
        ('[agents.a]\nbackend = "claude"\ntimout = "30m"\n', "agents.a.timout", "timeout"),
        ("[pipline]\nmax_attempts = 3\n", "pipline", "pipeline"),
        ("[pipeline]\nmax_attempt = 3\n", "pipeline.max_attempt", "max_attempts"),
        ("[pipeline.concurrency]\ncodr = 3\n", "pipeline.concurrency.codr", "coder"),
        ("[notify.telegram]\nchat_id = [1]\n", "notify.telegram.chat_id", "chat_ids"),
        ('[web]\nhots = "0.0.0.0"\n', "web.hots", "host"),
    ],
)
def test_a_typo_names_the_key_path_and_suggests_the_right_key(
    tmp_path: Path, text: str, path: str, suggestion: str
) -> None:
    """Rule: an unknown key is an error naming its path, with 'did you mean' the right key."""
    message = error_of(tmp_path, text)
    assert f"{path}: unknown key (did you mean {suggestion!r}?)" in message


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ('[pipeline]\nmax_attempts = "three"\n', "pipeline.max_attempts", "'three'"),
        ('[web]\nport = "http"\n', "web.port", "'http'"),
        ("[web]\nport = 70000\n", "web.port", "70000"),
        ("[pipeline]\nrequire_approval = 3\n", "pipeline.require_approval", "3"),
        ('[agents.a]\nbackend = "gpt5"\n', "agents.a.backend", "'gpt5'"),
        ("[pipeline]\nchecks = 5\n", "pipeline.checks", "5"),
    ],
)
def test_a_wrong_type_names_the_path_and_the_bad_value(
    tmp_path: Path, text: str, path: str, value: str
) -> None:
    """Rule: a wrong type or value names the key path and shows what was found."""
    message = error_of(tmp_path, text)
    assert path in message and value in message


@pytest.mark.parametrize("key", ["token", "api_key", "password", "bot_token"])
def test_a_secret_in_the_file_is_refused_with_the_env_var_advice(tmp_path: Path, key: str) -> None:
    """Rule (DESIGN): secrets come from the environment, never the file."""
    message = error_of(tmp_path, f'[notify.telegram]\n{key} = "123:abc"\nchat_ids = [1]\n')
    assert f"notify.telegram.{key}: secrets never go in shopfloor.toml" in message
    assert "environment variable" in message and "token_env" in message
    assert "123:abc" not in message  # the secret is not echoed back


def test_roles_must_name_a_defined_agent(tmp_path: Path) -> None:
    """Rule: a role naming an undefined agent is an error listing the agents there are."""
    text = '[agents.claude]\nbackend = "claude"\n[roles]\npm = "gpt"\n'
    message = error_of(tmp_path, text)
    assert "roles.pm = 'gpt', which is not an agent here (defined: claude)" in message
    assert "{" not in message  # not a dump of the whole file


def test_an_unset_role_is_never_quoted_as_if_written(tmp_path: Path) -> None:
    """Rule: the default agent name is said to be a default, not `roles.pm = 'claude'`."""
    message = error_of(tmp_path, '[agents.cx]\nbackend = "codex"\n[roles]\npm = "cx"\n')
    assert "roles.pm" not in message  # written, and right
    assert "roles.coder is not set, so it defaults to the agent 'claude'" in message
    assert "roles.coder = 'claude'" not in message


def test_a_command_agent_needs_an_argv_list(tmp_path: Path) -> None:
    """Rule: backend "command" takes an argv list (no shell)."""
    message = error_of(tmp_path, '[agents.a]\nbackend = "command"\ncommand = "run.sh {x}"\n')
    assert "agents.a" in message and "argv" in message


def test_broken_toml_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    """Rule: a syntax error says where; a missing file says to run init."""
    assert re.search(r"not valid TOML: .*line 2", error_of(tmp_path, "[web]\nport = = 1\n"))
    with pytest.raises(ConfigError, match="shopfloor init"):
        config.load(tmp_path / "nope.toml")


def test_the_file_init_writes_loads(git_repo: Path) -> None:
    """Rule: `init` writes a config that validates, with or without agent CLIs found."""
    scaffold.init(git_repo, agents=[])
    assert config.load(git_repo / "shopfloor.toml").roles.pm == "simulator"
    for agents in (["claude"], ["codex", "gemini", "aider"]):
        text = scaffold.render_config(agents, ["pytest -q"])
        cfg = config.load(write(git_repo, text))
        assert sorted(cfg.agents) == sorted(agents) and cfg.roles.coder == agents[0]
