"""The aider backend: not driven yet (this module registers nothing until it is)."""

from __future__ import annotations

from collections.abc import Callable

from shopfloor.agents import Backend


def register_backends(register: Callable[[str, Callable[[], Backend]], None]) -> None:
    pass
