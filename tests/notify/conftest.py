"""Fixtures for the notify tests: a project, fake servers on loopback, fast back-off settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shopfloor import config as config_mod
from shopfloor.config import Config
from shopfloor.journal import Journal
from shopfloor.notify import NotifyService
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
