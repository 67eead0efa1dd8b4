"""Which Temporal task queue is this repository's: `<[scale] task_queue>.<project key>`.

One Temporal serves many repositories (a team's cluster, Temporal Cloud): a worker in a clone
of one must never take a run of another. The project key is the repository's first commit,
the same in every clone on every machine, so the daemon and its workers agree on it without
being told, and two repositories sharing a `task_queue` name never share a queue.
"""

from __future__ import annotations

from pathlib import Path

from shopfloor import gitops
from shopfloor.config import ScaleConfig


def project_key(root: Path) -> str:
    """The repository's root commit, short (the smallest, when histories were joined)."""
    roots = gitops.git(root, "rev-list", "--max-parents=0", "HEAD", check=False).split()
    return sorted(roots)[0][:12] if roots else "no-commits"


def scoped(root: Path, scale: ScaleConfig) -> ScaleConfig:
    """`[scale]` with this repository's own task queue."""
    return scale.model_copy(update={"task_queue": f"{scale.task_queue}.{project_key(root)}"})
