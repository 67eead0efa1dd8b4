"""`shopfloor demo`: a small real repository and a full pipeline run, no API key needed.

The agents are the built-in simulator (scripted, not an AI): it follows ```sim-patch``` blocks
written into the requests below. Everything else is the real thing: git worktrees, commits,
the project's unittest checks run by the orchestrator, QA verdicts, the hotfix lane.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from shopfloor import actions, config, scaffold, task
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from shopfloor.scheduler import Daemon

_FILES = {
    "textutils.py": '''"""Small text helpers: the Shopfloor demo project."""


def shout(text: str) -> str:
    return text.upper() + "!"


def ratio(part: float, whole: float) -> float:
    return part / whole
''',
    "test_textutils.py": """import unittest

import textutils


class TextutilsTest(unittest.TestCase):
    def test_shout(self) -> None:
        self.assertEqual(textutils.shout("hi"), "HI!")


if __name__ == "__main__":
    unittest.main()
""",
    "README.md": "# demo\n\nA tiny project managed by Shopfloor's demo.\n",
}

_SLUG_REQUEST = """Add `slugify(text)` in a new module `slug.py`: lowercase, words joined by "-".

```sim-patch path=slug.py
import re


def slugify(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
```

```sim-patch path=test_slug.py
import unittest

from slug import slugify


class SlugTest(unittest.TestCase):
    def test_words(self) -> None:
        self.assertEqual(slugify("Hello, Shop Floor!"), "hello-shop-floor")
```
"""

# Attempt 1 counts characters (the checks catch it, QA fails it); attempt 2 counts words.
_WORDS_REQUEST = """Add `count_words(text)` in a new module `words.py`: the number of words.

```sim-patch path=words.py attempt=1
def count_words(text: str) -> int:
    return len(text)
```

```sim-patch path=words.py attempt=2
def count_words(text: str) -> int:
    return len(text.split())
```

```sim-patch path=test_words.py
import unittest

from words import count_words


class WordsTest(unittest.TestCase):
    def test_counts_words(self) -> None:
        self.assertEqual(count_words("one two  three"), 3)
```
"""

_HOTFIX_REQUEST = '''Production crashes: `ratio(x, 0)` raises ZeroDivisionError in the report job.

```sim-patch path=textutils.py
"""Small text helpers: the Shopfloor demo project."""


def shout(text: str) -> str:
    return text.upper() + "!"


def ratio(part: float, whole: float) -> float:
    if whole == 0:  # HOTFIX: contain the crash; root cause to be fixed properly
        return 0.0
    return part / whole
```
'''

_LOG = """Traceback (most recent call last):
  File "report.py", line 12, in <module>
    print(ratio(done, total))
  File "textutils.py", line 9, in ratio
    return part / whole
ZeroDivisionError: division by zero
"""


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Demo", "-c", "user.email=demo@localhost", *args],
        cwd=root,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def create(directory: Path | None = None) -> Path:
    """A fresh git repository with a tiny Python project, scaffolded for Shopfloor."""
    root = Path(tempfile.mkdtemp(prefix="shopfloor-demo-")) if directory is None else directory
    root.mkdir(parents=True, exist_ok=True)
    _git(root, "init", "--quiet", "--initial-branch=main")
    for name, text in _FILES.items():
        (root / name).write_text(text, "utf-8")
    scaffold.init(root, agents=[])
    checks = f'checks = [["{sys.executable}", "-m", "unittest", "-q"]]'
    cfg = (root / "shopfloor.toml").read_text("utf-8")
    cfg = "\n".join(checks if ln.startswith("checks =") else ln for ln in cfg.splitlines())
    (root / "shopfloor.toml").write_text(cfg + "\n", "utf-8")
    _git(root, "add", "--all")
    _git(root, "commit", "--quiet", "-m", "demo project")
    board = Board(root)
    actions.create_task(
        board, actions.NewTask("Add a slugify helper", _SLUG_REQUEST, source="demo")
    )
    actions.create_task(board, actions.NewTask("Count words", _WORDS_REQUEST, source="demo"))
    log = root / ".shopfloor" / "report-job.log"
    log.write_text(_LOG, "utf-8")
    actions.create_hotfix(board, "ratio crashes on zero", _HOTFIX_REQUEST, log, source="demo")
    return root


def _printer(out: Console) -> Any:
    def log(event: str, **fields: Any) -> None:
        if event.startswith(("claim", "run.end", "notify.", "recover")):
            detail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            out.print(f"  [dim]{task.utc_now()[11:19]}[/] {event:<28} {detail}")

    return log


def _hotfix_change(root: Path, task_id: str) -> str:
    """The agent's own change, against what it started from: never the human's work."""
    with Journal.for_project(root) as journal:
        state = journal.task_state(task_id)
    base, paths = state.get("hotfix_base"), state.get("hotfix_paths")
    if not isinstance(base, str) or not isinstance(paths, list):
        return "(not known: the hotfix did not finish)"
    if not paths:
        return "nothing"
    diff = subprocess.run(
        ["git", "diff", "--stat", base, "--", *paths], cwd=root, capture_output=True, text=True
    )
    return diff.stdout.rstrip().replace("\n", "\n  ") or ", ".join(paths)


def run(root: Path, out: Console) -> int:
    """Drive the board until it is idle, then show what happened."""
    cfg = config.load(root / "shopfloor.toml")
    daemon = Daemon(root, cfg, once=True)
    daemon.shop.log = _printer(out)
    code = daemon.run()
    board = Board(root)
    out.print()
    for entry in board.scan().entries:
        text = board.read_text(entry)
        out.print(
            f"[bold]{entry.id}[/] {entry.header.title}  ->  [cyan]{entry.lane.value}/[/] "
            f"({entry.header.status})"
        )
        for line in (task.get_section(text, "Tracker") or "").splitlines():
            out.print(f"    {line}", markup=False)
        if entry.lane is Lane.HOTFIX:
            out.print("  Verification recorded by the hotfix agent:")
            for line in (task.get_section(text, "Verification") or "(none)").splitlines():
                out.print(f"    {line}", markup=False)
    for entry in board.scan([Lane.HOTFIX]).entries:
        out.print(f"\nWhat the hotfix agent changed ({entry.id}):")
        out.print(f"  {_hotfix_change(root, entry.id)}", markup=False)
    branches = subprocess.run(
        ["git", "branch", "--list", "shopfloor/*"], cwd=root, capture_output=True, text=True
    )
    out.print(f"Task branches waiting for you:\n{branches.stdout.rstrip() or '(none)'}")
    return code
