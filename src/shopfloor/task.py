"""The task file: Markdown with YAML front matter, read fast and edited without disturbing a byte.

Two readers share one set of rules (`header_from_fields`):
- `read_header_fast` handles the common case of flat `key: value` lines with a regex, so listing
  10,000 files stays fast; anything unusual returns None and
- `parse_front_matter` (ruamel.yaml, round-trip mode) is the authority.
Writers (`set_fields`, `append_tracker`, `set_section`) splice only the bytes they own and
re-parse the result, so a human's comments, field order and body survive byte for byte.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopfloor import defaults
from shopfloor.errors import TaskFormatError

# ---------------------------------------------------------------------------- header


@dataclass(slots=True)
class Header:
    """The front-matter fields Shopfloor understands; unknown fields are kept in the file only."""

    id: str
    title: str
    type: str = "feature"
    priority: str = defaults.DEFAULT_PRIORITY
    status: str = "queued"
    attempts: int = 0
    max_attempts: int = defaults.DEFAULT_MAX_ATTEMPTS
    depends_on: list[str] = field(default_factory=list)
    agent: str | None = None
    created: str | None = None
    updated: str | None = None

    @property
    def is_hotfix(self) -> bool:
        return self.type == "hotfix" or self.id.startswith(defaults.HOTFIX_PREFIX)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "priority": self.priority,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "depends_on": list(self.depends_on),
            "agent": self.agent,
            "created": self.created,
            "updated": self.updated,
        }


_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _text(value: Any) -> str | None:
    """YAML scalars as the text a human meant (timestamps back in their Z form)."""
    if type(value) is str:  # the common case first: listing calls this 100,000 times
        return value
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        if offset is None or offset == dt.timedelta(0):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int_field(fields: Mapping[str, Any], key: str, default: int) -> int:
    value = fields.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TaskFormatError(f"field '{key}' must be a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise TaskFormatError(f"field '{key}' must be a whole number, got {value!r}") from None
    if number < 0:
        raise TaskFormatError(f"field '{key}' must not be negative, got {number}")
    return number


def _choice(fields: Mapping[str, Any], key: str, allowed: Sequence[str], default: str) -> str:
    value = _text(fields.get(key)) or default
    if value not in allowed:
        raise TaskFormatError(f"field '{key}' must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _depends(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    # A date is accepted as its text, as the fast reader does (YAML reads 2026-11-25 as one).
    if isinstance(value, str | dt.date):
        return [str(_text(value))]
    if isinstance(value, list) and all(isinstance(v, str | int | dt.date) for v in value):
        return [str(_text(v)) for v in value]
    raise TaskFormatError(f"field 'depends_on' must be a list of task ids, got {value!r}")


def header_from_fields(fields: Mapping[str, Any]) -> Header:
    """Validate front-matter fields into a Header; the error text becomes a quarantine reason."""
    task_id = _text(fields.get("id"))
    if not task_id:
        raise TaskFormatError("front matter has no 'id' field")
    if not _ID_RE.fullmatch(task_id):
        raise TaskFormatError(f"id {task_id!r} must be letters, digits, '.', '_' or '-'")
    title = _text(fields.get("title"))
    if not title or not title.strip():
        raise TaskFormatError("front matter has no 'title' field")
    agent = _text(fields.get("agent"))
    return Header(
        id=task_id,
        title=title.strip(),
        type=_choice(fields, "type", defaults.TYPES, "feature"),
        priority=_choice(fields, "priority", defaults.PRIORITIES, defaults.DEFAULT_PRIORITY),
        status=_choice(fields, "status", defaults.STATUSES, "queued"),
        attempts=_int_field(fields, "attempts", 0),
        max_attempts=_int_field(fields, "max_attempts", defaults.DEFAULT_MAX_ATTEMPTS),
        depends_on=_depends(fields.get("depends_on")),
        agent=agent or None,
        created=_text(fields.get("created")),
        updated=_text(fields.get("updated")),
    )


# ---------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the front matter sits in the text: text[fm_start:fm_end] is the YAML."""

    fm_start: int
    fm_end: int
    body_start: int


