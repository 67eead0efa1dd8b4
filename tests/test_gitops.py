"""gitops: what the orchestrator commits on a task branch."""

from __future__ import annotations

from pathlib import Path

from shopfloor import gitops
from tests.support import git, make_project


def test_commit_all_leaves_out_the_board_our_state_and_agent_caches(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "app.py").write_text("def answer():\n    return 43\n")
    (root / ".aider.tags.cache.v4").mkdir()
    (root / ".aider.tags.cache.v4" / "cache.db").write_text("x")
    (root / ".aider.chat.history.md").write_text("chat")
    (root / "tasks" / "inbox" / "note.md").write_text("not code")
    sha = gitops.commit_all(root, "change")
    assert sha is not None
    committed = git(root, "show", "--name-only", "--format=", sha).split()
    assert committed == ["app.py"]
