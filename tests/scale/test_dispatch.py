"""The daemon's side of scale-out that needs no Temporal: branches through the remote and the
mirrored output of a remote run."""

from __future__ import annotations

from pathlib import Path

from shopfloor.scale.contract import Progress
from shopfloor.scale.dispatch import LogMirror, fetch_branch, publish_branch
from tests.support import git, make_project


def _cluster(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A project, a bare remote it pushed main to, and a second clone (a worker's)."""
    root = make_project(tmp_path)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "--quiet", "origin", "main")
    clone = tmp_path / "worker"
    git(tmp_path, "clone", "--quiet", str(bare), str(clone))
    return root, bare, clone


def _commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name)
    git(repo, "add", name)
    git(repo, "-c", "user.name=w", "-c", "user.email=w@w", "commit", "--quiet", "-m", name)
    return git(repo, "rev-parse", "HEAD").strip()


def test_publish_puts_the_branch_at_its_base_on_the_remote(tmp_path: Path) -> None:
    root, bare, _ = _cluster(tmp_path)
    base = git(root, "rev-parse", "HEAD").strip()
    _commit(root, "later.txt")  # the daemon's HEAD moved on: the branch still starts at base
    tip = publish_branch(root, "origin", "shopfloor/T-1", base)
    assert tip == base
    assert git(bare, "rev-parse", "refs/heads/shopfloor/T-1").strip() == base


def test_a_worker_push_fast_forwards_the_daemons_branch(tmp_path: Path) -> None:
    root, _, clone = _cluster(tmp_path)
    base = git(root, "rev-parse", "HEAD").strip()
    publish_branch(root, "origin", "shopfloor/T-1", base)
    git(clone, "fetch", "--quiet", "origin")
    git(clone, "checkout", "--quiet", "-b", "work", "origin/shopfloor/T-1")
    pushed = _commit(clone, "feature.txt")
    git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/shopfloor/T-1")
    assert fetch_branch(root, "origin", "shopfloor/T-1") == pushed
    assert git(root, "rev-parse", "refs/heads/shopfloor/T-1").strip() == pushed
    # Published again (the next attempt), the branch keeps the worker's commit.
    assert publish_branch(root, "origin", "shopfloor/T-1", base) == pushed


def test_fetching_a_branch_the_remote_lacks_is_none(tmp_path: Path) -> None:
    root, _, _ = _cluster(tmp_path)
    assert fetch_branch(root, "origin", "shopfloor/NOPE") is None


def test_the_mirror_appends_only_new_output_and_marks_a_gap(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    mirror = LogMirror(log)
    mirror.add(Progress("w1", "R-1", 0, "hello "))
    mirror.add(Progress("w1", "R-1", 0, "hello world\n"))  # a tail that overlaps
    mirror.add(Progress("w1", "R-1", 0, "hello "))  # an old heartbeat again: nothing new
    mirror.add(Progress("w1", "R-1", 100, "late\n"))  # bytes 12..100 never came
    text = log.read_text()
    assert text.startswith("hello world\n")
    assert "88 bytes of output not mirrored" in text
    assert text.endswith("late\n")
    mirror.finish("tail that must not be added")
    assert "tail that" not in log.read_text()


def test_a_run_with_no_heartbeat_output_gets_the_replys_tail(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    LogMirror(log).finish("the last lines\n")
    assert log.read_text() == "the last lines\n"


def test_a_run_retried_on_another_worker_is_mirrored_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    mirror = LogMirror(log)
    mirror.add(Progress("w1", "R-4", 0, "first worker\n"))
    mirror.add(Progress("w2", "R-9", 0, "second worker\n"))
    text = log.read_text()
    assert text.startswith("first worker\n") and text.endswith("second worker\n")
    assert "run R-9 on w2" in text