_OPEN_RE = re.compile(r"---[ \t]*\r?\n")
_CLOSE_RE = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", re.MULTILINE)


def has_front_matter(text: str) -> bool:
    return _OPEN_RE.match(text) is not None


def layout(text: str) -> Layout:
    """Locate the front matter; TaskFormatError if it is missing or never closed."""
    opening = _OPEN_RE.match(text)
    if opening is None:
        raise TaskFormatError("no front matter: the file must start with a '---' line")
    closing = _CLOSE_RE.search(text, opening.end())
    if closing is None:
        raise TaskFormatError("front matter is not closed by a '---' line")
    return Layout(opening.end(), closing.start(), closing.end())


def decode(raw: bytes) -> str:
    """Bytes to text, refusing what is not a human-written Markdown file."""
    if b"\x00" in raw:
        raise TaskFormatError("binary file (contains NUL bytes), not a Markdown task")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFormatError(f"not UTF-8 text (byte {exc.start})") from None
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------------------- fast reader

_LINE_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?:[ \t]+(.*?))?[ \t]*")
_PLAIN_RE = re.compile(r"[A-Za-z0-9_(/.][^#\"'{}\[\]`|>&*!%@]*?")
_FLOW_LIST_RE = re.compile(r"\[\s*([A-Za-z0-9_.-]+(?:\s*,\s*[A-Za-z0-9_.-]+)*)?\s*\]")
# Plain words YAML would read as something other than the same text.
_AMBIGUOUS = re.compile(
    r"(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)"
    r"|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+"
    r"|[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
)
_INT_RE = re.compile(r"[0-9]+")
_CANONICAL_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?")
#: Characters YAML refuses or reads as a line break or separator: tabs, C0/C1 controls,
#: U+2028/9, non-characters. Text with any of them is left to (or escaped for) the parser.
_YAML_SPECIAL_RE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")


_COMMENT_RE = re.compile(r"[ \t]#")


def _strip_comment(value: str) -> str:
    cut = _COMMENT_RE.search(value)
    return value[: cut.start()].rstrip() if cut else value


_NULLS = frozenset({"null", "Null", "NULL", "~"})


def _fast_value(raw: str) -> Any:
    """One flat value, or raise LookupError when only a real YAML parser can be trusted."""
    if raw == "" or raw.startswith("#"):
        raise LookupError  # empty means null; let YAML decide
    if _strip_comment(raw) in _NULLS:
        return None
    if raw[0] in "\"'":
        quote = raw[0]
        end = raw.find(quote, 1)
        rest = raw[end + 1 :].strip() if end > 0 else "x"
        inner = raw[1:end]
        if end < 0 or "\\" in inner or (rest and not rest.startswith("#")):
            raise LookupError
        return inner
    if raw[0] == "[":
        listed = _FLOW_LIST_RE.fullmatch(_strip_comment(raw))
        if listed is None:
            raise LookupError
        items = listed.group(1)
        return [] if not items else [_fast_item(item.strip()) for item in items.split(",")]
    value = _strip_comment(raw)
    if _INT_RE.fullmatch(value):
        return int(value)
    if (
        not _PLAIN_RE.fullmatch(value)
        or ": " in value
        or value.endswith(":")
        or _AMBIGUOUS.fullmatch(value)
    ):
        raise LookupError
    return _check_timestamp(value)


def _fast_item(item: str) -> str:
    """A flow-list item that YAML also reads as this very string (not a number, bool, date)."""
    if _AMBIGUOUS.fullmatch(item) or _looks_like_date(item):
        raise LookupError
    return item


def _looks_like_date(value: str) -> bool:
    return value[:4].isdigit() and value[4:5] == "-"


def _check_timestamp(value: str) -> str:
    """YAML reads dates and timestamps as such: accept only the canonical, valid spellings
    (which `_text` gives back unchanged) and leave every other one to the parser."""
    if not _looks_like_date(value):
        return value
    if not _CANONICAL_TIME_RE.fullmatch(value):
        raise LookupError
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise LookupError from None
    return value


#: Lines read before -> (key, value), or None when the line needs the YAML parser. Most lines
#: repeat across a board (`type: bug`, `attempts: 0`), so listing 10,000 files mostly hits this.
_LINE_CACHE: dict[str, tuple[str, Any] | None] = {}
_LINE_CACHE_MAX = 4096


