"""Telegram via python-telegram-bot v22: `Bot` on our own event loop, explicit timeouts.

The token comes from the environment variable `token_env` names. It is only ever part of the
request URL: we never call `Bot.initialize()` (its InvalidToken message quotes the token), we
mask it in every log record of httpx and telegram (see `_secrets`), and we never write it down.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shopfloor.notify import _secrets, events
from shopfloor.notify.channels import ChannelDisabled, ChannelError, Context, register

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    from shopfloor.config import TelegramConfig
    from shopfloor.journal import OutboxItem

log = logging.getLogger("shopfloor.notify")

#: Telegram refuses longer messages.
MAX_MESSAGE = 4096


def opt_in_timedelta() -> None:
    """PTB 22 warns on every RetryAfter unless PTB_TIMEDELTA opts in to its v23 behaviour
    (retry_after as a timedelta), which `retry_after_of` reads either way."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")


def token_from(cfg: TelegramConfig, env: Mapping[str, str]) -> str:
    """The bot token from the environment, registered for masking; ChannelDisabled if unset."""
    token = env.get(cfg.token_env, "").strip()
    if not token:
        raise ChannelDisabled(
            f"set the environment variable {cfg.token_env} to the bot token from @BotFather"
        )
    _secrets.register(token)
    return token


def make_request(cfg: TelegramConfig, pool: int = 4) -> HTTPXRequest:
    from telegram.request import HTTPXRequest

    return HTTPXRequest(
        connection_pool_size=pool,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.request_timeout,
        write_timeout=cfg.request_timeout,
        pool_timeout=cfg.connect_timeout,
    )


def make_bot(cfg: TelegramConfig, token: str, request: HTTPXRequest) -> Bot:
    """A Bot talking to `api_base`; `request` serves both normal calls and getUpdates."""
    from telegram import Bot

    base = cfg.api_base.rstrip("/")
    return Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=request,
        get_updates_request=request,
    )


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds from a RetryAfter, without tripping PTB's int-vs-timedelta deprecation warning."""
    value: Any = getattr(exc, "_retry_after", None)
    if value is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = getattr(exc, "retry_after", None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else None


def classify(exc: Exception, token: str) -> ChannelError:
    """A telegram error as a ChannelError with a message that never holds the token."""
    from telegram import error

    text = _secrets.mask(f"{type(exc).__name__}: {exc}", {token})
    if isinstance(exc, error.RetryAfter):
        return ChannelError(f"telegram rate limit: {text}", retry_after=retry_after_of(exc))
    if isinstance(exc, error.InvalidToken):
        return ChannelError("telegram rejected the bot token (Unauthorized); check the token")
    return ChannelError(f"telegram: {text}")


def _permanent_for_chat(exc: Exception) -> bool:
    """This chat will never take the message (blocked, not found, migrated): skip it."""
    from telegram import error

    return isinstance(exc, error.BadRequest | error.Forbidden | error.ChatMigrated)


class TelegramChannel:
    """Sends each item to every allowlisted chat (a reply only to the chat that asked)."""

    def __init__(self, name: str, cfg: TelegramConfig, token: str) -> None:
        self.name = name
        self.cfg = cfg
        self._token = token
        self._request = make_request(cfg)
        self._bot = make_bot(cfg, token, self._request)
        self._done: dict[int, set[int]] = {}  # item id -> chats that already have it

    def _targets(self, item: OutboxItem) -> list[int]:
        if item.event != events.REPLY:
            return list(self.cfg.chat_ids)
        chat = item.payload.get("chat_id")
        if chat not in self.cfg.chat_ids:
            raise ChannelError(f"reply to a chat not in chat_ids: {chat}", permanent=True)
        return [int(chat)]

    async def send(self, item: OutboxItem) -> None:
        text = events.render(
            item.event, item.payload, None if item.event == events.REPLY else item.id
        )
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1] + "…"
        done = self._done.setdefault(item.id, set())
        refused = 0
        for chat in self._targets(item):
            if chat in done:
                continue  # a retry after a partial success: that chat has it already
            try:
                await self._bot.send_message(chat, text, disable_notification=False)
            except Exception as exc:
                if not _permanent_for_chat(exc):
                    raise classify(exc, self._token) from None
                refused += 1
                log.warning(
                    "notify: telegram chat %s refused #%s: %s",
                    chat,
                    item.id,
                    _secrets.mask(str(exc), {self._token}),
                )
            done.add(chat)
        self._done.pop(item.id, None)
        if refused and refused == len(self._targets(item)):
            raise ChannelError("every chat refused the message", permanent=True)

    async def aclose(self) -> None:
        await self._request.shutdown()


def _create(name: str, section: Any, context: Context) -> TelegramChannel:
    if not section.chat_ids:
        raise ChannelDisabled("notify.telegram.chat_ids is empty: add your chat id")
    opt_in_timedelta()
    return TelegramChannel(name, section, token_from(section, context.env))


register("telegram", _create)
