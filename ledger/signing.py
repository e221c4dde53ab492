"""Ed25519 keys, C2SP key IDs, the DSSE pre-authentication encoding, and base64.

The core never makes keys: :meth:`PrivateKey.from_seed` takes the 32 random bytes from the
caller (key generation lives outside :mod:`ledger`). Verification raises
:class:`~ledger.errors.SignatureError`; it never returns ``False``.

``cryptography`` is the runtime implementation (it is already a dependency for everything
else); the benchmark in ``bench/bench_crypto.py`` compares it with PyNaCl.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import EncodingError, SignatureError

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "SIG_TYPE_ED25519",
    "PrivateKey",
    "PublicKey",
    "b64decode",
    "b64encode",
    "key_id",
    "pae",
]

SEED_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
#: C2SP signed-note signature type for plain Ed25519.
SIG_TYPE_ED25519: Final = 0x01

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


class PublicKey:
    """An Ed25519 public key.

    Args:
        key: The wrapped ``cryptography`` key (use :meth:`from_bytes` to make one).
    """

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(_RAW, _RAW_PUB)

    @classmethod
    def from_bytes(cls, raw: bytes) -> PublicKey:
        """Load a key from its 32 raw bytes (RFC 8032 encoding).

        Args:
            raw: The 32-byte public key.

        Returns:
            The key.

        Raises:
            EncodingError: ``raw`` is not 32 bytes.
        """
        if not isinstance(raw, bytes | bytearray) or len(raw) != PUBLIC_KEY_SIZE:
            got = len(raw) if isinstance(raw, bytes | bytearray) else type(raw).__name__
            raise EncodingError(
                "an Ed25519 public key is 32 bytes", expected=PUBLIC_KEY_SIZE, actual=got
            )
        try:
            return cls(Ed25519PublicKey.from_public_bytes(bytes(raw)))
        except ValueError as e:  # pragma: no cover - cryptography accepts any 32 bytes today
            raise EncodingError(f"invalid Ed25519 public key: {e}") from e

    @property
    def raw(self) -> bytes:
        """The 32 raw public key bytes."""
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature over ``message``.

        Args:
            signature: The 64-byte signature.
            message: The signed bytes.

        Raises:
            SignatureError: The signature is malformed or does not verify.
        """
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            got = len(signature) if isinstance(signature, bytes) else type(signature).__name__
            raise SignatureError(
                "an Ed25519 signature is 64 bytes", expected=SIGNATURE_SIZE, actual=got
            )
        try:
            self._key.verify(signature, message)
        except InvalidSignature as e:
            raise SignatureError(
                f"Ed25519 signature does not verify under key {self._raw.hex()}"
            ) from e

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"PublicKey({self._raw.hex()})"


class PrivateKey:
    """An Ed25519 private key made from a caller-supplied 32-byte seed.

    Args:
        seed: The 32-byte RFC 8032 private key (use :meth:`from_seed`).
    """

    __slots__ = ("_key", "_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            got = len(seed) if isinstance(seed, bytes) else type(seed).__name__
            raise EncodingError("an Ed25519 seed is 32 bytes", expected=SEED_SIZE, actual=got)
        self._seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = PublicKey(self._key.public_key())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Make a key from 32 random bytes the caller generated.

        Args:
            seed: The 32-byte seed (RFC 8032 private key).

        Returns:
            The key.

        Raises:
            EncodingError: ``seed`` is not 32 bytes.
        """
        return cls(seed)

    @property
    def seed(self) -> bytes:
        """The 32-byte seed (secret: store it encrypted, never log it)."""
        return self._seed

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (Ed25519 is deterministic: same key and message, same signature).

        Args:
            message: The bytes to sign.

        Returns:
            The 64-byte signature.
        """
        return self._key.sign(message)

    def __repr__(self) -> str:
        # Never print the seed.
        return f"PrivateKey(public={self._public.raw.hex()})"


def key_id(name: str, public_raw: bytes, sig_type: int = SIG_TYPE_ED25519) -> bytes:
    """Compute a C2SP signed-note key ID.

    ``SHA-256(name || 0x0A || sig_type || public_raw)[:4]``.

    Args:
        name: The key name (for a producer, its producer name).
        public_raw: The raw public key bytes.
        sig_type: The C2SP signature type byte (0x01 = Ed25519, 0x04 = cosignature/v1).

    Returns:
        The 4-byte key ID.

    Raises:
        EncodingError: ``sig_type`` is not a byte value.
    """
    if not 0 <= sig_type <= 0xFF:
        raise EncodingError("signature type must be one byte", expected="0..255", actual=sig_type)
    h = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_raw)
    return h.digest()[:4]


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (SPEC §4.2).

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` where LEN is the ASCII decimal
    byte length. Signing this rather than the bare body binds the payload type, so a
    signature over a capture can never be replayed as a signature over anything else.

    Args:
        payload_type: The payload media type.
        body: The payload bytes.

    Returns:
        The bytes to sign.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(body), body)


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4), as DSSE and C2SP notes use.

    Args:
        data: Bytes to encode.

    Returns:
        The ASCII text.
    """
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64 decoding: no whitespace, no URL-safe alphabet, padding required.

    Args:
        text: The base64 text.

    Returns:
        The decoded bytes.

    Raises:
        EncodingError: The text is not canonical standard base64.
    """
    if not isinstance(text, str):
        raise EncodingError("base64 value must be a string", actual=type(text).__name__)
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise EncodingError(f"invalid base64: {e}") from e
    # Refuse non-canonical encodings (non-zero pad bits) so one value has one text form.
    if base64.b64encode(data).decode("ascii") != text:
        raise EncodingError("non-canonical base64", expected=b64encode(data), actual=text)
    return data
