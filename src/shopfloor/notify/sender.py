"""The outbox sender: one task per channel drains that channel's rows, strictly in order.

Rules (docs/notifications.md):
- The head of a channel's queue is its unsent row with the lowest (priority, id). Nothing
  behind the head is sent before the head succeeded: order holds per channel, and priority
  is the only thing that reorders (a hotfix row jumps the queue).
- A failure defers the row (attempts + 1, last_error) and backs the channel off:
  exponential with jitter, or exactly what the receiver asked (`retry_after`, plus a little).
- A permanent failure (the receiver refuses this message for good) parks the row as
  undeliverable so it cannot block the channel forever; it stays in the journal.
- Every delivery is bounded by `send_timeout`, whatever the channel does.
- At-least-once: a row is marked sent only after the channel returned; the row id travels in
  the message so the rare duplicate (crash between send and mark) is recognisable.
- Rows survive restarts (SQLite); a restarted sender retries its head at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shopfloor.journal import Journal, OutboxItem
from shopfloor.notify import _secrets
from shopfloor.notify.channels import Channel, ChannelError

log = logging.getLogger("shopfloor.notify")

T = TypeVar("T")

#: next_attempt_at of a row that can never be delivered (pending() never returns it).
UNDELIVERABLE = math.inf
#: A loop that ran this long before dying restarts with the shortest back-off again.
HEALTHY_RUN = 60.0
#: "Due by" time used to read a channel's head regardless of its back-off.
ANY_TIME = 1e300


@dataclass
class Backoff:
    """Exponential back-off with equal jitter: delay(n) is in [d/2, d], d = initial * 2**(n-1)."""

    initial: float
    maximum: float
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        exponent = min(max(0, failures - 1), 64)
        base = min(self.maximum, self.initial * self.factor**exponent)
        return base / 2 + self.rng.uniform(0, base / 2)

    def after(self, retry_after: float) -> float:
        """What the receiver asked for, plus up to 10% (max 1 s) so clients do not stampede."""
        return retry_after + self.rng.uniform(0, min(1.0, retry_after * 0.1))


class JournalOps:
    """The journal, used from the event loop through one worker thread (SQLite never blocks
    the loop, and the connection is only ever touched by that thread)."""

    def __init__(self, opener: Callable[[], Journal]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopfloor-outbox")
        self._opener = opener
        self._journal: Journal | None = None

    def _db(self) -> Journal:
        if self._journal is None:
            self._journal = self._opener()
        return self._journal

    async def call(self, fn: Callable[[Journal], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._db()))

    async def head(self, channel: str) -> OutboxItem | None:
        items = await self.call(lambda j: j.pending(channel, now=ANY_TIME, limit=1))
        return items[0] if items else None

    def close(self) -> None:
        """Close the connection on its own thread; never wait for a stuck call."""
        self._executor.submit(self._close_db)
        self._executor.shutdown(wait=False, cancel_futures=False)

    def _close_db(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


@dataclass
class SenderState:
    """What `status` shows about a channel."""

    sent: int = 0
    failures: int = 0  # consecutive; 0 = healthy
    undeliverable: int = 0
    last_error: str | None = None
    last_sent_at: float | None = None
    retry_at: float | None = None  # wall clock of the next attempt while backing off
    unsent: int = 0

    def as_dict(self) -> dict[str, Any]:
        retry_in = None if self.retry_at is None else max(0.0, self.retry_at - time.time())
        state = "ok" if self.failures == 0 else "retrying"
        return {
            "state": state,
            "unsent": self.unsent,
            "sent": self.sent,
            "failures": self.failures,
            "undeliverable": self.undeliverable,
            "last_error": self.last_error,
            "last_sent_at": self.last_sent_at,
            "retry_in": None if retry_in is None else round(retry_in, 1),
        }


class ChannelSender:
    def __init__(
        self,
        channel: Channel,
        db: JournalOps,
        backoff: Backoff,
        send_timeout: float,
        poll_interval: float,
    ) -> None:
        self.channel = channel
        self.db = db
        self.backoff = backoff
        self.send_timeout = send_timeout
        self.poll_interval = poll_interval
        self.state = SenderState()
        self.wake = asyncio.Event()

    @property
    def name(self) -> str:
        return self.channel.name

    async def run(self) -> None:
        """Deliver forever (until cancelled)."""
        while True:
            item = await self.db.head(self.name)
            if item is None:
                self.state.unsent = 0
                await self._idle()
                continue
            wait, honour = await self._deliver(item)
            if wait > 0:
                await self._back_off(wait, item, honour)
                self.state.retry_at = None

    async def _back_off(self, delay: float, failed: OutboxItem, honour: bool) -> None:
        """Wait out the back-off (new rows wait too). Only a more urgent row that was never
        tried cuts it short — unless the receiver told us how long to wait (`honour`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            # Clear, then look, then wait: a row written in between still wakes us, and a row
            # written by another process is found within one poll interval.
            self.wake.clear()
            if not honour:
                head = await self.db.head(self.name)
                if head is not None and head.priority < failed.priority and head.attempts == 0:
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, self.poll_interval)):
                    await self.wake.wait()

    async def _idle(self) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval):
                await self.wake.wait()

    async def _deliver(self, item: OutboxItem) -> tuple[float, bool]:
        """Send the head: (seconds to back off, whether the receiver set them); (0, _) if sent."""
        try:
            async with asyncio.timeout(self.send_timeout):
                await self.channel.send(item)
        except ChannelError as exc:
            return await self._failed(item, str(exc), exc.retry_after, exc.permanent)
        except TimeoutError:
            return await self._failed(item, f"no answer within {self.send_timeout:g}s")
        except Exception as exc:
            log.debug("notify: %s raised", self.name, exc_info=True)
            return await self._failed(item, f"{type(exc).__name__}: {exc}")
        await self.db.call(lambda j: j.mark_sent(item.id))
        self.state.sent += 1
        self.state.failures = 0
        self.state.last_sent_at = time.time()
        self.state.unsent = await self.db.call(lambda j: j.unsent_count(self.name))
        return 0.0, False

    async def _failed(
        self,
        item: OutboxItem,
        error: str,
        retry_after: float | None = None,
        permanent: bool = False,
    ) -> tuple[float, bool]:
        error = _secrets.mask(error)
        self.state.last_error = error
        if permanent:
            self.state.undeliverable += 1
            log.error("notify: %s gave up on #%s (%s): %s", self.name, item.id, item.event, error)
            await self.db.call(lambda j: j.defer(item.id, UNDELIVERABLE, f"undeliverable: {error}"))
            return 0.0, False
        self.state.failures += 1
        if retry_after is not None:
            delay = self.backoff.after(retry_after)
        else:
            delay = self.backoff.delay(self.state.failures)
        self.state.retry_at = time.time() + delay
        log.warning(
            "notify: %s failed on #%s (attempt %d), retry in %.1fs: %s",
            self.name,
            item.id,
            item.attempts + 1,
            delay,
            error,
        )
        await self.db.call(lambda j: j.defer(item.id, time.time() + delay, error))
        self.state.unsent = await self.db.call(lambda j: j.unsent_count(self.name))
        return delay, retry_after is not None


