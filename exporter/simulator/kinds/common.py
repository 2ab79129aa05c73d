"""Helpers every kind shares: simulated time ramps, wall-clock formats, names and dice.

Simulated time `t` is seconds since the simulator started. An answer is written "now minus
simulated age": `base` is that answer's epoch second of simulated time 0 (see `World.wall_base`),
so an event never shows in the future however fast the world runs.
"""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime, timedelta, timezone

INFINITY = math.inf
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")

COLLECTION_TOPICS = (
    "books",
    "movies",
    "music",
    "news",
    "papers",
    "products",
    "reviews",
    "images",
    "recipes",
    "podcasts",
    "patents",
    "articles",
    "photos",
    "videos",
    "songs",
    "tickets",
)


def topic_name(index: int) -> str:
    """Deterministic plain names: books, movies, ... then books_2, movies_2, ..."""
    topic = COLLECTION_TOPICS[index % len(COLLECTION_TOPICS)]
    round_number = index // len(COLLECTION_TOPICS)
    return topic if round_number == 0 else f"{topic}_{round_number + 1}"


def external_collection_name(index: int) -> str:
    return f"ext_{topic_name(index)}"


def compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high]; cheaper than `randint`, which matters for 100k-job worlds."""
    return low + int(rng.random() * (high - low + 1))


def ramp(start: float, end: float, low: int, high: int, now: float) -> int:
    """Whole percent moving from `low` at `start` towards `high` at `end`, never reaching it early."""
    span = end - start
    if span <= 0 or span == INFINITY:
        return low
    return min(high, low + int((high - low) * (now - start) / span))


def next_step(start: float, end: float, low: int, high: int, now: float) -> float:
    """The first instant after `now` at which `ramp` shows the next whole percent (or `end`)."""
    span = end - start
    if span <= 0 or span == INFINITY or high <= low:
        return end
    progress = ramp(start, end, low, high, now)
    if progress >= high:
        return end
    return min(end, start + span * (progress - low + 1) / (high - low))


def epoch_milliseconds(base: float, t: float) -> int:
    return round((base + t) * 1000)


def rfc3339(base: float, t: float, offset_minutes: int) -> str:
    """Whole seconds in the server's offset, as Go's time.RFC3339 writes them ("Z" for UTC)."""
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(base + t, tz=zone)
    if offset_minutes == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"


def parse_int64(text: str) -> int:
    """Read `text` as Go's strconv.ParseInt(text, 10, 64) does: an optional sign and digits
    within int64; else ValueError("invalid syntax") or ValueError("value out of range")."""
    if not _DECIMAL.fullmatch(text):
        raise ValueError("invalid syntax")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("value out of range")
    return number
