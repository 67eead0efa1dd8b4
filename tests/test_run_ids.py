"""Run ids: unique across processes and restarts, most taken from a reservation in memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shopfloor import shop as shop_module
from shopfloor.board import Board
from shopfloor.config import load
from shopfloor.journal import Journal
from shopfloor.shop import Shop
from tests.support import make_project

SRC = Path(__file__).resolve().parents[1] / "src"

#: A process that takes `n` run ids and prints them, one a line.
TAKE = """
import sys
from pathlib import Path
from shopfloor.board import Board
from shopfloor.config import load
from shopfloor.journal import Journal
from shopfloor.shop import Shop
root, n = Path(sys.argv[1]), int(sys.argv[2])
with Journal.for_project(root) as journal:
    shop = Shop(root, load(root / "shopfloor.toml"), Board(root), journal)
    print("\\n".join(shop.new_run_id() for _ in range(n)), flush=True)
"""


def take(root: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", TAKE, str(root), str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )


def test_processes_taking_run_ids_at_once_never_share_one(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    procs = [take(root, 70) for _ in range(4)]  # more than two reservations each
    got = [proc.communicate(timeout=60)[0].split() for proc in procs]
    ids = [run_id for taken in got for run_id in taken]
    assert all(len(taken) == 70 for taken in got), got
    assert len(set(ids)) == len(ids) == 280


def test_a_restart_numbers_on_past_what_the_last_process_reserved(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    first = take(root, 3).communicate(timeout=60)[0].split()
    assert first == ["R-1", "R-2", "R-3"]  # in order within a process
    with Journal.for_project(root) as journal:
        shop = Shop(root, load(root / "shopfloor.toml"), Board(root), journal)
        after = int(shop.new_run_id()[2:])
    assert after == shop_module.RUN_NUMBERS_AT_ONCE + 1  # a gap, never a number twice
    # Only one reservation was written for those three: no lock and write per run.
    assert int(shop.paths.next_run.read_text()) == 2 * shop_module.RUN_NUMBERS_AT_ONCE
