"""`shopfloor status` for people: one line per task fitted to the width, ids whole, titles cut
with an ellipsis, empty columns left out, hotfixes first, done/ as a count (issue 10).

The golden boards are real task files in a real project read by the real `status_report`;
only the journal's part (runs with their ages, spend) is fixed, so the text is deterministic.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shopfloor import actions, task
from shopfloor.board import Board
from shopfloor.boardview import cells, status_lines

from .conftest import CliRun

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG_HOTFIX = "HOTFIX-bot-crashes-on-startup-when-the-telegram-token"


def put(root: Path, lane: str, task_id: str, title: str, **fields: Any) -> None:
    """A task file as Shopfloor writes it, with fixed times."""
    header = task.Header(
        id=task_id,
        title=title,
        created="2026-11-25T10:00:00Z",
        updated=fields.pop("updated", "2026-11-25T10:00:00Z"),
        **fields,
    )
    slug = task.slugify(title) if task_id.startswith("T-") else ""
    name = f"{task_id}-{slug}.md" if slug else f"{task_id}.md"
    text = task.render_new(header, sections={"Request": title}, tracker=None)
    (root / "tasks" / lane / name).write_text(text)


def sample_board(root: Path) -> None:
    """23 tasks like the issue's board: two hotfixes (one with a long slug), a spread of
    lanes, many done, a title with an escape sequence, one with CJK characters."""
    put(root, "hotfix", LONG_HOTFIX, "Bot crashes on startup when the Telegram token has "
        "expired and the retry loop spins", type="hotfix", priority="P0", max_attempts=1,
        status="awaiting-human", attempts=1)  # fmt: skip
    put(root, "hotfix", "HOTFIX-db-down", "DB down", type="hotfix", priority="P0",
        max_attempts=1, status="running", attempts=1)  # fmt: skip
    put(root, "inbox", "T-0021", "Retry Telegram sends with exponential backoff and a cap")
    put(root, "inbox", "T-0022", "Add a --since flag to `shopfloor logs`")
    put(root, "inbox", "T-0023", "Title with \x1b[2J an escape that would clear the screen")
    put(root, "backlog", "T-0017", "Cache parsed headers across runs of status", priority="P1")
    put(root, "backlog", "T-0018", "日本語のタイトル：ボードの表示を直す")
    put(root, "active", "T-0015", "Make `status` fit in eighty columns", status="running",
        attempts=1)  # fmt: skip
    put(root, "review", "T-0014", "Document the sim-patch format", attempts=2)
    put(root, "failed", "T-0009", "Flaky network test", status="closed", attempts=3)
    for n in range(1, 18):
        if n not in (9, 14, 15, 17):
            put(root, "done", f"T-{n:04d}", f"Finished work number {n}", status="closed")


def report_of(root: Path) -> dict[str, Any]:
    """What `status --json` says about the board, with the journal's part fixed."""
    report = actions.status_report(Board(root))
    report.update(
        runs=[
            {
                "run_id": "R-41",
                "task_id": "T-0015",
                "role": "coder",
                "agent": "claude",
                "started_at": "2026-11-25T10:00:00Z",
                "age_seconds": 125,
            },
            {
                "run_id": "R-42",
                "task_id": "HOTFIX-db-down",
                "role": "hotfix",
                "agent": "codex",
                "started_at": "2026-11-25T10:00:00Z",
                "age_seconds": 42,
            },
        ],
        outbox={},
        spend=actions.spend_json({"T-0014": 0.4213, "T-0015": 1.5}, 1.9213),
        paused=[],
        journal_error=None,
        config_error=None,
    )
    return report


#: The expected text as files: a change to the view is a change to these, reviewed like code.
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("width", [80, 120])
def test_status_golden(project: Path, width: int) -> None:
    sample_board(project)
    text = "".join(f"{line}\n" for line in status_lines(report_of(project), width, False, False))
    assert text == (GOLDEN / f"status-{width}.txt").read_text("utf-8")


def test_status_all_lists_done_and_failed_in_full(project: Path) -> None:
    sample_board(project)
    for n in range(30, 40):
        put(project, "failed", f"T-{n:04d}", f"Failed {n}", updated=f"2026-11-25T10:{n}:00Z")
    lines = status_lines(report_of(project), 80, False, False)
    assert sum(line.startswith("failed ") for line in lines) == 5  # the newest five
    assert "T-0039" in "\n".join(lines) and "T-0030" not in "\n".join(lines)
    assert "not listed: 6 older in failed/, 13 in done/ (status --all lists them)" in lines
    everything = status_lines(report_of(project), 80, True, False)
    assert sum(line.startswith("done ") for line in everything) == 13
    assert sum(line.startswith("failed ") for line in everything) == 11
    assert not any(line.startswith("not listed") for line in everything)


def test_an_empty_cost_column_is_not_shown(project: Path) -> None:
    sample_board(project)
    report = report_of(project)
    report["spend"] = actions.spend_json({}, 0.0)
    lines = status_lines(report, 80, False, False)
    assert lines[1].split() == ["lane", "pri", "status", "try", "id", "title"]
    assert not any("$" in line for line in lines)


@pytest.mark.parametrize("width", [60, 72, 80, 100, 120, 200])
def test_no_line_is_wider_than_the_width_and_ids_stay_whole(project: Path, width: int) -> None:
    """Long titles (200 characters, wide CJK, escapes), the longest hotfix ids: every line fits,
    and every id is printed whole on some line."""
    sample_board(project)
    long_title = "A very long title " * 11
    put(project, "hotfix", "HOTFIX-" + "x" * 48 + "-12", long_title, type="hotfix")
    put(project, "inbox", "T-0100", "漢" * 150)
    put(project, "inbox", "T-0101", "\x1b]0;pwned\x07" * 20)
    put(project, "backlog", "T-0102", "e\u0301" * 150)  # combining accents take no column
    report = report_of(project)
    report["paused"] = [{"agent": "claude", "until": "2026-11-25T11:00:00Z", "reason": "r" * 300}]
    for color in (False, True):
        lines = status_lines(report, width, True, color)
        plain = [ANSI.sub("", line) for line in lines]
        too_wide = [line for line in plain if cells(line) > width]
        assert not too_wide, too_wide
        assert not any("\x1b" in line or "\x07" in line for line in plain)
        for item in report["tasks"]:
            assert any(item["id"] in line.split() for line in plain), item["id"]


def run_status(
    root: Path, *args: str, columns: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", "status", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_status_command_fits_columns_or_80_and_never_colours_a_pipe(project: Path) -> None:
    sample_board(project)
    for columns, width, args in ((None, 80, ()), ("120", 120, ()), ("120", 70, ("--width", "70"))):
        proc = run_status(project, *args, columns=columns)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert "\x1b" not in proc.stdout  # not a terminal: no colour, the escape title escaped
        assert max(cells(line) for line in lines) <= width
        assert any(LONG_HOTFIX in line.split() for line in lines)
    wide = run_status(project, columns="120").stdout
    assert f"{LONG_HOTFIX}  Bot crashes" in wide  # at 120 it has its title beside it


def test_status_json_is_unchanged_by_the_human_view(project: Path, cli: CliRun) -> None:
    sample_board(project)
    proc = cli(project, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    document = __import__("json").loads(proc.stdout)
    assert len(document["tasks"]) == 23 and document["counts"]["done"] == 13
    assert cli(project, "status", "--json", "--watch").returncode == 2
