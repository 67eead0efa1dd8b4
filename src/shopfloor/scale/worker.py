"""`shopfloor worker`: carries out the PM, Coder and QA runs a daemon sends through Temporal.

A worker lives in its own clone of the repository. For each run it fetches the remote, checks
the task's branch out in a worktree of its own, runs the agent under the same run contract as
the daemon (`shop.run_agent` on a worker-local Shop), and for a Coder commits and pushes the
work to `<remote>/shopfloor/<id>`. It never writes the daemon's board or journal: the reply
carries what the daemon needs to judge the run exactly as a local one.

A dead worker must not leave its agent running while Temporal gives the run to another: its
agents and checks get SIGKILL when it dies (runner.RunSpec.die_with_parent), and a worker
started again in the same clone kills what its journal says was still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from shopfloor import config as config_mod
from shopfloor import defaults, gitops, pipeline, runner, task
from shopfloor.board import Board, Entry
from shopfloor.config import Config, ScaleConfig
from shopfloor.errors import ConfigError, InfrastructureError, ShopfloorError
from shopfloor.journal import open_journal
from shopfloor.paths import StatePaths
from shopfloor.scale.contract import (
    ACTIVITY,
    REMOTE_ROLES,
    Progress,
    RunReply,
    RunRequest,
    agent_queue,
)
from shopfloor.scale.temporal import connect
from shopfloor.shop import AgentRun, Shop, log_line, read_tail, run_agent
from shopfloor.words import Lane

#: The most output one heartbeat carries, and the reply's log tail.
TAIL_BYTES = 16 * 1024
#: The non-retryable error type RunWorkflow's retry policy names: a request no worker can do.
REFUSED = "RunRefused"
PUSH_FAILED = "PushFailed"  # final as well (dispatch.FINAL_ERRORS)
#: Prompt values the worker fills in itself: a request cannot point them elsewhere.
_OWN_VALUES = frozenset({"task_id", "task_file", "role", "workdir", "result_file", "run_id"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0"}  # a push or fetch never waits for a password
FIRST = asyncio.FIRST_COMPLETED


def refuse(why: str) -> ApplicationError:
    """The run can never be done here (nor, by the same config, anywhere): not retried."""
    return ApplicationError(why, type=REFUSED, non_retryable=True)


# ---------------------------------------------------------------------------- the worker's shop


def worker_dir(root: Path) -> Path:
    """The worker's own state in its clone: worktrees, task copies, its lock."""
    return StatePaths(root).state_dir / "worker"


def worker_shop(root: Path, config: Config) -> Shop:
    """A Shop on the worker's clone: its own config, board paths and journal; its agents die
    with the worker process."""
    board = Board(root, header_cache=False)
    journal = open_journal(root, log=log_line)
    return Shop(root, config, board, journal, die_with_us=True)


def agents_served(config: Config, wanted: Sequence[str] | None = None) -> list[str]:
    """The agents this worker can run: defined in its shopfloor.toml and their binary found
    (the daemon's own check); `wanted` (the --agent flags) narrows the list."""
    from shopfloor import doctor

    unknown = sorted(set(wanted or ()) - set(config.agents))
    if unknown:
        known = ", ".join(sorted(config.agents)) or "none"
        raise ConfigError(f"--agent {', '.join(unknown)}: not in [agents] (defined: {known})")
    names = sorted(wanted) if wanted else sorted(config.agents)
    return [
        name
        for name in names
        if config.agents[name].backend == "simulator"
        or doctor.find_binary(config.agents[name], os.environ) is not None
    ]


