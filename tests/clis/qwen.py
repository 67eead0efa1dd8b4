"""Qwen Code against the scripted model server (Chat Completions, SSE).

The OpenAI auth type points at the server through OPENAI_BASE_URL / OPENAI_API_KEY /
OPENAI_MODEL; `~/.qwen/settings.json` selects that auth type and turns usage statistics,
telemetry and update checks off.
"""

from __future__ import annotations

import json
from pathlib import Path

_SETTINGS = {
    "security": {"auth": {"selectedType": "openai"}},
    "general": {"enableAutoUpdate": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    # Else a 429 is retried 10 times from a 60 s delay up, and a 500 is retried too.
    "model": {"generationConfig": {"maxRetries": 0}},
}


def prepare(home: Path, url: str) -> dict[str, str]:
    qwen = home / ".qwen"
    qwen.mkdir(parents=True, exist_ok=True)
    (qwen / "settings.json").write_text(json.dumps(_SETTINGS, indent=2))
    return {
        "OPENAI_BASE_URL": f"{url}/v1",
        "OPENAI_API_KEY": "fake",
        "OPENAI_MODEL": "fake-model",
        "QWEN_CODE_SKIP_UPDATE_CHECK_ONCE": "true",
    }


def _extra_cases() -> dict[str, object]:
    """qwen retries a 429 (~3 minutes of Retry-After waits) and a 500 (~80 s of backoff)
    printing nothing, so the shared cases get a longer stall limit here; a spent quota is
    the one 429 it gives up on at once. The PM edits its task file in auto-edit mode."""
    from tests.clis.record import Case
    from tests.fakes.model_server import Append, Script, result_block

    pm_spec = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"),),
        final=result_block("ok", "specced"),
    )
    patient = (("stall", "300s"), ("timeout", "400s"))  # it is silent while it retries
    return {
        "rate-429": Case(Script(fail="429"), "rate-limited", agent=patient),
        "server-500": Case(Script(fail="500"), "agent-error", agent=patient),
        "quota-429": Case(Script(fail="429-quota"), "rate-limited"),
        "pm-spec": Case(pm_spec, "ok", "pm"),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
