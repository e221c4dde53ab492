"""Signed captures: one producer signature over a batch of EPCIS events (SPEC §4).

A producer signs a small canonical payload naming its chain position (``seq``, ``prev``) and
the RFC 9162 Merkle root over its events' leaves. One Ed25519 signature covers the whole
batch, and each event stays verifiable on its own through its inclusion path to
``events_root``. The per-producer ``seq``/``prev`` chain makes gaps, reorders and forks of
one producer detectable.

Everything here is pure: the key, the time (``created``) and the events come from the caller.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ledger.canonical import canonical_json, canonical_json_stable
from ledger.errors import (
    ChainError,
    EncodingError,
    HashMismatchError,
    ProofError,
    SignatureError,
)
from ledger.eventhash import event_hash
from ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash, verify_inclusion
from ledger.signing import (
    PrivateKey,
    PublicKey,
    b64decode,
    b64encode,
    key_id,
    pae,
)

_fast_loads: Callable[[bytes], Any] | None
try:  # orjson parses event bytes faster; the canonical re-check makes the parsers equivalent.
    from orjson import loads as _orjson_loads

    _fast_loads = _orjson_loads
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _fast_loads = None

__all__ = [
    "CAPTURE_PAYLOAD_TYPE",
    "CAPTURE_TYPE",
    "MAX_EVENTS",
    "MAX_PAYLOAD_BYTES",
    "CapturePayload",
    "CapturedEvent",
    "SignedCapture",
    "WireCapture",
    "build_capture",
    "capture_id",
    "decode_wire",
    "event_leaf",
    "from_wire",
    "parse_event_bytes",
    "to_wire",
    "verify_capture",
    "verify_captured_event",
    "verify_chain",
    "verify_signed_capture",
    "verify_wire_capture",
]

CAPTURE_TYPE: Final = "yima.capture/v1"
CAPTURE_PAYLOAD_TYPE: Final = "application/vnd.yima.capture.v1+json"
#: Upper bound on payload bytes: a real payload is ~350 bytes; refuse to parse huge input.
MAX_PAYLOAD_BYTES: Final = 4096
#: Upper bound on events per capture (keeps one capture's proofs and memory bounded).
MAX_EVENTS: Final = 100_000

_JSON_INT_MAX: Final = 2**53 - 1
_PAYLOAD_FIELDS: Final = frozenset(
    {"type", "producer", "key_id", "seq", "prev", "events_root", "count", "created"}
)
_WIRE_FIELDS: Final = frozenset({"payload", "signature", "events"})
_HEX8: Final = re.compile(r"[0-9a-f]{8}", re.ASCII)
_HEX64: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
# RFC 3339 in UTC with a "Z" suffix only, so one instant has few spellings and all sort.
_RFC3339_UTC: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z", re.ASCII
)


# --------------------------------------------------------------------------- payload


def _check_name(producer: object) -> str:
    # The producer name is also the C2SP key name its key ID is derived from, so it follows
    # the signed-note key name rules: non-empty, no spaces, no "+", no control characters.
    if not isinstance(producer, str) or not 1 <= len(producer) <= 255:
        raise EncodingError("producer must be a string of 1..255 characters", actual=producer)
    if any(c == "+" or c.isspace() or not c.isprintable() for c in producer):
        raise EncodingError(
            "producer name must not contain spaces, '+' or control characters", actual=producer
        )
    return producer


def _check_int(name: str, value: object, minimum: int) -> int:
    # bool is an int subclass; a JSON true must never pass as 1.
    if type(value) is not int:
        raise EncodingError(f"{name} must be an integer", actual=value)
    if not minimum <= value <= _JSON_INT_MAX:
        raise EncodingError(f"{name} out of range", expected=f">= {minimum}", actual=value)
    return value


def _check_created(created: object) -> str:
    if not isinstance(created, str) or not _RFC3339_UTC.fullmatch(created):
        raise EncodingError(
            "created must be RFC 3339 UTC, e.g. 2026-01-31T08:00:00Z", actual=created
        )
    try:  # the regex checks the shape; this checks the calendar (no 2026-02-30)
        datetime.fromisoformat(created[:19])
    except ValueError as e:
        raise EncodingError(f"created is not a valid date-time: {e}", actual=created) from e
    return created


@dataclass(frozen=True, slots=True)
class CapturePayload:
    """The signed part of a capture (SPEC §4.3). Every instance is valid.

    Attributes:
        producer: The producer's name; also the C2SP key name of its signing key.
        key_id: Hex of the 4-byte C2SP key ID of the producer's Ed25519 key (type 0x01).
        seq: The producer's capture counter, contiguous from 0.
        prev: :func:`capture_id` of the producer's previous capture; ``None`` for seq 0.
        events_root: Hex RFC 9162 Merkle root over the events' leaves (SPEC §4.4).
        count: Number of events (leaves), at least 1.
        created: RFC 3339 UTC time given by the producer (not trusted as a log time).
    """

    producer: str
    key_id: str
    seq: int
    prev: str | None
    events_root: str
    count: int
    created: str

    def __post_init__(self) -> None:
        _check_name(self.producer)
        if not isinstance(self.key_id, str) or not _HEX8.fullmatch(self.key_id):
            raise EncodingError("key_id must be 8 lower-case hex digits", actual=self.key_id)
        _check_int("seq", self.seq, 0)
        if self.prev is not None and (
            not isinstance(self.prev, str) or not _HEX64.fullmatch(self.prev)
        ):
            raise EncodingError("prev must be null or 64 lower-case hex digits", actual=self.prev)
        if not isinstance(self.events_root, str) or not _HEX64.fullmatch(self.events_root):
            raise EncodingError(
                "events_root must be 64 lower-case hex digits", actual=self.events_root
            )
        _check_int("count", self.count, 1)
        if self.count > MAX_EVENTS:
            raise EncodingError("too many events", expected=f"<= {MAX_EVENTS}", actual=self.count)
        _check_created(self.created)

    def to_json(self) -> dict[str, Any]:
        """The payload as a JSON object (including the fixed ``type``)."""
        return {
            "type": CAPTURE_TYPE,
            "producer": self.producer,
            "key_id": self.key_id,
            "seq": self.seq,
            "prev": self.prev,
            "events_root": self.events_root,
            "count": self.count,
            "created": self.created,
        }

    def to_bytes(self) -> bytes:
        """The payload bytes: RFC 8785 canonical JSON of :meth:`to_json` (SPEC §4.3)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> CapturePayload:
        """Parse and strictly validate payload bytes (SPEC §4.6 step 2).

        This does not check the signature: use it only to find the producer's key before
        :func:`verify_capture`, or on bytes already verified.

        Args:
            data: The payload bytes.

        Returns:
            The payload.

        Raises:
            EncodingError: Not UTF-8 JSON, duplicate or unknown or missing fields, a wrong
                type or range, a wrong ``type`` value, or bytes that are not exactly the
                canonical encoding of what they parse to.
        """
        if not isinstance(data, bytes):
            raise EncodingError("payload must be bytes", actual=type(data).__name__)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise EncodingError(
                "payload too large", expected=f"<= {MAX_PAYLOAD_BYTES}", actual=len(data)
            )
        obj = _strict_loads(data, "payload")
        if not isinstance(obj, dict):
            raise EncodingError("payload must be a JSON object", actual=type(obj).__name__)
        keys = set(obj)
        if keys != _PAYLOAD_FIELDS:
            raise EncodingError(
                "payload fields differ from yima.capture/v1",
                expected=sorted(_PAYLOAD_FIELDS),
                actual=sorted(keys),
            )
        if obj["type"] != CAPTURE_TYPE:
            raise EncodingError("unknown payload type", expected=CAPTURE_TYPE, actual=obj["type"])
        payload = cls(
            producer=obj["producer"],
            key_id=obj["key_id"],
            seq=obj["seq"],
            prev=obj["prev"],
            events_root=obj["events_root"],
            count=obj["count"],
            created=obj["created"],
        )
        # One payload, one byte string: otherwise capture_id (what the next prev names)
        # would not be a function of the payload.
        canonical = payload.to_bytes()
        if canonical != data:
            raise EncodingError(
                "payload is not RFC 8785 canonical", expected=canonical, actual=data
            )
        return payload


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not JSON", actual=name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise EncodingError("duplicate JSON object key", actual=k)
        out[k] = v
    return out


