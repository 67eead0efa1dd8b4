"""A scripted Coder/QA for the merge-queue tests, run through the `command` backend.

Coder: each line `write PATH: TEXT` of the task's request is written to PATH in its worktree.
When the task has `## Rework notes` (the merge queue sent it back), it first merges the
target named in argv[1] into its branch without committing (the orchestrator commits), and
resolves each conflicting file by keeping the lines of both sides. QA: always passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def result(**fields: str) -> None:
    Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(json.dumps(fields))


def git(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    who = ["-c", "user.name=agent", "-c", "user.email=agent@localhost"]
    return subprocess.run(
        ["git", *who, *args], cwd=workdir, check=check, capture_output=True, text=True
    )


def rework(workdir: Path, target: str) -> None:
    git(workdir, "merge", "--no-commit", "--no-ff", target, check=False)
    out = git(workdir, "diff", "--name-only", "--diff-filter=U").stdout
    for path in filter(None, out.splitlines()):
        ours = git(workdir, "show", f":2:{path}").stdout.splitlines()
        theirs = git(workdir, "show", f":3:{path}").stdout.splitlines()
        kept = ours + [line for line in theirs if line not in ours]
        (workdir / path).write_text("\n".join(kept) + "\n")
        git(workdir, "add", "--", path)


def main() -> None:
    role = os.environ["SHOPFLOOR_ROLE"]
    text = Path(os.environ["SHOPFLOOR_TASK_FILE"]).read_text()
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    if role == "coder":
        if "## Rework notes" in text:
            rework(workdir, sys.argv[1])
        else:
            for line in text.splitlines():
                if line.startswith("write ") and ": " in line:
                    path, _, content = line[len("write ") :].partition(": ")
                    (workdir / path).write_text(content + "\n")
        result(outcome="ok", summary="coded")
    elif role == "qa":
        result(outcome="ok", summary="qa pass", verdict="pass", notes="scripted pass")
    else:
        result(outcome="fail", summary=f"no script for {role}")


if __name__ == "__main__":
    main()
