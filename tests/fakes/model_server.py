"""A scripted model server on 127.0.0.1 that real agent CLIs talk to in tests.

It speaks the four wire shapes the CLIs use — Anthropic Messages, OpenAI Responses, Chat
Completions (all SSE) and Gemini's generateContent — and plays a *script*: a list of steps
(write a file, run a shell command) followed by a final message. It is stateless: the step
to play is the number of tool results already in the request, so retries and concurrent runs
need no bookkeeping. The tool call for a step is built from the tools the request offers
(`Write`, `write_file`, `write`, `Bash`, `exec_command`, `shell`, ...), so a CLI renaming a
tool between releases does not break the tests. Requests offering no tools (titles, routers,
summaries) get a short side answer — except aider's, which has no tools at all and gets the
script as text in its SEARCH/REPLACE edit format (`aider_reply`).

`{workdir}`, `{task_file}` and `{result_file}` in a step are filled from the Shopfloor
bootloader inside the request, so one script serves every run of a pipeline.

Failure modes for the error tests: `fail="401" | "429" | "500" | "hang"` (and, for the
OpenAI wire shapes only, `"429-quota"`: a spent quota that resets later).
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------- the script


@dataclass(frozen=True)
class Write:
    """Write `content` to `path` (whole file)."""

    path: str
    content: str


@dataclass(frozen=True)
class Append:
    """Append `text` to the file at `path` (read first: some CLIs refuse blind overwrites)."""

    path: str
    text: str


@dataclass(frozen=True)
class Shell:
    command: str


@dataclass(frozen=True)
class Call:
    """Call tool `name` with `args` verbatim, offered or not (a model ignoring its tool list).

    String values in `args` get `{workdir}`/`{task_file}`/`{result_file}` filled in."""

    name: str
    args: tuple[tuple[str, str], ...] = ()


Step = Write | Append | Shell | Call


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...] = ()
    final: str = "done"
    fail: str | None = None  # "401" | "429" | "500" | "hang"
    #: The 429's retry-after header (seconds or an HTTP date); the OpenAI and Gemini bodies
    #: name the same wait in their own words, as those APIs do.
    retry_after: str = "30"
    #: A `retry-after-ms` header on every scripted failure (OpenAI's hint, any status). A CLI
    #: that honours it on a 5xx (OpenCode; not qwen, whose 500s make 7 calls in ~75 s either
    #: way) then retries at once: a test sees all of its retries without waiting a minute.
    retry_after_ms: str | None = None


def result_block(outcome: str = "ok", summary: str = "done", **extra: Any) -> str:
    """The fenced JSON a Shopfloor agent ends its final message with."""
    body = json.dumps({"outcome": outcome, "summary": summary, **extra})
    return f"{summary}\n\n```json\n{body}\n```\n"


ScriptFor = Callable[[str], Script]

_PLACES = {
    "task_file": re.compile(r"Task file \([^)]*\): ([^\s\\\"`]+)"),
    "workdir": re.compile(
        r"(?:Repository \([^)]*\)|Your working directory, [^:]*|The change, checked out for "
        r"you to read|The live working tree): ([^\s\\\"`]+)"
    ),
    "result_file": re.compile(r"([^\s`'\"]+/result\.json)"),
}


def role_of(text: str) -> str:
    """Which Shopfloor role a request comes from (by its bootloader's first line)."""
    for role, marker in (
        ("pm", "You are the **PM**"),
        ("coder", "You are the **Coder**"),
        ("qa", "You are **QA**"),
        ("hotfix", "You are the **Hotfix**"),
    ):
        if marker in text:
            return role
    return "unknown"


def _fill(template: str, text: str) -> str:
    def place(match: re.Match[str]) -> str:
        found = _PLACES[match.group(1)].search(text)
        return found.group(1) if found else match.group(0)

    return re.sub(r"\{(task_file|workdir|result_file)\}", place, template)


# ---------------------------------------------------------------------------- tool calls

_WRITE_TOOLS = ("Write", "write_file", "write", "create_file")
_READ_TOOLS = ("Read", "read_file", "read")
_SHELL_TOOLS = ("Bash", "run_shell_command", "bash", "exec_command", "shell", "shell_command")


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _key(props: dict[str, Any], *names: str) -> str:
    for name in names:
        if name in props:
            return name
    return names[0]


def _pick(tools: dict[str, dict[str, Any]], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in tools), None)


