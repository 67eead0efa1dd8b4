"""Code-Run-Read: what each stage does and where a task goes next.

| lane     | stage  | on success                               | on failure                      |
|----------|--------|------------------------------------------|---------------------------------|
| inbox    | PM     | backlog (queued, or awaiting-approval)   | inbox again; failed/ past max   |
| backlog  | claim  | active (attempt + 1), Coder in worktree  |                                 |
| active   | Coder  | commit on branch, Run checks -> review   | backlog; failed/ past max       |
| review   | QA     | done (only if checks pass AND QA passes) | backlog + QA notes; failed/ ... |
| hotfix   | Hotfix | stays in hotfix/, awaiting-human         | stays, awaiting-human, flagged  |

Outcomes that are not the task's fault (missing binary, auth, rate limit, a stop) never burn
an attempt. Each stage runs in a job thread; it owns its task file until it returns.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor import _fs, defaults, gitops, runlogs, task
from shopfloor.agents import NOT_THE_TASKS_FAULT, Outcome
from shopfloor.board import Entry, Lane
from shopfloor.errors import ShopfloorError
from shopfloor.paths import make_private_dir
from shopfloor.runner import Runner, RunSpec
from shopfloor.shop import AgentRun, Shop, human_duration, read_tail, run_agent

_CHECK_TAIL = 6000


# ---------------------------------------------------------------------------- decisions


def after_qa(checks_passed: bool, verdict: str | None, attempts: int, max_attempts: int) -> Lane:
    """The Read rule: failing checks can never pass, whatever QA says."""
    if checks_passed and verdict == "pass":
        return Lane.DONE
    return Lane.FAILED if attempts >= max_attempts else Lane.BACKLOG


def after_failure(attempts: int, max_attempts: int, retry_lane: Lane) -> Lane:
    return Lane.FAILED if attempts >= max_attempts else retry_lane


# ---------------------------------------------------------------------------- task state


def state_path(shop: Shop, task_id: str) -> Path:
    return shop.root / defaults.STATE_DIR / "state" / f"{task_id}.json"


def load_state(shop: Shop, task_id: str) -> dict[str, Any]:
    try:
        data = json.loads(state_path(shop, task_id).read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def save_state(shop: Shop, task_id: str, **fields: Any) -> None:
    path = state_path(shop, task_id)
    make_private_dir(path.parent)
    _fs.atomic_write(path, json.dumps({**load_state(shop, task_id), **fields}, indent=2))


def worktree_path(shop: Shop, task_id: str) -> Path:
    return shop.paths.worktree(task_id)


def branch_name(task_id: str) -> str:
    return f"shopfloor/{task_id}"


# ---------------------------------------------------------------------------- board helpers


class TaskMoved(ShopfloorError):
    """The task file left the lane its job was working in (a human moved or cancelled it)."""


def refresh(shop: Shop, entry: Entry) -> Entry:
    """The entry re-read from disk; TaskMoved if a human took it away meanwhile."""
    if not entry.path.exists():
        raise TaskMoved(f"{entry.id} left {entry.lane.value}/")
    text = shop.board.read_text(entry)
    return Entry(task.parse(text), entry.lane, entry.path)


def note(shop: Shop, entry: Entry, line: str, **fields: Any) -> Entry:
    """Set owned fields and add a tracker line, on the freshest copy of the file."""
    entry = refresh(shop, entry)
    now = task.utc_now()
    return shop.board.update(entry, {**fields, "updated": now}, tracker=f"{now} {line}")


def run_line(run: AgentRun, extra: str = "") -> str:
    verdict = run.result.get("verdict")
    word = "ok" if run.ok else ("FAIL" if run.outcome is Outcome.OK else run.outcome.value)
    if run.role == "qa" and verdict:
        word = "PASS" if verdict == "pass" and run.ok else "FAIL"
    cost = f" ${run.parsed.cost_usd:.2f}" if run.parsed.cost_usd else ""
    tokens = (run.parsed.tokens_in or 0) + (run.parsed.tokens_out or 0)
    if tokens:
        cost = f" {tokens / 1000:.1f}k tokens{cost}"
    tail = f" — {run.summary}" if run.summary else ""
    return (
        f"{run.role} {run.agent} run {run.run_id} {word} {human_duration(run.duration)}"
        f"{cost}{tail}{extra}"
    )


def _park_for_agent_problem(shop: Shop, entry: Entry, run: AgentRun, lane: Lane) -> Entry:
    """Not the task's fault: undo the attempt, wait for a human (or retry later if stopped)."""
    attempts = max(0, entry.header.attempts - (1 if lane is Lane.ACTIVE else 0))
    if run.outcome in (Outcome.STOPPED, Outcome.RATE_LIMITED):
        entry = note(
            shop, entry, run_line(run, _will_rerun(run)), status="queued", attempts=attempts
        )
    else:
        why = (
            f"; {run.error} — waiting for a human"
            if run.outcome is Outcome.OVER_BUDGET
            else "; waiting for a human to fix the agent"
        )
        entry = note(shop, entry, run_line(run, why), status="awaiting-human", attempts=attempts)
    if run.outcome is not Outcome.STOPPED:
        shop.notify(
            "agent_problem",
            task_id=entry.id,
            agent=run.agent,
            outcome=run.outcome.value,
            detail=run.summary,
        )
    if lane is Lane.ACTIVE:
        entry = shop.board.move(entry, Lane.BACKLOG)
    return entry


