"""The web board's server side: `/api/v1/state` and the board page at 10,000 tasks, the
latency from a file moved on disk to the event on the stream, and 50 connected event-stream
clients (server RSS growth, idle CPU).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_web.py [--tasks 10000] [--clients 50]

The server is `shopfloor web` as a subprocess (what a user runs), measured with psutil; the
board is bench_status's (files spread over the lanes, ~3 KB each, settled for the header
cache). Times are wall times seen by a client on the same machine (loopback HTTP included).
The browser-side numbers (first render, move-to-card) are web-pages' benchmark; these
functions are importable for it.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from bench_status import make_board, p90

TOKEN = "bench-web-token"
#: The state of every lane but done/ (most of a long-lived board): what a live board needs.
OPEN = "/api/v1/state?lanes=inbox,backlog,active,review,failed,hotfix"
_URL = re.compile(r"open (http://127\.0\.0\.1:\d+)/")


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    """`shopfloor web --port 0` for `root`; its process and base URL once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), "web", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SHOPFLOOR_WEB_TOKEN": TOKEN},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if found := _URL.search(line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep it drained
            return proc, found.group(1)
    raise SystemExit(f"shopfloor web did not start (exit {proc.wait()})")


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def time_get(base: str, path: str, runs: int) -> list[float]:
    """Wall times in ms of GET `path` (after one warm-up), one keep-alive connection."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        client.get(path).raise_for_status()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    return times


def open_stream(base: str) -> socket.socket:
    """One event-stream client on a raw socket, returned once its `hello` arrived."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock.sendall(request.encode())
    seen = b""
    while b"event: hello" not in seen:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the event stream closed before its hello")
        seen += chunk
    return sock


def idle_with_clients(
    proc: subprocess.Popen[str], base: str, clients: int, idle: float
) -> dict[str, float]:
    """Server RSS before and after `clients` streams connect, and its CPU over `idle` s."""
    server = psutil.Process(proc.pid)
    time.sleep(1.0)  # let start-up work settle
    rss_before = server.memory_info().rss
    socks = [open_stream(base) for _ in range(clients)]
    try:
        time.sleep(1.0)
        rss_connected = server.memory_info().rss
        cpu = server.cpu_times()
        time.sleep(idle)
        after = server.cpu_times()
        rss_after = server.memory_info().rss
    finally:
        for sock in socks:
            sock.close()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return {
        "rss_before_mb": rss_before / 2**20,
        "rss_connected_mb": rss_connected / 2**20,
        "rss_after_idle_mb": rss_after / 2**20,
        "growth_mb": (rss_after - rss_before) / 2**20,
        "idle_cpu_percent": 100 * used / idle,
    }


def move_latency(root: Path, base: str, moves: int) -> list[float]:
    """ms from an os.rename of a task file (inbox -> backlog, a different file each time) to
    the `changed` event naming it, on one event-stream client."""
    sock = open_stream(base)
    sock.settimeout(5)
    inbox, backlog = root / "tasks" / "inbox", root / "tasks" / "backlog"
    names = sorted(p.name for p in inbox.iterdir() if p.name.endswith(".md"))[:moves]
    times = []
    buffer = b""
    try:
        for name in names:
            task_id = name.split("-retry", 1)[0]
            start = time.perf_counter()
            os.rename(inbox / name, backlog / name)
            needle = f'"id":"{task_id}"'.encode()
            while needle not in buffer:
                buffer += sock.recv(65536)
            times.append((time.perf_counter() - start) * 1000)
            buffer = buffer[buffer.index(needle) + len(needle) :]
            time.sleep(0.1)  # apart, so each move is its own event (not debounced together)
    finally:
        sock.close()
    return times


def line(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{label:<44}median {statistics.median(values):8.1f} {unit}   "
        f"p90 {p90(values):8.1f}   p99 {sorted(values)[round(0.99 * (len(values) - 1))]:8.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--moves", type=int, default=100)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="shopfloor-bench-web-") as scratch:
        root = Path(scratch) / "board"
        make_board(root, args.tasks)
        proc, base = start_server(root)
        try:
            print(f"{args.tasks} tasks, {args.runs} runs each (after a warm-up)")
            print(line("GET /api/v1/state", time_get(base, "/api/v1/state", args.runs)))
            print(line("GET /api/v1/state?lanes=<all but done>", time_get(base, OPEN, args.runs)))
            with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                has_pages = client.get(f"{base}/").status_code == 200
            if has_pages:
                print(line("GET / (the board page)", time_get(base, "/", args.runs)))
            else:
                print("GET / (the board page): no pages module on this branch")
            print(
                line(
                    f"file moved -> event ({args.moves} moves)",
                    move_latency(root, base, args.moves),
                )
            )
            idle = idle_with_clients(proc, base, args.clients, args.idle)
            print(
                f"{args.clients} event-stream clients: RSS {idle['rss_before_mb']:.1f} MB before, "
                f"{idle['rss_connected_mb']:.1f} MB connected, {idle['rss_after_idle_mb']:.1f} MB "
                f"after {args.idle:.0f} s idle (growth {idle['growth_mb']:+.1f} MB); "
                f"idle CPU {idle['idle_cpu_percent']:.2f} %"
            )
        finally:
            stop_server(proc)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
