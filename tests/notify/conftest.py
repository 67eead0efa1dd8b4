"""Fixtures for the notify tests: a project, fake servers on loopback, fast back-off settings."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shopfloor import config as config_mod
from shopfloor.config import Config
from shopfloor.journal import Journal
from shopfloor.notify import NotifyService, publish
from tests.fakes.telegram_server import TOKEN, FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver

CHAT = 4242
STRANGER = 666
TOKEN_ENV = "SHOPFLOOR_TELEGRAM_TOKEN"

#: Fast settings: every back-off, poll and timeout in tens or hundreds of milliseconds.
FAST = {
    "retry_initial": "50ms",
    "retry_max": "400ms",
    "poll_interval": "200ms",
    "send_timeout": "3s",
}
FAST_TELEGRAM = {
    "chat_ids": [CHAT],
    "poll_timeout": 1,
    "request_timeout": "1s",
    "connect_timeout": "500ms",
}


def make_config(
    telegram: FakeTelegram | None = None,
    *,
    tg: dict[str, Any] | None = None,
    webhook: list[dict[str, Any]] | None = None,
    command: list[dict[str, Any]] | None = None,
    **notify: Any,
) -> Config:
    section: dict[str, Any] = {**FAST, **notify}
    if telegram is not None:
        section["telegram"] = {**FAST_TELEGRAM, "api_base": telegram.url, **(tg or {})}
    if webhook:
        section["webhook"] = webhook
    if command:
        section["command"] = command
    return config_mod.from_mapping({"notify": section})


@pytest.fixture
def fake_tg() -> Iterator[FakeTelegram]:
    with FakeTelegram(max_lifetime=900) as fake:  # a safety net; pytest's timeout comes first
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(max_lifetime=900) as fake:
        yield fake


@pytest.fixture
def journal(project: Path) -> Iterator[Journal]:
    """The daemon side's own journal connection (the service opens its own)."""
    with Journal.for_project(project) as j:
        yield j


ServiceFactory = Callable[..., NotifyService]

#: A notification's last line is `#<outbox id>` (events.render); a bot's reply has none.
_OUTBOX_ID = re.compile(r"\n#\d+\Z")


def is_reply(text: str) -> bool:
    """A bot's reply rather than a notification (daemon started, hotfix started, …), which
    the service may deliver at any moment, before or after the reply."""
    return _OUTBOX_ID.search(text) is None


def reply_to(
    fake: FakeTelegram,
    text: str,
    wanted: Callable[[str], bool] = is_reply,
    timeout: float = 15.0,
    chat: int = CHAT,
) -> str:
    """Say `text` from `chat`; the first message after it that `wanted` accepts, by content,
    whatever else arrives meanwhile. Fails at the deadline listing what did arrive."""
    before = len(fake.texts(chat))
    fake.user_says(chat, text)
    deadline = time.monotonic() + timeout
    while True:
        arrived = fake.texts(chat)[before:]
        found = next((t for t in arrived if wanted(t)), None)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no wanted reply to {text!r} within {timeout}s; got {arrived}")
        time.sleep(0.01)


@pytest.fixture
def service(project: Path) -> Iterator[ServiceFactory]:
    """start(config, env=...) -> a running NotifyService, stopped at teardown."""
    started: list[NotifyService] = []

    def start(cfg: Config, env: dict[str, str] | None = None, **kw: Any) -> NotifyService:
        svc = NotifyService(project, cfg, env={TOKEN_ENV: TOKEN} if env is None else env, **kw)
        svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop(3.0)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, DEBUG and up (httpx and telegram included)."""
    caplog.set_level(logging.DEBUG)
    return caplog


@contextlib.contextmanager
def chat_daemon(
    tmp_path: Path, fake_tg: FakeTelegram, hotfix_agent: list[str], reconcile_every: float
) -> Iterator[Path]:
    """A project whose hotfix agent is `hotfix_agent`, its daemon wired to notifications
    (`notify=partial(publish, journal, config)`) and the notify service beside it."""
    from shopfloor.scheduler import Daemon
    from tests.conftest import wait_until
    from tests.support import make_project

    extra = (
        '[notify]\nretry_initial = "50ms"\nretry_max = "400ms"\n'
        f'[notify.telegram]\nchat_ids = [{CHAT}]\napi_base = "{fake_tg.url}"\n'
        'poll_timeout = 1\nrequest_timeout = "1s"\n'
    )
    agent = {"fix": {"backend": "command", "command": hotfix_agent}}
    root = make_project(tmp_path, agents=agent, extra=extra)
    cfg = config_mod.load(root / "shopfloor.toml")
    service = NotifyService(root, cfg, env={TOKEN_ENV: TOKEN})
    service.start()
    with Journal.for_project(root) as journal:
        notify = functools.partial(publish, journal, cfg)
        daemon = Daemon(root, cfg, notify=notify, settle=0.0, reconcile_every=reconcile_every)
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        # The daemon watches the board once its hotfix thread runs (it starts after the
        # watchers); a file filed before that waits for a reconcile.
        wait_until(lambda: any(t.name == "hotfix" for t in threading.enumerate()), 30)
        try:
            yield root
        finally:
            daemon.stop()
            thread.join(30)
            # As `shopfloor run` does: the last messages (daemon stopped) out, then stop.
            # Stopped at once, the service cancelled that send between its headers and body.
            service.flush(2.0)
            assert service.stop(3.0)
    assert not thread.is_alive()
