"""The service's object graph, built once per app by the lifespan (never at import time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from api.settings import Settings
from api.store import LogStore, Sequencer
from ledger.note import Signer

__all__ = ["Clock", "Container", "RateLimiter", "utcnow"]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


class RateLimiter:
    """Per-client token buckets (in memory, per process) for the public verify endpoint.

    Each client address gets ``per_minute`` tokens of burst that refill continuously at
    ``per_minute`` per minute. In memory on purpose: verify is anonymous, so there is nothing
    worth persisting; several API processes each enforce the budget (documented in the spec).

    Args:
        per_minute: Budget per client address.
        clock: Injected time source (tests move it).
        max_clients: Buckets kept before the fullest ones are dropped (bounded memory).
    """

    def __init__(self, per_minute: int, clock: Clock, *, max_clients: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._clock = clock
        self._max = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float | None:
        """Spend one token; return None if allowed, else seconds until one is available."""
        now = self._clock().timestamp()
        with self._lock:
            tokens, last = self._buckets.get(client, (self._burst, now))
            tokens = min(self._burst, tokens + max(0.0, now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self._rate
            if len(self._buckets) >= self._max and client not in self._buckets:
                # Full buckets carry no information: forget them first.
                for key in [k for k, (n, _) in self._buckets.items() if n >= self._burst - 1]:
                    del self._buckets[key]
            self._buckets[client] = (tokens - 1.0, now)
            return None


@dataclass
class Container:
    """Everything a request handler may need, passed explicitly through dependencies.

    Attributes:
        settings: The frozen settings.
        engine: The database engine (migrated).
        store: Read access to the log.
        sequencer: The one writer.
        log_signer: Signs checkpoints (its vkey is published at /v1/log/keys).
        clock: "Now" for record times, scans and rate limits (tests inject a fixed clock).
        limiter: Rate limiter of the public verify endpoint.
        witnesses: Witness verifier keys (vkeys) published with the log key.
    """

    settings: Settings
    engine: Engine
    store: LogStore
    sequencer: Sequencer
    log_signer: Signer
    clock: Clock = utcnow
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(120, utcnow))
    witnesses: tuple[str, ...] = ()

    def now(self) -> datetime:
        """The current time from the injected clock (UTC)."""
        return self.clock().astimezone(UTC)
