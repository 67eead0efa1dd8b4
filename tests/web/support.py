"""Serving a project's board from a thread for a test, and reading its event stream."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from shopfloor import config
from shopfloor.web import auth, server

TOKEN = "test-token-3f9a"
CSRF = auth.csrf_token(TOKEN)


@contextlib.contextmanager
def served(root: Path, token: str = TOKEN) -> Iterator[str]:
    """The board of `root` on 127.0.0.1 (a free port); stopped however the test ends."""
    cfg = config.load(root / "shopfloor.toml")
    serving = server.serve_in_thread(
        root,
        cfg,
        host="127.0.0.1",
        port=0,
        token=auth.Token(token, cfg.web.token_env, generated=False),
        out=None,
    )
    try:
        yield serving.url
    finally:
        serving.stop()
        assert not serving.thread.is_alive(), "the server did not stop"


class EventReader:
    """An SSE stream read on a thread: parsed events land in a queue as they arrive."""

    def __init__(self, url: str, path: str = "/api/v1/events", token: str = TOKEN) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.raw: list[str] = []
        self._stop = threading.Event()
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self._path = path
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._read_events()
        finally:
            self.events.put({"event": "_eof"})
            self._client.close()

    def _read_events(self) -> None:
        with contextlib.suppress(httpx.HTTPError), self._client.stream("GET", self._path) as r:
            kind, data = "", ""
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                self.raw.append(line)
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    self.events.put({"event": kind, **json.loads(data)})
                    kind, data = "", ""

    def next(self, timeout: float) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """The first event for which `predicate` holds, within `timeout` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout}s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                raise AssertionError(f"no matching event within {timeout}s") from None
            if predicate(event):
                return event

    def close(self) -> None:
        """Stop reading. A read blocked on the socket ends when the server ends the stream
        (every test's server stops at teardown), so this does not wait for it."""
        self._stop.set()
