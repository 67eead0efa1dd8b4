"""Code-Run-Read: what each stage does. Where a task goes next is `lifecycle`'s business.

Each stage runs in a job thread, owns its task file until it returns, and returns a `Step`:
the lifecycle event its work amounts to, the tracker line, and what else to write. The
scheduler applies it. A stage may add tracker lines while it works (`note`).

| lane     | stage  | events it returns                                                   |
|----------|--------|---------------------------------------------------------------------|
| inbox    | PM     | spec-written / spec-gated, spec-failed                              |
| active   | Coder  | coded (after the orchestrator committed and ran the checks), code-failed |
| review   | QA     | qa-passed (only if the checks passed AND QA passed), qa-failed      |
| hotfix   | Hotfix | hotfix-ran (the file stays in hotfix/, awaiting the human)          |
| any      | any    | agent-waits, agent-paused, agent-problem, setup-problem: no attempt used |
"""

from __future__ import annotations

import contextlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor import _fs, gitops, hotfix_report, lifecycle, rework, task, treewatch
from shopfloor.agents import NOT_THE_TASKS_FAULT, Outcome
from shopfloor.board import Entry
from shopfloor.errors import InfrastructureError
from shopfloor.lifecycle import Change
from shopfloor.paths import make_private_dir
from shopfloor.runner import Runner, RunSpec
from shopfloor.shop import AgentRun, Shop, human_duration, read_tail, run_agent
from shopfloor.words import Event, Role

if TYPE_CHECKING:  # scale is imported by the remote stages alone (its engine is optional)
    from shopfloor.scale.contract import RunReply
    from shopfloor.scale.remote import RemoteRun

_CHECK_TAIL = 6000


@dataclass
class Step:
    """What a stage's work amounts to, for `lifecycle.apply`."""

    event: Event
    line: str
    change: Change = field(default_factory=Change)
    entry: Entry | None = None  # the task file as the stage last wrote it


# ---------------------------------------------------------------------------- task state


def load_state(shop: Shop, task_id: str) -> dict[str, Any]:
    """What the pipeline remembers between stages; {} when the journal cannot say."""
    try:
        return shop.journal.task_state(task_id)
    except Exception as exc:  # the journal is bookkeeping: its loss means recompute, not fail
        shop.log("journal.unavailable", task=task_id, error=str(exc))
        return {}


def save_state(shop: Shop, task_id: str, **fields: Any) -> None:
    try:
        shop.journal.save_task_state(task_id, **fields)
    except Exception as exc:
        raise InfrastructureError(f"cannot record the state of {task_id}: {exc}") from exc


def import_legacy_state(shop: Shop) -> int:
    """Per-task JSON files of earlier versions (.shopfloor/state/) move into the journal."""
    folder = shop.paths.state_dir / "state"
    moved = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and path.stem:
            save_state(shop, path.stem, **data)
            path.unlink()
            moved += 1
    with contextlib.suppress(OSError):
        folder.rmdir()
    return moved


def tidy_worktrees(shop: Shop, working: set[str]) -> list[str]:
    """At start: worktrees of tasks no longer in active/ or review/ are removed (uncommitted
    work is kept under refs/shopfloor/ first); the others get stale git locks cleared."""
    folder = shop.paths.worktrees_dir
    removed: list[str] = []
    try:
        gitops.prune_worktrees(shop.root)
    except gitops.GitError as exc:
        shop.log("worktree.tidy", error=str(exc))
        return removed
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue  # gitops sets unknown folders aside there
        try:
            if path.name in working:
                gitops.repair_locks(shop.root, path)
                continue
            ref = f"refs/shopfloor/snapshots/{path.name}/leftover"
            gitops.remove_worktree(shop.root, path, keep_ref=ref)
            removed.append(path.name)
        except gitops.GitError as exc:
            shop.log("worktree.tidy", task=path.name, error=str(exc))
    return removed


def worktree_path(shop: Shop, task_id: str) -> Path:
    return shop.paths.worktree(task_id)


def branch_name(task_id: str) -> str:
    return f"shopfloor/{task_id}"


# ---------------------------------------------------------------------------- board helpers


def note(shop: Shop, entry: Entry, line: str) -> Entry:
    """A tracker line while the stage works; TaskMoved if a person took the file away."""
    return lifecycle.apply(shop, entry, Event.NOTED, line)


