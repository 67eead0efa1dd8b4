"""Spend and pauses: dollar budgets per task and per day, and rate-limited agents waiting.

Cost is what the agents report (the journal's `runs.cost_usd`). A task over its budget is
parked for a human; a day over its budget stops new claims until midnight UTC. A rate-limited
agent is paused until the reset time its CLI gave, else for a doubling back-off, so its queue
waits instead of burning attempts. Hotfixes are exempt from budgets: the fire extinguisher
must work at 2 AM whatever was spent that day.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shopfloor.agents import Outcome

if TYPE_CHECKING:  # `status` imports this module: keep pydantic out of its start-up
    from shopfloor.config import Config
    from shopfloor.journal import Journal

#: Outcomes that pause an agent's queue: waiting out a limit, or a human fixing its set-up.
PAUSING = frozenset({Outcome.RATE_LIMITED, Outcome.AUTH_ERROR, Outcome.NOT_INSTALLED})
#: Pauses a human's `retry` lifts: they say the set-up is fixed (a rate limit is not theirs).
SETUP_PROBLEMS = (Outcome.AUTH_ERROR.value, Outcome.NOT_INSTALLED.value)
_BACKOFF_FIRST = 60.0
_BACKOFF_MAX = 3600.0
_WATCH_EVERY = 1.0


def day_start(now: float | None = None) -> str:
    """Midnight UTC of the day `now` falls in, as the journal's timestamp format."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return moment.strftime("%Y-%m-%dT00:00:00Z")


def spent_today(journal: Journal, now: float | None = None) -> float:
    return journal.cost_since(day_start(now))


def day_exhausted(config: Config, journal: Journal, now: float | None = None) -> str | None:
    """Why no new (non-hotfix) run may start today, or None."""
    limit = config.budget.day_usd
    if limit is None:
        return None
    spent = spent_today(journal, now)
    return f"day budget reached: ${spent:.2f} of ${limit:.2f}" if spent >= limit else None


def remaining(config: Config, journal: Journal, task_id: str, role: str) -> float | None:
    """Dollars the next run of this task may spend (None: no limit applies)."""
    if role == "hotfix":
        return None
    left: list[float] = []
    if config.budget.task_usd is not None:
        left.append(config.budget.task_usd - journal.cost_of_task(task_id))
    if config.budget.day_usd is not None:
        left.append(config.budget.day_usd - spent_today(journal))
    return float(min(left)) if left else None


def backoff(strikes: int) -> float:
    """Seconds to wait after the n-th rate limit in a row when the CLI gave no reset time."""
    return float(min(_BACKOFF_MAX, _BACKOFF_FIRST * 2.0 ** max(0, strikes - 1)))


def pause_agent(
    journal: Journal, agent: str, reset_at: float | None, reason: str, now: float | None = None
) -> float:
    """Pause `agent` until its reset time (or a back-off); returns the epoch it resumes."""
    now = time.time() if now is None else now
    if reset_at is not None and reset_at > now:
        until = reset_at
    else:
        until = now + backoff(journal.strikes(agent) + 1)
    journal.pause_agent(agent, until, reason)
    return until


@dataclass
class Watch:
    """Stops a run whose reported cost crosses `limit` while it is still running."""

    limit: float
    cost_so_far: Callable[[], float | None]
    stop: Callable[[str], None]
    crossed: float | None = None

    def __post_init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="budget-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._done.wait(_WATCH_EVERY):
            cost = self.cost_so_far()
            if cost is not None and cost > self.limit:
                self.crossed = cost
                self.stop(f"over budget: ${cost:.2f} of ${self.limit:.2f} left")
                return
