"""The floor for hotfix reaction on this machine: watchdog sees a file closed, a child is spawned.

The same writer as bench_hotfix.py (`open(path, "x")`, write, close), the same kernel events
(watchdog 7, the daemon's event_filter), the same child (`date +%s.%N`: its first instruction
prints the time). Nothing of Shopfloor: no read of the file, no claim, no journal.

    .venv/bin/python benchmarks/hotfix_floor.py [--samples 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from watchdog.events import FileClosedEvent, FileCreatedEvent, FileSystemEventHandler
from watchdog.observers import Observer


class Spawn(FileSystemEventHandler):
    def on_closed(self, event: object) -> None:
        path = Path(str(getattr(event, "src_path", "")))
        if path.suffix != ".md":
            return  # the .out files the children write
        with open(path.with_suffix(".out"), "wb") as out:
            subprocess.Popen(["date", "+%s.%N"], stdout=out)


def measure(folder: Path, samples: int) -> list[float]:
    """Milliseconds from just before each file is created to the child's printed time."""
    observer = Observer()
    observer.schedule(Spawn(), str(folder), event_filter=[FileCreatedEvent, FileClosedEvent])
    observer.start()
    reactions = []
    try:
        for n in range(samples):
            created = time.time()
            with open(folder / f"fire-{n}.md", "x") as fh:
                fh.write("---\nid: HOTFIX-fire\n---\n")
            out = folder / f"fire-{n}.out"
            while not (out.exists() and out.read_text().strip()):
                time.sleep(0.001)
            reactions.append((float(out.read_text()) - created) * 1000)
            time.sleep(0.05)
    finally:
        observer.stop()
        observer.join()
    return reactions


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    with tempfile.TemporaryDirectory() as tmp:
        values = measure(Path(tmp), parser.parse_args().samples)
    print(f"floor p50={statistics.median(values):.2f} ms max={max(values):.2f} ms")
    sys.exit(0)
