"""The scripted demo agent (a simulator, not an AI), run as a subprocess by the simulator backend.

It reads the run contract from SHOPFLOOR_* variables and plays the role it is given:
- pm: writes a `## Spec` from the request, carrying over any sim-patch blocks;
- coder / hotfix: applies ```sim-patch path=FILE [attempt=N]``` blocks to the working tree
  (a coder with no block to apply says it cannot act: the task waits for a person, no attempt
  used — see docs/simulator.md)
  (the hotfix also records `## Verification` steps in the task file, only when a block really
  changed a file: otherwise it says it changed nothing);
- qa: passes when every check in its prompt exited 0, fails otherwise.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from shopfloor import _fs, task

_PATCH_RE = re.compile(
    r"^```sim-patch[ \t]+path=(?P<path>\S+)(?:[ \t]+attempt=(?P<attempt>\d+))?[ \t]*\n"
    r"(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
#: What the simulator says of a task it cannot act on (the tracker line and the notification
#: carry it): what it can do, and where that is written down.
CANNOT_ACT = (
    "cannot act: no sim-patch block in this task. The simulator (scripted, not an AI) only "
    "writes files from ```sim-patch path=FILE``` blocks — see docs/simulator.md"
)
_CHECKS_LINE = re.compile(r"^- The project's checks[^:]*: (?P<checks>.*)$", re.MULTILINE)
_CHECK_RE = re.compile(r"^- `(?P<cmd>[^`]*)` exit (?P<code>-?\d+)", re.MULTILINE)


def _patches(text: str, attempt: int) -> list[tuple[str, str]]:
    """(path, content) to write: the blocks for this attempt, else the latest earlier ones."""
    blocks = [
        (m["path"], m["body"], int(m["attempt"]) if m["attempt"] else 0)
        for m in _PATCH_RE.finditer(text)
    ]
    usable = [b for b in blocks if b[2] <= attempt]
    best = max((b[2] for b in usable), default=0)
    chosen = {p: body for p, body, n in usable if n in (0, best)}  # the spec repeats the request
    return list(chosen.items())


def _apply(workdir: Path, patches: list[tuple[str, str]]) -> list[str]:
    changed = []
    for rel, content in patches:
        target = (workdir / rel).resolve()
        if not target.is_relative_to(workdir.resolve()):
            raise SystemExit(f"simulator: refusing to write outside the work dir: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, "utf-8")
        changed.append(rel)
    return changed


def _spec_from(request: str, text: str) -> str:
    blocks = "\n\n".join(m.group(0) for m in _PATCH_RE.finditer(text))
    first = request.strip().splitlines()[0] if request.strip() else "the request"
    return (
        "**Context** — written by the Shopfloor simulator (scripted, not an AI).\n\n"
        f"**Plan** — {first}\n\n"
        "**Acceptance criteria**\n1. The change described in the request is made.\n"
        "2. The project's checks pass.\n\n"
        "**Test plan** — the orchestrator runs the configured checks.\n\n"
        + (f"Simulator patches carried over from the request:\n\n{blocks}\n" if blocks else "")
    )


def _write_result(outcome: str, summary: str, **extra: str) -> None:
    path = Path(os.environ["SHOPFLOOR_RESULT_FILE"])
    _fs.atomic_write(path, json.dumps({"outcome": outcome, "summary": summary, **extra}))
    print(json.dumps({"outcome": outcome, "summary": summary, **extra}))


def _update_task(path: Path, section: str, content: str) -> None:
    text = path.read_text("utf-8")
    _fs.atomic_write(path, task.set_section(text, section, content))


def play_pm(task_file: Path) -> None:
    text = task_file.read_text("utf-8")
    request = task.get_section(text, "Request") or ""
    _update_task(task_file, "Spec", _spec_from(request, text))
    _write_result("ok", "spec written (simulator)")


def play_coder(task_file: Path, workdir: Path, attempt: int) -> None:
    text = task_file.read_text("utf-8")
    changed = _apply(workdir, _patches(text, attempt))
    if not changed:  # not the task's failure: the simulator cannot write code by itself
        _write_result("fail", CANNOT_ACT, cannot_act="true")
        return
    _write_result("ok", f"changed {', '.join(changed)} (simulator, attempt {attempt})")


def play_qa(prompt: str) -> None:
    checks = [(m["cmd"], int(m["code"])) for m in _CHECK_RE.finditer(prompt)]
    failed = [cmd for cmd, code in checks if code != 0]
    if failed:
        notes = "Checks failed: " + ", ".join(f"`{c}`" for c in failed) + ". Fix them."
        _write_result("ok", "checks failed", verdict="fail", notes=notes)
    else:
        _write_result("ok", f"{len(checks)} checks passed", verdict="pass", notes="Checks green.")


def _run_the_checks(prompt: str) -> str:
    """The verification step that runs the project's own checks, as its prompt names them."""
    line = _CHECKS_LINE.search(prompt)
    commands = re.findall(r"`([^`]+)`", line["checks"]) if line else []
    if not commands:
        return "Run the project's tests (no checks are configured in shopfloor.toml)."
    listed = " and ".join(f"`{c}`" for c in commands)
    return f"Run the project's checks: {listed} — expect exit 0."


def play_hotfix(task_file: Path, workdir: Path, prompt: str) -> None:
    """Apply the request's sim-patch blocks; record verification steps only for a real change."""
    text = task_file.read_text("utf-8")
    pending = [(rel, body) for rel, body in _patches(text, 1) if _differs(workdir / rel, body)]
    changed = _apply(workdir, pending)
    if not changed:  # the task is not failed by a patch already there; by no patch at all it is
        if _patches(text, 1):
            _write_result("ok", "changed nothing: the sim-patch blocks are already applied")
        else:
            _write_result(
                "fail",
                "changed nothing: no sim-patch block in the task (simulator; see "
                "docs/simulator.md)",
            )
        return
    steps = (
        f"1. {_run_the_checks(prompt)}\n"
        f"2. Read the change: `git diff -- {' '.join(changed)}` — the simulator wrote "
        "these files from the task's sim-patch blocks.\n"
        "3. Exercise the failing path once by hand and watch the log for the error.\n\n"
        "Root cause: not investigated (simulator, not an AI)."
    )
    _update_task(task_file, "Verification", steps)
    _write_result("ok", f"hotfix applied to {len(changed)} file(s): {', '.join(changed)}")


def _differs(path: Path, content: str) -> bool:
    try:
        return path.read_text("utf-8") != content
    except (FileNotFoundError, UnicodeDecodeError):
        return True


def main() -> None:
    role = os.environ["SHOPFLOOR_ROLE"]
    task_file = Path(os.environ["SHOPFLOOR_TASK_FILE"])
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    delay = float(os.environ.get("SHOPFLOOR_SIMULATOR_DELAY", "0") or 0)
    if delay:
        time.sleep(delay)  # demo pacing: lets a person watch the board move
    print(f"[simulator] {role} {os.environ['SHOPFLOOR_TASK_ID']} (scripted, not an AI)")
    if role == "pm":
        play_pm(task_file)
    elif role == "coder":
        play_coder(task_file, workdir, int(os.environ.get("SHOPFLOOR_ATTEMPT", "1")))
    elif role == "qa":
        play_qa(Path(os.environ["SHOPFLOOR_PROMPT_FILE"]).read_text("utf-8"))
    elif role == "hotfix":
        play_hotfix(
            task_file, workdir, Path(os.environ["SHOPFLOOR_PROMPT_FILE"]).read_text("utf-8")
        )
    else:
        sys.exit(f"simulator: unknown role {role!r}")


if __name__ == "__main__":
    main()
