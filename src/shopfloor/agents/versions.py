"""The agent CLI versions Shopfloor is tested with (doctor warns about others; tests pin them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    cli: str  # the binary name, also the backend name
    package: str
    version: str
    registry: str = "npm"


PINS: tuple[Pin, ...] = (
    Pin("claude", "@anthropic-ai/claude-code", "2.1.332"),
    Pin("codex", "@openai/codex", "0.171.0"),
    Pin("gemini", "@google/gemini-cli", "0.61.0"),
    Pin("opencode", "opencode-ai", "1.18.33"),
    Pin("pi", "@mariozechner/pi-coding-agent", "0.73.1"),
    Pin("qwen", "@qwen-code/qwen-code", "0.24.4"),
    Pin("aider", "aider-chat", "0.86.2", registry="pypi"),
)

#: backend name -> the version tested (what doctor compares against).
TESTED = {pin.cli: pin.version for pin in PINS}
