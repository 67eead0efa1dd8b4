"""Record what a real agent CLI prints, for the tier (a) parser and classifier tests.

    python -m tests.clis.record CLI [CASE ...]

Each case runs the pinned CLI through Shopfloor (tests/agents/harness.py) against the scripted
model server and saves `tests/agents/recorded/<cli>/<case>.stdout|.stderr|.json` — the last
holding the exit code and the outcome the case must classify as. The recordings are real
output; rerun this after bumping a pin in `shopfloor/agents/versions.py`.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.agents.harness import FIX, run_cli
from tests.fakes.model_server import Script, result_block

RECORDED = Path(__file__).resolve().parents[1] / "agents" / "recorded"


@dataclass(frozen=True)
class Case:
    script: Script
    expect: str
    role: str = "hotfix"
    agent: tuple[tuple[str, str], ...] = ()


CASES: dict[str, Case] = {
    "ok": Case(FIX, "ok"),
    "qa-verdict": Case(Script(final=result_block("ok", "meets spec", verdict="pass")), "ok", "qa"),
    "auth-401": Case(Script(fail="401"), "auth-error"),
    "rate-429": Case(Script(fail="429"), "rate-limited"),
    "server-500": Case(Script(fail="500"), "agent-error"),
}


def record(cli: str, name: str, case: Case) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        done = run_cli(cli, Path(tmp), case.script, role=case.role, **dict(case.agent))
        folder = RECORDED / cli
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.stdout").write_text(_scrub(done.stdout, tmp))
        (folder / f"{name}.stderr").write_text(_scrub(done.stderr, tmp)[-20000:])
        meta = {
            "exit_code": _exit_code(done.run.run_dir),
            "expect": case.expect,
            "role": case.role,
            "observed": done.run.outcome.value,
        }
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        return (
            f"{cli}/{name}: exit {meta['exit_code']}, {done.run.outcome.value} "
            f"(expected {case.expect})"
        )


def _exit_code(run_dir: Path) -> int | None:
    from shopfloor.journal import Journal

    root = run_dir.parents[2]
    rows = [r for r in Journal.for_project(root).runs() if r["id"] == run_dir.name]
    return rows[0]["exit_code"] if rows else None


def _scrub(text: str, tmp: str) -> str:
    """Temp paths vary per run; keep recordings stable and free of this machine's names."""
    repo = str(Path(__file__).resolve().parents[2])
    text = text.replace(str(Path(tmp).resolve()), "/tmp/rec").replace(tmp, "/tmp/rec")
    return text.replace(repo, "/repo")


def cases_for(cli: str) -> dict[str, Case]:
    """The shared cases plus the CLI's own (`EXTRA_CASES` in tests/clis/<cli>.py)."""
    module = importlib.import_module(f"tests.clis.{cli}")
    return {**CASES, **getattr(module, "EXTRA_CASES", {})}


def main(argv: list[str]) -> int:
    cli = argv[0]
    cases = cases_for(cli)
    for name in argv[1:] or list(cases):
        print(record(cli, name, cases[name]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
