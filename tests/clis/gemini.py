"""Gemini CLI against the scripted model server (Gemini `:streamGenerateContent?alt=sse`)."""

from __future__ import annotations

import json
from pathlib import Path

SETTINGS = {
    # Without a selected auth type it exits 41 before sending anything.
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {
        "enableAutoUpdate": False,
        "enableAutoUpdateNotification": False,
        # It retries 429/500 up to 10 times with 5-30 s back-off: one attempt keeps tests fast.
        "maxAttempts": 1,
    },
}


def prepare(home: Path, url: str) -> dict[str, str]:
    folder = home / ".gemini"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(SETTINGS, indent=2) + "\n")
    tmp = home / "tmp"  # it drops gemini-client-error-*.json reports into the temp dir
    tmp.mkdir(exist_ok=True)
    return {
        "GOOGLE_GEMINI_BASE_URL": url,
        "GEMINI_API_KEY": "fake",
        "GEMINI_CLI_NO_RELAUNCH": "1",
        "GEMINI_TELEMETRY_ENABLED": "false",
        # Tests configure no model; without one it asks its "auto" router first, which the
        # fake server cannot answer (about 100 s of retries). Production: the user's choice.
        "GEMINI_MODEL": "gemini-2.5-pro",
        "TMPDIR": str(tmp),
    }


def _extra_cases() -> dict[str, object]:
    from tests.clis import binary
    from tests.clis.record import Case
    from tests.fakes.model_server import Call, Script, Write, result_block

    outside = Script(steps=(Write("/etc/shopfloor-denied.txt", "x\n"),), final=result_block())
    # A model calling write_file in QA, where the tool is not offered: refused, exit 0, ok.
    write = Call("write_file", (("file_path", "{workdir}/app.py"), ("content", "broken\n")))
    qa_write = Script(steps=(write,), final=result_block("ok", "looked", verdict="pass"))
    no_key = ["env", "-u", "GEMINI_API_KEY", str(binary("gemini"))]
    return {
        "denied-write": Case(outside, "permission-denied"),
        "qa-write-refused": Case(qa_write, "ok", "qa"),
        "no-api-key": Case(Script(), "auth-error", agent=(("command", no_key),)),  # type: ignore[arg-type]
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
