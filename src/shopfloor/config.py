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
    land: Literal["none", "merge", "queue", "pr"] = Field(
        default="none",
        description="after QA passes: none (the branch waits), merge, queue (merge queue), pr",
    )
    land_target: str = Field(
        default="", description="the branch the queue lands on (default: the branch init saw)"
    )
    max_rebases: int = Field(default=3, ge=0, description="queue bounces a task may take")
    land_batch: int = Field(default=5, ge=1, description="tasks the queue checks together")
    pr_remote: str = Field(default="origin", description="land = pr: the remote to push to")
    pr_command: list[str] = Field(
        default_factory=lambda: ["gh", "pr", "create", "--fill", "--head", "shopfloor/{id}"],
        description="land = pr: opens the pull request (argv, no shell; {id}, {branch})",
    )
    check_timeout: Duration = 30 * 60.0
    stop_grace: Duration = Field(
        default=5.0,
        gt=0,
        description="a stopped agent or check gets SIGTERM, then SIGKILL after this long; "
        "a daemon told to stop exits within it (plus a second)",
    )


def _check_events(events: list[str]) -> list[str]:
    from shopfloor.notify.events import ALL_EVENTS  # here: the notify package imports config

    unknown = [e for e in events if e != "*" and e not in ALL_EVENTS]
    if unknown:
        known = ", ".join(ALL_EVENTS)
        raise ValueError(f'unknown event {unknown[0]!r} (use "*" or some of: {known})')
    return events


class _ChannelConfig(_Section):
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        description='which events this channel gets: ["*"] (all) or a list of event names',
    )

    @model_validator(mode="after")
    def _known_events(self) -> _ChannelConfig:
        _check_events(self.events)
        return self


class TelegramConfig(_ChannelConfig):
    """A Telegram bot: notifications to `chat_ids` and commands from them (the allowlist)."""

    token_env: str = Field(
        default="SHOPFLOOR_TELEGRAM_TOKEN", description="environment variable holding the token"
    )
    chat_ids: list[int] = Field(
        default_factory=list, description="the allowlist, for notifications and commands"
    )
    api_base: str = Field(
        default="https://api.telegram.org",
        description="Bot API server (a self-hosted one, or a fake in tests)",
    )
    commands: bool = Field(default=True, description="accept commands from chat_ids")
    poll_timeout: Duration = Field(default=30.0, description="getUpdates long-poll timeout")
    connect_timeout: Duration = Field(default=5.0, description="TCP/TLS connect timeout")
    request_timeout: Duration = Field(
        default=10.0, description="read/write timeout of a request (getUpdates: on top of poll)"
    )
    max_command_age: Duration = Field(
        default=3600.0, description="commands older than this (e.g. sent while down) are refused"
    )

    @model_validator(mode="after")
    def _http_url(self) -> TelegramConfig:
        if not self.api_base.startswith(("http://", "https://")):
            raise ValueError("api_base must start with https:// (or http:// for a local server)")
        return self


class WebhookConfig(_ChannelConfig):
    """A JSON POST per notification: generic, Slack incoming webhook or ntfy."""

    name: str = Field(default="", description="names the channel webhook:<name> (default: webhook)")
    url: str = Field(default="", description="the URL, if it is not a secret")
    url_env: str = Field(default="", description="environment variable holding a secret URL")
    token_env: str = Field(default="", description="environment variable: Bearer token, if any")
    style: Literal["generic", "slack", "ntfy"] = Field(
        default="generic", description="body shape; every style carries the text"
    )
    topic: str = Field(default="", description="ntfy topic (style = ntfy, posting to the root)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra, non-secret headers")
    timeout: Duration = Field(default=10.0, description="whole-request timeout")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("a webhook needs exactly one of url or url_env")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with https:// (or http://)")
        return self


class CommandChannelConfig(_ChannelConfig):
    """A user command run per notification (no shell), the message as JSON on stdin."""

    name: str = Field(default="", description="names the channel command:<name> (default: command)")
    argv: list[str] = Field(min_length=1, description='e.g. ["notify-send-json"]')
    timeout: Duration = Field(default=30.0, description="killed (whole group) after this long")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment")


