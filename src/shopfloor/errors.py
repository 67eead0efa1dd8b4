"""One error family. Messages say what to do next; only the CLI turns them into exit codes."""

from __future__ import annotations


class ShopfloorError(Exception):
    """Base of every error Shopfloor reports to a person."""

    exit_code = 1


class NotAProjectError(ShopfloorError):
    """No shopfloor.toml / tasks/ found, or not inside a git repository."""


class ConfigError(ShopfloorError):
    """shopfloor.toml is missing, unreadable or invalid."""


class TaskFormatError(ShopfloorError):
    """A task file cannot be read: the reason becomes its quarantine note."""


class UnsafePathError(TaskFormatError):
    """A name or path that could escape the board (separators, '..', control chars, symlinks)."""


class TaskNotFoundError(ShopfloorError):
    """No task with that id on the board."""

    exit_code = 4


class AmbiguousIdError(ShopfloorError):
    """A short id (a prefix) that names more than one task."""

    exit_code = 2


class ConflictError(ShopfloorError):
    """The board is in a state that needs a human (same id twice, file exists, ...)."""

    exit_code = 5


class InfrastructureError(ShopfloorError):
    """The machine, not the task: a full disk, a read-only folder, a lost journal, a git lock.

    Never counts against a task's attempts; the daemon waits for the fault to clear and resumes.
    """
