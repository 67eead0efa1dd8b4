"""The Telegram bot's receiving side: a long-polling getUpdates loop with explicit timeouts.

Only messages from `chat_ids` are acted on; any other chat is logged and never answered.
Replies go out through the outbox (channel "telegram", event "reply") like any notification,
so they share its retries and ordering. The update offset is saved before a batch is handled:
a command is run at most once, even if the daemon dies halfway (the human can resend it).

The poller publishes a deadline before every step (a poll, a command, a back-off pause); the
supervisor restarts the poller when a deadline passes, whatever the network did.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor import _fs
from shopfloor.notify.bot import describe_chat, parse
from shopfloor.notify.channels.telegram import classify, make_bot, make_request
from shopfloor.notify.sender import Backoff
from shopfloor.paths import StatePaths, make_private_dir

if TYPE_CHECKING:
    from telegram import Bot, Message, Update

    from shopfloor.config import TelegramConfig

log = logging.getLogger("shopfloor.notify")

#: Longest a command may run before the poller stops waiting for it.
COMMAND_TIMEOUT = 30.0


@dataclass
class BotState:
    """What `status` shows about the bot; `deadline` is what the supervisor checks."""

    state: str = "starting"
    restarts: int = 0
    handled: int = 0
    ignored: int = 0
    failures: int = 0
    last_ok: float | None = None
    last_error: str | None = None
    deadline: float = math.inf  # monotonic: the poller must report back by then

    def expect_within(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def overdue(self) -> bool:
        return time.monotonic() > self.deadline

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "handled": self.handled,
            "ignored": self.ignored,
            "failures": self.failures,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
        }


class OffsetStore:
    """The next getUpdates offset, per bot id (the part of the token before ':', not secret)."""

    def __init__(self, root: Path, token: str) -> None:
        self.path = StatePaths(root).telegram_offset
        self.bot_id = token.split(":", 1)[0]

    def load(self) -> int | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("bot") != self.bot_id:
            return None
        offset = data.get("offset")
        return offset if isinstance(offset, int) else None

    def save(self, offset: int) -> None:
        make_private_dir(self.path.parent)
        _fs.atomic_write(self.path, json.dumps({"bot": self.bot_id, "offset": offset}))


@dataclass
class PollerDeps:
    """What the poller needs from the service (all async, all bounded by the service)."""

    run_command: Callable[[str], Awaitable[str]]
    reply: Callable[[int, str], Awaitable[None]]
    in_thread: Callable[[Callable[[], Any]], Awaitable[Any]]


class Poller:
    """One life of the getUpdates loop; the supervisor builds a new one after each death."""

    def __init__(
        self,
        cfg: TelegramConfig,
        token: str,
        offsets: OffsetStore,
        deps: PollerDeps,
        backoff: Backoff,
        state: BotState,
        grace: float,
    ) -> None:
        self.cfg = cfg
        self._token = token
        self.offsets = offsets
        self.deps = deps
        self.backoff = backoff
        self.state = state
        self.grace = grace
        self._poll = max(1, math.ceil(cfg.poll_timeout))

    async def run(self) -> None:
        request = make_request(self.cfg, pool=2)
        bot = make_bot(self.cfg, self._token, request)
        try:
            await self._loop(bot)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await request.shutdown()

    async def _loop(self, bot: Bot) -> None:
        offset = await self.deps.in_thread(self.offsets.load)
        webhook_cleared = False
        while True:
            self.state.expect_within(self._poll + self._request_budget() + self.grace)
            try:
                if not webhook_cleared:  # getUpdates refuses to work while a webhook is set
                    await bot.delete_webhook(
                        read_timeout=self.cfg.request_timeout,
                        write_timeout=self.cfg.request_timeout,
                        connect_timeout=self.cfg.connect_timeout,
                        pool_timeout=self.cfg.connect_timeout,
                    )
                    webhook_cleared = True
                updates = await bot.get_updates(
                    offset=offset,
                    timeout=self._poll,
                    allowed_updates=["message"],
                    read_timeout=self.cfg.request_timeout,
                    write_timeout=self.cfg.request_timeout,
                    connect_timeout=self.cfg.connect_timeout,
                    pool_timeout=self.cfg.connect_timeout,
                )
            except Exception as exc:
                await self._pause(exc)
                continue
            self._healthy()
            if updates:
                offset = updates[-1].update_id + 1
                await self.deps.in_thread(functools.partial(self.offsets.save, offset))
            for update in updates:
                self.state.expect_within(COMMAND_TIMEOUT + self._request_budget() + self.grace)
                await self._handle(update)

    def _request_budget(self) -> float:
        return self.cfg.connect_timeout + 2 * self.cfg.request_timeout

    def _healthy(self) -> None:
        self.state.state, self.state.failures, self.state.last_ok = "polling", 0, time.time()

    async def _pause(self, exc: Exception) -> None:
        error = classify(exc, self._token)
        self.state.failures += 1
        self.state.state = "retrying"
        self.state.last_error = str(error)
        if error.retry_after is not None:
            delay = self.backoff.after(error.retry_after)
        else:
            delay = self.backoff.delay(self.state.failures)
        log.warning("notify: telegram getUpdates failed, retry in %.1fs: %s", delay, error)
        self.state.expect_within(delay + self.grace)
        await asyncio.sleep(delay)

    async def _handle(self, update: Update) -> None:
        message = update.message
        if message is None or not message.text:
            return
        if message.chat.id not in self.cfg.chat_ids:
            self.state.ignored += 1
            log.warning(
                "notify: ignored a telegram message from %s (not in notify.telegram.chat_ids;"
                " add the chat id there to allow it)",
                describe_chat(update),
            )
            return
        answer = await self._answer(message)
        if answer:
            await self.deps.reply(message.chat.id, answer)

    async def _answer(self, message: Message) -> str:
        text = message.text or ""
        command, _ = parse(text)
        if not command:  # chatter: only a private chat gets a hint
            return "Send /help for the commands." if message.chat.type == "private" else ""
        age = time.time() - message.date.timestamp()
        if age > self.cfg.max_command_age:
            return f"Ignored /{command}: it was sent {age / 60:.0f} min ago. Send it again."
        self.state.handled += 1
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await self.deps.run_command(text)
        except TimeoutError:
            return f"/{command} is taking long; check /status in a minute."
        except Exception:
            log.exception("notify: telegram /%s failed", command)
            return "Sorry, that failed inside Shopfloor; the daemon log has the details."
