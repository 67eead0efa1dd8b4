"""The Starlette app: the JSON API, the pages (when present), auth around both, the SSE hub.

`create_app(root, token)` is all a server or a test needs. The context object is what the API
and the pages share; it holds where the project is and how to reach the daemon, never a copy
of the board (every request reads the files and the journal again).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shopfloor.board import Board
from shopfloor.web import auth
from shopfloor.web.events import EventHub

if TYPE_CHECKING:
    from shopfloor.config import Config

log = logging.getLogger("shopfloor.web")


@dataclass
class WebContext:
    """What the API and the pages share. `board` reads the files on each call (its header
    cache is checked against each file's stat); nothing here caches the board's state."""

    root: Path
    board: Board
    config: Config
    token: auth.Token
    hub: EventHub
    #: Wakes the daemon when it runs in this process (`shopfloor run` with [web] enabled).
    wake: Callable[[], None] | None = None

    @property
    def csrf(self) -> str:
        """The CSRF token a page embeds for its forms and scripts (never the token itself)."""
        return self.token.csrf


def _page_routes(ctx: WebContext) -> list[BaseRoute]:
    """The HTML board and task pages, when the pages module is installed (web-pages)."""
    try:
        from shopfloor.web import pages  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return []
    routes: list[BaseRoute] = pages.page_routes(ctx)
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the one envelope (with Allow kept on a 405)."""
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    response = auth.error_response(exc.status_code, code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug: the envelope, and the traceback in the server's log (never to the client)."""
    log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
    return auth.error_response(500, "internal_error", "the server failed; see its log")


def create_app(
    root: Path,
    token: auth.Token | str,
    config: Config | None = None,
    *,
    wake: Callable[[], None] | None = None,
    debounce: float = 0.05,
    heartbeat: float = 15.0,
) -> Starlette:
    """The whole web board for the project at `root`, guarded by `token`."""
    from shopfloor.web import api

    if isinstance(token, str):
        token = auth.Token(token, "", generated=False)
    if config is None:
        from shopfloor import config as config_module
        from shopfloor import defaults

        config = config_module.load(root / defaults.CONFIG_FILE)
    board = Board(root)
    hub = EventHub(board, debounce=debounce, heartbeat=heartbeat)
    ctx = WebContext(board.root, board, config, token, hub, wake)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await hub.stop()

    routes = [*api.api_routes(ctx), *_page_routes(ctx)]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(auth.AuthMiddleware, token=token)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
