"""Tier (b): what each real, pinned CLI holds a PM to, and opencode runs side by side (issue 9).

Every PM script here does the same four things a PM must not all get away with: edit its task
file (allowed), write its result file (allowed), create a new file in the live tree and edit
another file there (both refused by the CLI itself). Paths are odd on purpose where the CLI's
rule syntax is a glob or a regex: a comma, brackets, a star, braces.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from shopfloor import agents
from shopfloor.agents import Outcome
from shopfloor.shop import AgentRun
from tests.agents.harness import CliRun, project_for, run_cli, run_role
from tests.fakes.model_server import Call, ModelServer, Script, Write, result_block

pytestmark = [pytest.mark.agentcli, pytest.mark.timeout(600)]

ORIGINAL = "def answer():\n    return 42\n"
RESULT = json.dumps({"outcome": "ok", "summary": "specced"})
#: A folder name full of what glob and regex rule syntaxes treat specially.
ODD = "odd,dir(x)[y]*{a,b}+$^#!"


def assert_confined(done: CliRun) -> None:
    """The task file got its spec, the result file was written, nothing else was touched,
    and the run says it was refused something."""
    assert "## Spec" in done.entry.path.read_text(), done.stdout + done.stderr
    assert (done.run.run_dir / "result.json").read_text() == RESULT
    assert (done.root / "app.py").read_text() == ORIGINAL
    assert not (done.root / "stray.txt").exists()
    assert done.run.outcome is Outcome.PERMISSION_DENIED, done.stdout + done.stderr


def test_the_claude_pm_may_edit_only_its_task_file(tmp_path: Path) -> None:
    spec = (("old_string", "## Request"), ("new_string", "## Spec\nReturn 43.\n\n## Request"))
    script = Script(
        steps=(
            Call("Read", (("file_path", "{task_file}"),)),
            Call("Edit", (("file_path", "{task_file}"), *spec)),
            Write("{workdir}/stray.txt", "stray\n"),
            Call("Read", (("file_path", "{workdir}/app.py"),)),
            Call(
                "Edit",
                (("file_path", "{workdir}/app.py"), ("old_string", "42"), ("new_string", "0")),
            ),
            Write("{result_file}", RESULT),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("claude", tmp_path / ODD, script, role="pm")
    assert_confined(done)
    [result] = [json.loads(line) for line in done.stdout.splitlines() if '"type":"result"' in line]
    denied = {
        (d["tool_name"], Path(d["tool_input"]["file_path"]).name)
        for d in result["permission_denials"]
    }
    assert denied == {("Write", "stray.txt"), ("Edit", "app.py")}
    assert "Bash" not in {t for r in done.server.requests for t in r.tools}


def test_the_gemini_pm_may_edit_only_its_task_file(tmp_path: Path) -> None:
    def replace(path: str, old: str, new: str) -> Call:
        args = (("file_path", path), ("old_string", old), ("new_string", new))
        return Call("replace", (*args, ("instruction", "edit")))

    script = Script(
        steps=(
            Call("read_file", (("file_path", "{task_file}"),)),
            replace("{task_file}", "## Request", "## Spec\nReturn 43.\n\n## Request"),
            Call("write_file", (("file_path", "{workdir}/stray.txt"), ("content", "stray\n"))),
            replace("{workdir}/app.py", "return 42", "return 0"),
            Call("run_shell_command", (("command", "echo ran > {workdir}/stray.txt"),)),
            Call("write_file", (("file_path", "{result_file}"), ("content", RESULT))),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("gemini", tmp_path / ODD, script, role="pm")
    assert_confined(done)
    error = done.run.error or ""
    assert "gemini was refused 2 tool call(s)" in error and "only its task file" in error
    offered = {t for r in done.server.requests for t in r.tools}
    assert {"replace", "write_file"} <= offered and "run_shell_command" not in offered


def test_the_qwen_pm_may_edit_only_its_task_file(tmp_path: Path) -> None:
    spec = (("old_string", "## Request"), ("new_string", "## Spec\nReturn 43.\n\n## Request"))
    script = Script(
        steps=(
            Call("read_file", (("file_path", "{task_file}"),)),
            Call("edit", (("file_path", "{task_file}"), *spec)),
            Call("write_file", (("file_path", "{workdir}/stray.txt"), ("content", "stray\n"))),
            Call("read_file", (("file_path", "{workdir}/app.py"),)),
            Call(
                "edit",
                (("file_path", "{workdir}/app.py"), ("old_string", "42"), ("new_string", "0")),
            ),
            Call("write_file", (("file_path", "{result_file}"), ("content", RESULT))),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("qwen", tmp_path / ODD, script, role="pm")
    assert_confined(done)
    assert "qwen was denied 2 tool use(s): edit, write_file" in (done.run.error or "")


def test_the_pi_pm_may_edit_only_its_task_file(tmp_path: Path) -> None:
    script = Script(
        steps=(
            Call("read", (("path", "{task_file}"),)),
            Call(
                "edit",
                (
                    ("path", "{task_file}"),
                    ("oldText", "## Request"),
                    ("newText", "## Spec\nReturn 43.\n\n## Request"),
                ),
            ),
            Call("write", (("path", "{workdir}/stray.txt"), ("content", "stray\n"))),
            Call(
                "edit",
                (("path", "{workdir}/app.py"), ("oldText", "return 42"), ("newText", "return 0")),
            ),
            Call("write", (("path", "{workdir}/tasks/../stray.txt"), ("content", "stray\n"))),
            Call("write", (("path", "{result_file}"), ("content", RESULT))),
        ),
        final=result_block("ok", "specced"),
    )
    done = run_cli("pi", tmp_path / ODD, script, role="pm")
    assert_confined(done)
    assert "pi was refused 3 tool use(s) by Shopfloor's guard" in (done.run.error or "")


# ---------------------------------------------------------------------------- opencode


def test_opencode_runs_at_once_each_keep_their_own_database(tmp_path: Path) -> None:
    """Two runs sharing a HOME, three times over: all succeed, and no run touched the
    database in the shared data folder (each has its own in its run folder)."""
    agents.available()  # the backend registry, loaded before the threads race to load it
    script = Script(steps=(Write("{workdir}/app.py", ORIGINAL),), final=result_block("ok", "done"))
    with ModelServer(script) as server:
        root = project_for("opencode", tmp_path, server.url)
        for _ in range(3):
            runs = _at_once(root, 2)
            for run in runs:
                stderr = (run.run_dir / "stderr.log").read_text(errors="replace")
                assert run.outcome is Outcome.OK, stderr[-3000:]
                assert (run.run_dir / "opencode.db").is_file()
    shared = tmp_path / "cli-home" / ".local" / "share" / "opencode"
    assert not list(shared.glob("opencode*.db")), sorted(p.name for p in shared.iterdir())


def _at_once(root: Path, count: int) -> list[AgentRun]:
    runs: list[AgentRun | BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one() -> None:
        start.wait()
        try:
            run: AgentRun | BaseException = run_role(root, "hotfix", root)[0]
        except BaseException as exc:  # reported below, not lost in the thread
            run = exc
        with lock:
            runs.append(run)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(runs) == count, "a run never finished"
    for run in runs:
        if isinstance(run, BaseException):
            raise run
    return [r for r in runs if isinstance(r, AgentRun)]