def _will_rerun(run: AgentRun) -> str:
    if run.paused_until is None:
        return "; will run again"
    until = task.utc_stamp(run.paused_until)
    return f"; agent {run.agent} paused until {until}, the task waits (no attempt used)"


def failed_attempt(shop: Shop, entry: Entry, line: str, retry_lane: Lane) -> Entry:
    """An attempt that did not work: retry in `retry_lane`, or failed/ past max_attempts."""
    header = refresh(shop, entry).header
    target = after_failure(header.attempts, header.max_attempts, retry_lane)
    suffix = "; giving up" if target is Lane.FAILED else f"; back to {target.value}"
    entry = note(shop, entry, line + suffix, status="queued")
    if target is not entry.lane:
        entry = shop.board.move(entry, target)
    if target is Lane.FAILED:
        shop.notify("task_failed", task_id=entry.id, title=entry.header.title, reason=line)
    return entry


# ---------------------------------------------------------------------------- PM


def do_pm(shop: Shop, entry: Entry) -> Entry:
    """inbox -> backlog: the PM writes `## Spec`."""
    run = run_agent(shop, "pm", entry, shop.root, {"task_text": _text(shop, entry)})
    if run.outcome in NOT_THE_TASKS_FAULT:
        return _park_for_agent_problem(shop, entry, run, Lane.INBOX)
    entry = refresh(shop, entry)
    spec = task.get_section(shop.board.read_text(entry), "Spec")
    if not run.ok or not spec:
        why = "" if spec else " — no ## Spec written"
        entry = note(shop, entry, run_line(run), attempts=entry.header.attempts + 1)
        return failed_attempt(shop, entry, f"pm produced no usable spec{why}", Lane.INBOX)
    gate = shop.config.pipeline.require_approval
    status = "awaiting-approval" if gate else "queued"
    entry = note(shop, entry, run_line(run), status=status, attempts=0)
    entry = shop.board.move(entry, Lane.BACKLOG)
    if gate:
        shop.notify("awaiting_approval", task_id=entry.id, title=entry.header.title)
    return entry


def _text(shop: Shop, entry: Entry) -> str:
    return shop.board.read_text(refresh(shop, entry))


# ---------------------------------------------------------------------------- Code + Run


def do_code(shop: Shop, entry: Entry) -> Entry:
    """active -> review: Coder in its worktree, orchestrator commits, then runs the checks."""
    workdir = worktree_path(shop, entry.id)
    branch = branch_name(entry.id)
    try:
        fresh_base = gitops.add_worktree(shop.root, workdir, branch)
    except gitops.GitError as exc:
        entry = note(shop, entry, f"coder could not start: {exc}")
        return failed_attempt(shop, entry, "no worktree", Lane.BACKLOG)
    base = load_state(shop, entry.id).get("base") or fresh_base  # diff covers every attempt
    save_state(shop, entry.id, base=base, branch=branch)
    text = _text(shop, entry)
    values = {
        "task_text": text,
        "previous_attempt": _previous_notes(text),
        "checks": ", ".join(_check_label(c) for c in shop.config.pipeline.checks) or "none",
    }
    run = run_agent(shop, "coder", entry, workdir, values, attempt=entry.header.attempts)
    if run.outcome in NOT_THE_TASKS_FAULT:
        return _park_for_agent_problem(shop, entry, run, Lane.ACTIVE)
    if not run.ok:
        return failed_attempt(shop, note(shop, entry, run_line(run)), "coder failed", Lane.BACKLOG)
    title = entry.header.title
    sha = gitops.commit_all(workdir, f"{entry.id}: {title} (attempt {entry.header.attempts})")
    if sha is None:
        entry = note(shop, entry, run_line(run))
        return failed_attempt(shop, entry, "coder changed nothing", Lane.BACKLOG)
    stat = gitops.diff(workdir, base, stat=True).strip().splitlines()
    entry = note(shop, entry, run_line(run, f"; {stat[-1].strip() if stat else 'committed'}"))
    report = run_checks(shop, entry, workdir)
    save_state(shop, entry.id, head=sha, checks_run=report.run_id, checks=report.items)
    entry = note(shop, entry, report.tracker_line(shop), status="queued")
    return shop.board.move(entry, Lane.REVIEW)


