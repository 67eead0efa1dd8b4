"""Help that tells the truth: every command and option explains itself, `hotfix --help` shows
how to file one, the command list is readable at 80 columns, shell completion works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from shopfloor.cli import app
from tests.support import make_project, shopfloor


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """Every command under `command`, with its full name (`hotfix close`)."""
    yield " ".join(path) or "shopfloor", command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    missing = []
    for name, command in walk(app):
        if command.hidden:
            missing.append(f"{name}: hidden (a hidden command cannot explain itself)")
        if not (command.help or "").strip():
            missing.append(f"{name}: no help")
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}: no help")
    assert missing == []


def test_every_command_is_found_by_the_walk() -> None:
    names = {name for name, _ in walk(app)}
    assert {"shopfloor", "hotfix", "hotfix close", "roles show", "doctor", "completion"} <= names


def help_text(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return proc.stdout


def test_the_command_list_is_readable_at_80_columns() -> None:
    text = help_text()
    listing = text.split("Commands:\n", 1)[1].splitlines()
    assert len(listing) == len(app.commands)  # one line each: no summary wraps
    for line in listing:
        assert len(line) <= 80 and not line.rstrip().endswith("..."), line
    assert re.search(r"^  hotfix +File an emergency", text, re.MULTILINE)


def test_hotfix_help_shows_how_to_file_one() -> None:
    text = help_text("hotfix")
    for option in ("-m, --body", "--log FILE", "--json"):
        assert option in text
    assert "close" in text and "hotfix -- close" in text
    close = help_text("hotfix", "close")
    assert "inbox/" in close and "--followup" in close and "backlog" not in close


def test_new_explains_priority_and_type() -> None:
    text = help_text("new", columns=120)
    assert "-p, --priority [P0|P1|P2|P3]  P0 is the most urgent.  [default: P2]" in text
    assert "What kind of work it is." in text


def test_a_hotfix_can_be_titled_close_and_closed_with_close(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    log = tmp_path / "trace.log"
    log.write_text("Traceback: boom\n")
    filed = shopfloor(root, "hotfix", "db down", "-m", "503s", "--log", str(log), "--json")
    assert json.loads(filed.stdout)["id"] == "HOTFIX-db-down"
    text = (root / "tasks" / "hotfix" / "HOTFIX-db-down.md").read_text()
    assert "503s" in text and "Traceback: boom" in text
    titled = shopfloor(root, "hotfix", "--json", "--", "close")
    assert json.loads(titled.stdout)["title"] == "close"
    shopfloor(root, "hotfix", "close", "HOTFIX-close", "--force")
    assert (root / "tasks" / "done" / "HOTFIX-close.md").exists()
    bare = shopfloor(root, "hotfix", "close", check=False)
    assert bare.returncode == 2 and "Missing argument 'TASK_ID'" in bare.stderr


def complete(words: str, cword: int) -> list[str]:
    """What bash completion offers, through click's protocol (what the script itself runs)."""
    env = {
        **os.environ,
        "_SHOPFLOOR_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor"], capture_output=True, text=True, env=env, check=True
    )
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_completion_scripts_are_printed_for_each_shell() -> None:
    for shell, marker in (
        ("bash", "complete -o nosort -F _shopfloor_completion shopfloor"),
        ("zsh", "#compdef shopfloor"),
        ("fish", "complete --no-files --command shopfloor"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "shopfloor", "completion", shell],
            capture_output=True,
            text=True,
            check=True,
        )
        assert marker in proc.stdout and "_SHOPFLOOR_COMPLETE" in proc.stdout, shell


def test_completion_offers_commands_subcommands_and_choices() -> None:
    assert complete("shopfloor sta", 1) == ["status"]
    assert complete("shopfloor hotfix cl", 2) == ["close"]
    assert complete("shopfloor new x --priority ", 4) == ["P0", "P1", "P2", "P3"]
