"""What every crash, fault and person's move must leave true on a board.

Shared by the trust tests, the crash fuzz test and the crash fuzz benchmark: one definition
of "sound". `board_violations` returns the broken rules as sentences (the benchmark counts
them); `assert_board_sound` fails a test with all of them at once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from shopfloor import _fs, lifecycle, task
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from shopfloor.words import Event

#: Events that record an agent's verdict (or a finished hotfix): never applied twice for one
#: task and attempt, whatever crashed in between.
VERDICTS = frozenset(
    {
        Event.SPEC_WRITTEN,
        Event.SPEC_GATED,
        Event.SPEC_FAILED,
        Event.CODED,
        Event.CODE_FAILED,
        Event.QA_PASSED,
        Event.QA_FAILED,
        Event.HOTFIX_RAN,
    }
)


@dataclass
class Expected:
    """What the board must show: done tasks with the attempts their agent needed, hotfixes
    awaiting the human with their verification steps, and other ids merely present."""

    done: dict[str, int] = field(default_factory=dict)
    hotfixes: tuple[str, ...] = ()
    present: tuple[str, ...] = ()

    @property
    def ids(self) -> set[str]:
        return set(self.done) | set(self.hotfixes) | set(self.present)


def leftover_agents(root: Path) -> list[psutil.Process]:
    """Agent processes of this project still alive (found by the run contract's env tags)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
            ours = env.get("SHOPFLOOR_TASK_FILE", "").startswith(str(root))
            if "SHOPFLOOR_RUN_ID" in env and ours and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def kill_leftovers(root: Path) -> None:
    for proc in leftover_agents(root):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


def our_temp_files(root: Path) -> list[Path]:
    """Temp files of ours (`_fs.TEMP_RE`) left in the lanes."""
    tasks = root / "tasks"
    return [
        p
        for lane in Lane
        if (tasks / lane.value).is_dir()
        for p in (tasks / lane.value).iterdir()
        if _fs.TEMP_RE.fullmatch(p.name)
    ]


def board_violations(
    root: Path,
    expected: Expected,
    *,
    orphan_wait: float = 10.0,
    temps: bool = False,
    statuses: bool = True,
    verdicts: bool = True,
) -> list[str]:
    """Every rule the board, the journal or the process table breaks, as sentences."""
    bad: list[str] = []
    scan = Board(root, header_cache=False).scan()
    bad += [f"unreadable file {p.path.name}: {p.reason}" for p in scan.problems]
    bad += [f"quarantined {q}" for q in scan.invalid]
    counts = Counter(e.id for e in scan.entries)
    bad += [f"{i} is on the board {n} times" for i, n in sorted(counts.items()) if n > 1]
    bad += [f"{i} is lost" for i in sorted(expected.ids - set(counts))]
    bad += [f"{i} appeared from nowhere" for i in sorted(set(counts) - expected.ids)]
    by_id = {e.id: e for e in scan.entries if counts[e.id] == 1}
    for entry in scan.entries if statuses else ():
        if not lifecycle.legal(entry.lane, entry.header.status):
            bad.append(f"{entry.id} has status {entry.header.status} in {entry.lane.value}/")
    for task_id, attempts in sorted(expected.done.items()):
        e = by_id.get(task_id)
        if e is not None and (e.lane is not Lane.DONE or e.header.attempts != attempts):
            bad.append(
                f"{task_id} is in {e.lane.value}/ ({e.header.status}) with attempts "
                f"{e.header.attempts}; expected done/ with attempts {attempts}"
            )
    for task_id in expected.hotfixes:
        e = by_id.get(task_id)
        if e is None:
            continue
        if e.lane is not Lane.HOTFIX or e.header.status != "awaiting-human":
            bad.append(f"hotfix {task_id} is {e.lane.value}/{e.header.status}")
        elif not task.get_section(e.path.read_text("utf-8"), "Verification"):
            bad.append(f"hotfix {task_id} lost its ## Verification")
    bad += journal_violations(root, by_id if verdicts else {})
    if temps:
        bad += [f"stray temp file {p.parent.name}/{p.name}" for p in our_temp_files(root)]
    bad += _orphans(root, orphan_wait)
    return bad


def journal_violations(root: Path, tasks: Iterable[str]) -> list[str]:
    bad = []
    with Journal.for_project(root) as journal:
        bad += [
            f"transition {t['event']} of {t['task_id']} still pending"
            for t in journal.pending_transitions()
        ]
        for task_id in sorted(tasks):
            verdicts = Counter(
                (t["event"], t["attempts"])
                for t in journal.history(task_id)
                if t["state"] == "applied" and t["event"] in VERDICTS
            )
            bad += [
                f"{task_id}: {event} applied {n} times for attempts={attempts}"
                for (event, attempts), n in sorted(verdicts.items())
                if n > 1
            ]
        bad += [
            f"run {r['id']} ({r['role']} of {r['task_id']}) still {r['state']}"
            for r in journal.runs()
            if r["state"] in ("running", "starting")
        ]
    return bad


def _orphans(root: Path, wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    while (left := leftover_agents(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not left:
        return []
    kill_leftovers(root)  # recorded, and never left running
    return [f"orphan agent pid {p.pid} left running" for p in left]


def assert_board_sound(
    root: Path,
    expected: Expected,
    *,
    orphan_wait: float = 10.0,
    temps: bool = False,
    statuses: bool = True,
    verdicts: bool = True,
) -> None:
    bad = board_violations(
        root,
        expected,
        orphan_wait=orphan_wait,
        temps=temps,
        statuses=statuses,
        verdicts=verdicts,
    )
    assert not bad, "the board is not sound:\n  " + "\n  ".join(bad)
