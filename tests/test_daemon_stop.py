"""Stopping is bounded: SIGTERM ends a real daemon within its grace period, every time.

A real `shopfloor run` is started and SIGTERMed over and over (SHOPFLOOR_STOP_ROUNDS in
all): idle, at a random moment of its start-up, in the middle of a burst of inbox and hotfix
files with agents running, and with an agent that ignores SIGTERM (and a child of its own
that does too). Each stop must end the process within the grace plus the daemon's slack, by
the cooperative path (never the backstop's exit status), leaving no agent behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shopfloor import actions, scheduler, stopping, task
from shopfloor.board import Board
from shopfloor.project import locate
from tests.conftest import wait_until
from tests.invariants import kill_leftovers, leftover_agents
from tests.support import agent_command, make_project

GRACE = 1.0
#: The daemon aims to be gone by the grace + its slack (scheduler.STOP_SLACK); its backstop
#: ends it at most stopping.BACKSTOP later. A stop past that, or ended by the backstop (its
#: exit status), fails; half a second more is for a machine loaded by other work.
BOUND = GRACE + scheduler.STOP_SLACK + stopping.BACKSTOP + 0.5
#: On a machine loaded beyond its cores (other test suites), a process gets a fraction of a
#: core and even an idle stop takes seconds of wall time (4.7 s was seen at load 39 on 2 cores).
#: The bound then grows by this much per unit of load per core above 1, read at each stop:
#: still far below the minute-long hang this test exists for.
LOADED_ALLOWANCE = 0.5


def bound_now() -> float:
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return BOUND + LOADED_ALLOWANCE * max(0.0, per_core - 1.0)


#: 120 by default (about 45 s on an idle 2-core machine, three at a time); bench_stop.py
#: does 200 in a burst. Raise it to hunt a rare hang.
ROUNDS = int(os.environ.get("SHOPFLOOR_STOP_ROUNDS", "120"))
#: How the rounds are shared: idle, during start-up, in a burst, with a stubborn agent.
SHARES = {"idle": 0.3, "starting": 0.35, "burst": 0.27, "stubborn": 0.08}
_CLEAN = (0, -signal.SIGTERM)  # a SIGTERM before the handler is installed: the default action


class Daemon:
    """One `shopfloor run` of a project, its stderr kept in a file."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root, self.log = root, log
        self.mark = log.stat().st_size if log.exists() else 0
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shopfloor", "-C", str(root), "run"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def said(self, word: str) -> bool:
        with self.log.open("rb") as fh:
            fh.seek(self.mark)
            return word.encode() in fh.read()

    def ready(self) -> bool:
        return self.said("notify.daemon_started") or self.said("notify.daemon_recovered")

    def sigterm(self) -> tuple[float, int | None]:
        """SIGTERM; by how much the exit came before the bound (negative: late) and the exit
        status (None: still alive)."""
        bound = bound_now()
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(bound + 5)
        except subprocess.TimeoutExpired:
            code = None
            self.proc.kill()
            self.proc.wait(10)
        return time.monotonic() - began - bound, code


def project(tmp: Path, name: str, command: list[str]) -> Path:
    folder = tmp / name
    folder.mkdir()
    return make_project(
        folder,
        agents={"a": {"backend": "command", "command": command}},
        pipeline={"stop_grace": GRACE, "concurrency": {"pm": 2, "coder": 2, "qa": 1}},
    )


def hotfix_file(root: Path, n: int) -> None:
    header = task.Header(
        id=f"HOTFIX-burst-{n}", title=f"burst {n}", type="hotfix", priority="P0", max_attempts=1
    )
    text = task.render_new(header, sections={"Request": "prod is down"})
    (root / "tasks" / "hotfix" / f"HOTFIX-burst-{n}.md").write_text(text)


def burst(root: Path, stop: threading.Event) -> None:
    """Inbox requests and a few hotfixes, as fast as they can be written, until told."""
    inbox = root / "tasks" / "inbox"
    for n in range(300):
        if stop.is_set():
            return
        if n % 60 == 0:
            hotfix_file(root, n)
        header = task.Header(id=f"T-{n + 1:04d}", title=f"burst {n}", max_attempts=3)
        (inbox / f"T-{n + 1:04d}-burst.md").write_text(task.render_new(header, sections={}))


def clear_burst(root: Path) -> None:
    for lane in ("inbox", "hotfix", "backlog", "failed", "invalid"):
        for path in (root / "tasks" / lane).iterdir():
            if path.is_file():
                path.unlink()


def check(results: list[tuple[str, float, int | None]], what: str) -> None:
    """Each result: (kind, seconds past the bound (negative: in time), exit status)."""
    slow = [r for r in results if r[2] is None or r[1] > 0]
    unclean = [r for r in results if r[2] not in (*_CLEAN, None)]
    times = sorted(r[1] for r in results)
    summary = (
        f"{what}: {len(results)} stops, closest {times[-1]:+.2f}s to the bound" if times else what
    )
    assert not slow, f"{summary}; late (s past the bound {BOUND:.2f}s + load): {slow[:5]}"
    backstop = f"the backstop exits {stopping.OVERDUE_EXIT}"
    assert not unclean, f"{summary}; not a clean exit ({backstop}): {unclean[:5]}"


