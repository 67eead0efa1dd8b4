"""Telegram commands: text in, a short phone-readable reply out. No network here.

`Commands.answer("/show T-0042")` runs the same board operations as the CLI (`actions`). A
ShopfloorError's message is the reply; any other exception is logged and answered with one
generic line, so a bad command can never take the bot down. The poller decides who may ask.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor import actions, runlogs
from shopfloor.board import Board, Lane, check_name
from shopfloor.display import safe
from shopfloor.errors import ShopfloorError
from shopfloor.journal import Journal, open_journal

log = logging.getLogger("shopfloor.notify")

#: Longest reply; past it the text is cut with a pointer to the CLI.
REPLY_CHARS = 1500
#: Lines of a run log /logs shows.
LOG_LINES = 25
#: Task lines /status lists before "… N more".
STATUS_LINES = 15
SOURCE = "telegram"

HELP = """\
Shopfloor commands:
/status — the board
/show ID — one task
/new TEXT — a request in inbox/
/hotfix TEXT — a HOTFIX, started at once
/approve ID · /retry ID · /cancel ID
/rework ID TEXT — back to the Coder with notes
/logs ID — tail of the newest run
/close ID [--force] — archive a verified hotfix"""

GENERIC_FAILURE = "Sorry, that failed inside Shopfloor; the daemon log has the details."

_COMMAND_RE = re.compile(r"/(\S+)\s*(.*)", re.DOTALL)
#: Lanes in the order /status lists them (done is only counted).
_STATUS_ORDER = ("hotfix", "active", "review", "backlog", "inbox", "failed")


def parse(text: str) -> tuple[str, str]:
    """'/show@MyBot T-1 x' -> ('show', 'T-1 x'); not a command -> ('', text)."""
    match = _COMMAND_RE.match(text.strip())
    if match is None:
        return "", text.strip()
    return match[1].split("@", 1)[0].lower(), match[2].strip()


def trim(text: str, pointer: str = "", limit: int = REPLY_CHARS) -> str:
    """At most `limit` characters, cut at a line end, with `pointer` saying where the rest is."""
    text = text.rstrip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    cut = cut[: cut.rfind("\n")] if "\n" in cut[limit // 2 :] else cut
    return f"{cut.rstrip()}\n… (cut){' — ' + pointer if pointer else ''}"


def _one_id(arg: str, command: str) -> str:
    words = arg.split()
    if not words:
        raise ShopfloorError(f"usage: /{command} ID (e.g. /{command} T-0042)")
    return words[0]


def _title_and_body(arg: str, command: str) -> tuple[str, str]:
    if not arg.strip():
        raise ShopfloorError(f"usage: /{command} TEXT (the first line is the title)")
    first, _, rest = arg.strip().partition("\n")
    title = " ".join(first.split())
    if len(title) > 120:
        title = title[:120].rsplit(" ", 1)[0] + "…"
        return title, arg.strip()
    return title, rest.strip()


class Commands:
    """The command set over one project. Not thread-safe: the service runs it on one thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._journal: Journal | None = None
        self._handlers: dict[str, Callable[[str], str]] = {
            "start": lambda _: HELP,
            "help": lambda _: HELP,
            "status": self.status,
            "show": self.show,
            "new": self.new,
            "hotfix": self.hotfix,
            "approve": lambda a: self._decide("approve", a),
            "retry": lambda a: self._decide("retry", a),
            "cancel": self.cancel,
            "rework": self.rework,
            "logs": self.logs,
            "close": self.close,
        }

    @property
    def board(self) -> Board:
        return Board(self.root)

    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = open_journal(self.root)
        return self._journal

    def close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def answer(self, text: str) -> str:
        command, arg = parse(text)
        if not command:
            return "Send /help for the commands."
        handler = self._handlers.get(command)
        if handler is None:
            return f"Unknown command /{command}. Send /help for the list."
        try:
            return handler(arg)
        except ShopfloorError as exc:
            return trim(str(exc))
        except Exception:
            log.exception("notify: telegram /%s failed", safe(command))
            return GENERIC_FAILURE

    # ------------------------------------------------------------------ reading

    def status(self, _: str) -> str:
        report = actions.status_report(
            self.board, sweep=False, runs=self.journal().runs(state="running")
        )
        counts = report["counts"]
        lines = [" · ".join(f"{lane} {counts[lane]}" for lane in (*_STATUS_ORDER, "done"))]
        tasks = sorted(
            (t for t in report["tasks"] if t["lane"] in _STATUS_ORDER),
            key=lambda t: (_STATUS_ORDER.index(t["lane"]), t["priority"], t["id"]),
        )
        for t in tasks[:STATUS_LINES]:
            mark = "🚨 " if t["lane"] == Lane.HOTFIX.value else ""
            lines.append(f"{mark}{t['id']} {t['lane']}/{t['status']} — {t['title'][:60]}")
        if len(tasks) > STATUS_LINES:
            lines.append(f"… {len(tasks) - STATUS_LINES} more: shopfloor status")
        if report["runs"]:
            lines.append(
                "running: "
                + ", ".join(
                    f"{r['run_id']} {r['role']} {r['task_id']}"
                    + (f" on {r['worker']}" if r["worker"] else "")
                    for r in report["runs"]
                )
            )
        lines.extend(_engine_lines(self.root))
        queue = report.get("landing") or {}
        if queue.get("ready"):
            doing = "checking " + ", ".join(queue["checking"]) if queue.get("checking") else ""
            lines.append(f"landing on {queue.get('target')}: {', '.join(queue['ready'])} {doing}")
            if queue.get("waiting"):
                lines.append(f"landing waits: {queue['waiting']}")
        if counts.get("invalid"):
            lines.append(f"{counts['invalid']} file(s) in tasks/invalid/")
        return trim("\n".join(lines), "shopfloor status")

    def show(self, arg: str) -> str:
        task_id = _one_id(arg, "show")
        report = actions.show_report(self.board, task_id)
        lines = [
            f"{report['id']} — {report['title']}",
            f"{report['lane']}/ · {report['status']} · {report['priority']} · "
            f"attempt {report['attempts']}/{report['max_attempts']}",
        ]
        for name in ("Verification", "QA notes", "Spec", "Request"):
            body = (report["sections"].get(name) or "").strip()
            if body:
                lines += ["", f"{name}:", body[:500] + ("…" if len(body) > 500 else "")]
                break
        if report["tracker"]:
            lines += ["", *(f"• {t}" for t in report["tracker"][-3:])]
        lines += ["", f"full: shopfloor show {task_id}"]
        return trim("\n".join(lines), f"shopfloor show {task_id}")

    def logs(self, arg: str) -> str:
        task_id = _one_id(arg, "logs")
        task_id = self.board.find(task_id).id  # a clear error for an unknown id
        run_dir = self._newest_run_dir(task_id)
        if run_dir is None:
            return f"{task_id} has no runs yet."
        parts = [f"{run_dir.name} ({task_id}), last lines:"]
        for name in ("stdout.log", "stderr.log"):
            tail = _tail(run_dir / name, LOG_LINES)
            if tail:
                parts += [f"— {name}", tail]
        if len(parts) == 1:
            parts.append("(no output yet)")
        parts.append(f"full: shopfloor logs {task_id}")
        return trim("\n".join(parts), f"shopfloor logs {task_id}", limit=REPLY_CHARS * 2)

    def _newest_run_dir(self, task_id: str) -> Path | None:
        runs = self.journal().runs(task_id=task_id)
        base = runlogs.runs_dir(self.root)
        if runs:
            run_id = str(runs[-1]["id"])
            check_name(run_id)
            return base / run_id
        on_disk = runlogs.runs_for(self.root, task_id)
        return on_disk[-1].run_dir if on_disk else None

    # ------------------------------------------------------------------ writing

    def new(self, arg: str) -> str:
        title, body = _title_and_body(arg, "new")
        entry = actions.create_task(self.board, actions.NewTask(title, body, source=SOURCE))
        return f"{entry.id} filed in inbox/: {entry.header.title}"

    def hotfix(self, arg: str) -> str:
        title, body = _title_and_body(arg, "hotfix")
        entry = actions.create_hotfix(self.board, title, body, source=SOURCE)
        return (
            f"🚨 {entry.id} filed in hotfix/. The daemon starts its agent now; "
            "you will hear when it waits for you."
        )

    def _decide(self, verb: str, arg: str) -> str:
        task_id = _one_id(arg, verb)
        entry = getattr(actions, verb)(self.board, task_id, who=SOURCE)
        done = {"approve": "approved", "retry": "queued for retry", "cancel": "cancelled"}[verb]
        return f"{entry.id} {done}: {entry.lane.value}/ · {entry.header.status}"

    def rework(self, arg: str) -> str:
        """`/rework ID TEXT`: back to the Coder with TEXT as notes, on its branch."""
        words = arg.strip().split(None, 1)
        task_id, notes = [*words, "", ""][:2]
        if not task_id or not notes.strip():
            raise ShopfloorError("usage: /rework ID TEXT (e.g. /rework T-0042 keep the old flag)")
        entry = actions.rework(self.board, task_id, notes, who=SOURCE)
        return (
            f"↩️ {entry.id} sent back to the Coder with your notes: "
            f"{entry.lane.value}/ · {entry.header.status}"
        )

    def cancel(self, arg: str) -> str:
        """A task to failed/; a running hotfix is stopped (the daemon's `hotfix_stopped`
        message says what it left), a queued one withdrawn."""
        task_id = _one_id(arg, "cancel")
        board = self.board
        if board.find(task_id).lane is not Lane.HOTFIX:
            return self._decide("cancel", task_id)
        done = actions.cancel_hotfix(board, task_id, who=SOURCE)
        where = f"{done.entry.lane.value}/ · {done.entry.header.status}"
        if not done.started:
            return f"{done.entry.id} cancelled before its agent started: {where}"
        if done.left is not None:  # no daemon runs: what it left, read here
            return f"🛑 {done.entry.id} cancelled: {where}\n{done.left}"
        return (
            f"🛑 {done.entry.id} cancelled: {where}. Its agent is being stopped; "
            "a message will say what it left in the tree."
        )

    def close(self, arg: str) -> str:
        """`/close ID [--force]`: archive a hotfix; refused while its fix is uncommitted."""
        words = arg.split()
        task_id = _one_id(arg, "close")
        force = any(w in ("--force", "force") for w in words[1:])
        closed, _ = actions.close_hotfix(self.board, task_id, who=SOURCE, force=force)
        tracker = actions.show_report(self.board, closed.id)["tracker"]
        said = f"\n{tracker[-1].split(' ', 1)[-1]}" if tracker else ""
        return f"{closed.id} closed: archived to {closed.lane.value}/{said}"


