"""A task, whole: its text, the checks' captured output, its diff, its runs and what a person
can do with it.

`load_task` reads the file, the journal (state, runs, costs) and git (the diff); `render_task`
is a pure function of what it read. Sections are shown as the Markdown text they are (in a
`pre`, escaped): what the agents wrote, exactly, with nothing interpreted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import actions, runlogs, task
from shopfloor.board import Board
from shopfloor.journal import open_if_present
from shopfloor.web import diffview
from shopfloor.web.boardpage import can_cancel, can_retry
from shopfloor.web.html import button, esc, money
from shopfloor.words import Lane, Status

#: The body sections shown, in reading order (the tracker and checks have their own blocks).
SECTIONS = ("Request", "Spec", "Verification", "QA notes", "Rework notes")


@dataclass
class TaskData:
    doc: dict[str, Any]  # actions.show_report
    sections: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    checks_run: str = ""
    diff: diffview.TaskDiff = field(default_factory=lambda: diffview.TaskDiff("", ""))
    cost: float = 0.0

    @property
    def task_id(self) -> str:
        return str(self.doc["id"])

    @property
    def hotfix(self) -> bool:
        return bool(self.doc["type"] == "hotfix" or self.doc["lane"] == Lane.HOTFIX.value)


def load_task(board: Board, task_id: str) -> TaskData:
    """Everything the task page shows; `ShopfloorError` (NotFound) for an unknown id."""
    doc = actions.show_report(board, task_id)
    text = doc["text"]
    sections = {n: s for n in SECTIONS if (s := task.get_section(text, n)) is not None}
    data = TaskData(doc=doc, sections=sections)
    state: dict[str, Any] = {}
    journal = open_if_present(board.root)
    if journal is not None:
        with journal:
            state = journal.task_state(data.task_id)
            data.runs = journal.runs(task_id=data.task_id)
    data.cost = sum(float(r["cost_usd"] or 0) for r in data.runs)
    data.checks_run, data.checks = latest_checks(board.root, data.task_id)
    data.diff = diffview.branch_diff(board.root, data.task_id, state, data.hotfix)
    return data


def latest_checks(root: Path, task_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The newest checks run's captured output (checks.json in its run folder: it outlives
    the journal's note of it, which a pass clears)."""
    for run in reversed(runlogs.runs_for(root, task_id)):
        path = run.run_dir / "checks.json"
        if run.role == "checks" and path.is_file():
            try:
                items = json.loads(path.read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(items, list):
                return run.run_id, [i for i in items if isinstance(i, dict)]
    return "", []


# ---------------------------------------------------------------------------- rendering


def render_actions(data: TaskData) -> str:
    """The buttons this task's state allows (the API refuses the rest anyway)."""
    tid, lane, status = data.task_id, data.doc["lane"], data.doc["status"]
    buttons = []
    if status == Status.AWAITING_APPROVAL:
        buttons.append(button("Approve", "approve", tid))
    if can_retry(lane, status):
        buttons.append(button("Retry", "retry", tid))
    if can_cancel(lane, status):
        buttons.append(button("Cancel", "cancel", tid, cls="danger"))
    if lane == Lane.HOTFIX.value and status == Status.AWAITING_HUMAN:
        buttons.append(button("Close hotfix", "close-hotfix", tid))
        buttons.append(button("Close anyway (force)", "close-hotfix-force", tid, cls="danger"))
    return f'<div class="acts">{"".join(buttons)}</div>'


def render_header(data: TaskData) -> str:
    d = data.doc
    tries = f"try {d['attempts']}/{d['max_attempts']}" if d["attempts"] else ""
    facts = [d["lane"] + "/", d["status"], d["priority"], d["type"], tries, money(data.cost)]
    meta = "".join(f"<span>{esc(f)}</span>" for f in facts if f)
    return (
        f'<header class="task-head" data-task-id="{esc(d["id"])}" data-lane="{esc(d["lane"])}">'
        '<a class="back" href="/">← board</a>'
        f'<h1><span class="id">{esc(d["id"])}</span> {esc(d["title"])}</h1>'
        f'<div class="meta">{meta}</div>{render_actions(data)}</header>'
    )


#: Sections longer than this many lines start folded (the diff and QA's notes come first).
FOLD_LINES = 14
#: Read first when a task comes back: what QA or a person asked for.
FIRST = ("QA notes", "Rework notes")


def render_section(name: str, body: str) -> str:
    slug = name.lower().replace(" ", "-")
    text = body.strip()
    folded = name not in FIRST and text.count("\n") >= FOLD_LINES
    return (
        f'<section class="text" id="{slug}"><details{"" if folded else " open"}>'
        f"<summary><h2>{esc(name)}</h2></summary>"
        f'<pre class="md">{esc(text)}</pre></details></section>'
    )


def render_sections(data: TaskData, names: tuple[str, ...]) -> str:
    return "".join(
        render_section(n, data.sections[n]) for n in names if (data.sections.get(n) or "").strip()
    )


def render_tracker(data: TaskData) -> str:
    lines = data.doc.get("tracker") or []
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<section id="tracker"><h2>Tracker</h2><ol class="tracker">{items}</ol></section>'


def render_checks(data: TaskData) -> str:
    if not data.checks:
        return ""
    blocks = []
    for item in data.checks:
        code = item.get("exit_code")
        ok = "pass" if code == 0 else "fail"
        blocks.append(
            f'<details class="check {ok}" {"" if code == 0 else "open"}><summary>'
            f"<code>{esc(item.get('command', ''))}</code> exit {esc(code)} "
            f"({esc(item.get('ending', ''))})</summary>"
            f'<pre class="out">{esc(item.get("tail", "")) or "(no output)"}</pre></details>'
        )
    run = esc(data.checks_run)
    return f'<section id="checks"><h2>Checks <small>{run}</small></h2>{"".join(blocks)}</section>'


def render_diff_section(data: TaskData) -> str:
    hint = (
        '<p class="hint">Click a line to comment on it; send the comments with '
        "<b>Send back to the Coder</b> below.</p>"
        if data.diff.text.strip()
        else ""
    )
    return (
        f'<section id="diff"><h2>Diff <small>{esc(data.diff.what)}</small></h2>{hint}'
        f'<div class="diffwrap">{diffview.render_diff(data.diff.text)}</div></section>'
    )


def _run_row(run: dict[str, Any], task_id: str) -> str:
    running = run["state"] == "running"
    outcome = "running" if running else (run.get("outcome") or run["state"])
    tokens = ""
    if run.get("tokens_in") or run.get("tokens_out"):
        tokens = f"{run.get('tokens_in') or 0:,} in / {run.get('tokens_out') or 0:,} out"
    url = f"/api/v1/{task_id}/runs/{run['id']}/log"
    facts = [run["role"], run.get("agent") or "", outcome, run["started_at"], tokens]
    summary = "".join(f"<span>{esc(f)}</span>" for f in facts if f)
    cost = money(run.get("cost_usd")) or ("$—" if running else "")
    return (
        f'<details class="run-log{" live" if running else ""}" data-run-id="{esc(run["id"])}" '
        f'data-log-url="{esc(url)}"{" open" if running else ""}>'
        f'<summary><b>{esc(run["id"])}</b> {summary}<span class="cost">{esc(cost)}</span>'
        f'</summary><pre class="log"></pre></details>'
    )


def render_runs(data: TaskData) -> str:
    if not data.runs:
        return '<section id="runs"><h2>Runs</h2><p class="empty">No runs yet.</p></section>'
    rows = "".join(_run_row(r, data.task_id) for r in reversed(data.runs))
    total = money(data.cost)
    return f'<section id="runs"><h2>Runs <small>{esc(total)}</small></h2>{rows}</section>'


def render_rework(data: TaskData) -> str:
    if data.hotfix or data.doc["lane"] == Lane.INBOX.value:
        return ""
    return (
        f'<section id="rework"><h2>Send back to the Coder</h2>'
        f'<form class="rework" data-task="{esc(data.task_id)}">'
        '<ol class="pending-comments"></ol>'
        '<label>Notes for the next attempt<textarea name="notes" rows="4" '
        'placeholder="What to change (the inline comments above go with it)"></textarea></label>'
        '<button type="submit">Send back to the Coder</button></form></section>'
    )


def render_task(data: TaskData) -> str:
    """The task page's body."""
    return (
        f'<main class="task" data-task-id="{esc(data.task_id)}">{render_header(data)}'
        f"{render_sections(data, FIRST)}{render_checks(data)}{render_diff_section(data)}"
        f"{render_rework(data)}{render_sections(data, ('Request', 'Spec', 'Verification'))}"
        f"{render_runs(data)}{render_tracker(data)}"
        '<div id="toast" role="status" aria-live="polite"></div></main>'
    )
