"""The merge queue (`[pipeline] land = "queue"`): done means landed.

A task QA passed stays in review/ with status `landing` (`land-queued`); it reaches done/
only when its change is on the target branch (`landed`). The queue:

1. takes the ready tasks, by priority then age, at most `land_batch` at a time;
2. puts each one's change on top of the current target, one after another, as one commit per
   task (a three-way merge in the object store, `gitops.squash_tree`: the task's changes since
   its branch met the target; its branch is never rewritten). A task that conflicts with the
   target itself is bounced; one that conflicts only with a task ahead of it in the batch
   waits for the next round;
3. checks the whole candidate once, in a scratch checkout (`.shopfloor/landing/tree`), with
   the project's `pipeline.checks`. When they fail, it bisects the prefixes for the first
   task that breaks them, lands the tasks before it and bounces that one;
4. advances the target with ONE compare-and-swap (`git update-ref <ref> <new> <old>`): never a
   force; a commit someone made meanwhile makes the swap fail, and the round starts again on
   top of it. When the target is checked out (the live tree, or a linked worktree), the swap
   is made only when that tree is clean, and its files are then brought along with a two-way
   `git read-tree -m -u old new` (what `git merge --ff-only` does to the files; the ref moves
   first, so a crash never leaves files ahead of their branch).

It waits (and says why, once per task) while a hotfix is open, while the checked-out target
has uncommitted work, or while the target's own checks fail. A task that does not fit goes
back to the Coder (backlog/, queued) with `## Rework notes`: the conflicting files or the
check output, and the title and spec of the tasks it collided with; its branch is kept as it
was. That uses no attempt (it gives the task one more `max_attempts`), but `max_rebases`
bounces in a row send it to failed/ for a human.

Crash protocol: before the swap, what is about to land is written to `queue.json` (durable);
the swap is the only moment the target changes. A run that starts finds an unfinished record:
if the target holds its commit, the rest (the tree carried forward, the tasks moved to done/)
is finished; else it is dropped and the tasks are simply still ready. A task whose commit (or
whose branch) is already in the target is marked landed, never landed twice. Everything runs
under `landing.lock`: the daemon's queue thread and `shopfloor land` never run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfloor import _fs, defaults, gitops, landing_record, lifecycle, rework, task
from shopfloor.board import Board, Entry
from shopfloor.lifecycle import Change
from shopfloor.paths import StatePaths
from shopfloor.words import Event, Lane, Status

_PRIORITY_ORDER = {p: i for i, p in enumerate(defaults.PRIORITIES)}
#: Rounds that lost the compare-and-swap to someone else's commit before the queue waits.
CAS_TRIES = 5
_TAIL = 3000
_SPEC_CHARS = 1500


# ---------------------------------------------------------------------------- where


def queue_file(root: Path) -> Path:
    return Path(landing_record.queue_file(root))


def _paths(root: Path) -> StatePaths:
    return StatePaths(root)


def target_branch(root: Path, configured: str) -> tuple[str | None, str]:
    """(branch, where that came from): `land_target`, else the branch `init` saw, else the
    live tree's current branch (None: detached, nothing to land on)."""
    if configured:
        return configured, "land_target"
    with contextlib.suppress(OSError):
        recorded = _paths(root).land_target.read_text("utf-8").strip()
        if recorded:
            return recorded, "the branch checked out at init"
    current = gitops.current_branch(root)
    return current, "the live tree's current branch (init recorded none)"


def ready(board: Board, only: str | None = None) -> list[Entry]:
    """The tasks waiting in the queue, first to land first: priority, then age."""
    entries = [
        e
        for e in board.scan([Lane.REVIEW]).lane(Lane.REVIEW)
        if e.header.status == Status.LANDING and (only is None or e.id == only)
    ]
    return sorted(
        entries,
        key=lambda e: (_PRIORITY_ORDER.get(e.header.priority, 9), e.header.created or "", e.id),
    )


# ---------------------------------------------------------------------------- the record


read_record = landing_record.read_record


