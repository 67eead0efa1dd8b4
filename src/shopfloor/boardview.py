"""The board as lines for a terminal: one line per task, fitted to a width, padded by hand.

`status` prints these lines and the live board (`shopfloor board`) redraws them. They are
built from the `status --json` document, so what a person reads and what a script reads can
never disagree. Padding by hand, not a rich Table: a Table measured ~130 µs a cell (6.1 s for
10,000 tasks); these lines take about 2 µs a cell.

Rules: ids are never cut (they are what people copy); titles are cut with an ellipsis; a
column with nothing in it is left out; hotfixes come first; done/ is a count unless `--all`
(failed/ shows its newest few). Every piece of someone's text goes through `display.safe`,
so a control character in a title is shown as its escape, never sent to the terminal.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from dataclasses import dataclass
from typing import Any

from shopfloor.display import safe

#: Lanes listed task by task, in this order (hotfixes first); done/ and failed/ follow.
BUSY_LANES = ("hotfix", "inbox", "backlog", "active", "review")
#: failed/ shows its newest few unless --all (done/ only its count).
FAILED_TAIL = 5
#: A title narrower than this is dropped from a row rather than cut to a stump.
MIN_TITLE = 12
#: The id column never takes so much room that titles get less than this.
TITLE_ROOM = 24
ELLIPSIS = "…"
GAP = "  "

_RESET = "\x1b[0m"
_STYLES = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "cyan": "\x1b[36m",
}
_LANE_STYLE = {"hotfix": "red", "active": "green", "review": "yellow", "failed": "red"}
_STATUS_STYLE = {
    "awaiting-human": "yellow",
    "awaiting-approval": "yellow",
    "blocked": "yellow",
    "landing": "cyan",
}


# ---------------------------------------------------------------------------- widths


def terminal_width(explicit: int | None = None) -> int:
    """Columns to fit: `explicit`, else $COLUMNS, else the terminal's width, else 80
    (stdout is a pipe or a file)."""
    if explicit:
        return max(20, explicit)
    return max(20, shutil.get_terminal_size((80, 24)).columns)


def wants_color(stream: Any) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def _char_cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal columns `text` takes (wide CJK characters take two, combining marks none)."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(c) for c in text)


def fit(text: str, width: int) -> str:
    """`text` cut to `width` columns, an ellipsis marking the cut."""
    if cells(text) <= width:
        return text
    if width <= 0:
        return ""
    if text.isascii():
        return text[: width - 1] + ELLIPSIS
    out, used = [], 0
    for char in text:
        size = _char_cells(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + ELLIPSIS


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cells(text))


def paint(text: str, style: str | None, color: bool) -> str:
    if not color or not style or not text:
        return text
    return _STYLES[style] + text + _RESET


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class Row:
    """One task line's cells, already made safe for a terminal."""

    lane: str
    priority: str
    status: str
    tries: str
    cost: str
    task_id: str
    title: str


#: (header, Row attribute) of the fixed-width columns, left to right; id and title follow.
_COLUMNS = (
    ("lane", "lane"),
    ("pri", "priority"),
    ("status", "status"),
    ("try", "tries"),
    ("cost", "cost"),
)


def _row(item: dict[str, Any], spent: dict[str, float]) -> Row:
    cost = spent.get(item["id"])
    tries = f"{item['attempts']}/{item['max_attempts']}" if item["attempts"] else ""
    return Row(
        lane=item["lane"],
        priority=safe(item["priority"]),
        status=safe(item["status"]),
        tries=tries,
        cost=f"${cost:.2f}" if cost else "",
        task_id=safe(item["id"]),
        title=safe(item["title"]),
    )


def select_rows(report: dict[str, Any], show_all: bool) -> tuple[list[Row], list[str]]:
    """The rows to list, hotfixes first, and what was left out ("5,940 in done/")."""
    by_lane: dict[str, list[dict[str, Any]]] = {}
    for item in report["tasks"]:
        by_lane.setdefault(item["lane"], []).append(item)
    spent = report["spend"]["by_task"]
    rows: list[Row] = []
    left_out: list[str] = []
    for lane in (*BUSY_LANES, "failed", "done"):
        items = by_lane.get(lane, [])
        if not show_all and lane == "done":
            if items:
                left_out.append(f"{len(items):,} in done/")
            continue
        if not show_all and lane == "failed" and len(items) > FAILED_TAIL:
            left_out.append(f"{len(items) - FAILED_TAIL:,} older in failed/")
            items = sorted(items, key=lambda i: i["updated"] or "")[-FAILED_TAIL:]
        rows.extend(_row(item, spent) for item in items)
    return rows, left_out


