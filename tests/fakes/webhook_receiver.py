"""A webhook receiver on 127.0.0.1 for tests: records each JSON POST; the same failure modes
as the fake Telegram server ("normal", "502", "hang", "429" with a Retry-After header, and
down at start-up with `listening=False`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram_server import FakeHTTPServer


@dataclass
class Received:
    t: float
    path: str
    body: dict[str, Any]


class WebhookReceiver(FakeHTTPServer):
    """Answers 200 to every POST, or 400 to a body for which `reject(body)` is true."""

    def __init__(self, listening: bool = True, max_lifetime: float = 120.0) -> None:
        self.reject: Callable[[dict[str, Any]], bool] = lambda body: False
        self.received: list[Received] = []
        self._recv_lock = threading.Lock()
        super().__init__(listening, max_lifetime)

    def hook_url(self, path: str = "/hook") -> str:
        return f"{self.url}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        with self._recv_lock:
            return [r.body for r in self.received]

    def route(self, path: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.reject(params):
            return 400, {"ok": False, "error": "rejected"}
        with self._recv_lock:
            self.received.append(Received(time.monotonic(), path, params))
        return 200, {"ok": True}
