"""Log reads: checkpoint, proofs, entries and keys (all public; spec §8.10)."""

from __future__ import annotations

from dataclasses import dataclass

from api.container import Container
from api.errors import BadRequest, NotFound

__all__ = ["MAX_ENTRIES", "LogKeys", "checkpoint", "consistency", "entries", "inclusion", "keys"]

MAX_ENTRIES = 1000


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The log's public identity."""

    origin: str
    log_vkey: str
    witnesses: tuple[str, ...]
    quorum: int = 0


def checkpoint(c: Container) -> tuple[bytes, int]:
    """The latest signed checkpoint note and its size, with the witnesses' cosignature lines
    appended (the exact log-signed note bytes, then one ``— witness …`` line per cosignature:
    both stay verifiable, spec §10.14).

    Raises:
        NotFound: Nothing was ever signed.
    """
    from api.services.witnessing import cosigned_note

    latest = c.store.latest_checkpoint()
    if latest is None:
        raise NotFound("the log has no checkpoint yet")
    return cosigned_note(c.store, latest.size, latest.note), latest.size


def _signed_size(c: Container) -> int:
    latest = c.store.latest_checkpoint()
    return 0 if latest is None else latest.size


def inclusion(c: Container, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``.

    Raises:
        BadRequest: ``index >= size`` or sizes out of range.
        NotFound: ``size`` is beyond the latest signed checkpoint.
    """
    if index < 0 or size < 1 or index >= size:
        raise BadRequest("need 0 <= index < size", index=index, size=size)
    if size > _signed_size(c):
        raise NotFound(f"no signed checkpoint covers size {size}")
    return c.store.inclusion_proof(index, size)


def consistency(c: Container, old: int, new: int) -> list[bytes]:
    """RFC 9162 consistency proof from ``old`` to ``new``.

    Raises:
        BadRequest: ``old > new`` or negative sizes.
        NotFound: ``new`` is beyond the latest signed checkpoint.
    """
    if old < 0 or new < 0 or old > new:
        raise BadRequest("need 0 <= old <= new", old=old, new=new)
    if new > _signed_size(c):
        raise NotFound(f"no signed checkpoint covers size {new}")
    return c.store.consistency_proof(old, new)


def entries(c: Container, start: int, end: int) -> list[tuple[int, bytes]]:
    """Entries ``[start, end)`` (at most :data:`MAX_ENTRIES`), exact leaf bytes.

    Raises:
        BadRequest: Bad range.
    """
    if start < 0 or end <= start:
        raise BadRequest("need 0 <= start < end", start=start, end=end)
    end = min(end, start + MAX_ENTRIES)
    return c.store.get_entries(start, end)


def keys(c: Container) -> LogKeys:
    """The log's origin, verifier key, the witnesses' keys and the k of the k-of-n policy."""
    vkeys = c.witness_vkeys()
    quorum = c.settings.witness_quorum if c.settings.witnesses else 0
    return LogKeys(c.sequencer.origin, c.log_signer.vkey(), vkeys, quorum)
