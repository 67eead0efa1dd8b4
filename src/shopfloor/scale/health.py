"""`shopfloor doctor` with `[scale] engine = "temporal"`: can runs reach the workers?

Four questions, each answered with what fixes it: is the Temporal SDK installed; does the
engine answer (a connect with a short timeout); does the git remote workers fetch from and
push to exist and answer (`git ls-remote`, never prompting for a password); and which workers
poll, for which agents (the pollers of `<task_queue>` and of each agent's queue). A role whose
agent no worker has is a warning: its runs would wait until a worker with that agent starts.

A remote's URL may carry a token (`https://user:token@host/...`): it is never printed whole.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.config import Config, ScaleConfig
from shopfloor.scale.contract import REMOTE_ROLES, agent_queue
from shopfloor.scale.queues import scoped

if TYPE_CHECKING:
    from temporalio.client import Client

#: Seconds for the engine to answer a connect, and each queue description.
CONNECT_TIMEOUT = 5.0
#: Seconds for `git ls-remote` (a remote across the world, over ssh, answers well within it).
REMOTE_TIMEOUT = 20.0
INSTALL_HINT = "pip install 'shopfloor[temporal]'"
_USERINFO = re.compile(r"(://)[^/@\s]*@")


@dataclass
class QueueCheck:
    """Who polls one task queue: the workflow queue (agent None) or an agent's queue."""

    task_queue: str
    agent: str | None
    pollers: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # remote roles this agent plays


