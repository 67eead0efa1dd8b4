"""publish(): routing by subscription, priorities, no network, never raising into the daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shopfloor import config as config_mod
from shopfloor.errors import ConfigError
from shopfloor.journal import Journal
from shopfloor.notify import events, publish, queue_status, routes
from shopfloor.notify.bot import parse, trim

from .conftest import make_config


def test_publish_writes_one_row_per_subscribed_channel_with_the_event_priority(
    journal: Journal,
) -> None:
    cfg = make_config(
        webhook=[
            {"url": "http://127.0.0.1:9/a", "name": "all"},
            {"url": "http://127.0.0.1:9/b", "name": "hotfixes", "events": ["hotfix_started"]},
        ],
        command=[{"argv": ["true"], "events": ["task_done"]}],
    )
    ids = publish(journal, cfg, events.HOTFIX_STARTED, task_id="HOTFIX-x", title="DB down")
    assert len(ids) == 2
    assert publish(journal, cfg, events.TASK_DONE, task_id="T-0001") != []
    hot = journal.pending("webhook:hotfixes")
    assert [(i.event, i.priority) for i in hot] == [("hotfix_started", 0)]
    assert [i.event for i in journal.pending("webhook:all")] == ["hotfix_started", "task_done"]
    assert [i.event for i in journal.pending("command")] == ["task_done"]
    assert hot[0].payload["title"] == "DB down" and hot[0].payload["project"] == "repo"
    assert queue_status(journal, cfg) == {"webhook:all": 2, "webhook:hotfixes": 1, "command": 1}


def test_hotfix_events_leave_the_outbox_first(journal: Journal) -> None:
    """Rule: priority orders the queue; hotfix events have the highest priority."""
    cfg = make_config(webhook=[{"url": "http://127.0.0.1:9/"}])
    for event in (events.TASK_DONE, events.DAEMON_STARTED, events.HOTFIX_AWAITING_HUMAN):
        publish(journal, cfg, event, task_id="X")
    order = [i.event for i in journal.pending("webhook")]
    assert order[0] == events.HOTFIX_AWAITING_HUMAN
    assert events.ALL_EVENTS[:2] == (events.HOTFIX_AWAITING_HUMAN, events.HOTFIX_STARTED)


def test_publish_without_channels_writes_nothing(journal: Journal) -> None:
    assert publish(journal, make_config(), events.TASK_DONE, task_id="T-1") == []
    assert journal.unsent_count() == 0


def test_publish_never_raises_into_the_caller(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rule (huey): a notification can never fail the work; it is logged and dropped."""
    cfg = make_config(webhook=[{"url": "http://127.0.0.1:9/"}])
    broken = Journal.for_project(project)
    broken.close()  # every write now fails
    assert publish(broken, cfg, events.TASK_FAILED, task_id="T-1") == []
    assert "could not queue task_failed" in caplog.text


def test_publish_is_fast_and_needs_no_network(journal: Journal) -> None:
    """The daemon's only call: SQLite rows, no service, no server behind the URLs."""
    cfg = make_config(webhook=[{"url": "http://192.0.2.1:9/never"}])  # nothing is contacted
    started = time.perf_counter()
    for n in range(50):
        publish(journal, cfg, events.TASK_DONE, task_id=f"T-{n}")
    assert (time.perf_counter() - started) / 50 < 0.05
    assert journal.unsent_count("webhook") == 50


def test_routes_follow_the_events_list() -> None:
    cfg = make_config(webhook=[{"url": "http://h/", "events": ["task_failed", "qa_failed"]}])
    assert routes(cfg.notify, events.TASK_FAILED) == ["webhook"]
    assert routes(cfg.notify, events.TASK_DONE) == []


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"webhook": [{"url": "http://h/", "events": ["task_dun"]}]}, "unknown event 'task_dun'"),
        ({"webhook": [{"name": "x"}]}, "exactly one of url or url_env"),
        ({"webhook": [{"url": "ftp://h/"}]}, "url must start with https://"),
        ({"webhook": [{"url": "http://h/"}, {"url_env": "U"}]}, "two channels are named"),
        ({"command": [{"argv": []}]}, "notify.command.0.argv"),
        ({"telegram": {"api_base": "api.telegram.org"}}, "api_base must start with https://"),
        ({"webhook": [{"url": "http://h/", "token": "s3cret"}]}, "secrets never go in"),
    ],
)
def test_bad_notify_config_names_the_key_and_the_fix(
    section: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_mod.from_mapping({"notify": section})
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_notify_secret_env_names_cover_every_channel_secret() -> None:
    cfg = config_mod.from_mapping(
        {
            "notify": {
                "telegram": {"token_env": "BOT", "chat_ids": [1]},
                "webhook": [{"url_env": "SLACK_URL", "token_env": "NTFY_TOKEN"}],
            }
        }
    )
    assert cfg.notify.secret_env_names() == {"BOT", "SLACK_URL", "NTFY_TOKEN"}


def test_messages_are_short_and_carry_the_outbox_id() -> None:
    text = events.render(
        events.HOTFIX_AWAITING_HUMAN,
        {"task_id": "HOTFIX-db", "title": "DB down", "incomplete": True, "project": "shop"},
        item_id=17,
    )
    lines = text.splitlines()
    assert lines[0] == "[shop] 🚨 Hotfix waits for you: HOTFIX-db — DB down"
    assert "INCOMPLETE" in text and "/close HOTFIX-db" in text and lines[-1] == "#17"
    for event in events.ALL_EVENTS:  # every event renders, even with an empty payload
        assert events.render(event, {}, 1).endswith("#1")
    assert events.render("something_new", {"a": 1}) == "something_new: a=1"


def test_command_parsing_and_trimming() -> None:
    assert parse("/show@sf_bot T-0001") == ("show", "T-0001")
    assert parse("/NEW Title\nbody line") == ("new", "Title\nbody line")
    assert parse("/hotfix\nDB down") == ("hotfix", "DB down")
    assert parse("hello") == ("", "hello")
    long = "\n".join(f"line {n}" for n in range(1000))
    cut = trim(long, "shopfloor show T-1")
    assert len(cut) < 1600 and cut.endswith("… (cut) — shopfloor show T-1")
