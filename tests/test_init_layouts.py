"""`shopfloor init` on the layouts people have: it finds their test command, says what it chose
(or that it found none), and with no agent CLI says so and how to install one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shopfloor import config
from tests.support import git

#: Only the venv (python, pytest) and the system: no agent CLI is on this PATH.
PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])

UNITTEST = """import unittest

import calc


class CalcTest(unittest.TestCase):
    def test_add(self) -> None:
        self.assertEqual(calc.add(1, 2), 3)
"""
PYTEST_FLAT = "import calc\n\n\ndef test_add() -> None:\n    assert calc.add(1, 2) == 3\n"
CALC = "def add(a: int, b: int) -> int:\n    return a + b\n"


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, "utf-8")
    return root


def init(root: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "shopfloor", "init"],
        cwd=root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PATH": PATH},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def checks_of(root: Path) -> list[str]:
    return [str(c) for c in config.load(root / "shopfloor.toml").pipeline.checks]


def run_check(root: Path, check: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(check),
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": PATH},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("files", "ran"),
    [
        ({"calc.py": CALC, "test_calc.py": PYTEST_FLAT}, "1 passed"),  # the flat project
        ({"calc.py": CALC, "calc_test.py": PYTEST_FLAT}, "1 passed"),
        ({"calc.py": CALC, "tests/test_calc.py": PYTEST_FLAT}, "1 passed"),
        ({"calc.py": CALC, "pyproject.toml": "[tool.pytest.ini_options]\n"}, ""),
    ],
    ids=["flat", "suffix", "tests-folder", "pyproject-config"],
)
def test_pytest_layouts_get_pytest(tmp_path: Path, files: dict[str, str], ran: str) -> None:
    root = repo(tmp_path, files)
    proc = init(root)
    [check] = checks_of(root)
    assert check.endswith("-m pytest -q")
    assert f"checks: {check}" in proc.stdout
    if ran:  # the chosen command really runs the project's tests
        result = run_check(root, check)
        assert result.returncode == 0 and ran in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "layout",
    [
        {"calc.py": CALC, "test_calc.py": UNITTEST},
        {"calc.py": CALC, "tests/test_calc.py": UNITTEST},
        {"calc.py": CALC, "calc_test.py": UNITTEST},
    ],
    ids=["flat", "tests-folder", "suffix"],
)
def test_unittest_layouts_get_a_unittest_command_that_finds_the_tests(
    tmp_path: Path, layout: dict[str, str]
) -> None:
    root = repo(tmp_path, layout)
    proc = init(root)
    [check] = checks_of(root)
    assert "-m unittest" in check and "pytest" not in check
    assert f"checks: {check}" in proc.stdout and "unittest" in proc.stdout
    result = run_check(root, check)
    assert result.returncode == 0 and "Ran 1 test" in result.stderr, result.stderr


def test_a_pytest_config_wins_over_unittest_imports(tmp_path: Path) -> None:
    root = repo(tmp_path, {"calc.py": CALC, "test_calc.py": UNITTEST, "pytest.ini": "[pytest]\n"})
    init(root)
    assert [c.split(" ", 1)[1] for c in checks_of(root)] == ["-m pytest -q"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"package.json": json.dumps({"scripts": {"test": "node test.js"}})}, ["npm test"]),
        ({"go.mod": "module example.com/x\n\ngo 1.22\n"}, ["go test ./..."]),
        ({"Cargo.toml": '[package]\nname = "x"\nversion = "0.1.0"\n'}, ["cargo test"]),
        ({"Makefile": "build:\n\tcc x.c\n\ntest: build\n\t./run-tests\n"}, ["make test"]),
    ],
    ids=["npm", "go", "cargo", "make"],
)
def test_other_ecosystems(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    root = repo(tmp_path, files)
    proc = init(root)
    assert checks_of(root) == expected
    assert f"checks: {expected[0]}" in proc.stdout


def test_a_makefile_test_target_gives_way_to_a_specific_command(tmp_path: Path) -> None:
    """`make test` may lint, install and deploy: it is chosen only when nothing else is found."""
    root = repo(tmp_path, {"Makefile": "test:\n\ttrue\n", "go.mod": "module x\n"})
    init(root)
    assert checks_of(root) == ["go test ./..."]


@pytest.mark.parametrize(
    "files",
    [
        {"README.md": "# nothing to test\n"},
        {"package.json": json.dumps({"scripts": {"test": 'echo "Error: no test specified"'}})},
        {"Makefile": "TEST := 1\nbuild:\n\ttrue\n"},
    ],
    ids=["nothing", "npm-placeholder", "makefile-without-test"],
)
def test_no_test_set_up_found_is_said(tmp_path: Path, files: dict[str, str]) -> None:
    root = repo(tmp_path, files)
    proc = init(root)
    assert checks_of(root) == []
    assert "checks: none found" in proc.stdout
    assert "add your test commands" in proc.stdout


def test_without_an_agent_cli_init_says_so_and_labels_the_simulator_a_demo(
    tmp_path: Path,
) -> None:
    from shopfloor import doctor

    root = repo(tmp_path, {"calc.py": CALC})
    proc = init(root)
    assert "agent CLIs on PATH: none" in proc.stdout
    install = doctor.install_command("claude")
    assert install is not None and install in proc.stdout  # doctor's own install command
    assert "docs/simulator.md" in proc.stdout and "not an AI" in proc.stdout
    text = (root / "shopfloor.toml").read_text("utf-8")
    assert "DEMO AGENT" in text and install in text
    cfg = tomllib.loads(text)
    assert cfg["agents"] == {"simulator": {"backend": "simulator"}}
    assert set(cfg["roles"].values()) == {"simulator"}
    # A second init keeps the config and does not repeat the advice about it.
    again = init(root)
    assert "agent CLIs on PATH: none" in again.stdout and install not in again.stdout
