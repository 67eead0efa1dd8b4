"""The shop: what every job of a daemon shares, and how one agent run is carried out.

`run_agent` is the run contract in code: render the bootloader to a prompt file, build the
command through the agent's backend, start it under the runner with the SHOPFLOOR_*
environment (the daemon's secrets removed), then read its result file — or the fenced JSON
in its final message — and judge the outcome. Exit code 0 without a valid result fails.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from shopfloor import _fs, agents, budget, roles, runlogs
from shopfloor.agents import Backend, Outcome, Parsed, RunContext
from shopfloor.board import Board, Entry
from shopfloor.config import AgentConfig, Config
from shopfloor.display import needs_quoting
from shopfloor.errors import ConfigError, InfrastructureError
from shopfloor.journal import Journal
from shopfloor.paths import PRIVATE_FILE_MODE, StatePaths, make_private_dir, repo_identity
from shopfloor.runner import REPO_ID_VAR, Runner, RunResult, RunSpec
from shopfloor.task import utc_now

#: Variables never passed to an agent, whatever the config says (besides config's own).
ALWAYS_SECRET = frozenset({"SHOPFLOOR_TELEGRAM_TOKEN", "SHOPFLOOR_WEB_TOKEN"})
_TAIL_BYTES = 256 * 1024
_FENCED_JSON = re.compile(r"```json\s*\n(\{.*?\})\s*\n```", re.DOTALL)


def scratch_runs_dir(root: Path) -> Path:
    """Where hotfix runs go when .shopfloor/ cannot be written: private, per repository."""
    return Path(tempfile.gettempdir()) / f"shopfloor-{repo_identity(root)}" / "runs"


def log_line(event: str, **fields: Any) -> None:
    """One structured (logfmt) line per daemon event, on stderr."""
    parts = [f"ts={utc_now()}", f"event={event}"]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        # Quoted (JSON escapes every control character) when it has a space, an `=`, a
        # quote or a control: a title in the log can never drive the terminal that tails it.
        quote = " " in text or "=" in text or '"' in text or needs_quoting(text)
        parts.append(f"{key}={json.dumps(text) if quote else text}")
    sys.stderr.write(" ".join(parts) + "\n")
    sys.stderr.flush()


def agent_environment(config: Config, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What any agent process gets (a run, or doctor's `--version`): this process's
    environment without the daemon's secrets, plus `extra`."""
    secrets = set(ALWAYS_SECRET) | config.secret_env_names()
    env = {k: v for k, v in os.environ.items() if k not in secrets}
    env.update(extra or {})
    for name in secrets:  # an agent's own env table cannot smuggle a secret back in
        env.pop(name, None)
    return env


@dataclass
class LiveTreeWriters:
    """Which hotfix agents worked in the live tree during a span of time.

    The PM runs in the live tree too, and the daemon checks that tree did not change while it
    ran (`treewatch`). A hotfix working there at the same time changes it by design: such a
    change is said to be possibly the hotfix's, not raised as the PM's."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _working: dict[str, int] = field(default_factory=dict)  # task id -> its runs at work
    _started: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=1000))
    _count: int = 0

    @contextmanager
    def working(self, task_id: str) -> Iterator[None]:
        with self._lock:
            self._count += 1
            self._started.append((self._count, task_id))
            self._working[task_id] = self._working.get(task_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._working.pop(task_id, 1) - 1
                if left:
                    self._working[task_id] = left

    def mark(self) -> tuple[int, frozenset[str]]:
        """Now: how many hotfix runs ever started, and which are at work."""
        with self._lock:
            return self._count, frozenset(self._working)

    def since(self, mark: tuple[int, frozenset[str]]) -> list[str]:
        """The hotfixes at work at any moment since `mark`."""
        count, working = mark
        with self._lock:
            started = {task_id for n, task_id in self._started if n > count}
            return sorted(working | started | set(self._working))


class Stoppable(Protocol):
    """A live run `Shop` can stop: a local Runner, or a remote run's handle (scale)."""

    def stop(self, reason: str) -> None: ...

    def kill_now(self) -> None: ...


#: How many run numbers a process reserves at once (see Shop.new_run_id).
RUN_NUMBERS_AT_ONCE = 32