def _record(root: Path, **fields: Any) -> None:
    """Merge `fields` into the record (None removes a key); written only when it changes
    (a waiting queue is asked again on every tick of the daemon)."""
    before = read_record(root)
    data = {k: v for k, v in {**before, **fields}.items() if v is not None}
    if {k: v for k, v in data.items() if k != "updated"} == {
        k: v for k, v in before.items() if k != "updated"
    }:
        return
    data["updated"] = task.utc_now()
    path = queue_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.atomic_write(path, json.dumps(data, indent=2))


def report(root: Path, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """The queue for `status`, from the listed tasks (see `landing_record.report`)."""
    queued = [t["id"] for t in tasks if t.get("lane") == "review" and t.get("status") == "landing"]
    return landing_record.report(root, queued)


# ---------------------------------------------------------------------------- test seam


def _fault_point(point: str) -> None:
    """SHOPFLOOR_FAULT=land:<point> kills this process there (the crash tests)."""
    if os.environ.get("SHOPFLOOR_FAULT") == f"land:{point}":
        os.kill(os.getpid(), 9)


# ---------------------------------------------------------------------------- landing


@dataclass
class Outcome:
    """What one `land` call did."""

    landed: list[str] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    waiting: str | None = None
    check_runs: int = 0


@dataclass
class _Piece:
    entry: Entry
    tip: str  # the task branch's commit
    commit: str  # its change on top of the candidate before it


@contextlib.contextmanager
def _queue_lock(root: Path) -> Iterator[None]:
    with _fs.locked(_paths(root).landing_dir / "landing.lock"):
        yield


def land(shop: Any, only: str | None = None) -> Outcome:
    """Land what is ready (only task `only` when given), under the queue's lock, until
    nothing is ready or the queue must wait. `shop`: a `shop.Shop`."""
    outcome = Outcome()
    root = shop.root
    _paths(root).ensure()
    with _queue_lock(root):
        target, source = target_branch(root, shop.config.pipeline.land_target)
        if target is None:
            _wait_all(
                shop,
                outcome,
                "no target branch: the live tree is detached and no "
                "`land_target` is set in [pipeline]",
                only,
            )
            return outcome
        _record(root, target=target, target_source=source, checking=None)
        _resume(shop, target)
        lost = 0
        while not shop.stopping.is_set():
            entries = ready(shop.board, only)
            if not entries:
                _record(root, waiting=None)
                break
            why = _why_wait(shop, target)
            if why is not None:
                _wait_all(shop, outcome, why, only)
                break
            _record(root, waiting=None)
            moved = _round(shop, target, entries[: shop.config.pipeline.land_batch], outcome)
            if outcome.waiting is not None:
                break
            if moved:
                lost += 1
                if lost >= CAS_TRIES:
                    _wait_all(shop, outcome, f"{target} keeps moving under the queue", only)
                    break
        _record(root, checking=None)
    return outcome


def _why_wait(shop: Any, target: str) -> str | None:
    root = shop.root
    open_hotfix = [
        e.id
        for e in shop.board.scan([Lane.HOTFIX]).lane(Lane.HOTFIX)
        if e.header.status in (Status.QUEUED, Status.RUNNING, Status.AWAITING_HUMAN)
    ]
    if open_hotfix:
        return (
            f"a hotfix ({', '.join(open_hotfix)}) is open: the live tree is the human's until "
            "`shopfloor hotfix close`"
        )
    sha = gitops.rev(root, f"refs/heads/{target}")
    if sha is None:
        return f"the target branch {target} does not exist"
    if read_record(root).get("red") == sha:  # checked already: not again until it moves
        return _red_target(target, sha)
    tree = gitops.checked_out_at(root, target)
    if tree is not None:
        dirty = sorted(gitops.status_entries(tree))
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            return (
                f"{target} is checked out in {tree} and that tree has uncommitted changes "
                f"({shown}): commit or stash them, and the queue lands"
            )
        head = gitops.rev(tree, "HEAD")
        if head is not None and not gitops.index_matches(tree, head):
            return f"the index of {tree} does not match its HEAD: commit or reset it"
    _record(root, problem=None)  # a tree that could not follow is fine again
    return None


def _wait_all(shop: Any, outcome: Outcome, why: str, only: str | None) -> None:
    """Say why the queue waits: in the record, and once per task and reason in its tracker."""
    from shopfloor import pipeline

    outcome.waiting = why
    _record(shop.root, waiting=why)
    for entry in ready(shop.board, only):
        if pipeline.load_state(shop, entry.id).get("land_wait") == why:
            continue
        with contextlib.suppress(lifecycle.TaskMoved, lifecycle.TransitionRefused):
            lifecycle.apply(shop, entry, Event.LAND_WAITING, f"landing waits: {why}")
            pipeline.save_state(shop, entry.id, land_wait=why)


def _round(shop: Any, target: str, batch: list[Entry], outcome: Outcome) -> bool:
    """One candidate, checked, landed or bisected; True when the target moved under it."""
    old = gitops.rev(shop.root, f"refs/heads/{target}")
    assert old is not None  # _why_wait said it exists
    pieces = _integrate(shop, target, old, batch, outcome)
    if not pieces:
        return False
    good, culprit = _judge(shop, target, old, pieces, outcome)
    if outcome.waiting is not None or shop.stopping.is_set():
        return False
    if not good and culprit is None:  # a check was stopped before its verdict: no verdict
        outcome.waiting = "the checks were stopped before a verdict; tried again next pass"
        return False
    if good and not _advance(shop, target, old, pieces[:good], outcome):
        return True
    if culprit is not None:
        piece, checks = culprit
        _bounce(shop, piece.entry, target, piece.tip, outcome, checks=checks)
    return False


def _integrate(
    shop: Any, target: str, old: str, batch: list[Entry], outcome: Outcome
) -> list[_Piece]:
    """The batch put on `old` one task after another, each one commit (nothing checked out).
    A task already there is marked landed; one that conflicts with `old` is bounced; one that
    conflicts only with a task ahead of it waits for the next round."""
    root = shop.root
    pieces: list[_Piece] = []
    cur = old
    for entry in batch:
        tip = gitops.rev(root, f"refs/heads/shopfloor/{entry.id}")
        if tip is None:
            _refuse(shop, entry, f"its branch shopfloor/{entry.id} is gone", outcome)
            continue
        if _already_on(shop, entry, tip, old):
            _mark_landed(shop, entry, target, old, "was already on the target", outcome)
            continue
        squash = gitops.squash_tree(root, cur, tip)
        if squash.tree is None:
            if cur == old:  # it conflicts with what already landed: back to its Coder
                _bounce(shop, entry, target, tip, outcome, files=squash.conflicts)
            continue
        if squash.tree == gitops.tree_of(root, cur):
            if cur == old:
                _mark_landed(shop, entry, target, old, "changes nothing on the target", outcome)
            continue
        message = _message(entry, tip)
        pieces.append(_Piece(entry, tip, gitops.commit_tree(root, squash.tree, cur, message)))
        cur = pieces[-1].commit
    return pieces


def _message(entry: Entry, tip: str) -> str:
    trailers = {
        "Shopfloor-Task": entry.id,
        "Shopfloor-Branch": f"shopfloor/{entry.id}",
        "Shopfloor-Tip": tip,
    }
    return gitops.with_trailers(f"{entry.id}: {entry.header.title}", trailers)


def _already_on(shop: Any, entry: Entry, tip: str, target_sha: str) -> bool:
    """Its branch, or the commit the queue made of it (a crash after the swap), is there."""
    from shopfloor import pipeline

    if gitops.is_ancestor(shop.root, tip, target_sha):
        return True
    made = pipeline.load_state(shop, entry.id).get("land_commit")
    return isinstance(made, str) and bool(made) and gitops.is_ancestor(shop.root, made, target_sha)


# ---------------------------------------------------------------------------- checks


def _judge(
    shop: Any, target: str, old: str, pieces: list[_Piece], outcome: Outcome
) -> tuple[int, tuple[_Piece, Any] | None]:
    """(how many pieces land, the culprit and its failing checks): the whole candidate
    checked once; when it fails, the prefixes bisected for the first one that fails."""
    results: dict[int, Any] = {}

    def check(n: int) -> bool | None:
        report = _check(shop, pieces[n - 1].entry, pieces[n - 1].commit, pieces[:n], outcome)
        if report is None:
            return None
        results[n] = report
        return bool(report.passed)

    whole = check(len(pieces))
    if whole is None:
        return 0, None
    if whole:
        return len(pieces), None
    lo, hi = 0, len(pieces)  # prefix lo passes (0: the target), prefix hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        verdict = check(mid)
        if verdict is None:
            return 0, None
        lo, hi = (mid, hi) if verdict else (lo, mid)
    if lo == 0 and not _target_green(shop, target, old, pieces[0].entry, outcome):
        if outcome.waiting is None and not shop.stopping.is_set():
            _record(shop.root, red=old)
            _wait_all(shop, outcome, _red_target(target, old), None)
        return 0, None
    return lo, (pieces[hi - 1], results[hi])


def _red_target(target: str, sha: str) -> str:
    return f"the checks fail on {target} itself ({sha[:10]}), before any task: fix {target}"


def _target_green(shop: Any, target: str, old: str, entry: Entry, outcome: Outcome) -> bool:
    """The target's own checks pass (known when the queue put it there or checked it)."""
    if read_record(shop.root).get("green") == old:
        return True
    report = _check(shop, entry, old, [], outcome)
    if report is None or not report.passed:
        return False
    _record(shop.root, green=old)
    return True


def _check(
    shop: Any, entry: Entry, commit: str, pieces: list[_Piece], outcome: Outcome
) -> Any | None:
    """The checks at `commit`, in the scratch checkout; None when the run was stopped (no
    verdict: the daemon is stopping)."""
    from shopfloor import pipeline

    scratch = _paths(shop.root).landing_dir / "tree"
    gitops.checkout_scratch(shop.root, scratch, commit)
    _record(shop.root, checking=[p.entry.id for p in pieces], checking_commit=commit)
    _fault_point("checks")
    result = pipeline.run_checks(shop, entry, scratch)
    outcome.check_runs += 1
    _record(shop.root, checking=None, checking_commit=None)
    if shop.stopping.is_set() or any(i.get("ending") == "stopped" for i in result.items):
        return None
    return result


# ---------------------------------------------------------------------------- the swap


def _advance(shop: Any, target: str, old: str, pieces: list[_Piece], outcome: Outcome) -> bool:
    """The one moment the target changes; False when someone moved it meanwhile."""
    from shopfloor import pipeline

    root = shop.root
    new = pieces[-1].commit
    tree = gitops.checked_out_at(root, target)
    if tree is not None and gitops.status_entries(tree):
        return False  # made dirty since the round began: the next round waits and says so
    inflight = {
        "target": target,
        "old": old,
        "new": new,
        "tree": str(tree) if tree is not None else None,
        "tasks": [{"id": p.entry.id, "name": p.entry.name, "commit": p.commit} for p in pieces],
    }
    for piece in pieces:
        pipeline.save_state(shop, piece.entry.id, land_commit=piece.commit)
    _record(root, inflight=inflight)
    _fault_point("before-swap")
    ids = ", ".join(p.entry.id for p in pieces)
    if not gitops.compare_and_swap(root, f"refs/heads/{target}", new, old, f"shopfloor land {ids}"):
        _record(root, inflight=None)
        shop.log("land.moved", target=target, expected=old[:10])
        return False
    _fault_point("after-swap")
    _finish(shop, inflight, outcome)
    return True


def _resume(shop: Any, target: str) -> None:
    """A run a crash cut: finished when its swap happened, else forgotten."""
    inflight = read_record(shop.root).get("inflight")
    if not isinstance(inflight, dict):
        return
    now = gitops.rev(shop.root, f"refs/heads/{inflight.get('target') or target}")
    new = str(inflight.get("new") or "")
    if now is not None and new and gitops.is_ancestor(shop.root, new, now):
        shop.log("land.resumed", target=inflight.get("target"), commit=new[:10])
        _finish(shop, inflight, Outcome())
    else:
        _record(shop.root, inflight=None)


def _finish(shop: Any, inflight: dict[str, Any], outcome: Outcome) -> None:
    """After the swap: the checked-out tree carried forward, the tasks to done/."""
    from shopfloor import pipeline

    root = shop.root
    old, new, target = str(inflight["old"]), str(inflight["new"]), str(inflight["target"])
    problem = None
    if inflight.get("tree"):
        problem = _carry_tree(Path(inflight["tree"]), target, old, new)
    _record(root, problem=problem, green=new)
    _fault_point("after-tree")
    ids = [str(t["id"]) for t in inflight["tasks"]]
    for item in inflight["tasks"]:
        entry = lifecycle.locate(shop.board, str(item["id"]), str(item["name"]))
        others = [i for i in ids if i != item["id"]]
        if entry is None or entry.lane is not Lane.REVIEW or entry.header.status != "landing":
            shop.log("land.unrecorded", task=item["id"], commit=str(item["commit"])[:10])
            continue
        line = f"landed on {target} as {str(item['commit'])[:10]} (checks passed there)"
        if others:
            line += f", together with {', '.join(others)}"
        payload = {"target": target, "commit": item["commit"], "with": others}
        with contextlib.suppress(lifecycle.TaskMoved, lifecycle.TransitionRefused):
            lifecycle.apply(shop, entry, Event.LANDED, line, Change(payload=payload))
            outcome.landed.append(entry.id)
        landed = str(item["commit"])
        pipeline.save_state(shop, entry.id, land_wait=None, land_rebases=None, landed=landed)
    _record(root, inflight=None)


def _carry_tree(tree: Path, target: str, old: str, new: str) -> str | None:
    """The checked-out target's files follow its ref; a problem sentence when they cannot."""
    if gitops.current_branch(tree) != target or not gitops.index_matches(tree, old):
        return None  # switched away, or carried already (a resumed run)
    error = gitops.carry_forward(tree, old, new)
    if error is None:
        return None
    return (
        f"{target} moved to {new[:10]} but {tree} could not follow ({error}); "
        f"bring it along with `git read-tree -m -u {old[:12]} {new[:12]}` there"
    )


def _mark_landed(
    shop: Any, entry: Entry, target: str, sha: str, why: str, outcome: Outcome
) -> None:
    from shopfloor import pipeline

    with contextlib.suppress(lifecycle.TaskMoved, lifecycle.TransitionRefused):
        line = f"landed: its change {why} ({target} at {sha[:10]})"
        payload = {"target": target, "commit": sha, "with": []}
        lifecycle.apply(shop, entry, Event.LANDED, line, Change(payload=payload))
        outcome.landed.append(entry.id)
    pipeline.save_state(shop, entry.id, land_wait=None, land_rebases=None)


# ---------------------------------------------------------------------------- misfits


def _refuse(shop: Any, entry: Entry, why: str, outcome: Outcome) -> None:
    from shopfloor import pipeline

    line = f"landing gave up: {why} — waiting for a human (`shopfloor retry` to try again)"
    with contextlib.suppress(lifecycle.TaskMoved, lifecycle.TransitionRefused):
        lifecycle.apply(shop, entry, Event.LAND_REFUSED, line, Change(payload={"reason": why}))
        outcome.refused.append(entry.id)
    pipeline.save_state(shop, entry.id, land_rebases=None, land_wait=None)


def _bounce(
    shop: Any,
    entry: Entry,
    target: str,
    tip: str,
    outcome: Outcome,
    files: tuple[str, ...] = (),
    checks: Any | None = None,
) -> None:
    """Back to the Coder with what went wrong and whom it met; failed/ past max_rebases."""
    from shopfloor import pipeline

    root = shop.root
    now = gitops.rev(root, f"refs/heads/{target}") or ""
    base = gitops.merge_base(root, tip, now) or now
    collided = gitops.task_ids_between(root, base, now, files) if base != now else []
    reason = (
        f"conflicts with {target} in {', '.join(files)}"
        if files
        else f"the checks fail once it is on {target}"
    )
    count = int(pipeline.load_state(shop, entry.id).get("land_rebases") or 0) + 1
    limit = shop.config.pipeline.max_rebases
    if count > limit:
        why = f"{reason}; bounced {count - 1} time(s), max_rebases = {limit}"
        _refuse(shop, entry, why, outcome)
        return
    notes = _rework_notes(shop.board, entry.id, target, base, now, reason, files, checks, collided)
    with contextlib.suppress(OSError, lifecycle.TaskMoved):  # earlier rounds are kept
        earlier = task.get_section(shop.board.read_text(entry), rework.SECTION)
        notes = rework.appended(earlier, notes, "the merge queue", task.utc_now())
    fields = {"max_attempts": entry.header.max_attempts + 1}  # a bounce uses no attempt
    payload = {"reason": reason, "files": list(files), "collided": collided}
    change = Change(fields=fields, sections={rework.SECTION: notes}, payload=payload)
    line = f"landing bounced ({count} of {limit}): {reason}; back to the Coder, branch kept"
    with contextlib.suppress(lifecycle.TaskMoved, lifecycle.TransitionRefused):
        lifecycle.apply(shop, entry, Event.LAND_BOUNCED, line, change)
        outcome.bounced.append(entry.id)
    pipeline.save_state(shop, entry.id, land_rebases=count, land_wait=None)


def _rework_notes(
    board: Board,
    task_id: str,
    target: str,
    base: str,
    now: str,
    reason: str,
    files: tuple[str, ...],
    checks: Any | None,
    collided: list[str],
) -> str:
    lines = [
        f"The merge queue could not land this task: {reason}.",
        "",
        f"Your branch shopfloor/{task_id} is kept as it was (it meets {target} at "
        f"{base[:10]}); {target} is now at {now[:10]}. Bring it up to date first — "
        f"`git merge {target}` in your worktree — then make both changes work together.",
    ]
    if files:
        lines += ["", "Conflicting files: " + ", ".join(f"`{f}`" for f in files)]
    if checks is not None:
        lines += ["", "The checks on the integrated tree:", "", checks.for_prompt()[-_TAIL:]]
    intents = [_intent(board, other) for other in collided if other != task_id]
    if intents:
        lines += ["", f"It collided with what landed on {target} since:", "", *intents]
    return "\n".join(lines)


def _intent(board: Board, task_id: str) -> str:
    """Another task's title and spec: what its change was for, so both can be kept."""
    try:
        entry = board.find(task_id)
        text = board.read_text(entry)
    except Exception:  # gone from the board: its id is what is known
        return f"- {task_id}"
    spec = (task.get_section(text, "Spec") or "").strip()
    if len(spec) > _SPEC_CHARS:
        spec = spec[:_SPEC_CHARS] + " …"
    body = "\n".join(f"  {line}" for line in spec.splitlines()) if spec else "  (no spec)"
    return f"- {task_id} — {entry.header.title}\n{body}"


# ---------------------------------------------------------------------------- the daemon


class Lander:
    """The daemon's queue thread: one landing run at a time, woken by the scheduler.

    While the queue waits (a dirty tree, an open hotfix) it looks again every `poll` seconds:
    a tree made clean is no event on the board."""

    def __init__(self, shop: Any, after: Callable[[], None], poll: float = 10.0) -> None:
        self.shop = shop
        self.after = after  # the board changed: rescan
        self.poll = poll
        self._guard = threading.Lock()
        self._again = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._guard:
            self._again.set()
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._main, name="landing", daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> None:
        self._again.set()  # out of a poll's wait: the daemon is stopping
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _main(self) -> None:
        while not self.shop.stopping.is_set():
            self._again.clear()
            waiting = True
            try:
                outcome = land(self.shop)
                waiting = outcome.waiting is not None
                if outcome.landed or outcome.bounced or outcome.refused:
                    self.after()
            except Exception as exc:  # a git fault, a full disk: said, tried again on a poll
                self.shop.log("land.error", error=repr(exc))
            with self._guard:
                if not waiting and not self._again.is_set():
                    self._thread = None
                    return
            self._again.wait(self.poll)  # a wake-up, or look again


__all__ = ["Lander", "Outcome", "land", "ready", "report", "target_branch"]