def _tail(path: Path, lines: int, max_bytes: int = 16 * 1024) -> str:
    """The last `lines` lines of a log, reading at most `max_bytes` from its end."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(0, size - max_bytes))
            raw = fh.read()
    except OSError:
        return ""
    text = raw.decode("utf-8", "replace").splitlines()
    if size > len(raw) and text:
        text = text[1:]  # the first line was cut in the middle
    return "\n".join(text[-lines:]).strip()


def describe_chat(update: Any) -> str:
    """Who sent an update, for the log line of an ignored message (no message text)."""
    chat = getattr(getattr(update, "effective_chat", None), "id", "?")
    user = getattr(getattr(update, "effective_user", None), "id", "?")
    return f"chat {chat} user {user}"


__all__ = ["HELP", "Commands", "describe_chat", "parse", "trim"]


def _engine_lines(root: Path) -> list[str]:
    """[scale] engine = "temporal": the engine's state (nothing in the embedded mode)."""
    from shopfloor.scale.state import DOWN, DOWN_ADVICE, engine_json, engine_text

    engine = engine_json(root)
    if engine is None:
        return []
    lines = [f"engine: {engine_text(engine)}"]
    if engine["state"] == DOWN:
        lines.append(f"⚠️ {DOWN_ADVICE}")
    return lines