def no_agent_left(root: Path) -> None:
    """The daemon SIGKILLs what its grace did not end as it exits: those die a moment later
    (the kernel's work, not the daemon's), so a few seconds are allowed; a hung agent nobody
    killed would live for an hour."""
    wait_until(lambda: not leftover_agents(root), 5, "every agent process of the run gone")


def rounds(kind: str) -> int:
    return max(1, round(ROUNDS * SHARES[kind]))


Round = Callable[[Path], tuple[float, int | None]]


def run_rounds(kind: str, root: Path, n: int, one: Round, out: list[str]) -> None:
    """`n` rounds of one kind on one project; failures are collected, not raised (a thread)."""
    results = []
    began = time.monotonic()
    try:
        for _ in range(n):
            took, code = one(root)
            results.append((kind, took, code))
        check(results, kind)
        closest = max(r[1] for r in results)
        took = time.monotonic() - began
        out.append(f"{kind}: {n} stops in {took:.0f}s, closest {closest:+.2f}s to the bound")
    except Exception as exc:  # reported by the test's main thread
        out.append(f"FAILED {kind}: {exc}")
    finally:
        kill_leftovers(root)


@pytest.mark.timeout(600)  # a hundred and more start-ups, on a machine other work may load
def test_sigterm_always_ends_the_daemon_within_its_grace(tmp_path: Path) -> None:
    rng = random.Random(14)

    def idle(root: Path) -> tuple[float, int | None]:
        daemon = Daemon(root, root.parent / "daemon.log")
        wait_until(daemon.ready, 30, "the daemon started")
        return daemon.sigterm()

    def starting(root: Path) -> tuple[float, int | None]:
        daemon = Daemon(root, root.parent / "daemon.log")
        if rng.random() < 0.5:  # a random moment of the imports, the lock, the recovery
            time.sleep(rng.uniform(0.0, 0.8))
        else:  # a random moment once the daemon holds its lock: recovery, first scans
            wait_until(lambda: daemon.said("daemon.start"), 30, "the daemon holds its lock")
            time.sleep(rng.uniform(0.0, 0.1))
        return daemon.sigterm()

    def in_burst(root: Path) -> tuple[float, int | None]:
        clear_burst(root)
        daemon = Daemon(root, root.parent / "daemon.log")
        wait_until(daemon.ready, 30, "the daemon started")
        done = threading.Event()
        writer = threading.Thread(target=burst, args=(root, done))
        writer.start()
        time.sleep(rng.uniform(0.05, 0.5))
        try:
            return daemon.sigterm()
        finally:
            done.set()
            writer.join()
            no_agent_left(root)

    def stubborn(root: Path) -> tuple[float, int | None]:
        daemon = Daemon(root, root.parent / "daemon.log")
        wait_until(lambda: daemon.said("run.start"), 30, "the stubborn agent started")
        time.sleep(rng.uniform(0.0, 0.3))
        try:
            return daemon.sigterm()
        finally:
            no_agent_left(root)

    hang = agent_command("*:hang")
    stubborn_root = project(tmp_path, "stubborn", agent_command("*:stubborn"))
    actions.create_task(Board(stubborn_root), actions.NewTask("stubborn", backlog=True))
    # Three at a time, each kind on its own project: 200 start-ups take a while one by one.
    # The burst's rounds take longest (~35 s), so they start at once; the stubborn ones
    # (~25 s, each waits out the grace) take the place of the idle ones when those end.
    plan: list[tuple[str, Path, int, Round]] = [
        ("burst", project(tmp_path, "burst", hang), rounds("burst"), in_burst),
        ("idle", project(tmp_path, "idle", hang), rounds("idle"), idle),
        ("starting", project(tmp_path, "starting", hang), rounds("starting"), starting),
        ("stubborn", stubborn_root, rounds("stubborn"), stubborn),
    ]
    out: list[str] = []
    threads = [threading.Thread(target=run_rounds, args=(*job, out)) for job in plan]
    for thread in threads[:3]:
        thread.start()
    threads[1].join()
    threads[3].start()
    for thread in threads:
        thread.join()
    print("\n".join(out))
    assert not [line for line in out if line.startswith("FAILED")], out


@pytest.mark.parametrize("held", ["wake event", "shop lock"])
def test_the_signal_handler_takes_no_lock(tmp_path: Path, held: str) -> None:
    """A SIGTERM that lands while another thread holds a lock the old handler took (the wake
    Event's inner lock, the shop's lock) still stops the daemon at once."""
    root = make_project(tmp_path)
    daemon = scheduler.Daemon(root, locate(root).config)
    lock = daemon._wake._cond if held == "wake event" else daemon.shop._lock
    daemon._signals.install()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holding.wait(5)
        began = time.monotonic()
        signal.raise_signal(signal.SIGTERM)  # the handler runs here, in this thread
        assert time.monotonic() - began < 0.5
        release.set()
        wait_until(daemon.shop.stopping.is_set, 5, "the stop thread stopped the daemon")
    finally:
        release.set()
        holder.join()
        daemon._signals.uninstall()
        daemon.shop.journal.close()
