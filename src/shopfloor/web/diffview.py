"""A task's diff as HTML: its branch against its base, one table row per line.

Highlighting is Pygments' DiffLexer, its tokens written as spans with Pygments' short CSS
classes (`gi` inserted, `gd` deleted, `gu` hunk header…; the colours come from
`style_css`). Each line of a file carries `data-path` and `data-line` (the new file's line
number; for a removed line the old one, with `data-side="old"`), which is what an inline
comment is attached to when a reviewer clicks a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygments import lex
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer
from pygments.token import STANDARD_TYPES

from shopfloor import gitops
from shopfloor.web.html import esc

#: Characters of diff shown (a huge generated file must not stall the page).
DIFF_LIMIT = 300_000
#: The Pygments style the diff colours come from (readable on a dark page).
STYLE = "monokai"
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class TaskDiff:
    text: str
    what: str  # "T-0001's branch shopfloor/T-0001 against 1a2b3c4d5e" or why there is none


def branch_diff(root: Path, task_id: str, state: dict[str, Any], hotfix: bool) -> TaskDiff:
    """What the task changed: a branch against the base the pipeline recorded (`base`,
    `branch` in its journal state), or a hotfix's live tree against its snapshot."""
    try:
        if hotfix:
            return _hotfix_diff(root, state)
        branch = str(state.get("branch") or f"shopfloor/{task_id}")
        if not gitops.branch_exists(root, branch):
            return TaskDiff("", "no branch yet: the Coder has not started")
        base = state.get("base") or gitops.merge_base(root, branch, "HEAD")
        if not base:
            return TaskDiff("", f"{branch} shares no history with HEAD")
        text = gitops.diff_refs(root, str(base), branch, DIFF_LIMIT)
        return TaskDiff(text, f"{branch} against {str(base)[:10]}")
    except gitops.GitError as exc:
        return TaskDiff("", f"git could not show the diff: {exc}")


def _hotfix_diff(root: Path, state: dict[str, Any]) -> TaskDiff:
    base = state.get("hotfix_base")
    if not base:
        return TaskDiff("", "the hotfix agent has not started")
    text = gitops.diff_refs(root, str(base), None, DIFF_LIMIT)
    return TaskDiff(text, f"the live tree against the snapshot {str(base)[:10]}")


# ---------------------------------------------------------------------------- highlighting


def _css_class(ttype: Any) -> str:
    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return str(STANDARD_TYPES[ttype])


def highlighted_lines(text: str) -> list[str]:
    """The diff's lines as escaped HTML with Pygments' classes, one string per line."""
    lines: list[list[str]] = [[]]
    for ttype, value in lex(text, DiffLexer()):
        cls = _css_class(ttype)
        for i, part in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if part:
                lines[-1].append(f'<span class="{cls}">{esc(part)}</span>' if cls else esc(part))
    if text.endswith("\n"):
        lines.pop()  # the last newline ends the last line; it starts none
    return ["".join(parts) for parts in lines]


def style_css() -> str:
    """The colours of the diff's classes, scoped to `.diff`."""
    rules = str(HtmlFormatter(style=STYLE).get_style_defs(".diff")).splitlines()
    return "\n".join(r for r in rules if r.startswith(".diff")) + "\n"  # not its `pre` rules


# ---------------------------------------------------------------------------- rows


@dataclass
class _Cursor:
    path: str = ""
    old: int = 0
    new: int = 0
    in_hunk: bool = False


def _file_path(line: str, cursor: _Cursor) -> None:
    if line.startswith("diff --git "):
        cursor.in_hunk = False
        cursor.path = line.rsplit(" b/", 1)[-1] if " b/" in line else ""
    elif line.startswith("+++ ") and not cursor.in_hunk:
        target = line[4:].strip()
        if target != "/dev/null":
            cursor.path = target.removeprefix("b/")


def _row(raw: str, shown: str, cursor: _Cursor) -> str:
    """One diff line as a table row; lines inside a hunk carry where they are."""
    hunk = _HUNK.match(raw)
    if hunk:
        cursor.old, cursor.new, cursor.in_hunk = int(hunk[1]), int(hunk[2]), True
        return f'<tr class="d-hunk"><td class="no"></td><td class="code">{shown}</td></tr>'
    if not cursor.in_hunk or raw.startswith("\\"):
        _file_path(raw, cursor)
        kind = "d-file" if raw.startswith("diff --git") else "d-meta"
        return f'<tr class="{kind}"><td class="no"></td><td class="code">{shown}</td></tr>'
    if raw.startswith("-"):
        line, side, kind = cursor.old, "old", "del"
        cursor.old += 1
    else:
        line, side, kind = cursor.new, "new", "add" if raw.startswith("+") else "ctx"
        cursor.new += 1
        if kind == "ctx":
            cursor.old += 1
    return (
        f'<tr class="ln {kind}" data-path="{esc(cursor.path)}" data-line="{line}" '
        f'data-side="{side}"><td class="no">{line}</td><td class="code">{shown or " "}</td></tr>'
    )


def render_diff(text: str) -> str:
    """The diff as a table the page can comment on (empty text: a short note)."""
    if not text.strip():
        return '<p class="empty">No changes.</p>'
    cursor = _Cursor()
    rows = []
    for raw, shown in zip(text.split("\n"), highlighted_lines(text), strict=False):
        if raw.startswith("diff --git "):
            cursor.in_hunk = False
        rows.append(_row(raw, shown, cursor))
    return f'<table class="diff highlight"><tbody>{"".join(rows)}</tbody></table>'
