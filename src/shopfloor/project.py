"""A Shopfloor project on disk: where its root, board, config and journal are."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor import defaults
from shopfloor.board import Board
from shopfloor.errors import NotAProjectError
from shopfloor.paths import StatePaths

if TYPE_CHECKING:
    from shopfloor.config import Config
    from shopfloor.journal import Journal


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def state_dir(self) -> Path:
        return StatePaths(self.root).state_dir

    @property
    def config_path(self) -> Path:
        return self.root / defaults.CONFIG_FILE

    @functools.cached_property
    def board(self) -> Board:
        return Board(self.root)

    @functools.cached_property
    def config(self) -> Config:
        from shopfloor import config  # pydantic is only imported by commands that need it

        return config.load(self.config_path)

    def journal(self) -> Journal:
        from shopfloor.journal import open_journal

        return open_journal(self.root)  # a writer: a damaged journal is moved aside


def locate(start: Path | None = None) -> Project:
    """The nearest directory at or above `start` holding shopfloor.toml."""
    here = (start or Path(os.getcwd())).resolve()
    for candidate in (here, *here.parents):
        if (candidate / defaults.CONFIG_FILE).is_file():
            return Project(candidate)
    raise NotAProjectError(
        f"no {defaults.CONFIG_FILE} in {here} or any parent; "
        "run `shopfloor init` at the top of your git repository"
    )
