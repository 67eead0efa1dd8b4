"""Rework from the browser: an inline comment on a diff line reaches the next Coder's prompt.

The whole way round, for real: the simulator Coder builds a task on its branch (the daemon,
git worktrees, the orchestrator's checks and QA), the page shows that branch's diff, a person
clicks a line and comments, "Send back to the Coder" posts it, and the next daemon pass renders
the Coder prompt file with the comment in its `## Rework notes`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from shopfloor import actions, config, task
from shopfloor.board import Board
from shopfloor.runlogs import runs_for
from shopfloor.scheduler import Daemon
from tests.conftest import wait_until
from tests.web.browser import SETTLE, Served

pytest_plugins = ["tests.web.browser_fixtures"]

REQUEST = """Add `double(x)` in a new module `maths.py`.

```sim-patch path=maths.py
def double(x):
    return x * 2
```
"""


def _run_daemon_once(root: Path) -> None:
    Daemon(root, config.load(root / "shopfloor.toml"), once=True).run()


def _coder_prompts(root: Path, task_id: str) -> list[str]:
    runs = [r for r in runs_for(root, task_id) if r.role == "coder"]
    return [(r.run_dir / "prompt.md").read_text() for r in runs]


@pytest.mark.slow
def test_an_inline_diff_comment_reaches_the_next_coder_prompt(page: Any, served: Served) -> None:
    if not hasattr(actions, "rework"):
        pytest.skip("actions.rework is not in this tree yet (helper rework-pr, issue 12)")
    root = served.root
    cfg = (root / "shopfloor.toml").read_text()
    checks = f'checks = [["{sys.executable}", "-c", "print(1)"]]'
    lines = [checks if ln.startswith("checks =") else ln for ln in cfg.splitlines()]
    (root / "shopfloor.toml").write_text("\n".join(lines) + "\n")
    entry = actions.create_task(Board(root), actions.NewTask("Double it", REQUEST, backlog=True))
    _run_daemon_once(root)
    done = Board(root).find(entry.id)
    assert done.lane.value in ("review", "done"), done.lane
    assert len(_coder_prompts(root, entry.id)) == 1

    page.goto(f"{served.url}/task/{entry.id}")
    line = page.locator('table.diff tr.ln[data-path="maths.py"][data-line="2"]')
    expect(line).to_contain_text("return x * 2")
    line.click()
    page.fill("tr.comment-box textarea", "Use a shift here: x << 1, and add a test")
    page.click("tr.comment-box button.add-comment")
    expect(page.locator("ol.pending-comments li")).to_contain_text("maths.py:2")
    page.fill('form.rework textarea[name="notes"]', "Also keep the module docstring.")
    page.click('form.rework button[type="submit"]')

    def sent_back() -> str | None:
        moved = Board(root).find(entry.id)
        if moved.lane.value != "backlog":
            return None
        try:  # the server may move it again between our find and our read
            notes = task.get_section(Board(root).read_text(moved), "Rework notes") or ""
        except FileNotFoundError:
            return None
        return notes if "x << 1" in notes else None

    notes = str(wait_until(sent_back, 20, "the task back in backlog/ with the rework notes"))
    assert "maths.py" in notes and "2" in notes and "module docstring" in notes
    head = page.locator("header.task-head")
    expect(head).to_have_attribute("data-lane", "backlog", timeout=SETTLE)

    _run_daemon_once(root)  # the simulator writes the same file again: "changed nothing"
    prompts = _coder_prompts(root, entry.id)
    assert len(prompts) >= 2  # the rendered prompt of the first Coder run after the rework
    rework = prompts[1].split("## Rework notes (the task was sent back to you", 1)[1]
    assert "`maths.py:2`: Use a shift here: x << 1, and add a test" in rework
    assert "Also keep the module docstring." in rework