class NotifyConfig(_Section):
    """Channels, and how the outbox sender retries (exponential back-off with jitter)."""

    telegram: TelegramConfig | None = None
    webhook: list[WebhookConfig] = Field(default_factory=list, description="[[notify.webhook]]")
    command: list[CommandChannelConfig] = Field(
        default_factory=list, description="[[notify.command]]"
    )
    retry_initial: Duration = Field(default=2.0, description="first back-off after a failure")
    retry_max: Duration = Field(
        default=30.0, description="back-off ceiling: the longest wait after a recovery"
    )
    send_timeout: Duration = Field(default=60.0, description="hard limit on one delivery")
    poll_interval: Duration = Field(
        default=1.0, description="how often the outbox is checked for rows from other processes"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> NotifyConfig:
        names = self.channel_names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two channels are named {dupes[0]!r}; give each a distinct name")
        return self

    def channel_names(self) -> list[str]:
        """The outbox channel names: telegram, webhook[:name], command[:name]."""
        names = ["telegram"] if self.telegram is not None else []
        names += [f"webhook:{w.name}" if w.name else "webhook" for w in self.webhook]
        names += [f"command:{c.name}" if c.name else "command" for c in self.command]
        return names

    def secret_env_names(self) -> set[str]:
        """Environment variables holding notification secrets (never passed to an agent)."""
        names = {self.telegram.token_env} if self.telegram is not None else set()
        names |= {n for w in self.webhook for n in (w.url_env, w.token_env) if n}
        return names


class WebConfig(_Section):
    enabled: bool = Field(default=False, description="`shopfloor run` serves the board too")
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token_env: str = "SHOPFLOOR_WEB_TOKEN"


class BudgetConfig(_Section):
    """Spend limits in US dollars, as the agents report cost (hotfixes are exempt)."""

    task_usd: float | None = Field(default=None, gt=0, description="all runs of one task")
    day_usd: float | None = Field(default=None, gt=0, description="all runs of a UTC day")


class ScaleConfig(_Section):
    """Where PM, Coder and QA runs happen: here (`local`) or on Temporal workers.

    Hotfixes always run here, in the live tree, whatever the engine (see docs/scale-out.md)."""

    engine: Literal["local", "temporal"] = Field(
        default="local", description="local: runs on this machine; temporal: on `shopfloor worker`s"
    )
    address: str = Field(default="127.0.0.1:7233", description="the Temporal frontend host:port")
    namespace: str = "default"
    task_queue: str = Field(
        default="shopfloor",
        description="with .<first commit>: the workflows' queue; runs go to <it>.agent.<name>",
    )
    remote: str = Field(
        default="origin", description="the git remote workers fetch from and push shopfloor/<id> to"
    )
    tls: bool = Field(default=False, description="TLS to the frontend (Temporal Cloud: true)")
    api_key_env: str = Field(
        default="", description="the environment variable holding a Temporal Cloud API key"
    )
    heartbeat_timeout: Duration = Field(
        default=30.0, gt=0, description="a worker silent this long is dead: its run goes elsewhere"
    )


class Config(_Section):
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    roles: RolesConfig = Field(default_factory=RolesConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)

    @model_validator(mode="after")
    def _roles_name_agents(self) -> Config:
        for role in ROLES:
            name = getattr(self.roles, role)
            if self.agents and name not in self.agents:
                known = ", ".join(sorted(self.agents))
                raise ValueError(
                    f"{self.role_source(role)}, which is not an agent here (defined: {known}); "
                    f"set roles.{role} to one of them"
                )
        return self

    def role_is_set(self, role: str) -> bool:
        """Did shopfloor.toml name this role's agent, or is it the built-in default?"""
        return "roles" in self.model_fields_set and role in self.roles.model_fields_set

    def role_source(self, role: str) -> str:
        """`roles.pm = 'x'` as written, or that it is unset and what it defaults to: an error
        must never quote a default as if the user had written it."""
        name = getattr(self.roles, role)
        if self.role_is_set(role):
            return f"roles.{role} = {name!r}"
        return f"roles.{role} is not set, so it defaults to the agent {name!r}"

    def secret_env_names(self) -> set[str]:
        """Environment variables holding the daemon's secrets: never passed to an agent."""
        engine = {self.scale.api_key_env} if self.scale.api_key_env else set()
        return {self.web.token_env} | engine | self.notify.secret_env_names()


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
    got = repr(error.get("input"))
    if not loc or got in message:  # a whole-file rule, or the message already quotes it
        return f"{path}: {message}" if loc else message
    return f"{path}: {message} (got {got})"


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
