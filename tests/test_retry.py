"""The one retry policy the poller and the operator commands share."""

from __future__ import annotations

import random

import pytest

from exporter.upstream.client import ApiError
from exporter.upstream.retry import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    backoff_seconds,
    retry_delay,
)


class Extremes(random.Random):
    """A generator whose ``uniform`` always answers one end of the range, and counts draws."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end
        self.draws = 0

    def uniform(self, a: float, b: float) -> float:
        self.draws += 1
        return a if self.end == "low" else b


TIMEOUT = ApiError("timeout", "no answer within 2s")


def test_the_wait_doubles_from_half_a_second_up_to_the_cap():
    waits = [backoff_seconds(attempt, Extremes("high")) for attempt in range(1, 8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert (BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS) == (0.5, 10.0)


def test_jitter_keeps_between_half_and_all_of_the_wait():
    assert backoff_seconds(3, Extremes("low")) == 1.0
    assert backoff_seconds(3, Extremes("high")) == 2.0
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff_seconds(attempt, rng) <= ceiling


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ApiError("timeout", "slow"), id="timeout"),
        pytest.param(ApiError("connect", "refused"), id="connect"),
        pytest.param(ApiError("reset", "broken"), id="reset"),
        pytest.param(ApiError("rate_limited", "HTTP 429"), id="rate-limited"),
        pytest.param(ApiError("http_503", "HTTP 503"), id="http-503"),
    ],
)
def test_a_temporary_failure_is_retried(error):
    assert retry_delay(error, 1, 3, Extremes("high")) == 0.5


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ApiError("auth", "HTTP 401: the token was refused"), id="auth"),
        pytest.param(ApiError("http_404", "HTTP 404"), id="http-404"),
        pytest.param(ApiError("api_1100", "code 1100: refresh job 1 not found"), id="not-found"),
        pytest.param(ApiError("bad_response", "data is not an object"), id="bad-response"),
    ],
)
def test_a_failure_that_would_repeat_is_not_retried_and_draws_no_jitter(error):
    rng = Extremes("high")
    assert retry_delay(error, 1, 3, rng) is None
    assert rng.draws == 0


def test_retries_stop_after_max_retries():
    rng = Extremes("high")
    assert [retry_delay(TIMEOUT, attempt, 2, rng) for attempt in (1, 2, 3)] == [0.5, 1.0, None]
    assert retry_delay(TIMEOUT, 1, 0, rng) is None


def test_a_longer_retry_after_from_the_server_wins_over_the_backoff():
    limited = ApiError("rate_limited", "HTTP 429", retry_after=3.0)
    assert retry_delay(limited, 1, 3, Extremes("high")) == 3.0
    brief = ApiError("rate_limited", "HTTP 429", retry_after=0.1)
    assert retry_delay(brief, 1, 3, Extremes("high")) == 0.5


def test_the_caller_may_narrow_what_is_retried():
    def only_rate_limited(error: ApiError) -> bool:
        return error.reason == "rate_limited"

    rng = Extremes("high")
    assert retry_delay(TIMEOUT, 1, 3, rng, only_rate_limited) is None
    limited = ApiError("rate_limited", "code 1807: request is rejected by limiter")
    assert retry_delay(limited, 1, 3, rng, only_rate_limited) == 0.5


def test_a_seeded_generator_gives_the_waits_the_poller_always_gave():
    """The rule the poller had inline before it moved here, draw for draw."""
    ours, theirs = random.Random(42), random.Random(42)
    errors = [TIMEOUT, ApiError("rate_limited", "429", retry_after=1.5), ApiError("http_502", "")]
    for attempt in range(1, 9):
        error = errors[attempt % len(errors)]
        backoff = min(10.0, 0.5 * 2 ** (attempt - 1))
        expected = max(backoff * theirs.uniform(0.5, 1.0), error.retry_after or 0.0)
        assert retry_delay(error, attempt, 10, ours) == expected