async def supervise(
    name: str,
    start: Callable[[], Awaitable[None]],
    backoff: Backoff,
    stalled: Callable[[], bool] | None = None,
    check_every: float = 1.0,
    on_restart: Callable[[str], None] | None = None,
) -> None:
    """Run `start()` forever: restart it (with back-off) when it dies or `stalled()` says so."""
    restarts = 0
    while True:
        started = time.monotonic()
        task = asyncio.ensure_future(start())
        try:
            reason = await _watch(task, stalled, check_every)
        except asyncio.CancelledError:  # we are being stopped: stop the loop we run, briefly
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            raise
        task.cancel()
        await asyncio.wait({task}, timeout=5.0)  # a task stuck outside await is abandoned
        restarts = 1 if time.monotonic() - started > HEALTHY_RUN else restarts + 1
        log.warning("notify: %s %s; restarting it", name, reason)
        if on_restart is not None:
            on_restart(reason)
        await asyncio.sleep(backoff.delay(min(restarts, 8)))


async def _watch(
    task: asyncio.Future[None], stalled: Callable[[], bool] | None, check_every: float
) -> str:
    while True:
        done, _ = await asyncio.wait({task}, timeout=check_every)
        if done:
            if task.cancelled():
                return "was cancelled"
            exc = task.exception()
            if exc is None:
                return "ended"
            log.error("notify: loop died", exc_info=exc)
            return f"died ({type(exc).__name__}: {_secrets.mask(str(exc))})"
        if stalled is not None and stalled():
            return "stopped receiving"
