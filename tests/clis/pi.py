"""pi against the scripted model server (Chat Completions, SSE).

The server is a custom provider in `~/.pi/agent/models.json` (api `openai-completions`), made
the default in `settings.json` so no `--model` flag is needed. The model has a price so runs
report a non-zero `usage.cost.total`. pi's own retries are off (else a 429 or 500 is retried
with a 2 s, 4 s, 8 s backoff), and `PI_OFFLINE` skips its startup network calls (version check,
install telemetry, package updates).
"""

from __future__ import annotations

import json
from pathlib import Path


def _models(url: str) -> dict[str, object]:
    model = {
        "id": "fake-model",
        "name": "Fake model",
        "reasoning": False,
        "input": ["text"],
        "contextWindow": 128000,
        "maxTokens": 8000,
        "cost": {"input": 3, "output": 15, "cacheRead": 0, "cacheWrite": 0},  # $ per M tokens
    }
    provider = {
        "baseUrl": f"{url}/v1",
        "api": "openai-completions",
        "apiKey": "FAKE_KEY",  # the name of an environment variable
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
        "models": [model],
    }
    return {"providers": {"fake": provider}}


_SETTINGS = {
    "defaultProvider": "fake",
    "defaultModel": "fake-model",
    "quietStartup": True,
    "enableInstallTelemetry": False,
    "retry": {"enabled": False, "provider": {"maxRetries": 0}},
}


def prepare(home: Path, url: str) -> dict[str, str]:
    agent = home / ".pi" / "agent"
    agent.mkdir(parents=True, exist_ok=True)
    (agent / "models.json").write_text(json.dumps(_models(url), indent=2))
    (agent / "settings.json").write_text(json.dumps(_SETTINGS, indent=2))
    return {
        "FAKE_KEY": "fake",
        "PI_OFFLINE": "1",
        "PI_SKIP_VERSION_CHECK": "1",
        "PI_TELEMETRY": "0",
        "OPENAI_API_KEY": "",  # the no-key case picks built-in openai: no key may leak in
    }


def _extra_cases() -> dict[str, object]:
    """No API key is the one failure pi exits non-zero for (1, after the session header only);
    the PM edits its task file with `edit`/`write` and no shell."""
    from tests.clis.record import Case
    from tests.fakes.model_server import Append, Script, result_block

    pm_spec = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"),),
        final=result_block("ok", "specced"),
    )
    return {
        "no-key": Case(
            Script(final=result_block()), "auth-error", agent=(("model", "openai/gpt-4o-mini"),)
        ),
        "pm-spec": Case(pm_spec, "ok", "pm"),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