def _shell_call(tools: dict[str, dict[str, Any]], command: str) -> tuple[str, dict[str, Any]]:
    name = _pick(tools, _SHELL_TOOLS)
    if name is None:
        raise LookupError(f"no shell tool among {sorted(tools)}")
    props = _props(tools[name])
    key = _key(props, "command", "cmd")
    if props.get(key, {}).get("type") == "array":
        return name, {key: ["bash", "-lc", command]}
    return name, {key: command}


def expand(step: Step, tools: dict[str, dict[str, Any]]) -> list[Step | tuple[str, str]]:
    """One script step as the tool calls it takes with these tools (Append = read + write)."""
    if isinstance(step, Append) and _pick(tools, _WRITE_TOOLS) and _pick(tools, _READ_TOOLS):
        return [("read", step.path), step]
    return [step]


def tool_call(
    item: Step | tuple[str, str], tools: dict[str, dict[str, Any]], text: str
) -> tuple[str, dict[str, Any]]:
    """The (tool name, arguments) that carry out one expanded step."""
    if isinstance(item, tuple):  # a read before an append
        name = _pick(tools, _READ_TOOLS)
        assert name is not None
        props = _props(tools[name])
        path = _fill(item[1], text)  # the read before an append names the same filled path
        return name, {_key(props, "file_path", "filePath", "path", "absolute_path"): path}
    if isinstance(item, Shell):
        return _shell_call(tools, _fill(item.command, text))
    if isinstance(item, Call):
        return item.name, {key: _fill(value, text) for key, value in item.args}
    path = _fill(item.path, text)
    if isinstance(item, Append):
        try:
            content = Path(path).read_text() + item.text
        except FileNotFoundError:
            content = item.text
    else:
        content = _fill(item.content, text)
    name = _pick(tools, _WRITE_TOOLS)
    if name is None:
        quoted = shlex.quote(content)
        return _shell_call(tools, f"printf '%s' {quoted} > {shlex.quote(path)}")
    props = _props(tools[name])
    path_key = _key(props, "file_path", "filePath", "path", "absolute_path")
    return name, {path_key: path, _key(props, "content", "text"): content}


# ---------------------------------------------------------------------------- one reply


@dataclass
class Reply:
    """What the model says next: a tool call, or text."""

    tool: tuple[str, dict[str, Any]] | None = None
    text: str = ""
    usage_in: int = 1000
    usage_out: int = 50


def decide(script: Script, tools: dict[str, dict[str, Any]], n_results: int, text: str) -> Reply:
    if not tools:
        return Reply(text="Shopfloor task", usage_in=10, usage_out=3)
    plan: list[Step | tuple[str, str]] = []
    for step in script.steps:
        plan.extend(expand(step, tools))
    if n_results < len(plan):
        return Reply(tool=tool_call(plan[n_results], tools, text))
    return Reply(text=_fill(script.final, text))


# ---------------------------------------------------------------------------- aider's edit format

#: Aider offers no tools: it asks for edits as text, in the format its system prompt describes.
#: The fake plays a script in the SEARCH/REPLACE ("diff") format, the one that carries shell
#: commands (```bash blocks); other formats get the side answer.
_AIDER_SYSTEM = ("Act as an expert software developer", "*SEARCH/REPLACE block*")
_AIDER_ADDED_FILES = "I added these files to the chat:"


def is_aider(body: dict[str, Any]) -> bool:
    """Whether a tool-less Chat Completions request is aider asking for SEARCH/REPLACE edits."""
    system = [m.get("content") for m in body.get("messages", []) if m.get("role") == "system"]
    return any(isinstance(s, str) and all(p in s for p in _AIDER_SYSTEM) for s in system)