def _fast_line(line: str) -> tuple[str, Any] | None:
    try:
        return _LINE_CACHE[line]
    except KeyError:
        pass
    parsed: tuple[str, Any] | None = None
    match = _LINE_RE.fullmatch(line)
    if match is not None:
        try:
            parsed = (match.group(1), _fast_value(match.group(2) or ""))
        except LookupError:
            parsed = None
    if len(_LINE_CACHE) >= _LINE_CACHE_MAX:
        _LINE_CACHE.clear()
    _LINE_CACHE[line] = parsed
    return parsed


def read_fields_fast(front_matter: str) -> dict[str, Any] | None:
    """Flat `key: value` front matter without a YAML parser; None when it is not that simple."""
    if _YAML_SPECIAL_RE.search(front_matter):
        return None
    fields: dict[str, Any] = {}
    for line in front_matter.splitlines():
        if not line or line[0] == "#":
            continue
        parsed = _fast_line(line)
        if parsed is None or parsed[0] in fields:
            return None
        key, value = parsed
        fields[key] = list(value) if isinstance(value, list) else value  # never share a list
    return fields


# ---------------------------------------------------------------------------- full reader


_YAML_LOCAL = threading.local()


def _yaml() -> Any:
    """One round-trip parser per thread: building one costs more than a parse."""
    yaml = getattr(_YAML_LOCAL, "yaml", None)
    if yaml is None:
        from ruamel.yaml import YAML  # imported lazily: `status --json` must start fast

        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        _YAML_LOCAL.yaml = yaml
    return yaml


def parse_front_matter(front_matter: str) -> Any:
    """Round-trip parse (a CommentedMap); TaskFormatError naming the line when YAML is broken."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a reused anchor: noise, not an error
            data = _yaml().load(front_matter)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise TaskFormatError(f"broken YAML front matter{where}: {exc.problem}") from None
    except YAMLError as exc:
        raise TaskFormatError(f"broken YAML front matter: {exc}") from None
    except (ValueError, OverflowError) as exc:  # e.g. `created: 2026-13-45`, an invalid date
        raise TaskFormatError(f"broken YAML front matter: {exc}") from None
    if data is None:
        return _yaml().load("{}")
    if not isinstance(data, dict):
        raise TaskFormatError("front matter must be 'key: value' fields")
    return data


def parse(text: str) -> Header:
    """The header of a whole task file: the fast reader for flat front matter (it reads
    exactly what YAML reads, property-tested), ruamel.yaml for anything else."""
    return read_header_fast(text)


def read_header_fast(text: str) -> Header:
    """Header via the fast reader when the front matter is flat, else via ruamel."""
    where = layout(text)
    front = text[where.fm_start : where.fm_end]
    fields = read_fields_fast(front)
    if fields is None:
        fields = parse_front_matter(front)
    return header_from_fields(fields)


# ---------------------------------------------------------------------------- writers


def _needs_quotes(value: str) -> bool:
    return (
        not value
        or _PLAIN_RE.fullmatch(value) is None
        or ": " in value
        or value.endswith((":", " "))
        or _AMBIGUOUS.fullmatch(value) is not None
        or "," in value
        or not value.isprintable()  # tabs, line breaks, controls: quoted and escaped
    )


def _escape_special(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def yaml_scalar(value: Any) -> str:
    """A value as one line of YAML that reads back as exactly that value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    text = str(value)
    # JSON strings are valid YAML double-quoted scalars.
    if not _needs_quotes(text):
        return text
    return _YAML_SPECIAL_RE.sub(_escape_special, json.dumps(text, ensure_ascii=False))