def _text(shop: Shop, entry: Entry) -> str:
    if not entry.path.exists():
        raise lifecycle.TaskMoved(f"{entry.id} left {entry.lane.value}/")
    return shop.board.read_text(entry)


def run_line(run: AgentRun, extra: str = "") -> str:
    cost = f" ${run.parsed.cost_usd:.2f}" if run.parsed.cost_usd else ""
    tokens = (run.parsed.tokens_in or 0) + (run.parsed.tokens_out or 0)
    if tokens:
        cost = f" {tokens / 1000:.1f}k tokens{cost}"
    tail = f" — {run.summary}" if run.summary else ""
    return (
        f"{run.role} {run.agent} run {run.run_id} {run.verdict} {human_duration(run.duration)}"
        f"{cost}{tail}{extra}"
    )


def agent_trouble(run: AgentRun) -> Step:
    """Not the task's fault: no attempt used; wait for the agent, or for a human to fix it."""
    payload = {"agent": run.agent, "outcome": run.outcome.value, "detail": run.summary}
    if run.outcome is Outcome.STOPPED:
        return Step(Event.AGENT_WAITS, run_line(run, "; will run again (no attempt used)"))
    if run.outcome is Outcome.RATE_LIMITED:
        return Step(Event.AGENT_PAUSED, run_line(run, _will_rerun(run)), Change(payload=payload))
    return Step(Event.AGENT_PROBLEM, run_line(run, _waiting_why(run)), Change(payload=payload))


def _waiting_why(run: AgentRun) -> str:
    if run.outcome is Outcome.OVER_BUDGET:
        return f"; {run.error} — waiting for a human (no attempt used)"
    if run.outcome is Outcome.CANNOT_ACT:  # parked once, not failed again and again
        return (
            "; waiting for a human: add what the agent needs to the task, or give the task "
            "to a real agent (`agent:` in its header, or [roles] in shopfloor.toml), then "
            "`shopfloor retry` it (no attempt used)"
        )
    return "; waiting for a human to fix the agent (no attempt used)"


def _will_rerun(run: AgentRun) -> str:
    if run.paused_until is None:
        return "; will run again (no attempt used)"
    until = task.utc_stamp(run.paused_until)
    return f"; agent {run.agent} paused until {until}, the task waits (no attempt used)"


def flag_tree_changes(
    shop: Shop, entry: Entry, step: Step, run: AgentRun, seen: list[treewatch.Changes]
) -> Step:
    """A run that should not change a tree, and a tree that changed while it ran: said in the
    tracker line, in the step's notification payload and in a `tree_changed` notification of
    its own. Nothing is reverted (a human may have made the change)."""
    changed = [c for c in seen if c]
    unknown = [c for c in seen if c.error is not None]
    if not changed and not unknown:
        return step
    who = {"pm": "the PM", "qa": "QA"}.get(run.role, run.role)
    line = step.line + "".join(f" — {c.describe(who)}" for c in [*changed, *unknown])
    payload = dict(step.change.payload)
    if changed:
        payload["tree_changed"] = [c.payload() for c in changed]
    if any(not c.alongside for c in changed):  # a hotfix's own work is told by the hotfix
        about = {"task_id": entry.id, "title": entry.header.title, "role": run.role}
        shop.notify("tree_changed", **about, run_id=run.run_id, changes=payload["tree_changed"])
        shop.log("tree.changed", task=entry.id, run=run.run_id)
    change = Change(step.change.fields, step.change.sections, payload)
    return Step(step.event, line, change, step.entry)


def attempt_of(entry: Entry) -> int:
    """The attempt a run plays: attempts count only the verdicts already reached."""
    return entry.header.attempts + 1


# ---------------------------------------------------------------------------- PM


def do_pm(shop: Shop, entry: Entry) -> Step:
    """inbox -> backlog: the PM writes `## Spec` (in the live tree, which it must not change)."""
    values = {"task_text": _text(shop, entry)}
    if shop.engine is not None:
        return _remote_pm(shop, entry, values)
    before = treewatch.mark(shop.root, "the live tree")
    hotfixes = shop.live_tree.mark()
    run = run_agent(shop, Role.PM, entry, shop.root, values, attempt=attempt_of(entry))
    seen = [treewatch.changes_since(before, alongside=shop.live_tree.since(hotfixes))]
    return flag_tree_changes(shop, entry, _judge_spec(shop, entry, run), run, seen)


