"""The backend registry under concurrency: it is published only once it is complete.

A fresh daemon's first jobs (and `doctor`'s threads) load the registry at the same moment. It
used to be filled in place, so a thread could find it non-empty while another was still
importing the backends and fail with "unknown agent backend 'claude' (available: command)".
Each trial is a fresh interpreter: the registry loads once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shopfloor import agents

SRC = str(Path(agents.__file__).resolve().parents[2])

#: Many threads ask for every built-in backend, arriving a millisecond apart over the time
#: the first one takes to load them all (as a daemon's jobs do); any failure is printed.
_STAMPEDE = """
import threading
import time
from shopfloor import agents

names = list(agents._BUILTINS)
barrier = threading.Barrier(THREADS)
failures = []

def ask(i):
    barrier.wait()
    time.sleep(i * 0.001)
    name = names[i % len(names)]
    try:
        backend = agents.get(name)
        assert backend.name == name, (name, backend.name)
    except Exception as exc:
        failures.append(f"{name}: {exc}")

threads = [threading.Thread(target=ask, args=(i,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(failures) or "ok")
"""


def run_fresh(script: str) -> str:
    """`script`'s output, run by a fresh interpreter that imports this checkout's shopfloor."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return proc.stdout.strip()


def stampede(threads: int = 40) -> str:
    return run_fresh(_STAMPEDE.replace("THREADS", str(threads)))


def test_many_threads_of_a_fresh_process_all_find_every_builtin_backend() -> None:
    failed = [out for out in (stampede() for _ in range(30)) if out != "ok"]
    assert not failed, f"{len(failed)} of 30 fresh processes failed:\n" + "\n".join(failed[:3])


def test_a_backend_registered_directly_is_kept_before_and_after_the_first_load() -> None:
    script = """
from shopfloor import agents

class Early:
    name = "early"

class Late:
    name = "late"

agents.register("early", Early)  # before anything loaded the built-ins
assert agents.get("early").name == "early" and agents.get("claude").name == "claude"
agents.register("late", Late)  # after: published as a new, complete table
assert {"early", "late", "claude", "command"} <= set(agents.available())
print("ok")
"""
    assert run_fresh(script) == "ok"