def _strict_loads(data: bytes, what: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EncodingError(f"{what} is not UTF-8: {e}") from e
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        if isinstance(e, EncodingError):
            raise
        raise EncodingError(f"{what} is not JSON: {e}") from e


def capture_id(payload_bytes: bytes) -> str:
    """The capture's ID: hex SHA-256 of its payload bytes (what the next ``prev`` names).

    Args:
        payload_bytes: The exact payload bytes.

    Returns:
        64 lower-case hex digits.
    """
    return hashlib.sha256(payload_bytes).hexdigest()


# --------------------------------------------------------------------------- events


def event_leaf(event_id: str, event_bytes: bytes) -> bytes:
    """The Merkle leaf data for one event (SPEC §4.4).

    ``event_id || 0x0A || hex(SHA-256(event_bytes))``. The CBV 2.0 event hash ignores some
    fields (``errorDeclaration``, ``recordTime``, ``eventID``...), so the leaf binds the
    exact canonical event bytes as well: no byte of a signed event can change unseen.

    Args:
        event_id: The CBV 2.0 event hash ID (``ni:///sha-256;...?ver=CBV2.0``).
        event_bytes: The event's RFC 8785 canonical bytes.

    Returns:
        The leaf data (hash it with :func:`ledger.merkle.leaf_hash`).
    """
    return event_id.encode("utf-8") + b"\n" + hashlib.sha256(event_bytes).hexdigest().encode()


def parse_event_bytes(event_bytes: bytes) -> dict[str, Any]:
    """Parse canonical event bytes, refusing anything but a canonical JSON object.

    Args:
        event_bytes: The event bytes as signed.

    Returns:
        The event object.

    Raises:
        EncodingError: Not JSON, not an object, or not RFC 8785 canonical.
    """
    if not isinstance(event_bytes, bytes):
        raise EncodingError("event must be bytes", actual=type(event_bytes).__name__)
    obj: Any
    if _fast_loads is not None:
        try:
            obj = _fast_loads(event_bytes)
        except (ValueError, RecursionError) as e:
            raise EncodingError(f"event is not JSON: {e}") from e
    else:  # pragma: no cover - exercised only where orjson is absent
        obj = _strict_loads(event_bytes, "event")
    if not isinstance(obj, dict):
        raise EncodingError("event must be a JSON object", actual=type(obj).__name__)
    # The canonical re-check makes the parser irrelevant: duplicate keys, odd number forms
    # and escapes all change the bytes, so every verifier hashes the same value.
    canonical = canonical_json(obj)
    if canonical != event_bytes:
        raise EncodingError(
            "event is not RFC 8785 canonical", expected=canonical, actual=event_bytes
        )
    return obj


def _event_id_of(event_bytes: bytes, stable: bool = False) -> str:
    # SPEC §4.4: the ID is computed from the event as parsed back from its canonical bytes,
    # so builder and verifiers hash the same value (1.0 and 1 are both "1" on the wire).
    # SPEC §4.9: bytes this process made from a JSON object on the fast path (``stable``) are
    # canonical by construction; parsing them back is all parse_event_bytes would do to them.
    obj: Any = None
    if stable and _fast_loads is not None:
        try:
            obj = _fast_loads(event_bytes)
        except (ValueError, RecursionError):
            obj = None
    if type(obj) is not dict:  # not stable (or not what decode_wire made): the full check
        obj = parse_event_bytes(event_bytes)
    eid: str = event_hash(obj)
    return eid


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One event of a capture, with what it needs to verify alone.

    Attributes:
        index: Its leaf index in the capture's events tree.
        event_id: Its CBV 2.0 event hash ID.
        event_bytes: Its RFC 8785 canonical bytes (the exact bytes the leaf binds).
        path: Its RFC 9162 inclusion proof to ``events_root``.
    """

    index: int
    event_id: str
    event_bytes: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SignedCapture:
    """A signed capture with its events.

    Attributes:
        payload_bytes: The exact signed payload bytes.
        signature: The Ed25519 signature over ``pae(CAPTURE_PAYLOAD_TYPE, payload_bytes)``.
        payload: The parsed payload.
        events: The events in leaf order.
    """

    payload_bytes: bytes
    signature: bytes
    payload: CapturePayload
    events: tuple[CapturedEvent, ...]

    @property
    def capture_id(self) -> str:
        """Hex SHA-256 of the payload bytes."""
        return capture_id(self.payload_bytes)

    def paths_b64(self) -> list[list[str]]:
        """Every event's inclusion path, each hash in standard base64 (as leaves store it).

        The same as ``[[b64encode(h) for h in e.path] for e in self.events]``, but each node
        of the tree is encoded once: a capture of n events has about 2n distinct path hashes
        and n·log2(n) path entries.

        Returns:
            One list per event, in leaf order.
        """
        memo: dict[bytes, str] = {}
        out: list[list[str]] = []
        for e in self.events:
            encoded: list[str] = []
            for h in e.path:
                text = memo.get(h)
                if text is None:
                    text = memo[h] = b64encode(h)
                encoded.append(text)
            out.append(encoded)
        return out


@dataclass(frozen=True, slots=True)
class WireCapture:
    """A capture decoded from its wire form (SPEC §4.9); nothing is verified yet.

    Made by :func:`decode_wire`, verified by :func:`verify_wire_capture`.

    Attributes:
        payload_bytes: The payload bytes as sent (unverified).
        signature: The signature as sent.
        event_bytes: Each event's canonical bytes, in leaf order.
        events: The wire event objects themselves, in leaf order.
    """

    payload_bytes: bytes
    signature: bytes
    event_bytes: tuple[bytes, ...]
    events: tuple[dict[str, Any], ...]
    # Per event: its bytes came from canonical_json's fast path, so they are canonical by
    # construction (ledger.canonical.canonical_json_stable). Not an __init__ argument: only
    # decode_wire sets it, so a WireCapture built by hand or by dataclasses.replace (which
    # leaves init=False fields at their default) gets every check.
    _stable: tuple[bool, ...] = field(default=(), init=False, repr=False, compare=False)


def _tree(
    event_bytes_list: Sequence[bytes], stable: Sequence[bool] = ()
) -> tuple[str, tuple[CapturedEvent, ...]]:
    """Events root (hex) and the captured events with their paths."""
    if stable and len(stable) == len(event_bytes_list):
        ids = [_event_id_of(b, s) for b, s in zip(event_bytes_list, stable, strict=True)]
    else:
        ids = [_event_id_of(b) for b in event_bytes_list]
    leaves = [leaf_hash(event_leaf(i, b)) for i, b in zip(ids, event_bytes_list, strict=True)]
    root, paths = _root_and_paths(leaves)
    events = tuple(
        CapturedEvent(index=i, event_id=eid, event_bytes=b, path=tuple(path))
        for i, (eid, b, path) in enumerate(zip(ids, event_bytes_list, paths, strict=True))
    )
    return root.hex(), events


def _root_and_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The RFC 9162 root over ``leaves`` and every leaf's inclusion path, in one pass.

    Same values as :class:`ledger.merkle.MemoryHashStore` (root, then ``inclusion_proof(i,
    n)`` for each leaf; a differential test checks it), without one O(log n) proof walk per
    leaf: each interior node is hashed once and handed to every leaf below its sibling.

    Built level by level, bottom-up: pairing nodes (2k, 2k+1) and carrying an odd last node up
    unhashed gives exactly RFC 9162's split at the largest power of two below the width (the
    left subtree is always complete), without a recursive call per node.
    """
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT, []
    paths: list[list[bytes]] = [[] for _ in range(n)]
    level = list(leaves)
    width = 1  # leaves under each node of this level (the last node may have fewer)
    while len(level) > 1:
        up: list[bytes] = []
        for j in range(0, len(level) - 1, 2):
            left, right = level[j], level[j + 1]
            lo = j * width
            mid = lo + width
            # Paths are listed from the leaf upward: the deeper siblings were appended first.
            for path in paths[lo:mid]:
                path.append(right)
            for path in paths[mid : mid + width]:
                path.append(left)
            up.append(node_hash(left, right))
        if len(level) % 2:
            up.append(level[-1])  # no sibling at this level: carried up as is
        level = up
        width *= 2
    return level[0], paths


def build_capture(
    key: PrivateKey,
    *,
    producer: str,
    seq: int,
    prev: str | None,
    events: Sequence[Mapping[str, Any]],
    created: str,
    key_id_hex: str | None = None,
) -> SignedCapture:
    """Build and sign a capture over a batch of events (SPEC §4.5).

    Args:
        key: The producer's signing key.
        producer: The producer name (the key's C2SP name).
        seq: The producer's next capture number (0 for its first).
        prev: :func:`capture_id` of the producer's previous capture, ``None`` for seq 0.
        events: EPCIS 2.0 event objects, in the order they become leaves.
        created: RFC 3339 UTC time (the caller's clock; the core has none).
        key_id_hex: Optionally, the key ID the caller registered; it must equal the one
            derived from ``producer`` and the key, which is always what gets signed.

    Returns:
        The signed capture with every event's path.

    Raises:
        EncodingError: No events, an event that is not a JSON object, a bad field, or a
            ``key_id_hex`` that does not match the key.
        CanonicalizationError: An event cannot be put in canonical form.
    """
    if not events:
        raise EncodingError("a capture needs at least one event", expected=">= 1", actual=0)
    if len(events) > MAX_EVENTS:
        raise EncodingError("too many events", expected=f"<= {MAX_EVENTS}", actual=len(events))
    event_bytes_list: list[bytes] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, Mapping):
            raise EncodingError(f"event {i} is not a JSON object", actual=type(ev).__name__)
        event_bytes_list.append(canonical_json(ev if type(ev) is dict else dict(ev)))
    derived = key_id(_check_name(producer), key.public_key.raw).hex()
    if key_id_hex is not None and key_id_hex != derived:
        raise EncodingError(
            "key_id does not match the producer name and key", expected=derived, actual=key_id_hex
        )
    root, captured = _tree(event_bytes_list)
    payload = CapturePayload(
        producer=producer,
        key_id=derived,
        seq=seq,
        prev=prev,
        events_root=root,
        count=len(captured),
        created=created,
    )
    payload_bytes = payload.to_bytes()
    signature = key.sign(pae(CAPTURE_PAYLOAD_TYPE, payload_bytes))
    return SignedCapture(payload_bytes, signature, payload, captured)


