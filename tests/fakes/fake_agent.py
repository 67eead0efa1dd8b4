"""A fake agent for the runner tests: one behaviour per mode, stdlib only, run as a script.

  python fake_agent.py MODE [ARGS...]

success              write {"outcome": "ok", ...} to $SHOPFLOOR_RESULT_FILE, print, exit 0
failure              print to stderr, exit 3
no-result            print, exit 0 without writing a result
hang                 sleep forever
stall                print one line, then sleep forever
tick N SECONDS       print a line every SECONDS, N times, then exit 0
flood N              write N bytes to stdout as fast as possible, the last line is "END"
crash                kill itself with SIGSEGV
ignore-term          ignore SIGTERM, say so on stdout, sleep forever
grandchild PIDFILE [hang]
                     start a grandchild that inherits stdout and sleeps forever, write its
                     pid to PIDFILE, then exit 0 (or, with "hang", sleep forever too)
env PATH             dump the environment as JSON to PATH
stdin                copy stdin to stdout
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SLEEPER = "import time\nwhile True:\n    time.sleep(3600)\n"


def say(text: str, stream: str = "stdout") -> None:
    print(text, file=sys.stdout if stream == "stdout" else sys.stderr, flush=True)


def sleep_forever() -> int:
    while True:
        time.sleep(3600)


def write_atomic(path: Path, text: str) -> None:
    """The test polls for the file: it must never see it half-written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def success(args: list[str]) -> int:
    summary = {"outcome": "ok", "summary": "fake agent did its job"}
    Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(json.dumps(summary))
    say(f"fake agent pid={os.getpid()} done")
    return 0


def failure(args: list[str]) -> int:
    say("fake agent: something went wrong", "stderr")
    return 3


def no_result(args: list[str]) -> int:
    say("fake agent: finished, but wrote no result")
    return 0


def hang(args: list[str]) -> int:
    return sleep_forever()


def stall(args: list[str]) -> int:
    say("fake agent: thinking...")
    return sleep_forever()


def tick(args: list[str]) -> int:
    count, pause = int(args[0]), float(args[1])
    for number in range(count):
        say(f"tick {number}")
        time.sleep(pause)
    return 0


def flood(args: list[str]) -> int:
    remaining = int(args[0]) - len(b"END\n")
    line = b"x" * 1023 + b"\n"
    block = line * 1024  # 1 MiB
    out = sys.stdout.buffer
    while remaining >= len(block):
        out.write(block)
        remaining -= len(block)
    out.write(b"y" * remaining + b"END\n")
    out.flush()
    return 0


def crash(args: list[str]) -> int:
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGSEGV)
    return sleep_forever()


def ignore_term(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    say("ignoring SIGTERM")
    return sleep_forever()


def grandchild(args: list[str]) -> int:
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])  # inherits stdout and stderr
    write_atomic(Path(args[0]), str(child.pid))
    say(f"started grandchild {child.pid}")
    child.returncode = 0  # we leave it running on purpose; no "still running" warning
    if args[1:] == ["hang"]:
        return sleep_forever()
    return 0


def env(args: list[str]) -> int:
    Path(args[0]).write_text(json.dumps(dict(os.environ)))
    return 0


def stdin(args: list[str]) -> int:
    sys.stdout.buffer.write(sys.stdin.buffer.read())
    return 0


MODES: dict[str, Callable[[list[str]], int]] = {
    "success": success,
    "failure": failure,
    "no-result": no_result,
    "hang": hang,
    "stall": stall,
    "tick": tick,
    "flood": flood,
    "crash": crash,
    "ignore-term": ignore_term,
    "grandchild": grandchild,
    "env": env,
    "stdin": stdin,
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in MODES:
        say(f"usage: fake_agent.py MODE (available: {', '.join(MODES)})", "stderr")
        return 2
    return MODES[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
