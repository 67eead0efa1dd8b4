"""The web board in a real browser: Debian's Chromium, Playwright, uvicorn on 127.0.0.1, a real
project in a temporary git repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from shopfloor import actions, task
from shopfloor.board import Board
from tests.conftest import wait_until
from tests.web.browser import LIVE, SETTLE, TOKEN, Served

pytest_plugins = ["tests.web.browser_fixtures"]  # chromium, repo, served, page


def _card(tab: Any, lane: str, task_id: str) -> Any:
    return tab.locator(f'[data-lane="{lane}"] [data-task-id="{task_id}"]')


def _live(tab: Any) -> None:
    """The page's event stream is open (changes from now on reach it)."""
    tab.wait_for_selector('body[data-live="1"]', state="attached")


def _lane_of(root: Path, task_id: str) -> str:
    return Board(root).find(task_id).lane.value


def _set_status(path: Path, status: str) -> None:
    path.write_text(task.set_fields(path.read_text(), {"status": status}))


def test_login_by_url_sets_the_cookie_and_drops_the_token(page: Any) -> None:
    assert "token=" not in page.url
    port = page.url.split(":")[2].split("/")[0]
    (cookie,) = [c for c in page.context.cookies() if c["name"] == f"shopfloor_token_{port}"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator('section[data-lane="inbox"]')).to_be_visible()
    page.reload()  # the cookie alone keeps it logged in
    expect(page.locator('section[data-lane="backlog"]')).to_be_visible()


def test_login_by_header_and_refused_without(chromium: Any, served: Served) -> None:
    bearer = chromium.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        tab = bearer.new_page()
        tab.goto(served.url + "/")
        expect(tab.locator('section[data-lane="inbox"]')).to_be_visible()
    finally:
        bearer.close()
    anonymous = chromium.new_context()
    try:
        response = anonymous.new_page().goto(served.url + "/")
        assert response is not None and response.status == 401
    finally:
        anonymous.close()


def test_a_card_moves_column_within_a_second_of_a_move_on_disk(page: Any, served: Served) -> None:
    entry = actions.create_task(Board(served.root), actions.NewTask("Move me by hand"))
    page.reload()
    expect(_card(page, "inbox", entry.id)).to_be_visible()
    _live(page)
    os.rename(entry.path, served.root / "tasks" / "backlog" / entry.name)  # `mv`, by hand
    expect(_card(page, "backlog", entry.id)).to_be_visible(timeout=LIVE)
    expect(_card(page, "inbox", entry.id)).to_have_count(0)


def test_filing_a_request_and_a_hotfix_from_the_page_creates_the_files(
    page: Any, served: Served
) -> None:
    _live(page)
    page.click("text=New request")
    page.fill('form[data-kind="request"] input[name="title"]', "Export the board as CSV")
    page.fill('form[data-kind="request"] textarea[name="body"]', "One row per task.")
    page.click('form[data-kind="request"] button[type="submit"]')
    inbox = served.root / "tasks" / "inbox"
    (path,) = wait_until(lambda: list(inbox.glob("*.md")), 20, "the request file in inbox/")  # type: ignore[misc]
    text = path.read_text()
    assert "Export the board as CSV" in text and "One row per task." in text
    expect(page.locator('[data-lane="inbox"] .card .title')).to_have_text("Export the board as CSV")

    page.click("text=File a hotfix")
    page.fill('form[data-kind="hotfix"] input[name="title"]', "Checkout returns 500")
    page.fill('form[data-kind="hotfix"] textarea[name="log"]', "Traceback: KeyError 'cart'")
    page.click('form[data-kind="hotfix"] button[type="submit"]')
    hotfix = served.root / "tasks" / "hotfix"
    (hot,) = wait_until(lambda: list(hotfix.glob("HOTFIX-*.md")), 20, "the hotfix file")  # type: ignore[misc]
    assert "KeyError 'cart'" in hot.read_text()
    expect(page.locator('.hotfixes[data-lane="hotfix"] .card')).to_have_count(1)


def test_approve_and_retry_from_the_board(page: Any, served: Served) -> None:
    board = Board(served.root)
    gated = actions.create_task(board, actions.NewTask("Gated spec", backlog=True))
    _set_status(gated.path, "awaiting-approval")
    parked = actions.create_task(board, actions.NewTask("Parked", backlog=True))
    actions.cancel(board, parked.id)
    page.reload()
    _live(page)
    _card(page, "backlog", gated.id).locator('button[data-action="approve"]').click()
    wait_until(lambda: Board(served.root).find(gated.id).header.status == "queued", 20, "approved")
    status = _card(page, "backlog", gated.id).locator(".status")
    expect(status).to_have_text("queued", timeout=SETTLE)

    _card(page, "failed", parked.id).locator('button[data-action="retry"]').click()
    wait_until(lambda: _lane_of(served.root, parked.id) != "failed", 20, "retried out of failed/")
    expect(_card(page, "failed", parked.id)).to_have_count(0, timeout=SETTLE)


