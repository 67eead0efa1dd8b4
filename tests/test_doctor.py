"""`shopfloor doctor`: binary, version (tested or not), credentials, advice, exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def doctor(root: Path) -> tuple[int, list[dict[str, object]]]:
    proc = shopfloor(root, "doctor", "--json", check=False)
    return proc.returncode, {c["agent"]: c for c in json.loads(proc.stdout)}  # type: ignore[return-value]


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
    assert json.loads(proc.stdout)[0]["version"] == TESTED["claude"]
    env_of_cli = seen.read_text()
    assert "\nPATH=" in env_of_cli and "tg-4417" not in env_of_cli and "web-4418" not in env_of_cli
