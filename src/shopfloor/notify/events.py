"""Notification events: names, priorities (hotfix first) and the phone-readable text of each.

The daemon publishes these names; channels subscribe to them (`events = ["*"]` or a list).
A lower priority number leaves the outbox sooner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shopfloor.display import safe, safe_lines

HOTFIX_STARTED = "hotfix_started"
HOTFIX_AWAITING_HUMAN = "hotfix_awaiting_human"
#: A person cancelled a running hotfix; its agent was stopped (payload: what it left).
HOTFIX_STOPPED = "hotfix_stopped"
TASK_DONE = "task_done"
TASK_FAILED = "task_failed"
#: The merge queue put a task on the target branch (its checks passed there).
TASK_LANDED = "task_landed"
#: The merge queue sent a task back to its Coder: a conflict, or checks failing integrated.
LAND_BOUNCED = "land_bounced"
QA_FAILED = "qa_failed"
AWAITING_APPROVAL = "awaiting_approval"
#: An agent could not work: authentication problem or usage/rate limit.
AGENT_PROBLEM = "agent_problem"
DAEMON_STARTED = "daemon_started"
DAEMON_STOPPED = "daemon_stopped"
#: The daemon started after a crash and reconciled what it left (payload says what).
DAEMON_RECOVERED = "daemon_recovered"
#: An edit made shopfloor.toml invalid; the running daemon keeps its last good config.
CONFIG_INVALID = "config_invalid"
#: The machine, not a task: a full disk, a read-only folder, a lost journal. Work waits.
FAULT = "fault"
#: A tree changed while a PM or QA run (which must not change it) was running.
TREE_CHANGED = "tree_changed"
#: land = "pr": a done task's pull request was opened (or updated after a rework).
PR_OPENED = "pr_opened"
#: land = "pr": the push or the pull-request command failed; the task waits for a human.
PR_FAILED = "pr_failed"

#: [scale] engine = "temporal": the daemon lost Temporal. Tasks wait (never run here by
#: surprise); hotfixes still run here. Payload: address, error.
ENGINE_DOWN = "engine_down"
#: Temporal is reachable again; waiting tasks go on. Payload: address, down_for (seconds).
ENGINE_UP = "engine_up"

#: Internal: a bot's answer to a command, to one chat (not subscribable, never published).
REPLY = "reply"

PRIORITY: dict[str, int] = {
    HOTFIX_STARTED: 0,
    HOTFIX_AWAITING_HUMAN: 0,
    HOTFIX_STOPPED: 0,
    REPLY: 1,
    AGENT_PROBLEM: 2,
    DAEMON_RECOVERED: 2,
    CONFIG_INVALID: 2,
    FAULT: 2,
    ENGINE_DOWN: 2,
    TREE_CHANGED: 3,
    TASK_FAILED: 3,
    AWAITING_APPROVAL: 3,
    PR_FAILED: 3,
    QA_FAILED: 4,
    LAND_BOUNCED: 4,
    TASK_LANDED: 5,
    TASK_DONE: 5,
    PR_OPENED: 5,
    ENGINE_UP: 5,
    DAEMON_STARTED: 6,
    DAEMON_STOPPED: 6,
}
DEFAULT_PRIORITY = 5

#: The events a channel can subscribe to, most urgent first.
ALL_EVENTS: tuple[str, ...] = tuple(
    sorted((e for e in PRIORITY if e != REPLY), key=lambda e: (PRIORITY[e], e))
)

#: Longest field (summary, notes, reason) copied into a message.
FIELD_CHARS = 300


def priority(event: str) -> int:
    return PRIORITY.get(event, DEFAULT_PRIORITY)


def subscribed(event: str, wanted: list[str]) -> bool:
    return "*" in wanted or event in wanted


def _clip(value: object, limit: int = FIELD_CHARS) -> str:
    text = str(value or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _task(p: Mapping[str, Any]) -> str:
    title = _clip(safe(p.get("title") or ""), 120)  # one line, whatever the file says
    return f"{p.get('task_id', '?')} — {title}" if title else str(p.get("task_id", "?"))


def _hotfix_started(p: Mapping[str, Any]) -> list[str]:
    lines = [f"🚨 Hotfix started: {_task(p)}"]
    if p.get("snapshot_error"):
        lines.append(f"⚠️ Your uncommitted work could NOT be saved: {_clip(p['snapshot_error'])}")
    if p.get("snapshot"):
        count = p.get("snapshot_files") or 0
        lines.append(
            f"Your uncommitted work ({count} file{'s' if count != 1 else ''}) is saved at "
            f"{p['snapshot']}"
        )
    return lines


def _hotfix_waiting(p: Mapping[str, Any]) -> list[str]:
    task_id = p.get("task_id", "?")
    if p.get("cancelled"):  # `cancel`: the next message (hotfix_stopped) says what it left
        return [f"🛑 Hotfix cancelled: {_task(p)}", _clip(p.get("summary"))]
    if p.get("changed_nothing"):
        lines = [f"🚨 Hotfix changed nothing: {_task(p)}"]
        lines.append("The agent changed no file and made no commit.")
    else:
        lines = [f"🚨 Hotfix waits for you: {_task(p)}"]
    for warning in p.get("warnings") or []:
        lines.append(f"⚠️ {_clip(warning)}")
    if p.get("ok") is False:
        lines.append("The agent did not finish cleanly.")
    if p.get("paths"):
        count = int(p.get("paths_count") or len(p["paths"]))
        shown = ", ".join(str(x) for x in p["paths"])
        more = f" and {count - len(p['paths'])} more" if count > len(p["paths"]) else ""
        lines.append(f"Changed {count} file{'s' if count != 1 else ''}: {_clip(shown, 200)}{more}")
    if p.get("overlap"):
        both = ", ".join(str(x) for x in p["overlap"])
        lines.append(f"Also changed by you before the hotfix: {_clip(both, 200)} (yours: snapshot)")
    if p.get("alongside"):
        others = ", ".join(str(x) for x in p["alongside"])
        lines.append(f"Ran beside {_clip(others, 120)} in the same tree: changes may mix")
    if p.get("incomplete") and not p.get("changed_nothing"):
        lines.append("INCOMPLETE: no verification steps recorded.")
    if p.get("summary"):
        lines.append(_clip(p["summary"]))
    if p.get("changed_nothing"):
        lines.append(f"Nothing to verify; fix it by hand or /close {task_id}")
    elif p.get("warnings"):
        lines.append(f"Verify the commits and the rest, push; then /close {task_id}")
    else:
        lines.append(f"Verify, commit and push; then /close {task_id}")
    return lines


def _hotfix_stopped(p: Mapping[str, Any]) -> list[str]:
    task_id = p.get("task_id", "?")
    lines = [f"🛑 Hotfix stopped: {_task(p)}"]
    count = int(p.get("paths_count") or 0)
    if not p.get("known", True):
        lines.append("Where it started is not recorded: check `git status` yourself.")
    elif count:
        shown = ", ".join(str(x) for x in p.get("paths") or [])
        more = (
            f" and {count - len(p.get('paths') or [])} more"
            if count > len(p.get("paths") or [])
            else ""
        )
        lines.append(
            f"It left {count} changed file{'s' if count != 1 else ''}: {_clip(shown, 200)}{more}"
        )
    else:
        lines.append("It left no change in the tree.")
    if p.get("head_moved"):
        lines.append("⚠️ HEAD moved while it ran: check the new commits.")
    if p.get("snapshot"):
        lines.append(f"Your earlier uncommitted work is saved at {p['snapshot']}")
    lines.append(f"/retry {task_id} runs it again · /close {task_id} archives it")
    return lines


def _task_done(p: Mapping[str, Any]) -> list[str]:
    lines = [f"✅ Done: {_task(p)}"]
    if p.get("branch"):
        lines.append(f"branch {p['branch']}")
    return lines


def _task_landed(p: Mapping[str, Any]) -> list[str]:
    lines = [f"🛬 Landed: {_task(p)}"]
    if p.get("target") and p.get("commit"):
        lines.append(f"on {p['target']} at {str(p['commit'])[:10]}")
    if p.get("with"):
        lines.append("together with " + _clip(", ".join(str(x) for x in p["with"]), 200))
    return lines


def _land_bounced(p: Mapping[str, Any]) -> list[str]:
    lines = [f"↩️ Did not land, back to its Coder: {_task(p)}", _clip(p.get("reason"))]
    if p.get("files"):
        lines.append("conflicts in " + _clip(", ".join(str(x) for x in p["files"]), 200))
    if p.get("collided"):
        lines.append("collided with " + _clip(", ".join(str(x) for x in p["collided"]), 200))
    return lines


def _task_failed(p: Mapping[str, Any]) -> list[str]:
    lines = [f"❌ Failed: {_task(p)}"]
    if p.get("reason"):
        lines.append(_clip(p["reason"]))
    return [*lines, f"/retry {p.get('task_id', '?')} to try again"]


def _pr_opened(p: Mapping[str, Any]) -> list[str]:
    verb = "updated" if p.get("updated") else "opened"
    lines = [f"🔀 Pull request {verb}: {_task(p)}"]
    if p.get("url"):
        lines.append(_clip(safe(p["url"]), 200))
    elif p.get("branch"):
        lines.append(f"branch {p['branch']} pushed to {p.get('remote', '?')}")
    return lines


def _pr_failed(p: Mapping[str, Any]) -> list[str]:
    return [
        f"⚠️ Pull request not opened: {_task(p)}",
        _clip(p.get("error")),
        f"The branch is kept; /retry {p.get('task_id', '?')} pushes it again",
    ]


def _qa_failed(p: Mapping[str, Any]) -> list[str]:
    return [f"QA failed: {_task(p)}", _clip(p.get("notes"))]


def _awaiting_approval(p: Mapping[str, Any]) -> list[str]:
    return [f"Spec ready for approval: {_task(p)}", f"/approve {p.get('task_id', '?')}"]


def _agent_problem(p: Mapping[str, Any]) -> list[str]:
    agent, outcome = p.get("agent") or "agent", p.get("outcome") or "problem"
    lines = [f"⚠️ Agent {agent}: {outcome}"]
    if p.get("task_id"):
        lines.append(f"while working on {p['task_id']}")
    return [*lines, _clip(p.get("detail"))]


def _daemon_started(p: Mapping[str, Any]) -> list[str]:
    return [f"Shopfloor daemon started (pid {p.get('pid', '?')})"]


def _daemon_stopped(p: Mapping[str, Any]) -> list[str]:
    return [f"Shopfloor daemon stopped (pid {p.get('pid', '?')})"]


def _daemon_recovered(p: Mapping[str, Any]) -> list[str]:
    tasks = p.get("tasks_recovered") or []
    lines = [
        "Shopfloor daemon recovered after a crash:",
        f"{p.get('runs_interrupted', 0)} run(s) interrupted, "
        f"{p.get('orphans_killed', 0)} orphan process(es) stopped",
    ]
    if tasks:
        lines.append("tasks: " + _clip(", ".join(str(t) for t in tasks), 200))
    return lines


def _fault(p: Mapping[str, Any]) -> list[str]:
    return [
        "⚠️ Shopfloor hit a fault of the machine; work waits (no attempt used) and resumes "
        "by itself once it clears",
        _clip(p.get("error")),
    ]


def _engine_down(p: Mapping[str, Any]) -> list[str]:
    return [
        f"⚠️ Temporal unreachable at {_clip(p.get('address') or '?', 120)}: tasks wait for it "
        "(none runs here by surprise); hotfixes still run here",
        _clip(p.get("error")),
        "Work resumes by itself when it is back; `shopfloor doctor` checks the connection",
    ]


def _engine_up(p: Mapping[str, Any]) -> list[str]:
    lines = [f"Temporal reachable again at {_clip(p.get('address') or '?', 120)}; tasks go on"]
    down_for = p.get("down_for")
    if isinstance(down_for, int | float):
        lines.append(f"it was down for {_duration(float(down_for))}")
    return lines


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _config_invalid(p: Mapping[str, Any]) -> list[str]:
    return [
        "⚠️ shopfloor.toml is invalid; the daemon keeps its last good config",
        _clip(p.get("error")),
        "Fix the file: the daemon picks it up by itself",
    ]


def _tree_changed(p: Mapping[str, Any]) -> list[str]:
    role = {"pm": "the PM", "qa": "QA"}.get(str(p.get("role")), str(p.get("role") or "an agent"))
    lines = [f"⚠️ Changed while {role} ran ({p.get('run_id', '?')}): {_task(p)}"]
    for change in p.get("changes") or []:
        paths = ", ".join(str(x) for x in change.get("paths") or [])
        moved = change.get("head_before") != change.get("head_after")
        head = f"HEAD moved to {str(change.get('head_after') or '')[:10]}" if moved else ""
        what = "; ".join(x for x in (paths, head) if x)
        lines.append(_clip(f"{change.get('tree', 'a tree')}: {what}"))
    return [*lines, "Nothing was reverted: check it (it may be your own edit)"]


_FORMATS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    HOTFIX_STARTED: _hotfix_started,
    HOTFIX_AWAITING_HUMAN: _hotfix_waiting,
    HOTFIX_STOPPED: _hotfix_stopped,
    TASK_DONE: _task_done,
    TASK_FAILED: _task_failed,
    TASK_LANDED: _task_landed,
    LAND_BOUNCED: _land_bounced,
    QA_FAILED: _qa_failed,
    AWAITING_APPROVAL: _awaiting_approval,
    AGENT_PROBLEM: _agent_problem,
    DAEMON_STARTED: _daemon_started,
    DAEMON_STOPPED: _daemon_stopped,
    DAEMON_RECOVERED: _daemon_recovered,
    CONFIG_INVALID: _config_invalid,
    FAULT: _fault,
    ENGINE_DOWN: _engine_down,
    ENGINE_UP: _engine_up,
    TREE_CHANGED: _tree_changed,
    PR_OPENED: _pr_opened,
    PR_FAILED: _pr_failed,
}


def title(event: str, payload: Mapping[str, Any]) -> str:
    """The first line of the message: a headline for webhooks that show a title."""
    return render(event, payload).splitlines()[0]


def render(event: str, payload: Mapping[str, Any], item_id: int | None = None) -> str:
    """The message text: short lines for a phone, and `#<outbox id>` to spot duplicates.
    Every message, a bot's reply too, leaves with its control characters shown as escapes
    (`display.safe_lines`): titles, notes and logs are anyone's text."""
    return safe_lines(_compose(event, payload, item_id))


def _compose(event: str, payload: Mapping[str, Any], item_id: int | None) -> str:
    if event == REPLY:
        return str(payload.get("text", ""))
    formatter = _FORMATS.get(event)
    if formatter is not None:
        lines = [line for line in formatter(payload) if line]
    else:
        fields = ", ".join(f"{k}={_clip(v, 80)}" for k, v in payload.items() if k != "project")
        lines = [f"{event}: {fields}" if fields else event]
    if payload.get("project"):
        lines[0] = f"[{payload['project']}] {lines[0]}"
    if item_id is not None:
        lines.append(f"#{item_id}")
    return "\n".join(lines)
