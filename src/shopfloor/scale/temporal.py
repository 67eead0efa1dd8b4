"""Talking to Temporal: one place that connects, for the daemon and the workers alike."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import NoReturn

from temporalio.client import Client

from shopfloor.config import ScaleConfig


def default_identity() -> str:
    """What a worker or daemon is called in Temporal's history: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def connect(scale: ScaleConfig, identity: str | None = None) -> Client:
    """A client for `[scale]`: TLS when configured or when an API key is given (Temporal Cloud).

    The API key is read from the environment variable `api_key_env` names, never from the
    config file; it is one of the daemon's secrets, so no agent ever sees it."""
    api_key = os.environ.get(scale.api_key_env) if scale.api_key_env else None
    return await Client.connect(
        scale.address,
        namespace=scale.namespace,
        tls=scale.tls or bool(api_key),
        api_key=api_key or None,
        identity=identity or default_identity(),
    )


def exit_past_the_sdk(code: int) -> NoReturn:
    """Leave without the interpreter's teardown: the SDK's runtime threads can abort a
    finalizing interpreter (exit 134, temporalio/sdk-python#300) after our work is done and
    saved. Only what Python would still flush is flushed here."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
