"""The web board with 10,000 tasks, in Debian's Chromium: server time, time to first render, and
the latency from a file moved on disk to its card moving in the browser.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_web_browser.py [--tasks 10000] [--moves 100]

The board is `bench_status.make_board`'s (most tasks in done/, ~3 KB files); `shopfloor web`
serves it as a subprocess (so the browser driver never shares its interpreter). Measured:

- server time: `GET /` and `GET /fragment/board` with the bearer header, httpx, warm (after one
  request), median and p90 over `--requests`;
- first render: the page loaded `--loads` times in a fresh tab; Navigation Timing's
  `responseStart`, `domContentLoadedEventEnd` and the first contentful paint, medians;
- move latency: `--moves` renames of a task file between active/ and review/ (what `mv` does),
  one at a time (the page's fragment fetch for one finished before the next);
  a MutationObserver in the page stamps `Date.now()` when the card is in its new column, and
  the latency is that minus `time.time()` just before the rename (the same wall clock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_status import make_board

TOKEN = "bench-web-token"

# Arms an observer that stamps `window.__seen` (wall clock) once the card is in its column.
WATCH = """([lane, id]) => {
  window.__seen = 0;
  const found = () => document.querySelector(`[data-lane="${lane}"] [data-task-id="${id}"]`);
  const obs = new MutationObserver(() => {
    if (found()) { window.__seen = Date.now(); obs.disconnect(); }
  });
  obs.observe(document.body, { childList: true, subtree: true });
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPFLOOR_WEB_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), "web", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/state", timeout=30, headers=_auth())
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("shopfloor web did not start")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_times(url: str, path: str, requests: int) -> list[float]:
    with httpx.Client(base_url=url, headers=_auth(), timeout=60) as client:
        client.get(path)  # warm: the header cache and the imports
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def first_renders(browser: Any, url: str, loads: int) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/?token={TOKEN}")
    got: dict[str, list[float]] = {"response": [], "dom": [], "fcp": []}
    for _ in range(loads):
        fresh = context.new_page()
        fresh.goto(url + "/", wait_until="load")
        fresh.wait_for_function(
            "performance.getEntriesByName('first-contentful-paint').length > 0", timeout=30_000
        )
        nav = fresh.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
        fcp = fresh.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
        got["response"].append(nav["responseStart"])
        got["dom"].append(nav["domContentLoadedEventEnd"])
        got["fcp"].append(fcp)
        fresh.close()
    context.close()
    return got


def move_latencies(browser: Any, url: str, root: Path, moves: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/?token={TOKEN}")
    page.wait_for_selector('body[data-live="1"]', state="attached")
    movers = sorted((root / "tasks" / "active").glob("*.md"))[:moves]
    latencies = []
    for n in range(moves):
        path = movers[n % len(movers)]
        dst = "review" if path.parent.name == "active" else "active"
        task_id = path.name.split("-")[0] + "-" + path.name.split("-")[1]
        page.evaluate(WATCH, [dst, task_id])
        target = root / "tasks" / dst / path.name
        sent = time.time() * 1000
        os.rename(path, target)
        page.wait_for_function("window.__seen > 0", polling=5)
        latencies.append(float(page.evaluate("window.__seen")) - sent)
        movers[n % len(movers)] = target
        # One move at a time: the page's fetch for this one done before the next.
        page.wait_for_function("document.body.dataset.busy !== '1'", polling=5)
        page.wait_for_timeout(50)
    context.close()
    return latencies


def load_average() -> str:
    return os.getloadavg().__repr__()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10)
    opts = parser.parse_args(argv)
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="shopfloor-webbench-") as scratch:
        root = Path(scratch) / "board"
        make_board(root, opts.tasks)
        port = free_port()
        server = start_server(root, port)
        url = f"http://127.0.0.1:{port}"
        try:
            page_ms = server_times(url, "/", opts.requests)
            frag_ms = server_times(url, "/fragment/board", opts.requests)
            size = len(httpx.get(url + "/", headers=_auth(), timeout=60).content)
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=args)
                renders = first_renders(browser, url, opts.loads)
                latencies = move_latencies(browser, url, root, opts.moves)
                browser.close()
        finally:
            server.terminate()
            server.wait(20)
    med = statistics.median
    print(f"board of {opts.tasks:,} tasks; page {size / 1024:.0f} KiB; load {load_average()}")
    print(f"GET /               median {med(page_ms):.0f} ms  p90 {pct(page_ms, 0.9):.0f} ms")
    print(f"GET /fragment/board median {med(frag_ms):.0f} ms  p90 {pct(frag_ms, 0.9):.0f} ms")
    print(
        f"first render: response {med(renders['response']):.0f} ms, DOMContentLoaded "
        f"{med(renders['dom']):.0f} ms, first contentful paint {med(renders['fcp']):.0f} ms "
        "(medians)"
    )
    print(
        f"move on disk -> card moved: p50 {pct(latencies, 0.5):.0f} ms  p99 "
        f"{pct(latencies, 0.99):.0f} ms  max {max(latencies):.0f} ms over {len(latencies)} moves"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
