"""Aider's plain-text output, hand-made cases the scripted server cannot produce."""

from __future__ import annotations

import time

from shopfloor.agents import Outcome
from shopfloor.agents.aider import AiderBackend

HEAD = "Aider v0.86.2\nModel: openai/x with diff edit format\nRepo-map: disabled\n\n"
RATE = (
    "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached. "
    "Please try again in 20m.\nThe API provider has rate limited you.\n"
)


def test_tokens_are_summed_over_requests_and_cost_is_the_session_total() -> None:
    out = (
        HEAD + "app.py\nAdd file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: app.py\n"
        "Tokens: 12k sent, 950 received. Cost: $0.04 message, $0.04 session.\n"
        "Tokens: 2.5k sent, 1.2k cache hit, 1.1k received. Cost: $0.01 message, $0.05 session.\n"
    )
    parsed = AiderBackend().parse(out, "")
    assert (parsed.tokens_in, parsed.tokens_out) == (14500, 2050)
    assert parsed.cost_usd == 0.05
    assert parsed.outcome is None and parsed.session_id is None
    assert "Aider v" not in parsed.final_text and "Tokens:" not in parsed.final_text


def test_a_retry_that_then_succeeds_is_ok() -> None:
    out = HEAD + RATE + "Retrying in 0.2 seconds...\ndone\nTokens: 900 sent, 10 received.\n"
    parsed = AiderBackend().parse(out, "")
    assert parsed.outcome is None
    assert (parsed.tokens_in, parsed.tokens_out, parsed.cost_usd) == (900, 10, None)


def test_rate_limit_after_the_last_answer_wins_and_says_when_it_lifts() -> None:
    out = HEAD + "Tokens: 900 sent, 10 received.\n" + RATE
    parsed = AiderBackend().parse(out, "")
    assert parsed.outcome is Outcome.RATE_LIMITED
    assert parsed.reset_at is not None and abs(parsed.reset_at - (time.time() + 1200)) < 60


def test_a_server_error_saying_overloaded_is_not_a_rate_limit() -> None:
    out = HEAD + (
        "litellm.InternalServerError: OpenAIException - boom\n"
        "The API provider's servers are down or overloaded.\n"
    )
    parsed = AiderBackend().parse(out, "")
    assert parsed.outcome is Outcome.AGENT_ERROR and parsed.reset_at is None


def test_a_crash_before_any_request_is_an_agent_error() -> None:
    parsed = AiderBackend().parse("", "Traceback (most recent call last):\nImportError: x\n")
    assert parsed.outcome is Outcome.AGENT_ERROR
    assert parsed.error and "ImportError" in parsed.error
