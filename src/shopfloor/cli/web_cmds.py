"""`shopfloor web`: the board in a browser (docs/web.md)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from shopfloor.cli._common import project
from shopfloor.project import Project

if TYPE_CHECKING:
    from shopfloor.scheduler import Daemon


def register(app: click.Group) -> None:
    app.add_command(web_cmd)


@click.command("web", short_help="Serve the board in a browser, with a JSON API.")
@click.option("--host", help="Address to bind (default: [web] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [web] port, 8765).")
@click.pass_context
def web_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the board, the task pages and the JSON API until Ctrl-C or SIGTERM.

    Needs a token: the value of the environment variable [web] token_env names (default
    SHOPFLOOR_WEB_TOKEN), else a random one, printed in a login URL. Binds loopback unless
    shopfloor.toml's [web] host names another address.
    """
    from shopfloor.web import server

    proj = project(ctx)
    config = proj.config
    code = server.serve(
        proj.root,
        config,
        config.web.host if host is None else host,
        config.web.port if port is None else port,
    )
    sys.exit(code)


@contextlib.contextmanager
def beside(proj: Project, daemon: Daemon, once: bool) -> Iterator[None]:
    """`shopfloor run` with [web] enabled: the board served from a thread while the daemon
    runs (not with --once), wired to wake it on POST /api/v1/refresh; stopped after it."""
    if once or not proj.config.web.enabled:
        yield
        return
    from shopfloor.web import server

    serving = server.serve_in_thread(proj.root, proj.config, wake=daemon.request_full_reconcile)
    try:
        yield
    finally:  # within the daemon's stop deadline: a SIGTERM is not stretched by the board
        serving.stop(max(0.5, daemon.stop_deadline() - time.monotonic()))
