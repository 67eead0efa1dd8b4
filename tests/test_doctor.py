"""`shopfloor doctor`: binary, version (tested or not), credentials, advice, exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents.versions import TESTED
from tests import clis
from tests.support import make_project, shopfloor


def fake_cli(folder: Path, name: str, version_line: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    exe.chmod(0o755)
    return exe


def doctor(root: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = shopfloor(root, "doctor", "--json", check=False)
    document = json.loads(proc.stdout)
    assert document["schema"] == 1
    return proc.returncode, {c["agent"]: c for c in document["agents"]}


def test_a_missing_binary_is_an_error_with_the_install_command(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents={"c": {"backend": "claude", "command": "no-such-claude"}})
    code, checks = doctor(root)
    assert code == 1
    (error,) = checks["c"]["errors"]  # type: ignore[misc]
    assert "'no-such-claude' not found on PATH" in error
    assert f"npm install -g @anthropic-ai/claude-code@{TESTED['claude']}" in error
    human = shopfloor(root, "doctor", check=False)
    assert human.returncode == 1 and "problem" in human.stdout and "npm install" in human.stdout


def test_an_untested_version_and_missing_credentials_are_warnings(tmp_path: Path) -> None:
    exe = fake_cli(tmp_path / "bin", "codex", "codex-cli 0.1.0")
    root = make_project(tmp_path, agents={"x": {"backend": "codex", "command": str(exe)}})
    code, checks = doctor(root)
    assert code == 0
    check = checks["x"]
    assert check["version"] == "0.1.0" and check["tested_version"] == TESTED["codex"]
    warnings = " ".join(check["warnings"])  # type: ignore[arg-type]
    assert "not the tested" in warnings and "codex login" in warnings
    assert check["credentials"] is None


def test_credentials_are_found_in_the_login_file_or_the_agent_env(tmp_path: Path) -> None:
    exe = fake_cli(tmp_path / "bin", "claude", f"{TESTED['claude']} (Claude Code)")
    agents = {
        "by_file": {"backend": "claude", "command": str(exe)},
        "by_env": {"backend": "claude", "command": str(exe), "env": {"ANTHROPIC_API_KEY": "k"}},
    }
    root = make_project(tmp_path, agents=agents)
    login = Path(os.environ["HOME"]) / ".claude" / ".credentials.json"
    login.parent.mkdir(parents=True)
    login.write_text("{}")
    code, checks = doctor(root)
    assert code == 0
    assert checks["by_file"]["credentials"] == str(login)
    assert "ANTHROPIC_API_KEY" in str(checks["by_env"]["credentials"])
    assert checks["by_env"]["warnings"] == []  # tested version, credentials present


def test_a_problem_with_an_agent_that_plays_no_role_does_not_fail(tmp_path: Path) -> None:
    agents = {
        "sim": {"backend": "simulator"},
        "spare": {"backend": "gemini", "command": "no-such-gemini"},
    }
    root = make_project(tmp_path, agents=agents)
    code, checks = doctor(root)
    assert code == 0 and checks["spare"]["ok"] is False and checks["sim"]["ok"] is True


@pytest.mark.agentcli
def test_the_pinned_claude_is_reported_tested(tmp_path: Path) -> None:
    binary = clis.require("claude")
    agents = {"c": {"backend": "claude", "command": str(binary)}}
    root = make_project(tmp_path, agents=agents)
    code, checks = doctor(root)
    assert code == 0 and checks["c"]["version"] == TESTED["claude"]


def test_the_version_check_never_hands_the_daemon_secrets_to_the_cli(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "claude"
    seen = tmp_path / "env.txt"
    exe.write_text(f"#!/bin/sh\nenv > {seen}\necho '{TESTED['claude']} (Claude Code)'\n")
    exe.chmod(0o755)
    root = make_project(tmp_path, agents={"c": {"backend": "claude", "command": str(exe)}})
    secrets = {"SHOPFLOOR_TELEGRAM_TOKEN": "tg-4417", "SHOPFLOOR_WEB_TOKEN": "web-4418"}
    proc = shopfloor(root, "doctor", "--json", check=False, env=secrets)
    assert json.loads(proc.stdout)["agents"][0]["version"] == TESTED["claude"]
    env_of_cli = seen.read_text()
    assert "\nPATH=" in env_of_cli and "tg-4417" not in env_of_cli and "web-4418" not in env_of_cli


def doctor_document(root: Path) -> tuple[int, dict[str, Any]]:
    proc = shopfloor(root, "doctor", "--json", check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_an_empty_config_is_explained_and_fails(tmp_path: Path) -> None:
    """Rule: no agents means no role can run: doctor says so, per role, with what to do,
    never quoting the default agent as if the user had written it; exit 1."""
    root = make_project(tmp_path)
    (root / "shopfloor.toml").write_text("")
    code, document = doctor_document(root)
    assert code == 1 and document["ok"] is False and document["agents"] == []
    roles = {r["role"]: r for r in document["roles"]}
    assert set(roles) == {"pm", "coder", "qa", "hotfix"}
    for row in roles.values():
        assert (row["agent"], row["configured"], row["defined"], row["ok"]) == (
            "claude",
            False,
            False,
            False,
        )
        assert "is not set and its default is the agent 'claude'" in row["problem"]
        assert "the daemon will not start" in row["problem"]
    advice = " ".join(document["advice"])
    assert "shopfloor init" in advice and "defines no agents" in advice
    assert '[agents.claude] with backend = "claude"' in advice
    human = shopfloor(root, "doctor", check=False)
    assert human.returncode == 1
    assert "role pm -> agent claude: roles.pm is not set" in human.stdout
    assert "shopfloor init" in human.stdout and "some roles cannot run" in human.stdout
    assert "roles.pm = 'claude'" not in human.stdout + human.stderr


def test_a_partial_config_names_the_unset_roles(tmp_path: Path) -> None:
    """Roles left to the default while another agent is defined: the load error says the role
    is unset and what the default is; doctor --json carries it in the envelope, exit 1."""
    root = make_project(tmp_path)
    (root / "shopfloor.toml").write_text(
        '[agents.sim]\nbackend = "simulator"\n[roles]\npm = "sim"\n'
    )
    code, document = doctor_document(root)
    assert code == 1 and document["schema"] == 1 and document["ok"] is False
    assert (
        "roles.coder is not set, so it defaults to the agent 'claude'" in document["config_error"]
    )
    assert "roles.coder = 'claude'" not in document["config_error"]


def test_a_written_role_without_its_agent_is_quoted_as_written(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "shopfloor.toml").write_text('[roles]\npm = "gpt"\n')
    code, document = doctor_document(root)
    pm = next(r for r in document["roles"] if r["role"] == "pm")
    assert code == 1 and pm["configured"] is True
    assert pm["problem"].startswith("roles.pm = 'gpt', but shopfloor.toml has no [agents.gpt]")
    assert any("define [agents.gpt]" in line for line in document["advice"])


def test_a_complete_config_says_every_role_can_run(tmp_path: Path) -> None:
    root = make_project(tmp_path)  # the simulator plays every role
    code, document = doctor_document(root)
    assert code == 0 and document["ok"] is True and document["advice"] == []
    assert all(r["ok"] and r["configured"] and r["agent"] == "sim" for r in document["roles"])
    assert "every role can run" in shopfloor(root, "doctor").stdout