def _previous_notes(text: str) -> str:
    notes = task.get_section(text, "QA notes")
    if not notes:
        return ""
    return f"## Notes from the previous attempt (fix these first)\n\n{notes}\n"


def _check_label(check: str | list[str]) -> str:
    return check if isinstance(check, str) else shlex.join(check)


@dataclass
class ChecksReport:
    run_id: str
    run_dir: Path
    items: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(item["exit_code"] == 0 for item in self.items)

    def tracker_line(self, shop: Shop) -> str:
        where = shop.board.relative(self.run_dir)
        if not self.items:
            return f"checks none configured (run {self.run_id})"
        parts = [f"`{i['command']}` exit {i['exit_code']}" for i in self.items]
        verdict = "passed" if self.passed else "FAILED"
        return f"checks {'; '.join(parts)} — {verdict} (log: {where}/)"

    def for_prompt(self) -> str:
        if not self.items:
            return "No checks are configured for this project."
        blocks = []
        for item in self.items:
            blocks.append(
                f"- `{item['command']}` exit {item['exit_code']} ({item['ending']})\n\n"
                f"````text\n{item['tail']}\n````"
            )
        return "\n\n".join(blocks)


def run_checks(shop: Shop, entry: Entry, workdir: Path) -> ChecksReport:
    """The Run step: the orchestrator runs each configured check itself and keeps the output."""
    run_id = shop.new_run_id()
    run_dir = shop.runs_dir / run_id
    make_private_dir(run_dir)
    runlogs.write_meta(run_dir, entry.id, "checks")
    shop.journal.insert_run(
        run_id, entry.id, "checks", state="running", workdir=str(workdir), run_dir=str(run_dir)
    )
    items = []
    for number, check in enumerate(shop.config.pipeline.checks, start=1):
        argv = shlex.split(check) if isinstance(check, str) else list(check)
        spec = RunSpec(
            run_id=run_id,
            argv=argv,
            cwd=workdir,
            env=shop.child_env({"SHOPFLOOR_RUN_ID": run_id, "SHOPFLOOR_TASK_ID": entry.id}),
            run_dir=run_dir / f"check-{number}",
            timeout=shop.config.pipeline.check_timeout,
            stall=shop.config.pipeline.check_timeout,
        )
        make_private_dir(spec.run_dir)
        runner = Runner(spec)
        shop.track(run_id, entry.id, runner)
        try:
            result = runner.run()
        finally:
            shop.untrack(run_id)
        output = (read_tail(result.stdout_path) + read_tail(result.stderr_path))[-_CHECK_TAIL:]
        code = result.exit_code if result.exit_code is not None else -1
        items.append(
            {
                "command": _check_label(check),
                "exit_code": code,
                "ending": result.ending.value,
                "error": result.error,
                "log": str(spec.run_dir),
                "tail": output.strip(),
            }
        )
    report = ChecksReport(run_id, run_dir, items)
    _fs.atomic_write(run_dir / "checks.json", json.dumps(items, indent=2))
    shop.journal.update_run(
        run_id,
        state="ended",
        ended_at=task.utc_now(),
        outcome="ok" if report.passed else "fail",
        summary=str(len(items)),
    )
    return report


# ---------------------------------------------------------------------------- Read


def do_qa(shop: Shop, entry: Entry) -> Entry:
    """review -> done | backlog | failed: QA reads spec, diff and the captured check output."""
    state = load_state(shop, entry.id)
    workdir = worktree_path(shop, entry.id)
    report = _checks_for_review(shop, entry, state, workdir)
    diff = gitops.diff(workdir, state["base"]) if state.get("base") else ""
    values = {
        "task_text": _text(shop, entry),
        "diff": diff or "(empty)",
        "check_output": report.for_prompt(),
    }
    run = run_agent(shop, "qa", entry, workdir, values, attempt=entry.header.attempts)
    if run.outcome in NOT_THE_TASKS_FAULT:
        return _park_for_agent_problem(shop, entry, run, Lane.REVIEW)
    verdict = run.result.get("verdict") if run.ok else None
    entry = note(shop, entry, run_line(run))
    header = entry.header
    target = after_qa(report.passed, verdict, header.attempts, header.max_attempts)
    if target is Lane.DONE:
        return _finish_done(shop, entry)
    reason = _qa_reason(run, report, verdict)
    text = task.set_section(
        shop.board.read_text(entry), "QA notes", f"Attempt {header.attempts}: {reason}"
    )
    entry = shop.board.rewrite(entry, text)
    shop.notify("qa_failed", task_id=entry.id, title=header.title, notes=reason[:500])
    _drop_worktree(shop, entry.id)
    return failed_attempt(shop, entry, f"QA FAIL — {reason.splitlines()[0][:160]}", Lane.BACKLOG)