def task_lines(rows: list[Row], width: int, color: bool) -> list[str]:
    """The table: a header and one line per row, none wider than `width` (unless one id alone
    is wider than the width: ids are never cut)."""
    if not rows:
        return []
    shown = [
        (head, attr, max(cells(head), *(cells(getattr(r, attr)) for r in rows)))
        for head, attr in _COLUMNS
        if any(getattr(r, attr) for r in rows)  # an empty column is not shown
    ]
    fixed = sum(w + len(GAP) for _, _, w in shown)
    # Ids are never cut; one too long for the column overflows its own row (its title is
    # cut shorter or left out) rather than narrow every other row's title.
    title_room = TITLE_ROOM if width >= 80 else MIN_TITLE
    room = width - fixed - len(GAP) - title_room
    id_width = max([2, *(n for r in rows if (n := cells(r.task_id)) <= room)])
    head = "".join(pad(h, w) + GAP for h, _, w in shown) + pad("id", id_width) + GAP + "title"
    lines = [paint(fit(head, width), "dim", color)]
    for row in rows:
        lines.extend(_row_lines(row, shown, fixed, id_width, width, color))
    return lines


def _row_lines(
    row: Row, shown: list[tuple[str, str, int]], fixed: int, id_width: int, width: int, color: bool
) -> list[str]:
    """A task's line; two when its id does not fit beside its cells (the id then has a line
    of its own, so it is still whole and still easy to copy)."""
    cells_text = "".join(
        paint(pad(getattr(row, attr), w), _cell_style(attr, getattr(row, attr)), color) + GAP
        for _, attr, w in shown
    )
    id_cells = cells(row.task_id)
    if fixed + id_cells > width:
        title = fit(row.title, width - fixed - id_width - len(GAP))
        first = f"{cells_text}{pad('', id_width)}{GAP}{title}".rstrip()
        indent = " " * min(len(GAP), max(0, width - id_cells))
        return [first, f"{indent}{row.task_id}"]
    room = width - fixed - max(id_width, id_cells) - len(GAP)
    title = fit(row.title, room) if room >= MIN_TITLE or cells(row.title) <= room else ""
    line = cells_text + pad(row.task_id, id_width)
    return [f"{line}{GAP}{title}" if title else line.rstrip()]


def _cell_style(attr: str, value: str) -> str | None:
    if attr == "lane":
        return _LANE_STYLE.get(value)
    if attr == "status":
        return _STATUS_STYLE.get(value)
    return None


# ---------------------------------------------------------------------------- the rest


def wrap_words(words: list[tuple[str, str]], width: int, sep: str = "  ") -> list[str]:
    """(plain, painted) words joined by `sep` into lines of at most `width` plain columns."""
    lines: list[str] = []
    current: list[str] = []
    used = 0
    for plain, painted in words:
        size = cells(plain)
        if current and used + len(sep) + size > width:
            lines.append(sep.join(current))
            current, used = [], 0
        used += (len(sep) if current else 0) + size
        current.append(painted)
    if current:
        lines.append(sep.join(current))
    return lines


def count_lines(report: dict[str, Any], width: int, color: bool) -> list[str]:
    """ "hotfix 1  inbox 3  …": every lane's count, wrapped to the width."""
    counts = report["counts"]
    order = [*BUSY_LANES, *(lane for lane in counts if lane not in BUSY_LANES)]
    words = [
        (f"{lane} {counts[lane]:,}", f"{paint(lane, 'bold', color)} {counts[lane]:,}")
        for lane in order
        if lane in counts
    ]
    return wrap_words(words, width)


