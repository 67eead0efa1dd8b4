"""The JSON API under /api/v1, shaped like Symphony's (docs/web.md has every schema).

Reads go to the task files and the journal on every request; writes go through
`shopfloor.actions`, the code the CLI runs, so the lifecycle refuses from the browser exactly
what it refuses from a terminal. Every error is one envelope:
`{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from shopfloor import actions, defaults, lock, runlogs, task
from shopfloor.board import TASK_LANES, Board, Lane, is_temp_name
from shopfloor.errors import (
    AmbiguousIdError,
    ConflictError,
    InfrastructureError,
    ShopfloorError,
    TaskNotFoundError,
    UnsafePathError,
)
from shopfloor.lifecycle import TransitionRefused
from shopfloor.web import events
from shopfloor.web.auth import SafeJSONResponse, error_response

if TYPE_CHECKING:
    from shopfloor.web.app import WebContext

PREFIX = "/api/v1"
#: Who the records say acted ("human approved via web").
WHO = "web"
#: Every method a route answers, so a wrong one gets the JSON 405 rather than a plain one.
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: The sections a task document lists by name (the full text is there too).
SECTIONS = ("Request", "Spec", "Verification", "QA notes", "Rework notes", "Evidence", "Tracker")
#: Largest request body read (a pasted log is cut to its tail by create_hotfix anyway).
MAX_BODY = 2 * 1024 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An error answered as the envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewTaskBody(_Body):
    title: str = Field(min_length=1, max_length=1000)
    body: str = ""
    backlog: bool = False
    priority: str = defaults.DEFAULT_PRIORITY
    type: str = "feature"


class HotfixBody(_Body):
    title: str = Field(min_length=1, max_length=1000)
    body: str = ""
    log: str | None = Field(default=None, description="a pasted log; its tail is kept")


class Comment(_Body):
    path: str | None = None
    line: int | None = Field(default=None, ge=0)
    text: str = Field(min_length=1)


class ReworkBody(_Body):
    notes: str = ""
    comments: list[Comment] = Field(default_factory=list)


class CloseBody(_Body):
    force: bool = False
    followup: bool = False


class EmptyBody(_Body):
    pass


# ---------------------------------------------------------------------------- plumbing


def _only(method: str, endpoint: Endpoint) -> Endpoint:
    """The endpoint for one method (GET also answers HEAD); any other: the 405 envelope."""
    allowed = {method, "HEAD"} if method == "GET" else {method}

    async def guarded(request: Request) -> Response:
        if request.method not in allowed:
            response = error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}; use {method}",
            )
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        try:
            return await endpoint(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)

    return guarded


def _route(path: str, method: str, endpoint: Endpoint) -> Route:
    return Route(PREFIX + path, _only(method, endpoint), methods=_ALL_METHODS)


def api_error(exc: Exception, refused: int = 409) -> ApiError:
    """The envelope for what an action raised; `refused` is the status for a plain refusal
    (409 for a decision on a task, 400 for bad input to a create)."""
    if isinstance(exc, TaskNotFoundError):
        return ApiError(404, "task_not_found", str(exc))
    if isinstance(exc, AmbiguousIdError):
        return ApiError(400, "ambiguous_id", str(exc))
    if isinstance(exc, UnsafePathError):
        return ApiError(400, "invalid_id", str(exc))
    if isinstance(exc, TransitionRefused):
        return ApiError(409, "transition_refused", str(exc))
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, InfrastructureError | sqlite3.Error | OSError):
        return ApiError(503, "unavailable", str(exc))
    return ApiError(refused, "refused" if refused == 409 else "invalid_request", str(exc))


async def _call(function: Callable[..., Any], *args: Any, refused: int = 409, **kw: Any) -> Any:
    """An `actions` call, off the event loop (files, SQLite, git), its errors as envelopes."""
    try:
        return await run_in_threadpool(function, *args, **kw)
    except (ShopfloorError, sqlite3.Error, OSError) as exc:
        raise api_error(exc, refused) from None


async def _body(request: Request, model: type[M]) -> M:
    """The request body as `model`: JSON, or a form (the pages' no-script fallback)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY} bytes")
    data: Any
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/x-www-form-urlencoded"):
        # Parsed here: Starlette's request.form() needs python-multipart, even for this.
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        data = {k: v for k, v in pairs if k != "csrf"}
        for flag in ("backlog", "force", "followup"):
            if flag in data:
                data[flag] = data[flag] not in ("", "0", "false", "off")
    elif raw.strip():
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    else:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiError(400, "invalid_request", problems) from None


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return SafeJSONResponse(document, status_code=status, headers=headers)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- documents


def state_document(ctx: WebContext, lanes: frozenset[Lane] | None = None) -> dict[str, Any]:
    """GET /api/v1/state: the board by lane, running runs, paused agents and totals, read
    from the files and the journal now (no sweep: a read never moves a file).

    `lanes`: list only these lanes' tasks (the others are counted from their folder
    listings, headers unread): a board of 10,000 tasks, most of them done, in a fraction
    of the time."""
    from shopfloor import config_check
    from shopfloor.cli.board_cmds import journal_extras

    extras = journal_extras(ctx.root)
    rows = extras.pop("runs")
    if lanes is None:
        report = actions.status_report(ctx.board, sweep=False, runs=rows)
    else:
        report = partial_report(ctx.board, lanes)
    listed: dict[str, list[dict[str, Any]]] = {
        lane.value: [] for lane in TASK_LANES if lanes is None or lane in lanes
    }
    for item in report.pop("tasks"):
        listed.setdefault(item["lane"], []).append(item)
    running = [running_json(ctx.root, row) for row in rows]
    spend = extras["spend"]
    return {
        "schema": actions.JSON_SCHEMA_VERSION,
        "generated_at": _now(),
        "root": report["root"],
        "counts": report["counts"],
        "lanes": listed,
        "running": running,
        "paused": extras["paused"],
        "totals": {
            "tasks": sum(n for lane, n in report["counts"].items() if lane != "invalid"),
            "running": len(running),
            "paused": len(extras["paused"]),
            "cost_usd": spend["total_usd"],
            "today_usd": spend["today_usd"],
            "running_tokens_in": sum(r["tokens_in"] or 0 for r in running),
            "running_tokens_out": sum(r["tokens_out"] or 0 for r in running),
        },
        "spend": spend,
        "outbox": extras["outbox"],
        "invalid": report["invalid"],
        "unreadable": report["unreadable"],
        "conflicts": report["conflicts"],
        "unknown_folders": report["unknown_folders"],
        "journal_error": extras["journal_error"],
        # [scale] engine = "temporal": its state (scale/state.py); null in the embedded mode
        "engine": extras["engine"],
        "config_error": config_check.config_error(ctx.root, ctx.root / defaults.CONFIG_FILE),
    }


def partial_report(board: Board, lanes: frozenset[Lane]) -> dict[str, Any]:
    """`status_report`'s document with only `lanes` read; the other lanes counted by name.
    Conflicts (one id twice) are found among the lanes read."""
    scan = board.scan(lanes)
    counts = {lane.value: 0 for lane in Lane}
    for entry in scan.entries:
        counts[entry.lane.value] += 1
    for lane in TASK_LANES:
        if lane not in lanes:
            counts[lane.value] = _count_task_files(board, lane)
    invalid = board.quarantined()
    counts[Lane.INVALID.value] = len(invalid)
    return {
        "root": str(board.root),
        "counts": counts,
        "tasks": [actions.entry_json(board, e) for e in scan.entries],
        "invalid": [{"path": board.relative(q.path), "reason": q.reason} for q in invalid],
        "unreadable": [{"path": board.relative(p.path), "reason": p.reason} for p in scan.problems],
        "conflicts": [
            {"id": task_id, "paths": [board.relative(e.path) for e in entries]}
            for task_id, entries in sorted(scan.conflicts.items())
        ],
        "unknown_folders": scan.unknown,
    }


def _count_task_files(board: Board, lane: Lane) -> int:
    try:
        with os.scandir(board.lane_dir(lane)) as it:
            return sum(1 for e in it if e.name.endswith(".md") and not is_temp_name(e.name))
    except OSError:
        return 0


def lanes_param(request: Request) -> frozenset[Lane] | None:
    """`?lanes=inbox,backlog` (None: every lane); 400 for a lane that does not exist."""
    raw = request.query_params.get("lanes")
    if raw is None:
        return None
    wanted = set()
    for name in filter(None, (part.strip() for part in raw.split(","))):
        try:
            lane = Lane(name)
        except ValueError:
            lane = Lane.INVALID
        if lane is Lane.INVALID:
            known = ", ".join(lane.value for lane in TASK_LANES)
            raise ApiError(400, "invalid_request", f"lanes: no lane {name!r}; one of {known}")
        wanted.add(lane)
    return frozenset(wanted)


def running_json(root: Path, row: dict[str, Any]) -> dict[str, Any]:
    """A running run as the board shows it: age, tokens and cost so far, last output line."""
    from shopfloor.cli.board_live import last_output_line

    return {
        **actions.run_json(row),
        "tokens_in": row.get("tokens_in"),
        "tokens_out": row.get("tokens_out"),
        "cost_usd": row.get("cost_usd"),
        "last_line": last_output_line(runlogs.runs_dir(root) / row["id"]),
    }


def task_json(ctx: WebContext, task_id: str) -> dict[str, Any]:
    """GET /api/v1/<id>: the task's fields, sections, text, runs (tokens, cost), checks
    output, and its transitions."""
    from shopfloor.cli import board_cmds

    report = actions.show_report(ctx.board, task_id)
    text = report["text"]
    report["sections"] = {
        name: body for name in SECTIONS if (body := task.get_section(text, name)) is not None
    }
    report.update(board_cmds._task_runs(ctx.root, report["id"]))
    report["history"] = board_cmds._task_history(ctx.root, report["id"])
    report["run_logs"] = [
        {
            "run_id": run.run_id,
            "role": run.role,
            "agent": run.agent,
            "started": run.started,
            "finished": events.run_finished(run),
            "log_url": f"{PREFIX}/{report['id']}/runs/{run.run_id}/log",
        }
        for run in runlogs.runs_for(ctx.root, report["id"])
    ]
    report["checks"] = checks_json(ctx.root, report["id"])
    return report


def checks_json(root: Path, task_id: str) -> list[dict[str, Any]]:
    """Each checks run's captured output (checks.json: command, exit code, output tail)."""
    found = []
    for run in runlogs.runs_for(root, task_id):
        try:
            items = json.loads((run.run_dir / "checks.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(items, list):
            passed = all(isinstance(i, dict) and i.get("exit_code") == 0 for i in items)
            found.append({"run_id": run.run_id, "passed": passed, "checks": items})
    return found


def rework_notes(body: ReworkBody) -> str:
    """The notes and the inline comments as one text for `## Rework notes`."""
    parts = [body.notes.strip()] if body.notes.strip() else []
    for comment in body.comments:
        where = comment.path or "the task"
        if comment.path and comment.line is not None:
            where = f"{comment.path}:{comment.line}"
        parts.append(f"- `{where}`: {comment.text.strip()}")
    return "\n".join(parts)


# ---------------------------------------------------------------------------- endpoints


def api_routes(ctx: WebContext) -> list[BaseRoute]:
    """The routes under /api/v1 (the literal names before `{task_id}`)."""

    def bound(endpoint: Callable[[WebContext, Request], Awaitable[Response]]) -> Endpoint:
        return functools.partial(endpoint, ctx)

    return [
        _route("/state", "GET", bound(_state)),
        _route("/refresh", "POST", bound(_refresh)),
        _route("/tasks", "POST", bound(_new_task)),
        _route("/hotfix", "POST", bound(_new_hotfix)),
        _route("/events", "GET", bound(_event_stream)),
        _route("/{task_id}", "GET", bound(_show)),
        _route("/{task_id}/runs/{run_id}/log", "GET", bound(_run_log)),
        _route("/{task_id}/{verb}", "POST", bound(_act)),
        Route(PREFIX + "/{rest:path}", _only("GET", _unknown), methods=_ALL_METHODS),
    ]


async def _state(ctx: WebContext, request: Request) -> Response:
    return _json(await _call(state_document, ctx, lanes_param(request)))


async def _refresh(ctx: WebContext, request: Request) -> Response:
    await _body(request, EmptyBody)
    woken = False
    if ctx.wake is not None:
        ctx.wake()
        woken = True
    running = await run_in_threadpool(lock.daemon_running, ctx.root)
    # A daemon in another process watches the same files; it needs no nudge.
    return _json({"queued": True, "daemon_running": running, "woken": woken}, 202)


async def _new_task(ctx: WebContext, request: Request) -> Response:
    body = await _body(request, NewTaskBody)
    spec = actions.NewTask(
        body.title, body.body, body.backlog, body.priority, body.type, source=WHO
    )
    entry = await _call(actions.create_task, ctx.board, spec, refused=400)
    return _created(ctx, entry)


async def _new_hotfix(ctx: WebContext, request: Request) -> Response:
    body = await _body(request, HotfixBody)
    entry = await _call(_file_hotfix, ctx.board, body, refused=400)
    return _created(ctx, entry)


def _created(ctx: WebContext, entry: Any) -> Response:
    location = f"{PREFIX}/{entry.id}"
    return _json(actions.task_document(ctx.board, entry), 201, {"Location": location})


def _event_stream_response(body: Any) -> Response:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(ctx: WebContext, request: Request) -> Response:
    return _event_stream_response(ctx.hub.stream({"generated_at": _now()}))


async def _show(ctx: WebContext, request: Request) -> Response:
    return _json(await _call(task_json, ctx, request.path_params["task_id"]))


async def _act(ctx: WebContext, request: Request) -> Response:
    verb = request.path_params["verb"]
    if verb not in VERBS:
        raise ApiError(404, "not_found", f"no action {verb!r}; one of {', '.join(VERBS)}")
    return await VERBS[verb](ctx, request, request.path_params["task_id"])


async def _run_log(ctx: WebContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    entry = await _call(ctx.board.find, request.path_params["task_id"])
    runs = await run_in_threadpool(runlogs.runs_for, ctx.root, entry.id)
    run = next((r for r in runs if r.run_id == run_id), None)
    if run is None:
        raise ApiError(404, "run_not_found", f"{entry.id} has no run {run_id!r}")
    return _event_stream_response(events.follow_run_log(run, lambda: ctx.hub.closed))


async def _unknown(request: Request) -> Response:
    raise ApiError(404, "not_found", f"no endpoint {request.url.path}")


def _file_hotfix(board: Board, body: HotfixBody) -> Any:
    """create_hotfix with a pasted log: written to a private temporary file, whose tail
    create_hotfix keeps as evidence, then removed."""
    if body.log is None or not body.log.strip():
        return actions.create_hotfix(board, body.title, body.body, source=WHO)
    with tempfile.TemporaryDirectory(prefix="shopfloor-web-") as scratch:
        path = Path(scratch) / "pasted.log"
        path.write_text(body.log, "utf-8")
        return actions.create_hotfix(board, body.title, body.body, log=path, source=WHO)


def _decision(ctx: WebContext, entry: Any) -> Response:
    return _json(
        {"schema": actions.JSON_SCHEMA_VERSION, "task": actions.entry_json(ctx.board, entry)}
    )


async def _approve(ctx: WebContext, request: Request, task_id: str) -> Response:
    await _body(request, EmptyBody)
    return _decision(ctx, await _call(actions.approve, ctx.board, task_id, who=WHO))


async def _retry(ctx: WebContext, request: Request, task_id: str) -> Response:
    await _body(request, EmptyBody)
    return _decision(ctx, await _call(actions.retry, ctx.board, task_id, who=WHO))


async def _cancel(ctx: WebContext, request: Request, task_id: str) -> Response:
    await _body(request, EmptyBody)
    return _decision(ctx, await _call(actions.cancel, ctx.board, task_id, who=WHO))


async def _rework(ctx: WebContext, request: Request, task_id: str) -> Response:
    body = await _body(request, ReworkBody)
    rework = getattr(actions, "rework", None)  # helper rework-pr adds it (issue 12)
    if rework is None:
        raise ApiError(501, "not_implemented", "rework is not available in this version")
    notes = rework_notes(body)
    if not notes:
        raise ApiError(400, "invalid_request", "rework needs notes or at least one comment")
    return _decision(ctx, await _call(rework, ctx.board, task_id, notes, who=WHO))


async def _close(ctx: WebContext, request: Request, task_id: str) -> Response:
    body = await _body(request, CloseBody)
    closed, follow = await _call(
        actions.close_hotfix, ctx.board, task_id, body.followup, who=WHO, force=body.force
    )
    document = {
        "schema": actions.JSON_SCHEMA_VERSION,
        "task": actions.entry_json(ctx.board, closed),
        "followup": actions.entry_json(ctx.board, follow) if follow is not None else None,
    }
    return _json(document)


VERBS: dict[str, Callable[[WebContext, Request, str], Awaitable[Response]]] = {
    "approve": _approve,
    "retry": _retry,
    "cancel": _cancel,
    "rework": _rework,
    "close": _close,
}
