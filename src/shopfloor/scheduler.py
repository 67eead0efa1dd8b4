"""The daemon loop: watch the board, reconcile, claim work, run jobs, stop cleanly.

Level-triggered: a file-system event only means "rescan that lane now"; a periodic full
reconcile (and one on inotify overflow) makes sure a missed event never strands a task.
The hotfix lane has its own watcher and dispatcher thread, outside every limit and queue.
See docs/architecture.md for the state machine and the crash-safety protocol.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor import (
    budget,
    config_check,
    defaults,
    landing,
    lifecycle,
    pipeline,
    runner,
    task,
    watch,
)
from shopfloor.board import Board, Entry, Lane, ScanStopped, is_temp_name
from shopfloor.config import Config
from shopfloor.errors import ConfigError, InfrastructureError, ShopfloorError
from shopfloor.journal import open_journal
from shopfloor.lock import DaemonLockedError, daemon_lock
from shopfloor.precedence import Precedence
from shopfloor.shop import Shop, log_line
from shopfloor.statusd import StatusServer
from shopfloor.stopping import OVERDUE_EXIT, SignalStop
from shopfloor.words import Event, Role, Status

#: Seconds between full reconcile scans when events are flowing normally.
RECONCILE_EVERY = 300.0
#: A file younger than this is not quarantined yet: a person may still be writing it.
SETTLE_SECONDS = 2.0
#: A stopping daemon exits within `[pipeline] stop_grace` (its agents' SIGTERM-to-SIGKILL
#: grace) plus this: the stopped jobs' last writes. Jobs still busy then are left to recovery.
STOP_SLACK = 1.0
#: The longest the main thread sleeps at once (a safety net: stop() also wakes it).
SIGNAL_SLICE = 1.0
_PRIORITY_ORDER = {p: i for i, p in enumerate(defaults.PRIORITIES)}
#: After an infrastructure fault (full disk, read-only lane, lost journal), claims pause and
#: recovery is retried after this many seconds, doubling up to FAULT_MAX while it lasts.
FAULT_FIRST = 1.0
FAULT_MAX = 60.0
#: While the scale engine is unreachable, claims are tried again this often (seconds).
ENGINE_RETRY = 2.0
#: The precedence key of the hotfix thread's pass over the files its watcher named.
_READING = "hotfix-lane-event"
_ROLE_BY_LANE = {Lane.INBOX: Role.PM, Lane.BACKLOG: Role.CODER, Lane.REVIEW: Role.QA}
_STAGES: dict[Role, Callable[[Shop, Entry], pipeline.Step]] = {
    Role.PM: pipeline.do_pm,
    Role.CODER: pipeline.do_code,
    Role.QA: pipeline.do_qa,
    Role.HOTFIX: pipeline.do_hotfix,
}


def _interrupted_payload() -> lifecycle.Change:
    """What a hotfix notification says when its run did not finish."""
    return lifecycle.Change(payload={"ok": False, "incomplete": True, "summary": "interrupted"})


def _says_running(path: Path) -> bool:
    """Whether the task file on disk says `running` (True when it cannot be read now: only a
    clear answer stops a run)."""
    try:
        return task.parse(task.decode(path.read_bytes())).status == Status.RUNNING
    except (OSError, ShopfloorError):
        return True


def check_agents(config: Config) -> None:
    """Every role must name an agent that shopfloor.toml defines."""
    from shopfloor.config import ROLES

    for role in ROLES:
        name = getattr(config.roles, role)
        if name not in config.agents:
            raise ConfigError(
                f"{config.role_source(role)}, but [agents.{name}] is not defined "
                "(`shopfloor doctor` explains the config)"
            )


class _Claim:
    """A hotfix claim in flight, as its job's thread waits for it: the claimed entry (None
    when the claim was not written) and the run folder made for it meanwhile, if any."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._entry: Entry | None = None
        self.opened: tuple[str, Path] | None = None

    def settle(self, entry: Entry | None, opened: tuple[str, Path] | None = None) -> None:
        self._entry, self.opened = entry, opened
        self._done.set()

    def wait(self) -> Entry | None:
        self._done.wait()
        return self._entry


@dataclass
class Job:
    role: Role
    task_id: str
    thread: threading.Thread
    path: Path  # where the task file is while the job's agent runs