def _split_inline(line_tail: str) -> tuple[str, str]:
    """Split what follows `key:` on one line into (value, trailing whitespace + comment + EOL)."""
    body = line_tail.rstrip("\r\n")
    eol = line_tail[len(body) :]
    start = len(body) - len(body.lstrip(" \t"))
    i = start
    if i < len(body) and body[i] in "\"'":
        quote, i = body[i], i + 1
        while i < len(body):
            if quote == '"' and body[i] == "\\":
                i += 2
                continue
            if body[i] == quote:
                if quote == "'" and body[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                i += 1
                break
            i += 1
    hit = re.compile(r"[ \t]+#").search(body, i)
    end = hit.start() if hit else len(body.rstrip(" \t"))
    return body[start:end], body[end:] + eol


def _fields(front: str, flat: bool) -> Mapping[str, Any]:
    """Front-matter fields: the fast reader when `flat`, else ruamel."""
    fast = read_fields_fast(front) if flat else None
    return fast if fast is not None else parse_front_matter(front)


def _key_lines(front: str) -> list[tuple[int, str]]:
    if read_fields_fast(front) is not None:  # flat: every field line is `key: value` at col 0
        return [
            (i, match.group(1))
            for i, line in enumerate(front.splitlines())
            if line and line[0] != "#" and (match := _LINE_RE.fullmatch(line))
        ]
    data = parse_front_matter(front)
    return sorted((data.lc.key(k)[0], str(k)) for k in data)


def _value_equal(got: Any, want: Any) -> bool:
    if isinstance(want, list | tuple):
        return isinstance(got, list) and [_text(g) for g in got] == [_text(w) for w in want]
    if isinstance(want, int) and not isinstance(want, bool):
        return isinstance(got, int) and got == want
    return _text(got) == _text(want)


def _replace_field(lines: list[str], keyed: list[tuple[int, str]], key: str, value: Any) -> None:
    index = [k for _, k in keyed].index(key)
    first = keyed[index][0]
    last = keyed[index + 1][0] if index + 1 < len(keyed) else len(lines)
    while last - 1 > first and (not lines[last - 1].strip() or lines[last - 1].startswith("#")):
        last -= 1  # blank and column-0 comment lines belong to what follows
    colon = lines[first].index(":", len(key)) + 1
    head, tail = lines[first][:colon], lines[first][colon:]
    gap = tail[: len(tail) - len(tail.lstrip(" \t"))] or " "
    if last - first == 1:
        _, trailer = _split_inline(tail)
    else:
        trailer = lines[last - 1][len(lines[last - 1].rstrip("\r\n")) :] or "\n"
    lines[first:last] = [f"{head}{gap}{yaml_scalar(value)}{trailer}"]


def set_fields(text: str, updates: Mapping[str, Any]) -> str:
    """Set front-matter fields, leaving every other byte of the file as it was."""
    where = layout(text)
    front = text[where.fm_start : where.fm_end]
    lines = front.splitlines(keepends=True)
    eol = "\r\n" if front.endswith("\r\n") or text[: where.fm_start].endswith("\r\n") else "\n"
    for key, value in updates.items():
        keyed = _key_lines("".join(lines))
        if key in {k for _, k in keyed}:
            _replace_field(lines, keyed, key, value)
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += eol
            lines.append(f"{key}: {yaml_scalar(value)}{eol}")
    new_front = "".join(lines)
    _verify_update(front, new_front, updates)
    return text[: where.fm_start] + new_front + text[where.fm_end :]


def _verify_update(old: str, new: str, updates: Mapping[str, Any]) -> None:
    """Re-read the edit: the updated fields read back, and no other field moved."""
    flat = read_fields_fast(old) is not None and read_fields_fast(new) is not None
    before, after = _fields(old, flat), _fields(new, flat)
    for key, value in updates.items():
        if not _value_equal(after.get(key), value):
            raise TaskFormatError(f"could not update field '{key}' safely; edit it by hand")
    untouched = [k for k in before if k not in updates]
    if untouched != [k for k in after if k not in updates] or any(
        before[k] != after[k] for k in untouched
    ):
        raise TaskFormatError("updating the front matter would change other fields; edit by hand")


# ---------------------------------------------------------------------------- sections
# The daemon's sections are found structurally, so no text a human, a chat or an agent sends
# can move them (docs/architecture.md, "The task file"):
# - a line is what ends in "\n" (never U+2028, \x1c or a lone \r, which str.splitlines
#   would also cut at);
# - headings inside fenced code are not headings, and a fence that never closes hides
#   nothing (its opening line is read as text);
# - of several level-2 headings with the same name, the LAST is the section;
# - every text the daemon writes into a section (`render_new`, `set_section`) has its level-1
#   and level-2 headings escaped (`\## x` reads as the text "## x") and its fences closed,
#   and a tracker entry is one line; the Tracker is the last section the daemon adds.

_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})(.*)$")
_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
#: A line that would start a level-1 or level-2 section (CommonMark: up to 3 spaces before).
_SECTION_LINE_RE = re.compile(r"^( {0,3})(#{1,2})(?=[ \t]|$)")


