"""Someone's text shown safely: terminals, chats and the daemon log (src/shopfloor/display.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopfloor import display
from shopfloor.shop import log_line

EVIL = "Pay\x1b[2J\x1b]0;pwned\x07 out\rX \x9b31m \u202egnp.exe\u2066\x7f\x00\u2028"
#: Characters a terminal or a text renderer acts on (movement, modes, reordering, breaks).
ACTIVE = set(
    [chr(c) for c in range(0x20) if c not in (0x09, 0x0A)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
)


def test_safe_shows_each_control_as_its_escape() -> None:
    """Rule: one line of text keeps its printable characters and shows controls as escapes."""
    assert display.safe(EVIL) == (
        "Pay\\x1b[2J\\x1b]0;pwned\\x07 out\\x0dX \\x9b31m \\u202egnp.exe\\u2066\\x7f\\x00\\u2028"
    )
    assert display.safe("a\nb\tc") == "a\\x0ab\\x09c"
    assert display.safe("café 日本語 — ok") == "café 日本語 — ok"


def test_safe_lines_keeps_newlines_tabs_and_crlf_line_ends() -> None:
    assert display.safe_lines("a\tb\r\nc\rd\n\x1b[0m") == "a\tb\nc\\x0dd\n\\x1b[0m"


@given(st.text(max_size=80))
def test_nothing_active_survives(text: str) -> None:
    """Property: no character a terminal acts on is left, in a line or in a body."""
    assert not ACTIVE & set(display.safe(text)) - {"\t", "\n"}
    assert not set(display.safe(text)) & {"\t", "\n"}
    assert not ACTIVE & set(display.safe_lines(text))


@given(st.text(max_size=80))
def test_safe_json_is_the_same_document(text: str) -> None:
    """Property: JSON made inert reads back as the same data."""
    document = json.dumps({"title": text}, ensure_ascii=False)
    inert = display.safe_json(document)
    assert json.loads(inert) == {"title": text}
    assert not ACTIVE & set(inert)


def test_the_daemon_log_quotes_and_escapes_control_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rule: a value with a control character is written JSON-quoted, so a title in the log
    can never drive the terminal that tails it."""
    log_line("claim", task="T-1", title=EVIL, plain="ok")
    line = capsys.readouterr().err
    assert line.endswith("\n") and line.count("\n") == 1
    assert not ACTIVE & set(line)
    assert " task=T-1 " in line and line.rstrip().endswith(" plain=ok")
    quoted = line.split(" title=", 1)[1].rsplit(" plain=", 1)[0]
    assert json.loads(quoted) == EVIL
