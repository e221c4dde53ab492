"""Sending each new checkpoint to the configured witnesses and keeping their cosignatures.

The log talks c2sp.org/tlog-witness to every witness in ``Settings.witnesses``
(docs/spec/10-witness-bundle-audit.md §10.14):

1. Take the latest signed checkpoint. A witness that already cosigned that size is skipped.
2. ``old`` is the largest size this witness cosigned before (from the ``cosignatures``
   table; 0 if none); the body is ``old``, the consistency proof from ``old`` to the new size
   (from stored hashes) and the signed note (``ledger.witness.format_add_checkpoint``).
3. ``POST {url}/add-checkpoint``. On 200 the returned lines must verify with the witness's
   configured vkey over this checkpoint; each verified line is stored
   (``LogStore.add_cosignature``). Unverifiable answers are never stored.
4. On 409 with a ``text/x.tlog.size`` body, the witness knows another size: retry once with
   that size as ``old`` (if it is not larger than the new size).
5. Any other answer or a network failure is recorded for operators and retried on the next
   pass. It never fails a capture: passes run outside the write transaction, after commit,
   in a background thread (woken after each commit and every ``witness_cadence_s``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import func, select

from api.settings import WitnessEndpoint
from api.store import LogStore
from api.store import tables as t
from ledger.errors import LedgerError
from ledger.note import Verifier, verify_checkpoint_witnessed
from ledger.witness import format_add_checkpoint

__all__ = ["SIZE_MEDIA_TYPE", "WitnessOutcome", "Witnessing", "cosigned_note"]

log = logging.getLogger(__name__)

SIZE_MEDIA_TYPE = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class WitnessOutcome:
    """What one witness did with one checkpoint.

    Attributes:
        witness: The witness name.
        size: The checkpoint size sent.
        status: ``cosigned``, ``skipped`` (already cosigned) or ``failed``.
        detail: Why it failed (HTTP status and body, or the error).
    """

    witness: str
    size: int
    status: str
    detail: str = ""


def cosigned_note(store: LogStore, size: int, note: bytes) -> bytes:
    """The signed note followed by every stored cosignature line for ``size``.

    The log's signature and each cosignature sign the same note text, so both parts stay
    verifiable (C2SP signed-note: extra signature lines are simply more signatures).
    """
    lines = "".join(c.line + "\n" for c in store.cosignatures(size))
    return note + lines.encode("utf-8")


class Witnessing:
    """Collects witness cosignatures for the log's checkpoints.

    Args:
        store: The log.
        log_verifier: The log's own key (to check the cosigned note before storing it).
        witnesses: The configured witnesses.
        clock: "Now" (receipt time of cosignatures).
        clients: HTTP clients by witness name (tests inject ASGI clients); default: one
            ``httpx.Client`` per witness.
        timeout: Seconds per request.
        cadence: Seconds between background passes.
    """

    def __init__(
        self,
        store: LogStore,
        log_verifier: Verifier,
        witnesses: Sequence[WitnessEndpoint],
        *,
        clock: Callable[[], datetime],
        clients: Mapping[str, httpx.Client] | None = None,
        timeout: float = 10.0,
        cadence: float = 10.0,
    ) -> None:
        self.store = store
        self.log_verifier = log_verifier
        self.witnesses = tuple(witnesses)
        self.verifiers: dict[str, Verifier] = {}
        for w in self.witnesses:
            v = Verifier.parse_vkey(w.vkey)
            if v.name != w.name:
                raise ValueError(f"witness {w.name!r}: its vkey names {v.name!r}")
            self.verifiers[w.name] = v
        self.clock = clock
        self.clients: dict[str, httpx.Client] = dict(clients or {})
        self.timeout = timeout
        self.cadence = cadence
        self.last: dict[str, WitnessOutcome] = {}
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass --------------------------------------------------------------------------

    def _client(self, w: WitnessEndpoint) -> httpx.Client:
        client = self.clients.get(w.name)
        if client is None:
            client = httpx.Client(timeout=self.timeout)
            self.clients[w.name] = client
        return client

    def _last_cosigned(self, witness: str) -> int:
        c = t.cosignatures.c
        with self.store.engine.connect() as conn:
            size = conn.execute(
                select(func.max(c.size)).where(c.witness == witness)
            ).scalar_one_or_none()
        return 0 if size is None else int(size)

    def run_once(self) -> list[WitnessOutcome]:
        """Send the latest checkpoint to every witness that has not cosigned it yet.

        Never raises for a witness failure: the outcome says what happened.
        """
        with self._run_lock:
            latest = self.store.latest_checkpoint()
            if latest is None:
                return []
            out = []
            for w in self.witnesses:
                try:
                    outcome = self._send(w, latest.size, latest.note)
                except Exception as exc:  # a witness must never break the log
                    outcome = WitnessOutcome(w.name, latest.size, "failed", f"{exc!r}"[:500])
                if outcome.status == "failed":
                    log.warning("witness %s, size %d: %s", w.name, outcome.size, outcome.detail)
                self.last[w.name] = outcome
                out.append(outcome)
            return out

    def _send(self, w: WitnessEndpoint, size: int, note: bytes) -> WitnessOutcome:
        if any(c.witness == w.name for c in self.store.cosignatures(size)):
            return WitnessOutcome(w.name, size, "skipped")
        old = self._last_cosigned(w.name)
        if old > size:
            old = 0  # cannot prove from a larger size; let the witness tell us (409)
        for attempt in range(2):
            proof = self.store.consistency_proof(old, size) if 0 < old < size else []
            r = self._client(w).post(
                w.url.rstrip("/") + "/add-checkpoint",
                content=format_add_checkpoint(old, proof, note),
            )
            if r.status_code == 200:
                return self._store(w, size, note, r.content)
            media = r.headers.get("content-type", "").split(";")[0].strip()
            if r.status_code == 409 and media == SIZE_MEDIA_TYPE and attempt == 0:
                try:
                    known = int(r.text.strip())
                except ValueError:
                    break
                if known > size or known == old:
                    break
                old = known  # C2SP: resend from the size the witness says it has
                continue
            break
        return WitnessOutcome(w.name, size, "failed", f"HTTP {r.status_code}: {r.text[:300]}")

    def _store(self, w: WitnessEndpoint, size: int, note: bytes, body: bytes) -> WitnessOutcome:
        verifier = self.verifiers[w.name]
        try:
            verify_checkpoint_witnessed(note + body, [self.log_verifier], [verifier], 1)
        except LedgerError as exc:
            return WitnessOutcome(w.name, size, "failed", f"unverifiable cosignature: {exc}")
        prefix = f"— {w.name} "
        now = self.clock()
        for line in body.decode("utf-8").splitlines():
            if line.startswith(prefix):
                self.store.add_cosignature(size, w.name, line, at=now)
        return WitnessOutcome(w.name, size, "cosigned")

    # -- background ------------------------------------------------------------------------

    def notify(self) -> None:
        """A checkpoint was committed: wake the background pass (never blocks, never fails)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.cadence)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except Exception:  # keep witnessing; the next pass retries
                log.exception("witnessing pass failed")

    def start(self) -> None:
        """Start the background thread (and run a first pass soon)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="yima-witness", daemon=True)
            self._thread.start()
            self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the background thread after the current pass."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
