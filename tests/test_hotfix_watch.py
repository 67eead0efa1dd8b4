"""hotfix_watch.HotfixWatch: the hotfix lane's own inotify reader, on a real folder."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")


class Told:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.names: list[str | None] = []
        self.overflows = 0

    def file(self, name: str | None) -> None:
        with self.lock:
            self.names.append(name)

    def overflow(self) -> None:
        with self.lock:
            self.overflows += 1

    def saw(self, name: str | None) -> bool:
        with self.lock:
            return name in self.names


def test_it_names_created_and_renamed_files_never_temp_ones_and_stops(tmp_path: Path) -> None:
    from shopfloor.hotfix_watch import HotfixWatch

    lane = tmp_path / "hotfix"
    lane.mkdir()
    told = Told()
    watch = HotfixWatch(lane, told.file, told.overflow)
    watch.start()
    try:
        (lane / "HOTFIX-a.md").write_text("---\nid: HOTFIX-a\n---\n")
        wait_until(lambda: told.saw("HOTFIX-a.md"), timeout=5)
        temp = lane / ".HOTFIX-b.md.sf-0123456789ab.tmp"  # our atomic write's temp name
        temp.write_text("x")
        temp.rename(lane / "HOTFIX-b.md")
        wait_until(lambda: told.saw("HOTFIX-b.md"), timeout=5)
        assert not any(n and n.startswith(".") for n in told.names), told.names
        (lane / "HOTFIX-a.md").unlink()
        lane.rename(tmp_path / "moved")  # the folder itself: the whole lane is read again
        wait_until(lambda: told.saw(None), timeout=5)
    finally:
        watch.stop()
    wait_until(lambda: not watch._thread.is_alive(), timeout=5)
    assert told.overflows == 0


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    from shopfloor.hotfix_watch import HotfixWatch

    with pytest.raises(OSError):
        HotfixWatch(tmp_path / "nowhere", lambda name: None, lambda: None)