def test_cancel_from_the_task_page(page: Any, served: Served) -> None:
    entry = actions.create_task(Board(served.root), actions.NewTask("Not needed", backlog=True))
    page.goto(f"{served.url}/task/{entry.id}")
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel T-0001?"
    page.click('header.task-head button[data-action="cancel"]')
    wait_until(lambda: _lane_of(served.root, entry.id) == "failed", 20, "cancelled to failed/")
    head = page.locator("header.task-head")
    expect(head).to_have_attribute("data-lane", "failed", timeout=SETTLE)


XSS_TITLE = '<script>window.__xss = "title"</script><img src=x onerror="window.__xss=1">'
XSS_BODY = '<script>console.log("xss-body")</script><svg onload="alert(1)"></svg>'


def test_task_text_never_runs_as_script(page: Any, served: Served) -> None:
    entry = actions.create_task(Board(served.root), actions.NewTask(XSS_TITLE, XSS_BODY))
    dialogs: list[str] = []
    logs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: logs.append(m.text))
    page.reload()
    title = page.locator(f'[data-task-id="{entry.id}"] .title')
    expect(title).to_have_text(XSS_TITLE)  # shown as text, character for character
    page.goto(f"{served.url}/task/{entry.id}")
    expect(page.locator("h1")).to_contain_text(XSS_TITLE)
    expect(page.locator("#request pre")).to_contain_text(XSS_BODY)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main svg").count() == 0
    assert dialogs == [] and not [m for m in logs if "xss" in m]


def test_the_board_on_a_phone(chromium: Any, served: Served) -> None:
    board = Board(served.root)
    for n in range(6):
        actions.create_task(board, actions.NewTask(f"A long title to wrap on a phone, number {n}"))
    actions.create_hotfix(board, "Payments down")
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        tab = context.new_page()
        tab.goto(f"{served.url}/?token={TOKEN}")
        expect(tab.locator('[data-lane="inbox"] .card')).to_have_count(6)
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        inbox = tab.locator('section[data-lane="inbox"]').bounding_box()
        backlog = tab.locator('section[data-lane="backlog"]').bounding_box()
        assert inbox["x"] == backlog["x"] and backlog["y"] > inbox["y"]  # stacked
        assert inbox["width"] >= 340  # a column takes the phone's width
        card = tab.locator('[data-lane="inbox"] .card .title').first
        size = card.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 14
        box = card.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        long = actions.create_task(board, actions.NewTask("Long lines", "x" * 600, backlog=True))
        tab.goto(f"{served.url}/task/{long.id}")
        expect(tab.locator("section.text pre").first).to_contain_text("xxxx")
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the task page is {width} px wide on a 390 px phone"
    finally:
        context.close()


def _running_run(root: Path, task_id: str, run_id: str) -> Path:
    """A run as the daemon leaves it while its agent works: a folder with meta.json and a
    growing stdout.log, and a `running` row in the journal (with the cost it reported)."""
    from shopfloor.journal import open_journal
    from shopfloor.paths import StatePaths
    from shopfloor.runlogs import write_meta

    run_dir = StatePaths(root).runs_dir / run_id
    run_dir.mkdir(parents=True)
    write_meta(run_dir, task_id, "coder", "claude")
    (run_dir / "stdout.log").write_text("reading the spec\n")
    with open_journal(root) as journal:
        journal.insert_run(
            run_id,
            task_id,
            "coder",
            agent="claude",
            state="running",
            run_dir=str(run_dir),
            cost_usd=0.42,
        )
    return run_dir


def test_running_runs_show_on_the_board_and_their_logs_stream(page: Any, served: Served) -> None:
    entry = actions.create_task(Board(served.root), actions.NewTask("Busy", backlog=True))
    run_dir = _running_run(served.root, entry.id, "R-7")
    page.reload()
    run = page.locator('.runs [data-run-id="R-7"]')
    expect(run).to_contain_text(entry.id)
    expect(run.locator(".cost")).to_have_text("$0.42")
    expect(run.locator(".last")).to_have_text("reading the spec")
    shown = run.locator(".age").inner_text()
    expect(run.locator(".age")).not_to_have_text(shown, timeout=3000)  # it ticks

    page.goto(f"{served.url}/task/{entry.id}")
    log = page.locator('details.run-log[data-run-id="R-7"] pre.log')
    expect(log).to_contain_text("reading the spec")
    with (run_dir / "stdout.log").open("a") as out:
        out.write("editing app.py\n")
    expect(log).to_contain_text("editing app.py", timeout=3000)


def test_close_a_hotfix_from_its_page_refused_then_forced(page: Any, served: Served) -> None:
    from shopfloor.journal import open_journal

    hot = actions.create_hotfix(Board(served.root), "Checkout returns 500")
    _set_status(hot.path, "awaiting-human")  # its agent ran and left a fix in the live tree
    (served.root / "app.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    with open_journal(served.root) as journal:
        journal.save_task_state(hot.id, hotfix_paths=["app.py"])
    page.goto(f"{served.url}/task/{hot.id}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click('header.task-head button[data-action="close-hotfix"]')
    expect(page.locator("#toast")).to_contain_text("not committed")  # the API's refusal
    assert _lane_of(served.root, hot.id) == "hotfix"
    page.click('header.task-head button[data-action="close-hotfix-force"]')
    wait_until(lambda: _lane_of(served.root, hot.id) == "done", 20, "closed to done/")
    text = Board(served.root).read_text(Board(served.root).find(hot.id))
    assert "closed_uncommitted: true" in text
