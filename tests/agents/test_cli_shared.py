"""What every CLI backend shares (agents/_cli.py): error wording and reset times."""

from __future__ import annotations

import pytest

from shopfloor.agents import Outcome
from shopfloor.agents._cli import outcome_from_text, reset_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Rate limit reached. Please try again in 30s.", 30.0),
        ("retry-after: 2", 2.0),
        ("try again in 1.5 minutes", 90.0),
        ("usage resets in 2 hours", 7200.0),
        ("retry in 250ms", 0.25),
        ('"retryDelay": "45s"', 45.0),
    ],
)
def test_a_reset_time_is_read_from_the_wording(text: str, seconds: float) -> None:
    assert reset_time(text, now=1000.0) == 1000.0 + seconds


def test_claude_usage_limit_gives_the_epoch_and_no_wording_gives_none() -> None:
    assert reset_time("Claude AI usage limit reached|1800000000", now=0.0) == 1800000000.0
    assert reset_time("Internal server error", now=0.0) is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("401 invalid x-api-key", Outcome.AUTH_ERROR),
        ("API key not valid. Please pass a valid API key.", Outcome.AUTH_ERROR),
        ("429 Too Many Requests", Outcome.RATE_LIMITED),
        ("RESOURCE_EXHAUSTED", Outcome.RATE_LIMITED),
        ("Internal server error", None),
    ],
)
def test_error_wording_names_auth_and_rate_limits(text: str, outcome: Outcome | None) -> None:
    assert outcome_from_text(text) is outcome