# --------------------------------------------------------------------------- verification


def verify_capture(payload_bytes: bytes, signature: bytes, public_key: PublicKey) -> CapturePayload:
    """Verify a capture's signature and parse its payload (SPEC §4.6).

    Args:
        payload_bytes: The exact payload bytes.
        signature: The 64-byte Ed25519 signature.
        public_key: The producer key to check against.

    Returns:
        The verified payload.

    Raises:
        SignatureError: The signature does not verify, or the payload names another key.
        EncodingError: The payload is malformed or not canonical.
    """
    if not isinstance(payload_bytes, bytes):
        raise EncodingError("payload must be bytes", actual=type(payload_bytes).__name__)
    # SPEC §4.6 step 1: authenticate the bytes before parsing them.
    public_key.verify(signature, pae(CAPTURE_PAYLOAD_TYPE, payload_bytes))
    # SPEC §4.6 step 2: strict parse, canonical bytes only.
    payload = CapturePayload.from_bytes(payload_bytes)
    # SPEC §4.6 step 3: the payload must name the key that signed it.
    expected = key_id(payload.producer, public_key.raw).hex()
    if payload.key_id != expected:
        raise SignatureError(
            "payload key_id is not the key ID of the verifying key under the producer name",
            expected=expected,
            actual=payload.key_id,
        )
    return payload


