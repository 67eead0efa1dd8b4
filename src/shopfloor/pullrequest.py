"""`[pipeline] land = "pr"`: a done task's branch becomes a pull request instead of a merge.

For people whose main branch is protected. After QA passes, the daemon pushes
`shopfloor/<id>` to `[pipeline] pr_remote` (a plain push: never forced, never prompting), then
runs `[pipeline] pr_command` (an argv list, no shell; `{id}` and `{branch}` are substituted;
run in the live repository with the agents' environment, so the daemon's secrets never reach
it) and takes the last URL it printed as the pull request's address: in the tracker line
("pr opened: URL"), in the `pr_opened` notification and in the task's state (`pr_url`). The
task is then `closed` in done/.

A failure (the push rejected, the command missing, timed out or exiting non-zero) leaves the
task `blocked` in done/ with the reason in the tracker and a `pr_failed` notification; the
branch is never touched. `shopfloor retry ID` (done/ blocked -> awaiting-human) pushes and runs
the command again. A task whose pull request is open and that is reworked comes back here
after QA: its new commits are pushed to the same branch, which updates the open pull request,
and the command is not run again.
"""

from __future__ import annotations

import re
from typing import Any

from shopfloor import lifecycle, task
from shopfloor.board import Entry
from shopfloor.errors import InfrastructureError
from shopfloor.gitops import GitError, push_branch
from shopfloor.lifecycle import Change
from shopfloor.paths import make_private_dir
from shopfloor.runner import Ending, Runner, RunSpec
from shopfloor.shop import Shop, agent_environment, read_tail
from shopfloor.words import Event

#: Limits of the pull-request command (it talks to a forge over the network).
COMMAND_TIMEOUT = 120.0
#: What of its output a failure quotes.
_ERROR_CHARS = 400
_URL_RE = re.compile(r"https?://[^\s<>\"']+")


def command_argv(template: list[str], task_id: str, branch: str) -> list[str]:
    """The configured command with `{id}` and `{branch}` put in (plain replacement: other
    braces stay as written)."""
    return [arg.replace("{id}", task_id).replace("{branch}", branch) for arg in template]


def last_url(output: str) -> str | None:
    """The last URL the command printed (`gh pr create` ends with the pull request's)."""
    for line in reversed(output.splitlines()):
        found = _URL_RE.findall(line)
        if found:
            return str(found[-1]).rstrip(".,;)")
    return None


def open_pull_request(shop: Shop, entry: Entry) -> Entry:
    """Push the task's branch and open (or update) its pull request; the task's file after."""
    from shopfloor import pipeline  # pipeline imports this module lazily; no cycle at load

    pipe = shop.config.pipeline
    branch = pipeline.branch_name(entry.id)
    remote = pipe.pr_remote
    known = pipeline.load_state(shop, entry.id).get("pr_url")
    try:
        push_branch(shop.root, remote, branch)
    except GitError as exc:
        return _failed(shop, entry, f"push of {branch} to {remote} failed: {exc}")
    facts: dict[str, Any] = {"branch": branch, "remote": remote}
    if isinstance(known, str) and known:  # reworked: the push updated the open pull request
        pipeline.save_state(shop, entry.id, land="opened")
        line = f"pr updated: {known} (pushed {branch} to {remote})"
        return _opened(shop, entry, line, {**facts, "url": known, "updated": True})
    argv = command_argv(pipe.pr_command, entry.id, branch)
    ok, output = _run_command(shop, entry, argv)
    if not ok:
        return _failed(shop, entry, output)
    url = last_url(output)
    # Kept before the tracker line: a crash now must not open a second pull request.
    pipeline.save_state(shop, entry.id, land="opened", pr_url=url, pr_error=None)
    said = url or f"the command printed no URL ({_last_line(output) or 'no output'})"
    line = f"pr opened: {said} (pushed {branch} to {remote})"
    return _opened(shop, entry, line, {**facts, "url": url})


def _opened(shop: Shop, entry: Entry, line: str, payload: dict[str, Any]) -> Entry:
    return lifecycle.apply(shop, entry, Event.PR_OPENED, line, Change(payload=payload))


def _failed(shop: Shop, entry: Entry, why: str) -> Entry:
    """Blocked in done/ for a human; `land` stays pending so a `retry` lands it again."""
    from shopfloor import pipeline

    why = task.one_line(why).strip()[:_ERROR_CHARS]
    pipeline.save_state(shop, entry.id, land="pending", pr_error=why)
    branch = pipeline.branch_name(entry.id)
    line = (
        f"pr failed: {why} — {branch} is kept; fix the cause, then `shopfloor retry {entry.id}` "
        "pushes it and opens the pull request again"
    )
    payload = {"error": why, "branch": branch, "remote": shop.config.pipeline.pr_remote}
    return lifecycle.apply(shop, entry, Event.PR_FAILED, line, Change(payload=payload))


def _run_command(shop: Shop, entry: Entry, argv: list[str]) -> tuple[bool, str]:
    """(True, stdout) when the command exited 0; else (False, why in words). Its output is
    kept in a run folder like a check's (.shopfloor/runs/<run>/pr/)."""
    if not argv:
        return False, "[pipeline] pr_command is empty"
    run_id, run_dir = shop.open_run(entry.id, "pr")
    spec = RunSpec(
        run_id=run_id,
        argv=argv,
        cwd=shop.root,
        env=agent_environment(shop.config, {"SHOPFLOOR_TASK_ID": entry.id}),
        run_dir=run_dir / "pr",
        timeout=COMMAND_TIMEOUT,
        stall=COMMAND_TIMEOUT,
    )
    try:
        make_private_dir(spec.run_dir)
    except OSError as exc:  # the machine's: the landing waits and is tried again
        raise InfrastructureError(f"cannot create a run folder: {exc}") from exc
    result = Runner(spec).run()
    out, err = read_tail(result.stdout_path), read_tail(result.stderr_path)
    shown = " ".join(argv)
    if result.ending is Ending.FAILED_TO_START:
        return False, f"`{shown}` could not start: {result.error or 'not found'}"
    if result.ending is not Ending.EXITED:
        return False, f"`{shown}` {result.error or result.ending.value}"
    if result.exit_code != 0:
        detail = _last_line(err) or _last_line(out) or "no output"
        return False, f"`{shown}` exit {result.exit_code}: {detail}"
    return True, out


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


__all__ = ["COMMAND_TIMEOUT", "command_argv", "last_url", "open_pull_request"]
