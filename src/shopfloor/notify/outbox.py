"""publish(): the daemon's only notification call. It writes outbox rows and nothing else.

No network, no waiting on a channel: one row per subscribed channel in the journal (SQLite),
which the sender drains later. A failure here is logged and swallowed — a notification must
never fail the work that caused it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.notify import events

if TYPE_CHECKING:
    from shopfloor.config import Config, NotifyConfig
    from shopfloor.journal import Journal

log = logging.getLogger("shopfloor.notify")

_wakers: dict[Path, set[Callable[[], None]]] = {}
_wakers_lock = threading.Lock()


def add_waker(journal_path: Path, wake: Callable[[], None]) -> None:
    """A sender in this process wants to hear about new rows at once (instead of polling)."""
    with _wakers_lock:
        _wakers.setdefault(journal_path.resolve(), set()).add(wake)


def remove_waker(journal_path: Path, wake: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.get(journal_path.resolve(), set()).discard(wake)


def _wake(journal_path: Path) -> None:
    with _wakers_lock:
        wakers = list(_wakers.get(journal_path.resolve(), ()))
    for wake in wakers:
        try:
            wake()
        except Exception:  # a stopped service's loop: it polls anyway
            log.debug("notify: waker failed", exc_info=True)


def routes(notify: NotifyConfig, event: str) -> list[str]:
    """The channels subscribed to `event`, by outbox channel name."""
    channels: list[tuple[str, list[str]]] = []
    if notify.telegram is not None:
        channels.append(("telegram", notify.telegram.events))
    names = notify.channel_names()[len(channels) :]
    subs = [w.events for w in notify.webhook] + [c.events for c in notify.command]
    channels.extend(zip(names, subs, strict=True))
    return [name for name, wanted in channels if events.subscribed(event, wanted)]


def publish(journal: Journal, config: Config, event: str, **payload: Any) -> list[int]:
    """Queue `event` for every subscribed channel; the outbox row ids (never raises)."""
    try:
        channels = routes(config.notify, event)
        if not channels:
            return []
        payload.setdefault("project", journal.path.parent.parent.name)
        ids = [
            journal.enqueue(channel, event, payload, events.priority(event)) for channel in channels
        ]
        _wake(journal.path)
        return ids
    except Exception:
        log.exception("notify: could not queue %s (the work goes on)", event)
        return []


def queue_status(journal: Journal, config: Config) -> dict[str, int]:
    """Unsent rows per configured channel, for `shopfloor status` (no service needed)."""
    try:
        return {name: journal.unsent_count(name) for name in config.notify.channel_names()}
    except Exception:
        log.exception("notify: could not read the outbox")
        return {}
