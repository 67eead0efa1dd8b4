"""Install the pinned agent CLIs the tests drive, into a cache directory (never globally).

    python tests/clis/install.py [NAME ...]     # default: every CLI in PINS

npm packages go to `<cache>/<name>-<version>/` (`npm install --prefix`), aider to its own
virtualenv there. A CLI already installed at its pinned version is skipped, so a second
`make test` costs nothing. The cache is `$SHOPFLOOR_AGENT_CACHE` or `.cache/agents` in the repo.
Prints one line per CLI with its install time and size (the numbers in docs/agents.md).

The installs run a few at a time (WORKERS): they wait mostly on the network and the disk,
and one after another they took ~90 s of a CI run; aider, the longest, starts first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from shopfloor.agents.versions import PINS, Pin

#: Installs at once: npm's cache is safe to share; each CLI has its own folder.
WORKERS = 4

CACHE = Path(
    os.environ.get("SHOPFLOOR_AGENT_CACHE") or Path(__file__).resolve().parents[2] / ".cache/agents"
)


def home(pin: Pin) -> Path:
    return CACHE / f"{pin.cli}-{pin.version}"


def binary(pin: Pin) -> Path:
    if pin.registry == "pypi":
        return home(pin) / "venv" / "bin" / pin.cli
    return home(pin) / "node_modules" / ".bin" / pin.cli


def size_mb(path: Path) -> float:
    """Disk use like `du`: each inode once (npm hard-links), symlinks not followed."""
    seen: dict[tuple[int, int], int] = {}
    for p in path.rglob("*"):
        st = p.lstat()
        seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values()) / 1e6


def install(pin: Pin) -> str:
    target = home(pin)
    if binary(pin).exists() and (target / ".complete").exists():
        return f"{pin.cli} {pin.version}: cached"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    start = time.monotonic()
    if pin.registry == "pypi":
        subprocess.run([sys.executable, "-m", "venv", str(target / "venv")], check=True)
        pip = [str(target / "venv" / "bin" / "python"), "-m", "pip", "install", "-qq"]
        subprocess.run([*pip, f"{pin.package}=={pin.version}"], check=True)
    else:
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(target),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"{pin.package}@{pin.version}",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    (target / ".complete").write_text(pin.version + "\n")
    took = time.monotonic() - start
    return f"{pin.cli} {pin.version}: installed in {took:.0f} s, {size_mb(target):.0f} MB"


def attempt(pin: Pin) -> str | None:
    """Install one CLI and say so; None if it failed (the reason is on stderr)."""
    if pin.registry == "npm" and shutil.which("npm") is None:
        print(f"{pin.cli}: npm not found, not installed", file=sys.stderr, flush=True)
        return None
    try:
        return install(pin)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"{pin.cli} {pin.version}: install FAILED ({exc})", file=sys.stderr, flush=True)
        return None


def main(names: list[str]) -> int:
    """Install what is missing. Locally a failure only warns (those tests then skip with the
    reason); in CI (CI set) it fails, because CI must run every tier."""
    chosen = [p for p in PINS if not names or p.cli in names]
    chosen.sort(key=lambda p: p.registry != "pypi")  # aider's pip install is the longest
    failed = 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for line in pool.map(attempt, chosen):
            if line is None:
                failed += 1
            else:
                print(line, flush=True)
    return 1 if failed and os.environ.get("CI") else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
