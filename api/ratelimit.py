"""The verify endpoint's token buckets, shared by the API processes of one host (ADR 0016).

``yima serve --workers N`` runs N processes; with a limiter in each one's memory a client could
spend N times its budget. :class:`SharedRateLimiter` keeps the buckets in a small file that
every process maps into memory, and updates a bucket under an exclusive ``flock`` of the
file, so the budget is one per client address whichever process answers. Nothing in it is
worth keeping: the file is recreated (all buckets full) when its size is wrong.

Buckets live in a fixed table of slots addressed by a keyed hash of the client key; a slot
remembers a tag of the key that owns it. A different key landing on a taken slot takes it over
with a full bucket: two clients can disturb each other only by colliding (65,536 slots by
default), and the table never grows.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

__all__ = ["SharedRateLimiter"]

#: One slot: key tag (8 bytes), tokens, time of the last update (float64 each).
_SLOT: Final = struct.Struct("<8sdd")
_MAGIC: Final = b"yima-rl1"


class SharedRateLimiter:
    """Per-client token buckets in a memory-mapped file, shared across processes.

    The same contract as :class:`api.container.RateLimiter`: each client key gets
    ``per_minute`` tokens of burst that refill continuously at ``per_minute`` per minute.

    Args:
        path: The bucket file (created if missing; its directory must exist).
        per_minute: Budget per client key.
        clock: Injected time source (tests move it).
        slots: Buckets in the table (a power of two is not required).
    """

    def __init__(
        self,
        path: Path,
        per_minute: int,
        clock: Callable[[], datetime],
        *,
        slots: int = 65_536,
    ) -> None:
        import fcntl  # POSIX only: the service's `--workers` runs on Linux

        self._fcntl = fcntl
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._clock = clock
        self._slots = slots
        size = len(_MAGIC) + slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                header = os.pread(self._fd, len(_MAGIC), 0)
                if os.fstat(self._fd).st_size != size or header != _MAGIC:
                    # Another layout (or a fresh file): start over with every bucket full.
                    os.ftruncate(self._fd, 0)
                    os.ftruncate(self._fd, size)
                    os.pwrite(self._fd, _MAGIC, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise
        # Keyed per file so that slot positions are not predictable from outside.
        self._key = hashlib.blake2b(str(path.resolve()).encode(), digest_size=16).digest()

    def _slot(self, client: str) -> tuple[int, bytes]:
        digest = hashlib.blake2b(client.encode("utf-8", "surrogatepass"), key=self._key).digest()
        index = int.from_bytes(digest[:8], "little") % self._slots
        return len(_MAGIC) + index * _SLOT.size, digest[8:16]

    def take(self, client: str) -> float | None:
        """Spend one token; return None if allowed, else seconds until one is available."""
        now = self._clock().timestamp()
        offset, tag = self._slot(client)
        fcntl = self._fcntl
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            owner, stored, stamp = _SLOT.unpack_from(self._map, offset)
            tokens, last = float(stored), float(stamp)
            if owner != tag:
                tokens, last = self._burst, now  # a new client (or a collision): full bucket
            tokens = min(self._burst, tokens + max(0.0, now - last) * self._rate)
            if tokens < 1.0:
                _SLOT.pack_into(self._map, offset, tag, tokens, now)
                return (1.0 - tokens) / self._rate
            _SLOT.pack_into(self._map, offset, tag, tokens - 1.0, now)
            return None
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap and close the file (idempotent)."""
        if self._fd >= 0:
            self._map.close()
            os.close(self._fd)
            self._fd = -1
