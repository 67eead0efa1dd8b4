"""Text from task files, agents and chats, made safe to show on a terminal or in a chat.

A title or a body is anyone's text: an escape sequence in it would clear a person's screen,
retitle their terminal window or rewrite what they read (ESC, CSI, OSC, a lone carriage
return), and a bidi override would show a different text than the one stored. Every front
end shows such text through `safe` (one line: titles, ids, reasons) or `safe_lines` (bodies:
newlines and tabs kept), which replaces each such character with its escape (`\\x1b`,
`\\u202e`), visible and harmless. The file itself is never changed.

Neutralised: C0 controls (all but newline and tab in bodies; all in one line), DEL, C1
controls (U+0080–U+009F: some terminals read U+009B as CSI), the line and paragraph
separators U+2028/U+2029, and the bidi embeddings, overrides and isolates U+202A–U+202E
and U+2066–U+2069.
"""

from __future__ import annotations

import re

_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
#: One line: newline and tab are neutralised too.
_LINE_RE = re.compile(f"[\t\n{_UNSAFE}]")
#: A body: newline and tab are kept.
_BODY_RE = re.compile(f"[{_UNSAFE}]")
#: What JSON (ensure_ascii=False) leaves raw that a terminal may act on: C0 is always escaped.
_JSON_RE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe(value: object) -> str:
    """One line of someone's text (a title, an id, a reason) with no control character left."""
    text = value if isinstance(value, str) else str(value)
    return _LINE_RE.sub(_escape, text)


def safe_lines(text: str) -> str:
    """A body (a task file, a message): newlines and tabs kept, every other control shown as
    its escape. A lone carriage return is shown as `\\x0d`, so it cannot overwrite a line
    (a CRLF line end is a line end)."""
    return _BODY_RE.sub(_escape, text.replace("\r\n", "\n"))


def safe_json(document: str) -> str:
    """A JSON text with the characters JSON leaves raw (C1, bidi, U+2028) as `\\uXXXX`
    escapes: the same document to a parser, inert on a terminal."""
    return _JSON_RE.sub(_json_escape, document)


def needs_quoting(text: str) -> bool:
    """Whether a log value holds a character `safe` would escape."""
    return _LINE_RE.search(text) is not None


__all__ = ["needs_quoting", "safe", "safe_json", "safe_lines"]