def recover(shop: Shop) -> int:
    """At start: kill the agents a dead worker of this clone left (normally none: they die
    with it), close their run records, and remove its worktrees (uncommitted work is kept
    under refs/shopfloor/snapshots/). Returns how many processes were killed."""
    stale = shop.journal.runs(state="running")
    orphans = runner.find_orphans(
        shop.repo_id, [runner.StaleRun(r["id"], r["pid"], r["proc_started"]) for r in stale]
    )
    for proc in orphans:
        with contextlib.suppress(Exception):
            runner.kill_group(os.getpgid(proc.pid), grace=2.0)
    for run in stale:
        shop.journal.update_run(
            run["id"], state="interrupted", ended_at=task.utc_now(), outcome="stopped"
        )
    folder = worker_dir(shop.root)
    for path in sorted(folder.glob("shopfloor-*")):
        try:
            gitops.remove_worktree(shop.root, path)
        except gitops.GitError as exc:
            log_line("worker.tidy", path=path.name, error=str(exc))
    return len(orphans)


@contextlib.contextmanager
def clone_lock(root: Path) -> Iterator[None]:
    """One worker per clone: two would share a journal and kill each other's runs at start."""
    folder = worker_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(folder / "worker.lock", "a")  # noqa: SIM115 - held for the worker's life
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InfrastructureError(
                f"another `shopfloor worker` serves {root}; give each worker a clone of its own"
            ) from None
        yield
    finally:
        handle.close()


# ---------------------------------------------------------------------------- live output


@dataclasses.dataclass
class OutputTail:
    """A run's stdout.log then stderr.log, read as one append-only stream as they grow.

    `offset` counts the stream's bytes before `chunk`; `chunk` is its newest (at most
    TAIL_BYTES) bytes, cut at a character boundary. A reader that already has N bytes appends
    the chunk's bytes from N - offset on: heartbeats it missed lose nothing but what scrolled
    out of the tail. (Invalid UTF-8 in the output is replaced, so its byte count may differ.)"""

    run_dir: Path | None = None
    total: int = 0
    tail: bytearray = dataclasses.field(default_factory=bytearray)
    _read: dict[str, int] = dataclasses.field(default_factory=dict)

    def poll(self) -> None:
        if self.run_dir is None:
            return
        for name in ("stdout.log", "stderr.log"):
            done = self._read.get(name, 0)
            try:
                with open(self.run_dir / name, "rb") as fh:
                    fh.seek(done)
                    data = fh.read(4 * TAIL_BYTES)
            except FileNotFoundError:
                continue
            self._read[name] = done + len(data)
            self.total += len(data)
            self.tail += data
            del self.tail[: max(0, len(self.tail) - TAIL_BYTES)]

    def view(self) -> tuple[int, str]:
        start = 0
        while start < len(self.tail) and self.tail[start] & 0xC0 == 0x80:
            start += 1  # never start inside a multi-byte character
        chunk = bytes(self.tail[start:])
        return self.total - len(chunk), chunk.decode("utf-8", "replace")


