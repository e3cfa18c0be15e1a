"""What the HTTP door keeps apart from the application: request bounds, body splitting,
rate limits, metrics and the worker processes that prepare large batches."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field

import msgspec

from trailseal.app import App
from trailseal.app.deployment import Deployment
from trailseal.server.metrics import Metrics
from trailseal.server.problems import Problem
from trailseal.server.ratelimit import RateLimiter


@dataclass(frozen=True)
class Limits:
    """Request bounds; each refusal names the limit."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    max_page: int = 1000
    rate: float = 200.0  # requests a second per principal
    burst: int = 400


@dataclass
class Service:
    """One log served over HTTP: the application, and what only HTTP needs."""

    app: App
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    rates: RateLimiter | None = None
    pool: Executor | None = None  # worker processes that prepare large batches
    deployment: Deployment | None = None  # the logs beside this one, and the routing

    def __post_init__(self) -> None:
        if self.rates is None:
            self.rates = RateLimiter(self.limits.rate, self.limits.burst)


_JSON_TYPES = ("", "application/json")
_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_ONE = msgspec.json.Decoder(msgspec.Raw)


def parse_body(raw: bytes, content_type: str, max_count: int) -> list[bytes]:
    """A JSON object, a JSON array, or JSON Lines, as the raw bytes of each event.

    Events are not parsed here, only split, so each is parsed once, by the
    event parser, and a malformed one is reported at its position.
    """
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media not in _JSON_TYPES + _LINES_TYPES:
        raise Problem(
            415,
            "Unsupported media type",
            f"{media!r} is not accepted; send application/json or application/x-ndjson",
        )
    if media in _LINES_TYPES:
        items = [line for line in raw.splitlines() if line.strip()]
    elif not raw.strip():
        items = []
    else:
        try:
            decoded = (_RAW_LIST if raw.lstrip()[:1] == b"[" else _RAW_ONE).decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
            raise Problem(400, "Malformed JSON", f"the body is not JSON: {exc}") from None
        items = [bytes(item) for item in decoded] if isinstance(decoded, list) else [raw]
    if not items:
        raise Problem(400, "Empty batch", "the body holds no events")
    if len(items) > max_count:
        raise Problem(
            413, "Batch too large", f"{len(items)} events in one request; the limit is {max_count}"
        )
    return items