def age(seconds: int) -> str:
    """A run's age: 42s, 3m05s, 1h02m."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def note(label: str, style: str, text: str, width: int, color: bool) -> str:
    """One labelled line under the table, cut to the width ("running  R-3 coder …")."""
    body = fit(safe(text), width - cells(label) - len(GAP))
    return f"{paint(label, style, color)}{GAP}{body}"


def run_line(run: dict[str, Any], width: int, color: bool) -> str:
    agent = f" {run['agent']}" if run.get("agent") else ""
    where = f" on {run['worker']}" if run.get("worker") else ""
    text = (
        f"{run['task_id']} {run['role']}{agent}{where} {run['run_id']} "
        f"for {age(run['age_seconds'])}"
    )
    return note("running", "green", text, width, color)


_ENGINE_STYLE = {"up": "dim", "down": "red"}


def engine_lines(engine: dict[str, Any] | None, width: int, color: bool) -> list[str]:
    """`[scale] engine = "temporal"`: where the engine is, up or down since when (none in
    the embedded mode)."""
    if not engine:
        return []
    from shopfloor.scale.state import DOWN, DOWN_ADVICE, engine_text

    style = _ENGINE_STYLE.get(str(engine.get("state")), "yellow")
    lines = [note("engine", style, engine_text(engine), width, color)]
    if engine.get("state") == DOWN:
        lines.append(note("engine", style, DOWN_ADVICE, width, color))
    return lines


def note_lines(report: dict[str, Any], width: int, color: bool) -> list[str]:
    """What is running or waiting, and what needs a human, under the table."""
    lines = engine_lines(report.get("engine"), width, color)
    lines.extend(run_line(run, width, color) for run in report["runs"])
    lines.extend(landing_lines(report.get("landing"), width, color))
    for pause in report["paused"]:
        text = f"agent {pause['agent']} until {pause['until']}: {pause['reason']}"
        lines.append(note("paused", "yellow", text, width, color))
    if report.get("journal_error"):
        text = f"{report['journal_error']} (the daemon starts a new one)"
        lines.append(note("journal", "yellow", text, width, color))
    spend = report["spend"]
    if spend["today_usd"] or spend["by_task"]:
        text = f"today ${spend['today_usd']:.2f}, all tasks ${spend['total_usd']:.2f}"
        lines.append(note("spend", "dim", text, width, color))
    for channel, count in report["outbox"].items():
        text = f"{count} notification(s) waiting for {channel}"
        lines.append(note("outbox", "yellow", text, width, color))
    for problem in report["invalid"]:
        lines.append(
            note("invalid", "red", f"{problem['path']}: {problem['reason']}", width, color)
        )
    for problem in report["unreadable"]:
        text = f"{problem['path']}: {problem['reason']}"
        lines.append(note("unreadable", "red", text, width, color))
    for conflict in report["conflicts"]:
        text = f"{conflict['id']} is in {', '.join(conflict['paths'])}"
        lines.append(note("conflict", "red", text, width, color))
    for folder in report["unknown_folders"]:
        text = f"{folder} is not a lane; its files are ignored"
        lines.append(note("unknown folder", "yellow", text, width, color))
    return lines


def landing_lines(queue: dict[str, Any] | None, width: int, color: bool) -> list[str]:
    """The merge queue: what is ready, what is being checked, why it waits."""
    if not queue or not (queue.get("ready") or queue.get("problem")):
        return []
    target = queue.get("target") or "the target"
    lines = []
    if queue.get("checking"):
        text = f"checking {', '.join(queue['checking'])} on top of {target}"
        lines.append(note("landing", "cyan", text, width, color))
    elif queue.get("ready"):
        text = f"{', '.join(queue['ready'])} ready to land on {target}"
        lines.append(note("landing", "cyan", text, width, color))
    if queue.get("waiting"):
        lines.append(note("landing", "yellow", f"waits: {queue['waiting']}", width, color))
    if queue.get("problem"):
        lines.append(note("landing", "red", queue["problem"], width, color))
    return lines


def status_lines(report: dict[str, Any], width: int, show_all: bool, color: bool) -> list[str]:
    """`shopfloor status` for people: counts, one line per task, then the notes."""
    lines: list[str] = []
    if report.get("config_error"):
        lines.append(note("config", "red", report["config_error"], width, color))
        lines.append(fit("        a running daemon keeps its last good config until fixed", width))
    lines.extend(count_lines(report, width, color))
    rows, left_out = select_rows(report, show_all)
    lines.extend(task_lines(rows, width, color))
    if left_out:
        text = f"not listed: {', '.join(left_out)} (status --all lists them)"
        lines.append(paint(fit(text, width), "dim", color))
    lines.extend(note_lines(report, width, color))
    return lines