def _aider_turn(messages: list[dict[str, Any]]) -> tuple[bool, bool]:
    """(is this the first answer to the task, did aider just add files and ask again).

    Aider applies nothing from a reply that names repo files outside the chat: it adds them
    and asks again, so that answer must carry the edits and commands once more."""
    texts = [(m.get("role"), str(m.get("content") or "")) for m in messages]
    task = next((i for i, (r, t) in enumerate(texts) if r == "user" and role_of(t) != "unknown"), 0)
    answered = any(r == "assistant" for r, _ in texts[task + 1 :])
    last = texts[-1] if texts else ("", "")
    return not answered, last[0] == "user" and last[1].startswith(_AIDER_ADDED_FILES)


def _aider_edit(step: Write | Append, text: str) -> str:
    """One SEARCH/REPLACE block that brings the file to the step's content ("" when it is)."""
    path = Path(_fill(step.path, text))
    try:
        current: str | None = path.read_text()
    except FileNotFoundError:
        current = None
    if isinstance(step, Append):  # an empty SEARCH appends to an existing file
        if current is not None and current.endswith(step.text):
            return ""
        search, replace = "", step.text
    else:
        replace = _fill(step.content, text)
        if current == replace:
            return ""
        search = current or ""
    workdir = Path(_fill("{workdir}", text))
    shown = path.relative_to(workdir) if path.is_relative_to(workdir) else path
    return (
        f"{shown}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}"
        f"{'' if replace.endswith(chr(10)) else chr(10)}>>>>>>> REPLACE\n```\n\n"
    )


def aider_reply(script: Script, body: dict[str, Any], text: str) -> str:
    """The script as one aider answer: the edits still to make, the shell commands (on the
    first answer or a re-ask after aider added files), then the final message."""
    first, re_asked = _aider_turn(body.get("messages") or [])
    parts: list[str] = []
    for step in script.steps:
        if isinstance(step, Write | Append):
            parts.append(_aider_edit(step, text))
        elif isinstance(step, Shell) and (first or re_asked):
            parts.append(f"```bash\n{_fill(step.command, text)}\n```\n\n")
    return "".join(parts) + _fill(script.final, text)


# ---------------------------------------------------------------------------- wire shapes


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def anthropic_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t.get("input_schema", {}) for t in body.get("tools") or [] if "name" in t}


def anthropic_results(body: dict[str, Any]) -> int:
    return sum(
        1
        for m in body.get("messages", [])
        if isinstance(m.get("content"), list)
        for block in m["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    )


def anthropic_stream(reply: Reply, model: str) -> Iterator[bytes]:
    usage = {"input_tokens": reply.usage_in, "output_tokens": 1}
    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    if reply.tool:
        block = {
            "type": "tool_use",
            "id": f"toolu_{time.monotonic_ns()}",
            "name": reply.tool[0],
            "input": {},
        }
        delta = {"type": "input_json_delta", "partial_json": json.dumps(reply.tool[1])}
    else:
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": reply.text}
    yield _sse(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    stop = "tool_use" if reply.tool else "end_turn"
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": reply.usage_out},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def anthropic_json(reply: Reply, model: str) -> dict[str, Any]:
    if reply.tool:
        content = [
            {"type": "tool_use", "id": "toolu_x", "name": reply.tool[0], "input": reply.tool[1]}
        ]
    else:
        content = [{"type": "text", "text": reply.text}]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage_in, "output_tokens": reply.usage_out},
    }


def responses_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        if tool.get("type") == "function" and "name" in tool:
            tools[tool["name"]] = tool.get("parameters") or {}
    return tools


def responses_results(body: dict[str, Any]) -> int:
    items = body.get("input")
    if not isinstance(items, list):
        return 0
    kinds = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
    return sum(1 for item in items if isinstance(item, dict) and item.get("type") in kinds)


def responses_stream(reply: Reply, model: str) -> Iterator[bytes]:
    rid = f"resp_{time.monotonic_ns()}"
    yield _sse(
        "response.created", {"type": "response.created", "response": {"id": rid, "model": model}}
    )
    if reply.tool:
        item: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{rid}",
            "call_id": f"call_{rid}",
            "name": reply.tool[0],
            "arguments": json.dumps(reply.tool[1]),
            "status": "completed",
        }
    else:
        item = {
            "type": "message",
            "id": f"msg_{rid}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
        }
    yield _sse(
        "response.output_item.done",
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    )
    usage = {
        "input_tokens": reply.usage_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.usage_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.usage_in + reply.usage_out,
    }
    yield _sse(
        "response.completed",
        {
            "type": "response.completed",
            "response": {
                "id": rid,
                "model": model,
                "usage": usage,
                "output": [item],
                "status": "completed",
            },
        },
    )


