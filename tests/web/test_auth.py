"""Who may look and act: login by URL, bearer header, 401 without, CSRF and Origin on writes."""

from __future__ import annotations

from pathlib import Path

import httpx

from shopfloor.board import Board
from shopfloor.web import auth
from tests.web.support import CSRF, TOKEN


def test_login_by_url_sets_a_strict_httponly_cookie_and_drops_the_token(web: str) -> None:
    with httpx.Client(base_url=web) as client:
        response = client.get(f"/api/v1/state?x=1&token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["location"] == "/api/v1/state?x=1"
    cookie = response.headers["set-cookie"]
    port = web.rsplit(":", 1)[1]
    assert cookie.startswith(f"{auth.COOKIE}_{port}={TOKEN};")
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert "httponly" in parts
    assert "samesite=strict" in parts
    assert "path=/" in parts


def test_the_cookie_then_reads_without_the_token(browser: httpx.Client) -> None:
    response = browser.get("/api/v1/state")
    assert response.status_code == 200
    assert response.json()["schema"] == 1


def test_a_wrong_token_in_the_url_logs_nobody_in(web: str) -> None:
    response = httpx.get(f"{web}/api/v1/state?token=wrong")
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert response.json()["error"]["code"] == "unauthorized"


def test_bearer_header_works_and_nothing_else_does(web: str) -> None:
    ok = httpx.get(f"{web}/api/v1/state", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Cookie": f"{auth.COOKIE}_{web.rsplit(':', 1)[1]}=wrong"},
    ):
        response = httpx.get(f"{web}/api/v1/state", headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {
            "error": {"code": "unauthorized", "message": response.json()["error"]["message"]}
        }
        assert TOKEN not in response.text


def test_a_cookie_write_needs_the_csrf_token(
    web: str, browser: httpx.Client, project: Path
) -> None:
    origin = {"Origin": web}
    no_csrf = browser.post("/api/v1/tasks", json={"title": "sneaky"}, headers=origin)
    assert no_csrf.status_code == 403
    assert no_csrf.json()["error"]["code"] == "csrf_failed"
    wrong = browser.post(
        "/api/v1/tasks", json={"title": "sneaky"}, headers={**origin, "X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    assert Board(project).scan().entries == []
    ok = browser.post(
        "/api/v1/tasks", json={"title": "mine"}, headers={**origin, "X-CSRF-Token": CSRF}
    )
    assert ok.status_code == 201, ok.text
    assert [e.header.title for e in Board(project).scan().entries] == ["mine"]


def test_a_cookie_write_from_a_foreign_origin_is_refused(
    web: str, browser: httpx.Client, project: Path
) -> None:
    for headers in (
        {"Origin": "http://evil.example", "X-CSRF-Token": CSRF},
        {"Origin": web.replace("127.0.0.1", "localhost"), "X-CSRF-Token": CSRF},
        {"X-CSRF-Token": CSRF},  # no Origin and no Sec-Fetch-Site: same-origin
        {"X-CSRF-Token": CSRF, "Sec-Fetch-Site": "cross-site"},
    ):
        response = browser.post("/api/v1/tasks", json={"title": "sneaky"}, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["code"] == "bad_origin"
    assert Board(project).scan().entries == []
    same_site = browser.post(
        "/api/v1/tasks",
        json={"title": "mine"},
        headers={"X-CSRF-Token": CSRF, "Sec-Fetch-Site": "same-origin"},
    )
    assert same_site.status_code == 201


def test_a_form_post_carries_the_csrf_token_as_a_field(
    web: str, browser: httpx.Client, project: Path
) -> None:
    response = browser.post(
        "/api/v1/tasks", data={"title": "from a form", "csrf": CSRF}, headers={"Origin": web}
    )
    assert response.status_code == 201, response.text
    assert Board(project).find(response.json()["id"]).header.title == "from a form"


def test_the_bearer_header_writes_without_csrf(api: httpx.Client) -> None:
    response = api.post("/api/v1/tasks", json={"title": "scripted"})
    assert response.status_code == 201


def test_csrf_token_is_not_the_token() -> None:
    assert auth.csrf_token(TOKEN) != TOKEN
    assert TOKEN not in auth.csrf_token(TOKEN)
    assert auth.csrf_token(TOKEN) == auth.csrf_token(TOKEN)
    assert auth.csrf_token("other") != auth.csrf_token(TOKEN)


def test_a_browser_without_the_cookie_gets_a_login_page(web: str) -> None:
    response = httpx.get(f"{web}/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "?token=" in response.text
    assert TOKEN not in response.text
    api = httpx.get(f"{web}/api/v1/state", headers={"Accept": "application/json"})
    assert api.json()["error"]["code"] == "unauthorized"


def test_two_boards_on_one_host_keep_their_own_logins(tmp_path: Path, project: Path) -> None:
    from tests.support import make_project
    from tests.web.support import served

    (tmp_path / "other").mkdir()
    other = make_project(tmp_path / "other")
    # One browser (one cookie jar: cookies ignore ports), logged in to both.
    with (
        served(project) as first,
        served(other, token="another-token") as second,
        httpx.Client() as client,
    ):
        assert client.get(f"{first}/?token={TOKEN}").status_code == 303
        assert client.get(f"{second}/?token=another-token").status_code == 303
        assert client.get(f"{first}/api/v1/state").status_code == 200
        assert client.get(f"{second}/api/v1/state").status_code == 200
