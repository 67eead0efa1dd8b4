"""Keep secrets (the bot token, secret webhook URLs) out of logs and surfaced error text.

httpx logs every request URL at INFO and python-telegram-bot logs its API URL at DEBUG; for
Telegram that URL holds the token. A filter on those loggers rewrites any record that contains a
known secret before a handler sees it, and `mask()` cleans text we report ourselves.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"
#: Loggers whose records can carry a request URL (a filter only sees records of its own logger).
LOGGERS = (
    "shopfloor.notify",
    "httpx",
    "httpcore",
    "asyncio",
    "telegram",
    "telegram.Bot",
    "telegram.ext",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
)

_secrets: set[str] = set()
_lock = threading.Lock()


def mask(text: str, secrets: set[str] | None = None) -> str:
    """`text` with every known secret replaced by ***."""
    for secret in sorted(secrets if secrets is not None else _snapshot(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _snapshot() -> set[str]:
    with _lock:
        return set(_secrets)


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _snapshot()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        if any(s in message for s in secrets):
            record.msg, record.args = mask(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info), secrets)
        return True


class _Quiet(logging.Filter):
    """PTB logs an ERROR with a traceback for every non-JSON answer (a proxy's 502 page).
    The sender already logs one warning per failed attempt, so this becomes DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Can not load invalid JSON data"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = _Redact()
_QUIET = _Quiet()


def register(secret: str) -> None:
    """Remember a secret and make sure the log filters are installed (idempotent)."""
    if len(secret) < 4:  # masking "a" everywhere would mangle every log line
        return
    with _lock:
        _secrets.add(secret)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    quiet = logging.getLogger("telegram.request.BaseRequest")
    if _QUIET not in quiet.filters:
        quiet.addFilter(_QUIET)


def safe_url(url: str) -> str:
    """scheme://host[:port] only: enough to say where, never a path or query that may hold a key."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}" if rest else MASK
