"""Notifications and Telegram control that can never take the daemon down.

- `publish(journal, config, event, **payload)`: the daemon's only call while it works. It
  writes outbox rows (SQLite), one per subscribed channel, and never raises or touches the
  network.
- `NotifyService(root, config)`: `start()` / `stop(timeout)`; its own thread and event loop
  deliver the outbox (supervised, back-off with jitter, order per channel) and run the
  Telegram command bot.
- `events`: the event names and their priorities (hotfix first).

See README.md here and docs/notifications.md.
"""

from __future__ import annotations

from shopfloor.notify import events
from shopfloor.notify.channels import Channel, ChannelError
from shopfloor.notify.outbox import publish, queue_status, routes
from shopfloor.notify.service import NotifyService

__all__ = [
    "Channel",
    "ChannelError",
    "NotifyService",
    "events",
    "publish",
    "queue_status",
    "routes",
]