def _remote_pm(shop: Shop, entry: Entry, values: dict[str, str]) -> Step:
    """The PM on a worker: it edits the worker's copy of the task file; its `## Spec` comes
    back in the reply and the daemon writes it here (the only writer of task files)."""
    from shopfloor.scale import remote

    done = remote.run_remote(shop, Role.PM, entry, values, attempt_of(entry))
    entry = _note_lost(shop, entry, done)
    spec = task.get_section(done.reply.task_text or "", "Spec") if done.reply else ""
    step = _judge_spec(shop, entry, done.run, spec)
    if step.event in (Event.SPEC_WRITTEN, Event.SPEC_GATED) and spec:
        return Step(step.event, step.line, Change(sections={"Spec": spec}), entry)
    return _on(step, entry)


def _on(step: Step, entry: Entry) -> Step:
    """The step, applied to the task file as the stage last wrote it."""
    return step if step.entry is not None else Step(step.event, step.line, step.change, entry)


def _note_lost(shop: Shop, entry: Entry, done: RemoteRun) -> Entry:
    """Runs lost with a dead worker, said in the tracker (none used an attempt)."""
    from shopfloor.scale import remote

    for line in remote.lost_lines(done.reply):
        entry = note(shop, entry, line)
    return entry


def _judge_spec(shop: Shop, entry: Entry, run: AgentRun, spec: str | None = None) -> Step:
    if run.outcome in NOT_THE_TASKS_FAULT:
        return agent_trouble(run)
    if spec is None:
        spec = task.get_section(_text(shop, entry), "Spec")
    if not run.ok or not spec:
        why = "" if spec else " — no ## Spec written"
        return Step(Event.SPEC_FAILED, run_line(run, f"; pm produced no usable spec{why}"))
    if shop.config.pipeline.require_approval:
        return Step(Event.SPEC_GATED, run_line(run, "; the spec waits for `shopfloor approve`"))
    return Step(Event.SPEC_WRITTEN, run_line(run))


# ---------------------------------------------------------------------------- Code + Run


def do_code(shop: Shop, entry: Entry) -> Step:
    """active -> review: Coder in its worktree, orchestrator commits, then runs the checks."""
    if shop.engine is not None:
        return _remote_code(shop, entry)
    attempt = attempt_of(entry)
    workdir, branch = worktree_path(shop, entry.id), branch_name(entry.id)
    try:
        checkout = gitops.add_worktree(shop.root, workdir, branch)
    except gitops.NoCommitsError as exc:
        return Step(Event.SETUP_PROBLEM, f"coder cannot start: {exc}; then `shopfloor retry`")
    state = load_state(shop, entry.id)
    base = _base_commit(shop, state, branch, checkout)  # QA's diff covers every attempt
    save_state(shop, entry.id, base=base, branch=branch)
    since = state.get("attempts_since")  # set by a rework or a retry
    sha = None
    if not checkout.created:  # a branch made just now holds no commit, crashed or not
        sha = gitops.attempt_commit(shop.root, branch, entry.id, attempt, since=since or None)
    if sha is not None:  # a crash came after the commit: its work is not done again
        entry = note(shop, entry, f"coder attempt {attempt} already committed ({sha[:10]})")
    else:
        # On a branch made just now at the base, the commit's own stat is the whole diff's.
        first = checkout.created and base == checkout.base
        outcome = _run_coder(shop, entry, workdir, attempt, base, first)
        if isinstance(outcome, Step):
            return outcome
        entry = outcome
    report = run_checks(shop, entry, workdir)
    save_state(shop, entry.id, checks_run=report.run_id, checks=report.items)
    return Step(Event.CODED, report.tracker_line(shop), entry=entry)


