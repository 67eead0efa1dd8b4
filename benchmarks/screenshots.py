"""Screenshots of the web board for the README and docs/web.md.

Makes the demo repository (`shopfloor demo`'s: real git, the simulator agents, the real checks),
lets the daemon work it until idle, files a few more requests so every lane has something, then
serves the board with uvicorn on 127.0.0.1 and saves PNGs of the board and a task page, desktop
(1280x800) and phone (390x844), with Debian's Chromium:

    PYTHONPATH=src .venv/bin/python benchmarks/screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from shopfloor import actions, demo, task
from shopfloor.board import Board
from shopfloor.words import Lane

TOKEN = "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def build(root: Path) -> str:
    """The demo board after one daemon pass, plus waiting work; returns the task to show."""
    demo.create(root)
    demo.run(root, Console(file=io.StringIO()))
    board = Board(root)
    actions.create_task(board, actions.NewTask("Export the board as CSV", "One row per task."))
    actions.create_task(
        board, actions.NewTask("Retry Telegram sends with backoff", priority="P1", backlog=True)
    )
    gated = actions.create_task(
        board, actions.NewTask("Rate-limit the public API", "100 requests a minute.", backlog=True)
    )
    gated.path.write_text(task.set_fields(gated.path.read_text(), {"status": "awaiting-approval"}))
    parked = actions.create_task(board, actions.NewTask("Migrate to the new ORM", backlog=True))
    actions.cancel(board, parked.id)
    worked = [e for e in Board(root).scan().entries if e.header.title == "Count words"]
    return worked[0].id if worked else Board(root).scan([Lane.DONE]).entries[0].id


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """`shopfloor web`'s server for `root`, from a thread, on a free port of 127.0.0.1."""
    from shopfloor import config
    from shopfloor.web import auth, server

    cfg = config.load(root / "shopfloor.toml")
    token = auth.Token(TOKEN, cfg.web.token_env, generated=False)
    running = server.serve_in_thread(root, cfg, host="127.0.0.1", port=0, token=token, out=None)
    try:
        yield running.url
    finally:
        running.stop()


def shoot(url: str, task_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        for kind, (width, height) in SIZES.items():
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                is_mobile=kind == "phone",
                color_scheme="dark",
            )
            page = context.new_page()
            page.goto(f"{url}/?token={TOKEN}")
            page.wait_for_selector('body[data-live="1"]', state="attached")
            for name, path in (("board", "/"), ("task", f"/task/{task_id}")):
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                target = out / f"web-{name}-{kind}.png"
                page.screenshot(path=str(target))
                saved.append(target)
            context.close()
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    opts = parser.parse_args(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with tempfile.TemporaryDirectory(prefix="shopfloor-shots-") as scratch:
        root = Path(scratch) / "demo"
        task_id = build(root)
        with serving(root) as url:
            for path in shoot(url, task_id, opts.out.resolve()):
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
