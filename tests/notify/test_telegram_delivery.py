"""The outbox sender against a fake Bot API on loopback: outages of every kind, order, restarts.

Rule (issue 5): a chat API that times out, returns 502, rate-limits or hangs never crashes,
stalls or slows the daemon; after recovery every queued notification arrives once, in order.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from shopfloor.journal import Journal
from shopfloor.notify import events, publish
from tests.conftest import wait_until
from tests.fakes.telegram_server import TOKEN, FakeTelegram

from .conftest import CHAT, ServiceFactory, make_config


def ids_in(texts: list[str]) -> list[int]:
    """The outbox ids (#N on the last line) of the messages, in arrival order."""
    return [int(m[1]) for t in texts if (m := re.search(r"\n#(\d+)$", t))]


def test_normal_delivery(fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory) -> None:
    cfg = make_config(fake_tg)
    svc = service(cfg)
    [row] = publish(journal, cfg, events.TASK_DONE, task_id="T-0001", title="Retry sends")
    wait_until(lambda: fake_tg.messages(CHAT))
    assert fake_tg.texts(CHAT) == [f"[repo] ✅ Done: T-0001 — Retry sends\n#{row}"]
    wait_until(lambda: svc.status()["channels"]["telegram"]["sent"] == 1)
    assert journal.unsent_count() == 0 and svc.healthy


def test_502_for_a_while_then_every_message_once_in_order(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)
    fake_tg.set_mode("502")
    svc = service(cfg)
    rows = [publish(journal, cfg, events.TASK_DONE, task_id=f"T-{n}")[0] for n in range(5)]
    wait_until(lambda: len(fake_tg.calls_of("sendMessage")) >= 3, what="retries during the 502s")
    status = svc.status()["channels"]["telegram"]
    assert status["state"] == "retrying" and "Bad Gateway" in status["last_error"]
    assert not svc.healthy
    fake_tg.set_mode("normal")
    wait_until(lambda: len(fake_tg.messages(CHAT)) >= 5)
    wait_until(lambda: journal.unsent_count() == 0)
    assert ids_in(fake_tg.texts(CHAT)) == rows
    wait_until(lambda: svc.healthy, what="the bot polling again too")


def test_silent_hang_is_cut_by_timeouts_and_recovers(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)
    fake_tg.set_mode("hang")  # every method: sendMessage and getUpdates
    svc = service(cfg)
    rows = [publish(journal, cfg, events.QA_FAILED, task_id=f"T-{n}")[0] for n in range(3)]
    wait_until(lambda: len(fake_tg.calls_of("sendMessage")) >= 2, what="a retry after a hang")
    assert "TimedOut" in (svc.status()["channels"]["telegram"]["last_error"] or "")
    started = time.perf_counter()
    publish(journal, cfg, events.HOTFIX_STARTED, task_id="HOTFIX-x")  # the daemon is not slowed
    assert time.perf_counter() - started < 0.5
    fake_tg.set_mode("normal")
    wait_until(lambda: len(fake_tg.messages(CHAT)) >= 4)
    arrived = ids_in(fake_tg.texts(CHAT))
    assert arrived[0] == rows[-1] + 1  # the hotfix row jumped the queue
    assert arrived[1:] == rows


def test_429_honours_retry_after(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)  # back-off 50 ms: without retry_after it would retry at once
    fake_tg.failing = {"sendMessage"}
    fake_tg.set_mode("429", retry_after=1)
    service(cfg)
    publish(journal, cfg, events.TASK_FAILED, task_id="T-1", reason="checks failed")
    first = wait_until(lambda: fake_tg.calls_of("sendMessage"))[0]
    fake_tg.set_mode("normal")
    wait_until(lambda: fake_tg.messages(CHAT))
    second = fake_tg.calls_of("sendMessage")[1]
    assert first.status == 429 and 1.0 <= second.t - first.t < 2.5


def test_server_down_at_start_then_up(journal: Journal, service: ServiceFactory) -> None:
    with FakeTelegram(listening=False, max_lifetime=60) as fake:
        cfg = make_config(fake)
        svc = service(cfg)
        row = publish(journal, cfg, events.AWAITING_APPROVAL, task_id="T-7", title="Spec")[0]
        wait_until(lambda: svc.status()["channels"]["telegram"]["failures"] >= 2)
        assert svc.running  # refused connections cost nothing but retries
        fake.listen()
        wait_until(lambda: fake.messages(CHAT))
        assert ids_in(fake.texts(CHAT)) == [row]
        assert "/approve T-7" in fake.texts(CHAT)[0]


def test_nothing_is_lost_across_restarts(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)
    fake_tg.set_mode("502")
    first = service(cfg)
    rows = [publish(journal, cfg, events.TASK_DONE, task_id=f"T-{n}")[0] for n in range(3)]
    wait_until(lambda: fake_tg.calls_of("sendMessage"))
    assert first.stop(3.0)
    assert journal.unsent_count("telegram") == 3  # still in SQLite
    fake_tg.set_mode("normal")
    service(cfg)
    wait_until(lambda: journal.unsent_count() == 0)
    assert ids_in(fake_tg.texts(CHAT)) == rows


def test_stop_returns_within_its_timeout_while_the_server_hangs(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg, send_timeout="30s", tg={"request_timeout": "30s"})
    fake_tg.set_mode("hang")
    svc = service(cfg)
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    wait_until(lambda: fake_tg.calls_of("sendMessage") and fake_tg.calls_of("deleteWebhook"))
    started = time.monotonic()
    assert svc.stop(2.0)
    assert time.monotonic() - started < 2.0
    assert not svc.running


def test_the_token_never_reaches_logs_status_or_the_journal(
    fake_tg: FakeTelegram,
    journal: Journal,
    service: ServiceFactory,
    all_logs: object,
    project: Path,
) -> None:
    import pytest

    assert isinstance(all_logs, pytest.LogCaptureFixture)
    cfg = make_config(fake_tg)
    fake_tg.set_mode("502")
    svc = service(cfg)
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    wait_until(lambda: len(fake_tg.calls_of("sendMessage")) >= 2)
    fake_tg.set_mode("normal")
    fake_tg.user_says(CHAT, "/status")
    wait_until(lambda: len(fake_tg.messages(CHAT)) >= 2)
    svc.stop(3.0)
    text = all_logs.text + "".join(r.getMessage() + str(r.exc_text or "") for r in all_logs.records)
    assert "bot***/" in text  # the URLs were logged, masked (httpx INFO, telegram DEBUG)
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert TOKEN not in str(svc.status())
    for path in (project / ".shopfloor").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_a_rejected_token_is_reported_without_the_token(
    journal: Journal, service: ServiceFactory, all_logs: object
) -> None:
    import pytest

    assert isinstance(all_logs, pytest.LogCaptureFixture)
    with FakeTelegram(max_lifetime=60, token="999:another-token-entirely") as fake:
        cfg = make_config(fake)
        svc = service(cfg)
        publish(journal, cfg, events.TASK_DONE, task_id="T-1")
        wait_until(lambda: svc.status()["channels"]["telegram"]["failures"] >= 1)
        error = svc.status()["channels"]["telegram"]["last_error"]
        assert "rejected the bot token" in error
        assert TOKEN not in all_logs.text and TOKEN not in error


def test_no_token_in_the_environment_turns_telegram_off_and_keeps_the_rows(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)
    svc = service(cfg, env={})
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    status = svc.status()
    assert status["channels"]["telegram"]["state"] == "off"
    assert "SHOPFLOOR_TELEGRAM_TOKEN" in status["channels"]["telegram"]["reason"]
    assert journal.unsent_count("telegram") == 1 and fake_tg.calls == []


def test_a_hotfix_message_does_not_wait_out_a_long_back_off(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    """Rule: a never-tried row of higher priority cuts a plain back-off short."""
    cfg = make_config(fake_tg, retry_initial="10s", retry_max="10s")  # a pause of 5..10 s
    fake_tg.failing = {"sendMessage"}
    fake_tg.set_mode("502")
    svc = service(cfg)
    done = publish(journal, cfg, events.TASK_DONE, task_id="T-1")[0]
    wait_until(lambda: svc.status()["channels"]["telegram"]["failures"] == 1)
    fake_tg.set_mode("normal")
    started = time.monotonic()
    hotfix = publish(journal, cfg, events.HOTFIX_AWAITING_HUMAN, task_id="HOTFIX-x")[0]
    wait_until(lambda: len(fake_tg.messages(CHAT)) == 2, what="hotfix, then the rest")
    assert ids_in(fake_tg.texts(CHAT)) == [hotfix, done]
    assert fake_tg.messages(CHAT)[0].t - started < 2.0


def test_flush_lets_the_last_messages_out_before_stop(
    fake_tg: FakeTelegram, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(fake_tg)
    svc = service(cfg)
    publish(journal, cfg, events.DAEMON_STOPPED, pid=7)
    assert svc.flush(5.0)
    assert svc.stop(3.0)
    assert fake_tg.texts(CHAT)[0].startswith("[repo] Shopfloor daemon stopped (pid 7)")