def verify_captured_event(
    payload: CapturePayload,
    event_bytes: bytes,
    event_id: str,
    index: int,
    path: Sequence[bytes],
) -> None:
    """Verify one event alone against a verified payload (SPEC §4.7).

    Args:
        payload: A payload returned by :func:`verify_capture`.
        event_bytes: The event's canonical bytes.
        event_id: The claimed CBV 2.0 event hash ID.
        index: The event's leaf index.
        path: Its inclusion proof to ``payload.events_root``.

    Raises:
        EncodingError: The event bytes are not a canonical JSON object.
        HashMismatchError: The event ID recomputed from the bytes differs from ``event_id``.
        ProofError: The index is out of range or the path does not lead to ``events_root``.
    """
    # SPEC §4.7 step 1: the index must name a leaf of this capture.
    if type(index) is not int or not 0 <= index < payload.count:
        raise ProofError(
            "event index outside the capture", expected=f"0..{payload.count - 1}", actual=index
        )
    # SPEC §4.7 steps 2-3: canonical bytes, and the ID recomputed from them.
    actual = _event_id_of(event_bytes)
    if actual != event_id:
        raise HashMismatchError(
            "CBV 2.0 event hash differs from the claimed event ID", expected=event_id, actual=actual
        )
    # SPEC §4.7 step 4: the leaf binds ID and exact bytes; its path must reach the root.
    leaf = leaf_hash(event_leaf(event_id, event_bytes))
    verify_inclusion(leaf, index, payload.count, list(path), bytes.fromhex(payload.events_root))


