"""Who may look and who may act: one token, a login cookie, CSRF and Origin checks.

The token comes from the environment variable `[web] token_env` names (default
SHOPFLOOR_WEB_TOKEN) or is generated at start and printed with a login URL. A browser logs in
once with `?token=…` (the server answers with an HttpOnly, SameSite=Strict cookie and a
redirect to the same URL without the token); programs send `Authorization: Bearer <token>`.

A state-changing request (anything but GET/HEAD/OPTIONS) needs the bearer header, or the
cookie plus the CSRF token (header `X-CSRF-Token` or form field `csrf`) and an Origin that is
this server's own (or no Origin and `Sec-Fetch-Site: same-origin`). Every comparison of a
secret is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The login cookie's name, before `_<port>`: browsers share cookies across ports, and two
#: boards (two repositories) on one host must not log each other out.
COOKIE = "shopfloor_token"
#: Where a page embeds the CSRF token, and the header a script sends it in.
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
#: Methods that change nothing: they need only a valid token (cookie or bearer).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths served without a token (static assets hold nothing secret).
PUBLIC_PREFIXES = ("/static/",)
#: How much of a form body is read to find the CSRF field (forms here are small).
_FORM_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Token:
    """The server's token and where it came from (printed differently at start)."""

    value: str
    env_name: str
    generated: bool

    @property
    def csrf(self) -> str:
        return csrf_token(self.value)


def load_token(env_name: str) -> Token:
    """The token from `env_name`, else a fresh random one (which the server then prints)."""
    value = os.environ.get(env_name, "").strip()
    if value:
        return Token(value, env_name, generated=False)
    return Token(secrets.token_urlsafe(32), env_name, generated=True)


def csrf_token(token: str) -> str:
    """The CSRF token pages embed: derived from the token, so it needs no server state, and
    not the token itself (a page's HTML never holds the secret that logs in)."""
    return hmac.new(token.encode(), b"shopfloor-csrf", hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SafeJSONResponse(JSONResponse):
    """JSON with `<`, `>` and `&` escaped (`\\u003c`…): task text from a file can never read
    as markup, even to a client that sniffs or pastes it into a page."""

    def render(self, content: object) -> bytes:
        return safe_json(content).encode("utf-8")


def safe_json(content: object) -> str:
    """Compact JSON with `<`, `>` and `&` as unicode escapes (still the same JSON value)."""
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error envelope every endpoint answers with."""
    return SafeJSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def bearer(request_headers: dict[str, str]) -> str | None:
    value = request_headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def own_origin(scope: Scope, headers: dict[str, str]) -> str:
    """scheme://host[:port] as the client addressed this server (its Host header)."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host = headers.get("host", "")
    if not host and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}"
    return f"{scheme}://{host}"


def cookie_name(scope: Scope, headers: dict[str, str]) -> str:
    """`shopfloor_token_<port>`, the port as the client addressed this server."""
    host = headers.get("host", "")
    _, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        port = "443" if scope.get("scheme") == "https" else "80"
    return f"{COOKIE}_{port}"


def origin_ok(scope: Scope, headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site") == "same-origin"
    return same(origin.rstrip("/"), own_origin(scope, headers))


def _without_token(request: Request) -> str:
    query = [
        (k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"
    ]
    path = request.url.path
    return f"{path}?{urlencode(query)}" if query else path


def login_redirect(request: Request, token: Token, name: str) -> Response:
    """The answer to `?token=` that matched: the cookie, and the same URL without it."""
    response = RedirectResponse(_without_token(request), status_code=303)
    response.set_cookie(
        name,
        token.value,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


class AuthMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): SSE responses stream through it untouched."""

    def __init__(self, app: ASGIApp, token: Token) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        if path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = request.query_params.get("token")
        if given is not None and request.method in SAFE_METHODS:
            if same(given, self.token.value):
                name = cookie_name(scope, headers)
                await login_redirect(request, self.token, name)(scope, receive, send)
                return
            await _unauthorized(headers)(scope, receive, send)
            return
        by_bearer = bearer(headers)
        if by_bearer is not None:
            if not same(by_bearer, self.token.value):
                await _unauthorized(headers)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        cookie = request.cookies.get(cookie_name(scope, headers))
        if cookie is None or not same(cookie, self.token.value):
            await _unauthorized(headers)(scope, receive, send)
            return
        if request.method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        await self._checked_write(scope, receive, send, headers)

    async def _checked_write(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        """A cookie-authenticated write: Origin first, then the CSRF token (header or form)."""
        if not origin_ok(scope, headers):
            await error_response(
                403, "bad_origin", "cross-origin request refused: Origin is not this server"
            )(scope, receive, send)
            return
        given = headers.get(CSRF_HEADER)
        body: list[Message] = []
        if given is None and headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            body, raw = await _read_body(receive)
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            given = form.get(CSRF_FIELD)
        if given is None or not same(given, self.token.csrf):
            await error_response(
                403, "csrf_failed", "missing or wrong CSRF token (X-CSRF-Token or form field csrf)"
            )(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive) if body else receive, send)


#: What a browser that is not logged in sees (a page, not JSON): how to log in.
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Log in · Shopfloor</title></head><body style="font-family:system-ui;margin:2rem">
<h1>Shopfloor: log in</h1>
<p>Open the login URL <code>shopfloor web</code> printed when it started
(<code>http://…/?token=…</code>), or add <code>?token=</code> and the value of the token's
environment variable to this address.</p></body></html>
"""


def _unauthorized(headers: dict[str, str]) -> Response:
    """401: the envelope for programs; for a browser asking for a page, how to log in."""
    wants_page = "text/html" in headers.get("accept", "")
    if wants_page and "authorization" not in headers:
        response: Response = HTMLResponse(LOGIN_PAGE, status_code=401)
    else:
        response = error_response(
            401,
            "unauthorized",
            "a token is needed: Authorization: Bearer <token>, or log in by URL",
        )
    response.headers["WWW-Authenticate"] = 'Bearer realm="shopfloor"'
    return response


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    """The whole request body (bounded), and its messages to hand on to the app."""
    messages: list[Message] = []
    raw = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        raw += message.get("body", b"")
        if len(raw) > _FORM_LIMIT or not message.get("more_body", False):
            break
    return messages, raw


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
