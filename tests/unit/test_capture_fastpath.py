"""Decoding and verifying a wire capture in one go gives exactly what the two-step calls give.

:func:`ledger.capture.decode_wire` + :func:`~ledger.capture.verify_wire_capture` skip the
second serialisation of event bytes that ``decode_wire`` itself made on the canonical fast path
(SPEC §4.9); :func:`~ledger.capture.from_wire` + :func:`~ledger.capture.verify_signed_capture`
are the definition. Here, on generated captures and on tampered wire forms: the same verified
capture, or the same error (type and message). Also: ``SignedCapture.paths_b64`` equals one
base64 call per path hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from ledger import capture
from ledger.capture import (
    WireCapture,
    build_capture,
    decode_wire,
    from_wire,
    to_wire,
    verify_signed_capture,
    verify_wire_capture,
)
from ledger.errors import EncodingError, LedgerError
from ledger.signing import PrivateKey, b64encode

PRODUCER = "mfr.example.cn/plant7"
KEY = PrivateKey.from_seed(hashlib.sha256(b"yima capture fast path test").digest())
OTHER = PrivateKey.from_seed(hashlib.sha256(b"another producer").digest())
DIFFERENTIAL = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", fn())
    except LedgerError as exc:
        return ("error", type(exc), str(exc))


def _agree(wire: Any, key: PrivateKey = KEY) -> tuple[Any, ...]:
    public = key.public_key

    def legacy() -> Any:
        payload_bytes, signature, events = from_wire(wire)
        return verify_signed_capture(payload_bytes, signature, events, public)

    expected = _outcome(legacy)
    assert _outcome(lambda: verify_wire_capture(decode_wire(wire), public)) == expected
    decoded = _outcome(lambda: decode_wire(wire))
    if decoded[0] == "ok":
        d: WireCapture = decoded[1]
        assert (d.payload_bytes, d.signature, list(d.event_bytes)) == from_wire(wire)
        assert d.events == tuple(wire["events"])
        assert all(a is b for a, b in zip(d.events, wire["events"], strict=True))
    return expected


def _event(i: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-01-31T08:{i // 60 % 60:02d}:{i % 60:02d}.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"https://id.gs1.org/01/06901234567892/21/SN{i:06d}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "readPoint": {"id": "https://id.gs1.org/414/6901234000004"},
        **extra,
    }


json_scalars = st.one_of(  # (no null: the event hash refuses it, build_capture with it)
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([1.0, 0.5, 26.0, -0.0, 1e21]),
    st.text(max_size=6),
)
extras = st.dictionaries(
    st.sampled_from(["yima:temp", "yima:note", "yima:count", "cn:备注"]),
    st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
    max_size=3,
)


def _signed(extra_per_event: list[dict[str, Any]]) -> capture.SignedCapture:
    return build_capture(
        KEY,
        producer=PRODUCER,
        seq=0,
        prev=None,
        events=[_event(i, x) for i, x in enumerate(extra_per_event)],
        created="2026-01-31T08:00:00Z",
    )


@DIFFERENTIAL
@given(extra=st.lists(extras, min_size=1, max_size=9))
def test_generated_captures_verify_alike(extra: list[dict[str, Any]]) -> None:
    try:
        signed = _signed(extra)
    except LedgerError:  # e.g. an integral float beyond 2**53 (see the tampered cases)
        reject()
    wire = to_wire(signed)
    assert _agree(wire) == ("ok", signed)


# Changes to a wire form after signing: each must give the same answer both ways.
def _tamper(name: str, wire: dict[str, Any]) -> None:
    events = wire["events"]
    if name == "float for an equal int":  # the same bytes: still verifies (not "stable")
        events[0]["yima:n"] = 1.0
    elif name == "changed value":
        events[-1]["action"] = "ADD"
    elif name == "huge integral float":  # canonical once, refused when parsed back
        events[0]["yima:big"] = 1e16
    elif name == "non-BMP key":
        events[0]["yima:\U0001f600"] = 1
    elif name == "lone surrogate":
        events[0]["yima:x"] = "\ud800"
    elif name == "dropped event":
        events.pop()
    elif name == "duplicated event":
        events.append(events[0])
    elif name == "swapped events":
        events[0], events[-1] = events[-1], events[0]
    elif name == "not an object":
        events[0] = ["ObjectEvent"]
    elif name == "events not a list":
        wire["events"] = {"0": events[0]}
    elif name == "bad signature":
        wire["signature"] = b64encode(b"\x00" * 64)
    elif name == "bad base64":
        wire["payload"] = wire["payload"][:-2]
    elif name == "extra field":
        wire["note"] = "x"
    elif name == "nested too deep":
        deep: Any = 1
        for _ in range(80):
            deep = [deep]
        events[0]["yima:deep"] = deep


TAMPERS = [
    "float for an equal int",
    "changed value",
    "huge integral float",
    "non-BMP key",
    "lone surrogate",
    "dropped event",
    "duplicated event",
    "swapped events",
    "not an object",
    "events not a list",
    "bad signature",
    "bad base64",
    "extra field",
    "nested too deep",
]


@pytest.mark.parametrize("name", TAMPERS)
@pytest.mark.parametrize("size", [1, 2, 7])
def test_tampered_wire_forms_fail_alike(name: str, size: int) -> None:
    wire = to_wire(_signed([{} for _ in range(size)]))
    _tamper(name, wire)
    outcome = _agree(wire)
    if name == "float for an equal int" and size == 1:
        assert outcome[0] == "error"  # a new member changes the bytes: root mismatch
    if name in ("changed value", "bad signature", "lone surrogate", "not an object"):
        assert outcome[0] == "error"


def test_wrong_key_fails_alike() -> None:
    wire = to_wire(_signed([{}, {}]))
    assert _agree(wire, OTHER)[0] == "error"


def test_non_mapping_wire_fails_alike() -> None:
    for wire in (None, [], "x"):
        assert _outcome(lambda w=wire: decode_wire(w)) == _outcome(lambda w=wire: from_wire(w))


def test_stable_flags_follow_the_canonical_fast_path() -> None:
    wire = to_wire(_signed([{}, {"yima:t": 4}, {}]))
    wire["events"][1]["yima:t"] = 4.0
    decoded = decode_wire(wire)
    assert decoded._stable == (
        capture._fast_loads is not None,
        False,
        capture._fast_loads is not None,
    )
    assert verify_wire_capture(decoded, KEY.public_key) == verify_signed_capture(
        decoded.payload_bytes, decoded.signature, list(decoded.event_bytes), KEY.public_key
    )


def _forged(signed: capture.SignedCapture, event_bytes: bytes) -> WireCapture:
    """A WireCapture claiming ``event_bytes`` came from the fast path (only decode_wire may)."""
    forged = WireCapture(signed.payload_bytes, signed.signature, (event_bytes,), ({},))
    object.__setattr__(forged, "_stable", (True,))
    return forged


def test_stable_flags_cannot_be_passed_or_copied() -> None:
    signed = _signed([{"yima:a": 1, "yima:b": 2}])
    unordered = b'{"yima:b":2,"yima:a":1}'  # valid JSON, not canonical
    with pytest.raises(TypeError):
        WireCapture(signed.payload_bytes, signed.signature, (unordered,), ({},), (True,))  # type: ignore[call-arg]
    built = WireCapture(signed.payload_bytes, signed.signature, (unordered,), ({},))
    copied = dataclasses.replace(decode_wire(to_wire(signed)), event_bytes=(unordered,))
    for wire in (built, copied):
        assert wire._stable == ()
        with pytest.raises(EncodingError, match="not RFC 8785 canonical"):
            verify_wire_capture(wire, KEY.public_key)


def test_forged_stable_flag_still_raises_typed_errors() -> None:
    signed = _signed([{}])
    for junk in (b"not json", b"[1]", b'"x"', b"\xff"):
        forged = _forged(signed, junk)
        expected = _outcome(
            lambda j=junk: verify_signed_capture(
                signed.payload_bytes, signed.signature, [j], KEY.public_key
            )
        )
        assert expected[0] == "error" and issubclass(expected[1], EncodingError)
        assert _outcome(lambda f=forged: verify_wire_capture(f, KEY.public_key)) == expected


def test_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = to_wire(_signed([{}, {"yima:x": [1, "a"]}]))
    monkeypatch.setattr(capture, "_fast_loads", None)
    _agree(wire)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 33, 64, 65])
def test_paths_b64_is_one_encoding_per_hash(size: int) -> None:
    signed = _signed([{} for _ in range(size)])
    assert signed.paths_b64() == [[b64encode(h) for h in e.path] for e in signed.events]