def verify_signed_capture(
    payload_bytes: bytes,
    signature: bytes,
    events: Sequence[bytes],
    public_key: PublicKey,
) -> SignedCapture:
    """Verify a whole capture as received and compute every event's path (SPEC §4.6).

    Args:
        payload_bytes: The exact payload bytes.
        signature: The Ed25519 signature.
        events: Each event's canonical bytes, in leaf order (see :func:`from_wire`).
        public_key: The producer key.

    Returns:
        The verified capture, with IDs and paths for every event.

    Raises:
        SignatureError: Bad signature or key ID.
        EncodingError: Malformed payload or event.
        ProofError: The number of events differs from the signed count.
        HashMismatchError: The events' Merkle root differs from the signed ``events_root``.
    """
    return _verify_events(payload_bytes, signature, list(events), (), public_key)


def verify_wire_capture(wire: WireCapture, public_key: PublicKey) -> SignedCapture:
    """Verify a capture decoded by :func:`decode_wire` (SPEC §4.6, §4.9).

    The same checks, results and errors as ``verify_signed_capture(wire.payload_bytes,
    wire.signature, list(wire.event_bytes), public_key)``; event bytes that
    :func:`decode_wire` made on the canonical fast path are not re-serialised to be checked
    canonical (they are by construction, SPEC §4.9).

    Args:
        wire: The decoded capture.
        public_key: The producer key.

    Returns:
        The verified capture, with IDs and paths for every event.

    Raises:
        SignatureError: Bad signature or key ID.
        EncodingError: Malformed payload or event.
        ProofError: The number of events differs from the signed count.
        HashMismatchError: The events' Merkle root differs from the signed ``events_root``.
    """
    return _verify_events(
        wire.payload_bytes, wire.signature, list(wire.event_bytes), wire._stable, public_key
    )


