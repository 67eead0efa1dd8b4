"""What each backend asks its CLI to hold the PM and QA to, and the per-run state it gives
opencode (issue 9). The live proofs are in test_confinement_live.py; these pin the exact
arguments, rules and files, with the paths a person's repository can really have."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import Outcome, RunContext
from shopfloor.agents.claude import ClaudeBackend
from shopfloor.agents.gemini import GeminiBackend
from shopfloor.agents.opencode import OpencodeBackend
from shopfloor.agents.pi import DENIED_MARK, PiBackend
from shopfloor.agents.qwen import QwenBackend
from tests.agents.contexts import run_context

#: A repository path with what glob, regex, TOML and comma-separated flags treat specially.
ODD = "my repo, v2 (old) [x]*?{a,b}+$^#!\\q"


def _ctx(tmp: Path, role: str, backend: str, **agent: Any) -> RunContext:
    pm = "You are the **PM**"
    return run_context(backend, role, tmp / ODD, pm, run_id="R-7", lane="inbox", **agent)


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


# ---------------------------------------------------------------------------- claude


def test_the_claude_pm_is_allowed_exactly_its_two_files(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pm", "claude")
    argv = ClaudeBackend().arguments(ctx, [])
    assert _after(argv, "--permission-mode") == "default"  # anything unlisted is refused
    assert _after(argv, "--allowedTools") == "Read,Glob,Grep,LS"
    assert _after(argv, "--disallowedTools") == "Bash"
    allow = json.loads(_after(argv, "--settings"))["permissions"]["allow"]
    assert len(allow) == 2 and all(rule.startswith("Edit(//") for rule in allow)
    # Each rule is a gitignore-style pattern for one absolute path: its glob characters are
    # escaped, so it matches that path and nothing else.
    unescaped = [re.sub(r"\\(.)", r"\1", rule[6:-1]) for rule in allow]
    assert unescaped == [str(ctx.task_file), str(ctx.result_file)]
    assert "\\[x\\]\\*\\?{a,b}+$^\\#\\!\\\\q" in allow[0]


@pytest.mark.parametrize("role", ["coder", "hotfix", "qa"])
def test_the_other_claude_roles_keep_their_permission_modes(tmp_path: Path, role: str) -> None:
    argv = ClaudeBackend().arguments(_ctx(tmp_path, role, "claude"), [])
    assert "--settings" not in argv
    if role == "qa":
        assert _after(argv, "--permission-mode") == "default"
        assert set(_after(argv, "--disallowedTools").split(",")) >= {"Bash", "Edit", "Write"}
    else:
        assert _after(argv, "--permission-mode") == "acceptEdits"


# ---------------------------------------------------------------------------- gemini


def _stable_args(args: dict[str, str]) -> str:
    """gemini-cli's `stableStringify` of a tool call's arguments: sorted keys, each top-level
    pair between NUL characters (what a policy's argsPattern is tested against)."""
    pairs = [
        f"\0{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}\0" for k, v in sorted(args.items())
    ]
    return "{" + ",".join(pairs) + "}"


def test_the_gemini_pm_policy_opens_its_two_files_and_nothing_else(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pm", "gemini")
    argv = GeminiBackend().arguments(ctx, [])
    assert _after(argv, "--approval-mode") == "default"
    [flag] = [a for a in argv if a.startswith("--policy=")]
    where = flag.removeprefix("--policy=")
    assert "," not in where  # --policy splits its value at commas: relative to the workdir
    assert (ctx.workdir / where).resolve() == ctx.prompt_file.parent / "gemini-pm-policy.toml"
    rules = tomllib.loads((ctx.workdir / where).read_text())["rule"]
    allows = [r for r in rules if r["decision"] == "allow"]
    assert [r["toolName"] for r in allows] == [["write_file", "replace"]] * 2
    assert all(r["priority"] == 999 for r in allows)
    denies = {tuple(r["toolName"]): r["priority"] for r in rules if r["decision"] == "deny"}
    assert denies == {("write_file", "replace"): 998, ("run_shell_command",): 998}

    def allowed(path: Path | str) -> bool:
        stable = _stable_args({"file_path": str(path), "content": "x"})
        return any(re.search(r["argsPattern"], stable) for r in allows)

    assert allowed(ctx.task_file) and allowed(ctx.result_file)
    for other in (ctx.workdir / "app.py", f"{ctx.task_file}.bak", ctx.task_file.parent / "T-2.md"):
        assert not allowed(other), other


def test_a_gemini_policy_path_without_a_comma_stays_absolute(tmp_path: Path) -> None:
    ctx = run_context("gemini", "pm", tmp_path, "p")
    argv = GeminiBackend().arguments(ctx, [])
    assert f"--policy={ctx.prompt_file.parent / 'gemini-pm-policy.toml'}" in argv


def test_only_the_gemini_pm_gets_a_policy(tmp_path: Path) -> None:
    for role in ("coder", "hotfix", "qa"):
        argv = GeminiBackend().arguments(_ctx(tmp_path, role, "gemini"), [])
        assert not [a for a in argv if a.startswith("--policy")]


# ---------------------------------------------------------------------------- qwen


def test_the_qwen_pm_is_allowed_exactly_its_two_files(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pm", "qwen")
    argv = QwenBackend().arguments(ctx, [])
    assert _after(argv, "--approval-mode") == "default"
    assert "--exclude-tools=run_shell_command" in argv
    [flag] = [a for a in argv if a.startswith("--allowed-tools=")]
    rules = flag.removeprefix("--allowed-tools=").split(",")  # what qwen does with it
    assert [r.split("(", 1)[0] for r in rules] == ["Edit", "Edit", "WriteFile", "WriteFile"]
    # A glob per path: special characters escaped; a comma (qwen would split there) is `?`.
    literal = str(ctx.task_file).replace(",", "?")
    assert re.sub(r"\\(.)", r"\1", rules[0][6:-1]) == literal
    assert re.sub(r"\\(.)", r"\1", rules[1][6:-1]) == str(ctx.result_file).replace(",", "?")


# ---------------------------------------------------------------------------- pi


def test_the_pi_pm_loads_the_guard_naming_its_two_files(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pm", "pi")
    argv = PiBackend().arguments(ctx, [])
    guard = Path(_after(argv, "--extension"))
    assert guard == ctx.prompt_file.parent / "pi-pm-guard.ts"
    assert json.dumps([str(ctx.task_file), str(ctx.result_file)]) in guard.read_text()
    for role in ("coder", "hotfix", "qa"):
        assert "--extension" not in PiBackend().arguments(_ctx(tmp_path, role, "pi"), [])


_DRIVER = """\
import guard from "./guard.mjs";
let handler;
guard({ on: (name, fn) => { if (name === "tool_call") handler = fn; } });
const cwd = process.argv[2];
const out = {};
for (const [tool, path] of JSON.parse(process.argv[3])) {
  const verdict = await handler({ toolName: tool, input: { path } }, { cwd });
  out[tool + " " + path] = verdict === undefined ? "allowed" : verdict.reason;
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_pi_guard_resolves_paths_as_pi_does_and_blocks_the_rest(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pm", "pi")
    PiBackend().arguments(ctx, [])
    work = tmp_path / "node"
    work.mkdir()
    shutil.copy(ctx.prompt_file.parent / "pi-pm-guard.ts", work / "guard.mjs")
    (work / "driver.mjs").write_text(_DRIVER)
    rel = str(ctx.task_file.relative_to(ctx.workdir))
    calls = [
        ["edit", str(ctx.task_file)],
        ["write", f"@{ctx.result_file}"],  # pi strips a leading @
        ["edit", rel],  # relative to the working directory
        ["read", str(ctx.workdir / "app.py")],  # reading is not its business
        ["write", str(ctx.workdir / "app.py")],
        ["edit", str(ctx.workdir / "tasks" / ".." / rel)],  # `..`: refused outright
        ["write", f"{ctx.task_file}.bak"],
    ]
    proc = subprocess.run(
        ["node", "driver.mjs", str(ctx.workdir), json.dumps(calls)],
        cwd=work, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    verdicts = list(json.loads(proc.stdout).values())
    assert verdicts[:4] == ["allowed"] * 4
    assert all(v.startswith(DENIED_MARK) for v in verdicts[4:]), verdicts


def _tool_end(tool: str, text: str, error: bool) -> str:
    content = [{"type": "text", "text": text}]
    return json.dumps(
        {
            "type": "tool_execution_end",
            "toolName": tool,
            "result": {"content": content},
            "isError": error,
        }
    )


def _reply(text: str) -> str:
    message = {
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "stopReason": "stop",
    }
    return json.dumps({"type": "message_end", "message": message})


def test_a_pi_run_the_guard_refused_is_permission_denied() -> None:
    out = "\n".join(
        [_tool_end("write", f"{DENIED_MARK} the PM may edit only its task file, /t.md", True),
         _tool_end("edit", "Could not find the exact text", True), _reply("done")]
    )  # fmt: skip
    parsed = PiBackend().parse(out, "")
    assert parsed.outcome is Outcome.PERMISSION_DENIED
    assert parsed.error == "pi was refused 1 tool use(s) by Shopfloor's guard: write"


def test_a_failed_pi_tool_call_alone_is_not_a_denial() -> None:
    out = "\n".join([_tool_end("edit", "Could not find the exact text", True), _reply("done")])
    assert PiBackend().parse(out, "").outcome is None


# ---------------------------------------------------------------------------- opencode


def test_each_opencode_run_gets_its_own_database_in_its_run_folder(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "coder", "opencode")
    env = OpencodeBackend().build(ctx).env
    assert env["OPENCODE_DB"] == str(ctx.prompt_file.parent / "opencode.db")
    assert not {"XDG_DATA_HOME", "XDG_CONFIG_HOME", "HOME"} & env.keys()  # credentials stay


def test_an_opencode_database_the_user_set_is_kept(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "coder", "opencode", env={"OPENCODE_DB": "/srv/shared.db"})
    assert "OPENCODE_DB" not in OpencodeBackend().build(ctx).env  # theirs reaches the run
