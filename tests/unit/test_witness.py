"""The pure tlog-witness state machine (docs/spec/10-witness-bundle-audit.md §10.1-10.3)."""

from __future__ import annotations

import hashlib

import pytest

from ledger.errors import WitnessRefusal
from ledger.merkle import EMPTY_ROOT, MemoryHashStore, leaf_hash
from ledger.note import (
    Checkpoint,
    CosignatureSigner,
    Signer,
    Verifier,
    parse_note,
    verify_checkpoint_witnessed,
)
from ledger.signing import PrivateKey
from ledger.witness import (
    WitnessState,
    check_add_checkpoint,
    cosignature_lines,
    format_add_checkpoint,
    parse_add_checkpoint,
)

ORIGIN = "yima.example/log/w"


def key(label: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(label.encode()).digest())


LOG = Signer(ORIGIN, key("log"))
OTHER_LOG = Signer(ORIGIN, key("impostor"))
WITNESS = CosignatureSigner("witness.example/w1", key("witness"))
TRUST = {ORIGIN: [LOG.verifier()]}


def tree(n: int, tag: bytes = b"") -> MemoryHashStore:
    s = MemoryHashStore()
    s.append([leaf_hash(tag + i.to_bytes(4, "big")) for i in range(n)])
    return s


def note(store: MemoryHashStore, size: int, signer: Signer = LOG) -> bytes:
    return Checkpoint(ORIGIN, size, store.root(size)).sign([signer]).serialize()


def request(store: MemoryHashStore, old: int, new: int, signer: Signer = LOG) -> bytes:
    proof = store.consistency_proof(old, new) if old > 0 else []
    return format_add_checkpoint(old, proof, note(store, new, signer))


def refused(status: int, body: bytes, state: WitnessState | None) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as info:
        check_add_checkpoint(body, state, TRUST)
    assert info.value.status == status, str(info.value)
    return info.value


def test_first_checkpoint_then_consistent_growth() -> None:
    s = tree(20)
    state, cp = check_add_checkpoint(request(s, 0, 7), None, TRUST)
    assert (state.size, state.root) == (7, s.root(7)) and cp.size == 7
    state, cp = check_add_checkpoint(request(s, 7, 20), state, TRUST)
    assert state == WitnessState(ORIGIN, 20, s.root(20))
    # the same checkpoint again is fine (idempotent re-cosigning)
    again, _ = check_add_checkpoint(request(s, 20, 20), state, TRUST)
    assert again == state


def test_response_is_cosignature_lines_that_verify() -> None:
    s = tree(5)
    req = parse_add_checkpoint(request(s, 0, 5))
    _, cp = check_add_checkpoint(req, None, TRUST)
    body = cosignature_lines(cp, [WITNESS], 1_767_225_600)
    assert body.startswith("— witness.example/w1 ".encode()) and body.endswith(b"\n")
    cosigned = req.note.serialize() + body
    checked, cosigs = verify_checkpoint_witnessed(
        cosigned, [LOG.verifier()], [WITNESS.verifier()], 1, origin=ORIGIN
    )
    assert checked == cp and cosigs[0].timestamp == 1_767_225_600
    assert cosignature_lines(req.note, [WITNESS], 1) == cosignature_lines(cp, [WITNESS], 1)


def test_unknown_origin_is_404() -> None:
    s = tree(3)
    other = Signer("elsewhere.example/log", key("log"))
    body = format_add_checkpoint(
        0, [], Checkpoint(other.name, 3, s.root(3)).sign([other]).serialize()
    )
    refused(404, body, None)


def test_bad_or_untrusted_log_signature_is_403() -> None:
    s = tree(3)
    refused(403, request(s, 0, 3, OTHER_LOG), None)
    raw = bytearray(request(s, 0, 3))
    raw[-10] ^= 1  # inside the signature's base64: still base64, wrong signature
    refused(403, bytes(raw), None)


def test_old_larger_than_checkpoint_is_400() -> None:
    s = tree(10)
    state = WitnessState(ORIGIN, 10, s.root(10))
    refused(400, format_add_checkpoint(10, [], note(s, 5)), state)


def test_stale_old_size_is_409_with_latest_size() -> None:
    s = tree(10)
    state = WitnessState(ORIGIN, 8, s.root(8))
    err = refused(409, request(s, 5, 10), state)
    assert err.latest_size == 8
    # a smaller checkpoint than the witness's: old must be 8, and 8 > 6 -> 400
    refused(400, format_add_checkpoint(8, [], note(s, 6)), state)
    # a client that never talked to this witness starts with old 0 and learns the size
    assert refused(409, request(s, 0, 10), state).latest_size == 8


def test_forked_checkpoint_is_422() -> None:
    honest, fork = tree(10), tree(12, b"fork")
    state = WitnessState(ORIGIN, 10, honest.root(10))
    # the fork's own proof from 10 to 12 does not lead from the witness's stored root
    refused(422, request(fork, 10, 12), state)
    # a proof from the honest tree but for another new root
    body = format_add_checkpoint(10, tree(12).consistency_proof(10, 12), note(fork, 12))
    refused(422, body, state)


def test_same_size_different_root_is_409() -> None:
    honest, fork = tree(10), tree(10, b"fork")
    state = WitnessState(ORIGIN, 10, honest.root(10))
    assert refused(409, format_add_checkpoint(10, [], note(fork, 10)), state).latest_size == 10


def test_empty_tree_rules() -> None:
    empty = Checkpoint(ORIGIN, 0, EMPTY_ROOT).sign([LOG]).serialize()
    state, _ = check_add_checkpoint(format_add_checkpoint(0, [], empty), None, TRUST)
    assert state == WitnessState.initial(ORIGIN)
    bad = Checkpoint(ORIGIN, 0, b"\1" * 32).sign([LOG]).serialize()
    refused(422, format_add_checkpoint(0, [], bad), None)
    # old 0 with a non-empty proof
    s = tree(4)
    refused(422, format_add_checkpoint(0, [s.root(2)], note(s, 4)), None)


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\nx",
        b"new 1\n\n",
        b"old 1\nnot base64!\n\n",
        b"old 1\n" + b"AAAA\n" + b"\n",
        b"old 1 no empty line",
        b"old 0\n\nnot a note\n",
        b"\xff\xfe",
        b"old 0\n" + b"".join([b"A" * 43 + b"=\n"] * 64) + b"\n",
    ],
)
def test_malformed_requests_are_400(body: bytes) -> None:
    refused(400, body, None)


def test_request_format_round_trips() -> None:
    s = tree(9)
    body = request(s, 4, 9)
    req = parse_add_checkpoint(body)
    assert req.old_size == 4 and list(req.proof) == s.consistency_proof(4, 9)
    assert req.note == parse_note(note(s, 9)) and req.origin == ORIGIN
    assert format_add_checkpoint(req.old_size, req.proof, req.note.serialize()) == body


def test_state_for_another_origin_is_a_caller_bug() -> None:
    s = tree(2)
    with pytest.raises(ValueError):
        check_add_checkpoint(request(s, 0, 2), WitnessState("x", 0, EMPTY_ROOT), TRUST)


def test_needs_a_signer() -> None:
    with pytest.raises(Exception, match="at least one"):
        cosignature_lines(Checkpoint(ORIGIN, 0, EMPTY_ROOT), [], 0)
    assert Verifier.parse_vkey(WITNESS.vkey()).sig_type == 4
