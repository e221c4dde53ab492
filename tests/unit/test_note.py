"""C2SP signed note, checkpoint and cosignature/v1: spec example, round trips, k-of-n
witness policy, every malformed case, and a parser fuzz."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, NoteFormatError, PolicyError, SignatureError
from ledger.merkle import EMPTY_ROOT
from ledger.note import (
    MAX_SIGNATURES,
    Checkpoint,
    CosignatureSigner,
    Note,
    NoteSignature,
    Signer,
    Verifier,
    cosign,
    cosignature_message,
    parse_checkpoint,
    parse_note,
    sign_note,
    verify_checkpoint,
    verify_checkpoint_witnessed,
    verify_cosignature,
    verify_note,
)
from ledger.signing import PrivateKey

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_SIG_LINE = (
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKu"
    "wHjG1Yu72IneyaQM=\n"
)
SPEC_NOTE = SPEC_TEXT + "\n" + SPEC_SIG_LINE


def _key(i: int) -> PrivateKey:
    # deterministic test seeds (the core never makes randomness)
    return PrivateKey.from_seed(hashlib.sha256(f"test key {i}".encode()).digest())


LOG = Signer("yima.example/log", _key(0))
OTHER_LOG = Signer("other.example/log", _key(1))
WITNESSES = [CosignatureSigner(f"witness{i}.example", _key(10 + i)) for i in range(3)]
W_VERIFIERS = [w.verifier() for w in WITNESSES]
ROOT = hashlib.sha256(b"some root").digest()
CP = Checkpoint("yima.example/log", 12345, ROOT)


# ---------------------------------------------------------------------------------------------
# Spec example
# ---------------------------------------------------------------------------------------------


def test_spec_example_vkey_and_signature_verify() -> None:
    v = Verifier.parse_vkey(SPEC_VKEY)
    assert v.name == "example.com/foo"
    assert v.key_id.hex() == "530d903a"
    assert v.sig_type == 0x01
    assert v.vkey() == SPEC_VKEY
    note = parse_note(SPEC_NOTE.encode())
    assert note.text == SPEC_TEXT
    assert verify_note(note, [v]) == [v]
    assert verify_note(SPEC_NOTE, [v]) == [v]
    assert note.serialize() == SPEC_NOTE.encode()
    # and cryptography agrees with the raw bytes directly
    raw = base64.b64decode(SPEC_SIG_LINE.split(" ")[2])
    Ed25519PublicKey.from_public_bytes(v.public_key.raw).verify(raw[4:], SPEC_TEXT.encode())


def test_spec_example_tampered_text_is_refused() -> None:
    v = Verifier.parse_vkey(SPEC_VKEY)
    with pytest.raises(SignatureError):
        verify_note(SPEC_NOTE.replace("example message", "example massage"), [v])


def test_spec_example_unknown_key_only_is_refused() -> None:
    with pytest.raises(PolicyError):
        verify_note(SPEC_NOTE, [LOG.verifier()])


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


def test_signer_vkey_round_trip() -> None:
    for s in [LOG, OTHER_LOG, *WITNESSES]:
        text = s.vkey()
        v = Verifier.parse_vkey(text)
        assert v == s.verifier()
        assert v.vkey() == text
    assert Verifier.parse_vkey(WITNESSES[0].vkey()).sig_type == 0x04
    # the same key under type 0x01 and 0x04 has different key IDs
    assert Signer("w", _key(3)).key_id != CosignatureSigner("w", _key(3)).key_id


def test_uppercase_hex_key_id_is_accepted() -> None:
    name, hex_id, b64 = SPEC_VKEY.split("+")
    assert Verifier.parse_vkey(f"{name}+{hex_id.upper()}+{b64}").key_id.hex() == hex_id


def test_note_round_trip_with_several_signatures() -> None:
    text = "line one\n\nline three after an empty line\n"
    note = sign_note(text, [LOG, OTHER_LOG])
    wire = note.serialize()
    back = parse_note(wire)
    assert back == note
    assert back.serialize() == wire
    assert verify_note(back, [OTHER_LOG.verifier()]) == [OTHER_LOG.verifier()]
    assert verify_note(back, [LOG.verifier(), OTHER_LOG.verifier()]) == [
        LOG.verifier(),
        OTHER_LOG.verifier(),
    ]


def test_note_text_may_be_just_a_newline_and_contain_blank_lines() -> None:
    for text in ["\n", "\n\n", "a\n\n\nb\n", "中文 TCM 当归\n"]:
        note = sign_note(text, [LOG])
        assert parse_note(note.serialize()) == note
        verify_note(note.serialize(), [LOG.verifier()])


def test_checkpoint_round_trip() -> None:
    for cp in [
        CP,
        Checkpoint("yima.example/log", 0, EMPTY_ROOT),
        Checkpoint("o", 2**64 - 1, ROOT, ("ext one", "ext two")),
    ]:
        body = cp.body()
        assert parse_checkpoint(body) == cp
        assert Checkpoint.parse(body) == cp
        signed = cp.sign([LOG])
        assert verify_checkpoint(signed.serialize(), [LOG.verifier()]) == cp
    assert CP.body() == f"yima.example/log\n12345\n{base64.b64encode(ROOT).decode()}\n"


def test_cosignature_matches_the_spec_construction() -> None:
    w = WITNESSES[0]
    ts = 1_700_000_000
    sig = w.cosign(CP.body(), ts)
    assert (
        sig.key_id
        == hashlib.sha256(w.name.encode() + b"\n\x04" + w.private_key.public_key.raw).digest()[:4]
    )
    assert len(sig.sig) == 72
    assert struct.unpack(">Q", sig.sig[:8])[0] == ts
    msg = b"cosignature/v1\ntime 1700000000\n" + CP.body().encode()
    assert cosignature_message(CP.body(), ts) == msg
    w.private_key.public_key.verify(sig.sig[8:], msg)
    assert verify_cosignature(CP.body(), sig, w.verifier()) == ts
    # a plain Signer may cosign: it is used with its 0x04 key ID
    plain = Signer(w.name, w.private_key)
    assert cosign(CP.body(), plain, ts) == sig


# ---------------------------------------------------------------------------------------------
# k-of-n witness policy
# ---------------------------------------------------------------------------------------------


def _witnessed(which: list[int], ts: int = 1_700_000_000) -> Note:
    note = CP.sign([LOG])
    return note.with_signatures(*(WITNESSES[i].cosign(CP.body(), ts + i) for i in which))


def test_two_of_three_one_present_fails() -> None:
    with pytest.raises(PolicyError) as err:
        verify_checkpoint(_witnessed([1]).serialize(), [LOG.verifier()], W_VERIFIERS, 2)
    assert err.value.expected == 2 and err.value.actual == 1
    assert "witness1.example" in str(err.value)  # found
    assert "witness0.example" in str(err.value) and "witness2.example" in str(err.value)


def test_two_of_three_two_present_passes() -> None:
    cp, cosigs = verify_checkpoint_witnessed(
        _witnessed([0, 2]).serialize(), [LOG.verifier()], W_VERIFIERS, 2
    )
    assert cp == CP
    assert [(c.name, c.timestamp) for c in cosigs] == [
        ("witness0.example", 1_700_000_000),
        ("witness2.example", 1_700_000_002),
    ]
    assert verify_checkpoint(_witnessed([0, 1, 2]).serialize(), [LOG.verifier()], W_VERIFIERS, 2)


def test_bad_cosignature_from_known_witness_fails() -> None:
    note = _witnessed([0, 1])
    bad = NoteSignature(
        WITNESSES[2].name,
        WITNESSES[2].key_id,
        WITNESSES[2].cosign("other\n1\n" + base64.b64encode(ROOT).decode() + "\n", 5).sig,
    )
    with pytest.raises(SignatureError):
        verify_checkpoint(note.with_signatures(bad).serialize(), [LOG.verifier()], W_VERIFIERS, 2)
    # changing the timestamp after signing breaks it too
    good = WITNESSES[0].cosign(CP.body(), 10)
    shifted = NoteSignature(good.name, good.key_id, struct.pack(">Q", 11) + good.sig[8:])
    with pytest.raises(SignatureError):
        verify_checkpoint(
            CP.sign([LOG]).with_signatures(shifted).serialize(), [LOG.verifier()], W_VERIFIERS, 1
        )


def test_unknown_witness_is_ignored_and_does_not_count() -> None:
    stranger = CosignatureSigner("stranger.example", _key(99))
    note = _witnessed([0]).with_signatures(stranger.cosign(CP.body(), 1))
    verify_checkpoint(note.serialize(), [LOG.verifier()], W_VERIFIERS, 1)
    with pytest.raises(PolicyError):
        verify_checkpoint(note.serialize(), [LOG.verifier()], W_VERIFIERS, 2)


def test_log_signature_is_required_and_must_verify() -> None:
    only_witnesses = Note(CP.body(), (WITNESSES[0].cosign(CP.body(), 1),))
    with pytest.raises(PolicyError):
        verify_checkpoint(only_witnesses.serialize(), [LOG.verifier()], W_VERIFIERS, 1)
    forged = NoteSignature(LOG.name, LOG.key_id, OTHER_LOG.sign(CP.body()).sig)
    with pytest.raises(SignatureError):
        verify_checkpoint(Note(CP.body(), (forged,)).serialize(), [LOG.verifier()])
    with pytest.raises(PolicyError):
        verify_checkpoint(CP.sign([LOG]).serialize(), [LOG.verifier()], origin="elsewhere/log")


def test_policy_arguments_are_checked() -> None:
    with pytest.raises(PolicyError):
        verify_checkpoint(_witnessed([0]).serialize(), [LOG.verifier()], W_VERIFIERS, 4)
    with pytest.raises(NoteFormatError):
        verify_checkpoint(CP.sign([LOG]).serialize(), [W_VERIFIERS[0]])
    with pytest.raises(NoteFormatError):
        verify_checkpoint(CP.sign([LOG]).serialize(), [LOG.verifier()], [LOG.verifier()], 0)


def test_same_witness_twice_is_refused() -> None:
    note = _witnessed([0]).with_signatures(WITNESSES[0].cosign(CP.body(), 99))
    with pytest.raises(NoteFormatError):
        verify_checkpoint(note.serialize(), [LOG.verifier()], W_VERIFIERS, 1)


def test_sixteen_signatures_accepted_and_cap_enforced() -> None:
    signers = [Signer(f"k{i}", _key(100 + i)) for i in range(16)]
    note = sign_note("many\n", signers)
    assert len(verify_note(note.serialize(), [s.verifier() for s in signers])) == 16
    one = LOG.sign("many\n")
    too_many = "many\n\n" + one.line() * (MAX_SIGNATURES + 1)
    with pytest.raises(NoteFormatError):
        parse_note(too_many)
    parse_note("many\n\n" + one.line() * MAX_SIGNATURES)


# ---------------------------------------------------------------------------------------------
# Malformed inputs
# ---------------------------------------------------------------------------------------------

GOOD = CP.sign([LOG]).serialize().decode()
GOOD_SIG = GOOD.split("\n\n")[1]
GOOD_B64 = GOOD_SIG.split(" ")[2].rstrip("\n")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(GOOD.replace("\n\n", "\n"), id="missing-blank-line"),
        pytest.param(GOOD.rstrip("\n"), id="no-final-newline"),
        pytest.param(CP.body() + "\n", id="no-signatures"),
        pytest.param(GOOD + "trailing garbage", id="trailing-garbage"),
        pytest.param(GOOD + "\n", id="trailing-blank-line"),
        pytest.param(GOOD.replace("— ", "- "), id="hyphen-not-em-dash"),
        pytest.param(GOOD.replace("— ", "—"), id="no-space-after-dash"),
        pytest.param(GOOD.replace(GOOD_B64, GOOD_B64[:-1]), id="bad-base64-truncated"),
        pytest.param(GOOD.replace(GOOD_B64, GOOD_B64 + "!"), id="bad-base64-char"),
        pytest.param(GOOD.replace(GOOD_B64, GOOD_B64.rstrip("=")), id="bad-base64-no-padding"),
        pytest.param(GOOD.replace(GOOD_B64, "AAAAAA=="), id="sig-too-short"),
        pytest.param(GOOD.replace(" " + GOOD_B64, ""), id="no-signature-field"),
        pytest.param(GOOD.replace(" " + GOOD_B64, " "), id="empty-signature-field"),
        pytest.param(GOOD.replace("— yima.example/log", "—  yima.example/log"), id="empty-name"),
        pytest.param(GOOD.replace("— yima.example/log", "— yima+log"), id="plus-in-name"),
        pytest.param(GOOD.replace("— yima.example/log", "— yima\u00a0log"), id="nbsp-in-name"),
        pytest.param(GOOD.replace("yima.example/log\n", "yima\x01log\n", 1), id="control-char"),
        pytest.param(GOOD.replace("yima.example/log\n", "yima\rlog\n", 1), id="carriage-return"),
        pytest.param(GOOD.replace("yima.example/log\n", "yima\tlog\n", 1), id="tab"),
        pytest.param(GOOD.replace("yima.example/log\n", "yima\x7flog\n", 1), id="delete-char"),
        pytest.param(GOOD.encode() + b"\xff", id="invalid-utf8"),
        pytest.param(
            b"abc\n\n\xe2\x80\x94 x " + GOOD_B64.encode() + b"\x80\n", id="invalid-utf8-2"
        ),
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="only-blank"),
    ],
)
def test_malformed_notes_are_refused(bad: str | bytes) -> None:
    with pytest.raises(NoteFormatError):
        parse_note(bad)


def test_non_canonical_base64_is_refused() -> None:
    raw = base64.b64decode(GOOD_B64)
    assert len(raw) == 68  # 68 % 3 == 2: the last char carries 2 pad bits
    last = GOOD_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    tweaked = GOOD_B64[:-2] + alphabet[alphabet.index(last) ^ 1] + "="
    assert base64.b64decode(tweaked) == raw  # same bytes, different text
    with pytest.raises(NoteFormatError):
        parse_note(GOOD.replace(GOOD_B64, tweaked))


def test_wrong_signature_length_from_known_key_is_format_error() -> None:
    good = LOG.sign(CP.body())
    short = NoteSignature(good.name, good.key_id, good.sig[:63])
    with pytest.raises(NoteFormatError):
        verify_note(Note(CP.body(), (short,)).serialize(), [LOG.verifier()])
    long_ = NoteSignature(good.name, good.key_id, good.sig + b"\x00")
    with pytest.raises(NoteFormatError):
        verify_note(Note(CP.body(), (long_,)), [LOG.verifier()])
    # the same malformed line from an UNKNOWN key is simply ignored (then no key -> policy)
    with pytest.raises(PolicyError):
        verify_note(Note(CP.body(), (short,)), [OTHER_LOG.verifier()])


def test_cosignature_timestamp_above_2_63_is_refused() -> None:
    good = WITNESSES[0].cosign(CP.body(), 1)
    huge = NoteSignature(good.name, good.key_id, struct.pack(">Q", 2**63) + good.sig[8:])
    with pytest.raises(NoteFormatError):
        verify_cosignature(CP.body(), huge, W_VERIFIERS[0])
    with pytest.raises(NoteFormatError):
        WITNESSES[0].cosign(CP.body(), 2**63)
    with pytest.raises(NoteFormatError):
        WITNESSES[0].cosign(CP.body(), -1)
    with pytest.raises(NoteFormatError):
        verify_cosignature(CP.body(), LOG.sign(CP.body()), LOG.verifier())


B64_ROOT = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(f"o\n012\n{B64_ROOT}\n", id="leading-zero"),
        pytest.param(f"o\n00\n{B64_ROOT}\n", id="double-zero"),
        pytest.param(f"o\n+1\n{B64_ROOT}\n", id="plus-sign"),
        pytest.param(f"o\n-1\n{B64_ROOT}\n", id="negative"),
        pytest.param(f"o\n1 \n{B64_ROOT}\n", id="trailing-space"),
        pytest.param(f"o\n\n{B64_ROOT}\n", id="empty-size"),
        pytest.param(f"o\n1_000\n{B64_ROOT}\n", id="underscore"),
        pytest.param(f"o\n١٢\n{B64_ROOT}\n", id="non-ascii-digits"),
        pytest.param(f"o\n{2**64}\n{B64_ROOT}\n", id="size-over-u64"),
        pytest.param("o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", id="root-31-bytes"),
        pytest.param("o\n1\n" + base64.b64encode(ROOT + b"x").decode() + "\n", id="root-33-bytes"),
        pytest.param("o\n1\n" + B64_ROOT.rstrip("=") + "\n", id="root-unpadded"),
        pytest.param("o\n1\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n", id="url"),
        pytest.param("o\n1\n", id="missing-root"),
        pytest.param(f"\n1\n{B64_ROOT}\n", id="empty-origin"),
        pytest.param(f"o\n1\n{B64_ROOT}", id="no-final-newline"),
        pytest.param(f"o\n1\n{B64_ROOT}\next\n\n", id="empty-extension"),
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(NoteFormatError):
        parse_checkpoint(body)


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(NoteFormatError):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(NoteFormatError):
        Checkpoint("o", 1, ROOT[:31])
    with pytest.raises(NoteFormatError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(NoteFormatError):
        Checkpoint("o", 1, ROOT, ("",))
    with pytest.raises(NoteFormatError):
        Checkpoint("o", 1, ROOT, ("a\nb",))
    assert parse_checkpoint(f"o\n0\n{B64_ROOT}\n").size == 0


@pytest.mark.parametrize(
    "vkey",
    [
        pytest.param("example.com/foo+530d903a", id="two-fields"),
        pytest.param(SPEC_VKEY + "+x", id="plus-after-key"),
        pytest.param("example.com/foo", id="one-field"),
        pytest.param(SPEC_VKEY.replace("530d903a", "530d903b"), id="wrong-key-id"),
        pytest.param(SPEC_VKEY.replace("530d903a", "530d903"), id="short-key-id"),
        pytest.param(SPEC_VKEY.replace("530d903a", "530d903g"), id="non-hex-key-id"),
        pytest.param(SPEC_VKEY.replace("example.com/foo", "example.com/bar"), id="other-name"),
        pytest.param(SPEC_VKEY.replace("example.com/foo", ""), id="empty-name"),
        pytest.param(SPEC_VKEY.replace("example.com/foo", "ex ample"), id="space-in-name"),
        pytest.param(SPEC_VKEY.replace("+Aeky", "+Beky"), id="unknown-type"),
        pytest.param(SPEC_VKEY[:-4], id="truncated-key"),
        pytest.param(SPEC_VKEY + "==", id="bad-base64"),
        pytest.param("a+00000000+" + base64.b64encode(b"\x01" + b"\x00" * 31).decode(), id="31B"),
    ],
)
def test_malformed_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteFormatError):
        Verifier.parse_vkey(vkey)


def test_bad_names_and_texts_are_refused_when_signing() -> None:
    for name in ["", "a b", "a+b", "a\u2003b", "a\nb"]:
        with pytest.raises(NoteFormatError):
            Signer(name, _key(0))
    for text in ["no newline", "a\x00\n", "a\r\n"]:
        with pytest.raises(NoteFormatError):
            LOG.sign(text)
    with pytest.raises(NoteFormatError):
        sign_note("x\n", [])


# ---------------------------------------------------------------------------------------------
# Fuzz
# ---------------------------------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        "\n",
        "\n\n",
        "— ",
        "—",
        " ",
        "+",
        "=",
        "\x00",
        "\r",
        "\x7f",
        GOOD_B64,
        "yima.example/log",
        "a",
    ]
)


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_fuzz_parse_only_raises_note_format_error(data: bytes | str) -> None:
    try:
        note = parse_note(data)
    except NoteFormatError:
        return
    assert parse_note(note.serialize()) == note


@settings(max_examples=500, deadline=None)
@given(st.lists(_pieces, max_size=30))
def test_fuzz_structured_notes(parts: list[str]) -> None:
    data = "".join(parts)
    try:
        note = parse_note(data)
    except NoteFormatError:
        return
    assert note.serialize() == data.encode()
    try:
        verify_checkpoint(note, [LOG.verifier()], W_VERIFIERS, 1)
    except LedgerError as e:
        assert isinstance(e, NoteFormatError | SignatureError | PolicyError)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.lists(
            st.sampled_from(["o", "0", "1", "012", B64_ROOT, "x", "", "\n", "\x01"]), max_size=6
        ).map("\n".join),
    )
)
def test_fuzz_checkpoint_parse(text: str) -> None:
    try:
        cp = parse_checkpoint(text)
    except NoteFormatError:
        return
    assert cp.body() == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_vkey_parse(text: str) -> None:
    try:
        v = Verifier.parse_vkey(text)
    except NoteFormatError:
        return
    assert Verifier.parse_vkey(v.vkey()) == v
