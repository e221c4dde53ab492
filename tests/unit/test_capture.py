"""Signed captures: one signature per batch, each event verifiable alone (SPEC §4)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from ledger.canonical import canonical_json
from ledger.capture import (
    CAPTURE_PAYLOAD_TYPE,
    CAPTURE_TYPE,
    CapturePayload,
    SignedCapture,
    build_capture,
    capture_id,
    event_leaf,
    from_wire,
    parse_event_bytes,
    to_wire,
    verify_capture,
    verify_captured_event,
    verify_chain,
    verify_signed_capture,
)
from ledger.errors import (
    CanonicalizationError,
    ChainError,
    EncodingError,
    HashMismatchError,
    ProofError,
    SignatureError,
)
from ledger.eventhash import event_hash
from ledger.merkle import leaf_hash
from ledger.signing import PrivateKey, b64encode, key_id, pae

PRODUCER = "mfr.example.cn/plant7"
SEED = hashlib.sha256(b"yima test producer").digest()
KEY = PrivateKey.from_seed(SEED)
CREATED = "2026-01-31T08:00:00Z"


def make_event(i: int) -> dict[str, Any]:
    """A valid EPCIS 2.0 ObjectEvent, distinct per i (fixed times: deterministic)."""
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-01-31T08:{i // 60 % 60:02d}:{i % 60:02d}.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"https://id.gs1.org/01/06901234567892/21/SN{i:06d}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "https://id.gs1.org/414/6901234000004"},
        "bizLocation": {"id": "https://id.gs1.org/414/6901234000004"},
    }


def build(n: int = 5, *, seq: int = 0, prev: str | None = None, **kw: Any) -> SignedCapture:
    events = kw.pop("events", None) or [make_event(i) for i in range(n)]
    return build_capture(
        KEY, producer=PRODUCER, seq=seq, prev=prev, events=events, created=CREATED, **kw
    )


def flip(data: bytes, i: int) -> bytes:
    b = bytearray(data)
    b[i] ^= 1
    return bytes(b)


# --------------------------------------------------------------------------- round trip


def test_round_trip_payload_fields() -> None:
    cap = build(3)
    p = cap.payload
    assert p.producer == PRODUCER
    assert p.key_id == key_id(PRODUCER, KEY.public_key.raw).hex()
    assert (p.seq, p.prev, p.count, p.created) == (0, None, 3, CREATED)
    assert cap.payload_bytes == canonical_json(p.to_json())
    assert json.loads(cap.payload_bytes)["type"] == CAPTURE_TYPE
    assert list(json.loads(cap.payload_bytes)) == sorted(json.loads(cap.payload_bytes))
    KEY.public_key.verify(cap.signature, pae(CAPTURE_PAYLOAD_TYPE, cap.payload_bytes))
    assert verify_capture(cap.payload_bytes, cap.signature, KEY.public_key) == p
    assert CapturePayload.from_bytes(cap.payload_bytes) == p
    assert cap.capture_id == capture_id(cap.payload_bytes)
    assert cap.capture_id == hashlib.sha256(cap.payload_bytes).hexdigest()


def test_build_is_deterministic() -> None:
    a, b = build(4), build(4)
    assert a == b
    assert a.signature == b.signature


def test_event_ids_and_leaves() -> None:
    cap = build(3)
    for i, ev in enumerate(cap.events):
        assert ev.index == i
        assert ev.event_bytes == canonical_json(make_event(i))
        assert ev.event_id == event_hash(make_event(i))
        assert ev.event_id.startswith("ni:///sha-256;")
    leaf = event_leaf(cap.events[0].event_id, cap.events[0].event_bytes)
    assert leaf == (
        cap.events[0].event_id.encode()
        + b"\n"
        + hashlib.sha256(cap.events[0].event_bytes).hexdigest().encode()
    )


def test_one_signature_covers_a_batch_of_1000_and_each_event_verifies_alone() -> None:
    cap = build(1000)
    assert cap.payload.count == 1000
    payload = verify_capture(cap.payload_bytes, cap.signature, KEY.public_key)
    for ev in cap.events:
        assert len(ev.path) <= 10
        verify_captured_event(payload, ev.event_bytes, ev.event_id, ev.index, ev.path)
    again = verify_signed_capture(
        cap.payload_bytes, cap.signature, [e.event_bytes for e in cap.events], KEY.public_key
    )
    assert again == cap


def test_single_event_capture() -> None:
    cap = build(1)
    assert cap.events[0].path == ()
    verify_captured_event(cap.payload, cap.events[0].event_bytes, cap.events[0].event_id, 0, ())


def test_wire_round_trip() -> None:
    cap = build(7)
    wire = to_wire(cap)
    assert set(wire) == {"payload", "signature", "events"}
    assert wire["events"] == [make_event(i) for i in range(7)]
    # Survives real JSON text transport.
    payload_bytes, sig, events = from_wire(json.loads(json.dumps(wire, ensure_ascii=False)))
    assert (payload_bytes, sig) == (cap.payload_bytes, cap.signature)
    assert events == [e.event_bytes for e in cap.events]
    assert verify_signed_capture(payload_bytes, sig, events, KEY.public_key) == cap


def test_events_are_parsed_back_before_hashing() -> None:
    # A float that is an integer is "1" on the wire: the ID is computed from what verifiers see.
    ev = make_event(0) | {"ext:weight": 1.0}
    cap = build(events=[ev])
    assert b'"ext:weight":1,' in cap.events[0].event_bytes
    assert cap.events[0].event_id == event_hash(json.loads(cap.events[0].event_bytes))
    verify_signed_capture(
        cap.payload_bytes, cap.signature, [cap.events[0].event_bytes], KEY.public_key
    )


# --------------------------------------------------------------------------- tampering


def test_flip_any_payload_bit_fails_signature() -> None:
    cap = build(2)
    for i in range(0, len(cap.payload_bytes), 7):
        with pytest.raises(SignatureError):
            verify_capture(flip(cap.payload_bytes, i), cap.signature, KEY.public_key)


def test_flip_signature_bit_fails() -> None:
    cap = build(2)
    for i in (0, 31, 32, 63):
        with pytest.raises(SignatureError):
            verify_capture(cap.payload_bytes, flip(cap.signature, i), KEY.public_key)


def test_wrong_key_fails() -> None:
    cap = build(2)
    other = PrivateKey.from_seed(bytes(32)).public_key
    with pytest.raises(SignatureError):
        verify_capture(cap.payload_bytes, cap.signature, other)


def test_payload_naming_another_key_id_fails_with_expected_actual() -> None:
    # Signed correctly, but the payload claims a key ID other than the signer's.
    p = replace(build(2).payload, key_id="00000000")
    pb = p.to_bytes()
    sig = KEY.sign(pae(CAPTURE_PAYLOAD_TYPE, pb))
    with pytest.raises(SignatureError) as info:
        verify_capture(pb, sig, KEY.public_key)
    assert info.value.expected == key_id(PRODUCER, KEY.public_key.raw).hex()
    assert info.value.actual == "00000000"


def test_signature_is_bound_to_payload_type() -> None:
    cap = build(2)
    bare = KEY.sign(cap.payload_bytes)  # no PAE: must not verify as a capture
    with pytest.raises(SignatureError):
        verify_capture(cap.payload_bytes, bare, KEY.public_key)


def test_tampered_event_field_fails_with_expected_and_actual() -> None:
    cap = build(4)
    ev = cap.events[2]
    changed = json.loads(ev.event_bytes)
    changed["disposition"] = "dispensed"
    tampered = canonical_json(changed)
    with pytest.raises(HashMismatchError) as info:
        verify_captured_event(cap.payload, tampered, ev.event_id, ev.index, ev.path)
    assert info.value.expected == ev.event_id
    assert info.value.actual == event_hash(changed)
    # Claiming the new event's true ID instead: the path no longer reaches the signed root.
    with pytest.raises(ProofError) as pinfo:
        verify_captured_event(cap.payload, tampered, event_hash(changed), ev.index, ev.path)
    assert pinfo.value.expected == cap.payload.events_root
    # The whole-batch check names the signed root and the recomputed one.
    events = [e.event_bytes for e in cap.events]
    events[2] = tampered
    with pytest.raises(HashMismatchError) as binfo:
        verify_signed_capture(cap.payload_bytes, cap.signature, events, KEY.public_key)
    assert binfo.value.expected == cap.payload.events_root
    assert binfo.value.actual != cap.payload.events_root


def test_change_to_a_field_the_cbv_hash_ignores_is_still_caught() -> None:
    # recordTime is not part of the CBV 2.0 event hash: the ID stays, the bytes change,
    # and the leaf (which binds the bytes) no longer matches.
    cap = build(3)
    ev = cap.events[1]
    changed = json.loads(ev.event_bytes) | {"recordTime": "2026-02-01T00:00:00.000Z"}
    assert event_hash(changed) == ev.event_id
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, canonical_json(changed), ev.event_id, 1, ev.path)


def test_swapping_two_events_fails() -> None:
    cap = build(4)
    a, b = cap.events[0], cap.events[1]
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, b.event_bytes, b.event_id, a.index, a.path)
    events = [e.event_bytes for e in cap.events]
    events[0], events[1] = events[1], events[0]
    with pytest.raises(HashMismatchError) as info:
        verify_signed_capture(cap.payload_bytes, cap.signature, events, KEY.public_key)
    assert info.value.expected == cap.payload.events_root


def test_wrong_index_fails() -> None:
    cap = build(5)
    ev = cap.events[2]
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, ev.event_bytes, ev.event_id, 3, ev.path)
    with pytest.raises(ProofError) as info:
        verify_captured_event(cap.payload, ev.event_bytes, ev.event_id, 5, ev.path)
    assert info.value.actual == 5
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, ev.event_bytes, ev.event_id, -1, ev.path)


def test_tampered_path_fails() -> None:
    cap = build(5)
    ev = cap.events[2]
    bad = (flip(ev.path[0], 0), *ev.path[1:])
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, ev.event_bytes, ev.event_id, 2, bad)
    with pytest.raises(ProofError):
        verify_captured_event(cap.payload, ev.event_bytes, ev.event_id, 2, ev.path[:-1])


def test_dropped_or_added_event_fails_count() -> None:
    cap = build(4)
    events = [e.event_bytes for e in cap.events]
    with pytest.raises(ProofError) as info:
        verify_signed_capture(cap.payload_bytes, cap.signature, events[:3], KEY.public_key)
    assert (info.value.expected, info.value.actual) == (4, 3)
    with pytest.raises(ProofError):
        verify_signed_capture(
            cap.payload_bytes, cap.signature, [*events, events[0]], KEY.public_key
        )


def test_non_canonical_event_bytes_rejected() -> None:
    cap = build(2)
    ev = cap.events[0]
    spaced = json.dumps(json.loads(ev.event_bytes)).encode()
    with pytest.raises(EncodingError) as info:
        verify_captured_event(cap.payload, spaced, ev.event_id, 0, ev.path)
    assert info.value.expected == ev.event_bytes
    for bad in (b"[1]", b"not json", b'{"a":1,"a":1}', b"\xff"):
        with pytest.raises(EncodingError):
            parse_event_bytes(bad)


# --------------------------------------------------------------------------- payload parsing


def _payload_obj() -> dict[str, Any]:
    return build(2).payload.to_json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", -1),
        ("seq", "0"),
        ("seq", True),
        ("seq", 1.5),
        ("count", 0),
        ("count", False),
        ("key_id", "530D903A"),
        ("key_id", "530d90"),
        ("prev", "ab"),
        ("prev", 0),
        ("events_root", "00" * 31),
        ("producer", ""),
        ("producer", "a b"),
        ("producer", "a+b"),
        ("created", "2026-01-31T08:00:00+08:00"),
        ("created", "2026-02-30T08:00:00Z"),
        ("created", "2026-01-31 08:00:00Z"),
        ("type", "yima.capture/v2"),
    ],
)
def test_from_bytes_rejects_bad_fields(field: str, value: Any) -> None:
    obj = _payload_obj()
    obj[field] = value
    with pytest.raises(EncodingError):
        CapturePayload.from_bytes(canonical_json(obj))


def test_from_bytes_rejects_unknown_and_missing_fields() -> None:
    obj = _payload_obj() | {"extra": 1}
    with pytest.raises(EncodingError) as info:
        CapturePayload.from_bytes(canonical_json(obj))
    assert "extra" in info.value.actual
    obj = _payload_obj()
    del obj["count"]
    with pytest.raises(EncodingError):
        CapturePayload.from_bytes(canonical_json(obj))


def test_from_bytes_rejects_non_canonical_bytes() -> None:
    obj = _payload_obj()
    canonical = canonical_json(obj)
    for variant in (
        json.dumps(obj).encode(),  # spaces, insertion order
        canonical + b"\n",
        canonical.replace(b'"seq":0', b'"seq":0.0'),
    ):
        with pytest.raises(EncodingError):
            CapturePayload.from_bytes(variant)
    with pytest.raises(EncodingError) as info:
        CapturePayload.from_bytes(json.dumps(obj, sort_keys=True).encode())
    assert info.value.expected == canonical


def test_from_bytes_rejects_garbage() -> None:
    for bad in (b"", b"[]", b"\xff\xfe", b'{"a":NaN}', b"{" * 10, b"x" * 5000):
        with pytest.raises(EncodingError):
            CapturePayload.from_bytes(bad)
    dup = canonical_json(_payload_obj())[:-1] + b',"seq":0}'
    with pytest.raises(EncodingError):
        CapturePayload.from_bytes(dup)


def test_build_rejects_bad_input() -> None:
    with pytest.raises(EncodingError):
        build_capture(KEY, producer=PRODUCER, seq=0, prev=None, events=[], created=CREATED)
    with pytest.raises(EncodingError):
        build(2, key_id_hex="00000000")
    assert build(2, key_id_hex=key_id(PRODUCER, KEY.public_key.raw).hex()) == build(2)
    with pytest.raises(EncodingError):
        build_capture(KEY, producer=PRODUCER, seq=0, prev=None, events=[[1]], created=CREATED)  # type: ignore[list-item]
    with pytest.raises(CanonicalizationError):
        build(events=[make_event(0) | {"x": float("nan")}])
    with pytest.raises(EncodingError):
        build(2, seq=-1)
    with pytest.raises(EncodingError):
        build_capture(
            KEY, producer=PRODUCER, seq=0, prev=None, events=[make_event(0)], created="now"
        )


# --------------------------------------------------------------------------- chain


def _chain(n: int) -> list[SignedCapture]:
    caps: list[SignedCapture] = []
    prev: str | None = None
    for seq in range(n):
        cap = build(2, seq=seq, prev=prev, events=[make_event(10 * seq), make_event(10 * seq + 1)])
        caps.append(cap)
        prev = cap.capture_id
    return caps


def test_chain_accepts_contiguous_captures() -> None:
    caps = _chain(4)
    verify_chain(None, None, caps[0].payload)
    for a, b in itertools.pairwise(caps):
        verify_chain(a.payload, a.capture_id, b.payload)
        verify_chain(a.payload, None, b.payload)


def test_chain_first_capture_rules() -> None:
    caps = _chain(2)
    with pytest.raises(ChainError) as info:
        verify_chain(None, None, caps[1].payload)
    assert (info.value.expected, info.value.actual) == (0, 1)
    bad_first = replace(caps[0].payload, prev="ab" * 32)
    with pytest.raises(ChainError) as info:
        verify_chain(None, None, bad_first)
    assert (info.value.expected, info.value.actual) == (None, "ab" * 32)
    with pytest.raises(ChainError):
        verify_chain(None, caps[0].capture_id, caps[1].payload)


def test_chain_gap() -> None:
    caps = _chain(3)
    with pytest.raises(ChainError) as info:
        verify_chain(caps[0].payload, caps[0].capture_id, caps[2].payload)
    assert (info.value.expected, info.value.actual) == (1, 2)


def test_chain_reorder() -> None:
    caps = _chain(3)
    with pytest.raises(ChainError) as info:
        verify_chain(caps[2].payload, caps[2].capture_id, caps[1].payload)
    assert (info.value.expected, info.value.actual) == (3, 1)


def test_chain_fork_same_seq_different_payload() -> None:
    caps = _chain(2)
    fork = build(1, seq=1, prev=caps[0].capture_id, events=[make_event(999)])
    assert fork.payload.seq == caps[1].payload.seq and fork.payload_bytes != caps[1].payload_bytes
    verify_chain(caps[0].payload, caps[0].capture_id, fork.payload)  # each alone is fine...
    with pytest.raises(ChainError) as info:  # ...but after one is accepted, the other is not
        verify_chain(caps[1].payload, caps[1].capture_id, fork.payload)
    assert (info.value.expected, info.value.actual) == (2, 1)


def test_chain_wrong_prev() -> None:
    caps = _chain(2)
    wrong = build(2, seq=1, prev="00" * 32)
    with pytest.raises(ChainError) as info:
        verify_chain(caps[0].payload, caps[0].capture_id, wrong.payload)
    assert (info.value.expected, info.value.actual) == (caps[0].capture_id, "00" * 32)
    with pytest.raises(ChainError) as info:
        verify_chain(caps[0].payload, "11" * 32, caps[1].payload)
    assert info.value.expected == caps[0].capture_id


def test_chain_other_producer() -> None:
    caps = _chain(2)
    other_key = PrivateKey.from_seed(bytes(32))
    other = build_capture(
        other_key,
        producer="dist.example.cn",
        seq=1,
        prev=caps[0].capture_id,
        events=[make_event(5)],
        created=CREATED,
    )
    with pytest.raises(ChainError) as info:
        verify_chain(caps[0].payload, caps[0].capture_id, other.payload)
    assert (info.value.expected, info.value.actual) == (PRODUCER, "dist.example.cn")


# --------------------------------------------------------------------------- wire form errors


def test_from_wire_rejects_malformed() -> None:
    wire = to_wire(build(2))
    bad: Any
    for bad in (
        [],
        {k: v for k, v in wire.items() if k != "events"},
        wire | {"extra": 1},
        wire | {"payload": "not base64!"},
        wire | {"signature": 5},
        wire | {"events": {}},
        wire | {"events": [1]},
    ):
        with pytest.raises(EncodingError):
            from_wire(bad)


def test_wire_signature_tamper_detected() -> None:
    cap = build(2)
    wire = to_wire(cap)
    wire["signature"] = b64encode(flip(cap.signature, 5))
    payload_bytes, sig, events = from_wire(wire)
    with pytest.raises(SignatureError):
        verify_signed_capture(payload_bytes, sig, events, KEY.public_key)


def test_leaf_hash_domain_separation() -> None:
    cap = build(2)
    ev = cap.events[0]
    assert (
        leaf_hash(event_leaf(ev.event_id, ev.event_bytes))
        == hashlib.sha256(b"\x00" + event_leaf(ev.event_id, ev.event_bytes)).digest()
    )