def _verify_events(
    payload_bytes: bytes,
    signature: bytes,
    events: list[bytes],
    stable: Sequence[bool],
    public_key: PublicKey,
) -> SignedCapture:
    # SPEC §4.6 steps 1-3.
    payload = verify_capture(payload_bytes, signature, public_key)
    # SPEC §4.6 step 4: as many events as were signed (none dropped, none added).
    if len(events) != payload.count:
        raise ProofError(
            "number of events differs from the signed count",
            expected=payload.count,
            actual=len(events),
        )
    # SPEC §4.6 step 5: recompute every leaf from the bytes and compare the root.
    root, captured = _tree(events, stable)
    if root != payload.events_root:
        raise HashMismatchError(
            "events do not hash to the signed events_root",
            expected=payload.events_root,
            actual=root,
        )
    return SignedCapture(payload_bytes, signature, payload, captured)


def verify_chain(
    prev_payload: CapturePayload | None,
    prev_id: str | None,
    payload: CapturePayload,
) -> None:
    """Check that ``payload`` directly follows the producer's previous capture (SPEC §4.8).

    Args:
        prev_payload: The producer's latest accepted payload, ``None`` if it has none.
        prev_id: :func:`capture_id` of that payload's bytes; derived from ``prev_payload``
            when ``None`` (payload bytes are canonical, so the derivation is exact).
        payload: The new payload.

    Raises:
        ChainError: A gap, a reorder, a fork (same seq again), a wrong ``prev``, or another
            producer's capture; ``expected``/``actual`` name the differing values.
    """
    if prev_payload is None:
        # SPEC §4.8 step 1: a first capture has seq 0 and no prev.
        if prev_id is not None:
            raise ChainError("a previous capture ID was given without its payload", actual=prev_id)
        if payload.seq != 0:
            raise ChainError(
                "first capture of a producer must have seq 0", expected=0, actual=payload.seq
            )
        if payload.prev is not None:
            raise ChainError(
                "capture with seq 0 must have prev null", expected=None, actual=payload.prev
            )
        return
    # SPEC §4.8 step 2: same producer.
    if payload.producer != prev_payload.producer:
        raise ChainError(
            "captures belong to different producers",
            expected=prev_payload.producer,
            actual=payload.producer,
        )
    # SPEC §4.8 step 3: seq is contiguous (catches gaps, reorders and forks of one seq).
    if payload.seq != prev_payload.seq + 1:
        raise ChainError(
            "producer seq is not contiguous", expected=prev_payload.seq + 1, actual=payload.seq
        )
    # SPEC §4.8 step 4: prev names the previous capture exactly.
    derived = capture_id(prev_payload.to_bytes())
    if prev_id is not None and prev_id != derived:
        raise ChainError(
            "previous capture ID does not name the previous payload",
            expected=derived,
            actual=prev_id,
        )
    if payload.prev != derived:
        raise ChainError(
            "prev does not name the producer's previous capture",
            expected=derived,
            actual=payload.prev,
        )


