"""A scripted hotfix agent for the `command` backend: does to the live tree what argv says.

argv words, applied in order in SHOPFLOOR_WORKDIR:
  append=PATH       append "# hotfix: guarded" to PATH
  create=PATH       write a new file PATH
  commit            `git commit -am` (as a CLI agent told to commit would)
  branch=NAME       `git checkout -b NAME` first
  verify            record `## Verification` steps in the task file
Then it reports outcome ok. No words: it changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def main() -> None:
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    task_file = Path(os.environ["SHOPFLOOR_TASK_FILE"])
    for word in sys.argv[1:]:
        name, _, arg = word.partition("=")
        if name == "append":
            with open(workdir / arg, "a") as fh:
                fh.write("# hotfix: guarded\n")
        elif name == "create":
            (workdir / arg).write_text("made by the hotfix agent\n")
        elif name == "branch":
            subprocess.run(["git", "checkout", "-q", "-b", arg], cwd=workdir, check=True)
        elif name == "commit":
            subprocess.run(
                ["git", "-c", "user.name=agent", "-c", "user.email=a@a", "commit", "-qam", "fix"],
                cwd=workdir,
                check=True,
            )
        elif name == "verify":
            from shopfloor import task

            text = task.set_section(task_file.read_text(), "Verification", "1. Run it.")
            task_file.write_text(text)
    result = {"outcome": "ok", "summary": f"did: {' '.join(sys.argv[1:]) or 'nothing'}"}
    Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
