"""The HTML side of the web board: the board, a task page, their live fragments and assets.

`page_routes(ctx)` is what `app.create_app` mounts next to the JSON API; authentication is the
app's middleware (static assets are public: they hold nothing of the project). Handlers are
plain functions, so Starlette runs their file and git reads in its thread pool; every request
reads the files again (the server keeps no board state).

Routes: `GET /` the board; `GET /fragment/board` its live part, which board.js swaps in when
the event stream (`GET /api/v1/events`) says something changed; `GET /task/<id>` a task whole
and `GET /fragment/task/<id>` its changing parts; `/static/*` board.css, board.js and
diff.css (the diff colours, from Pygments).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from shopfloor.board import Board
from shopfloor.errors import ShopfloorError
from shopfloor.web import boardpage, diffview, taskpage
from shopfloor.web.html import DIFF_CSS, esc, page

STATIC_DIR = Path(__file__).parent / "static"
#: Pages change with the files: never cached (assets may be, briefly).
NO_STORE = {"Cache-Control": "no-store"}


class PageContext(Protocol):
    """What the pages need of the app's context (`app.WebContext`)."""

    @property
    def board(self) -> Board: ...

    @property
    def csrf(self) -> str: ...


def board_body(ctx: PageContext) -> str:
    data = boardpage.load_board(ctx.board)
    return (
        '<header class="top"><h1>Shopfloor <small>'
        f"{esc(data.name)}</small></h1>{_forms()}</header>"
        f'<main class="board" data-fragment="/fragment/board">{boardpage.render_live(data)}'
        '</main><div id="toast" role="status" aria-live="polite"></div>'
    )


def _forms() -> str:
    """New request and new hotfix: two small forms board.js posts to the JSON API."""
    return (
        '<div class="forms">'
        '<details class="form"><summary>New request</summary>'
        '<form class="api" data-url="/api/v1/tasks" data-kind="request">'
        '<label>Title<input name="title" required maxlength="200"></label>'
        '<label>What you want<textarea name="body" rows="4"></textarea></label>'
        '<button type="submit">File request</button></form></details>'
        '<details class="form hot"><summary>File a hotfix</summary>'
        '<form class="api" data-url="/api/v1/hotfix" data-kind="hotfix">'
        '<label>What is burning<input name="title" required maxlength="200"></label>'
        '<label>Log (optional)<textarea name="log" rows="4" '
        'placeholder="paste the error or log lines"></textarea></label>'
        '<button type="submit" class="danger">File hotfix</button></form></details></div>'
    )


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=NO_STORE)


def _not_found(ctx: PageContext, message: str) -> HTMLResponse:
    body = f'<main class="task"><a class="back" href="/">← board</a><h1>{esc(message)}</h1></main>'
    return _html(page("Not found · Shopfloor", body, ctx.csrf), 404)


def board_page(ctx: PageContext, request: Request) -> Response:
    return _html(page("Shopfloor board", board_body(ctx), ctx.csrf))


def board_fragment(ctx: PageContext, request: Request) -> Response:
    return _html(boardpage.render_live(boardpage.load_board(ctx.board)))


def task_page(ctx: PageContext, request: Request) -> Response:
    try:
        data = taskpage.load_task(ctx.board, request.path_params["task_id"])
    except ShopfloorError as exc:
        return _not_found(ctx, str(exc))
    title = f"{data.task_id} {data.doc['title']} · Shopfloor"
    return _html(page(title, taskpage.render_task(data), ctx.csrf, (DIFF_CSS,)))


def task_fragment(ctx: PageContext, request: Request) -> Response:
    """The parts of a task page that change while it is open (state, tracker, runs list)."""
    try:
        data = taskpage.load_task(ctx.board, request.path_params["task_id"])
    except ShopfloorError as exc:
        return _html(f"<p>{esc(exc)}</p>", 404)
    parts = (
        taskpage.render_header(data),
        taskpage.render_checks(data),
        taskpage.render_runs(data),
        taskpage.render_tracker(data),
    )
    return _html(f"<div>{''.join(parts)}</div>")


@functools.cache
def _diff_css() -> str:
    return diffview.style_css()


def diff_css(request: Request) -> Response:
    return Response(_diff_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


def page_routes(ctx: PageContext) -> list[BaseRoute]:
    """The pages, their fragments and their static files, for `app.create_app`."""
    return [
        Route("/", functools.partial(board_page, ctx), methods=["GET"]),
        Route("/fragment/board", functools.partial(board_fragment, ctx), methods=["GET"]),
        Route("/task/{task_id}", functools.partial(task_page, ctx), methods=["GET"]),
        Route("/fragment/task/{task_id}", functools.partial(task_fragment, ctx), methods=["GET"]),
        Route(DIFF_CSS, diff_css, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
