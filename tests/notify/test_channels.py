"""The webhook and command channels: body shapes, outages, Retry-After, secrets, timeouts."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from shopfloor.journal import Journal
from shopfloor.notify import events, publish
from tests.conftest import wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

from .conftest import TOKEN_ENV, ServiceFactory, make_config


def texts(receiver: WebhookReceiver) -> list[str]:
    return [b.get("text") or b.get("message") or "" for b in receiver.bodies()]


def test_webhook_posts_json_with_text_and_the_outbox_id(
    receiver: WebhookReceiver, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(webhook=[{"url": receiver.hook_url()}])
    service(cfg)
    [row] = publish(journal, cfg, events.TASK_FAILED, task_id="T-3", title="Sends", reason="QA")
    wait_until(receiver.bodies)
    [body] = receiver.bodies()
    assert body["text"] == f"[repo] ❌ Failed: T-3 — Sends\nQA\n/retry T-3 to try again\n#{row}"
    assert body["id"] == row and body["event"] == "task_failed" and body["priority"] == 3
    assert body["payload"]["task_id"] == "T-3" and body["source"] == "shopfloor"


def test_slack_and_ntfy_bodies(
    receiver: WebhookReceiver, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(
        webhook=[
            {"name": "slack", "url": receiver.hook_url("/slack"), "style": "slack"},
            {"name": "ntfy", "url": receiver.url, "style": "ntfy", "topic": "shop"},
        ]
    )
    service(cfg)
    publish(journal, cfg, events.HOTFIX_STARTED, task_id="HOTFIX-db", title="DB down")
    wait_until(lambda: len(receiver.bodies()) == 2)
    by_path = {r.path: r.body for r in receiver.received}
    assert set(by_path["/slack"]) == {"text"} and "HOTFIX-db" in by_path["/slack"]["text"]
    ntfy = by_path["/"]
    assert ntfy["topic"] == "shop" and ntfy["priority"] == 5 and ntfy["tags"] == ["hotfix_started"]
    assert ntfy["title"] == "[repo] 🚨 Hotfix started: HOTFIX-db — DB down"


def test_webhook_502_then_every_message_once_in_order(
    receiver: WebhookReceiver, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(webhook=[{"url": receiver.hook_url()}])
    receiver.set_mode("502")
    svc = service(cfg)
    rows = [publish(journal, cfg, events.TASK_DONE, task_id=f"T-{n}")[0] for n in range(4)]
    wait_until(lambda: svc.status()["channels"]["webhook"]["failures"] >= 2)
    assert svc.status()["channels"]["webhook"]["last_error"] == "webhook answered HTTP 502"
    receiver.set_mode("normal")
    wait_until(lambda: len(receiver.bodies()) == 4)
    assert [b["id"] for b in receiver.bodies()] == rows


def test_webhook_honours_retry_after(
    receiver: WebhookReceiver, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(webhook=[{"url": receiver.hook_url()}])
    receiver.set_mode("429", retry_after=1)
    service(cfg)
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    first = wait_until(lambda: receiver.calls_of("hook"))[0]
    receiver.set_mode("normal")
    wait_until(receiver.bodies)
    second = receiver.calls_of("hook")[1]
    assert first.status == 429 and 1.0 <= second.t - first.t < 2.5


def test_webhook_down_at_start_then_up(journal: Journal, service: ServiceFactory) -> None:
    with WebhookReceiver(listening=False, max_lifetime=60) as receiver:
        cfg = make_config(webhook=[{"url": receiver.hook_url()}])
        svc = service(cfg)
        publish(journal, cfg, events.DAEMON_STARTED, pid=1)
        wait_until(lambda: svc.status()["channels"]["webhook"]["failures"] >= 2)
        receiver.listen()
        wait_until(receiver.bodies)
        assert receiver.bodies()[0]["event"] == "daemon_started"


def test_a_refused_message_is_parked_and_does_not_block_the_channel(
    receiver: WebhookReceiver, journal: Journal, service: ServiceFactory
) -> None:
    cfg = make_config(webhook=[{"url": receiver.hook_url()}])
    receiver.reject = lambda body: "REJECT" in body.get("text", "")
    svc = service(cfg)
    bad = publish(journal, cfg, events.TASK_DONE, task_id="T-1", title="REJECT me")[0]
    good = publish(journal, cfg, events.TASK_DONE, task_id="T-2", title="fine")[0]
    wait_until(receiver.bodies)
    assert [b["id"] for b in receiver.bodies()] == [good]
    wait_until(lambda: journal.unsent_count("webhook") == 1)  # kept for a human, not retried
    assert svc.status()["channels"]["webhook"]["undeliverable"] == 1
    assert [i.id for i in journal.pending("webhook", now=time.time() + 1e9)] == []
    assert bad != good


def test_a_secret_webhook_url_never_reaches_the_logs(
    receiver: WebhookReceiver,
    journal: Journal,
    service: ServiceFactory,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    secret_path = "/services/T0SECRET/B0SECRET/xoxb"
    cfg = make_config(webhook=[{"url_env": "SLACK_HOOK", "style": "slack"}])
    receiver.set_mode("502")
    service(cfg, env={"SLACK_HOOK": receiver.url + secret_path})
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    wait_until(lambda: len(receiver.calls) >= 2)
    receiver.set_mode("normal")
    wait_until(receiver.bodies)
    assert receiver.received[0].path == secret_path
    assert "T0SECRET" not in all_logs.text and "POST ***" in all_logs.text


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "notify_cmd.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path), str(tmp_path)]


def test_command_channel_gets_json_on_stdin_and_is_retried(
    tmp_path: Path, journal: Journal, service: ServiceFactory
) -> None:
    argv = _script(
        tmp_path,
        """
        import json, os, pathlib, sys
        out = pathlib.Path(sys.argv[1])
        if not (out / "failed-once").exists():
            (out / "failed-once").touch()
            sys.exit("temporary failure")
        msg = json.load(sys.stdin)
        msg["env"] = sorted(os.environ)
        (out / f"msg-{msg['id']}.json").write_text(json.dumps(msg))
        """,
    )
    cfg = make_config(
        command=[{"argv": argv, "env": {"EXTRA": "1"}}],
        webhook=[{"url_env": "HOOK_SECRET", "name": "x"}],
    )
    env = {TOKEN_ENV: "1:abcd", "HOOK_SECRET": "http://127.0.0.1:9/s", "PATH": "/usr/bin"}
    svc = service(cfg, env=env)
    [_, row] = publish(journal, cfg, events.AGENT_PROBLEM, agent="claude", outcome="auth-error")
    out = tmp_path / f"msg-{row}.json"
    wait_until(out.exists)
    msg: dict[str, Any] = json.loads(out.read_text())
    assert msg["event"] == "agent_problem" and msg["text"].endswith(f"#{row}")
    assert "⚠️ Agent claude: auth-error" in msg["text"]
    assert "EXTRA" in msg["env"] and "PATH" in msg["env"]
    assert TOKEN_ENV not in msg["env"] and "HOOK_SECRET" not in msg["env"]
    assert "temporary failure" in str(svc.status()["channels"]["command"]["last_error"])


def test_command_channel_timeout_kills_the_whole_group(
    tmp_path: Path, journal: Journal, service: ServiceFactory
) -> None:
    argv = _script(
        tmp_path,
        """
        import pathlib, subprocess, sys, time
        out = pathlib.Path(sys.argv[1])
        if not (out / "hung-once").exists():
            (out / "hung-once").touch()
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            (out / "child.pid").write_text(str(child.pid))
            time.sleep(60)
        sys.stdin.read()
        (out / "delivered").touch()
        """,
    )
    cfg = make_config(command=[{"argv": argv, "timeout": "500ms"}])
    svc = service(cfg)
    publish(journal, cfg, events.TASK_DONE, task_id="T-1")
    wait_until((tmp_path / "delivered").exists)
    assert "ran past 0.5s" in str(svc.status()["channels"]["command"]["last_error"])
    child = int((tmp_path / "child.pid").read_text())

    def gone() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, what="the command's child killed with its group")
