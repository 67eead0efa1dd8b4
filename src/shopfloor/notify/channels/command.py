"""A user command per notification: argv (no shell), the message as JSON on stdin, a timeout.

Exit 0 means delivered. Any other exit, or running past `timeout` (the whole process group is
killed), is a failure that the sender retries with back-off. The daemon's secrets (bot token,
web token, webhook secrets) are removed from the command's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shopfloor.notify import events
from shopfloor.notify.channels import ChannelError, Context, register

if TYPE_CHECKING:
    from shopfloor.config import CommandChannelConfig, Config
    from shopfloor.journal import OutboxItem

#: Bytes of the command's stderr kept for the error message.
STDERR_TAIL = 300


def message(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "event": item.event,
        "priority": item.priority,
        "created_at": item.created_at,
        "text": events.render(item.event, item.payload, item.id),
        "payload": item.payload,
    }


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the group and collect the exit status (bounded), so nothing is left running."""
    _kill_group(proc)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(2.0):
            await proc.wait()


class CommandChannel:
    def __init__(self, name: str, cfg: CommandChannelConfig, env: Mapping[str, str]) -> None:
        self.name = name
        self.cfg = cfg
        self._env = dict(env)

    async def send(self, item: OutboxItem) -> None:
        data = json.dumps(message(item)).encode()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.cfg.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ChannelError(f"cannot run {self.cfg.argv[0]!r}: {exc.strerror or exc}") from None
        try:
            async with asyncio.timeout(self.cfg.timeout):
                _, err = await proc.communicate(data)
        except TimeoutError:
            await _reap(proc)
            raise ChannelError(f"{self.cfg.argv[0]} ran past {self.cfg.timeout:g}s") from None
        except asyncio.CancelledError:  # the service is stopping
            await _reap(proc)
            raise
        finally:
            _kill_group(proc)  # whatever it left behind in its group
        if proc.returncode != 0:
            tail = err[-STDERR_TAIL:].decode("utf-8", "replace").strip()
            raise ChannelError(f"{self.cfg.argv[0]} exited {proc.returncode}: {tail}")

    async def aclose(self) -> None:
        return None


def secret_names(config: Config) -> set[str]:
    """Every variable that may hold a daemon secret, configured or at its default name."""
    from shopfloor.config import TelegramConfig, WebConfig

    defaults = {TelegramConfig().token_env, WebConfig().token_env}
    return config.secret_env_names() | config.notify.secret_env_names() | defaults


def _create(name: str, section: Any, context: Context) -> CommandChannel:
    secrets = secret_names(context.config)
    env = {k: v for k, v in context.env.items() if k not in secrets}
    return CommandChannel(name, section, {**env, **section.env})


register("command", _create)
