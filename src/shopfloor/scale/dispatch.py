"""The daemon's side of `[scale] engine = "temporal"`: start (or rejoin) a run's workflow, follow
it, and hand the pipeline a reply it judges exactly as a local run.

The daemon stays the only writer of task files and journal: workers get plain requests and
send plain replies (see `contract`). Temporal's client is asyncio; the daemon is threads, so
one event loop runs in a thread of its own and job threads wait on it.

Exactly once: the workflow id is derived from (repository, task, role, attempt, round), and a
start that finds the id running or closed joins it instead of starting another. `round`
counts the closed workflows of one (task, role, attempt) whose replies were used, so a run
that used no attempt (stopped, rate-limited) can run again under a new id.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shopfloor import gitops
from shopfloor.config import ScaleConfig
from shopfloor.errors import InfrastructureError, ShopfloorError
from shopfloor.scale.contract import WORKFLOW, Progress, RunReply, RunRequest

T = TypeVar("T")

#: Seconds between looks at a running workflow's heartbeat (its live output).
FOLLOW_EVERY = 1.0
#: How long a connect may take before the engine counts as down.
CONNECT_TIMEOUT = 5.0
#: While the engine is down, it is tried again this often (and a waiting run's result too).
RETRY_EVERY = 2.0


class EngineDown(InfrastructureError):
    """Temporal cannot be reached: the task waits (it never runs here by surprise)."""


class RunCancelled(Exception):
    """The workflow was cancelled (`shopfloor cancel`) or ended without a reply."""


class RunFailed(ShopfloorError):
    """A worker refused the run for good (it can never do it, or its push was rejected): the
    task is parked for a human with the reason, not run again and again."""


@dataclass
class RemoteStop:
    """What `Shop.track` holds for a remote run: a cancel ends the workflow (the worker kills
    the agent's process group); a daemon stop only lets go of it (a restart rejoins it)."""

    engine: Engine
    workflow_id: str
    stopping: threading.Event
    detached: threading.Event = field(default_factory=threading.Event)
    cancelled: str | None = None

    def stop(self, reason: str) -> None:
        if self.stopping.is_set():
            self.detached.set()
            return
        self.cancelled = reason
        self.engine.cancel(self.workflow_id)

    def kill_now(self) -> None:
        self.detached.set()


EngineListener = Callable[[str, dict[str, Any]], None]


class Engine:
    """One connection to Temporal for the whole daemon, with its up/down state."""

    def __init__(
        self,
        scale: ScaleConfig,
        on_change: EngineListener,
        identity: str | None = None,
    ) -> None:
        self.scale = scale
        self._on_change = on_change  # ("up"|"down", details): the daemon notifies and wakes
        self._identity = identity
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="engine", daemon=True)
        self._thread.start()
        self._client: Any = None
        self._lock = threading.Lock()
        self.state = "connecting"
        self.error = ""
        self.since = time.time()
        self._probing = False
        self._last_probe = 0.0

    # ------------------------------------------------------------------ loop plumbing

    def _submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def _call(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        future = self._submit(work)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2.0)

    # ------------------------------------------------------------------ state

    def _mark(self, state: str, error: str = "") -> None:
        """A change of state goes to `on_change` once: ("down", address+error) or ("up",
        address, and `down_for` when it was down rather than connecting for the first time)."""
        with self._lock:
            if state == self.state:
                self.error = error
                return
            before, down_since = self.state, self.since
            self.state, self.error, self.since = state, error, time.time()
        details: dict[str, Any] = {"address": self.scale.address}
        if state == "down":
            details["error"] = error
        elif before == "down":
            details["down_for"] = round(self.since - down_since, 1)
        self._on_change(state, details)

    def ready(self) -> bool:
        """Up: runs may start. Down or connecting: a probe goes out (at most every
        RETRY_EVERY seconds, never blocking the caller); `on_change` says when it is back."""
        if self.state == "up":
            return True
        now = time.monotonic()
        with self._lock:
            if self._probing or now - self._last_probe < RETRY_EVERY:
                return False
            self._probing, self._last_probe = True, now
        self._submit(self._probe())
        return False

    async def _probe(self) -> None:
        try:
            await self._connected()
        except EngineDown:
            pass
        finally:
            self._probing = False

    async def _connected(self) -> Any:
        """The client, connected now if need be; EngineDown (and state down) when it cannot."""
        if self._client is not None:
            try:
                await asyncio.wait_for(
                    self._client.workflow_service.get_system_info(
                        _system_info_request(), timeout=_td(CONNECT_TIMEOUT)
                    ),
                    CONNECT_TIMEOUT,
                )
            except Exception as exc:
                self._mark("down", _reason(exc))
                raise EngineDown(f"Temporal at {self.scale.address}: {_reason(exc)}") from exc
            self._mark("up")
            return self._client
        from shopfloor.scale.temporal import connect

        try:
            self._client = await asyncio.wait_for(
                connect(self.scale, self._identity), CONNECT_TIMEOUT
            )
        except Exception as exc:
            self._mark("down", _reason(exc))
            raise EngineDown(f"Temporal at {self.scale.address}: {_reason(exc)}") from exc
        self._mark("up")
        return self._client

    # ------------------------------------------------------------------ runs

    def run(
        self,
        request: RunRequest,
        on_progress: Callable[[Progress], None],
        stop: RemoteStop,
    ) -> RunReply:
        """Start the run's workflow or join it, and wait for its reply.

        EngineDown when the start cannot reach Temporal (nothing started). Once started, a
        lost connection is waited out (the worker goes on). RunCancelled when the workflow
        was cancelled or failed; None-free: a detached stop raises `Detached`."""
        try:
            self._call(self._start(request), CONNECT_TIMEOUT * 3)
        except FutureTimeout:
            raise EngineDown(f"Temporal at {self.scale.address} did not answer a start") from None
        while True:
            if stop.detached.is_set():
                raise Detached(request.workflow_id)
            try:
                # No time limit: the wait itself returns within FOLLOW_EVERY of a detach.
                reply = self._submit(
                    self._wait(request.workflow_id, on_progress, stop.detached)
                ).result()
            except EngineDown:
                stop.detached.wait(RETRY_EVERY)
                continue
            if reply is not None:
                return reply

    async def _start(self, request: RunRequest) -> None:
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        client = await self._connected()
        try:
            await client.start_workflow(
                WORKFLOW,
                request,
                id=request.workflow_id,
                task_queue=self.scale.task_queue,
                # Running: join it. Closed (any way): never run it again under this id.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # closed already: its result is read below
        except Exception as exc:
            if _is_connection_error(exc):
                self._mark("down", _reason(exc))
                raise EngineDown(f"Temporal at {self.scale.address}: {_reason(exc)}") from exc
            raise

    async def _wait(
        self, workflow_id: str, on_progress: Callable[[Progress], None], detached: threading.Event
    ) -> RunReply | None:
        """The reply; None when the caller let go. Follows the heartbeats meanwhile."""
        from temporalio.client import WorkflowFailureError

        client = await self._connected()
        handle = client.get_workflow_handle(workflow_id, result_type=RunReply)
        result = asyncio.ensure_future(handle.result())
        try:
            while not detached.is_set():
                done, _ = await asyncio.wait({result}, timeout=FOLLOW_EVERY)
                if done:
                    reply: RunReply = result.result()
                    return reply
                await self._follow(handle, client.data_converter, on_progress)
            return None
        except WorkflowFailureError as exc:
            final = _final_error(exc)
            if final is not None:
                raise RunFailed(final) from exc
            raise RunCancelled(_reason(exc.cause or exc)) from exc
        except Exception as exc:
            if _is_connection_error(exc):
                self._mark("down", _reason(exc))
                raise EngineDown(_reason(exc)) from exc
            raise
        finally:
            result.cancel()

    async def _follow(
        self, handle: Any, converter: Any, on_progress: Callable[[Progress], None]
    ) -> None:
        """The running activity's newest heartbeat, as Progress (best effort)."""
        try:
            described = await handle.describe()
        except Exception as exc:
            if _is_connection_error(exc):
                raise
            return
        for pending in described.raw_description.pending_activities:
            details = pending.heartbeat_details.payloads
            if not details:
                continue
            values = await converter.decode(details, [Progress])
            if values and isinstance(values[0], Progress):
                on_progress(values[0])

    def cancel(self, workflow_id: str) -> None:
        """Ask Temporal to cancel the workflow (its worker then kills the agent's process
        group). Never blocks the caller; while the engine is down it is asked again."""
        self._submit(self._cancel(workflow_id))

    async def _cancel(self, workflow_id: str) -> None:
        while True:
            try:
                client = await self._connected()
                await client.get_workflow_handle(workflow_id).cancel()
                return
            except EngineDown:
                await asyncio.sleep(RETRY_EVERY)
            except Exception as exc:
                if not _is_connection_error(exc):
                    return  # closed already: nothing left to stop
                await asyncio.sleep(RETRY_EVERY)


class Detached(Exception):
    """The daemon let go of a remote run (it is stopping); the workflow goes on."""


#: ApplicationError types a worker raises for a run that must not be retried.
FINAL_ERRORS = ("RunRefused", "PushFailed")


def _final_error(exc: BaseException) -> str | None:
    """The message of a worker's final error in the failure's causes, if there is one."""
    from temporalio.exceptions import ApplicationError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ApplicationError) and seen.type in FINAL_ERRORS:
            return seen.message
        seen = seen.__cause__ or getattr(seen, "cause", None)
    return None


