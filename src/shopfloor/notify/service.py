"""NotifyService: everything that touches the network, on its own thread and event loop.

The daemon calls `start()` once and `stop(timeout)` at the end; in between it only calls
`publish()`, which writes SQLite rows. The service thread runs one supervised sender per
channel and, for Telegram, the supervised command poller. Nothing in here can block, slow or
crash the daemon's threads: the only shared things are the journal file and `wake()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopfloor.journal import open_journal
from shopfloor.notify import events, outbox
from shopfloor.notify.bot import Commands
from shopfloor.notify.channels import Channel, ChannelDisabled, Context, build
from shopfloor.notify.sender import ANY_TIME, Backoff, ChannelSender, JournalOps, supervise
from shopfloor.paths import StatePaths

if TYPE_CHECKING:
    from shopfloor.config import Config

log = logging.getLogger("shopfloor.notify")

#: Extra seconds a poller may overrun its own deadline before the supervisor restarts it.
STALL_GRACE = 5.0


class NotifyService:
    def __init__(
        self,
        root: Path,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        stall_grace: float = STALL_GRACE,
        rng: random.Random | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.stall_grace = stall_grace
        self._rng = rng or random.Random()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop_budget = 3.0
        self._senders: dict[str, ChannelSender] = {}
        self._disabled: dict[str, str] = {}
        self._bot: Any = None  # poller.BotState once Telegram commands run
        self._crashed: str | None = None
        self._close_commands: Callable[[], None] | None = None

    # ------------------------------------------------------------------ control (any thread)

    def start(self, ready_timeout: float = 5.0) -> None:
        """Start the service thread; returns once it runs (or after `ready_timeout`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        if self.config.notify.telegram is not None:
            from shopfloor.notify.channels.telegram import opt_in_timedelta

            opt_in_timedelta()  # here, on the caller's thread, before any other thread reads it
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._thread_main, name="shopfloor-notify", daemon=True
        )
        self._thread.start()
        self._ready.wait(ready_timeout)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop within `timeout` seconds whatever the network does; True if the thread ended."""
        thread, loop = self._thread, self._loop
        if thread is None or not thread.is_alive():
            return True
        self._stop_budget = max(0.1, timeout * 0.6)
        if loop is not None and self._stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("notify: service did not stop within %.1fs; abandoning it", timeout)
            return False
        return True

    def wake(self) -> None:
        """New outbox rows: look now instead of at the next poll (thread-safe)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to wake
                loop.call_soon_threadsafe(self._wake_senders)

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` for every running channel's queue to empty (e.g. before stop).
        Rows parked as undeliverable do not count."""
        deadline = time.monotonic() + timeout
        self.wake()
        with open_journal(self.root) as journal:
            while True:
                if not any(journal.pending(name, now=ANY_TIME, limit=1) for name in self._senders):
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    @property
    def healthy(self) -> bool:
        """Running, every channel delivering, and the bot (if any) receiving."""
        if not self.running:
            return False
        if any(s.state.failures for s in self._senders.values()):
            return False
        return self._bot is None or self._bot.state in ("starting", "polling")

    def status(self) -> dict[str, Any]:
        """A small document for `shopfloor status` (no I/O)."""
        channels: dict[str, Any] = {n: s.state.as_dict() for n, s in self._senders.items()}
        for name, reason in self._disabled.items():
            channels[name] = {"state": "off", "reason": reason}
        return {
            "running": self.running,
            "healthy": self.healthy,
            "error": self._crashed,
            "channels": channels,
            "bot": None if self._bot is None else self._bot.as_dict(),
        }

    # ------------------------------------------------------------------ the thread

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:
            self._crashed = f"{type(exc).__name__}: {exc}"
            log.exception("notify: the notification service stopped on an error")
        finally:
            self._ready.set()
            self._loop = None
            loop.close()

    def _wake_senders(self) -> None:
        for sender in self._senders.values():
            sender.wake.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._senders, self._bot, self._close_commands = {}, None, None
        cfg = self.config.notify
        backoff = Backoff(cfg.retry_initial, cfg.retry_max, rng=self._rng)
        db = JournalOps(lambda: open_journal(self.root))
        commands_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopfloor-bot")
        channels, self._disabled = build(Context(self.root, self.config, self.env))
        tasks = [self._sender_task(ch, db, backoff) for ch in channels]
        bot = self._bot_task(db, backoff, commands_pool)
        if bot is not None:
            tasks.append(bot)
        journal_path = StatePaths(self.root).journal
        outbox.add_waker(journal_path, self.wake)
        self._ready.set()
        log.info("notify: started (%s)", ", ".join(self._senders) or "no channels")
        try:
            await self._stop_event.wait()
        finally:
            outbox.remove_waker(journal_path, self.wake)
            await self._shutdown(tasks, channels, db, commands_pool)

    def _sender_task(
        self, channel: Channel, db: JournalOps, backoff: Backoff
    ) -> asyncio.Task[None]:
        cfg = self.config.notify
        sender = ChannelSender(channel, db, backoff, cfg.send_timeout, cfg.poll_interval)
        self._senders[channel.name] = sender
        return asyncio.create_task(supervise(f"sender {channel.name}", sender.run, backoff))

    def _bot_task(
        self, db: JournalOps, backoff: Backoff, pool: ThreadPoolExecutor
    ) -> asyncio.Task[None] | None:
        """The supervised Telegram poller, if commands are on and the token is set."""
        from shopfloor.notify import poller
        from shopfloor.notify.channels.telegram import token_from

        cfg = self.config.notify.telegram
        if cfg is None or not cfg.commands:
            return None
        try:
            token = token_from(cfg, self.env)
        except ChannelDisabled:
            return None
        state = self._bot = poller.BotState()
        deps = self._poller_deps(db, pool)
        offsets = poller.OffsetStore(self.root, token)
        grace = self.stall_grace

        def restarted(reason: str) -> None:
            state.restarts += 1
            state.state = "restarting"

        def fresh() -> Any:
            return poller.Poller(cfg, token, offsets, deps, backoff, state, grace).run()

        pool.submit(lambda: None)  # start the worker thread now, not on the first command
        return asyncio.create_task(
            supervise("telegram bot", fresh, backoff, state.overdue, 0.2, restarted)
        )

    def _poller_deps(self, db: JournalOps, pool: ThreadPoolExecutor) -> Any:
        """Commands run on `pool` (one thread: never on the loop); replies join the outbox."""
        from shopfloor.notify.poller import PollerDeps

        loop = asyncio.get_running_loop()
        commands = Commands(self.root)
        self._close_commands = commands.close_journal

        async def in_thread(fn: Callable[[], Any]) -> Any:
            return await loop.run_in_executor(pool, fn)

        async def run_command(text: str) -> str:
            return str(await in_thread(lambda: commands.answer(text)))

        async def reply(chat_id: int, text: str) -> None:
            payload = {"chat_id": chat_id, "text": text}
            prio = events.priority(events.REPLY)
            await db.call(lambda j: j.enqueue("telegram", events.REPLY, payload, prio))
            if "telegram" in self._senders:
                self._senders["telegram"].wake.set()

        return PollerDeps(run_command, reply, in_thread)

    async def _shutdown(
        self,
        tasks: list[asyncio.Task[None]],
        channels: list[Channel],
        db: JournalOps,
        pool: ThreadPoolExecutor,
    ) -> None:
        budget = self._stop_budget
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=budget / 2)
        closers = [asyncio.ensure_future(ch.aclose()) for ch in channels]
        if closers:
            await asyncio.wait(closers, timeout=budget / 4)
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:  # anything a cancelled loop left behind
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=budget / 4)
        if self._close_commands is not None:
            pool.submit(self._close_commands)
        pool.shutdown(wait=False, cancel_futures=False)
        db.close()
        if self._bot is not None:
            self._bot.state = "stopped"
        log.info("notify: stopped")