class LiveRun:
    """What the heartbeat loop and the run's thread share: the run folder, the cancel."""

    def __init__(
        self, worker: str, lost: list[dict[str, Any]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.worker = worker
        self.lost = lost
        self.run_id = ""
        self.started: asyncio.Future[None] = loop.create_future()  # the run folder is known
        self._loop = loop
        self.cancelled = threading.Event()
        self._output = OutputTail()
        self._lock = threading.Lock()

    def opened(self, run_id: str, run_dir: Path) -> None:
        with self._lock:
            self.run_id = run_id
            self._output = OutputTail(run_dir)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the worker is exiting
            self._loop.call_soon_threadsafe(_settle, self.started, (None, None))

    def progress(self, ended: str = "") -> Progress:
        with self._lock:
            self._output.poll()
            offset, chunk = self._output.view()
            return Progress(self.worker, self.run_id, offset, chunk, list(self.lost), ended)


def lost_before(attempt: int, details: Sequence[Any]) -> list[dict[str, Any]]:
    """The runs of this request lost before this attempt, from the last attempt's heartbeat.

    An attempt that ended by an error of its own (`ended` set: a failed fetch, a refused
    push) was not lost with its worker; one whose heartbeats stopped was."""
    if attempt <= 1:
        return []
    last = details[0] if details else None
    if isinstance(last, Progress):
        last = dataclasses.asdict(last)
    if not isinstance(last, dict):  # it died before its first heartbeat reached the server
        return [{"worker": "", "run_id": "", "why": "heartbeat lapsed"}]
    lost = [item for item in last.get("lost") or [] if isinstance(item, dict)]
    ended = str(last.get("ended") or "")
    if ended.startswith("error"):
        return lost
    why = ended or "heartbeat lapsed"
    lost.append({"worker": last.get("worker", ""), "run_id": last.get("run_id", ""), "why": why})
    return lost


# ---------------------------------------------------------------------------- the activity


class WorkerRuns:
    """The activity, bound to one worker's shop and name.

    `remote` is this clone's name for the shared remote ([scale] remote, --remote): a remote's
    name belongs to the clone, so it wins over the daemon's name for it in the request."""

    def __init__(self, shop: Shop, name: str, remote: str | None = None) -> None:
        self.shop = shop
        self.name = name
        self.remote = remote

    @activity.defn(name=ACTIVITY)
    async def perform_run(self, request: RunRequest) -> RunReply:
        info = activity.info()
        loop = asyncio.get_running_loop()
        live = LiveRun(self.name, lost_before(info.attempt, info.heartbeat_details), loop)
        done: asyncio.Future[RunReply] = loop.create_future()
        # A thread of its own for each run, alive exactly as long as the run: the agent's
        # SIGKILL-on-parent-death is tied to the thread that started it.
        thread = threading.Thread(
            target=self._in_thread,
            args=(request, live, loop, done),
            name=f"run-{request.workflow_id}",
            daemon=True,
        )
        thread.start()
        every = max(0.2, min(2.0, request.heartbeat_timeout / 3))
        try:
            # The first heartbeat once the run folder is known (or after `every`): a worker
            # that dies in the first seconds is then named with its run.
            first: set[asyncio.Future[Any]] = {live.started, done}
            await asyncio.wait(first, timeout=every, return_when=FIRST)
            activity.heartbeat(live.progress())
            while not done.done():
                await asyncio.wait({done}, timeout=every)
                activity.heartbeat(live.progress())
        except asyncio.CancelledError:
            await self._cancel(request, live, done, every)
            raise
        try:
            reply = done.result()
        except Exception as exc:
            if not isinstance(exc, ApplicationError):
                # Temporal retries it; the next attempt must not count this one as lost.
                activity.heartbeat(live.progress(ended=f"error: {exc}"[:500]))
            raise
        reply.lost = live.lost
        return reply

    async def _cancel(
        self, request: RunRequest, live: LiveRun, done: asyncio.Future[Any], every: float
    ) -> None:
        """The workflow was cancelled, or this worker is stopping: kill the agent's process
        group and wait for the run's thread, so the cancel completes only when it is gone
        (heartbeating meanwhile: a stubborn agent's grace may outlast the heartbeat timeout)."""
        why = "worker stopping" if activity.is_worker_shutdown() else "cancelled by the daemon"
        live.cancelled.set()
        self.shop.stop_task(request.task_id, why)
        log_line("run.cancel", worker=self.name, workflow=request.workflow_id, reason=why)
        try:
            while not done.done():
                with contextlib.suppress(asyncio.CancelledError):  # a second cancel: still wait
                    await asyncio.wait({done}, timeout=every)
                with contextlib.suppress(Exception):
                    activity.heartbeat(live.progress())
        finally:
            self.shop.clear_stop(request.task_id)
        if why == "worker stopping":  # said to the next attempt, when the heartbeat gets out
            with contextlib.suppress(Exception):
                activity.heartbeat(live.progress(ended=why))

    def _in_thread(
        self,
        request: RunRequest,
        live: LiveRun,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[RunReply],
    ) -> None:
        if self.remote:
            request = dataclasses.replace(request, remote=self.remote)
        try:
            reply = perform(self.shop, self.name, request, live)
        except BaseException as exc:  # handed to the activity, which raises it
            outcome: tuple[RunReply | None, BaseException | None] = (None, exc)
        else:
            outcome = (reply, None)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the worker is exiting
            loop.call_soon_threadsafe(_settle, done, outcome)


def _settle(done: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if done.done():
        return
    reply, error = outcome
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(reply)


# ---------------------------------------------------------------------------- one run


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text)[:200] or "_"


def perform(shop: Shop, worker: str, request: RunRequest, live: LiveRun) -> RunReply:
    """One run, blocking: fetch, worktree, agent, (coder) commit, push and checks, clean up."""
    if request.role not in REMOTE_ROLES:
        raise refuse(f"role {request.role!r} never runs on a worker")
    if request.agent not in shop.config.agents:
        known = ", ".join(sorted(shop.config.agents)) or "none"
        raise refuse(f"agent {request.agent!r} is not in this worker's [agents] ({known})")
    entry = _task_copy(shop.root, request)
    gitops.git(shop.root, "fetch", "--quiet", "--prune", request.remote, env=_NO_PROMPT)
    workdir = worker_dir(shop.root) / safe_name(request.workflow_id)
    try:
        if request.role == "pm":
            _add_detached(shop.root, workdir, _pm_start(shop.root, request))
            run = _run(shop, request, entry, workdir, live)
            return _reply(worker, run, task_text=entry.path.read_text("utf-8"))
        branch = _branch(shop.root, request)
        gitops.add_worktree(shop.root, workdir, branch)
        if request.role == "qa":
            return _reply(worker, _run(shop, request, entry, workdir, live))
        return _coder(shop, worker, request, entry, workdir, live, branch)
    finally:
        gitops.remove_worktree(shop.root, workdir)


def _task_copy(root: Path, request: RunRequest) -> Entry:
    """The task file as the daemon read it, in a private copy the agent may edit (the PM
    writes its ## Spec there): `.shopfloor/worker/tasks/<lane>/<file>`."""
    parts = Path(request.task_file).parts
    lane_name = parts[-2] if len(parts) >= 2 else Lane.INBOX.value
    lane = Lane(lane_name) if lane_name in {lane.value for lane in Lane} else Lane.INBOX
    name = safe_name(parts[-1] if parts else f"{request.task_id}.md")
    try:
        header = task.parse(request.task_text)
    except ShopfloorError as exc:
        raise refuse(f"the task file cannot be read: {exc}") from exc
    path = worker_dir(root) / "tasks" / lane.value / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(request.task_text, "utf-8")
    return Entry(header, lane, path)


def _pm_start(root: Path, request: RunRequest) -> str:
    """Where the PM reads the code: the task's base when given, else the remote's default
    branch, else this clone's HEAD (the PM writes only the task file)."""
    for ref in (request.base, f"refs/remotes/{request.remote}/HEAD", "HEAD"):
        if ref and gitops.run_git(root, "rev-parse", "--verify", "--quiet", ref).returncode == 0:
            return ref
    raise refuse("the worker's clone has no commits")


def _add_detached(root: Path, path: Path, commit: str) -> None:
    gitops.remove_worktree(root, path)  # a leftover of a killed worker
    with gitops.worktree_lock(root):
        gitops.git(root, "worktree", "add", "--detach", "--force", "--", str(path), commit)


def _branch(root: Path, request: RunRequest) -> str:
    """The task's branch, set to the remote's copy (the daemon pushes it before coder and QA
    runs); local commits of an earlier attempt that never got out are not the truth."""
    branch = request.branch or f"shopfloor/{request.task_id}"
    remote_ref = f"refs/remotes/{request.remote}/{branch}"
    tip = gitops.run_git(root, "rev-parse", "--verify", "--quiet", remote_ref).stdout.strip()
    if not tip and request.base:
        tip = gitops.run_git(root, "rev-parse", "--verify", "--quiet", request.base).stdout.strip()
    if not tip:
        raise refuse(f"{request.remote}/{branch} is not on the remote and no base was given")
    gitops.git(root, "update-ref", f"refs/heads/{branch}", tip)
    return branch


def _run(shop: Shop, request: RunRequest, entry: Entry, workdir: Path, live: LiveRun) -> AgentRun:
    values = {k: v for k, v in request.values.items() if k not in _OWN_VALUES}
    return run_agent(
        shop,
        request.role,
        entry,
        workdir,
        values,
        attempt=request.attempt,
        agent=request.agent,
        budget_usd=request.budget_usd,
        on_open=live.opened,
    )


def _coder(
    shop: Shop,
    worker: str,
    request: RunRequest,
    entry: Entry,
    workdir: Path,
    live: LiveRun,
    branch: str,
) -> RunReply:
    """The attempt's commit already on the remote (a worker died after pushing): not run
    again. Else the agent, the commit with the daemon's trailers, the push, the checks."""
    since = request.since or None
    sha = gitops.attempt_commit(shop.root, branch, entry.id, request.attempt, since=since)
    if sha is not None:
        reply = RunReply(worker, "", "ok", {}, 0.0, commit=sha, already_committed=True)
    else:
        run = _run(shop, request, entry, workdir, live)
        reply = _reply(worker, run)
        if not run.ok:
            pipeline._keep_unfinished_work(shop, entry.id, workdir, run.run_id)
            return reply
        trailers = {
            "Shopfloor-Task": entry.id,
            "Shopfloor-Attempt": str(request.attempt),
            "Shopfloor-Run": run.run_id,
        }
        message = f"{entry.id}: {entry.header.title} (attempt {request.attempt})"
        sha = gitops.commit_all(workdir, message, trailers=trailers)
        if sha is None:
            return reply  # no commit: the daemon says the coder changed nothing
        pushed = _push(shop, workdir, request, branch, sha)
        reply.commit = pushed
        reply.already_committed = pushed != sha
    stat = gitops.diff(workdir, request.base or sha, stat=True).strip().splitlines()
    reply.diffstat = stat[-1].strip() if stat else ""
    if request.run_checks and not live.cancelled.is_set():
        reply.checks = pipeline.run_checks(shop, entry, workdir).items
    return reply


#: Tries of a push before it counts as rejected for good, and the pause between them.
PUSH_TRIES, PUSH_PAUSE = 3, 2.0


def _push(shop: Shop, workdir: Path, request: RunRequest, branch: str, sha: str) -> str:
    """Push the attempt's commit; the commit the remote has for this attempt. Refused because
    another worker pushed this attempt first (it ran while this one was thought lost): that
    commit stands and this one is not pushed. A push that keeps failing (rejected, no
    permission) is final: retrying the activity would run the agent again and again for
    nothing. The commit is kept under a ref in this clone; the daemon parks the task with
    git's reason."""
    target = f"HEAD:refs/heads/{branch}"
    for attempt in range(1, PUSH_TRIES + 1):
        proc = gitops.run_git(workdir, "push", "--quiet", request.remote, target, env=_NO_PROMPT)
        if proc.returncode == 0:
            return sha
        first = _pushed_by_another(shop, request, branch)
        if first is not None:
            return first
        if attempt < PUSH_TRIES:
            time.sleep(PUSH_PAUSE)
    ref = f"refs/shopfloor/snapshots/{request.task_id}/unpushed-a{request.attempt}"
    gitops.git(shop.root, "update-ref", ref, sha, check=False)
    detail = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    why = " / ".join(detail)[:400] or f"exit {proc.returncode}"  # the remote's own words too
    raise ApplicationError(
        f"push of {branch} to {request.remote} failed: {why} (the commit is kept as {ref} "
        "in the worker's clone)",
        type=PUSH_FAILED,
        non_retryable=True,
    )


def _pushed_by_another(shop: Shop, request: RunRequest, branch: str) -> str | None:
    """This attempt's commit on the remote, pushed by another worker; None if there is none."""
    ref = f"refs/remotes/{request.remote}/{branch}"
    spec = f"+refs/heads/{branch}:{ref}"
    fetched = gitops.run_git(shop.root, "fetch", "--quiet", request.remote, spec, env=_NO_PROMPT)
    if fetched.returncode != 0:
        return None
    since = request.since or None
    return gitops.attempt_commit(shop.root, ref, request.task_id, request.attempt, since=since)


def _reply(worker: str, run: AgentRun, task_text: str | None = None) -> RunReply:
    out, err = run.run_dir / "stdout.log", run.run_dir / "stderr.log"
    return RunReply(
        worker=worker,
        run_id=run.run_id,
        outcome=run.outcome.value,
        result=run.result,
        duration=run.duration,
        exit_code=run.exit_code,
        error=run.error,
        final_text=run.parsed.final_text,
        tokens_in=run.parsed.tokens_in,
        tokens_out=run.parsed.tokens_out,
        cost_usd=run.parsed.cost_usd,
        reset_at=run.parsed.reset_at,
        log_tail=(read_tail(out, TAIL_BYTES) + read_tail(err, TAIL_BYTES))[-TAIL_BYTES:],
        task_text=task_text,
    )


# ---------------------------------------------------------------------------- serving


def serve(root: Path, scale: ScaleConfig, name: str, agents: Sequence[str] | None = None) -> int:
    """Poll the agent queues of every agent this clone has (and the workflow queue) until
    SIGTERM or SIGINT; then stop, killing the agents of runs in flight (Temporal gives those
    runs to another worker). Exit code: 0 after a stop, 1 when a Temporal worker failed."""
    config = config_mod.load(root / defaults.CONFIG_FILE)
    served = agents_served(config, agents)
    for missing in sorted(set(agents or config.agents) - set(served)):
        log_line("agent.missing", agent=missing, hint="not served: binary not found")
    if not served:
        raise ConfigError(
            "this worker has no agent to serve: none in [agents] has its binary on PATH "
            "(see `shopfloor doctor`)"
        )
    with clone_lock(root):
        shop = worker_shop(root, config)
        killed = recover(shop)
        if killed:
            log_line("worker.orphans_killed", count=killed)
        try:
            return asyncio.run(_serve(shop, scale, name, served))
        finally:
            shop.journal.close()


async def _connect(scale: ScaleConfig, name: str) -> Client:
    try:
        return await connect(scale, identity=name)
    except Exception as exc:  # the SDK's RuntimeError carries the transport's reason
        raise InfrastructureError(
            f"cannot reach the Temporal server at {scale.address} (namespace "
            f"{scale.namespace}): {exc}"
        ) from exc


async def _serve(shop: Shop, scale: ScaleConfig, name: str, served: list[str]) -> int:
    from shopfloor.scale.workflow import RunWorkflow

    client = await _connect(scale, name)
    runs = WorkerRuns(shop, name, scale.remote)
    pipe = shop.config.pipeline.concurrency
    at_once = pipe.pm + pipe.coder + pipe.qa  # per agent, as a daemon would run them
    workers = [Worker(client, task_queue=scale.task_queue, workflows=[RunWorkflow], identity=name)]
    for agent in served:
        workers.append(
            Worker(
                client,
                task_queue=agent_queue(scale.task_queue, agent),
                activities=[runs.perform_run],
                identity=name,
                max_concurrent_activities=at_once,
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log_line(
        "worker.start",
        name=name,
        root=shop.root,
        address=scale.address,
        queue=scale.task_queue,
        agents=",".join(served),
    )
    running = [asyncio.create_task(w.run()) for w in workers]
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([*running, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    failed = [t.exception() for t in running if t.done() and not t.cancelled() and t.exception()]
    for error in failed:
        log_line("worker.failed", name=name, error=repr(error))
    log_line("worker.stop", name=name)
    return 1 if failed else 0
