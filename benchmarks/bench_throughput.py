"""Throughput: N tasks through the whole lifecycle (backlog -> active -> review -> done).

No-op agents (`sh` writing the result file), coder concurrency 8, no checks: this measures
the orchestrator, not the agents. Only the coder changes a file (the one commit a task needs);
the PM and QA change nothing, as real ones must not: a QA that edits code is no no-op (the
daemon reports the change and keeps it as a snapshot when it removes the worktree).

    .venv/bin/python benchmarks/bench_throughput.py [--tasks 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _project import make_repo

from shopfloor import actions, config
from shopfloor.board import Board, Lane
from shopfloor.scheduler import Daemon

_SCRIPT = (
    'if [ "$SHOPFLOOR_ROLE" = coder ]; then echo $SHOPFLOOR_RUN_ID > change.txt; fi; '
    'printf \'{"outcome":"ok","summary":"noop","verdict":"pass"}\' > "$SHOPFLOOR_RESULT_FILE"'
)
_COMMAND = json.dumps(["sh", "-c", _SCRIPT])
CONFIG = f"""
[agents.noop]
backend = "command"
command = {_COMMAND}
[roles]
pm = "noop"
coder = "noop"
qa = "noop"
hotfix = "noop"
[pipeline]
checks = []
concurrency = {{ pm = 1, coder = 8, qa = 8 }}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", CONFIG)
        board = Board(root)
        for n in range(args.tasks):
            actions.create_task(board, actions.NewTask(f"task {n}", "noop", backlog=True))
        daemon = Daemon(root, config.load(root / "shopfloor.toml"), once=True)
        daemon.shop.log = lambda event, **fields: None
        started = time.monotonic()
        code = daemon.run()
        elapsed = time.monotonic() - started
        done = len(Board(root).scan([Lane.DONE]).entries)
    print(
        f"{args.tasks} tasks, coder concurrency 8: {done} done in {elapsed:.1f} s "
        f"({done / elapsed:.1f} tasks/s, exit {code})"
    )
    return 0 if done == args.tasks else 1


if __name__ == "__main__":
    sys.exit(main())
