"""shopfloor.toml: one pydantic model per section, errors that name the key and the fix."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shopfloor import defaults
from shopfloor.errors import ConfigError

#: Backends Shopfloor ships; the agents package registers the implementations.
BACKENDS = ("claude", "codex", "gemini", "opencode", "pi", "qwen", "aider", "command", "simulator")
ROLES = ("pm", "coder", "qa", "hotfix")
_SECRET_KEYS = {"token", "api_key", "apikey", "password", "secret", "bot_token"}

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """'90s', '30m', '1h30m', '250ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '30m' or '90s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"expected a duration like '30m', '90s' or '1h30m', got {value!r}")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration like '30m' or '90s', got {value!r}")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentConfig(_Section):
    """A named agent: which CLI backend runs it and how."""

    backend: Literal[
        "claude", "codex", "gemini", "opencode", "pi", "qwen", "aider", "command", "simulator"
    ]
    command: str | list[str] | None = Field(
        default=None, description="the binary; for backend=command an argv list with {placeholders}"
    )
    args: list[str] = Field(default_factory=list, description="extra arguments")
    model: str = Field(default="", description="model name passed to the CLI, if any")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment")
    timeout: Duration = Field(default=30 * 60.0, description="hard limit per run")
    stall: Duration = Field(default=5 * 60.0, description="no output for this long = stalled")

    @model_validator(mode="after")
    def _command_shape(self) -> AgentConfig:
        if self.backend == "command" and not isinstance(self.command, list):
            raise ValueError('backend "command" needs command = ["argv", "list", "{prompt_file}"]')
        if isinstance(self.command, list) and not self.command:
            raise ValueError("command must not be an empty list")
        return self


class RolesConfig(_Section):
    """Which agent plays each role."""

    pm: str = "claude"
    coder: str = "claude"
    qa: str = "claude"
    hotfix: str = "claude"


class Concurrency(_Section):
    pm: int = Field(default=1, ge=1)
    coder: int = Field(default=2, ge=1)
    qa: int = Field(default=1, ge=1)


class PipelineConfig(_Section):
    """The Code-Run-Read rules."""

    checks: list[str | list[str]] = Field(
        default_factory=lambda: list[str | list[str]](["pytest -q"]),
        description="commands the orchestrator runs itself (split like a shell, no shell)",
    )
    max_attempts: int = Field(default=defaults.DEFAULT_MAX_ATTEMPTS, ge=1)
    concurrency: Concurrency = Field(default_factory=Concurrency)
    require_approval: bool = False
    land: Literal["none", "merge"] = "none"
    check_timeout: Duration = 30 * 60.0


class TelegramConfig(_Section):
    token_env: str = "SHOPFLOOR_TELEGRAM_TOKEN"
    chat_ids: list[int] = Field(default_factory=list)
    api_base: str = "https://api.telegram.org"


class NotifyConfig(_Section):
    telegram: TelegramConfig | None = None


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token_env: str = "SHOPFLOOR_WEB_TOKEN"


class Config(_Section):
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    roles: RolesConfig = Field(default_factory=RolesConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    @model_validator(mode="after")
    def _roles_name_agents(self) -> Config:
        for role in ROLES:
            name = getattr(self.roles, role)
            if self.agents and name not in self.agents:
                known = ", ".join(sorted(self.agents))
                raise ValueError(f"roles.{role} = {name!r} is not an agent here (defined: {known})")
        return self

    def secret_env_names(self) -> set[str]:
        """Environment variables holding the daemon's secrets: never passed to an agent."""
        names = {self.web.token_env}
        if self.notify.telegram is not None:
            names.add(self.notify.telegram.token_env)
        return names


# ---------------------------------------------------------------------------- errors


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: Any = Config
    for part in loc:
        if model is Config and part == "agents":
            return None if len(loc) < 2 else _model_at_agent(loc[2:])
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return model if isinstance(model, type) else None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type)), None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _model_at_agent(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    return AgentConfig if not loc[:-1] else None


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        if key.lower() in _SECRET_KEYS:
            return (
                f"{path}: secrets never go in shopfloor.toml; put the value in an environment "
                "variable and name it with token_env"
            )
        parent = _model_at(loc[:-1])
        fields = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(fields)})"
        return f"{path}: unknown key{hint}" if fields else f"{path}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message} (got {error.get('input')!r})"


def from_mapping(data: dict[str, Any], source: str = defaults.CONFIG_FILE) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"{source}: " + "; ".join(lines)) from None


def load(path: Path) -> Config:
    """Read and validate shopfloor.toml; ConfigError with the key path on any problem."""
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run `shopfloor init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    return from_mapping(data, path.name)
