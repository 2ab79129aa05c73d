"""How many follow-ups (``import/describe``) a round may start on one token and API path: what
the rate limit leaves of the round once its lists are served.

Lists come first, always: they carry the state and progress of every job, and are what a round
must publish every ``poll_interval``. The follow-ups only add rows, sizes and times, so they get
the rest: ``rate x round`` requests on their path, less the lists that take slots on that same
path (none on Zilliz Cloud, whose limit is per token *and* path; the rule holds for a server
that would share them), less a margin of ``rate x margin`` for requests bunched at the limit
and answers still coming as the round ends. No follow-up starts within the margin of the
round's deadline either, so follow-ups never stretch a cycle.

    >>> describe_budget(rate=20.0, round_seconds=15.0, margin_seconds=1.5, lists_on_path=0)
    270
"""

from __future__ import annotations

import math

from ..config.loader import Config

MARGIN_SHARE = 0.1
"""The margin as a share of ``poll_interval`` (at most ``request_timeout``)."""


def margin_seconds(config: Config) -> float:
    """The part of each round kept free of follow-ups: a tenth of the interval, at most one
    request timeout (1.5 s at a 15 s interval, 3 s at the default 30 s)."""
    return min(config.request_timeout, config.poll_interval * MARGIN_SHARE)


def describe_budget(
    rate: float, round_seconds: float, margin_seconds: float, lists_on_path: int
) -> int:
    """Follow-ups a round of ``round_seconds`` may start on one (token, path) at ``rate``
    requests per second, when ``lists_on_path`` lists of the round take slots there too."""
    return max(0, math.floor(rate * max(0.0, round_seconds - margin_seconds)) - lists_on_path)


def lists_fit(rate: float, round_seconds: float, lists: int) -> bool:
    """Whether ``lists`` requests on one (token, path) fit in a round at ``rate``."""
    return lists <= math.floor(rate * round_seconds)
