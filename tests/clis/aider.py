"""Aider against the scripted model server (Chat Completions, SSE, no tools).

Aider speaks to any OpenAI-compatible server through litellm: `OPENAI_API_BASE` + `--model
openai/NAME`. Nothing may leave the machine, so the HOME gets what aider would otherwise fetch:
`~/.aider.model.metadata.json` describes the fake model (context window and a price, so runs
report a cost) and a fresh `~/.aider/caches/model_prices_and_context_window.json` stops aider
downloading litellm's price list from GitHub; `LITELLM_LOCAL_MODEL_COST_MAP` does the same for
litellm's own copy at import. `~/.aider.conf.yml` picks the model and turns off the update check,
analytics and release notes; `~/.aider.model.settings.yml` gives the model the SEARCH/REPLACE
("diff") edit format, the one the fake answers in and whose replies carry shell commands.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL = "openai/fake-model"

_METADATA = {
    MODEL: {
        "max_input_tokens": 128000,
        "max_output_tokens": 8000,
        "input_cost_per_token": 3e-06,  # $3 / M tokens
        "output_cost_per_token": 1.5e-05,
        "litellm_provider": "openai",
        "mode": "chat",
    }
}

_CONFIG = f"""\
model: {MODEL}
check-update: false
analytics: false
show-release-notes: false
show-model-warnings: false
"""


#: The SEARCH/REPLACE edit format (the fake's), and no retries inside the OpenAI client: it
#: would honour the fake's `retry-after: 30` twice, silently (a stall, not a rate limit).
_SETTINGS = f"""\
- name: {MODEL}
  edit_format: diff
  extra_params:
    max_retries: 0
"""

#: Aider retries rate limits and server errors for 64 s (`RETRY_TIMEOUT`, not configurable);
#: tests give it one second so a 429 or 500 ends after three quick retries, same output.
_SITE = """\
import aider.models

aider.models.RETRY_TIMEOUT = 1
"""


def prepare(home: Path, url: str) -> dict[str, str]:
    site = home / "aider-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITE)
    (home / ".aider.model.metadata.json").write_text(json.dumps(_METADATA, indent=2))
    (home / ".aider.conf.yml").write_text(_CONFIG)
    (home / ".aider.model.settings.yml").write_text(_SETTINGS)
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True, exist_ok=True)
    (caches / "model_prices_and_context_window.json").write_text(json.dumps(_METADATA))
    return {
        "OPENAI_API_BASE": f"{url}/v1",
        "OPENAI_API_KEY": "fake",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(site),  # loads sitecustomize.py into aider's own interpreter
    }


def _extra_cases() -> dict[str, object]:
    """Aider's own cases. pm-spec: the PM appends its spec to the task file (in the chat) with
    no shell. qa-dry-run: QA's answer carries an edit; `--dry-run` applies none ("Did not apply
    edit ... (--dry-run)"), exit 0, and the verdict stands — the tree shows the refusal."""
    from tests.clis.record import Case
    from tests.fakes.model_server import Append, Script, Write, result_block

    pm_spec = Script(
        steps=(Append("{task_file}", "\n## Spec\nReturn 43.\n"),),
        final=result_block("ok", "specced"),
    )
    qa_write = Script(
        steps=(Write("{workdir}/app.py", "broken = True\n"),),
        final=result_block("ok", "looked", verdict="pass"),
    )
    return {
        "pm-spec": Case(pm_spec, "ok", "pm"),
        "qa-dry-run": Case(qa_write, "ok", "qa"),
    }


def __getattr__(name: str) -> object:  # lazy: record.py imports this module first
    if name == "EXTRA_CASES":
        return _extra_cases()
    raise AttributeError(name)