# --------------------------------------------------------------------------- wire form


def to_wire(signed: SignedCapture) -> dict[str, Any]:
    """The JSON wire form of a signed capture (SPEC §4.9).

    Args:
        signed: The capture.

    Returns:
        ``{"payload": base64, "signature": base64, "events": [event objects in leaf order]}``.
    """
    return {
        "payload": b64encode(signed.payload_bytes),
        "signature": b64encode(signed.signature),
        "events": [parse_event_bytes(e.event_bytes) for e in signed.events],
    }


def from_wire(obj: Mapping[str, Any]) -> tuple[bytes, bytes, list[bytes]]:
    """Decode the JSON wire form (SPEC §4.9); nothing is verified yet.

    Args:
        obj: The parsed JSON object.

    Returns:
        ``(payload_bytes, signature, event_bytes_list)`` where each event is re-encoded in
        canonical form, ready for :func:`verify_signed_capture`.

    Raises:
        EncodingError: Missing or unknown fields, bad base64, or events that are not objects.
        CanonicalizationError: An event cannot be put in canonical form.
    """
    wire = decode_wire(obj)
    return wire.payload_bytes, wire.signature, list(wire.event_bytes)


def decode_wire(obj: Mapping[str, Any]) -> WireCapture:
    """Decode the JSON wire form (SPEC §4.9) for :func:`verify_wire_capture`.

    The same checks and errors as :func:`from_wire`; the result also keeps the event objects
    and which event bytes are canonical by construction, so that verification need not
    re-serialise them.

    Args:
        obj: The parsed JSON object.

    Returns:
        The decoded capture (nothing verified yet).

    Raises:
        EncodingError: Missing or unknown fields, bad base64, or events that are not objects.
        CanonicalizationError: An event cannot be put in canonical form.
    """
    if not isinstance(obj, Mapping):
        raise EncodingError("signed capture must be a JSON object", actual=type(obj).__name__)
    if set(obj) != _WIRE_FIELDS:
        raise EncodingError(
            "signed capture fields", expected=sorted(_WIRE_FIELDS), actual=sorted(map(str, obj))
        )
    payload_bytes = b64decode(obj["payload"])
    signature = b64decode(obj["signature"])
    events = obj["events"]
    if not isinstance(events, list):
        raise EncodingError("events must be a JSON array", actual=type(events).__name__)
    out: list[bytes] = []
    stable: list[bool] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise EncodingError(f"events[{i}] must be a JSON object", actual=type(ev).__name__)
        data, ok = canonical_json_stable(ev)
        out.append(data)
        stable.append(ok)
    wire = WireCapture(payload_bytes, signature, tuple(out), tuple(events))
    object.__setattr__(wire, "_stable", tuple(stable))  # frozen: set once, here only
    return wire
