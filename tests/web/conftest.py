"""A real board server for each test: uvicorn on 127.0.0.1, a free port, always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shopfloor.web import auth
from tests.web.support import TOKEN, served


@pytest.fixture
def web(project: Path) -> Iterator[str]:
    """The base URL of a board served for `project` (token: support.TOKEN)."""
    with served(project) as url:
        yield url


@pytest.fixture
def api(web: str) -> Iterator[httpx.Client]:
    """A client that authenticates with the bearer header."""
    with httpx.Client(base_url=web, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def browser(web: str) -> Iterator[httpx.Client]:
    """A client logged in like a browser: the cookie from `?token=`, no bearer header."""
    with httpx.Client(base_url=web, follow_redirects=False) as client:
        response = client.get(f"/?token={TOKEN}")
        assert response.status_code == 303, response.text
        port = web.rsplit(":", 1)[1]
        assert client.cookies.get(f"{auth.COOKIE}_{port}") == TOKEN
        yield client
