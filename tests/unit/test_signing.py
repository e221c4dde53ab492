"""Ed25519 keys, C2SP key IDs, DSSE PAE and base64 (SPEC §4.2)."""

from __future__ import annotations

import base64

import pytest

from ledger.errors import EncodingError, SignatureError
from ledger.signing import (
    PrivateKey,
    PublicKey,
    b64decode,
    b64encode,
    key_id,
    pae,
)

SEED = bytes(range(32))

# RFC 8032 §7.1 TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUB = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

# C2SP signed-note spec example.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = b"This is an example message.\n"
C2SP_SIG_B64 = (
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
)


def test_rfc8032_known_answer() -> None:
    key = PrivateKey.from_seed(RFC8032_SEED)
    assert key.seed == RFC8032_SEED
    assert key.public_key.raw == RFC8032_PUB
    assert key.sign(b"") == RFC8032_SIG
    PublicKey.from_bytes(RFC8032_PUB).verify(RFC8032_SIG, b"")


def test_sign_verify_round_trip_and_determinism() -> None:
    key = PrivateKey.from_seed(SEED)
    sig = key.sign(b"hello")
    assert len(sig) == 64
    assert key.sign(b"hello") == sig
    key.public_key.verify(sig, b"hello")
    assert PublicKey.from_bytes(key.public_key.raw) == key.public_key


def test_verify_raises_never_returns_false() -> None:
    key = PrivateKey.from_seed(SEED)
    sig = key.sign(b"hello")
    with pytest.raises(SignatureError):
        key.public_key.verify(sig, b"hellp")
    bad = bytearray(sig)
    bad[0] ^= 1
    with pytest.raises(SignatureError):
        key.public_key.verify(bytes(bad), b"hello")
    other = PrivateKey.from_seed(bytes(32)).public_key
    with pytest.raises(SignatureError):
        other.verify(sig, b"hello")
    with pytest.raises(SignatureError) as info:
        key.public_key.verify(sig[:63], b"hello")
    assert (info.value.expected, info.value.actual) == (64, 63)


def test_bad_key_lengths() -> None:
    with pytest.raises(EncodingError) as info:
        PrivateKey.from_seed(b"short")
    assert (info.value.expected, info.value.actual) == (32, 5)
    with pytest.raises(EncodingError):
        PublicKey.from_bytes(bytes(31))


def test_repr_hides_seed() -> None:
    key = PrivateKey.from_seed(SEED)
    assert SEED.hex() not in repr(key)
    assert key.public_key.raw.hex() in repr(key)


def test_c2sp_key_id_known_answer() -> None:
    name, hex_id, b64 = C2SP_VKEY.split("+")
    blob = base64.b64decode(b64)
    assert blob[0] == 0x01 and len(blob) == 33
    assert key_id(name, blob[1:]).hex() == hex_id == "530d903a"
    assert key_id(name, blob[1:], 0x01) == bytes.fromhex("530d903a")
    # The same key as a different signature type has a different ID.
    assert key_id(name, blob[1:], 0x04) != key_id(name, blob[1:])
    # And the spec's signature verifies over the note text (key ID || signature).
    sig = base64.b64decode(C2SP_SIG_B64)
    assert sig[:4].hex() == hex_id
    PublicKey.from_bytes(blob[1:]).verify(sig[4:], C2SP_NOTE)


def test_key_id_rejects_bad_type() -> None:
    with pytest.raises(EncodingError):
        key_id("x", bytes(32), 256)


def test_pae_dsse_known_answer() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "
    # LEN counts bytes, not characters.
    assert pae("类型", b"\x00\xff") == "DSSEv1 6 类型 2 ".encode() + b"\x00\xff"


def test_base64_helpers() -> None:
    data = bytes(range(256))
    assert b64decode(b64encode(data)) == data
    assert b64encode(b"\xfb\xff") == "+/8="
    for bad in ["+/8", "-_8=", "+/8= ", "+/9=", "é", "a"]:
        with pytest.raises(EncodingError):
            b64decode(bad)
