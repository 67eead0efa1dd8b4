"""Budgets and pauses: spend is summed from what agents report; over budget parks the task for
a human, a day over budget stops new claims (never hotfixes), a paused agent's tasks wait."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from shopfloor import actions, budget, config
from shopfloor.board import Board, Lane
from shopfloor.journal import Journal
from shopfloor.scheduler import Daemon
from tests.support import agent_command, lane_of, make_project, shopfloor, tracker


def run_once(root: Path) -> int:
    return Daemon(root, config.load(root / "shopfloor.toml"), once=True).run()


def agent(*behaviour: str) -> dict[str, dict[str, object]]:
    return {"a": {"backend": "command", "command": agent_command(*behaviour), "timeout": "60s"}}


def new(root: Path, title: str, backlog: bool = False) -> str:
    return actions.create_task(Board(root), actions.NewTask(title, "do it", backlog)).id


def header(root: Path, task_id: str) -> object:
    return Board(root).find(task_id).header


def test_a_task_over_its_budget_is_parked_for_a_human_with_the_reason(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents=agent("*:cost=0.04"), extra="[budget]\ntask_usd = 0.05\n")
    task_id = new(root, "Spend money")
    run_once(root)
    # PM (0.04) and Coder (0.04, started with 0.01 left) ran; QA found nothing left.
    entry = Board(root).find(task_id)
    assert entry.lane is Lane.REVIEW and entry.header.status == "awaiting-human"
    assert "over-budget" in tracker(root, task_id) and "budget spent" in tracker(root, task_id)
    spend_line = r"coder a run R-\d+ ok \d+s 1\.1k tokens \$0\.04"
    assert re.search(spend_line, tracker(root, task_id))  # tokens and cost in the tracker
    status = json.loads(shopfloor(root, "status", "--json").stdout)
    assert status["spend"]["by_task"] == {task_id: 0.08}
    shown = json.loads(shopfloor(root, "show", task_id, "--json").stdout)
    agent_runs = [r for r in shown["runs"] if r["role"] != "checks"]
    assert shown["cost_usd"] == 0.08 and [r["role"] for r in agent_runs] == ["pm", "coder"]
    assert all(r["tokens_in"] == 1000 and r["tokens_out"] == 100 for r in agent_runs)


def test_a_run_that_crosses_the_budget_is_stopped_while_running(tmp_path: Path) -> None:
    extra = "[budget]\ntask_usd = 0.05\n"
    root = make_project(tmp_path, agents=agent("coder:cost=0.5", "coder:hang"), extra=extra)
    task_id = new(root, "Burn money", backlog=True)
    started = time.monotonic()
    run_once(root)
    assert time.monotonic() - started < 30  # stopped by the budget, not its 60 s timeout
    entry = Board(root).find(task_id)
    assert entry.lane is Lane.BACKLOG and entry.header.status == "awaiting-human"
    assert entry.header.attempts == 0  # the budget is not the task's fault
    assert "over budget" in tracker(root, task_id)


def test_the_day_budget_stops_new_claims_but_never_a_hotfix(tmp_path: Path) -> None:
    extra = "[budget]\nday_usd = 0.03\n"
    root = make_project(tmp_path, agents=agent("*:cost=0.04"), extra=extra)
    first, second = new(root, "First"), new(root, "Second")
    run_once(root)
    with Journal.for_project(root) as journal:
        assert budget.spent_today(journal) == pytest.approx(0.04)
    lanes = {lane_of(root, first), lane_of(root, second)}
    assert lanes == {Lane.BACKLOG, Lane.INBOX}  # one PM run, then no more claims
    waiting = next(t for t in (first, second) if lane_of(root, t) is Lane.INBOX)
    assert header(root, waiting).status == "queued"  # waits for tomorrow, not parked
    hotfix = actions.create_hotfix(Board(root), "Production down").id
    run_once(root)
    assert header(root, hotfix).status == "awaiting-human"
    assert "hotfix a run" in tracker(root, hotfix)


def test_a_paused_agent_leaves_its_tasks_waiting_without_using_attempts(tmp_path: Path) -> None:
    root = make_project(tmp_path, agents=agent())
    task_id = new(root, "Wait for the reset", backlog=True)
    with Journal.for_project(root) as journal:
        journal.pause_agent("a", time.time() + 3600, "rate-limited: usage limit")
    run_once(root)
    assert lane_of(root, task_id) is Lane.BACKLOG and header(root, task_id).attempts == 0
    status = json.loads(shopfloor(root, "status", "--json").stdout)
    assert [p["agent"] for p in status["paused"]] == ["a"]
    assert "paused" in shopfloor(root, "status").stdout
    with Journal.for_project(root) as journal:
        journal.pause_agent("a", time.time() - 1, "over")
    run_once(root)
    assert lane_of(root, task_id) is Lane.DONE


def test_a_pause_lasts_until_the_reset_time_or_a_doubling_back_off(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        now = 1_000_000.0
        assert budget.pause_agent(journal, "x", now + 900, "429", now=now) == now + 900
        assert budget.pause_agent(journal, "y", None, "429", now=now) == now + 60
        assert budget.pause_agent(journal, "y", None, "429", now=now) == now + 120
        assert budget.pause_agent(journal, "y", now - 5, "429", now=now) == now + 240
        assert budget.backoff(20) == 3600
        journal.clear_pause("y")
        assert journal.strikes("y") == 0


def test_a_missing_binary_parks_one_task_pauses_the_rest_and_retry_lifts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = {"a": {"backend": "command", "command": [str(tmp_path / "no-such-agent")]}}
    one_at_a_time = {"concurrency": {"pm": 1, "coder": 1, "qa": 1}}
    root = make_project(tmp_path, agents=missing, pipeline=one_at_a_time)
    first, second = new(root, "First", backlog=True), new(root, "Second", backlog=True)
    run_once(root)
    assert "event=agent.missing agent=a" in capsys.readouterr().err  # said at start
    parked = Board(root).find(first)
    assert parked.header.status == "awaiting-human" and parked.header.attempts == 0
    assert "not-installed" in tracker(root, first)
    waiting = Board(root).find(second)
    assert waiting.header.status == "queued" and "run R-" not in tracker(root, second)
    with Journal.for_project(root) as journal:
        (reason,) = [r for _, r in journal.pauses().values()]
        assert reason.startswith("not-installed")
    shopfloor(root, "retry", first)
    with Journal.for_project(root) as journal:
        assert journal.pauses() == {}