@dataclass
class Shop:
    """The daemon's shared state: board, journal, config, live runners, notifications."""

    root: Path
    config: Config
    board: Board
    journal: Journal
    notify: Callable[..., object] = lambda event, **payload: None
    log: Callable[..., None] = log_line
    stopping: threading.Event = field(default_factory=threading.Event)
    _runners: dict[str, tuple[str, Stoppable]] = field(default_factory=dict)
    #: task id -> why: its runs are stopped, those it starts later too, until `clear_stop`
    _stops: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Hotfix agents at work in the live tree (see LiveTreeWriters).
    live_tree: LiveTreeWriters = field(default_factory=LiveTreeWriters)
    #: `[scale] engine = "temporal"`: the daemon's scale.dispatch.Engine (None: runs are local).
    engine: Any = None
    #: This repository's tag on every child process (computed once: see child_env).
    repo_id: str = field(init=False)
    #: A `shopfloor worker`'s shop: its agents and checks get SIGKILL when it dies (see
    #: RunSpec.die_with_parent); a daemon's agents are recovered by its next start instead.
    die_with_us: bool = False
    #: Run numbers this process reserved and has not used yet (see new_run_id).
    _run_numbers: list[int] = field(default_factory=list)
    #: Called with the task id the moment a run's agent process exists (the daemon's hotfix
    #: precedence ends there: see precedence.py).
    spawned: Callable[[str], None] = lambda task_id: None

    def __post_init__(self) -> None:
        self.repo_id = repo_identity(self.root)

    @property
    def paths(self) -> StatePaths:
        return self.board.paths

    @property
    def runs_dir(self) -> Path:
        return self.paths.runs_dir

    def new_run_id(self) -> str:
        """R-<n>, unique across restarts and processes: numbers are reserved RUN_NUMBERS_AT_ONCE
        at a time (counter file under a lock, checked against run dirs), so most runs take
        one from memory instead of a lock, a temp file and a rename. An unused reservation is
        a gap in the numbers, never a number used twice."""
        with self._lock:
            if not self._run_numbers:
                first = self._reserve_run_numbers(RUN_NUMBERS_AT_ONCE)
                self._run_numbers.extend(range(first + RUN_NUMBERS_AT_ONCE - 1, first - 1, -1))
            return f"R-{self._run_numbers.pop()}"

    def _reserve_run_numbers(self, count: int) -> int:
        """The first of `count` run numbers no other process (or restart) will use."""
        self.paths.ensure()
        counter = self.paths.next_run
        with _fs.locked(self.paths.runs_lock):
            try:
                number = int(counter.read_text().strip())
            except (FileNotFoundError, ValueError):
                existing = [
                    int(p.name[2:]) for p in self.runs_dir.glob("R-*") if p.name[2:].isdigit()
                ]
                number = max(existing, default=0)
            # Not fsynced: after a power loss the run folders on disk give the next number.
            _fs.atomic_write(counter, f"{number + count}\n", durable=False)
        return number + 1

    def open_run(self, task_id: str, role: str, agent: str = "") -> tuple[str, Path]:
        """A new run id and its folder under .shopfloor/runs/ (meta.json written).

        A hotfix must start even when .shopfloor/ is full, read-only or gone: it then runs
        from a private scratch folder outside the repository, named for this repository.
        """
        try:
            run_id = self.new_run_id()
            run_dir = self.runs_dir / run_id
            make_private_dir(run_dir)
            runlogs.write_meta(run_dir, task_id, role, agent)
        except OSError as exc:
            if role != "hotfix":
                raise InfrastructureError(f"cannot create a run folder: {exc}") from exc
            self.log("run.scratch", task=task_id, reason=str(exc))
            run_id = f"R-h{time.time_ns() // 1_000_000}"
            run_dir = scratch_runs_dir(self.root) / run_id
            make_private_dir(run_dir)
        return run_id, run_dir

    def bookkeep(self, role: str, write: Callable[[], object]) -> None:
        """A journal write about a run: for a hotfix, best effort (the fire extinguisher works
        with a broken journal); for any other role a failure is an infrastructure fault."""
        try:
            write()
        except Exception as exc:
            if role != "hotfix":
                raise InfrastructureError(f"cannot write the journal: {exc}") from exc
            self.log("journal.unavailable", role=role, error=str(exc))

    def record_start(
        self,
        run_id: str,
        task_id: str,
        role: str,
        agent: str,
        attempt: int,
        run_dir: Path,
        **fields: Any,
    ) -> None:
        """The journal's row for a run that starts (see `bookkeep` for a failure)."""
        self.bookkeep(
            role,
            lambda: self.journal.insert_run(
                run_id,
                task_id,
                role,
                agent=agent,
                attempt=attempt,
                state="running",
                run_dir=str(run_dir),
                **fields,
            ),
        )

    def agent_for(self, role: str, entry: Entry) -> tuple[str, AgentConfig]:
        name = entry.header.agent or getattr(self.config.roles, role)
        try:
            return name, self.config.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.config.agents)) or "none"
            asked = (
                f"{entry.id} asks for agent {name!r}"
                if entry.header.agent
                else self.config.role_source(role)  # never quote a default as if written
            )
            raise ConfigError(
                f"{asked}, which shopfloor.toml does not define (defined: {known})"
            ) from None

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment without the daemon's secrets, plus `extra`, tagged with
        this repository's id (last, so neither config nor an inherited value overrides it):
        with SHOPFLOOR_RUN_ID it tells a restarting daemon which orphans are its own."""
        return {**agent_environment(self.config, extra), REPO_ID_VAR: self.repo_id}

    # ------------------------------------------------------------------ live runs

    def track(self, run_id: str, task_id: str, runner: Stoppable) -> None:
        with self._lock:
            self._runners[run_id] = (task_id, runner)
            reason = self._stops.get(task_id)
        if reason is not None:  # cancelled before its agent started: it never starts
            runner.stop(reason)

    def untrack(self, run_id: str) -> None:
        with self._lock:
            self._runners.pop(run_id, None)

    def stop_task_runs(self, task_id: str, reason: str) -> int:
        with self._lock:
            targets = [r for t, r in self._runners.values() if t == task_id]
        for runner in targets:
            runner.stop(reason)
        return len(targets)

    def stop_task(self, task_id: str, reason: str) -> int:
        """Stop the task's runs now and every run it starts until `clear_stop` (a cancel that
        comes between a claim and the agent's start must still stop that agent)."""
        with self._lock:
            self._stops.setdefault(task_id, reason)
        return self.stop_task_runs(task_id, reason)

    def clear_stop(self, task_id: str) -> None:
        with self._lock:
            self._stops.pop(task_id, None)

    def stop_all(self, reason: str) -> None:
        with self._lock:
            targets = [r for _, r in self._runners.values()]
        for runner in targets:
            runner.stop(reason)

    def kill_all_now(self) -> None:
        """SIGKILL every live run's process group at once: a stop's last resort.

        Takes no lock (a wedged thread may hold it): the dict is copied in one step."""
        for _, runner in list(self._runners.values()):
            runner.kill_now()