def _remote_code(shop: Shop, entry: Entry) -> Step:
    """The Coder on a worker: the daemon publishes the task's branch (at its base on first use),
    the worker runs the agent in a worktree of it, commits, pushes and runs the checks there;
    the daemon fetches the branch and keeps the checks' output for QA."""
    from shopfloor.scale import dispatch, remote

    attempt, branch = attempt_of(entry), branch_name(entry.id)
    state = load_state(shop, entry.id)
    base = state.get("base") or gitops.head(shop.root)
    if not base:
        why = "the repository has no commits yet; commit something"
        return Step(Event.SETUP_PROBLEM, f"coder cannot start: {why}, then `shopfloor retry`")
    save_state(shop, entry.id, base=base, branch=branch)
    where = shop.config.scale.remote
    dispatch.publish_branch(shop.root, where, branch, str(base))
    text = _text(shop, entry)
    values = {
        "task_text": text,
        "previous_attempt": _previous_notes(text),
        "checks": ", ".join(_check_label(c) for c in shop.config.pipeline.checks) or "none",
    }
    since = state.get("attempts_since") or ""
    done = remote.run_remote(
        shop,
        Role.CODER,
        entry,
        values,
        attempt,
        branch=branch,
        base=str(base),
        since=since,
        run_checks=True,
    )
    entry = _note_lost(shop, entry, done)
    run, reply = done.run, done.reply
    if reply is None or not (run.ok or reply.already_committed):
        if run.outcome in NOT_THE_TASKS_FAULT:
            return _on(agent_trouble(run), entry)
        return Step(Event.CODE_FAILED, run_line(run, "; coder failed"), entry=entry)
    if not reply.commit:
        return Step(Event.CODE_FAILED, run_line(run, "; coder changed nothing"), entry=entry)
    dispatch.fetch_branch(shop.root, where, branch)
    if reply.already_committed:
        line = f"coder attempt {attempt} already committed ({reply.commit[:10]}) on {where}"
    else:
        line = run_line(run, f"; {reply.diffstat or 'committed'} (worker {reply.worker})")
    entry = note(shop, entry, line)
    report = _remote_checks(shop, entry, reply)
    save_state(shop, entry.id, checks_run=report.run_id, checks=report.items)
    return Step(Event.CODED, report.tracker_line(shop), entry=entry)


def _remote_checks(shop: Shop, entry: Entry, reply: RunReply) -> ChecksReport:
    """The checks the worker ran after committing, kept in a run folder here; when it sent
    none, the orchestrator runs them here, in a worktree of the fetched branch."""
    if reply.checks is None:
        workdir = worktree_path(shop, entry.id)
        if not workdir.exists():
            gitops.add_worktree(shop.root, workdir, branch_name(entry.id))
        return run_checks(shop, entry, workdir)
    run_id, run_dir = shop.open_run(entry.id, "checks")
    items = list(reply.checks)
    report = ChecksReport(run_id, run_dir, items)
    _fs.atomic_write(run_dir / "checks.json", json.dumps(items, indent=2))
    outcome = "ok" if report.passed else "fail"

    def record() -> None:
        shop.journal.insert_run(
            run_id, entry.id, "checks", state="ended", run_dir=str(run_dir), worker=reply.worker
        )
        shop.journal.update_run(run_id, ended_at=task.utc_now(), outcome=outcome)

    shop.bookkeep("checks", record)
    return report


def _base_commit(shop: Shop, state: dict[str, Any], branch: str, checkout: gitops.Checkout) -> str:
    known = state.get("base")
    if isinstance(known, str) and known:
        return known
    if checkout.created:
        return checkout.base  # where the branch was made just now
    return gitops.merge_base(shop.root, branch, "HEAD") or checkout.base


def _run_coder(
    shop: Shop, entry: Entry, workdir: Path, attempt: int, base: str, on_base: bool = False
) -> Step | Entry:
    """The Coder run and the orchestrator's commit: a Step when the attempt ends here.
    `on_base`: the branch's tip is `base`, so the commit's own stat is the diff's."""
    text = _text(shop, entry)
    values = {
        "task_text": text,
        "previous_attempt": _previous_notes(text),
        "checks": ", ".join(_check_label(c) for c in shop.config.pipeline.checks) or "none",
    }
    run = run_agent(shop, Role.CODER, entry, workdir, values, attempt=attempt)
    if not run.ok:
        _keep_unfinished_work(shop, entry.id, workdir, run.run_id)
        if run.outcome in NOT_THE_TASKS_FAULT:
            return agent_trouble(run)
        return Step(Event.CODE_FAILED, run_line(run, "; coder failed"))
    trailers = {
        "Shopfloor-Task": entry.id,
        "Shopfloor-Attempt": str(attempt),
        "Shopfloor-Run": run.run_id,
    }
    message = f"{entry.id}: {entry.header.title} (attempt {attempt})"
    done = gitops.commit_work(workdir, message, trailers=trailers)
    if done is None:
        return Step(Event.CODE_FAILED, run_line(run, "; coder changed nothing"))
    said = done.stat if on_base else ""
    if not said:
        stat = gitops.diff(workdir, base, stat=True).strip().splitlines()
        said = stat[-1].strip() if stat else "committed"
    return note(shop, entry, run_line(run, f"; {said}"))


