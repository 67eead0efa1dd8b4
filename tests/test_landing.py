"""The merge queue (`land = "queue"`) with real git, real checks and real processes.

Tasks reach the queue either through the daemon (scripted agents, `tests/fakes/landing_agent.py`)
or quickly: a branch built with git and the task file walked to review/ `landing` through the
lifecycle's own rows. The checks are small Python scripts committed in the repository, so
every checkout (the queue's scratch tree, each commit walked afterwards) runs its own copy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shopfloor import actions, config, task
from shopfloor.board import Board, Lane
from shopfloor.scheduler import Daemon
from tests.conftest import wait_until
from tests.support import (
    FAKES,
    TO_LANDING,
    apply_events,
    git,
    lane_of,
    make_project,
    shopfloor,
    start_daemon,
    status_of,
    stop,
    tracker,
)

CHECK = textwrap.dedent(
    """\
    import os, pathlib, sys, time
    here = pathlib.Path.cwd()
    with open(sys.argv[1], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    hold = pathlib.Path(sys.argv[1] + ".hold")
    while hold.exists():  # a test holds the check here to kill the lander mid-check
        time.sleep(0.02)
    if (here / "feature_a.txt").exists() and (here / "feature_b.txt").exists():
        print("feature a and feature b break each other")
        sys.exit(1)
    if (here / "culprit.txt").exists():
        print("culprit.txt breaks the build")
        sys.exit(1)
    print("all good")
    """
)
#: Makes a human's commit on main in the live tree the first time it runs: between the
#: queue's integration and its compare-and-swap.
INJECT = textwrap.dedent(
    """\
    import pathlib, subprocess, sys
    root, marker = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if not marker.exists():
        marker.write_text("done")
        (root / "human.txt").write_text("a human was here\\n")
        who = ["-c", "user.name=human", "-c", "user.email=h@h"]
        subprocess.run(["git", "add", "human.txt"], cwd=root, check=True)
        subprocess.run(["git", *who, "commit", "-qm", "human commit"], cwd=root, check=True)
    """
)
WHO = ("-c", "user.name=t", "-c", "user.email=t@t")


def queue_project(
    tmp_path: Path, extra_checks: list[list[str]] | None = None, **pipe: object
) -> Path:
    counter = tmp_path / "check-runs"
    checks = [[sys.executable, "check.py", str(counter)], *(extra_checks or [])]
    agent = {
        "backend": "command",
        "command": [sys.executable, str(FAKES / "landing_agent.py"), "main"],
        "timeout": "60s",
    }
    root = make_project(
        tmp_path, agents={"a": agent}, pipeline={"land": "queue", "checks": checks, **pipe}
    )
    (root / "check.py").write_text(CHECK)
    (root / "inject.py").write_text(INJECT)
    git(root, "add", "check.py", "inject.py")
    git(root, *WHO, "commit", "-qm", "checks")
    return root


def check_runs(tmp_path: Path) -> int:
    counter = tmp_path / "check-runs"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def queue_task(root: Path, title: str, files: dict[str, str], priority: str = "P2") -> str:
    """A task QA passed, fast: its branch made with git from main now, its file walked through
    the lifecycle (claimed, coded, claimed by QA, land-queued) as the daemon would."""
    board = Board(root)
    body = "\n".join(f"write {path}: {text}" for path, text in files.items())
    entry = actions.create_task(
        board, actions.NewTask(title, body, backlog=True, priority=priority)
    )
    branch = f"shopfloor/{entry.id}"
    work = root.parent / f"wt-{entry.id}"
    git(root, "worktree", "add", "-q", "-b", branch, str(work), "main")
    for path, text in files.items():
        (work / path).write_text(text + "\n")
    git(work, "add", "--all")
    message = f"{entry.id}: {title} (attempt 1)\n\nShopfloor-Task: {entry.id}\nShopfloor-Attempt: 1"
    git(work, *WHO, "commit", "-qm", message)
    git(root, "worktree", "remove", str(work))
    entry = apply_events(root, entry, *TO_LANDING)
    assert entry.lane is Lane.REVIEW and entry.header.status == "landing"
    return entry.id


def land(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    proc = shopfloor(root, "land", "--json", *args, check=False, env=env)
    assert proc.returncode in (0, 3), proc.stderr
    return dict(json.loads(proc.stdout))


def main_log(root: Path, since: str) -> list[str]:
    return git(root, "rev-list", "--reverse", f"{since}..main").split()


def checks_pass_at_every_commit(root: Path, commits: list[str]) -> None:
    """Each commit the queue put on main, checked out on its own, passes the checks."""
    tree = root.parent / "walk"
    git(root, "worktree", "add", "-q", "--detach", str(tree), "main")
    try:
        for sha in commits:
            git(tree, "checkout", "-q", "--detach", sha)
            proc = subprocess.run(
                [sys.executable, "check.py", str(root.parent / "walk-runs")],
                cwd=tree,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, f"checks fail at {sha}: {proc.stdout}"
    finally:
        git(root, "worktree", "remove", "--force", str(tree))


def section(root: Path, task_id: str, name: str) -> str:
    board = Board(root)
    return task.get_section(board.read_text(board.find(task_id)), name) or ""


def commit_board(root: Path) -> None:
    """The board's files are tracked in these repositories; keep them committed so the live
    tree is clean outside tasks/ (which the queue ignores anyway)."""
    git(root, "add", "--all")
    git(root, *WHO, "commit", "-qm", "board", "--allow-empty")


# ---------------------------------------------------------------------------- the cases


def test_two_tasks_that_fit_both_land_and_every_commit_passes_the_checks(tmp_path: Path) -> None:
    root = queue_project(tmp_path)
    start = git(root, "rev-parse", "main").strip()
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    two = queue_task(root, "Feature C", {"feature_c.txt": "c"})
    out = land(root)
    assert out["landed"] == [one, two] and out["check_runs"] == 1  # one batch, one check run
    assert lane_of(root, one) is Lane.DONE and status_of(root, one) == "closed"
    assert lane_of(root, two) is Lane.DONE
    commits = main_log(root, start)
    assert len(commits) == 2  # one commit per task, in queue order, trailers kept
    assert f"Shopfloor-Task: {one}" in git(root, "log", "-1", "--format=%B", commits[0])
    checks_pass_at_every_commit(root, commits)
    # main is checked out in the live tree: its files came along, and it is clean.
    assert (root / "feature_a.txt").read_text() == "a\n" and (root / "feature_c.txt").exists()
    assert git(root, "status", "--porcelain", "--", ".", ":(exclude)tasks").strip() == ""
    assert "landed on main" in tracker(root, one)


def test_conflicting_tasks_one_lands_the_other_is_reworked_by_its_coder_and_lands(
    tmp_path: Path,
) -> None:
    """Through the daemon: both coded from the same main, A lands, B conflicts and goes back
    with the conflict described; the scripted Coder merges main, resolves, and B lands."""
    root = queue_project(tmp_path)
    board = Board(root)
    a = actions.create_task(
        board, actions.NewTask("Greet in English", "write greet.txt: hello", True)
    )
    b = actions.create_task(
        board, actions.NewTask("Greet in French", "write greet.txt: bonjour", True)
    )
    commit_board(root)
    seen: list[tuple[str, dict[str, object]]] = []
    daemon = Daemon(root, config.load(root / "shopfloor.toml"), once=True)
    daemon._forward = lambda event, **payload: seen.append((event, payload))
    assert daemon.run() == 0
    assert lane_of(root, a.id) is Lane.DONE and lane_of(root, b.id) is Lane.DONE
    events = [event for event, _ in seen]
    assert events.count("task_landed") == 2 and events.count("land_bounced") == 1
    bounced = next(p for e, p in seen if e == "land_bounced")
    # Which coder's QA finished first decides who lands first; the other one bounces.
    late, first = (b, a) if bounced["task_id"] == b.id else (a, b)
    assert bounced["files"] == ["greet.txt"] and bounced["collided"] == [first.id]
    notes = section(root, late.id, "Rework notes")
    assert "greet.txt" in notes and "Conflicting files" in notes and "merge queue" in notes
    assert first.id in notes and first.header.title in notes
    assert f"write greet.txt: {'hello' if first is a else 'bonjour'}" in notes  # its spec
    log = tracker(root, late.id)
    assert "landing bounced (1 of 3)" in log and "landed on main" in log
    assert sorted((root / "greet.txt").read_text().splitlines()) == ["bonjour", "hello"]
    assert entry_attempts(root, late.id) == (2, 4)  # the bounce gave one attempt back


def entry_attempts(root: Path, task_id: str) -> tuple[int, int]:
    header = Board(root).find(task_id).header
    return header.attempts, header.max_attempts


def test_two_branches_that_each_pass_but_break_together_never_land_together(
    tmp_path: Path,
) -> None:
    root = queue_project(tmp_path)
    start = git(root, "rev-parse", "main").strip()
    a = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    b = queue_task(root, "Feature B", {"feature_b.txt": "b"})
    out = land(root)
    assert out["landed"] == [a] and out["bounced"] == [b]
    assert lane_of(root, b) is Lane.BACKLOG and status_of(root, b) == "queued"
    notes = section(root, b, "Rework notes")
    assert "the checks fail once it is on main" in notes
    assert "feature a and feature b break each other" in notes and "Feature A" in notes
    commits = main_log(root, start)
    assert len(commits) == 1
    checks_pass_at_every_commit(root, commits)
    assert not (root / "feature_b.txt").exists()


def test_a_human_commit_between_integration_and_swap_is_landed_upon(tmp_path: Path) -> None:
    """The second check commits on main in the live tree while the queue checks: the swap
    finds main moved, fails, and the queue integrates again on top of the human's commit."""
    marker = tmp_path / "injected"
    inject = [sys.executable, "inject.py", "ROOT", str(marker)]
    root = queue_project(tmp_path, extra_checks=[inject])
    cfg = (root / "shopfloor.toml").read_text().replace('"ROOT"', json.dumps(str(root)))
    (root / "shopfloor.toml").write_text(cfg)
    commit_board(root)
    start = git(root, "rev-parse", "main").strip()
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    out = land(root)
    assert out["landed"] == [one] and marker.exists()
    assert out["check_runs"] == 2  # checked again on top of the human's commit
    subjects = git(root, "log", "--format=%s", f"{start}..main").splitlines()
    assert subjects == [f"{one}: Feature A", "human commit"]
    assert (root / "human.txt").exists() and (root / "feature_a.txt").exists()
    assert git(root, "status", "--porcelain", "--", ".", ":(exclude)tasks").strip() == ""


def test_a_dirty_live_tree_makes_the_queue_wait_and_say_why_once(tmp_path: Path) -> None:
    root = queue_project(tmp_path)
    commit_board(root)
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    (root / "app.py").write_text("def answer():\n    return 41  # human edit in progress\n")
    before = git(root, "rev-parse", "main").strip()
    for _ in range(2):
        out = land(root)
        assert out["landed"] == [] and "uncommitted changes (app.py)" in str(out["waiting"])
    assert git(root, "rev-parse", "main").strip() == before
    assert tracker(root, one).count("landing waits:") == 1  # said once, not every pass
    status = json.loads(shopfloor(root, "status", "--json").stdout)
    assert status["landing"]["ready"] == [one] and "app.py" in status["landing"]["waiting"]
    text = shopfloor(root, "status", "--width", "300").stdout
    assert f"{one} ready to land on main" in text and "waits: main is checked out" in text
    git(root, "checkout", "--", "app.py")
    assert land(root)["landed"] == [one]
    assert json.loads(shopfloor(root, "status", "--json").stdout)["landing"]["waiting"] is None


def test_a_batch_of_five_with_one_culprit_lands_four_and_bounces_the_culprit(
    tmp_path: Path,
) -> None:
    root = queue_project(tmp_path, land_batch=5)
    start = git(root, "rev-parse", "main").strip()
    files = [
        {"feature_1.txt": "1"},
        {"feature_2.txt": "2"},
        {"culprit.txt": "3"},
        {"feature_4.txt": "4"},
        {"feature_5.txt": "5"},
    ]
    ids = [queue_task(root, f"Task {n}", f) for n, f in enumerate(files, start=1)]
    out = land(root)
    assert out["bounced"] == [ids[2]]
    assert out["landed"] == [ids[0], ids[1], ids[3], ids[4]]
    # whole batch (fails), prefix 2 (passes), prefix 3 (fails): culprit found; then 4 and 5
    # together on the new main (passes). One by one would be five runs.
    assert out["check_runs"] == 4 == check_runs(tmp_path)
    commits = main_log(root, start)
    assert len(commits) == 4
    checks_pass_at_every_commit(root, commits)
    assert "culprit.txt breaks the build" in section(root, ids[2], "Rework notes")


def test_priority_then_age_decides_who_lands_first(tmp_path: Path) -> None:
    root = queue_project(tmp_path, land_batch=1)
    late = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    urgent = queue_task(root, "Feature B", {"feature_b.txt": "b"}, priority="P0")
    out = land(root)
    assert out["landed"] == [urgent] and out["bounced"] == [late]  # B first; then A breaks it


def test_max_rebases_sends_a_task_that_keeps_bouncing_to_failed(tmp_path: Path) -> None:
    root = queue_project(tmp_path, max_rebases=0)
    queue_task(root, "Feature A", {"feature_a.txt": "a"})
    b = queue_task(root, "Feature B", {"feature_b.txt": "b"})
    out = land(root)
    assert out["refused"] == [b] and lane_of(root, b) is Lane.FAILED
    assert "max_rebases = 0" in tracker(root, b)


@pytest.mark.parametrize("point", ["checks", "before-swap", "after-swap", "after-tree"])
def test_kill_9_while_landing_leaves_main_before_or_after_and_a_rerun_finishes(
    tmp_path: Path, point: str
) -> None:
    root = queue_project(tmp_path)
    commit_board(root)
    start = git(root, "rev-parse", "main").strip()
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    two = queue_task(root, "Feature C", {"feature_c.txt": "c"})
    hold = Path(str(tmp_path / "check-runs") + ".hold")
    env = {"SHOPFLOOR_FAULT": f"land:{point}"} if point != "checks" else {}
    if point == "checks":
        hold.write_text("hold")  # the check waits: killed while it runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopfloor", "-C", str(root), "land"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if point == "checks":
        wait_until(lambda: check_runs(tmp_path) == 1, 60, "the check to start")
        os.killpg(proc.pid, signal.SIGKILL)  # the lander and its check, at once
        hold.unlink()
    assert proc.wait(60) == -signal.SIGKILL
    after = git(root, "rev-parse", "main").strip()
    landed = main_log(root, start)
    assert after == start or len(landed) == 2  # before or after, never in between
    assert land(root)["waiting"] is None
    commits = main_log(root, start)
    assert len(commits) == 2  # landed once, not twice
    assert lane_of(root, one) is Lane.DONE and lane_of(root, two) is Lane.DONE
    checks_pass_at_every_commit(root, commits)
    assert (root / "feature_a.txt").exists()
    assert git(root, "status", "--porcelain", "--", ".", ":(exclude)tasks").strip() == ""


def test_the_target_is_the_branch_init_saw(tmp_path: Path) -> None:
    root = queue_project(tmp_path)
    git(root, "checkout", "-q", "-b", "elsewhere")
    commit_board(root)
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    assert land(root)["landed"] == [one]
    assert "feature_a.txt" in git(root, "ls-tree", "--name-only", "main")
    assert "feature_a.txt" not in git(root, "ls-tree", "--name-only", "elsewhere")
    assert not (root / "feature_a.txt").exists()  # main is not checked out: the tree is left


def test_a_running_daemon_lands_by_itself_and_shopfloor_land_takes_turns_with_it(
    tmp_path: Path,
) -> None:
    """The daemon's queue thread holds the queue while its check runs; `shopfloor land` waits
    for the lock meanwhile, then finds the work done: landed once."""
    root = queue_project(tmp_path)
    commit_board(root)
    start = git(root, "rev-parse", "main").strip()
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    hold = Path(str(tmp_path / "check-runs") + ".hold")
    hold.write_text("hold")
    daemon = start_daemon(root)
    try:
        wait_until(lambda: check_runs(tmp_path) == 1, 60, "the daemon's check to start")
        status = json.loads(shopfloor(root, "status", "--json").stdout)
        assert status["landing"]["checking"] == [one]
        cli = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "-C", str(root), "land", "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        hold.unlink()
        out, _ = cli.communicate(timeout=60)
        assert json.loads(out)["landed"] == []  # the daemon landed it while the CLI waited
        wait_until(lambda: lane_of(root, one) is Lane.DONE, 60, "the task in done/")
    finally:
        assert stop(daemon) == 0
    assert len(main_log(root, start)) == 1 and check_runs(tmp_path) == 1


def test_an_open_hotfix_makes_the_queue_wait(tmp_path: Path) -> None:
    root = queue_project(tmp_path)
    commit_board(root)
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    hotfix = actions.create_hotfix(Board(root), "prod down")
    out = land(root)
    assert out["landed"] == [] and f"a hotfix ({hotfix.id}) is open" in str(out["waiting"])
    assert "landing waits: a hotfix" in tracker(root, one)
    actions.cancel(Board(root), hotfix.id)  # queued, never started: withdrawn to failed/
    assert land(root)["landed"] == [one]


def test_a_target_that_fails_its_own_checks_makes_the_queue_wait_not_bounce(
    tmp_path: Path,
) -> None:
    root = queue_project(tmp_path)
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    (root / "culprit.txt").write_text("a human broke main\n")
    git(root, "add", "culprit.txt")
    git(root, *WHO, "commit", "-qm", "human breaks main")
    out = land(root)
    assert out["bounced"] == [] and "the checks fail on main itself" in str(out["waiting"])
    assert status_of(root, one) == "landing"
    assert out["check_runs"] == 2  # the task on main, then main alone
    again = land(root)  # main has not moved: known red, nothing runs again
    assert again["check_runs"] == 0 and again["waiting"] == out["waiting"]
    git(root, "rm", "-q", "culprit.txt")
    git(root, *WHO, "commit", "-qm", "human fixes main")
    assert land(root)["landed"] == [one]


def test_a_waiting_daemon_lands_once_the_tree_is_clean_without_a_board_event(
    tmp_path: Path,
) -> None:
    root = queue_project(tmp_path)
    commit_board(root)
    one = queue_task(root, "Feature A", {"feature_a.txt": "a"})
    (root / "app.py").write_text("def answer():\n    return 41  # human edit in progress\n")
    daemon = start_daemon(root)
    try:
        wait_until(lambda: "landing waits" in tracker(root, one), 60, "the queue to wait")
        git(root, "checkout", "--", "app.py")  # no file under tasks/ changes: the queue polls
        wait_until(lambda: lane_of(root, one) is Lane.DONE, 60, "the task to land")
    finally:
        assert stop(daemon) == 0
    assert (root / "feature_a.txt").exists()