def _checks_for_review(
    shop: Shop, entry: Entry, state: dict[str, Any], workdir: Path
) -> ChecksReport:
    """The captured checks; rerun when the record is gone (a journal/state wipe)."""
    if not workdir.exists():
        gitops.add_worktree(shop.root, workdir, branch_name(entry.id))
    items = state.get("checks")
    if isinstance(items, list) and state.get("checks_run"):
        run_id = str(state["checks_run"])
        return ChecksReport(run_id, shop.runs_dir / run_id, items)
    report = run_checks(shop, entry, workdir)
    save_state(shop, entry.id, checks_run=report.run_id, checks=report.items)
    return report


def _qa_reason(run: AgentRun, report: ChecksReport, verdict: str | None) -> str:
    notes = str(run.result.get("notes") or "").strip()
    if not report.passed:
        failing = ", ".join(f"`{i['command']}`" for i in report.items if i["exit_code"] != 0)
        lead = f"checks failed ({failing})"
        if verdict == "pass":
            lead += "; QA said pass, but failing checks can never pass"
        return f"{lead}\n\n{notes}".strip()
    if verdict is None:
        return f"QA gave no verdict ({run.outcome.value}: {run.summary})"
    return notes or run.summary or "QA verdict: fail"


def _finish_done(shop: Shop, entry: Entry) -> Entry:
    branch = branch_name(entry.id)
    _drop_worktree(shop, entry.id)
    entry = note(
        shop,
        entry,
        f"done — branch {branch} waits for you: git merge {branch}",
        status="awaiting-human",
    )
    entry = shop.board.move(entry, Lane.DONE)
    if shop.config.pipeline.land == "merge":
        save_state(shop, entry.id, land="pending")
    shop.notify("task_done", task_id=entry.id, title=entry.header.title, branch=branch)
    return entry


def _drop_worktree(shop: Shop, task_id: str) -> None:
    """The branch keeps the work; the checkout is not needed between attempts."""
    gitops.remove_worktree(shop.root, worktree_path(shop, task_id))
    save_state(shop, task_id, checks=None, checks_run=None)


def land_pending(shop: Shop, entry: Entry, hotfix_waiting: bool) -> Entry:
    """`land = "merge"`: merge a done branch, only into a clean tree and never during a hotfix."""
    if hotfix_waiting or not gitops.is_clean(shop.root):
        return entry  # tried again on the next reconcile
    merged, message = gitops.merge(shop.root, branch_name(entry.id))
    save_state(shop, entry.id, land="merged" if merged else "failed")
    return note(shop, entry, f"land {message}", status="queued" if merged else "blocked")


# ---------------------------------------------------------------------------- Hotfix


def do_hotfix(shop: Shop, entry: Entry) -> Entry:
    """The Hotfix Protocol: patch the live tree, record verification, stay in hotfix/."""
    shop.notify("hotfix_started", task_id=entry.id, title=entry.header.title)
    run = run_agent(shop, "hotfix", entry, shop.root, {"task_text": _text(shop, entry)})
    stat = gitops.working_diff_stat(shop.root).strip().splitlines()
    verification = task.get_section(_text(shop, entry), "Verification")
    flags = "" if verification else " — INCOMPLETE: no ## Verification steps recorded"
    entry = note(shop, entry, run_line(run, flags), status="awaiting-human")
    summary = stat[-1].strip() if stat else "no uncommitted changes"
    entry = note(
        shop,
        entry,
        f"hotfix diff: {summary}; verify, commit, push, then `shopfloor hotfix close {entry.id}`",
    )
    shop.notify(
        "hotfix_awaiting_human",
        task_id=entry.id,
        title=entry.header.title,
        ok=run.ok,
        incomplete=not verification,
        summary=run.summary,
        diffstat="\n".join(stat[-20:]),
    )
    return entry
