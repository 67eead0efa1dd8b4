"""A generic webhook: one JSON POST per notification (generic, Slack or ntfy body shape).

Every body carries the message text (`text`, or `message` for ntfy) with `#<outbox id>` in it,
and the `Idempotency-Key` header is the outbox id, so a receiver can drop the duplicates that
at-least-once delivery allows. A secret URL comes from `url_env` and is never logged.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from shopfloor.notify import _secrets, events
from shopfloor.notify.channels import ChannelDisabled, ChannelError, Context, register

if TYPE_CHECKING:
    from shopfloor.config import WebhookConfig
    from shopfloor.journal import OutboxItem

log = logging.getLogger("shopfloor.notify")

#: ntfy priorities (1 min .. 5 max) by our event priority (0 most urgent).
_NTFY_PRIORITY = {0: 5, 1: 4, 2: 4, 3: 4}


def body(style: str, item: OutboxItem, topic: str = "") -> dict[str, Any]:
    text = events.render(item.event, item.payload, item.id)
    if style == "slack":
        return {"text": text}
    if style == "ntfy":
        ntfy: dict[str, Any] = {
            "message": text,
            "title": events.title(item.event, item.payload),
            "priority": _NTFY_PRIORITY.get(item.priority, 3),
            "tags": [item.event],
        }
        return {"topic": topic, **ntfy} if topic else ntfy
    return {
        "text": text,
        "id": item.id,
        "event": item.event,
        "priority": item.priority,
        "created_at": item.created_at,
        "payload": item.payload,
        "source": "shopfloor",
    }


def retry_after_header(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_error(response: httpx.Response) -> ChannelError:
    code = response.status_code
    message = f"webhook answered HTTP {code}"
    if code == 429 or code >= 500 or code == 408:
        return ChannelError(
            message, retry_after=retry_after_header(response.headers.get("retry-after"))
        )
    # Other 4xx: the receiver refuses this request; retrying the same body cannot help.
    return ChannelError(message, permanent=True)


class WebhookChannel:
    def __init__(self, name: str, cfg: WebhookConfig, url: str, token: str = "") -> None:
        self.name = name
        self.cfg = cfg
        self._url = url
        self._where = _secrets.safe_url(url)
        headers = {"User-Agent": "shopfloor", **cfg.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout), headers=headers)

    async def send(self, item: OutboxItem) -> None:
        try:
            response = await self._client.post(
                self._url,
                json=body(self.cfg.style, item, self.cfg.topic),
                headers={"Idempotency-Key": str(item.id), "X-Shopfloor-Event": item.event},
            )
        except httpx.HTTPError as exc:
            detail = _secrets.mask(str(exc) or type(exc).__name__, {self._url})
            raise ChannelError(f"webhook {self._where}: {type(exc).__name__}: {detail}") from None
        if not response.is_success:
            raise _status_error(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def _create(name: str, section: Any, context: Context) -> WebhookChannel:
    url = section.url
    if section.url_env:
        url = context.env.get(section.url_env, "").strip()
        if not url:
            raise ChannelDisabled(f"set the environment variable {section.url_env} to the URL")
        _secrets.register(url)
    token = ""
    if section.token_env:
        token = context.env.get(section.token_env, "").strip()
        if not token:
            raise ChannelDisabled(f"set the environment variable {section.token_env}")
        _secrets.register(token)
    return WebhookChannel(name, section, url, token)


register("webhook", _create)