def _td(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _system_info_request() -> Any:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    return GetSystemInfoRequest()


def _is_connection_error(exc: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, RPCError):
        return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(exc, (ConnectionError, asyncio.TimeoutError, RuntimeError))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


# ---------------------------------------------------------------------------- branches


def tracking_ref(remote: str, branch: str) -> str:
    return f"refs/remotes/{remote}/{branch}"


def fetch_branch(root: Path, remote: str, branch: str) -> str | None:
    """The remote's `branch` into its tracking ref; the local branch fast-forwards to it when
    it is ahead (a worker pushed). The commit it names on the remote, None when it has none."""
    ref = tracking_ref(remote, branch)
    quiet = {"GIT_TERMINAL_PROMPT": "0"}
    proc = gitops.run_git(
        root, "fetch", "--quiet", "--", remote, f"+refs/heads/{branch}:{ref}", env=quiet
    )
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr:
            return None
        raise gitops.GitError(f"git fetch {remote} {branch} failed: {proc.stderr.strip()}")
    there = gitops.rev(root, ref)
    here = gitops.rev(root, f"refs/heads/{branch}")
    if there and (here is None or gitops.is_ancestor(root, here, there)):
        gitops.git(root, "update-ref", f"refs/heads/{branch}", there)
    return there


def publish_branch(root: Path, remote: str, branch: str, base: str) -> str:
    """Before a coder or QA run: the task's branch on the remote is the daemon's (made at
    `base` on first use), so a worker always starts from what the daemon has. Returns its tip."""
    fetch_branch(root, remote, branch)
    local = f"refs/heads/{branch}"
    if gitops.rev(root, local) is None:
        gitops.git(root, "update-ref", local, base)
    tip = gitops.rev(root, local) or base
    quiet = {"GIT_TERMINAL_PROMPT": "0"}
    # Forced: the daemon is the authority (the merge queue may have rebased its branch).
    gitops.git(root, "push", "--quiet", "--force", "--", remote, f"{local}:{local}", env=quiet)
    return tip


# ---------------------------------------------------------------------------- output


class LogMirror:
    """The daemon's copy of a remote run's output (stdout.log in its run folder), fed by
    heartbeats: `shopfloor logs -f` follows it as it follows a local run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0  # bytes of the worker's output accounted for
        self.worker = ""
        self.run_id = ""  # the worker's run the output is from

    def _write(self, data: bytes) -> None:
        with open(self.path, "ab") as fh:
            fh.write(data)

    def add(self, progress: Progress) -> None:
        if progress.run_id != self.run_id:  # a run retried elsewhere starts at offset 0
            if self.run_id:
                self._write(f"\n[… run {progress.run_id} on {progress.worker} …]\n".encode())
            self.run_id, self.seen = progress.run_id, 0
        data = progress.chunk.encode("utf-8", "replace")
        end = progress.offset + len(data)
        if end <= self.seen:
            return
        with open(self.path, "ab") as fh:
            if progress.offset > self.seen:
                gap = progress.offset - self.seen
                fh.write(f"\n[… {gap} bytes of output not mirrored …]\n".encode())
                fh.write(data)
            else:
                fh.write(data[self.seen - progress.offset :])
        self.seen = end

    def finish(self, tail: str) -> None:
        """The reply's tail, when no heartbeat brought any output."""
        if self.seen == 0 and tail:
            with open(self.path, "ab") as fh:
                fh.write(tail.encode("utf-8", "replace"))
