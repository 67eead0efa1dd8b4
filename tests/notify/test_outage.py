"""Outages measured: queued notifications arrive once, in order; how long after recovery.

Each case takes the fake Bot API down in one way for a fixed time (the outage is the thing
measured, so this test waits it out on purpose), publishes notifications during it, brings the
server back and measures each message's delay from recovery to arrival at the server.

    .venv/bin/pytest -q -s tests/notify/test_outage.py        # prints the table

SHOPFLOOR_OUTAGES="502:30,down:90" and SHOPFLOOR_OUTAGE_RETRY="2s:60s" (initial:max back-off,
the production defaults) measure longer outages with real settings (minutes, not in CI).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from shopfloor.config import parse_duration
from shopfloor.journal import Journal
from shopfloor.notify import events, publish
from tests.conftest import wait_until
from tests.fakes.telegram_server import FakeTelegram

from .conftest import CHAT, ServiceFactory, make_config
from .test_telegram_delivery import ids_in

CASES = [
    (kind, float(seconds))
    for kind, _, seconds in (
        c.partition(":")
        for c in os.environ.get("SHOPFLOOR_OUTAGES", "502:1,down:1,hang:2,502:4").split(",")
    )
]
RETRY = os.environ.get("SHOPFLOOR_OUTAGE_RETRY", "50ms:400ms").split(":")
MESSAGES = 5

_results: list[tuple[str, float, list[float]]] = []


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if not _results:
        return
    print(f"\noutage recovery (back-off {RETRY[0]}..{RETRY[1]}, {MESSAGES} messages each):")
    for kind, seconds, delays in _results:
        print(
            f"  {kind:>5} {seconds:5.1f}s: delay after recovery median "
            f"{statistics.median(delays):.3f}s, max {max(delays):.3f}s"
        )
    every = [d for _, _, delays in _results for d in delays]
    print(f"  all: median {statistics.median(every):.3f}s over {len(every)} messages")


def _begin(fake: FakeTelegram, kind: str) -> None:
    if kind == "down":
        fake.go_down()
    else:
        fake.set_mode(kind)


def _end(fake: FakeTelegram, kind: str) -> float:
    recovered = time.monotonic()
    if kind == "down":
        fake.listen()
    else:
        fake.set_mode("normal")
    return recovered


@pytest.mark.parametrize(("kind", "seconds"), CASES, ids=[f"{k}-{s:g}s" for k, s in CASES])
def test_every_queued_notification_arrives_once_in_order_after_an_outage(
    kind: str, seconds: float, fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg, retry_initial=RETRY[0], retry_max=RETRY[1])
    svc = service(cfg)
    publish(journal, cfg, events.DAEMON_STARTED, pid=1)
    wait_until(lambda: fake_tg.messages(CHAT), what="delivery before the outage")
    # and its success recorded: an outage that cuts the answer to a delivered message makes it
    # go again (at least once — nobody can tell a lost answer from a lost request)
    wait_until(lambda: journal.unsent_count() == 0, 10, "the first one marked sent")
    _begin(fake_tg, kind)
    rows, slowest_publish = [], 0.0
    pause = threading.Event()
    for n in range(MESSAGES):  # spread over the outage
        started = time.perf_counter()
        rows += publish(journal, cfg, events.TASK_DONE, task_id=f"T-{n}")
        slowest_publish = max(slowest_publish, time.perf_counter() - started)
        pause.wait(seconds / MESSAGES)  # the outage itself: the one wait this test measures
    assert svc.running and slowest_publish < 0.1  # the daemon side never waits on the network
    recovered = _end(fake_tg, kind)
    patience = 2 * parse_duration(RETRY[1]) + 30
    wait_until(lambda: len(fake_tg.messages(CHAT)) >= MESSAGES + 1, patience, "all delivered")
    wait_until(lambda: journal.unsent_count() == 0, 10, "all marked sent")
    arrived = fake_tg.messages(CHAT)[1:]
    assert ids_in([m.text for m in arrived]) == rows  # each once, in order
    _results.append((kind, seconds, [m.t - recovered for m in arrived]))