def _closes(fence: str, marker: re.Match[str] | None) -> bool:
    """CommonMark: a fence closes with the same character, at least as long, nothing after."""
    if marker is None:
        return False
    run = marker.group(1)
    return run[0] == fence[0] and len(run) >= len(fence) and not marker.group(2).strip()


def _opens(marker: re.Match[str] | None) -> str | None:
    """The fence a line opens (a backtick fence's info string may not hold a backtick)."""
    if marker is None or (marker.group(1)[0] == "`" and "`" in marker.group(2)):
        return None
    return marker.group(1)


def lines_of(text: str) -> list[str]:
    """Lines with their ends, cut at "\n" only (str.splitlines also cuts at U+2028, \x1c-\x1e,
    \x85 and a lone \r, which would let one line of a request read as two)."""
    parts = text.split("\n")
    lines = [f"{part}\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _fences(body_lines: Sequence[str]) -> list[bool]:
    """For each line, whether it is inside fenced code (its opening and closing lines too).

    A fence that never closes is not a fence: its opening line is text and what follows is
    read as if it were not there, so one stray ``` cannot hide every later section.
    """
    inside = [False] * len(body_lines)
    start = 0
    while start < len(body_lines):
        fence: str | None = None
        opened = 0
        for i in range(start, len(body_lines)):
            marker = _FENCE_RE.match(body_lines[i].rstrip("\r\n"))
            if fence is not None:
                inside[i] = True
                if _closes(fence, marker):
                    fence = None
            elif (run := _opens(marker)) is not None:
                fence, opened, inside[i] = run, i, True
        if fence is None:
            break
        for i in range(opened, len(body_lines)):  # never closed: read on from the next line
            inside[i] = False
        start = opened + 1
    return inside


def _headings(body_lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """(line index, level, title) of Markdown headings outside code fences."""
    found: list[tuple[int, int, str]] = []
    for i, fenced in enumerate(_fences(body_lines)):
        if fenced:
            continue
        heading = _HEADING_RE.match(body_lines[i].rstrip("\r\n"))
        if heading:
            found.append((i, len(heading.group(1)), heading.group(2).strip()))
    return found


def _section_span(body_lines: Sequence[str], name: str) -> tuple[int, int] | None:
    """Lines [start, end) of a level-2 section's content (after its heading), or None.

    The last `## name` counts: the daemon's own sections come after everything a person
    wrote above them, so an earlier heading of the same name (a pasted log, an old copy)
    can never be the one the daemon reads or writes.
    """
    heads = _headings(body_lines)
    for n in range(len(heads) - 1, -1, -1):
        i, level, title = heads[n]
        if level == 2 and title.lower() == name.lower():
            end = next((j for j, lv, _ in heads[n + 1 :] if lv <= 2), len(body_lines))
            return i + 1, end
    return None


def section_text(content: str) -> str:
    """Text a human, a chat or an agent sent, made safe to put under a daemon's heading.

    Line ends become "\n"; a line that would open a level-1 or level-2 section outside fenced
    code gets a backslash before its `#` (Markdown shows it as the text typed); a fence left
    open is closed at the end. Headings of level 3 and below are kept: they cannot end a
    section. The result, put under any `## heading`, never starts or moves a section.
    """
    lines = content.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        marker = _FENCE_RE.match(line)
        if fence is not None:
            fence = None if _closes(fence, marker) else fence
        elif (run := _opens(marker)) is not None:
            fence = run
        else:
            lines[i] = _SECTION_LINE_RE.sub(r"\1\\\2", line, count=1)
    if fence is not None:
        lines.append(fence)
    return "\n".join(lines)


def one_line(text: str) -> str:
    """A tracker entry on one line: every line break (\r, \n) becomes a space."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def get_section(text: str, name: str) -> str | None:
    """The text under `## name`, stripped; None when the section is absent."""
    where = layout(text)
    lines = lines_of(text[where.body_start :])
    span = _section_span(lines, name)
    return None if span is None else "".join(lines[span[0] : span[1]]).strip()


def _eol_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def append_to_section(text: str, name: str, line: str) -> str:
    """Append one line at the end of `## name`, creating the section at the end if needed."""
    where = layout(text)
    body = text[where.body_start :]
    eol = _eol_of(text)
    lines = lines_of(body)
    line = one_line(line)
    span = _section_span(lines, name)
    if span is None:
        sep = "" if not body or body.endswith("\n") else eol
        blank = "" if not body.strip() or body.endswith(("\n\n", "\r\n\r\n")) else eol
        return f"{text}{sep}{blank}## {name}{eol}{line}{eol}"
    start, end = span
    last = end
    while last > start and not lines[last - 1].strip():
        last -= 1
    if last > 0 and not lines[last - 1].endswith("\n"):
        lines[last - 1] += eol
    lines.insert(last, f"{line}{eol}")
    return text[: where.body_start] + "".join(lines)


def append_tracker(text: str, entry: str) -> str:
    """Add `- entry` to the `## Tracker` section (the orchestrator's log in the file)."""
    return append_to_section(text, "Tracker", f"- {entry}")


def set_section(text: str, name: str, content: str) -> str:
    """Replace (or add before `## Tracker`) the content of `## name`; the content is made
    safe first (`section_text`), so it cannot open a section of its own."""
    where = layout(text)
    eol = _eol_of(text)
    lines = lines_of(text[where.body_start :])
    safe = section_text(content)
    block = [f"{ln}{eol}" for ln in safe.split("\n")] if safe else []
    block.append(eol)
    span = _section_span(lines, name)
    if span is not None:
        lines[span[0] : span[1]] = block
    else:
        tracker = _section_span(lines, "Tracker")
        at = tracker[0] - 1 if tracker else len(lines)
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += eol
        if at > 0 and lines[at - 1].strip():
            lines.insert(at, eol)
            at += 1
        lines[at:at] = [f"## {name}{eol}", *block]
    return text[: where.body_start] + "".join(lines)


# ---------------------------------------------------------------------------- new files


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_stamp(epoch: float) -> str:
    """An epoch time in the board's timestamp format (`2026-11-25T10:00:00Z`)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(title: str, limit: int = defaults.SLUG_MAX) -> str:
    """A file-name slug: accents folded to ASCII, other scripts kept, cut at a word boundary."""
    folded = []
    for char in unicodedata.normalize("NFKD", title):
        if unicodedata.combining(char):
            continue
        folded.append(char)
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFC", "".join(folded)).casefold())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            slug = slug or word[:limit]
            break
        slug = candidate
    return slug or "task"


def id_slug(title: str, limit: int = defaults.SLUG_MAX) -> str:
    """A slug that can be part of an id (ids are ASCII letters, digits, '.', '_', '-'):
    `slugify`'s ASCII words only; "" when the title has none (a title in another script)."""
    words = [w for w in slugify(title, limit=defaults.MAX_ID_CHARS).split("-") if w.isascii()]
    return slugify(" ".join(words), limit) if words else ""


def render_new(
    header: Header,
    *,
    sections: Mapping[str, str],
    tracker: str | None = None,
) -> str:
    """A fresh task file in the documented layout."""
    fields: dict[str, Any] = header.to_json()
    if not fields["agent"]:
        del fields["agent"]
    out = io.StringIO()
    out.write("---\n")
    for key, value in fields.items():
        out.write(f"{key}: {yaml_scalar(value)}\n")
    out.write(f"---\n# {one_line(header.title)}\n")
    for name, content in sections.items():
        safe = section_text(content.strip())
        out.write(f"\n## {name}\n{safe}\n" if safe else f"\n## {name}\n")
    if tracker:
        out.write(f"\n## Tracker\n- {one_line(tracker)}\n")
    return out.getvalue()
