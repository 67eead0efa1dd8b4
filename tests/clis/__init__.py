"""The real agent CLIs in tests: where the pinned install is, and how to point each one at the
scripted model server with a fresh HOME and nothing leaving the machine.

Each CLI has a module here (`tests/clis/<cli>.py`) with `prepare(home, url) -> env`, which
writes whatever config files the CLI needs into `home` and returns the environment for a run.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from shopfloor.agents.versions import PINS, Pin

CACHE = Path(
    os.environ.get("SHOPFLOOR_AGENT_CACHE") or Path(__file__).resolve().parents[2] / ".cache/agents"
)
#: Environment every CLI run gets in tests: no telemetry, no update checks, no colours.
QUIET = {
    "NO_COLOR": "1",
    "CI": "1",
    "DO_NOT_TRACK": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "npm_config_update_notifier": "false",
}


def pin(cli: str) -> Pin:
    return next(p for p in PINS if p.cli == cli)


def binary(cli: str) -> Path:
    p = pin(cli)
    home = CACHE / f"{p.cli}-{p.version}"
    if p.registry == "pypi":
        return home / "venv" / "bin" / p.cli
    return home / "node_modules" / ".bin" / p.cli


def require(cli: str) -> Path:
    """The pinned binary; skipped locally when absent, a failure in CI (CI installs them)."""
    path = binary(cli)
    if path.exists():
        return path
    why = f"{cli} {pin(cli).version} not installed: run `python tests/clis/install.py {cli}`"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def prepare(cli: str, home: Path, url: str) -> dict[str, str]:
    """The environment for one run of `cli` against the model server at `url`."""
    home.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"tests.clis.{cli}")
    env: dict[str, str] = module.prepare(home, url)
    return {**QUIET, "HOME": str(home), **env}
