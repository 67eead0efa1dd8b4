"""Channels: where a notification goes. One small protocol; each kind registers a factory.

A channel delivers one outbox item or raises `ChannelError` (with `retry_after` when the other
side said how long to wait, or `permanent=True` when retrying can never help). Anything else it
raises is treated as a transient failure. The sender owns retries, back-off and ordering.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shopfloor.config import Config
    from shopfloor.journal import OutboxItem

log = logging.getLogger("shopfloor.notify")


class ChannelError(Exception):
    """A delivery failed. `retry_after`: seconds the receiver asked us to wait."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class ChannelDisabled(Exception):
    """A configured channel cannot start (e.g. its token variable is not set); says why."""


class Channel(Protocol):
    name: str

    async def send(self, item: OutboxItem) -> None:
        """Deliver one item, or raise (ChannelError for a classified failure)."""
        ...

    async def aclose(self) -> None:
        """Release connections; must return promptly."""
        ...


@dataclass(frozen=True)
class Context:
    """What a channel factory may use: the project root, the whole config, the environment."""

    root: Path
    config: Config
    env: Mapping[str, str] = field(default_factory=dict)


#: (channel name, that channel's config section, context) -> a Channel
Factory = Callable[[str, Any, Context], Channel]

_FACTORIES: dict[str, Factory] = {}
#: Built-in kinds, imported only when configured (telegram pulls in python-telegram-bot).
_BUILTIN = {
    "telegram": "shopfloor.notify.channels.telegram",
    "webhook": "shopfloor.notify.channels.webhook",
    "command": "shopfloor.notify.channels.command",
}


def register(kind: str, factory: Factory) -> None:
    """Make a channel kind available (built-ins register themselves the same way)."""
    _FACTORIES[kind] = factory


def factory(kind: str) -> Factory:
    if kind not in _FACTORIES and kind in _BUILTIN:
        importlib.import_module(_BUILTIN[kind])
    try:
        return _FACTORIES[kind]
    except KeyError:
        known = ", ".join(sorted({*_FACTORIES, *_BUILTIN}))
        raise ChannelDisabled(f"unknown channel kind {kind!r} (available: {known})") from None


def configured(config: Config) -> list[tuple[str, str, Any]]:
    """(channel name, kind, section) for every channel in shopfloor.toml, in outbox-name order."""
    notify = config.notify
    sections: list[tuple[str, Any]] = []
    if notify.telegram is not None:
        sections.append(("telegram", notify.telegram))
    sections += [("webhook", w) for w in notify.webhook]
    sections += [("command", c) for c in notify.command]
    names = notify.channel_names()
    return [(name, kind, section) for name, (kind, section) in zip(names, sections, strict=True)]


def build(context: Context) -> tuple[list[Channel], dict[str, str]]:
    """The channels that can start, and {name: reason} for those that cannot."""
    channels: list[Channel] = []
    disabled: dict[str, str] = {}
    for name, kind, section in configured(context.config):
        try:
            channels.append(factory(kind)(name, section, context))
        except ChannelDisabled as exc:
            disabled[name] = str(exc)
            log.warning("notify: channel %s is off: %s", name, exc)
        except Exception as exc:
            disabled[name] = f"could not start: {type(exc).__name__}"
            log.exception("notify: channel %s could not start", name)
    return channels, disabled
