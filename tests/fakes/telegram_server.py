"""A fake Telegram Bot API server on 127.0.0.1 (stdlib http.server in a thread), for tests.

It implements what python-telegram-bot calls here (getMe, sendMessage, getUpdates with a
long-poll timeout, deleteWebhook), records every call and sent message, and lets a test
inject incoming messages. Failure modes are switchable at any time:

- "normal"
- "502": answers 502 Bad Gateway
- "hang": reads the request and never answers (until the mode changes or the server closes)
- "429": answers 429 with parameters.retry_after (set `retry_after`)
- down at start-up: `FakeTelegram(listening=False)` binds its port but does not listen (the
  kernel refuses connections) until `listen()`.

`failing` limits a failure mode to some API methods (e.g. {"sendMessage"}). The server stops
by itself after `max_lifetime` seconds and on `close()`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
BOT_ID = 123456


@dataclass
class Call:
    t: float  # time.monotonic() when the request arrived
    method: str
    params: dict[str, Any]
    status: int = 0  # 0 while hanging / never answered


@dataclass
class Sent:
    t: float
    chat_id: int
    text: str


class FakeHTTPServer:
    """Modes, recording and lifetime shared by the fakes; subclasses implement `route()`."""

    def __init__(self, listening: bool = True, max_lifetime: float = 120.0) -> None:
        self.mode = "normal"
        self.retry_after = 1
        self.failing: set[str] | None = None  # None: every method/path fails in a failure mode
        self.calls: list[Call] = []
        self.lock = threading.Condition()
        self.connections: set[socket.socket] = set()
        self._unhang = threading.Event()
        self._closed = threading.Event()
        self._handler = _make_handler(self)
        self.server = self._bind(0)
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None
        self._timer = threading.Timer(max_lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()
        if listening:
            self.listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _bind(self, port: int) -> ThreadingHTTPServer:
        """Bound but not listening: connections to the port are refused."""
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler, bind_and_activate=False)
        server.daemon_threads = True
        server.server_bind()
        return server

    def go_down(self) -> None:
        """Stop listening (the port stays ours, so connections are refused) until listen()."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread = None
        self.server.server_close()
        self._drop_connections()
        self._unhang.set()
        self.server = self._bind(self.port)

    def _drop_connections(self) -> None:
        with self.lock:
            connections, self.connections = list(self.connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def listen(self) -> None:
        """Start accepting connections (a server created with listening=False was 'down')."""
        self.server.server_activate()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def set_mode(self, mode: str, retry_after: int | None = None) -> None:
        assert mode in ("normal", "502", "hang", "429"), mode
        with self.lock:
            if retry_after is not None:
                self.retry_after = retry_after
            self.mode = mode
            old, self._unhang = self._unhang, threading.Event()
            self.lock.notify_all()
        old.set()  # hanging requests of the previous mode give up (without an answer)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._timer.cancel()
        self._unhang.set()
        with self.lock:
            self.lock.notify_all()
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()
        self._drop_connections()

    def __enter__(self) -> FakeHTTPServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def calls_of(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    # ------------------------------------------------------------------ request side

    def failure_for(self, method: str) -> str:
        with self.lock:
            if self.mode == "normal" or (self.failing is not None and method not in self.failing):
                return "normal"
            return self.mode

    def hang(self) -> None:
        """Block this request thread until the mode changes or the server closes."""
        with self.lock:
            event = self._unhang
        event.wait()

    def route(self, path: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def answer(
        self, path: str, method: str, params: dict[str, Any]
    ) -> tuple[int, bytes, str] | None:
        """(status, body, content type) per the current mode; None after a silent hang."""
        call = Call(time.monotonic(), method, params)
        with self.lock:
            self.calls.append(call)
        mode = self.failure_for(method)
        if mode == "hang":
            self.hang()
            return None
        if mode == "502":
            call.status = 502
            return 502, b"<html><body>502 Bad Gateway</body></html>", "text/html"
        if mode == "429":
            call.status = 429
            return 429, json.dumps(self.too_many()).encode(), "application/json"
        status, data = self.route(path, method, params)
        call.status = status
        return status, json.dumps(data).encode(), "application/json"

    def too_many(self) -> dict[str, Any]:
        """The body of a 429 answer."""
        return {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {self.retry_after}",
            "parameters": {"retry_after": self.retry_after},
        }


def _make_handler(fake: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with fake.lock:
                fake.connections.add(self.connection)

        def finish(self) -> None:
            with fake.lock:
                fake.connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet (and request paths hold the token)

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def _serve(self) -> None:
            answer = fake.answer(self.path, *fake_parse(self))
            if answer is None:  # hung: no answer at all
                self.close_connection = True
                return
            self._reply(*answer)

        def _reply(self, status: int, body: bytes, ctype: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", str(fake.retry_after))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True  # the client gave up (timeout): fine

    return Handler


def fake_parse(handler: BaseHTTPRequestHandler) -> tuple[str, dict[str, Any]]:
    """(method or path, parameters) from a form-encoded or JSON request."""
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    method = handler.path.rstrip("/").rsplit("/", 1)[-1]
    ctype = handler.headers.get("Content-Type", "")
    params: dict[str, Any] = {}
    if "json" in ctype and raw:
        params = json.loads(raw)
    elif raw:
        for key, values in urllib.parse.parse_qs(raw.decode()).items():
            value: Any = values[-1]
            with contextlib.suppress(ValueError):
                value = json.loads(value)
            params[key] = value
    return method, params


@dataclass
class _Updates:
    next_id: int = 1
    queue: list[dict[str, Any]] = field(default_factory=list)


class FakeTelegram(FakeHTTPServer):
    """The Bot API at `url` (config: api_base = fake.url), for the bot token TOKEN."""

    def __init__(self, listening: bool = True, max_lifetime: float = 120.0, token: str = TOKEN):
        self.token = token
        self.sent: list[Sent] = []
        self._updates = _Updates()
        self._message_id = 0
        super().__init__(listening, max_lifetime)

    # ------------------------------------------------------------------ test side

    def user_says(self, chat_id: int, text: str, date: float | None = None) -> int:
        """An incoming message from `chat_id` (a private chat), delivered by getUpdates."""
        with self.lock:
            update_id = self._updates.next_id
            self._updates.next_id += 1
            self._message_id += 1
            self._updates.queue.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": self._message_id,
                        "date": int(date if date is not None else time.time()),
                        "chat": {"id": chat_id, "type": "private", "first_name": "Tester"},
                        "from": {"id": chat_id, "is_bot": False, "first_name": "Tester"},
                        "text": text,
                    },
                }
            )
            self.lock.notify_all()
        return update_id

    def messages(self, chat_id: int | None = None) -> list[Sent]:
        with self.lock:
            return [m for m in self.sent if chat_id is None or m.chat_id == chat_id]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    # ------------------------------------------------------------------ server side

    def route(self, path: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not path.startswith(f"/bot{self.token}/"):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method == "getMe":
            return 200, {"ok": True, "result": _bot_user()}
        if method in ("deleteWebhook", "setMyCommands"):
            return 200, {"ok": True, "result": True}
        if method == "sendMessage":
            if "chat_id" not in params or "text" not in params:
                # What the real API says; seen when a client is cancelled between its headers
                # and its body (a service stopping mid-send), which used to crash the handler.
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request"}
            return 200, {"ok": True, "result": self._send(params)}
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _send(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, text = int(params["chat_id"]), str(params["text"])
        with self.lock:
            self._message_id += 1
            self.sent.append(Sent(time.monotonic(), chat_id, text))
            message_id = self._message_id
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": _bot_user(),
            "text": text,
        }

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self.lock:
            while True:
                self._updates.queue = [
                    u for u in self._updates.queue if u["update_id"] >= offset
                ]  # an offset confirms everything below it
                if self._updates.queue or self._closed.is_set() or self.mode != "normal":
                    return list(self._updates.queue)
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.lock.wait(min(left, 0.5))


def _bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Shopfloor Test", "username": "sf_test_bot"}
