"""The one retry policy: what is worth another try, and how long to wait before it.

The daemon's poller and the operator commands both retry through here, so a change of policy
reaches both. Only a temporary failure is retried (``ApiError.temporary``: connect errors,
resets, timeouts, 429 and 5xx), never an answer that would be the same next time (401, 403, an
unknown job). The wait doubles from 0.5 s up to a 10 s cap, is jittered down to half of that so
clients that failed together do not come back together, and is never shorter than the
``Retry-After`` the server asked for:

    >>> import random
    >>> rng = random.Random(1)
    >>> [round(backoff_seconds(attempt, rng), 2) for attempt in (1, 2, 3, 6, 7)]
    [0.28, 0.92, 1.76, 6.28, 7.48]
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .client import ApiError

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0

RetryIf = Callable[[ApiError], bool]


def is_temporary(error: ApiError) -> bool:
    """The default of what to retry: the same request may well succeed a moment later."""
    return error.temporary


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """The jittered wait after failed attempt number ``attempt`` (1 for the first failure).

    Before jitter: 0.5 s, 1 s, 2 s, ... up to 10 s; jitter keeps between half and all of it.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return ceiling * rng.uniform(0.5, 1.0)


def retry_delay(
    error: ApiError,
    attempt: int,
    max_retries: int,
    rng: random.Random,
    retry_if: RetryIf = is_temporary,
) -> float | None:
    """Seconds to wait before trying again after ``attempt`` failed with ``error``, or None
    when it is not worth trying again: ``retry_if`` refuses the error, or ``attempt`` already
    used the last of ``max_retries`` retries (attempt ``max_retries + 1`` is the last one).

    The random generator is only drawn from when there will be a retry, so a seeded caller sees
    the same sequence whatever it does not retry.
    """
    if not retry_if(error) or attempt > max_retries:
        return None
    return max(backoff_seconds(attempt, rng), error.retry_after or 0.0)
