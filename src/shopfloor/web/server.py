"""Serving the board: uvicorn run from Python, on loopback unless shopfloor.toml says not.

`shopfloor web` serves in the foreground (SIGINT/SIGTERM stop it cleanly); `shopfloor run`
with `[web] enabled = true` serves from a thread beside the daemon and stops it when the
daemon stops. Either way the login URL is printed once the socket is bound (so port 0 works).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import uvicorn

from shopfloor.errors import ShopfloorError
from shopfloor.web import auth
from shopfloor.web.app import WebContext, create_app

if TYPE_CHECKING:
    from shopfloor.config import Config

#: Seconds uvicorn waits for open requests when stopping (event streams are ended first).
GRACEFUL = 3


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, config: Config) -> str | None:
    """None when `host` may be bound; else why not. A non-loopback address must be written
    in shopfloor.toml's `[web] host` (a deliberate choice, checked into the repository), not
    only given on the command line; then a warning is returned instead."""
    if is_loopback(host):
        return None
    configured = "host" in config.web.model_fields_set and config.web.host == host
    if not configured:
        raise ShopfloorError(
            f"refusing to serve on {host}: only loopback addresses unless shopfloor.toml "
            f'says so ([web] host = "{host}"); anyone who can reach it needs only the token'
        )
    return (
        f"WARNING: serving on {host}, reachable from other machines: anyone with the token "
        "can steer the shop; put it behind HTTPS (a reverse proxy) on an untrusted network"
    )


def url_host(host: str) -> str:
    """The host for a URL a person can open: a wildcard bind is reached on loopback."""
    if host in ("0.0.0.0", "", "::", "[::]"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def login_lines(token: auth.Token, host: str, port: int) -> list[str]:
    """What to print at start: the URL, with the token only when it was generated here."""
    base = f"http://{url_host(host)}:{port}/"
    if token.generated:
        return [f"shopfloor web: open {base}?token={token.value}"]
    return [
        f"shopfloor web: open {base} (log in with ?token=<the value of ${token.env_name}>)",
    ]


class BoardServer(uvicorn.Server):
    """uvicorn.Server that ends the event streams before waiting for open requests, says
    where it listens once bound, and stops on SIGINT/SIGTERM without re-raising them."""

    def __init__(
        self, config: uvicorn.Config, ctx: WebContext, on_ready: Callable[[int], None]
    ) -> None:
        super().__init__(config)
        self.ctx = ctx
        self.on_ready = on_ready
        self.port = 0
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:  # could not bind
            return
        for server in self.servers:
            for sock in server.sockets:
                self.port = int(sock.getsockname()[1])
                break
        self.on_ready(self.port)
        self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.ctx.hub.close_clients()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handlers = {sig: signal.signal(sig, self._stop_on_signal) for sig in (2, 15)}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _stop_on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: do not wait for open requests
        self.should_exit = True


@dataclass
class Serving:
    """A board served from a thread; `stop()` ends it (used beside the daemon and in tests)."""

    server: BoardServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def build_server(
    root: Path,
    config: Config,
    token: auth.Token,
    host: str,
    port: int,
    *,
    wake: Callable[[], None] | None = None,
    out: TextIO | None = None,
) -> BoardServer:
    """The app and a server for it; `out` gets the login line once the port is bound."""
    app = create_app(root, token, config, wake=wake)
    ctx: WebContext = app.state.ctx
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL,
        # no ws: the board needs no websockets (and their libraries need not be installed)
        ws="none",
    )

    def ready(bound: int) -> None:
        if out is not None:
            for line in login_lines(token, host, bound):
                print(line, file=out, flush=True)

    return BoardServer(uv_config, ctx, ready)


def serve(root: Path, config: Config, host: str, port: int, out: TextIO = sys.stderr) -> int:
    """`shopfloor web`: serve in the foreground until SIGINT/SIGTERM; the exit code."""
    warning = check_host(host, config)
    if warning:
        print(warning, file=out, flush=True)
    token = auth.load_token(config.web.token_env)
    server = build_server(root, config, token, host, port, out=out)
    try:
        asyncio.run(server.serve())
    except SystemExit:  # uvicorn's way of saying it could not bind (it logged why)
        if server.started:
            raise
        raise ShopfloorError(_cannot_serve(host, port)) from None
    return 0 if server.started else 1


def _cannot_serve(host: str, port: int) -> str:
    return (
        f"cannot serve the web board on {host}:{port} (the line above says why); "
        "if the port is taken, choose another with --port or [web] port (0: any free port)"
    )


def serve_in_thread(
    root: Path,
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    token: auth.Token | None = None,
    wake: Callable[[], None] | None = None,
    out: TextIO | None = sys.stderr,
    ready_timeout: float = 30.0,
) -> Serving:
    """Serve from a thread (beside the daemon, or in a test); returns once it listens."""
    host = config.web.host if host is None else host
    port = config.web.port if port is None else port
    warning = check_host(host, config)
    if warning and out is not None:
        print(warning, file=out, flush=True)
    token = token or auth.load_token(config.web.token_env)
    server = build_server(root, config, token, host, port, wake=wake, out=out)
    thread = threading.Thread(target=server.run, name="shopfloor-web", daemon=True)
    thread.start()
    while not server.ready.wait(0.05):
        if not thread.is_alive():
            raise ShopfloorError(_cannot_serve(host, port))
        ready_timeout -= 0.05
        if ready_timeout <= 0:
            server.should_exit = True
            raise ShopfloorError(f"the web board did not start on {host}:{port} in time")
    return Serving(server, thread)
