"""OpenCode against the scripted model server (Chat Completions, SSE).

The server is a provider in OPENCODE_CONFIG_CONTENT (the config layer OpenCode merges last),
with models.dev fetching and auto-update off. Snapshots (OpenCode's own git copy of the
worktree, for undo) are off too: they cost seconds per run and nothing here reads them.

Every start also tries to `npm install @opencode-ai/plugin` into ~/.config/opencode — even
with `--pure` — unless that folder already has node_modules and a lock file listing it; the
fresh test home gets both (empty), so no run reaches for the npm registry.
"""

from __future__ import annotations

import json
from pathlib import Path

_PLUGIN = "@opencode-ai/plugin"


def prepare(home: Path, url: str) -> dict[str, str]:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake",
                "options": {"baseURL": f"{url}/v1", "apiKey": "fake"},
                "models": {"fake-model": {"name": "fake-model"}},
            }
        },
        "model": "fake/fake-model",
        "autoupdate": False,
        "share": "disabled",
        "snapshot": False,
    }
    _seed_plugin_install(home / ".config" / "opencode")
    return {
        "OPENCODE_CONFIG_CONTENT": json.dumps(config),
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
    }


def _seed_plugin_install(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "node_modules").mkdir(exist_ok=True)
    deps = {"dependencies": {_PLUGIN: "*"}}
    (config_dir / "package.json").write_text(json.dumps(deps))
    (config_dir / "package-lock.json").write_text(json.dumps({"packages": {"": deps}}))


def _extra_cases() -> dict[str, object]:
    """Its lie: a refused tool call exits 0. An `ask` (here: a path outside the working
    directory) is auto-rejected and ends the run; a `deny` rule (the PM editing anything but
    its task file) fails the call and the model goes on. Only a `tool_use` event in state
    `error` shows either."""
    from tests.clis.record import Case
    from tests.fakes.model_server import Append, Script, Write, result_block

    outside = Script(steps=(Write("/etc/shopfloor-denied.txt", "x\n"),), final=result_block())
    spec = Append("{task_file}", "\n## Spec\nReturn 43.\n")
    pm_spec = Script(steps=(spec,), final=result_block("ok", "specced"))
    pm_code = Script(
        steps=(spec, Write("{workdir}/app.py", "broken = True\n")),
        final=result_block("ok", "specced"),
    )
    return {
        # exit 1; the JSON says only "Unexpected server error", the cause is in the logs
        "unknown-model": Case(Script(), "agent-error", agent=(("model", "fake/nope"),)),
        "denied-write": Case(outside, "permission-denied"),
        "pm-spec": Case(pm_spec, "ok", "pm"),
        "pm-denied-write": Case(pm_code, "permission-denied", "pm"),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
