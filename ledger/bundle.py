"""Offline proof bundles for one pack, and C2SP ``.tlog-proof`` files (SPEC §10.9-10.12).

A **bundle** (``yima.bundle/v1``) holds everything needed to check one pack's journey with
public keys only: the leaves of its events (its own, inherited through aggregation, upstream
lots), the registry leaves (org, key, product statements) that make their signers
verifiable, an inclusion proof for each against **one** cosigned checkpoint, and the chain
anchor if there is one::

    {"format": "yima.bundle/v1", "code": "<canonical code>",
     "checkpoint": "<signed checkpoint note, with witness cosignature lines>",
     "entries": [{"index": 12, "leaf": "<base64 leaf bytes>", "proof": ["<base64>", ...]}],
     "anchor": null | {<contracts.anchor.Anchor.to_dict() fields: "chain", "simulated",
                        "chain_id", "contract", "tx_hash", "block_number", "origin", "size",
                        "root" (hex), "index", "time", "gas_used">,
                       "consistency": ["<base64>", ...]}}

The bundle carries no keys: the verifier brings the log key, the witness keys and quorum,
and the regulator root keys (the trust chain of :class:`ledger.audit.Registry`).

A **tlog-proof** (c2sp.org/tlog-proof@v1) is the standard single-entry form; the exported
proofs put the leaf bytes in the ``extra`` line so that each file is self-contained.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ledger import lifecycle as lc
from ledger.audit import (
    EVENT_KINDS,
    Registry,
    event_bytes_of,
    gtin_of_codes,
    parse_leaf,
)
from ledger.canonical import canonical_json
from ledger.capture import CapturePayload, capture_id, verify_capture, verify_captured_event
from ledger.errors import (
    ChainError,
    EncodingError,
    EpcisValidationError,
    HashMismatchError,
    LedgerError,
    ProofError,
    SignatureError,
)
from ledger.journey import canonical_event
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.note import (
    Checkpoint,
    Verifier,
    WitnessCosignature,
    parse_checkpoint,
    parse_note,
    verify_checkpoint_witnessed,
)
from ledger.signing import b64decode

__all__ = [
    "BUNDLE_FORMAT",
    "TLOG_PROOF_HEADER",
    "Bundle",
    "BundleEntry",
    "BundleReport",
    "BundleTrust",
    "JourneyEvent",
    "TlogProof",
    "build_bundle",
    "bundle_report_lines",
    "bundle_tlog_proofs",
    "check_bundle",
    "parse_bundle",
    "parse_tlog_proof",
    "public_verdict",
    "tlog_proof",
    "verify_anchor",
    "verify_bundle",
    "verify_tlog_proof",
]

BUNDLE_FORMAT: Final = "yima.bundle/v1"
TLOG_PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"
_BUNDLE_FIELDS: Final = frozenset({"format", "code", "checkpoint", "entries", "anchor"})
_ENTRY_FIELDS: Final = frozenset({"index", "leaf", "proof"})
_ANCHOR_FIELDS: Final = frozenset({"origin", "size", "root", "consistency"})
_MAX_ENTRIES: Final = 100_000
_MAX_PROOF: Final = 64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hashes(values: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(values, list) or len(values) > _MAX_PROOF:
        raise EncodingError(f"{what} must be a list of at most {_MAX_PROOF} hashes")
    out = []
    for v in values:
        h = b64decode(v) if isinstance(v, str) else b""
        if len(h) != 32:
            raise EncodingError(f"{what}: every hash is base64 of 32 bytes", actual=v)
        out.append(h)
    return tuple(out)


def _b64field(obj: Mapping[str, Any], name: str) -> bytes:
    v = obj.get(name)
    if not isinstance(v, str):
        raise EncodingError(f"{name} must be base64", actual=v)
    return b64decode(v)


def _uint(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise EncodingError(f"{what} must be a non-negative integer", actual=value)
    return value


# --------------------------------------------------------------------------- bundle format


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One log entry of a bundle.

    Attributes:
        index: Its log index.
        leaf: The exact leaf bytes.
        proof: Its inclusion proof in the bundle's checkpoint.
    """

    index: int
    leaf: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed (not yet verified) bundle.

    Attributes:
        code: The pack's canonical code.
        checkpoint: The signed checkpoint note bytes.
        entries: Entries in increasing index order.
        anchor: The anchor object, or None.
    """

    code: str
    checkpoint: bytes
    entries: tuple[BundleEntry, ...]
    anchor: Mapping[str, Any] | None


def build_bundle(
    code: str,
    checkpoint_note: bytes | str,
    entries: Iterable[tuple[int, bytes, Sequence[bytes]]],
    anchor: Mapping[str, Any] | None = None,
) -> bytes:
    """Assemble a bundle from plain values (what ``GET /v1/items/{code}/bundle`` returns).

    Args:
        code: The pack's canonical code.
        checkpoint_note: The signed checkpoint every proof is against (with cosignatures).
        entries: ``(index, leaf bytes, inclusion proof)``; order does not matter, duplicates
            are dropped.
        anchor: The anchor object (see the module docstring), or None.

    Returns:
        The bundle as RFC 8785 canonical JSON bytes.

    Raises:
        EncodingError: Two different leaves for one index, or too many entries.
    """
    note = (
        checkpoint_note.decode("utf-8") if isinstance(checkpoint_note, bytes) else checkpoint_note
    )
    by_index: dict[int, tuple[bytes, Sequence[bytes]]] = {}
    for index, leaf, proof in entries:
        seen = by_index.get(index)
        if seen is not None and seen[0] != leaf:
            raise EncodingError(f"two different leaves for index {index}")
        by_index[index] = (leaf, proof)
    if len(by_index) > _MAX_ENTRIES:
        raise EncodingError("too many entries", expected=f"<= {_MAX_ENTRIES}", actual=len(by_index))
    return canonical_json(
        {
            "format": BUNDLE_FORMAT,
            "code": code,
            "checkpoint": note,
            "entries": [
                {"index": i, "leaf": _b64(leaf), "proof": [_b64(h) for h in proof]}
                for i, (leaf, proof) in sorted(by_index.items())
            ],
            "anchor": dict(anchor) if anchor is not None else None,
        }
    )


def parse_bundle(data: bytes | str | Mapping[str, Any]) -> Bundle:
    """Parse a bundle strictly (SPEC §10.10 step 1); nothing is verified yet.

    Args:
        data: The bundle JSON (bytes, text or already parsed).

    Returns:
        The bundle.

    Raises:
        EncodingError: Not JSON, unknown format, missing or unknown fields, bad base64,
            entries not in strictly increasing index order.
    """
    if isinstance(data, Mapping):
        obj: Any = data
    else:
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise EncodingError(f"bundle is not JSON: {e}") from e
    if not isinstance(obj, dict) or set(obj) != _BUNDLE_FIELDS:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise EncodingError("bundle fields", expected=sorted(_BUNDLE_FIELDS), actual=got)
    if obj["format"] != BUNDLE_FORMAT:
        raise EncodingError("unknown bundle format", expected=BUNDLE_FORMAT, actual=obj["format"])
    code, note = obj["code"], obj["checkpoint"]
    if not isinstance(code, str) or not code or not isinstance(note, str):
        raise EncodingError("bundle code and checkpoint must be strings")
    raw_entries = obj["entries"]
    if not isinstance(raw_entries, list) or len(raw_entries) > _MAX_ENTRIES:
        raise EncodingError("bundle entries must be a list")
    entries: list[BundleEntry] = []
    for n, item in enumerate(raw_entries):
        if not isinstance(item, dict) or set(item) != _ENTRY_FIELDS:
            raise EncodingError(f"entries[{n}] fields", expected=sorted(_ENTRY_FIELDS))
        index = _uint(item["index"], f"entries[{n}].index")
        if entries and index <= entries[-1].index:
            raise EncodingError("entries must be in strictly increasing index order", actual=index)
        if not isinstance(item["leaf"], str):
            raise EncodingError(f"entries[{n}].leaf must be base64")
        entries.append(
            BundleEntry(
                index, b64decode(item["leaf"]), _hashes(item["proof"], f"entries[{n}].proof")
            )
        )
    anchor = obj["anchor"]
    if anchor is not None and not isinstance(anchor, dict):
        raise EncodingError("anchor must be an object or null")
    return Bundle(code, note.encode("utf-8"), tuple(entries), anchor)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """A verified event of the journey.

    Attributes:
        index: Log index.
        event_id: CBV 2.0 event ID (recomputed from the bytes).
        event: The event object as signed.
        org: The organisation whose key signed it.
        producer: The producer key name.
        record_time: The log's record time.
        outcome: The logged outcome (``accepted`` or ``alert``).
        alerts: The logged alert kinds.
    """

    index: int
    event_id: str
    event: Mapping[str, Any]
    org: str
    producer: str
    record_time: str
    outcome: str
    alerts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BundleReport:
    """The result of verifying a bundle.

    Attributes:
        code: The pack's code.
        checkpoint: The verified checkpoint.
        cosignatures: The witness cosignatures that verified.
        entries: Number of entries verified (all of them).
        registry: Number of registry statements verified.
        events: The verified journey events, in log order.
        state: The pack's state after replaying the journey (None: never commissioned).
        verdict: What the lifecycle rules conclude for the pack at ``at``.
        alerts: Alerts the replay raised.
        anchor: The anchor, checked offline against the checkpoint, or None.
        at: The time the verdict is for.
        self_registered_keys: Key statements in the bundle accepted on proof of possession
            alone (a device's self-registration, SPEC §10.4 step 3b), not attested by a
            regulator key.
    """

    code: str
    checkpoint: Checkpoint
    cosignatures: tuple[WitnessCosignature, ...]
    entries: int
    registry: int
    events: tuple[JourneyEvent, ...]
    state: lc.ItemState | None
    verdict: lc.Verdict
    alerts: tuple[lc.Alert, ...]
    anchor: Mapping[str, Any] | None
    at: str
    self_registered_keys: int = 0


def _at_entry(index: int, e: LedgerError) -> LedgerError:
    """The same error class, its message prefixed with the entry index."""
    msg = f"entry {index}: {e.message}"
    try:
        out = type(e)(msg, expected=e.expected, actual=e.actual)
    except TypeError:  # classes with extra required arguments keep their own message
        return e
    out.__cause__ = e
    return out


def verify_anchor(anchor: Mapping[str, Any], checkpoint: Checkpoint) -> None:
    """Check an anchor against a verified checkpoint, offline (SPEC §10.10 step 7).

    The anchor names ``(origin, size, root)`` as written on chain (the fields of
    ``contracts.anchor.Anchor.to_dict()``, root in hex); its ``consistency`` proof (base64
    hashes) shows that the cosigned checkpoint extends it. Whether the transaction really is
    on chain needs an RPC (``yima verify-bundle --rpc``, outside the core).

    Args:
        anchor: The bundle's anchor object.
        checkpoint: The verified checkpoint.

    Raises:
        EncodingError: Malformed anchor.
        ProofError: Another origin, a larger size, or a failing consistency proof.
    """
    if not set(anchor) >= _ANCHOR_FIELDS:
        raise EncodingError("anchor fields", expected=sorted(_ANCHOR_FIELDS), actual=sorted(anchor))
    if anchor["origin"] != checkpoint.origin:
        raise ProofError(
            "anchor is for another log", expected=checkpoint.origin, actual=anchor["origin"]
        )
    size = _uint(anchor["size"], "anchor.size")
    root_hex = anchor["root"]
    if (
        not isinstance(root_hex, str)
        or len(root_hex) != 64
        or any(c not in "0123456789abcdef" for c in root_hex)
    ):
        raise EncodingError("anchor.root must be 64 lower-case hex digits", actual=root_hex)
    root = bytes.fromhex(root_hex)
    if size > checkpoint.size:
        raise ProofError(
            "anchor is newer than the bundle's checkpoint",
            expected=f"<= {checkpoint.size}",
            actual=size,
        )
    verify_consistency(
        size,
        checkpoint.size,
        root,
        checkpoint.root_hash,
        list(_hashes(anchor["consistency"], "anchor.consistency")),
    )


def _lineage(code: str, events: Sequence[Mapping[str, Any]]) -> set[str]:
    """The pack, the logistic units it was packed in, and the inputs it was made from."""
    codes = {code}
    changed = True
    while changed:  # fixed point: cases in pallets, lots made from lots
        changed = False
        for ev in events:
            more: list[str] = []
            if ev.get("type") == "AggregationEvent" and isinstance(ev.get("parentID"), str):
                if codes & set(_list(ev, "childEPCs")):
                    more.append(ev["parentID"])
            elif ev.get("type") == "TransformationEvent" and codes & set(
                _list(ev, "outputEPCList")
            ):
                more += _list(ev, "inputEPCList")
            for c in more:
                if c not in codes:
                    codes.add(c)
                    changed = True
    return codes


def _list(ev: Mapping[str, Any], key: str) -> list[str]:
    v = ev.get(key)
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _restrict(ev: Mapping[str, Any], codes: set[str]) -> dict[str, Any] | None:
    """The event restricted to the lineage's codes (SPEC §10.11 step 2); None if unrelated."""
    out = dict(ev)
    touched = False
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        if key in out:
            kept = [c for c in _list(ev, key) if c in codes]
            touched = touched or bool(kept)
            out[key] = kept
    if isinstance(ev.get("parentID"), str) and ev["parentID"] in codes:
        touched = True
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        if ev.get(key):
            touched = True  # class-level (lot) events: recalls, herb lots
    return out if touched else None


def _verdict_time(cosigs: Sequence[WitnessCosignature], events: Sequence[JourneyEvent]) -> str:
    if cosigs:
        ts = max(c.timestamp for c in cosigs)
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if events:
        return events[-1].record_time
    return "1970-01-01T00:00:00Z"


def verify_bundle(
    data: bytes | str | Bundle,
    *,
    log_verifiers: Sequence[Verifier],
    witness_verifiers: Sequence[Verifier] = (),
    quorum: int = 0,
    trusted_regulators: Sequence[Verifier] = (),
    origin: str | None = None,
    at: str | None = None,
    code: str | None = None,
    require_regulator_keys: bool = False,
) -> BundleReport:
    """Verify a bundle with public keys only and replay the pack's journey (SPEC §10.10-11).

    Args:
        data: The bundle (bytes, text or parsed).
        log_verifiers: The log's keys.
        witness_verifiers: The witness keys of the policy.
        quorum: How many of them must have cosigned the checkpoint.
        trusted_regulators: Regulator root keys (the registry trust chain).
        origin: If given, the checkpoint must be for this log.
        at: RFC 3339 time of the verdict (default: the latest witness cosignature time,
            else the last event's record time) — expiry depends on it.
        code: The code the user asked about; the bundle must be for it (the bundle's own
            ``code`` is not evidence, only the question).
        require_regulator_keys: Refuse key statements signed only by the key they register
            (a device's self-registration, SPEC §10.4 step 3b): every key must be attested by
            a regulator key.

    Returns:
        The report with the verdict.

    Raises:
        EncodingError: The bundle, a leaf or a statement is malformed, or it is for another
            code than ``code``.
        NoteFormatError: The checkpoint is malformed.
        SignatureError: A log, witness, statement or capture signature does not verify, or an
            event's key is unknown, revoked or another org's.
        PolicyError: No trusted log signature, or the witness quorum is not met.
        ProofError: An inclusion proof, an event path or the anchor does not verify.
        HashMismatchError: An event's ID does not match its bytes.
        ChainError: A key statement for an unregistered org, a key registered twice, or a
            revocation of an unknown or revoked key.
    """
    b = data if isinstance(data, Bundle) else parse_bundle(data)
    if code is not None and code != b.code:
        raise EncodingError("bundle is for another code", expected=code, actual=b.code)
    # SPEC §10.10 step 2: the checkpoint, its log signature and the witness policy.
    cp, cosigs = verify_checkpoint_witnessed(
        b.checkpoint, log_verifiers, witness_verifiers, quorum, origin=origin
    )
    # SPEC §10.10 step 3: every entry is in the tree of that checkpoint.
    for e in b.entries:
        try:
            verify_inclusion(leaf_hash(e.leaf), e.index, cp.size, list(e.proof), cp.root_hash)
        except ProofError as err:
            raise _at_entry(e.index, err) from err
    registry = Registry(trusted_regulators, require_regulator_keys=require_regulator_keys)
    payloads: dict[str, CapturePayload] = {}
    events: list[JourneyEvent] = []
    n_registry = 0
    for e in b.entries:
        try:
            leaf = parse_leaf(e.leaf)
            if leaf["kind"] not in EVENT_KINDS:
                # SPEC §10.10 step 4: registry statements, in log order, by the trust chain.
                registry.apply(e.index, leaf)
                n_registry += 1
                continue
            events.append(_verify_event(e.index, leaf, registry, payloads))
        except (EncodingError, SignatureError, ProofError, HashMismatchError, ChainError) as err:
            raise _at_entry(e.index, err) from err
    # SPEC §10.10 step 7: the anchor, offline.
    if b.anchor is not None:
        verify_anchor(b.anchor, cp)
    # SPEC §10.11: replay the journey under the lifecycle rules.
    when = at or _verdict_time(cosigs, events)
    state, alerts = _replay(b.code, events, registry)
    verdict = lc.consumer_verdict(state, at=when)
    return BundleReport(
        code=b.code,
        checkpoint=cp,
        cosignatures=cosigs,
        entries=len(b.entries),
        registry=n_registry,
        events=tuple(events),
        state=state,
        verdict=verdict,
        alerts=alerts,
        anchor=b.anchor,
        at=when,
        self_registered_keys=registry.self_registered,
    )


def _verify_event(
    index: int, leaf: Mapping[str, Any], registry: Registry, payloads: dict[str, CapturePayload]
) -> JourneyEvent:
    cap = leaf.get("capture")
    event_id = leaf.get("event_id")
    org, producer, record_time = leaf.get("org"), leaf.get("producer"), leaf.get("record_time")
    if not (
        isinstance(cap, dict)
        and isinstance(event_id, str)
        and isinstance(org, str)
        and isinstance(producer, str)
        and isinstance(record_time, str)
    ):
        raise EncodingError("event leaf needs capture, event_id, org, producer, record_time")
    cid = cap.get("id")
    payload = payloads.get(cid) if isinstance(cid, str) else None
    if payload is None:
        payload_bytes = _b64field(cap, "payload")
        # SPEC §10.10 step 5: the capture signature by the producer key registered (in this
        # bundle, at a lower index) for the leaf's org, once per capture.
        head = CapturePayload.from_bytes(payload_bytes)
        key = registry.producer_key(head.producer, head.key_id, index, org)
        payload = verify_capture(payload_bytes, _b64field(cap, "signature"), key.public_key)
        if capture_id(payload_bytes) != cid:
            raise HashMismatchError("capture id is not the SHA-256 of the payload", actual=cid)
        payloads[cid] = payload
    if producer != payload.producer:
        raise SignatureError(
            "leaf producer differs from the capture's", expected=payload.producer, actual=producer
        )
    path = cap.get("path")
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise EncodingError("capture path must be a list of base64 hashes")
    try:
        hashes = [binascii.a2b_base64(p, strict_mode=True) for p in path]
    except binascii.Error as err:
        raise EncodingError(f"capture path: {err}") from err
    # SPEC §10.10 step 6: the event's ID from its bytes, and its path to the signed root.
    ev_bytes = event_bytes_of(leaf)
    position = cap.get("index")
    if type(position) is not int:
        raise EncodingError("capture index must be an integer", actual=position)
    verify_captured_event(payload, ev_bytes, event_id, position, hashes)
    alerts = leaf.get("alerts")
    kinds = (
        tuple(str(a.get("kind")) for a in alerts if isinstance(a, dict))
        if isinstance(alerts, list)
        else ()
    )
    return JourneyEvent(
        index, event_id, leaf["event"], org, producer, record_time, str(leaf.get("outcome")), kinds
    )


def _replay(
    code: str, events: Sequence[JourneyEvent], registry: Registry
) -> tuple[lc.ItemState | None, tuple[lc.Alert, ...]]:
    """SPEC §10.11: replay the journey, restricted to the pack's lineage, in log order."""
    cache: dict[str, str] = {}
    canon: list[tuple[JourneyEvent, dict[str, Any]]] = []
    for e in events:
        try:
            canon.append((e, canonical_event(e.event, cache)))
        except EncodingError:
            continue  # the service refused such events; they cannot change the pack's state
    lineage = _lineage(code, [c for _, c in canon])
    states: dict[str, lc.ItemState] = {}
    alerts: list[lc.Alert] = []
    for e, c in canon:
        ev = _restrict(c, lineage)
        if ev is None:
            continue
        try:
            out = lc.apply_event(
                ev,
                event_id=e.event_id,
                actor=registry.actor(e.org),
                record_time=e.record_time,
                states=states,
                products=registry.products,
                org_of=registry.org_of,
                gtin_of=gtin_of_codes(ev, registry.by_drug),
            )
        except EpcisValidationError:
            continue  # the service refused such events; they cannot change the pack's state
        states.update(out.updates)
        alerts.extend(out.alerts)
    return states.get(code), tuple(alerts)


# --------------------------------------------------------------------------- tlog-proof


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A c2sp.org/tlog-proof@v1 proof.

    Attributes:
        index: The entry's index.
        proof: Its inclusion proof, leaf's sibling first.
        checkpoint: The signed checkpoint note, verbatim.
        extra: Opaque, unauthenticated extra data (here: the leaf bytes), or None.
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def serialize(self) -> bytes:
        """The proof file's bytes."""
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines += [_b64(h) for h in self.proof]
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint


def tlog_proof(
    index: int, proof: Sequence[bytes], checkpoint_note: bytes, extra: bytes | None = None
) -> bytes:
    """Format a ``.tlog-proof`` (see :class:`TlogProof`).

    Args:
        index: The entry's index.
        proof: Its inclusion proof against the checkpoint.
        checkpoint_note: The signed checkpoint note.
        extra: Extra data to carry (Yima puts the leaf bytes here).

    Returns:
        The proof file's bytes.
    """
    return TlogProof(index, tuple(proof), checkpoint_note, extra).serialize()


def parse_tlog_proof(data: bytes | str) -> TlogProof:
    """Parse a c2sp.org/tlog-proof@v1 proof (SPEC §10.12 step 1).

    Args:
        data: The proof file.

    Returns:
        The parsed proof (the checkpoint is only checked to be a note here).

    Raises:
        EncodingError: Wrong header, a malformed extra, index or proof line, no empty line.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise EncodingError("tlog-proof is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise EncodingError("tlog-proof has no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise EncodingError("not a tlog-proof", expected=TLOG_PROOF_HEADER, actual=lines[0])
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = b64decode(lines[pos][6:])
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise EncodingError("tlog-proof needs an index line")
    digits = lines[pos][6:]
    if not digits.isdigit() or not digits.isascii() or (len(digits) > 1 and digits[0] == "0"):
        raise EncodingError("index must be a decimal without leading zeros", actual=digits)
    proof = _hashes(lines[pos + 1 :], "tlog-proof inclusion proof")
    parse_checkpoint(parse_note(note).text)
    return TlogProof(int(digits), proof, note.encode("utf-8"), extra)


def verify_tlog_proof(
    data: bytes | str | TlogProof,
    *,
    log_verifiers: Sequence[Verifier],
    witness_verifiers: Sequence[Verifier] = (),
    quorum: int = 0,
    origin: str | None = None,
    leaf: bytes | None = None,
) -> tuple[Checkpoint, bytes]:
    """Verify a tlog-proof (c2sp.org/tlog-proof steps 1-4; SPEC §10.12).

    Args:
        data: The proof.
        log_verifiers: The log's keys.
        witness_verifiers: Witness keys of the policy.
        quorum: Cosignatures required.
        origin: If given, the log's origin.
        leaf: The entry bytes; default: the proof's ``extra`` (it is unauthenticated, but
            step 4 proves it is the logged entry).

    Returns:
        The verified checkpoint and the leaf bytes proven included.

    Raises:
        EncodingError: Malformed proof, or no leaf given and no extra.
        SignatureError, PolicyError: The checkpoint's log or witness policy fails.
        ProofError: The inclusion proof fails.
    """
    p = data if isinstance(data, TlogProof) else parse_tlog_proof(data)
    entry = leaf if leaf is not None else p.extra
    if entry is None:
        raise EncodingError("no leaf given and the proof carries no extra data")
    # Step 1: the record hash (for Yima, the RFC 9162 leaf hash of the leaf bytes).
    h = leaf_hash(entry)
    # Steps 2-3: origin, log signature, witness cosignatures.
    cp, _ = verify_checkpoint_witnessed(
        p.checkpoint, log_verifiers, witness_verifiers, quorum, origin=origin
    )
    # Step 4: inclusion against the checkpoint root.
    verify_inclusion(h, p.index, cp.size, list(p.proof), cp.root_hash)
    return cp, entry


def bundle_tlog_proofs(data: bytes | str | Bundle) -> list[tuple[int, bytes]]:
    """Export each bundle entry as a self-contained ``.tlog-proof`` (leaf bytes in extra).

    Args:
        data: The bundle.

    Returns:
        ``(index, proof file bytes)`` per entry.
    """
    b = data if isinstance(data, Bundle) else parse_bundle(data)
    return [(e.index, tlog_proof(e.index, e.proof, b.checkpoint, e.leaf)) for e in b.entries]


# --------------------------------------------------------------------------- shared front end
# One path for every verifier of a bundle (``yima verify-bundle``, ``yima-scan verify``): trust
# from the ``/v1/log/keys`` shape plus the verifier's own regulator roots, the verification, and
# the printed report. Pure: the callers read files and talk HTTP.

#: The lifecycle verdict in the service's public vocabulary (``POST /v1/verify``, SPEC §8.7).
_PUBLIC_VERDICT: Final[Mapping[str, str]] = {
    "unknown": "unknown_code",
    "recalled": "recalled",
    "expired": "expired",
    "multiple_sales": "already_dispensed",
    "quarantined": "suspect",
    "destroyed": "suspect",
    "decommissioned": "suspect",
    "dispensed": "genuine",
    "in_supply_chain": "genuine",
}

_SELF_REGISTERED_NOTE: Final = (
    "  note: {n} device key(s) registered themselves: attested by the log operator and proof "
    "of possession only, not by a regulator (--strict-keys refuses them)"
)


def public_verdict(verdict: lc.Verdict) -> str:
    """The lifecycle verdict as ``POST /v1/verify`` names it (``genuine``, ``recalled``, …)."""
    return _PUBLIC_VERDICT.get(verdict.code, verdict.code)


@dataclass(frozen=True, slots=True)
class BundleTrust:
    """What the verifier of a bundle trusts: never taken from the bundle itself.

    Attributes:
        origin: The log's origin (None: any).
        log: The log's keys.
        witnesses: The witness keys of the policy.
        quorum: How many witnesses must have cosigned.
        regulators: Regulator root keys.
    """

    origin: str | None = None
    log: tuple[Verifier, ...] = ()
    witnesses: tuple[Verifier, ...] = ()
    quorum: int = 0
    regulators: tuple[Verifier, ...] = ()

    @classmethod
    def from_log_keys(
        cls,
        keys: Mapping[str, Any],
        *,
        log_vkeys: Sequence[str] | None = None,
        regulators: Sequence[str] = (),
    ) -> BundleTrust:
        """Trust from a ``GET /v1/log/keys`` object (or a keys file of that shape).

        Args:
            keys: ``{"origin", "log_vkey", "witnesses", "quorum"}``, optionally
                ``"regulators"`` (a keys file); missing fields mean none.
            log_vkeys: The log keys to trust instead of ``keys["log_vkey"]`` (e.g. the key a
                device pinned); None: the served one.
            regulators: Regulator root vkeys, added to ``keys["regulators"]``.

        Raises:
            EncodingError: A vkey is malformed (as :meth:`Verifier.parse_vkey`).
        """
        if log_vkeys is None:
            log_vkeys = [str(keys["log_vkey"])] if keys.get("log_vkey") else []
        origin = keys.get("origin")
        return cls(
            origin=str(origin) if origin else None,
            log=tuple(Verifier.parse_vkey(v) for v in log_vkeys),
            witnesses=tuple(Verifier.parse_vkey(str(v)) for v in keys.get("witnesses") or ()),
            quorum=int(keys.get("quorum") or 0),
            regulators=tuple(
                Verifier.parse_vkey(str(v)) for v in [*(keys.get("regulators") or ()), *regulators]
            ),
        )

    def describe(self) -> list[str]:
        """One line per trust root, for the output."""
        return [
            f"trust: log key(s) {', '.join(v.name for v in self.log) or 'none'}",
            f"trust: witnesses {self.quorum} of [{', '.join(v.name for v in self.witnesses)}]",
            f"trust: regulator roots [{', '.join(v.name for v in self.regulators)}]",
        ]


def bundle_report_lines(report: BundleReport) -> list[str]:
    """The human report of a verified bundle: checkpoint, journey, anchor, verdict."""
    cp = report.checkpoint
    lines = [f"checkpoint {cp.origin} size {cp.size} root {cp.root_hash.hex()}"]
    lines += [f"  cosigned by {c.name} at {c.timestamp}" for c in report.cosignatures]
    lines.append(f"entries {report.entries} verified ({report.registry} registry statements)")
    if report.self_registered_keys:
        lines.append(_SELF_REGISTERED_NOTE.format(n=report.self_registered_keys))
    for e in report.events:
        step = e.event.get("bizStep", e.event.get("type"))
        extra = f" alerts {','.join(e.alerts)}" if e.alerts else ""
        lines.append(f"  [{e.index}] {e.record_time} {e.org} {step}{extra}")
    if report.anchor is not None:
        lines.append(f"anchor size {report.anchor['size']} consistent with the checkpoint")
    v = report.verdict
    lines.append(f"verdict {v.code} at {report.at}: {v.headline}")
    lines += [f"  {n}" for n in v.notes]
    return lines


def check_bundle(
    data: bytes | str | Bundle,
    trust: BundleTrust,
    *,
    at: str | None = None,
    code: str | None = None,
    require_regulator_keys: bool = False,
) -> tuple[BundleReport, list[str]]:
    """Verify a bundle under ``trust`` (:func:`verify_bundle`) and render its report.

    Returns:
        The report and its lines (:func:`bundle_report_lines`).

    Raises:
        LedgerError: As :func:`verify_bundle`.
    """
    report = verify_bundle(
        data,
        log_verifiers=trust.log,
        witness_verifiers=trust.witnesses,
        quorum=trust.quorum,
        trusted_regulators=trust.regulators,
        origin=trust.origin,
        at=at,
        code=code,
        require_regulator_keys=require_regulator_keys,
    )
    return report, bundle_report_lines(report)