def chat_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and "name" in fn:
            tools[fn["name"]] = fn.get("parameters") or {}
    return tools


def chat_results(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "tool")


def chat_stream(reply: Reply, model: str) -> Iterator[bytes]:
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )

    yield chunk({"role": "assistant", "content": ""})
    if reply.tool:
        call = {
            "index": 0,
            "id": f"call_{time.monotonic_ns()}",
            "type": "function",
            "function": {"name": reply.tool[0], "arguments": json.dumps(reply.tool[1])},
        }
        yield chunk({"tool_calls": [call]})
        yield chunk({}, "tool_calls")
    else:
        yield chunk({"content": reply.text})
        yield chunk({}, "stop")
    usage = {
        "prompt_tokens": reply.usage_in,
        "completion_tokens": reply.usage_out,
        "total_tokens": reply.usage_in + reply.usage_out,
    }
    yield _sse(None, {**base, "choices": [], "usage": usage})
    yield _sse(None, "[DONE]")


def chat_json(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool:
        message["tool_calls"] = [
            {
                "id": "call_x",
                "type": "function",
                "function": {"name": reply.tool[0], "arguments": json.dumps(reply.tool[1])},
            }
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.usage_in,
            "completion_tokens": reply.usage_out,
            "total_tokens": reply.usage_in + reply.usage_out,
        },
    }


def gemini_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for group in body.get("tools") or []:
        for fn in group.get("functionDeclarations") or []:
            schema = fn.get("parametersJsonSchema") or fn.get("parameters") or {}
            tools[fn["name"]] = _lower_types(schema)
    return tools


