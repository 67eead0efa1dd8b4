"""A scripted agent for pipeline tests, run through the `command` backend.

argv: behaviour words, each `role:action` (the action applies when SHOPFLOOR_ROLE == role):
  pm:spec            write a ## Spec section          pm:nospec     write nothing
  coder:write        change a file in the workdir     coder:nothing change nothing
  qa:pass / qa:fail  verdict                           *:noresult    exit 0 without a result
  qa:failfirst       FAIL on attempt 1, PASS after (a task that needs two attempts)
  *:exit3            exit 3 after writing outcome fail *:hang        sleep until killed
  *:stubborn         ignore SIGTERM (only SIGKILL ends it), with a child that does too
  hotfix:patch       change app.py in the live tree and record ## Verification
  hotfix:noverify    change app.py, no verification steps
  *:mark=PATH        append "role task attempt run pid" to PATH when starting (for invariants)
  *:env=PATH         dump the environment as JSON to PATH
  *:sleep=SECONDS    sleep before acting
  *:cost=USD         report spend on stdout (a usage JSON line, as the command backend reads)
  *:touch=PATH       append a line to PATH, relative to the working directory
  *:touchroot=PATH   append a line to PATH, relative to the repository root (the live tree)
  *:commit           commit everything in the working directory (a run that should not)
  coder:rival        push this attempt's commit to origin first, as another worker would have
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def result(outcome: str, summary: str, **extra: str) -> None:
    Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(
        json.dumps({"outcome": outcome, "summary": summary, **extra})
    )


def set_section(path: Path, name: str, content: str) -> None:
    from shopfloor import task

    path.write_text(task.set_section(path.read_text(), name, content))


def push_rival_commit(workdir: Path) -> None:
    """A commit for this task and attempt on origin's branch, as if another worker that was
    thought lost had pushed it; the worktree is left as it was."""
    env = os.environ
    task_id, attempt = env["SHOPFLOOR_TASK_ID"], env.get("SHOPFLOOR_ATTEMPT", "1")
    who = ["-c", "user.name=rival", "-c", "user.email=rival@localhost"]
    message = [
        "-m",
        f"{task_id}: rival",
        "-m",
        f"Shopfloor-Task: {task_id}\nShopfloor-Attempt: {attempt}\nShopfloor-Run: R-rival",
    ]
    (workdir / "rival.txt").write_text("first\n")
    for args in (["add", "rival.txt"], [*who, "commit", "--quiet", *message]):
        subprocess.run(["git", *args], cwd=workdir, check=True)
    target = f"HEAD:refs/heads/shopfloor/{task_id}"
    subprocess.run(["git", "push", "--quiet", "origin", target], cwd=workdir, check=True)
    subprocess.run(["git", "reset", "--quiet", "--hard", "HEAD~1"], cwd=workdir, check=True)


def side_effects(role: str, actions: list[str]) -> None:
    """mark=, env= and sleep= actions, in the order given."""
    for action in actions:
        name, _, arg = action.partition("=")
        if name == "mark":
            env = os.environ
            line = f"{role} {env['SHOPFLOOR_TASK_ID']} {env.get('SHOPFLOOR_ATTEMPT')}"
            with open(arg, "a") as fh:
                fh.write(f"{line} {env['SHOPFLOOR_RUN_ID']} {os.getpid()}\n")
        elif name == "env":
            Path(arg).write_text(json.dumps(dict(os.environ)))
        elif name == "sleep":
            time.sleep(float(arg))
        elif name in ("touch", "touchroot"):
            task_file = Path(os.environ["SHOPFLOOR_TASK_FILE"])  # ROOT/tasks/<lane>/<file>
            base = (
                task_file.parents[2]
                if name == "touchroot"
                else Path(os.environ["SHOPFLOOR_WORKDIR"])
            )
            with open(base / arg, "a") as fh:
                fh.write(f"{role} was here\n")
        elif name == "commit":
            workdir = os.environ["SHOPFLOOR_WORKDIR"]
            who = ["-c", "user.name=agent", "-c", "user.email=agent@localhost"]
            for args in (["add", "--all"], [*who, "commit", "--quiet", "-m", f"{role} commit"]):
                subprocess.run(["git", *args], cwd=workdir, check=True)
        elif name == "rival":
            push_rival_commit(Path(os.environ["SHOPFLOOR_WORKDIR"]))
        elif name == "cost":
            usage = {"cost_usd": float(arg), "tokens_in": 1000, "tokens_out": 100}
            print(json.dumps(usage), flush=True)


def main() -> None:  # noqa: C901 - a flat script of scripted behaviours
    role = os.environ["SHOPFLOOR_ROLE"]
    actions = []
    for word in sys.argv[1:]:
        who, _, action = word.partition(":")
        if who in (role, "*"):
            actions.append(action)
    task_file = Path(os.environ["SHOPFLOOR_TASK_FILE"])
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    side_effects(role, actions)
    acts = {a.partition("=")[0] for a in actions}
    if "stubborn" in acts:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited across the exec below
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if "hang" in acts or "stubborn" in acts:
        while True:
            time.sleep(1)
    if "noresult" in acts:
        return
    if "exit3" in acts:
        result("fail", "scripted failure")
        sys.exit(3)
    if role == "pm":
        if "nospec" not in acts:
            set_section(task_file, "Spec", "1. Do the thing.\n2. Tests pass.")
        result("ok", "spec")
    elif role == "coder":
        if "nothing" not in acts:
            attempt = os.environ.get("SHOPFLOOR_ATTEMPT", "?")
            (workdir / f"change-{os.environ['SHOPFLOOR_TASK_ID']}.txt").write_text(
                f"attempt {attempt}\n"
            )
        result("ok", "coded")
    elif role == "qa":
        first = os.environ.get("SHOPFLOOR_ATTEMPT") == "1"
        verdict = "fail" if "fail" in acts or ("failfirst" in acts and first) else "pass"
        result("ok", f"qa {verdict}", verdict=verdict, notes=f"scripted {verdict}")
    elif role == "hotfix":
        with open(workdir / "app.py", "a") as fh:
            fh.write("# hotfix: guarded\n")
        if "noverify" not in acts:
            set_section(task_file, "Verification", "1. Run app.py and see 42.")
        result("ok", "patched")


if __name__ == "__main__":
    main()