class Daemon:
    def __init__(
        self,
        root: Path,
        config: Config,
        *,
        once: bool = False,
        watch: bool = True,
        reconcile_every: float = RECONCILE_EVERY,
        settle: float = SETTLE_SECONDS,
        notify: Callable[..., object] | None = None,
    ) -> None:
        self.root = root
        self.once = once
        self.watch = watch and not once
        self.reconcile_every = reconcile_every
        self.settle = 0.0 if once else settle
        board = Board(root, header_cache=False)
        # The main thread's lane scans read through the header cache (a stat per unchanged
        # file, not a parse): a restart on an unchanged 50,000-task board is ready in about
        # a second. Saved on full scans only (start-up, reconcile): rewriting a 50,000-entry
        # file after each lane event would cost more than it saves.
        self._listing = Board(root, header_cache=True)
        # A damaged journal is moved aside and a fresh one started: history never stops work.
        journal = open_journal(root, log=log_line)
        self.shop = Shop(root, config, board, journal, notify=self._notify)
        if notify is None:
            notify = self._publish
        self._forward = notify
        self._config_stamp = config_check.stamp(root / defaults.CONFIG_FILE)
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._said: dict[str, str] = {}
        self._resume_at: float | None = None
        self._cache: dict[Lane, list[Entry]] = {}
        # What the next tick reads again, per lane: these file names, or all of it (None).
        self._dirty: dict[Lane, set[str] | None] = {}
        self._wake = threading.Event()
        self._hotfix_wake = threading.Event()
        # From a hotfix-lane event until the hotfix's agent runs, the main thread's scans and
        # claims, the status server's listings and the other lanes' events wait (bounded):
        # the GIL is the hotfix's (see precedence.py).
        self._precedence = Precedence()
        self.shop.spawned = self._precedence.release
        # What the hotfix thread reads next: these files of hotfix/, or all of it (full).
        # Full at first: hotfixes filed while no daemon ran.
        self._hotfix_guard = threading.Lock()
        self._hotfix_names: set[str] = set()
        self._hotfix_full = True
        self.failures = 0
        self._recovered: list[str] = []
        self._starting = True
        self._fault_backoff = 0.0
        self._fault_until: float | None = None
        self._lander = landing.Lander(self.shop, self._landed)
        self._background: dict[str, threading.Thread] = {}  # by name: one thread each
        self.status = StatusServer(  # statusd
            root,
            lambda: self.shop.journal,
            self.shop.log,
            wait_for_board=True,
            give_way=self._precedence.give_way,
        )
        self._stop_started: float | None = None
        self._signals = SignalStop(self.stop, self.stop_deadline, self._stop_overdue)
        if config.scale.engine == "temporal":
            self.shop.engine = self._engine(config)

    def _engine(self, config: Config) -> Any:
        """`[scale] engine = "temporal"`: PM, Coder and QA runs go to workers; hotfixes never."""
        from shopfloor.scale.dispatch import Engine
        from shopfloor.scale.queues import scoped

        identity = f"shopfloor-daemon-{os.getpid()}"
        return Engine(scoped(self.root, config.scale), self._engine_changed, identity=identity)

    def _record_engine(self) -> None:
        """engine.json for `status`, the web board and the bot (gone in local mode)."""
        from shopfloor.scale import state

        engine = self.shop.engine
        try:
            if engine is None:
                state.clear_engine_state(self.root)
            else:
                state.record_engine(
                    self.root, engine.scale, engine.state, engine.error, since=engine.since
                )
        except OSError as exc:  # status loses a line; the daemon goes on
            self.shop.log("engine.state_unsaved", error=str(exc))

    def _engine_changed(self, state: str, details: dict[str, Any]) -> None:
        """Said once per change: down (tasks wait, hotfixes still run here) and back up (not
        the first connect at start, which is no news)."""
        self.shop.log(f"engine.{state}", **details)
        self._record_engine()
        if state == "down" or "down_for" in details:
            self._notify(f"engine_{state}", **details)
        self._wake.set()

    # ------------------------------------------------------------------ events

    def _notify(self, event: str, **payload: Any) -> None:
        """Events from the pipeline: logged, counted, and handed to the notifier (never fatal)."""
        if event == "task_failed":
            self.failures += 1
        self.shop.log(f"notify.{event}", **{k: v for k, v in payload.items() if k == "task_id"})
        if self._forward is not None:
            try:
                self._forward(event, **payload)
            except Exception as exc:  # a notifier must never take the daemon down
                self.shop.log("notify.error", error=repr(exc))

    def _publish(self, event: str, **payload: Any) -> object:
        """The outbox (rows in SQLite, no network), routed by the config in force now."""
        from shopfloor.notify import publish

        return publish(self.shop.journal, self.shop.config, event, **payload)

    def _check_surroundings(self) -> None:
        """Each tick, a few stats: a journal deleted or replaced under the daemon (say
        `.shopfloor/` removed) is recreated, and an edited shopfloor.toml is reloaded.

        A stat per tick rather than a watcher: the loop wakes on every board event, every
        finished job and every reconcile, and a config only matters when the daemon decides
        something, which always follows a tick; `status` reports a broken edit at once.
        """
        try:
            self.shop.journal.ensure_current()
        except InfrastructureError as exc:  # a full disk must not stop the board
            self._say_once("journal.unavailable", str(exc))
        path = self.root / defaults.CONFIG_FILE
        stamp = config_check.stamp(path)
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            fresh = config_check.validate(path)
        except ShopfloorError as exc:
            config_check.remember(self.root, stamp, str(exc))
            self.shop.log("config.invalid", error=str(exc), using="the last good config")
            self._notify("config_invalid", error=str(exc))
            return
        config_check.remember(self.root, stamp, None)
        old, self.shop.config = self.shop.config, fresh
        # These are read once at start (the notify service, the web server).
        restart = [name for name in ("notify", "web") if getattr(old, name) != getattr(fresh, name)]
        self.shop.log("config.reloaded", restart_needed=",".join(restart) or None)

    def mark_dirty(self, lane: Lane, name: str | None = None) -> None:
        """The next tick reads `name` of `lane` again (the whole lane when None)."""
        self.status.mark_dirty(lane)
        if lane is Lane.HOTFIX and not self.once:
            self._hotfix_dirty(name)
            return
        with self._lock:
            names = self._dirty.get(lane, set())
            if name is None or names is None:
                self._dirty[lane] = None
            else:
                names.add(name)
                self._dirty[lane] = names
        self._wake.set()

    def file_changed(self, lane: Lane, name: str | None) -> None:
        """The watcher's word: `name` in `lane` changed (None: the lane folder itself). Only
        that file is read again, not its lane: a 1,000-task done/ is not listed per move."""
        if name is not None and is_temp_name(name):
            return  # our own writes' temp files: their rename names the file itself
        self.mark_dirty(lane, name)

    def _hotfix_dirty(self, name: str | None) -> None:
        """Wake the hotfix thread (the main loop is not even woken) to read `name`, or the
        whole lane when None."""
        with self._hotfix_guard:
            if name is None:
                self._hotfix_full = True
            else:
                self._hotfix_names.add(name)
            if not self.shop.stopping.is_set():  # a stopping daemon starts no hotfix
                self._precedence.hold(_READING)
        self._hotfix_wake.set()

    def request_full_reconcile(self) -> None:
        for lane in Lane:
            self.mark_dirty(lane)

    def stop(self, *_: object) -> None:
        """Stop claiming, stop runs cleanly; the loop then leaves a consistent board.

        Never from a signal handler (it takes locks): see stopping.py."""
        if self._stop_started is None:
            # From the signal, if one started it: a starved machine may take a while to get
            # round to this, and the grace is the signal sender's.
            self._stop_started = self._signals.signalled_at or time.monotonic()
            self.shop.log("daemon.stopping")
        self.shop.stopping.set()
        self._precedence.open()  # no hotfix starts now: nothing may wait for one
        self.shop.stop_all("daemon stopping")
        self._wake.set()
        self._hotfix_wake.set()

    def stop_deadline(self) -> float:
        """When a stopping daemon will have exited (time.monotonic): its agents' grace to end,
        then STOP_SLACK for their jobs' last writes (from now, if no stop has begun)."""
        began = self._stop_started if self._stop_started is not None else time.monotonic()
        return began + self.shop.config.pipeline.stop_grace + STOP_SLACK

    # ------------------------------------------------------------------ main

    def run(self) -> int:
        check_agents(self.shop.config)  # refuse to start rather than fail every task later
        self._signals.install()  # before the lock: a SIGTERM at any moment is a clean stop
        try:
            with daemon_lock(self.root):
                self._run_locked()
        finally:
            self._signals.uninstall()
        return 1 if (self.once and self.failures) else 0

    def _run_locked(self) -> None:
        self.shop.log("daemon.start", root=self.root, pid=os.getpid(), once=self.once)
        self._record_engine()
        self._warn_missing_binaries()
        self._warm_hotfix_path()
        # Watch first, then reconcile: a file filed during start-up is never missed.
        observers = self._start_watchers() if self.watch else []
        if self.watch:
            self.status.start()
        hotfix_thread = threading.Thread(target=self._hotfix_loop, name="hotfix", daemon=True)
        hotfix_thread.start()
        try:
            self.recover()
            self._loop()
        except ScanStopped:
            pass  # a stop came in the middle of a scan: nothing was decided on half a board
        finally:
            self._wind_down(observers, hotfix_thread)

    def _wind_down(self, observers: list[Any], hotfix_thread: threading.Thread) -> None:
        """Stop runs, give them until the stop deadline, then leave: whatever is still busy
        is SIGKILLed and its task recovered at the next start (the crash protocol)."""
        self.stop()
        self.status.stop()
        deadline = self.stop_deadline()
        self._wait_for_jobs(deadline)
        self._lander.join(max(0.0, deadline - time.monotonic()))
        busy = self._running_jobs()
        if busy:
            self.shop.kill_all_now()
            self.shop.log("daemon.stop_abandoned", jobs=busy, hint="recovered at the next start")
        for observer in observers:
            observer.stop()  # no join: its thread is a daemon thread, blocked in a read
        hotfix_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._notify("daemon_stopped", pid=os.getpid())
        self.shop.log("daemon.stop", failures=self.failures)
        if self.shop.engine is not None:
            self.shop.engine.close()
        if not busy:  # a busy job may hold the journal's lock; exiting closes the file anyway
            self.shop.journal.close()

    def _stop_overdue(self) -> None:
        """The backstop (stopping.py): the stop deadline passed and the process is still
        here. No lock and no logging lock: a raw write, SIGKILL the agents, exit."""
        with contextlib.suppress(OSError):
            os.write(2, f"ts={task.utc_now()} event=daemon.stop_overdue\n".encode())
        self.shop.kill_all_now()
        os._exit(OVERDUE_EXIT)

    def _warm_hotfix_path(self) -> None:
        """Load now, in the main thread before any other starts, what the first hotfix would
        otherwise load on its way to its agent: the agent backends, the hotfix bootloader, the
        report and notification modules (tens of ms of imports, more without .pyc files).
        Whatever fails here fails again, and is reported, in the run itself."""
        from shopfloor import agents, roles

        try:
            agents.available()
            roles.default_text(Role.HOTFIX.value)
            import shopfloor.hotfix_report
            import shopfloor.notify  # noqa: F401 - imported for its cost, not its names
        except Exception as exc:  # never a reason for the fire extinguisher not to start
            self.shop.log("hotfix.warm_up", error=repr(exc))

    def _warn_missing_binaries(self) -> None:
        """Say at start which agents cannot run (their tasks will wait, not fail)."""
        from shopfloor import doctor

        agents = self.shop.config.agents
        if self.shop.engine is not None:  # workers run the others: only the hotfix runs here
            hotfix = self.shop.config.roles.hotfix
            agents = {hotfix: agents[hotfix]} if hotfix in agents else {}
        for name, agent in sorted(agents.items()):
            if agent.backend != "simulator" and doctor.find_binary(agent, os.environ) is None:
                binary = doctor.binary_name(agent)
                self.shop.log("agent.missing", agent=name, binary=binary, hint="shopfloor doctor")

    def _loop(self) -> None:
        # recover() has just reconciled everything: the board is read once at start, not twice.
        next_full = 0.0 if self.once else time.monotonic() + self.reconcile_every
        while not self.shop.stopping.is_set():
            now = time.monotonic()
            full = now >= next_full
            if full:
                next_full = now + self.reconcile_every
            try:
                claimed = self.tick(full=full)
            except (InfrastructureError, OSError, sqlite3.Error) as exc:
                self._fault("-", exc)  # a full disk or a lost journal pauses, never kills
                claimed = 0
            if self.once and not claimed and not self._running_jobs() and not self._faulted():
                if full:
                    break
                next_full = 0.0  # the pass ends on a look at the whole board, not the view
                continue
            timeout = max(0.0, min(next_full - time.monotonic(), 1.0 if self.once else 3600.0))
            if self._resume_at is not None:  # wake when a paused agent may run again
                timeout = max(0.0, min(timeout, self._resume_at - time.time() + 0.05))
            if self.shop.engine is not None and self.shop.engine.state != "up":
                timeout = min(timeout, ENGINE_RETRY)  # look again soon: it may be back
            if self._fault_until is not None:  # recovery retries as soon as the back-off ends
                timeout = max(0.0, min(timeout, self._fault_until - time.monotonic() + 0.01))
            self._sleep(timeout)
            self._wake.clear()
            if self._fault_until is not None and not self._faulted():
                self._fault_until = None
                next_full = 0.0  # the fault may have cleared: look at everything again
                self._finish_cut_transitions()

    def _sleep(self, timeout: float) -> None:
        """Wait for a wake-up, in slices: a SIGTERM the kernel hands to another of our threads
        only runs its Python handler once the main thread wakes, and a wait of up to an hour
        would keep the daemon from stopping that long."""
        deadline = time.monotonic() + timeout
        while not self.shop.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._wake.wait(min(left, SIGNAL_SLICE)):
                return

    def _start_watchers(self) -> list[Any]:
        return watch.start(
            self.shop.board,
            self.mark_dirty,
            self.request_full_reconcile,
            self.file_changed,
            give_way=self._precedence.give_way,
        )

    # ------------------------------------------------------------------ one pass

    def tick(self, full: bool = False) -> int:
        """Rescan dirty lanes, recover stale claims, land, dispatch; returns jobs started.

        Each step over the whole board gives way to a hotfix starting (see precedence.py)."""
        give_way = self._precedence.give_way
        give_way()
        self._check_surroundings()
        with self._lock:
            dirty = {lane: None for lane in Lane} if full else dict(self._dirty)
            self._dirty.clear()
        dirty.pop(Lane.INVALID, None)
        lanes = {lane for lane, names in dirty.items() if names is None}
        lanes |= self._reread(
            {lane: names for lane, names in dirty.items() if names is not None and names}
        )
        if lanes:
            self._rescan(lanes, full)
        give_way()
        entries = [e for lane_entries in self._cache.values() for e in lane_entries]
        conflicted = self._conflicts(entries)
        give_way()
        usable = [e for e in entries if e.id not in conflicted]
        self._stop_cancelled()
        if not self._faulted():  # a fault's back-off holds every write, recovery's too
            self._recover_stale(usable)
            give_way()
            moved = self._land(usable)
            if moved:  # the queue moved tasks (done/, backlog/): look again before the end
                self.request_full_reconcile()
                return moved
        started = self._dispatch_hotfixes() if (full or self.once) else 0
        return started + self._claim(usable)

    def _rescan(self, lanes: set[Lane], full: bool = False) -> None:
        board = self._listing
        # A stop ends a 50,000-file scan at the next file, not at its end.
        scan = board.scan(
            sorted(lanes),
            stop=self.shop.stopping,
            save_cache=full,
            pause=self._precedence.give_way,
        )
        if scan.problems:
            for problem in scan.problems:
                self.shop.log(
                    "board.invalid", path=board.relative(problem.path), reason=problem.reason
                )
            scan = board.sweep(min_age=self.settle, lanes=sorted(lanes))
        found = scan.by_lane(lanes)
        with self._lock:
            self._cache.update(found)
        if full:
            # The board's view is long-lived: out of the collector's reach, a full collection
            # (26-34 ms at 10,000 tasks, more at 50,000) never lands on a hotfix's path.
            gc.freeze()

    def _reread(self, names: dict[Lane, set[str]]) -> set[Lane]:
        """Bring the cached view up to date with the files the watcher (or a job) named;
        returns the lanes to rescan whole: one with a file that is there but unreadable (the
        scan reports and quarantines it)."""
        board, whole = self._listing, set()
        for lane, changed in names.items():
            read = {name: board.read_entry(lane, name) for name in changed}
            if any(e is None and (board.lane_dir(lane) / n).exists() for n, e in read.items()):
                whole.add(lane)
                continue
            with self._lock:
                view = {e.name: e for e in self._cache.get(lane, []) if e.name not in read}
                view.update({name: e for name, e in read.items() if e is not None})
                self._cache[lane] = sorted(view.values(), key=lambda e: e.name)
        return whole

    def _conflicts(self, entries: list[Entry]) -> set[str]:
        seen: Counter[str] = Counter(e.id for e in entries)
        return {task_id for task_id, n in seen.items() if n > 1}

    def _running_jobs(self) -> int:
        with self._lock:
            return len(self._jobs)

    # ------------------------------------------------------------------ claims

    def _claim(self, entries: list[Entry]) -> int:
        if self.shop.stopping.is_set() or self._faulted():
            return 0
        spent = budget.day_exhausted(self.shop.config, self.shop.journal)
        if spent is not None:
            self._say_once("budget.day", spent)  # new claims resume at midnight UTC
            return 0
        engine = self.shop.engine
        if engine is not None and not engine.ready():
            # Never run here by surprise: the tasks wait for the engine (hotfixes do not).
            self._say_once("engine.wait", f"{engine.state}: {engine.error}")
            return 0
        self._said.pop("engine.wait", None)
        paused = self.shop.journal.pauses()
        self._resume_at = min((until for until, _ in paused.values()), default=None)
        limits = self.shop.config.pipeline.concurrency
        done = {e.id for e in self._cache.get(Lane.DONE, [])}
        with self._lock:
            busy = Counter(job.role for job in self._jobs.values())
            taken = set(self._jobs)
        started = 0
        # Downstream first: finishing work beats starting new work.
        for lane in (Lane.REVIEW, Lane.BACKLOG, Lane.INBOX):
            role = _ROLE_BY_LANE[lane]
            self._precedence.give_way()  # each lane's candidates: a pass over the board
            for entry in self._candidates(entries, lane, done, taken):
                if busy[role] >= getattr(limits, role):
                    break
                if paused and self._agent_name(role, entry) in paused:
                    continue  # rate-limited: the task waits without using an attempt
                self._precedence.give_way()
                if self._start(role, entry):
                    busy[role] += 1
                    started += 1
                elif self._faulted():
                    return started  # the claim met a fault: the rest wait for the back-off
        return started

    def _faulted(self) -> bool:
        return self._fault_until is not None and time.monotonic() < self._fault_until

    def _agent_name(self, role: Role, entry: Entry) -> str | None:
        try:
            return self.shop.agent_for(role, entry)[0]
        except ConfigError:
            return None  # the job itself reports the unknown agent

    def _say_once(self, event: str, reason: str) -> None:
        if self._said.get(event) != reason:
            self._said[event] = reason
            self.shop.log(event, reason=reason)

    def _candidates(
        self, entries: list[Entry], lane: Lane, done: set[str], taken: set[str]
    ) -> list[Entry]:
        ready = [
            e
            for e in entries
            if e.lane is lane
            and e.header.status == "queued"
            and e.id not in taken
            and (lane is not Lane.BACKLOG or set(e.header.depends_on) <= done)
        ]
        return sorted(
            ready,
            key=lambda e: (_PRIORITY_ORDER.get(e.header.priority, 9), e.header.created or "", e.id),
        )

    def _start(self, role: Role, entry: Entry) -> bool:
        """Claim on the board (the lifecycle's CLAIMED), then start the job's thread."""
        if self.shop.stopping.is_set():
            return False  # a stop came in the middle of a claiming pass: nothing more starts
        if role is Role.HOTFIX:
            return self._start_hotfix(entry)
        try:
            entry = lifecycle.apply(self.shop, entry, Event.CLAIMED, f"{role.value} claimed")
        except (lifecycle.TaskMoved, lifecycle.TransitionRefused) as exc:
            self.shop.log("claim.skipped", task=entry.id, reason=str(exc))
            return False
        except (ShopfloorError, OSError, sqlite3.Error) as exc:
            self._fault(entry.id, exc)
            return False
        # A daemon thread: a job the stop deadline cuts must not keep the process alive.
        thread = threading.Thread(
            target=self._job_main, args=(role, entry), name=entry.id, daemon=True
        )
        with self._lock:
            self._jobs[entry.id] = Job(role, entry.id, thread, entry.path)
            if role is Role.CODER:  # keep the cached view in step with the move just made
                self._cache[Lane.BACKLOG] = [
                    e for e in self._cache.get(Lane.BACKLOG, []) if e.id != entry.id
                ]
        self.shop.log("claim", task=entry.id, role=role, attempt=pipeline.attempt_of(entry))
        thread.start()
        return True

    def _start_hotfix(self, entry: Entry) -> bool:
        """A hotfix's claim, with its job's thread started first: the snapshot of the live
        tree (`git status`, a process of its own) is taken while the claim is written, not
        after it. The job goes on only once the claim is on the board (see `_hotfix_main`);
        a claim that fails ends it. Until its agent runs, the daemon's busy loops give way
        to it (see precedence.py)."""
        self._precedence.hold(entry.id)  # released once its agent runs (Shop.spawned)
        claim = _Claim()
        thread = threading.Thread(
            target=self._hotfix_main, args=(entry, claim), name=entry.id, daemon=True
        )
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had (a process limit): nothing claimed
            self._precedence.release(entry.id)
            self._fault(entry.id, exc)
            return False
        claimed: Entry | None = None
        opened: tuple[str, Path] | None = None
        try:
            claimed = lifecycle.apply(self.shop, entry, Event.CLAIMED, "hotfix claimed")
            opened = self._open_hotfix_run(claimed)
        except (lifecycle.TaskMoved, lifecycle.TransitionRefused) as exc:
            self.shop.log("claim.skipped", task=entry.id, reason=str(exc))
        except (ShopfloorError, OSError, sqlite3.Error) as exc:
            self._fault(entry.id, exc)
        finally:
            if claimed is not None:  # registered before the job may go on (see _job_main)
                with self._lock:
                    self._jobs[entry.id] = Job(Role.HOTFIX, entry.id, thread, claimed.path)
            else:
                self._precedence.release(entry.id)
            claim.settle(claimed, opened)
        if claimed is None:
            return False
        self.shop.log(
            "claim", task=entry.id, role=Role.HOTFIX, attempt=pipeline.attempt_of(claimed)
        )
        return True

    def _open_hotfix_run(self, entry: Entry) -> tuple[str, Path] | None:
        """The run's id and folder, made while the snapshot is taken; None leaves it to the
        run itself (which then says what is wrong: an unknown agent, no folder at all)."""
        try:
            agent, _ = self.shop.agent_for(Role.HOTFIX, entry)
            return self.shop.open_run(entry.id, Role.HOTFIX, agent)
        except (ShopfloorError, OSError):
            return None

    def _hotfix_main(self, entry: Entry, claim: _Claim) -> None:
        """A hotfix job: the live tree's snapshot at once, then, once the claim is written,
        the run (`_job_main`); nothing more if the claim failed."""
        from shopfloor import hotfix_report

        begun: hotfix_report.Start | Exception
        try:
            begun = hotfix_report.begin(self.shop.root, entry.id)
        except Exception as exc:  # said by the job, once claimed, as do_hotfix would say it
            begun = exc
        lifecycle.fault_point("snapshot", Event.CLAIMED)  # the crash tests' seam
        claimed = claim.wait()
        if claimed is None:
            if not isinstance(begun, Exception):
                hotfix_report.end(self.shop.root, entry.id)
            return

        def stage(shop: Shop, entry: Entry) -> pipeline.Step:
            if isinstance(begun, Exception):
                raise begun
            return pipeline.do_hotfix(shop, entry, begun, claim.opened)

        self._job_main(Role.HOTFIX, claimed, stage)

    def _job_main(
        self,
        role: Role,
        entry: Entry,
        stage: Callable[[Shop, Entry], pipeline.Step] | None = None,
    ) -> None:
        """Run the stage, apply what it returns; whatever goes wrong, no attempt is burned
        that the agent did not use, and the daemon goes on."""
        # What the loop reads again when the job ends: the job's lane whole (it may have
        # ended anywhere), or just the file where it was and where its verdict put it.
        # A hotfix stays in hotfix/: its own file again, never that whole lane.
        seen: list[tuple[Lane, str | None]] = [
            (entry.lane, entry.name if role is Role.HOTFIX else None)
        ]
        try:
            step = (stage or _STAGES[role])(self.shop, entry)
            moved = lifecycle.apply(
                self.shop, step.entry or entry, step.event, step.line, step.change
            )
            seen = [(entry.lane, entry.name), (moved.lane, moved.name)]
            # The stage's verdict, as the tracker has it (a run can end `ok` and its stage fail).
            self.shop.log("stage.end", task=entry.id, role=role, step=step.event.value)
            self._fault_cleared()
        except lifecycle.TaskMoved as exc:
            self.shop.log("job.abandoned", task=entry.id, reason=str(exc))
            self._moved_away(role, entry)
        except lifecycle.TransitionRefused as exc:  # a person changed its status meanwhile
            self.shop.log("job.abandoned", task=entry.id, reason=str(exc))
            if role is Role.HOTFIX:
                self._hotfix_stopped(entry)
        except (InfrastructureError, OSError, sqlite3.Error) as exc:
            self._fault(entry.id, exc)
        except ShopfloorError as exc:  # an unknown agent name, a git failure: says what to fix
            self._park_after_error(role, entry, Event.SETUP_PROBLEM, str(exc))
        except Exception as exc:  # a bug of ours: park the task with the error, go on
            self.shop.log("job.error", task=entry.id, role=role, error=repr(exc))
            self._park_after_error(role, entry, Event.ERRORED, f"internal error: {exc!r}")
        finally:
            self._precedence.release(entry.id)  # the agent never started, if still held
            with self._lock:
                self._jobs.pop(entry.id, None)
                self.shop.clear_stop(entry.id)  # under the lock: see _stop_cancelled
            for lane, name in seen:
                self.mark_dirty(lane, name)

    def _moved_away(self, role: Role, entry: Entry) -> None:
        """A person moved the file while its run went on: say so where the file is now."""
        with contextlib.suppress(ShopfloorError, OSError, sqlite3.Error):
            current = lifecycle.locate(self.shop.board, entry.id, entry.name)
            event = lifecycle.reconcile_event(current, live=False) if current else None
            if current is not None and event is not None:
                why = (
                    f"{role.value} run stopped: the file was moved to {current.lane.value}/ "
                    "while it ran (no attempt used)"
                )
                lifecycle.reconcile(self.shop, current, event, why, _interrupted_payload())

    def _hotfix_stopped(self, entry: Entry) -> None:
        """A person cancelled the hotfix while it ran (its file says awaiting-human): its agent
        is stopped and gone by now; say on the board what it left in the live tree."""
        from shopfloor import hotfix_controls

        with contextlib.suppress(ShopfloorError, OSError, sqlite3.Error):
            current = lifecycle.locate(self.shop.board, entry.id, entry.name)
            if current is None or current.lane is not Lane.HOTFIX:
                return
            if current.header.status != Status.AWAITING_HUMAN:
                return
            state = pipeline.load_state(self.shop, entry.id)
            left = hotfix_controls.record_stop(self.shop, current, state)
            self.shop.log("hotfix.stopped", task=entry.id, paths=len(left.paths))

    def _park_after_error(self, role: Role, entry: Entry, event: Event, why: str) -> None:
        """Parked once, with the reason, for a human: no attempt used, no loop."""
        with contextlib.suppress(ShopfloorError, OSError, sqlite3.Error):
            current = lifecycle.locate(self.shop.board, entry.id, entry.name)
            if current is not None and current.header.status == Status.RUNNING:
                line = f"{role.value} could not run: {why} — waiting for a human (no attempt used)"
                payload = {"agent": "", "outcome": event.value, "detail": why}
                lifecycle.apply(self.shop, current, event, line, lifecycle.Change(payload=payload))

    def _finish_cut_transitions(self) -> None:
        """A move a fault cut after its rewrite is finished now, not at the next start."""
        with self._lock:
            busy = frozenset(self._jobs)
        try:
            self._recovered += lifecycle.finish_pending(self.shop, busy)
        except (ShopfloorError, OSError, sqlite3.Error) as exc:
            self.shop.log("recover.skipped", reason=str(exc))

    def _fault_cleared(self) -> None:
        if self._fault_backoff:
            self._fault_backoff = 0.0
            self._said.pop("fault", None)  # the next fault is news again
            self.shop.log("fault.cleared")

    def _fault(self, task_id: str, exc: BaseException) -> None:
        """The machine, not the task: no attempt used; claims pause and recovery retries with
        a growing back-off (never a busy loop) until the fault clears. Faults met while
        the back-off runs (other jobs hitting the same full disk) do not grow it again."""
        error = str(exc) or repr(exc)
        if self._faulted():
            self.shop.log("fault", task=task_id, error=error)
            return
        self._fault_backoff = min(max(self._fault_backoff * 2, FAULT_FIRST), FAULT_MAX)
        self._fault_until = time.monotonic() + self._fault_backoff
        self.shop.log("fault", task=task_id, error=error, retry_in=f"{self._fault_backoff:.0f}s")
        if self._said.get("fault") != error:
            self._said["fault"] = error
            self._notify("fault", task_id=task_id, error=error[:300])
        self._wake.set()

    def _wait_for_jobs(self, deadline: float) -> None:
        with self._lock:
            threads = [job.thread for job in self._jobs.values()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ hotfix lane

    def _hotfix_loop(self) -> None:
        while not self.shop.stopping.is_set():
            self._hotfix_wake.wait()
            self._hotfix_wake.clear()  # before taking the names: a later event wakes us again
            with self._hotfix_guard:
                names, full = self._hotfix_names, self._hotfix_full
                self._hotfix_names, self._hotfix_full = set(), False
            if not self.shop.stopping.is_set():
                self._dispatch_hotfixes(None if full else names)
            with self._hotfix_guard:  # unless more came meanwhile: the next pass is for them
                if not self._hotfix_names and not self._hotfix_full:
                    self._precedence.release(_READING)
            if not self.shop.stopping.is_set():
                self._stop_cancelled()  # a `cancel` only rewrites the file in hotfix/

    def _dispatch_hotfixes(self, names: set[str] | None = None) -> int:
        """Start every queued hotfix now, whatever else is running: of the files `names` of
        hotfix/ (what the watcher saw change: no lane scan per event), or of the whole lane."""
        if self.shop.stopping.is_set():
            return 0
        started = 0
        with self._lock:
            entries = self._read_hotfix_lane(names)
            for entry in entries:
                if entry.header.status == "queued" and entry.id not in self._jobs:
                    started += self._start(Role.HOTFIX, entry)
        return started

    def _read_hotfix_lane(self, names: set[str] | None) -> list[Entry]:
        """The files `names` of hotfix/ (all of it when None), read now; the cached view of
        the lane is brought up to date with them. Under self._lock."""
        board = self.shop.board
        if names is None:
            entries = board.scan([Lane.HOTFIX]).lane(Lane.HOTFIX)
            self._cache[Lane.HOTFIX] = entries
            return entries
        read = {name: board.read_entry(Lane.HOTFIX, name) for name in names}
        view = {e.name: e for e in self._cache.get(Lane.HOTFIX, []) if e.name not in read}
        view.update({name: entry for name, entry in read.items() if entry is not None})
        self._cache[Lane.HOTFIX] = sorted(view.values(), key=lambda e: e.name)
        return [entry for entry in read.values() if entry is not None]

    # ------------------------------------------------------------------ reconcile

    def _stop_cancelled(self) -> None:
        """A run whose task file left its place (a human cancelled or moved it) is stopped,
        and so is a hotfix's whose file no longer says `running` (`cancel` keeps a hotfix in
        hotfix/, awaiting-human).

        Decided on the disk, never on the cached view: a stale cache must not cancel a run
        (a stopped run gets its attempt back, so a false cancel would run an attempt twice).
        Once a job moves its own file on, its run has ended and there is nothing to stop.
        """
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if not job.path.exists():
                if self.shop.stop_task_runs(job.task_id, "task file moved away"):
                    self.shop.log("run.cancelled", task=job.task_id, path=job.path.name)
            elif job.role is Role.HOTFIX and not _says_running(job.path):
                with self._lock:  # that very job: a stop never outlives it (see _job_main)
                    if self._jobs.get(job.task_id) is not job:
                        continue
                    stopped = self.shop.stop_task(job.task_id, "hotfix cancelled")
                if stopped:
                    self.shop.log("run.cancelled", task=job.task_id, path=job.path.name)

    def _recover_stale(self, entries: list[Entry]) -> None:
        """Claims no live job owns (a crash, a fault, a person's edit) are put right; no
        attempt is used for them."""
        with self._lock:
            live = set(self._jobs)
        precedence = self._precedence
        for entry in entries:
            if precedence.held:  # a hotfix starting: the walk over the board waits
                precedence.give_way()
            if self.shop.stopping.is_set():
                return  # the rest is recovered at the next start
            if lifecycle.reconcile_event(entry, entry.id in live) is None:
                continue
            try:
                self._recover_one(entry)
            except (lifecycle.TaskMoved, lifecycle.TransitionRefused):
                continue  # settled meanwhile
            except (ShopfloorError, OSError, sqlite3.Error) as exc:
                self.shop.log("recover.skipped", task=entry.id, reason=str(exc))
                self._fault(entry.id, exc)
                return

    def _recover_one(self, entry: Entry) -> None:
        with self._lock:  # re-checked under the lock: the hotfix thread claims concurrently
            if entry.id in self._jobs:
                return
            event = lifecycle.reconcile_event(entry, live=False)
        if event is None:
            return
        why = "the daemon stopped" if self._starting else "no run of this daemon owns it"
        if event is Event.RECONCILED:
            line = "a person moved or edited it"
        elif entry.lane is Lane.HOTFIX:
            line = f"hotfix run interrupted ({why}); check the working tree before re-filing"
        elif entry.lane is Lane.ACTIVE:
            attempt = pipeline.attempt_of(entry)
            line = f"coder attempt {attempt} interrupted ({why}); no attempt used"
        else:
            line = f"run interrupted ({why}); will run again (no attempt used)"
        self._recovered.append(entry.id)
        lifecycle.reconcile(self.shop, entry, event, line, _interrupted_payload())
        self.shop.log("recover", task=entry.id, lane=entry.lane.value, what=event.value)

    def _land(self, entries: list[Entry]) -> int:
        """Landing; returns how many tasks a `--once` pass's landing moved (they may be work)."""
        if self.shop.config.pipeline.land == "queue":
            if any(e.lane is Lane.REVIEW and e.header.status == Status.LANDING for e in entries):
                if not self.once:  # the queue's own thread: checks take minutes, claims go on
                    self._lander.wake()
                    return 0
                try:  # one pass: land here, so the pass ends with it done
                    out = landing.land(self.shop)
                    return len(out.landed) + len(out.bounced) + len(out.refused)
                except ShopfloorError as exc:
                    self.shop.log("land.error", error=str(exc))
            return 0
        if self.shop.config.pipeline.land not in ("merge", "pr"):
            return 0
        hotfix_waiting = any(
            e.lane is Lane.HOTFIX and e.header.status in ("running", "awaiting-human")
            for e in entries
        )
        # Only done tasks still waiting for their branch: a handful, not the whole lane.
        waiting = [e for e in entries if e.lane is Lane.DONE and e.status == "awaiting-human"]
        if self.shop.config.pipeline.land == "pr" and not self.once:
            # A push and a forge's command are network calls: never on the loop's path.
            self._in_background("pull-requests", lambda: self._land_each(waiting, False))
            return 0
        self._land_each(waiting, hotfix_waiting)
        return 0

    def _land_each(self, entries: list[Entry], hotfix_waiting: bool) -> None:
        for entry in entries:
            if self.shop.stopping.is_set():
                return
            if pipeline.load_state(self.shop, entry.id).get("land") == "pending":
                with contextlib.suppress(ShopfloorError):
                    pipeline.land_pending(self.shop, entry, hotfix_waiting)

    def _in_background(self, name: str, work: Callable[[], None]) -> None:
        """Run `work` on a thread of its own unless the last one still runs (the next pass
        asks again); the board is looked at again when it ends."""
        with self._lock:
            busy = self._background.get(name)
            if busy is not None and busy.is_alive():
                return

            def main() -> None:
                try:
                    work()
                except Exception as exc:  # a thread's death must not go unsaid
                    self.shop.log("background.error", name=name, error=repr(exc))
                finally:
                    self._landed()

            thread = threading.Thread(target=main, name=name, daemon=True)
            self._background[name] = thread
            thread.start()

    def _landed(self) -> None:
        """The queue thread moved tasks: look at where they went (and what is claimable)."""
        for lane in (Lane.REVIEW, Lane.BACKLOG, Lane.DONE, Lane.FAILED):
            self.mark_dirty(lane)

    def _tidy_worktrees(self) -> None:
        with self._lock:
            working = {
                e.id for lane in (Lane.ACTIVE, Lane.REVIEW) for e in self._cache.get(lane, [])
            }
            working |= set(self._jobs)
        removed = pipeline.tidy_worktrees(self.shop, working)
        if removed:
            self.shop.log("worktrees.removed", tasks=",".join(removed))

    def recover(self) -> None:
        """At start: kill agent process groups a dead daemon left, close their run records."""
        journal = self.shop.journal
        stale = {run["id"]: run for run in journal.runs(state="running")}
        killed = []
        orphans = runner.find_orphans(
            self.shop.repo_id,
            [runner.StaleRun(r["id"], r["pid"], r["proc_started"]) for r in stale.values()],
        )
        for proc in orphans:
            with contextlib.suppress(Exception):
                runner.kill_group(os.getpgid(proc.pid), grace=2.0)
                killed.append(proc.pid)
        for run_id in stale:
            journal.update_run(
                run_id, state="interrupted", ended_at=task.utc_now(), outcome="stopped"
            )
        self._recovered += lifecycle.finish_pending(self.shop)  # half-done moves, completed
        pipeline.import_legacy_state(self.shop)
        # The hotfix lane is live from here, whatever the board's size: its thread reads
        # hotfix/ alone while the scan below reads the other lanes (a claim in flight is
        # never taken for a stale one: see _recover_one).
        self._hotfix_dirty(None)
        self.tick(full=True)  # fixes the board: stale claims, statuses out of place
        self._starting = False
        summary = {
            "runs_interrupted": len(stale),
            "orphans_killed": len(killed),
            "tasks_recovered": sorted(set(self._recovered)),
        }
        event = "daemon_recovered" if (stale or self._recovered) else "daemon_started"
        self._notify(event, pid=os.getpid(), **summary)
        if event == "daemon_recovered":
            self.shop.log("daemon.recovered", **{k: str(v) for k, v in summary.items()})
        self._after_ready()

    def _after_ready(self) -> None:
        """Start-up's tidying, once the daemon is ready: nothing here decides a claim, and
        each reads a whole folder (done/ holds 50,000 files on a large board), so none of it
        delays `daemon_started` (issue 14: a restart in proportion to what changed)."""
        self.status.board_ready()  # its first listing: stats every file of every lane
        self.shop.board.clean_temps()  # our own temp files a killed writer left behind
        self._tidy_worktrees()


__all__ = ["Daemon", "DaemonLockedError", "daemon_lock", "log_line"]
