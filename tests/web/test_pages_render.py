"""The board and task pages as HTML, from a real project's files (no server, no browser)."""

from __future__ import annotations

import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from shopfloor import actions
from shopfloor.board import Board
from shopfloor.web import boardpage, diffview, taskpage
from shopfloor.web.html import page

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class _Tags(HTMLParser):
    """Every start tag with its attributes (to assert on the markup, not on substrings)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_board_has_a_column_per_lane_and_a_card_per_task(project: Path) -> None:
    board = Board(project)
    first = actions.create_task(board, actions.NewTask("Add a thing"))
    second = actions.create_task(board, actions.NewTask("Spec ready", backlog=True))
    hot = actions.create_hotfix(board, "Prod is down")
    html = boardpage.render_live(boardpage.load_board(Board(project)))
    found = tags(html)
    lanes = [a["data-lane"] for t, a in found if t == "section" and "data-lane" in a]
    assert lanes == ["hotfix", "inbox", "backlog", "active", "review", "done", "failed"]
    cards = {a["data-task-id"] for t, a in found if t == "li" and "data-task-id" in a}
    assert cards == {first.id, second.id, hot.id}
    # The hotfix is in the red band, before every lane.
    assert html.index(hot.id) < html.index('data-lane="inbox"')


def test_task_text_is_escaped_everywhere(project: Path) -> None:
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask(f"Title {XSS}", f"Body {XSS}"))
    html = boardpage.render_live(boardpage.load_board(Board(project)))
    html += taskpage.render_task(taskpage.load_task(Board(project), entry.id))
    assert not [t for t, _ in tags(html) if t in ("script", "img")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_page_shell_embeds_the_csrf_token_in_a_meta_tag() -> None:
    html = page("t", "<p>x</p>", 'abc"><script>')
    metas = [a for t, a in tags(html) if t == "meta" and a.get("name") == "csrf-token"]
    assert metas == [{"name": "csrf-token", "content": 'abc"><script>'}]
    assert [t for t, _ in tags(html) if t == "script"] == ["script"]  # only board.js


def test_a_lane_shows_its_cap_and_says_how_many_more(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(boardpage, "LANE_CAP", 3)
    board = Board(project)
    for n in range(5):
        actions.create_task(board, actions.NewTask(f"Task {n}"))
    data = boardpage.load_board(Board(project))
    assert len(data.lanes["inbox"]) == 3 and data.totals["inbox"] == 5
    assert "2 more in inbox/" in boardpage.render_live(data)


def test_cards_offer_the_decision_they_wait_for(project: Path) -> None:
    board = Board(project)
    entry = actions.create_task(board, actions.NewTask("Gate me", backlog=True))
    path = entry.path
    path.write_text(path.read_text().replace("status: queued", "status: awaiting-approval"))
    html = boardpage.render_live(boardpage.load_board(Board(project)))
    buttons = [a for t, a in tags(html) if t == "button"]
    assert {"data-action": "approve", "data-task": entry.id, "type": "button"} in buttons


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def test_the_diff_of_a_branch_is_highlighted_with_line_anchors(project: Path) -> None:
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "init")
    base = _git(project, "rev-parse", "HEAD").strip()
    _git(project, "switch", "-qc", "shopfloor/T-0001")
    (project / "app.py").write_text("a = 1\nb = '<b>bold</b>'\n")
    _git(project, "add", "app.py")
    _git(project, "commit", "-qm", "work")
    _git(project, "switch", "-q", "main")
    got = diffview.branch_diff(project, "T-0001", {"base": base}, hotfix=False)
    assert "shopfloor/T-0001 against" in got.what
    html = diffview.render_diff(got.text)
    rows = [a for t, a in tags(html) if t == "tr" and a.get("data-line")]
    assert [(r["data-path"], r["data-line"], r["data-side"]) for r in rows] == [
        ("app.py", "1", "new"),
        ("app.py", "2", "new"),
    ]
    assert '<span class="gi">+b = &#x27;&lt;b&gt;bold&lt;/b&gt;&#x27;</span>' in html
    assert ".diff .gi" in diffview.style_css()


def test_hunk_line_numbers_follow_removed_and_context_lines() -> None:
    text = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -10,4 +20,4 @@\n keep\n-gone\n+new\n keep2\n"
    rows = re.findall(r'data-line="(\d+)" data-side="(\w+)"', diffview.render_diff(text))
    assert rows == [("20", "new"), ("11", "old"), ("21", "new"), ("22", "new")]


def test_no_branch_yet_says_so(project: Path) -> None:
    got = diffview.branch_diff(project, "T-0009", {}, hotfix=False)
    assert got.text == "" and "no branch yet" in got.what


def test_done_shows_its_newest_and_counts_the_rest(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(boardpage, "DONE_CAP", 2)
    board = Board(project)
    ids = []
    for n in range(4):
        entry = actions.create_task(board, actions.NewTask(f"Finished {n}"))
        moved = project / "tasks" / "done" / entry.name
        entry.path.rename(moved)
        stamp = 1_700_000_000 + n * 60  # written one after another
        os.utime(moved, (stamp, stamp))
        ids.append(entry.id)
    data = boardpage.load_board(Board(project))
    assert data.totals["done"] == 4
    assert {c.task_id for c in data.lanes["done"]} == set(ids[2:])
    assert "2 more in done/" in boardpage.render_live(data)