def _lower_types(schema: Any) -> Any:
    """Gemini schemas spell types in capitals (OBJECT, ARRAY); normalise for `tool_call`."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def gemini_results(body: dict[str, Any]) -> int:
    return sum(
        1
        for content in body.get("contents", [])
        for part in content.get("parts", [])
        if isinstance(part, dict) and "functionResponse" in part
    )


def gemini_json(reply: Reply) -> dict[str, Any]:
    if reply.tool:
        part: dict[str, Any] = {"functionCall": {"name": reply.tool[0], "args": reply.tool[1]}}
    else:
        part = {"text": reply.text}
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": reply.usage_in,
            "candidatesTokenCount": reply.usage_out,
            "totalTokenCount": reply.usage_in + reply.usage_out,
        },
        "modelVersion": "fake",
    }


# ---------------------------------------------------------------------------- errors

_ERRORS: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {
    "anthropic": {
        "401": (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
        ),
        "429": (
            429,
            {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "Number of requests has exceeded your rate limit",
                },
            },
        ),
        "500": (
            500,
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
        ),
    },
    "openai": {
        "401": (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided: fake.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        ),
        "429": (
            429,
            {
                "error": {
                    "message": "Rate limit reached. Please try again in {wait}s.",
                    "type": "rate_limit_exceeded",
                    "code": "rate_limit_exceeded",
                }
            },
        ),
        "500": (
            500,
            {
                "error": {
                    "message": "The server had an error processing your request.",
                    "type": "server_error",
                    "code": None,
                }
            },
        ),
        # A spent quota rather than a burst limit: CLIs that retry 429s (qwen: 7 attempts
        # honouring Retry-After) give up at once on this wording.
        "429-quota": (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota, it will reset in 2 hours.",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
        ),
    },
    "gemini": {
        "401": (
            401,
            {
                "error": {
                    "code": 401,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "UNAUTHENTICATED",
                }
            },
        ),
        "429": (
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted (e.g. check quota).",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "{wait}s",
                        }
                    ],
                }
            },
        ),
        "500": (
            500,
            {
                "error": {
                    "code": 500,
                    "message": "An internal error has occurred.",
                    "status": "INTERNAL",
                }
            },
        ),
    },
}


def error_reply(
    family: str, fail: str, retry_after: str, retry_after_ms: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    """(status, body, headers) of a scripted failure; a 429 carries `retry-after`, any failure
    `retry-after-ms` if the script gives one."""
    status, error = _ERRORS[family][fail]
    hint = {} if retry_after_ms is None else {"retry-after-ms": retry_after_ms}
    if fail != "429":
        return status, error, hint
    try:
        wait = int(float(retry_after))
    except ValueError:  # an HTTP date
        wait = max(0, round(parsedate_to_datetime(retry_after).timestamp() - time.time()))
    body = json.loads(json.dumps(error).replace("{wait}", str(wait)))
    return status, body, {"retry-after": retry_after, **hint}


# ---------------------------------------------------------------------------- the server


@dataclass
class Seen:
    """One request the server answered (for assertions)."""

    path: str
    body: dict[str, Any]
    tools: list[str]
    role: str
    scripted: bool = False  # a tool-less request answered from the script (aider)


@dataclass
class ModelServer:
    """`with ModelServer(script) as server:` — listens on 127.0.0.1:`server.port`."""

    script: Script | ScriptFor = field(default_factory=Script)
    requests: list[Seen] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script_for(self, text: str) -> Script:
        return self.script(text) if callable(self.script) else self.script

    def tokens(self) -> tuple[int, int]:
        """Input and output tokens the server reported over all tool-bearing requests."""
        replies = [r for r in self.requests if r.tools or r.scripted]
        return 1000 * len(replies), 50 * len(replies)

    def __enter__(self) -> ModelServer:
        server = self

        class Handler(_Handler):
            model_server = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


def _api_of(path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], int] | None:
    """Which wire shape a request speaks: (error family, offered tools, tool results so far)."""
    if "/messages" in path:
        return "anthropic", anthropic_tools(body), anthropic_results(body)
    if path.endswith("/responses"):
        return "openai", responses_tools(body), responses_results(body)
    if path.endswith("/chat/completions"):
        return "openai", chat_tools(body), chat_results(body)
    if "enerateContent" in path:  # :generateContent and :streamGenerateContent
        return "gemini", gemini_tools(body), gemini_results(body)
    return None


class _Handler(BaseHTTPRequestHandler):
    model_server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "fake-model", "object": "model", "owned_by": "shopfloor-tests"}
                    ],
                    "models": [{"name": "models/fake-model"}],
                },
            )
        else:
            self._json(200, {})

    def do_POST(self) -> None:
        raw, body = self._read_body()
        path = self.path.split("?")[0]
        if path.endswith("/count_tokens") or path.endswith(":countTokens"):
            self._json(200, {"input_tokens": 10, "totalTokens": 10})
            return
        api = _api_of(path, body)
        if api is None:
            self._json(404, {"error": {"message": f"no such endpoint {path}"}})
            return
        family, tools, results = api
        text = raw.decode("utf-8", "replace")
        script = self.model_server.script_for(text)
        aider = not tools and family == "openai" and is_aider(body)
        self.model_server.requests.append(Seen(path, body, sorted(tools), role_of(text), aider))
        if script.fail == "hang":
            self.model_server._stop.wait(600)
            return
        if script.fail:
            self._json(*error_reply(family, script.fail, script.retry_after, script.retry_after_ms))
            return
        if aider:
            self._answer(family, path, body, Reply(text=aider_reply(script, body, text)))
            return
        self._answer(family, path, body, decide(script, tools, results, text))

    def _read_body(self) -> tuple[bytes, dict[str, Any]]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        return raw, body if isinstance(body, dict) else {}

    def _answer(self, family: str, path: str, body: dict[str, Any], reply: Reply) -> None:
        model = str(body.get("model") or "fake-model")
        if family == "gemini":
            if "streamGenerateContent" in path:
                self._stream([_sse(None, gemini_json(reply))])
            else:
                self._json(200, gemini_json(reply))
        elif family == "anthropic":
            if body.get("stream"):
                self._stream(anthropic_stream(reply, model))
            else:
                self._json(200, anthropic_json(reply, model))
        elif path.endswith("/responses"):
            self._stream(responses_stream(reply, model))
        elif body.get("stream"):
            self._stream(chat_stream(reply, model))
        else:
            self._json(200, chat_json(reply, model))

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, events: Iterator[bytes] | list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self.wfile.write(event)
        self.wfile.flush()
        self.close_connection = True
