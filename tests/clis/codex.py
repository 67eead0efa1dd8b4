"""Codex CLI against the scripted model server (OpenAI Responses, SSE).

Codex ignores OPENAI_BASE_URL: the server is a custom model provider in a fresh CODEX_HOME's
config.toml, with retries off (so a 429 or 500 ends the run at once), analytics and update
checks off, and plugins off (else every start tries to sync a plugin catalogue from github.com
and chatgpt.com). CODEX_HOME sits under the test home, under /tmp, so Codex warns that it will
not create its PATH helper aliases there; that does not matter to these runs.
"""

from __future__ import annotations

from pathlib import Path

_CONFIG = """\
model = "fake-model"
model_provider = "fake"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.fake]
name = "fake"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "FAKE_KEY"
request_max_retries = 0
stream_max_retries = 0
"""


def prepare(home: Path, url: str) -> dict[str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(_CONFIG.format(url=url))
    return {"CODEX_HOME": str(codex_home), "FAKE_KEY": "fake"}


def _extra_cases() -> dict[str, object]:
    """Its lie: a write the sandbox denies exits 0, and the denied command appears in the --json
    stream only sometimes — so these classify as ok; the working tree shows the denial
    (test_codex_live.py). pm-spec: the PM may write its task file but not app.py."""
    from tests.clis.record import Case
    from tests.fakes.model_server import Append, Script, Write, result_block

    outside = Script(steps=(Write("/etc/shopfloor-denied.txt", "x\n"),), final=result_block())
    qa_write = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"),),
        final=result_block("ok", "looked", verdict="pass"),
    )
    pm_spec = Script(
        steps=(
            Append("{task_file}", "\n## Spec\nReturn 43.\n"),
            Write("{workdir}/app.py", "broken = True\n"),
        ),
        final=result_block("ok", "specced"),
    )
    return {
        "denied-write": Case(outside, "ok"),
        "qa-denied-write": Case(qa_write, "ok", "qa"),
        "pm-spec": Case(pm_spec, "ok", "pm"),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
