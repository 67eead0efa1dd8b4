"""The board page: one column per lane, hotfixes in a red band on top, the running runs.

`load_board` reads the task files (through the header cache, like `shopfloor status`) and the
journal (running runs, spend); `render_live` turns that into the part of the page that
board.js swaps in when the event stream says something changed. The server keeps no state:
every render reads the files again.

A lane shows at most `LANE_CAP` cards (done/ and failed/ their newest `DONE_CAP`) with a line
saying how many more there are: 10,000 tasks stay a page a browser draws at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shopfloor import shop as shop_mod
from shopfloor.board import Board, Entry
from shopfloor.journal import open_if_present
from shopfloor.scale.state import DOWN, DOWN_ADVICE, engine_json, engine_text
from shopfloor.web.html import age, button, esc, money
from shopfloor.words import Lane, Status

#: The lanes shown as columns, in the order work flows (hotfix/ is the band on top).
COLUMNS = (Lane.INBOX, Lane.BACKLOG, Lane.ACTIVE, Lane.REVIEW, Lane.DONE, Lane.FAILED)
#: Lanes read whole (done/ and failed/ only their newest `DONE_CAP`).
WORK_LANES = (Lane.HOTFIX, Lane.INBOX, Lane.BACKLOG, Lane.ACTIVE, Lane.REVIEW)
#: Cards shown per lane before "N more" (a column of thousands helps nobody at 2 AM).
LANE_CAP = 300
#: done/ and failed/ show only their newest few.
DONE_CAP = 50
#: Bytes of a running run's stdout read for its last line.
TAIL_BYTES = 4096
_PRIORITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


@dataclass(frozen=True, slots=True)
class Card:
    task_id: str
    title: str
    lane: str
    status: str
    priority: str
    type: str
    attempts: int
    max_attempts: int
    updated: str
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class RunningRun:
    run_id: str
    task_id: str
    role: str
    agent: str
    age_seconds: float
    started_at: str
    cost: float | None
    last_line: str
    worker: str = ""  # [scale] engine = "temporal": the `shopfloor worker` running it


@dataclass
class BoardData:
    name: str
    lanes: dict[str, list[Card]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    runs: list[RunningRun] = field(default_factory=list)
    spent_today: float = 0.0
    problems: int = 0
    journal_note: str = ""
    #: [scale] engine = "temporal": `status --json`'s "engine" (None: the embedded mode)
    engine: dict[str, object] | None = None


# ---------------------------------------------------------------------------- reading


def card_of(entry: Entry, cost: float = 0.0) -> Card:
    h = entry.header
    return Card(
        task_id=h.id,
        title=h.title,
        lane=entry.lane.value,
        status=h.status,
        priority=h.priority,
        type=h.type,
        attempts=h.attempts,
        max_attempts=h.max_attempts,
        updated=h.updated or "",
        cost=cost,
    )


def _order(lane: str, cards: list[Card]) -> list[Card]:
    """Work lanes in the order the daemon picks (priority, then id); done/ and failed/
    newest first."""
    if lane in (Lane.DONE.value, Lane.FAILED.value):
        return sorted(cards, key=lambda c: (c.updated, c.task_id), reverse=True)
    return sorted(cards, key=lambda c: (_PRIORITY_ORDER.get(c.priority, 9), c.task_id))


def last_line(run_dir: str | None) -> str:
    """The last non-empty line a run wrote to stdout (its tail only: logs can be huge)."""
    if not run_dir:
        return ""
    tail = shop_mod.read_tail(Path(run_dir) / "stdout.log", TAIL_BYTES)
    for line in reversed(tail.splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _age_of(started_at: str, now: dt.datetime) -> float:
    try:
        started = dt.datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return max(0.0, (now - started).total_seconds())


def load_board(board: Board) -> BoardData:
    """The board as the files and the journal say it is now. Pass the app's long-lived
    `Board`: its header cache (checked against each file's stat, so never stale) then stays
    in memory between requests instead of being parsed again each time."""
    scan = board.scan(WORK_LANES)
    data = BoardData(name=board.root.name, problems=len(scan.problems))
    data.engine = engine_json(board.root)
    journal = open_if_present(board.root)
    spent: dict[str, float] = {}
    if journal is None:
        data.journal_note = "no journal yet: spend and runs appear once the daemon has run"
    else:
        with journal:
            spent = journal.cost_by_task()
            midnight = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT00:00:00Z")
            data.spent_today = journal.cost_since(midnight)
            data.runs = _running(journal.runs(state="running"))
    by_lane: dict[str, list[Card]] = {}
    for entry in scan.entries:
        by_lane.setdefault(entry.lane.value, []).append(card_of(entry, spent.get(entry.id, 0.0)))
    for lane in WORK_LANES:
        cards = _order(lane.value, by_lane.get(lane.value, []))
        data.totals[lane.value] = len(cards)
        data.lanes[lane.value] = cards[:LANE_CAP]
    for lane in (Lane.DONE, Lane.FAILED):  # only their newest are read: most of a board
        entries, total = board.newest(lane, DONE_CAP)
        cards = [card_of(e, spent.get(e.id, 0.0)) for e in entries]
        data.totals[lane.value] = total
        data.lanes[lane.value] = _order(lane.value, cards)
    return data


def _running(rows: Iterable[dict[str, object]]) -> list[RunningRun]:
    now = dt.datetime.now(dt.UTC)
    runs = []
    for row in rows:
        cost = row.get("cost_usd")
        runs.append(
            RunningRun(
                run_id=str(row["id"]),
                task_id=str(row["task_id"]),
                role=str(row["role"]),
                agent=str(row.get("agent") or ""),
                age_seconds=_age_of(str(row["started_at"]), now),
                started_at=str(row["started_at"]),
                cost=float(cost) if isinstance(cost, int | float) else None,
                last_line=last_line(str(row["run_dir"]) if row.get("run_dir") else None),
                worker=str(row.get("worker") or ""),
            )
        )
    return runs


# ---------------------------------------------------------------------------- rendering


#: Statuses a person must act on (retry lets the work start again where it stopped).
PARKED = (Status.AWAITING_HUMAN.value, Status.BLOCKED.value)
#: Lanes whose tasks can be cancelled to failed/ (a hotfix: while queued or running).
CANCELLABLE = (Lane.INBOX.value, Lane.BACKLOG.value, Lane.ACTIVE.value, Lane.REVIEW.value)


def can_retry(lane: str, status: str) -> bool:
    """What the lifecycle lets `retry` do (a done task only after a failed merge)."""
    if lane == Lane.FAILED.value:
        return True
    if lane == Lane.DONE.value:
        return status == Status.BLOCKED.value
    return status in PARKED


def can_cancel(lane: str, status: str) -> bool:
    if lane == Lane.HOTFIX.value:
        return status in (Status.QUEUED.value, Status.RUNNING.value)
    return lane in CANCELLABLE


def _card_actions(card: Card) -> str:
    """The one decision a card in this state most often waits for (a hotfix's are on its
    page, next to what its agent left)."""
    if card.lane == Lane.HOTFIX.value:
        return ""
    if card.status == Status.AWAITING_APPROVAL:
        return button("Approve", "approve", card.task_id)
    if can_retry(card.lane, card.status):
        return button("Retry", "retry", card.task_id)
    return ""


def render_card(card: Card) -> str:
    tries = f"try {card.attempts}/{card.max_attempts}" if card.attempts else ""
    meta = "".join(
        f'<span class="{cls}">{esc(text)}</span>'
        for cls, text in (
            ("pri", card.priority),
            ("status", card.status),
            ("tries", tries),
            ("cost", money(card.cost)),
        )
        if text
    )
    actions = _card_actions(card)
    acts = f'<div class="acts">{actions}</div>' if actions else ""
    return (
        f'<li class="card s-{esc(card.status)} {esc(card.priority.lower())}" '
        f'data-task-id="{esc(card.task_id)}" data-status="{esc(card.status)}">'
        f'<a class="open" href="/task/{esc(card.task_id)}">'
        f'<span class="id">{esc(card.task_id)}</span> '
        f'<span class="title">{esc(card.title)}</span></a>'
        f'<div class="meta">{meta}</div>'
        f"{acts}</li>"
    )


def _more(shown: int, total: int, lane: str) -> str:
    if total <= shown:
        return ""
    return (
        f'<li class="more">{total - shown:,} more in {esc(lane)}/ '
        f"(<code>shopfloor status --all</code>)</li>"
    )


def render_lane(lane: str, cards: list[Card], total: int) -> str:
    items = "".join(render_card(c) for c in cards) or '<li class="empty">empty</li>'
    return (
        f'<section class="lane lane-{esc(lane)}" data-lane="{esc(lane)}" '
        f'data-region="lane-{esc(lane)}">'
        f'<h2>{esc(lane)} <span class="count">{total:,}</span></h2>'
        f'<ol class="cards">{items}{_more(len(cards), total, lane)}</ol></section>'
    )


def render_hotfixes(cards: list[Card], total: int) -> str:
    """The red band: every hotfix on top of the page (empty: no band at all)."""
    if not cards:
        return '<section class="hotfixes none" data-lane="hotfix" data-region="hotfixes"></section>'
    items = "".join(render_card(c) for c in cards)
    return (
        '<section class="hotfixes" data-lane="hotfix" data-region="hotfixes">'
        f'<h2>hotfix <span class="count">{total:,}</span></h2>'
        f'<ol class="cards">{items}</ol></section>'
    )


def render_run(run: RunningRun) -> str:
    cost = money(run.cost) or "$—"
    who = f"{run.role} {run.agent}".strip()
    ticking = f'data-started="{esc(run.started_at)}"'  # board.js ticks the age from here
    return (
        f'<li class="run" data-run-id="{esc(run.run_id)}" data-task-id="{esc(run.task_id)}">'
        f'<a href="/task/{esc(run.task_id)}#runs"><span class="id">{esc(run.task_id)}</span></a> '
        f'<span class="who">{esc(who)}</span> '
        f"{_worker(run.worker)}"
        f'<span class="age" {ticking}>{esc(age(run.age_seconds))}</span> '
        f'<span class="cost">{esc(cost)}</span>'
        f'<code class="last">{esc(run.last_line) or "…"}</code></li>'
    )


def _worker(name: str) -> str:
    if not name:
        return ""
    return f'<span class="worker" title="the shopfloor worker running it">on {esc(name)}</span> '


def render_engine(engine: dict[str, object] | None) -> str:
    """A banner while the engine is down (or its state is unknown); an empty region while it
    is up or in the embedded mode (board.js swaps regions that exist on both sides)."""
    state = str(engine.get("state")) if engine else ""
    if engine is None or state == "up":
        return '<section class="engine none" data-region="engine"></section>'
    advice = f"<p>{esc(DOWN_ADVICE)}.</p>" if state == DOWN else ""
    return (
        f'<section class="engine {esc(state)}" data-region="engine" role="status">'
        f"<strong>engine {esc(state)}</strong> {esc(engine_text(engine))}{advice}</section>"
    )


def render_runs(runs: list[RunningRun]) -> str:
    if not runs:
        return '<section class="runs none" data-region="runs"></section>'
    items = "".join(render_run(r) for r in runs)
    return (
        f'<section class="runs" data-region="runs"><h2>running <span class="count">'
        f"{len(runs)}</span></h2><ol>{items}</ol></section>"
    )


def render_summary(data: BoardData) -> str:
    busy = sum(data.totals.get(lane.value, 0) for lane in COLUMNS[:4])
    parts = [f"{busy:,} in work", f"{data.totals.get('done', 0):,} done"]
    if data.spent_today:
        parts.append(f"{money(data.spent_today)} today")
    if data.problems:
        parts.append(f"{data.problems} unreadable")
    note = f' <span class="note">{esc(data.journal_note)}</span>' if data.journal_note else ""
    return f'<p class="summary" data-region="summary">{esc(" · ".join(parts))}{note}</p>'


def render_live(data: BoardData) -> str:
    """The part of the board that changes: swapped in region by region on every event."""
    lanes = "".join(
        render_lane(lane.value, data.lanes.get(lane.value, []), data.totals.get(lane.value, 0))
        for lane in COLUMNS
    )
    hotfix = Lane.HOTFIX.value
    return (
        f'<div id="live">{render_summary(data)}{render_engine(data.engine)}'
        f"{render_hotfixes(data.lanes.get(hotfix, []), data.totals.get(hotfix, 0))}"
        f'{render_runs(data.runs)}<div class="lanes">{lanes}</div></div>'
    )
