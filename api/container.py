"""The service's object graph, built once per app by the lifespan (never at import time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Engine

from api.settings import Settings
from api.store import LogStore, Sequencer, SequencerLock
from ledger.note import Signer

if TYPE_CHECKING:
    from api.services.witnessing import Witnessing

__all__ = [
    "Clock",
    "Container",
    "LeaderElection",
    "Limiter",
    "RateLimiter",
    "SizeKeyedCache",
    "utcnow",
]

Clock = Callable[[], datetime]
_T = TypeVar("_T")

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The wall clock, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


class Limiter(Protocol):
    """What the verify endpoint needs of a rate limiter (:class:`RateLimiter`, or
    :class:`api.ratelimit.SharedRateLimiter` when several processes serve one host)."""

    def take(self, client: str) -> float | None:
        """Spend one token; return None if allowed, else seconds until one is available."""
        ...

    def close(self) -> None:
        """Release what the limiter holds (called when the app stops)."""
        ...


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

    def close(self) -> None:
        """Nothing to release: the buckets are plain memory."""


class SizeKeyedCache:
    """Values derived from the registry, reused while the log does not grow.

    Organisations, sites and products change only by appending registry entries to the log,
    and their projections are written in the same transaction as the checkpoint that covers
    them. So a value read together with the latest checkpoint of size N stays right until a
    larger checkpoint is seen: the first read at another size drops every cached value. Per
    process and in memory (each process keys by the size it reads from the database), and
    bounded: past ``max_entries`` values the cache starts over.

    Args:
        max_entries: Values kept at one log size.
    """

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._size = -1
        self._values: dict[Hashable, Any] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, size: int, key: Hashable, load: Callable[[], _T]) -> _T:
        """The value of ``key`` at log size ``size``, loading it (outside the lock) if needed."""
        with self._lock:
            if size != self._size:
                self._values = {}
                self._size = size
            elif key in self._values:
                value: _T = self._values[key]
                return value
        loaded = load()
        with self._lock:
            # Another thread may have moved to a newer size meanwhile: keep only matching values.
            if size == self._size:
                if len(self._values) >= self._max:
                    self._values = {}
                self._values[key] = loaded
        return loaded


class LeaderElection:
    """Run ``on_elected`` once, in the one process that holds the log's leader lock.

    :meth:`start` takes the lock at once if it is free; otherwise a daemon thread tries again
    every ``retry_s`` seconds, so a follower takes over within that time when the leader exits
    or crashes (the lock dies with its holder; :class:`api.store.SequencerLock`).

    Args:
        lock: The log's leader lock.
        on_elected: Called once, when this process becomes the leader.
        retry_s: Seconds between a follower's attempts.
    """

    def __init__(self, lock: SequencerLock, on_elected: Callable[[], None], retry_s: float) -> None:
        self._lock = lock
        self._on_elected = on_elected
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        """Whether this process holds the lock (and so runs the background work)."""
        return self._lock.held

    def start(self) -> None:
        """Lead now if the lock is free; else follow, trying again every ``retry_s``."""
        if self._try_lead():
            return
        self._thread = threading.Thread(target=self._follow, name="yima-leader", daemon=True)
        self._thread.start()

    def _try_lead(self) -> bool:
        with self._mutex:
            if self._stop.is_set() or not self._lock.try_acquire():
                return False
            self._on_elected()
            return True

    def _follow(self) -> None:
        while not self._stop.wait(self.retry_s):
            try:
                if self._try_lead():
                    return
            except Exception:  # a database hiccup must not end the election
                log.exception("leader election attempt failed")

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop following: ``on_elected`` is not called after this returns. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._mutex:  # waits for an ``on_elected`` in progress
            pass

    def release(self) -> None:
        """Give the lock up (after what ``on_elected`` started has stopped). Idempotent."""
        with self._mutex:
            self._lock.release()


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
    limiter: Limiter = field(default_factory=lambda: RateLimiter(120, utcnow))
    witnesses: tuple[str, ...] = ()
    #: Registry lookups (orgs, sites, products) of the consumer check, keyed by log size.
    registry_cache: SizeKeyedCache = field(default_factory=SizeKeyedCache, repr=False)
    #: Collects witness cosignatures (None: no witnesses configured). Built on first use.
    witnessing: Witnessing | None = field(default=None, repr=False)
    #: Background workers started by :meth:`start_background` (anchorer, witnessing).
    background: list[Any] = field(default_factory=list, repr=False)
    #: The leader election of the background work (None until :meth:`start_background`).
    election: LeaderElection | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.witnessing is None and self.settings.witnesses:
            from api.services.witnessing import Witnessing

            self.witnessing = Witnessing(
                self.store,
                self.log_signer.verifier(),
                self.settings.witnesses,
                clock=self.now,
                timeout=self.settings.witness_timeout_s,
                cadence=self.settings.witness_cadence_s,
            )

    def now(self) -> datetime:
        """The current time from the injected clock (UTC)."""
        return self.clock().astimezone(UTC)

    def witness_vkeys(self) -> tuple[str, ...]:
        """The witnesses' verifier keys: configured witnesses, then any extra published ones."""
        configured = tuple(w.vkey for w in self.settings.witnesses)
        return configured + tuple(v for v in self.witnesses if v not in configured)

    # -- after a commit, and background work (docs/adr/0012) --------------------------------

    def after_append(self) -> None:
        """Post-commit hook of the writers: wake the witnessing pass (never blocks or fails).

        Called after the write transaction committed, so a slow or failing witness can never
        fail or delay a capture; the background pass retries until the witness answers.
        """
        if self.witnessing is not None:
            self.witnessing.notify()

    #: Seconds between a follower process's attempts to take over the background work.
    LEADER_RETRY_S: ClassVar[float] = 5.0

    @property
    def leading(self) -> bool:
        """Whether this process runs the log's background work (see :meth:`start_background`)."""
        return self.election is not None and self.election.leading

    def start_background(self) -> None:
        """Start the witnessing thread (if witnesses are configured) and the anchorer (if
        ``anchor_cadence_s`` is set), in one process per log. Called by the app's startup.

        Several API processes may serve one log (``yima serve --workers N``, or several hosts
        on one PostgreSQL database). They elect one leader through the log's leader lock
        (:class:`LeaderElection`); the others follow and take over within
        :attr:`LEADER_RETRY_S` seconds when it exits. Without this each process would send
        every checkpoint to every witness and race the others to anchor it. A follower's
        commits do not wake the leader's witnessing pass; it runs on its cadence.
        """
        if self.background or self.election is not None:
            return
        if self.witnessing is None and self.settings.anchor_cadence_s is None:
            return  # nothing to lead
        # SPEC §10.14 step 6: one process per log runs witnessing and anchoring.
        self.election = LeaderElection(
            SequencerLock(self.engine), self._start_workers, self.LEADER_RETRY_S
        )
        self.election.start()
        log.info("background work: %s", "leading" if self.leading else "following")

    def _start_workers(self) -> None:
        if self.witnessing is not None:
            self.witnessing.start()
            self.background.append(self.witnessing)
        from api.services.anchoring import start_anchorer

        anchorer = start_anchorer(self)
        if anchorer is not None:
            self.background.append(anchorer)

    def stop_background(self) -> None:
        """Stop what :meth:`start_background` started (after their current pass) and hand the
        leadership on."""
        election, self.election = self.election, None
        if election is not None:
            election.stop()  # first: no worker may start after this
        while self.background:
            self.background.pop().stop(5.0)
        if election is not None:
            election.release()  # only now may another process start its workers
