"""Run folders (.shopfloor/runs/<run-id>/): what each holds and how to read them back.

Each run folder has meta.json (task, role, agent, start), prompt.md, stdout.log, stderr.log
and result.json; a checks run has check-<n>/ folders and checks.json. The folders alone are
enough to find a task's runs, so `shopfloor logs` works without the journal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopfloor import _fs
from shopfloor.paths import StatePaths
from shopfloor.task import utc_now

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    task_id: str
    role: str
    agent: str
    started: str
    run_dir: Path

    @property
    def number(self) -> int:
        digits = self.run_id.removeprefix("R-")
        return int(digits) if digits.isdigit() else 0


def runs_dir(root: Path) -> Path:
    return StatePaths(root).runs_dir


def write_meta(run_dir: Path, task_id: str, role: str, agent: str = "") -> None:
    meta = {"task_id": task_id, "role": role, "agent": agent, "started": utc_now()}
    _fs.atomic_write(run_dir / "meta.json", json.dumps(meta), durable=False)


def _read_meta(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "meta.json").read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def runs_for(root: Path, task_id: str) -> list[RunInfo]:
    """A task's runs, oldest first."""
    found = []
    base = runs_dir(root)
    if not base.is_dir():
        return []
    for run_dir in base.iterdir():
        meta = _read_meta(run_dir)
        if meta.get("task_id") == task_id:
            found.append(
                RunInfo(
                    run_dir.name,
                    task_id,
                    str(meta.get("role", "?")),
                    str(meta.get("agent", "")),
                    str(meta.get("started", "")),
                    run_dir,
                )
            )
    return sorted(found, key=lambda r: r.number)


def header(run: RunInfo) -> str:
    agent = f" {run.agent}" if run.agent else ""
    return f"==> {run.run_id} {run.role}{agent} {run.started} ({run.run_dir})"


def log_files(run: RunInfo) -> list[Path]:
    direct = [run.run_dir / "stdout.log", run.run_dir / "stderr.log"]
    checks = sorted(run.run_dir.glob("check-*/stdout.log")) + sorted(
        run.run_dir.glob("check-*/stderr.log")
    )
    return [p for p in (*direct, *checks) if p.is_file()]


def read_output(run: RunInfo) -> Iterator[str]:
    """The run's logs in chunks (bounded memory whatever their size)."""
    for path in log_files(run):
        if path.stat().st_size == 0:
            continue
        yield f"--- {path.relative_to(run.run_dir)}\n"
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk.decode("utf-8", "replace")


def follow(
    run: RunInfo, emit: Callable[[str], None], stop: Callable[[], bool], poll: float = 0.25
) -> None:
    """Print what the newest run appends to stdout.log until it has a result or `stop()`."""
    path = run.run_dir / "stdout.log"
    offset = path.stat().st_size if path.exists() else 0
    while not stop():
        if path.exists() and path.stat().st_size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(_CHUNK)
            offset += len(data)
            emit(data.decode("utf-8", "replace").rstrip("\n"))
            continue
        if (run.run_dir / "result.json").exists() or (run.run_dir / "checks.json").exists():
            return
        time.sleep(poll)