@dataclass
class AgentRun:
    """One finished agent run, judged."""

    run_id: str
    role: str
    agent: str
    outcome: Outcome
    result: dict[str, Any]
    parsed: Parsed
    duration: float
    run_dir: Path
    error: str | None = None
    paused_until: float | None = None  # rate-limited: when its agent may run again
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK and self.result.get("outcome") == "ok"

    @property
    def summary(self) -> str:
        text = str(self.result.get("summary") or self.error or self.parsed.error or "")
        return " ".join(text.split())[:200]

    @property
    def verdict(self) -> str:
        """The run's word in the tracker and the log alike: `ok`, `FAIL` (the agent ran and
        said fail), PASS/FAIL for a QA verdict, else how it ended (`timed-out`, ...). The
        outcome alone says only whether the process behaved: a run that says fail is `ok`."""
        if self.role == "qa" and self.result.get("verdict"):
            return "PASS" if self.result.get("verdict") == "pass" and self.ok else "FAIL"
        if self.ok:
            return "ok"
        return "FAIL" if self.outcome is Outcome.OK else self.outcome.value


def read_tail(path: Path, limit: int = _TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def read_result(result_file: Path, final_text: str, role: str) -> tuple[dict[str, Any], str | None]:
    """The agent's result: its JSON file, else the last fenced json block of its final message."""
    candidates: list[str] = []
    if result_file.is_file():
        candidates.append(result_file.read_text("utf-8", "replace"))
    candidates.extend(reversed(_FENCED_JSON.findall(final_text)))
    problem = "no result: the agent wrote no result file and no ```json block"
    for raw in candidates:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problem = f"result is not valid JSON: {exc.msg}"
            continue
        invalid = validate_result(data, role)
        if invalid is None:
            return data, None
        problem = invalid
    return {}, problem


def validate_result(data: Any, role: str) -> str | None:
    if not isinstance(data, dict):
        return "result must be a JSON object"
    if data.get("outcome") not in ("ok", "fail"):
        return 'result.outcome must be "ok" or "fail"'
    if role == "qa" and data.get("outcome") == "ok" and data.get("verdict") not in ("pass", "fail"):
        return 'QA result needs verdict "pass" or "fail"'
    return None


class _FromConfig(Enum):
    BUDGET = "from [budget] and the journal"


#: run_agent's default budget: what [budget] leaves for the task, by this shop's journal.
FROM_CONFIG = _FromConfig.BUDGET


def run_agent(
    shop: Shop,
    role: str,
    entry: Entry,
    workdir: Path,
    values: dict[str, str],
    attempt: int = 0,
    *,
    agent: str | None = None,
    budget_usd: float | _FromConfig | None = FROM_CONFIG,
    on_open: Callable[[str, Path], None] | None = None,
    opened: tuple[str, Path] | None = None,
) -> AgentRun:
    """Carry out one agent run under the run contract and judge it.

    A worker running for a daemon names the `agent` and the `budget_usd` the daemon gave
    (None: no limit) and learns the run folder from `on_open(run_id, run_dir)`. `opened`: a
    run id and folder `shop.open_run` made already (the daemon makes a hotfix's while its
    snapshot is taken)."""
    if agent is None:
        agent_name, agent_cfg = shop.agent_for(role, entry)
    else:
        agent_name, agent_cfg = agent, shop.config.agents[agent]
    backend = agents.get(agent_cfg.backend)
    if budget_usd is FROM_CONFIG:
        limit = budget.remaining(shop.config, shop.journal, entry.id, role)
    else:
        limit = budget_usd
    run_id, run_dir = opened or shop.open_run(entry.id, role, agent_name)
    if on_open is not None:
        on_open(run_id, run_dir)
    if limit is not None and limit <= 0:
        shop.log("run.refused", run=run_id, task=entry.id, role=role, reason="over budget")
        spent = shop.journal.cost_of_task(entry.id)
        why = f"budget spent (task ${spent:.2f}); raise [budget] to go on"
        return AgentRun(
            run_id, role, agent_name, Outcome.OVER_BUDGET, {}, Parsed(), 0.0, run_dir, why
        )
    prompt_file, result_file = run_dir / "prompt.md", run_dir / "result.json"
    filled = {
        "task_id": entry.id,
        "task_file": str(entry.path),
        "role": role,
        "workdir": str(workdir),
        "result_file": str(result_file),
        "attempt": str(attempt),
        "max_attempts": str(entry.header.max_attempts),
        **values,
    }
    prompt = roles.render(role, shop.root, filled)
    _fs.atomic_write(prompt_file, prompt, durable=False)
    ctx = RunContext(
        role,
        run_id,
        entry.id,
        entry.path,
        prompt_file,
        result_file,
        workdir,
        prompt,
        agent_cfg,
        budget_usd=limit,
    )
    invocation = backend.build(ctx)
    env = shop.child_env(
        {
            **agent_cfg.env,
            **invocation.env,
            "SHOPFLOOR_ROLE": role,
            "SHOPFLOOR_TASK_ID": entry.id,
            "SHOPFLOOR_TASK_FILE": str(entry.path),
            "SHOPFLOOR_PROMPT_FILE": str(prompt_file),
            "SHOPFLOOR_RESULT_FILE": str(result_file),
            "SHOPFLOOR_WORKDIR": str(workdir),
            "SHOPFLOOR_RUN_ID": run_id,
            "SHOPFLOOR_ATTEMPT": str(attempt),
        }
    )
    spec = RunSpec(
        run_id=run_id,
        argv=invocation.argv,
        cwd=workdir,
        env=env,
        run_dir=run_dir,
        timeout=agent_cfg.timeout,
        stall=agent_cfg.stall,
        grace=shop.config.pipeline.stop_grace,
        stdin_data=invocation.stdin,
        die_with_parent=shop.die_with_us,
    )
    shop.record_start(run_id, entry.id, role, agent_name, attempt, run_dir, workdir=str(workdir))
    shop.log("run.start", run=run_id, task=entry.id, role=role, agent=agent_name)
    result, crossed = _supervise(shop, spec, entry.id, limit, backend)
    parsed = backend.parse(read_tail(result.stdout_path), read_tail(result.stderr_path))
    outcome = backend.classify(result, parsed)
    _keep_private(result_file)
    data, problem = read_result(result_file, parsed.final_text, role)
    error = result.error or parsed.error
    if crossed is not None:
        outcome, error = Outcome.OVER_BUDGET, f"stopped at ${crossed:.2f}: over budget"
    elif outcome is Outcome.OK and problem is not None:
        outcome, error = Outcome.AGENT_ERROR, problem
    run = AgentRun(run_id, role, agent_name, outcome, data, parsed, result.duration, run_dir, error)
    run.exit_code = result.exit_code
    _journal_end(shop, run, result)
    shop.bookkeep(role, lambda: track_agent_health(shop, run))
    return run


def _keep_private(path: Path) -> None:
    """The agent wrote its result file with its own umask (it cannot use ours: its source
    files must keep normal modes); the daemon's copy under .shopfloor/ is 0600 like the rest."""
    try:
        if path.is_file() and not path.is_symlink():
            os.chmod(path, PRIVATE_FILE_MODE)
    except OSError:
        pass  # not ours to change (another owner): the run folder is 0700 anyway


def track_agent_health(shop: Shop, run: AgentRun) -> None:
    """An agent that cannot work (rate limit, no login, no binary) pauses its whole queue, so
    the tasks behind it wait instead of each failing in turn; its next good run lifts it."""
    if run.outcome in budget.PAUSING:
        detail = run.error or run.parsed.error or ""
        reason = f"{run.outcome.value}: {detail}"[:300]
        reset = run.parsed.reset_at if run.outcome is Outcome.RATE_LIMITED else None
        run.paused_until = budget.pause_agent(shop.journal, run.agent, reset, reason)
        shop.log("agent.paused", agent=run.agent, until=f"{run.paused_until:.0f}")
    elif run.outcome is Outcome.OK and shop.journal.strikes(run.agent):
        shop.journal.clear_pause(run.agent)


def _supervise(
    shop: Shop, spec: RunSpec, task_id: str, limit: float | None, backend: Backend
) -> tuple[RunResult, float | None]:
    """Run it; with a budget, watch the cost it reports as it goes (the crossing, if any)."""

    role = spec.env.get("SHOPFLOOR_ROLE", "")

    def started(pid: int, create_time: float) -> None:
        shop.spawned(task_id)
        fields = {"pid": pid, "proc_started": create_time}
        shop.bookkeep(role, lambda: shop.journal.update_run(spec.run_id, **fields))

    def cost_so_far() -> float | None:
        return backend.parse(read_tail(spec.run_dir / "stdout.log"), "").cost_usd

    runner = Runner(spec, on_started=started)
    shop.track(spec.run_id, task_id, runner)
    try:
        if shop.stopping.is_set():
            runner.stop("daemon stopping")
        if limit is None:
            return runner.run(), None
        with budget.Watch(limit, cost_so_far, runner.stop) as watch:
            result = runner.run()
        return result, watch.crossed
    finally:
        shop.untrack(spec.run_id)


def _journal_end(shop: Shop, run: AgentRun, result: RunResult) -> None:
    fields = {
        "state": "ended",
        "ended_at": utc_now(),
        "outcome": run.outcome.value,
        "exit_code": result.exit_code,
        "summary": run.summary,
        "tokens_in": run.parsed.tokens_in,
        "tokens_out": run.parsed.tokens_out,
        "cost_usd": run.parsed.cost_usd,
    }
    shop.bookkeep(run.role, lambda: shop.journal.update_run(run.run_id, **fields))
    shop.log(
        "run.end",
        run=run.run_id,
        role=run.role,
        outcome=run.outcome.value,
        verdict=run.verdict,  # what the tracker line says of this run
        exit=result.exit_code,
        secs=f"{run.duration:.1f}",
    )


def human_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
