"""`shopfloor worker`'s errors: said in one line, before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scale.cluster import command_agent, config_text, free_port
from tests.support import make_project, shopfloor


def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path, agents={"a": command_agent()})
    (root / "shopfloor.toml").write_text(config_text({"a": command_agent()}))
    return root


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = shopfloor(root, "worker", "--address", address, check=False, timeout=60)
    assert proc.returncode == 1, proc
    assert f"Error: cannot reach the Temporal server at {address}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_temporalio_it_says_how_to_install_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    hide = (
        "import sys; sys.modules['temporalio'] = None; "  # as if it were not installed
        "from shopfloor.cli import main; main(['-C', sys.argv[1], 'worker'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", hide, str(root)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc
    assert "pip install 'shopfloor[temporal]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_agent_flag_must_name_a_defined_agent(tmp_path: Path) -> None:
    root = project(tmp_path)
    proc = shopfloor(root, "worker", "--agent", "nope", check=False, timeout=60)
    assert proc.returncode == 1, proc
    assert "--agent nope: not in [agents] (defined: a)" in proc.stderr


def test_a_second_worker_in_the_same_clone_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("temporalio")
    from shopfloor.scale import worker

    root = project(tmp_path)
    with worker.clone_lock(root):
        proc = shopfloor(root, "worker", "--address", "127.0.0.1:1", check=False, timeout=60)
    assert proc.returncode == 1, proc
    assert "another `shopfloor worker` serves" in proc.stderr
