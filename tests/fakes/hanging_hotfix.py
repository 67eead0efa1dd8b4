"""A hotfix agent for the `command` backend that patches the live tree, then works on forever.

argv: MARKS [hang|finish]. It appends "<pid> <workdir> <run id>" to MARKS, changes app.py and
creates hotfix_note.txt in SHOPFLOOR_WORKDIR, then sleeps until it is stopped (`hang`, the
default) or reports ok (`finish`). Stopping it is the test's business.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    marks, mode = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "hang")
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    with open(workdir / "app.py", "a") as fh:
        fh.write("# hotfix: half a patch\n")
    (workdir / "hotfix_note.txt").write_text("made by the hotfix agent\n")
    with open(marks, "a") as fh:  # last: once it is there, the tree holds the agent's change
        fh.write(f"{os.getpid()} {workdir} {os.environ['SHOPFLOOR_RUN_ID']}\n")
    if mode == "finish":
        result = {"outcome": "ok", "summary": "patched"}
        Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(json.dumps(result))
        return
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