@dataclass
class EngineCheck:
    """What doctor found for `[scale]` (engine = "temporal")."""

    engine: str
    address: str
    namespace: str
    task_queue: str
    remote: str
    connected: bool = False
    remote_url: str | None = None  # without any user:password@ part
    remote_reachable: bool = False
    queues: list[QueueCheck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_engine(config: Config, root: Path) -> EngineCheck | None:
    """None in the embedded mode (nothing to check); else every scale-out check."""
    if config.scale.engine != "temporal":
        return None
    config = config.model_copy(update={"scale": scoped(root, config.scale)})
    scale = config.scale
    check = EngineCheck("temporal", scale.address, scale.namespace, scale.task_queue, scale.remote)
    check_remote(check, root)
    try:
        import temporalio  # noqa: F401  (the package only: no runtime starts on import)
    except ImportError:
        check.errors.append(
            f'[scale] engine = "temporal" needs the Temporal SDK, which is not installed: '
            f"{INSTALL_HINT}"
        )
        return check
    check.queues = _queues(config)
    probe_in_child(check, scale)
    if check.connected:
        _judge_queues(check)
    return check


# ---------------------------------------------------------------------------- the remote


def redact(text: str) -> str:
    """A URL (or a message quoting one) without its user:password@ part."""
    return _USERINFO.sub(r"\1…@", text)


def _git(root: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # No prompt for a username or password: doctor must never hang on a terminal question.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
    return subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def check_remote(check: EngineCheck, root: Path) -> None:
    """The remote exists in this clone and answers `git ls-remote --heads`."""
    try:
        found = _git(root, "remote", "get-url", "--", check.remote, timeout=REMOTE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        check.errors.append(f"git could not be run: {exc}")
        return
    if found.returncode != 0:
        check.errors.append(
            f"[scale] remote = {check.remote!r} is not a git remote of this repository; add it "
            f"(`git remote add {check.remote} <url>`) or name an existing one in [scale] remote"
        )
        return
    check.remote_url = redact(found.stdout.strip())
    try:
        listed = _git(root, "ls-remote", "--heads", "--", check.remote, timeout=REMOTE_TIMEOUT)
    except subprocess.TimeoutExpired:
        check.errors.append(
            f"the remote {check.remote!r} ({check.remote_url}) did not answer within "
            f"{REMOTE_TIMEOUT:.0f}s: check the network and the URL"
        )
        return
    if listed.returncode != 0:
        why = " ".join(redact(listed.stderr).split())[-300:] or f"exit {listed.returncode}"
        check.errors.append(
            f"the remote {check.remote!r} ({check.remote_url}) cannot be read: {why}; workers "
            "fetch from it and push to it, so it must answer without a password prompt "
            "(an ssh key or a credential helper)"
        )
        return
    check.remote_reachable = True


# ---------------------------------------------------------------------------- Temporal


#: Seconds the probe process may take in all (a connect, then the queues side by side).
PROBE_TIMEOUT = 3 * CONNECT_TIMEOUT + 10


def probe_in_child(check: EngineCheck, scale: ScaleConfig) -> None:
    """Ask Temporal from a child process (`python -m shopfloor.scale.health`).

    The SDK's Rust threads can outlive a short-lived client and abort the interpreter as it
    exits (temporalio/sdk-python#300: "PyGILState_Release … finalizing"). The child answers
    on stdout and leaves with os._exit, so `doctor` itself never loads that runtime."""
    import json
    import sys

    request = {"scale": scale.model_dump(mode="json"), "queues": [asdict(q) for q in check.queues]}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "shopfloor.scale.health"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        check.errors.append(_unreachable(scale, TimeoutError()))
        return
    except OSError as exc:
        check.errors.append(f"the Temporal check could not run: {exc}")
        return
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        tail = " ".join(proc.stderr.split())[-300:]
        check.errors.append(f"the Temporal check failed (exit {proc.returncode}): {tail}")
        return
    check.connected = bool(answer["connected"])
    check.errors.extend(answer["errors"])
    check.warnings.extend(answer["warnings"])
    for queue, pollers in zip(check.queues, answer["pollers"], strict=True):
        queue.pollers = list(pollers)


async def _probe(check: EngineCheck, scale: ScaleConfig) -> None:
    """Connect, then ask who polls each queue (in the child)."""
    from shopfloor.scale.temporal import connect

    try:
        client = await asyncio.wait_for(connect(scale, "shopfloor-doctor"), CONNECT_TIMEOUT)
    except Exception as exc:  # refused, TLS, auth, timeout: all say the same to a person
        check.errors.append(_unreachable(scale, exc))
        return
    check.connected = True
    results = await asyncio.gather(
        *(_pollers(client, scale, q) for q in check.queues), return_exceptions=True
    )
    for queue, result in zip(check.queues, results, strict=True):
        if isinstance(result, BaseException):
            check.warnings.append(f"could not describe the queue {queue.task_queue}: {result}")
        else:
            queue.pollers = result


def _probe_main() -> None:
    """`python -m shopfloor.scale.health`: the request on stdin, the answer on stdout."""
    import json
    import sys

    request = json.load(sys.stdin)
    scale = ScaleConfig.model_validate(request["scale"])
    check = EngineCheck("temporal", scale.address, scale.namespace, scale.task_queue, "")
    check.queues = [QueueCheck(**q) for q in request["queues"]]
    asyncio.run(_probe(check, scale))
    answer = {
        "connected": check.connected,
        "errors": check.errors,
        "warnings": check.warnings,
        "pollers": [q.pollers for q in check.queues],
    }
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    os._exit(0)  # see probe_in_child: no interpreter teardown beside the SDK's threads


def _unreachable(scale: ScaleConfig, exc: BaseException) -> str:
    why = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        why = f"no answer within {CONNECT_TIMEOUT:.0f}s"
    hint = (
        "start it (`temporal server start-dev --headless --ip 127.0.0.1 --db-filename "
        "temporal.db`) or fix [scale] address"
    )
    if scale.tls or scale.api_key_env:
        hint = "check [scale] address, namespace, tls and the API key in $" + (
            scale.api_key_env or "(api_key_env)"
        )
    return (
        f"Temporal at {scale.address} (namespace {scale.namespace}) is unreachable: "
        f"{' '.join(why.split())[:300]}; {hint}. Meanwhile tasks wait; hotfixes still run here"
    )


def _queues(config: Config) -> list[QueueCheck]:
    """The workflow queue, then each configured agent's queue with the remote roles it plays."""
    queues = [QueueCheck(config.scale.task_queue, None)]
    for agent in sorted(config.agents):
        roles = [r for r in REMOTE_ROLES if getattr(config.roles, r, None) == agent]
        queues.append(QueueCheck(agent_queue(config.scale.task_queue, agent), agent, roles=roles))
    return queues


async def _pollers(client: Client, scale: ScaleConfig, queue: QueueCheck) -> list[str]:
    """The identities polling `queue` lately (Temporal keeps pollers seen in the last minutes)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    kind = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if queue.agent is None
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    request = DescribeTaskQueueRequest(
        namespace=scale.namespace,
        task_queue=TaskQueue(name=queue.task_queue),
        task_queue_type=kind,
    )
    answer = await asyncio.wait_for(
        client.workflow_service.describe_task_queue(request), CONNECT_TIMEOUT
    )
    return sorted({p.identity for p in answer.pollers})


def _judge_queues(check: EngineCheck) -> None:
    for queue in check.queues:
        if queue.agent is None:
            if not queue.pollers:
                check.warnings.append(
                    f"no worker polls {queue.task_queue}: runs wait until one starts "
                    "(`shopfloor worker`, docs/scale-out.md)"
                )
        elif queue.roles and not queue.pollers:
            check.warnings.append(
                f"no worker has the agent {queue.agent!r} ({', '.join(queue.roles)}): its runs "
                f"wait until a `shopfloor worker` with it polls {queue.task_queue}"
            )


if __name__ == "__main__":
    _probe_main()