def _keep_unfinished_work(shop: Shop, task_id: str, workdir: Path, run_id: str) -> None:
    """A killed, stalled or failed coder may have left work: keep it as a commit under a ref."""
    ref = f"refs/shopfloor/snapshots/{task_id}/{run_id}"
    try:
        sha = gitops.snapshot(workdir, ref)
    except gitops.GitError as exc:
        shop.log("snapshot.failed", task=task_id, error=str(exc))
        return
    if sha is not None:
        shop.log("snapshot", task=task_id, ref=ref, sha=sha[:10])


def _previous_notes(text: str) -> str:
    """QA's notes and the rework notes (a person's or the merge queue's), for the Coder."""
    blocks = []
    notes = task.get_section(text, "QA notes")
    if notes:
        blocks.append(f"## Notes from the previous attempt (fix these first)\n\n{notes}\n")
    rework_notes = task.get_section(text, rework.SECTION)
    if rework_notes:
        blocks.append(
            "## Rework notes (the task was sent back to you; newest round last)\n\n"
            "Your worktree holds the earlier attempts' commits: change that work as the notes "
            f"say, do not start over.\n\n{rework_notes}\n"
        )
    return "\n".join(blocks)


def _checks_for_prompt(shop: Shop) -> str:
    """The configured checks as a prompt line: each in backticks, or that there are none."""
    checks = shop.config.pipeline.checks
    return ", ".join(f"`{_check_label(c)}`" for c in checks) or "none configured"


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
    run_id, run_dir = shop.open_run(entry.id, "checks")
    shop.bookkeep(
        "checks",
        lambda: shop.journal.insert_run(
            run_id, entry.id, "checks", state="running", workdir=str(workdir), run_dir=str(run_dir)
        ),
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
            grace=shop.config.pipeline.stop_grace,
            die_with_parent=shop.die_with_us,
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


def do_qa(shop: Shop, entry: Entry) -> Step:
    """review -> done | backlog | failed: QA reads spec, diff and the captured check output."""
    state = load_state(shop, entry.id)
    if shop.engine is not None:
        return _remote_qa(shop, entry, state)
    workdir = worktree_path(shop, entry.id)
    report = _checks_for_review(shop, entry, state, workdir)
    base = state.get("base") or gitops.merge_base(shop.root, branch_name(entry.id), "HEAD")
    diff = gitops.diff(workdir, str(base)) if base else ""
    values = {
        "task_text": _text(shop, entry),
        "diff": diff or "(empty)",
        "check_output": report.for_prompt(),
    }
    # QA reads its worktree, but a CLI that cannot be confined could reach the live tree too.
    marks = [treewatch.mark(workdir, "its worktree"), treewatch.mark(shop.root, "the live tree")]
    run = run_agent(shop, Role.QA, entry, workdir, values, attempt=attempt_of(entry))
    live = treewatch.changes_since(marks[1])
    if run.outcome in NOT_THE_TASKS_FAULT:  # no verdict: QA runs again in this worktree
        seen = [treewatch.changes_since(marks[0]), live]
    else:  # a verdict: the worktree goes, and the look its removal takes is the second mark
        seen = [_drop_watched(shop, entry.id, marks[0]), live]
    return flag_tree_changes(shop, entry, _judge_review(shop, entry, run, report), run, seen)


def _remote_qa(shop: Shop, entry: Entry, state: dict[str, Any]) -> Step:
    """QA on a worker, in a worktree of the branch the daemon publishes; the diff and the
    checks' output are the daemon's, as for a local QA run."""
    from shopfloor.scale import dispatch, remote

    branch = branch_name(entry.id)
    where = shop.config.scale.remote
    dispatch.fetch_branch(shop.root, where, branch)
    base = state.get("base") or gitops.merge_base(shop.root, branch, "HEAD") or ""
    items = state.get("checks")
    if isinstance(items, list) and state.get("checks_run"):
        report = ChecksReport(
            str(state["checks_run"]), shop.runs_dir / str(state["checks_run"]), items
        )
    else:  # the record is gone (a journal loss): run them again, here
        report = _checks_for_review(shop, entry, state, worktree_path(shop, entry.id))
    dispatch.publish_branch(shop.root, where, branch, str(base))
    diff = gitops.diff_refs(shop.root, str(base), branch) if base else ""
    values = {
        "task_text": _text(shop, entry),
        "diff": diff or "(empty)",
        "check_output": report.for_prompt(),
    }
    done = remote.run_remote(
        shop, Role.QA, entry, values, attempt_of(entry), branch=branch, base=str(base)
    )
    entry = _note_lost(shop, entry, done)
    if done.run.outcome not in NOT_THE_TASKS_FAULT:  # a verdict: a local checkout goes
        _drop_worktree(shop, entry.id)
    return _on(_judge_review(shop, entry, done.run, report), entry)


def _judge_review(shop: Shop, entry: Entry, run: AgentRun, report: ChecksReport) -> Step:
    """The step QA's run amounts to (its caller dropped the worktree after a verdict)."""
    if run.outcome in NOT_THE_TASKS_FAULT:
        return agent_trouble(run)
    verdict = run.result.get("verdict") if run.ok else None
    if report.passed and verdict == "pass":
        return _passed(shop, entry, run)
    reason = _qa_reason(run, report, verdict)
    sections = {"QA notes": f"Attempt {attempt_of(entry)}: {reason}"}
    line = run_line(run, f"; QA FAIL — {reason.splitlines()[0][:160]}")
    return Step(Event.QA_FAILED, line, Change(sections=sections, payload={"notes": reason[:500]}))


def _checks_for_review(
    shop: Shop, entry: Entry, state: dict[str, Any], workdir: Path
) -> ChecksReport:
    """The captured checks; rerun when the record is gone (a journal loss)."""
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


def _passed(shop: Shop, entry: Entry, run: AgentRun) -> Step:
    branch = branch_name(entry.id)
    land = shop.config.pipeline.land
    if land == "queue":  # done/ only once it landed (see `landing`)
        from shopfloor import landing

        target = landing.target_branch(shop.root, shop.config.pipeline.land_target)[0]
        line = run_line(run, f"; passed — in the merge queue for {target or '(no target)'}")
        return Step(Event.LAND_QUEUED, line, Change(payload={"branch": branch}))
    if land in ("merge", "pr"):
        save_state(shop, entry.id, land="pending")
    then = f"waits for you: git merge {branch}"
    if land == "pr":
        then = "is pushed and a pull request opened next"
    line = run_line(run, f"; done — branch {branch} {then}")
    return Step(Event.QA_PASSED, line, Change(payload={"branch": branch}))


def _drop_worktree(shop: Shop, task_id: str, look: gitops.Look | None = None) -> None:
    """The branch keeps the work; the checkout is not needed between attempts."""
    gitops.remove_worktree(shop.root, worktree_path(shop, task_id), look=look)
    save_state(shop, task_id, checks=None, checks_run=None)


def _drop_watched(shop: Shop, task_id: str, before: treewatch.Mark) -> treewatch.Changes:
    """`_drop_worktree`, and what changed in the worktree since `before`: the removal's own
    `git status` is the second mark."""
    looked: list[treewatch.Mark] = []

    def look(state: gitops.TreeState) -> None:
        looked.append(treewatch.mark_of(before.tree, before.label, state))

    _drop_worktree(shop, task_id, look)
    gone = treewatch.Mark(before.tree, before.label, error=f"{before.tree} was gone")
    return treewatch.changes_between(before, looked[0] if looked else gone)


def land_pending(shop: Shop, entry: Entry, hotfix_waiting: bool) -> Entry:
    """`land = "merge"`: merge a done branch, only into a clean tree and never during a hotfix.
    `land = "pr"`: push it and open a pull request (the live tree is not touched)."""
    if shop.config.pipeline.land == "pr":
        from shopfloor import pullrequest

        return pullrequest.open_pull_request(shop, entry)
    if hotfix_waiting or not gitops.is_clean(shop.root):
        return entry  # tried again on the next reconcile
    merged, message = gitops.merge(shop.root, branch_name(entry.id))
    save_state(shop, entry.id, land="merged" if merged else "failed")
    event = Event.LANDED if merged else Event.LAND_FAILED
    return lifecycle.apply(shop, entry, event, f"land {message}")


# ---------------------------------------------------------------------------- Hotfix


#: Where a hotfix keeps the human's uncommitted work (`refs/shopfloor/snapshots/<id>`).
snapshot_ref = hotfix_report.snapshot_ref


def do_hotfix(
    shop: Shop,
    entry: Entry,
    begun: hotfix_report.Start | None = None,
    opened: tuple[str, Path] | None = None,
) -> Step:
    """The Hotfix Protocol: patch the live tree, record verification, stay in hotfix/.

    Before the agent starts, the human's uncommitted work is kept as a snapshot commit (see
    `hotfix_report`); afterwards the tracker and the notification name only what changed since
    the agent's base, flag commits loudly, and say so when nothing changed. The task's state
    (journal) keeps `hotfix_snapshot` (None when the tree was clean), `hotfix_base` (what the
    agent started from: the snapshot, else HEAD), `hotfix_head_before`, `hotfix_branch_before`,
    `hotfix_human_paths`, `hotfix_started_at`, then `hotfix_head_after` and `hotfix_paths`.

    `begun`: the snapshot already taken (`hotfix_report.begin`; the daemon takes it while it
    writes the claim), else taken here; `opened`: the run's id and folder, made already
    (`Shop.open_run`, while the snapshot is taken).
    """
    start = begun if begun is not None else hotfix_report.begin(shop.root, entry.id)
    try:
        _remember(shop, entry.id, start.state())
        said = hotfix_report.started_line(start)
        if said is not None:
            entry = note(shop, entry, said)
        payload = hotfix_report.started_payload(start)
        shop.notify("hotfix_started", task_id=entry.id, title=entry.header.title, **payload)
        values = {"task_text": _text(shop, entry), "checks": _checks_for_prompt(shop)}
        with shop.live_tree.working(entry.id):
            run = run_agent(shop, Role.HOTFIX, entry, shop.root, values, opened=opened)
        return _hotfix_ran(shop, entry, start, run)
    finally:
        hotfix_report.end(shop.root, entry.id)


def _remember(shop: Shop, task_id: str, fields: dict[str, Any]) -> None:
    """The hotfix's state, kept if the journal can: a full or lost journal never stops a hotfix
    (the tracker says the same things)."""
    try:
        save_state(shop, task_id, **fields)
    except InfrastructureError as exc:
        shop.log("journal.unavailable", task=task_id, error=str(exc))


def _hotfix_ran(shop: Shop, entry: Entry, start: hotfix_report.Start, run: AgentRun) -> Step:
    """The tracker lines and the notification after the agent: the truth about the tree."""
    verification = task.get_section(_text(shop, entry), "Verification")
    payload: dict[str, Any] = {"ok": run.ok, "incomplete": not verification, "summary": run.summary}
    try:
        report = hotfix_report.inspect(shop.root, start)
    except gitops.GitError as exc:  # the run happened: say what is unknown, not "could not run"
        shop.log("hotfix.inspect", task=entry.id, error=str(exc))
        entry = note(shop, entry, run_line(run))
        line = (
            f"could not compare the tree with the agent's base {start.base}: {exc} — check "
            f"`git status` and `git log` yourself; then `shopfloor hotfix close {entry.id}`"
        )
        return Step(Event.HOTFIX_RAN, line, Change(payload={**payload, "error": str(exc)}), entry)
    _remember(shop, entry.id, report.state())
    # No steps for no change is no omission: flagged only when the agent changed something.
    missing = not verification and not report.changed_nothing
    flags = " — INCOMPLETE: no ## Verification steps recorded" if missing else ""
    overlap = report.overlap_line()
    for said in [run_line(run, flags), *report.warnings(), *([overlap] if overlap else [])]:
        entry = note(shop, entry, said)
    payload.update(report.payload(), incomplete=missing)
    return Step(Event.HOTFIX_RAN, report.summary_line(), Change(payload=payload), entry=entry)
