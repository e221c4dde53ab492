"""C2SP signed notes, tlog checkpoints and ``cosignature/v1`` witness cosignatures.

Formats (docs/spec/06-note.md):

* signed note (c2sp.org/signed-note): ``text`` ending in ``\\n``, a blank line, then one or
  more lines ``— <name> <base64(key ID || signature)>\\n``;
* verifier key (vkey): ``<name>+<hex key ID>+<base64(type || public key)>``;
* checkpoint (c2sp.org/tlog-checkpoint): origin, decimal size, base64 root, extension lines;
* cosignature (c2sp.org/tlog-cosignature, type 0x04): a signature line whose body is
  ``u64 big-endian timestamp || Ed25519 signature`` over
  ``"cosignature/v1\\ntime <ts>\\n" + checkpoint body``.

Malformed input raises :class:`~ledger.errors.NoteFormatError`; a known key whose signature
does not verify raises :class:`~ledger.errors.SignatureError`; too few trusted signatures
(none from the log, fewer witnesses than the quorum) raise :class:`~ledger.errors.PolicyError`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.errors import EncodingError, NoteFormatError, PolicyError, SignatureError
from ledger.signing import PrivateKey, PublicKey, key_id

__all__ = [
    "COSIGNATURE_V1_HEADER",
    "MAX_SIGNATURES",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "Checkpoint",
    "CosignatureSigner",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "WitnessCosignature",
    "cosign",
    "cosignature_message",
    "parse_checkpoint",
    "parse_note",
    "sign_note",
    "verify_checkpoint",
    "verify_checkpoint_witnessed",
    "verify_cosignature",
    "verify_note",
]

#: Signature type of a plain Ed25519 note signature.
SIG_TYPE_ED25519 = 0x01
#: Signature type of a timestamped Ed25519 ``cosignature/v1``.
SIG_TYPE_COSIGNATURE_V1 = 0x04
#: First line of the message a ``cosignature/v1`` signs.
COSIGNATURE_V1_HEADER = "cosignature/v1\n"
#: Most signature lines a note may carry (C2SP: accept at least 16, apply some maximum).
MAX_SIGNATURES = 100

_SIG_PREFIX = "— "  # EM DASH U+2014, then a space
_ED25519_SIG_SIZE = 64
_PUBLIC_KEY_SIZE = 32
_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = 2**63 - 1
_HASH_SIZE = 32
_MAX_U64 = 2**64 - 1
_KNOWN_TYPES = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)
_SIG_SIZES = {
    SIG_TYPE_ED25519: _ED25519_SIG_SIZE,
    SIG_TYPE_COSIGNATURE_V1: _TIMESTAMP_SIZE + _ED25519_SIG_SIZE,
}


# ---------------------------------------------------------------------------------------------
# Small strict helpers
# ---------------------------------------------------------------------------------------------


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padding required, canonical form only."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise NoteFormatError(f"{what}: invalid base64", actual=text) from e
    # One value, one text: non-zero pad bits would let a note be re-encoded (SPEC §6.1 step 5).
    if base64.b64encode(data).decode("ascii") != text:
        raise NoteFormatError(f"{what}: non-canonical base64", actual=text)
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_text_chars(text: str, what: str) -> None:
    # SPEC §6.1 step 2: no ASCII control characters other than newline (C0 and DEL).
    for i, ch in enumerate(text):
        o = ord(ch)
        if (o < 0x20 and ch != "\n") or o == 0x7F:
            raise NoteFormatError(f"{what} contains control character U+{o:04X} at offset {i}")
        if 0xD800 <= o <= 0xDFFF:
            raise NoteFormatError(f"{what} contains a lone surrogate at offset {i}")


def _check_name(name: str) -> None:
    """SPEC §6.1 step 6: key names are non-empty, without Unicode spaces or '+'."""
    if not isinstance(name, str) or name == "":
        raise NoteFormatError("key name is empty")
    for ch in name:
        if ch.isspace() or ch == "+":
            raise NoteFormatError(
                f"key name {name!r} contains {ch!r} (spaces and '+' are not allowed)"
            )
    _check_text_chars(name, "key name")


def _check_note_text(text: str) -> None:
    if not isinstance(text, str):
        raise NoteFormatError("note text must be a string", actual=type(text).__name__)
    if not text.endswith("\n"):
        raise NoteFormatError("note text must end with a newline")
    _check_text_chars(text, "note text")


# ---------------------------------------------------------------------------------------------
# Notes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note.

    Attributes:
        name: The key name.
        key_id: The 4-byte key ID.
        sig: The signature bytes after the key ID (64 bytes for Ed25519, 72 for a
            ``cosignature/v1``: 8-byte timestamp then 64-byte signature).
    """

    name: str
    key_id: bytes
    sig: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.key_id) != _KEY_ID_SIZE:
            raise NoteFormatError("key ID must be 4 bytes", expected=4, actual=len(self.key_id))
        if len(self.sig) == 0:
            raise NoteFormatError("signature is empty")

    def line(self) -> str:
        """The signature line, ``— <name> <base64(key ID || sig)>\\n``."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.sig)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A signed note: the signed text and its signature lines.

    Attributes:
        text: The note text, including its final newline.
        signatures: The signatures, in line order.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_note_text(self.text)
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteFormatError(
                "too many signatures", expected=MAX_SIGNATURES, actual=len(self.signatures)
            )

    def serialize(self) -> bytes:
        """The note in its wire form: text, blank line, signature lines (UTF-8)."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode("utf-8")

    def with_signatures(self, *signatures: NoteSignature) -> Note:
        """A copy with more signature lines appended (e.g. witness cosignatures)."""
        return Note(self.text, self.signatures + signatures)


def parse_note(data: bytes | str) -> Note:
    """Parse a signed note (SPEC §6.1). Signatures are not verified here.

    Args:
        data: The note bytes (UTF-8) or text.

    Returns:
        The parsed note.

    Raises:
        NoteFormatError: The note is malformed in any way.
    """
    # SPEC §6.1 step 1: valid UTF-8.
    if isinstance(data, bytes | bytearray):
        try:
            msg = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteFormatError(f"note is not valid UTF-8 (byte {e.start})") from e
    elif isinstance(data, str):
        msg = data
    else:
        raise NoteFormatError("note must be bytes or str", actual=type(data).__name__)
    # SPEC §6.1 step 2: no control characters other than newline.
    _check_text_chars(msg, "note")
    # SPEC §6.1 step 3: the LAST blank line separates the text from the signatures.
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    # SPEC §6.1 step 4: at least one signature line, every line ends with a newline.
    if sigs == "" or not sigs.endswith("\n"):
        raise NoteFormatError("note signatures are missing or do not end with a newline")
    signatures: list[NoteSignature] = []
    for line in sigs[:-1].split("\n"):
        if len(signatures) >= MAX_SIGNATURES:
            raise NoteFormatError("too many signatures", expected=MAX_SIGNATURES)
        # SPEC §6.1 step 5: "— <name> <base64>".
        if not line.startswith(_SIG_PREFIX):
            raise NoteFormatError("signature line does not start with '— '", actual=line)
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or b64 == "":
            raise NoteFormatError("signature line has no signature", actual=line)
        _check_name(name)
        raw = _b64decode(b64, "signature")
        if len(raw) < _KEY_ID_SIZE + 1:
            raise NoteFormatError("signature is shorter than 5 bytes", actual=len(raw))
        signatures.append(NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]))
    return Note(text, tuple(signatures))


# ---------------------------------------------------------------------------------------------
# Keys: verifiers and signers
# ---------------------------------------------------------------------------------------------


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The bytes a ``cosignature/v1`` signs (SPEC §6.3 step 2).

    Args:
        text: The checkpoint note body (the note text, with extension lines and final newline).
        timestamp: POSIX seconds.

    Returns:
        ``"cosignature/v1\\ntime <timestamp>\\n" + text`` as UTF-8.
    """
    return f"{COSIGNATURE_V1_HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trusted public key, as named in a vkey.

    Attributes:
        name: Key name (for a log, its origin).
        public_key: The Ed25519 public key.
        key_id: The 4-byte C2SP key ID.
        sig_type: 0x01 (note signature) or 0x04 (``cosignature/v1``).
    """

    name: str
    public_key: PublicKey
    key_id: bytes
    sig_type: int = SIG_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.sig_type not in _KNOWN_TYPES:
            raise NoteFormatError(
                "unsupported signature type", expected=_KNOWN_TYPES, actual=self.sig_type
            )
        want = key_id(self.name, self.public_key.raw, self.sig_type)
        if self.key_id != want:
            raise NoteFormatError(
                "key ID does not match name and key", expected=want.hex(), actual=self.key_id.hex()
            )

    @classmethod
    def from_public_key(
        cls, name: str, public_key: PublicKey, sig_type: int = SIG_TYPE_ED25519
    ) -> Verifier:
        """Make a verifier, computing its key ID.

        Args:
            name: The key name.
            public_key: The Ed25519 public key.
            sig_type: 0x01 for notes, 0x04 for cosignatures.

        Returns:
            The verifier.
        """
        if sig_type not in _KNOWN_TYPES:
            raise NoteFormatError(
                "unsupported signature type", expected=_KNOWN_TYPES, actual=sig_type
            )
        _check_name(name)
        return cls(name, public_key, key_id(name, public_key.raw, sig_type), sig_type)

    @classmethod
    def parse_vkey(cls, text: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(type || public key)>`` (SPEC §6.2).

        Args:
            text: The vkey.

        Returns:
            The verifier.

        Raises:
            NoteFormatError: The vkey is malformed, of an unsupported type, or its key ID does
                not match its name and key.
        """
        if not isinstance(text, str):
            raise NoteFormatError("vkey must be a string", actual=type(text).__name__)
        # SPEC §6.2 step 1: name, then hex ID, split at the first two '+' (names cannot hold
        # '+'; the base64 key can).
        name, sep1, rest = text.partition("+")
        hex_id, sep2, b64 = rest.partition("+")
        if not sep1 or not sep2:
            raise NoteFormatError("vkey must be <name>+<hex id>+<base64 key>", actual=text)
        _check_name(name)
        # SPEC §6.2 step 2: 8 hex digits.
        if len(hex_id) != 8 or any(c not in "0123456789abcdefABCDEF" for c in hex_id):
            raise NoteFormatError("vkey key ID must be 8 hex digits", actual=hex_id)
        # SPEC §6.2 step 3: type byte then a 32-byte Ed25519 key.
        raw = _b64decode(b64, "vkey")
        if len(raw) != 1 + _PUBLIC_KEY_SIZE:
            raise NoteFormatError(
                "vkey key must be a type byte and 32 bytes", expected=33, actual=len(raw)
            )
        if raw[0] not in _KNOWN_TYPES:
            raise NoteFormatError(
                "unsupported vkey signature type", expected=_KNOWN_TYPES, actual=raw[0]
            )
        try:
            public = PublicKey.from_bytes(raw[1:])
        except EncodingError as e:  # pragma: no cover - any 32 bytes load today
            raise NoteFormatError(f"vkey public key: {e.message}") from e
        # SPEC §6.2 step 4: the key ID must be the one the name, type and key give.
        want = key_id(name, public.raw, raw[0])
        got = bytes.fromhex(hex_id)
        if got != want:
            raise NoteFormatError(
                "vkey key ID does not match its name and key", expected=want.hex(), actual=hex_id
            )
        return cls(name, public, got, raw[0])

    def vkey(self) -> str:
        """Format as ``<name>+<hex key ID>+<base64(type || public key)>``."""
        key = _b64encode(bytes([self.sig_type]) + self.public_key.raw)
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def matches(self, sig: NoteSignature) -> bool:
        """Whether ``sig`` claims to be by this key: the (name, key ID) pair is equal."""
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> int | None:
        """Verify one signature of this key over a note text.

        Args:
            text: The note text.
            sig: A signature line with this verifier's name and key ID.

        Returns:
            The cosignature timestamp for a 0x04 key, else ``None``.

        Raises:
            NoteFormatError: The signature has the wrong length or an out-of-range timestamp.
            SignatureError: The signature does not verify.
        """
        if not self.matches(sig):
            raise SignatureError(
                "signature is not by this key",
                expected=(self.name, self.key_id.hex()),
                actual=(sig.name, sig.key_id.hex()),
            )
        size = _SIG_SIZES[self.sig_type]
        if len(sig.sig) != size:
            raise NoteFormatError(
                f"signature by {self.name} has the wrong length", expected=size, actual=len(sig.sig)
            )
        if self.sig_type == SIG_TYPE_ED25519:
            # SPEC §6.1 step 8: Ed25519 over the note text.
            _verify_ed25519(self, sig.sig, text.encode("utf-8"))
            return None
        # SPEC §6.3 step 3: u64 big-endian timestamp, then Ed25519 over the cosigned message.
        (timestamp,) = struct.unpack(">Q", sig.sig[:_TIMESTAMP_SIZE])
        if timestamp > _MAX_TIMESTAMP:
            raise NoteFormatError("cosignature timestamp is above 2^63-1", actual=timestamp)
        _verify_ed25519(self, sig.sig[_TIMESTAMP_SIZE:], cosignature_message(text, timestamp))
        return int(timestamp)


def _verify_ed25519(v: Verifier, signature: bytes, message: bytes) -> None:
    try:
        v.public_key.verify(signature, message)
    except SignatureError as e:
        raise SignatureError(
            f"signature by known key {v.name}+{v.key_id.hex()} does not verify"
        ) from e


@dataclass(frozen=True, slots=True)
class Signer:
    """A note signer (signature type 0x01).

    Attributes:
        name: Key name (a log signs with its origin as the name).
        private_key: The Ed25519 private key.
    """

    name: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def sig_type(self) -> int:
        """The C2SP signature type: 0x01."""
        return SIG_TYPE_ED25519

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return key_id(self.name, self.private_key.public_key.raw, self.sig_type)

    def verifier(self) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.private_key.public_key, self.key_id, self.sig_type)

    def vkey(self) -> str:
        """The verifier key text, ``<name>+<hex id>+<base64(type || key)>``."""
        return self.verifier().vkey()

    def sign(self, text: str) -> NoteSignature:
        """Sign a note text.

        Args:
            text: The note text (ends in a newline).

        Returns:
            The signature line's content.
        """
        _check_note_text(text)
        return NoteSignature(self.name, self.key_id, self.private_key.sign(text.encode("utf-8")))


@dataclass(frozen=True, slots=True)
class CosignatureSigner:
    """A witness cosigner (``cosignature/v1``, signature type 0x04).

    Attributes:
        name: The witness name.
        private_key: The Ed25519 private key.
    """

    name: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def sig_type(self) -> int:
        """The C2SP signature type: 0x04."""
        return SIG_TYPE_COSIGNATURE_V1

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID (computed with type 0x04)."""
        return key_id(self.name, self.private_key.public_key.raw, self.sig_type)

    def verifier(self) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.private_key.public_key, self.key_id, self.sig_type)

    def vkey(self) -> str:
        """The verifier key text."""
        return self.verifier().vkey()

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """Cosign a checkpoint body at ``timestamp`` (see :func:`cosign`)."""
        return cosign(text, self, timestamp)


def cosign(text: str, signer: CosignatureSigner | Signer, timestamp: int) -> NoteSignature:
    """Make a ``cosignature/v1`` line over a checkpoint note body (SPEC §6.3 step 1-2).

    Args:
        text: The checkpoint note text (body incl. extension lines and final newline).
        signer: The witness key; a plain :class:`Signer` is used as a cosigner with the
            type-0x04 key ID of the same name and key.
        timestamp: POSIX seconds (given by the caller; the core has no clock).

    Returns:
        The cosignature (name, 0x04 key ID, timestamp || signature).

    Raises:
        NoteFormatError: The text is not a valid note text or the timestamp is out of range.
    """
    _check_note_text(text)
    if not isinstance(timestamp, int) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteFormatError("cosignature timestamp must be in 0..2^63-1", actual=timestamp)
    cs = (
        signer
        if isinstance(signer, CosignatureSigner)
        else CosignatureSigner(signer.name, signer.private_key)
    )
    body = struct.pack(">Q", timestamp) + cs.private_key.sign(cosignature_message(text, timestamp))
    return NoteSignature(cs.name, cs.key_id, body)


def sign_note(text: str, signers: Iterable[Signer]) -> Note:
    """Sign a note text with one or more note signers.

    Args:
        text: The note text (ends in a newline, no control characters).
        signers: The signers, in the order their lines should appear.

    Returns:
        The signed note.

    Raises:
        NoteFormatError: The text is not a valid note text.
    """
    _check_note_text(text)
    sigs = tuple(s.sign(text) for s in signers)
    if not sigs:
        raise NoteFormatError("a signed note needs at least one signature")
    return Note(text, sigs)


@dataclass(frozen=True, slots=True)
class _Verified:
    verifier: Verifier
    timestamp: int | None


def _verify_known(note: Note, verifiers: Sequence[Verifier]) -> list[_Verified]:
    """SPEC §6.1 steps 7-9: verify every signature by a known key; ignore unknown ones."""
    known = {(v.name, v.key_id): v for v in verifiers}
    seen: set[tuple[str, bytes]] = set()
    out: list[_Verified] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue  # step 7: a key is (name, key ID); unknown keys are ignored
        if (sig.name, sig.key_id) in seen:
            # step 7: a known key signs at most once (as Go's note.Open does).
            raise NoteFormatError(f"key {sig.name}+{sig.key_id.hex()} signs the note twice")
        seen.add((sig.name, sig.key_id))
        # step 8: a known key's signature MUST verify, else the whole note is rejected.
        out.append(_Verified(v, v.verify(note.text, sig)))
    return out


def verify_note(note: Note | bytes | str, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """Verify a signed note against a set of trusted keys (SPEC §6.1 steps 7-9).

    Args:
        note: A parsed note, or its wire form.
        verifiers: The trusted keys.

    Returns:
        The verifiers whose signatures verified (at least one), in signature order.

    Raises:
        NoteFormatError: The note or a known key's signature is malformed.
        SignatureError: A known key's signature does not verify (the whole note is refused).
        PolicyError: No known key signed the note.
    """
    n = note if isinstance(note, Note) else parse_note(note)
    ok = _verify_known(n, verifiers)
    # step 9: no known key verified -> reject.
    if not ok:
        raise PolicyError(
            "no trusted key signed the note",
            expected=sorted(f"{v.name}+{v.key_id.hex()}" for v in verifiers),
            actual=[f"{s.name}+{s.key_id.hex()}" for s in n.signatures],
        )
    return [x.verifier for x in ok]


def verify_cosignature(text: str, sig: NoteSignature, verifier: Verifier) -> int:
    """Verify one ``cosignature/v1`` over a checkpoint text.

    Args:
        text: The checkpoint note text.
        sig: The cosignature line.
        verifier: The witness key (type 0x04).

    Returns:
        The cosignature timestamp.

    Raises:
        NoteFormatError: The verifier is not a cosignature key or the signature is malformed.
        SignatureError: The cosignature does not verify.
    """
    if verifier.sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise NoteFormatError("not a cosignature/v1 key", expected=4, actual=verifier.sig_type)
    ts = verifier.verify(text, sig)
    if ts is None:  # pragma: no cover - type 0x04 always yields a timestamp
        raise NoteFormatError("cosignature carries no timestamp")
    return ts


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog checkpoint (tree head).

    Attributes:
        origin: The log's origin line (e.g. ``yima.example/log``).
        size: The tree size.
        root_hash: The 32-byte RFC 9162 root at that size.
        extensions: Optional opaque extension lines (without newlines).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or self.origin == "" or "\n" in self.origin:
            raise NoteFormatError(
                "checkpoint origin must be one non-empty line", actual=self.origin
            )
        _check_text_chars(self.origin, "origin")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= _MAX_U64
        ):
            raise NoteFormatError(
                "checkpoint size must be an integer in 0..2^64-1", actual=self.size
            )
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            got = (
                len(self.root_hash)
                if isinstance(self.root_hash, bytes)
                else type(self.root_hash).__name__
            )
            raise NoteFormatError(
                "checkpoint root hash must be 32 bytes", expected=_HASH_SIZE, actual=got
            )
        for ext in self.extensions:
            if not isinstance(ext, str) or ext == "" or "\n" in ext:
                raise NoteFormatError(
                    "checkpoint extension lines must be non-empty single lines", actual=ext
                )
            _check_text_chars(ext, "extension line")

    def body(self) -> str:
        """The checkpoint as note text: origin, size, base64 root, extensions, each + ``\\n``."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (see :func:`parse_checkpoint`)."""
        return parse_checkpoint(text)

    def sign(self, signers: Iterable[Signer]) -> Note:
        """Sign this checkpoint as a note."""
        return sign_note(self.body(), signers)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note body (SPEC §6.4 steps 1-5).

    Args:
        text: The note text (not the signatures).

    Returns:
        The checkpoint.

    Raises:
        NoteFormatError: The body is malformed (missing lines, a size with leading zeros or
            non-digits, a root that is not canonical base64 of 32 bytes, an empty extension).
    """
    # SPEC §6.4 step 1: note text rules; every line ends with a newline.
    _check_note_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteFormatError(
            "checkpoint needs origin, size and root lines", expected=3, actual=len(lines)
        )
    origin, size_text, root_text, *extensions = lines
    # SPEC §6.4 step 2: origin non-empty.
    if origin == "":
        raise NoteFormatError("checkpoint origin is empty")
    # SPEC §6.4 step 3: ASCII decimal, no sign, no leading zeros ("0" alone is fine).
    if (
        size_text == ""
        or not all("0" <= c <= "9" for c in size_text)
        or (len(size_text) > 1 and size_text[0] == "0")
    ):
        raise NoteFormatError(
            "checkpoint size must be decimal without leading zeros", actual=size_text
        )
    size = int(size_text)
    if size > _MAX_U64:
        raise NoteFormatError("checkpoint size does not fit in 64 bits", actual=size_text)
    # SPEC §6.4 step 4: canonical standard base64 of exactly 32 bytes.
    root = _b64decode(root_text, "checkpoint root")
    if len(root) != _HASH_SIZE:
        raise NoteFormatError(
            "checkpoint root must be 32 bytes", expected=_HASH_SIZE, actual=len(root)
        )
    # SPEC §6.4 step 5: extension lines are non-empty (an empty one would be the separator).
    return Checkpoint(origin, size, root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class WitnessCosignature:
    """A verified witness cosignature.

    Attributes:
        name: The witness key name.
        key_id: Its 4-byte key ID.
        timestamp: The POSIX time the witness attested (only as good as the witness).
    """

    name: str
    key_id: bytes
    timestamp: int


def verify_checkpoint_witnessed(
    note_bytes: bytes | str | Note,
    log_verifiers: Sequence[Verifier],
    witness_verifiers: Sequence[Verifier] = (),
    quorum: int = 0,
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, tuple[WitnessCosignature, ...]]:
    """Verify a signed checkpoint, its log signature and a k-of-n witness policy (SPEC §6.5).

    Args:
        note_bytes: The signed checkpoint note.
        log_verifiers: The log's keys (type 0x01); at least one must have signed.
        witness_verifiers: The witness keys (type 0x04) of the policy.
        quorum: How many distinct witnesses must have cosigned (k of n = len(witnesses)).
        origin: If given, the checkpoint must be for this origin.

    Returns:
        The checkpoint and the verified witness cosignatures (name, key ID, timestamp).

    Raises:
        NoteFormatError: The note or checkpoint is malformed.
        SignatureError: A signature by a known log or witness key does not verify.
        PolicyError: Wrong origin, no trusted log signature, or fewer than ``quorum``
            witnesses; the message names which witnesses were found and which were missing.
    """
    # SPEC §6.5 step 1: parse the note and the checkpoint body.
    note = note_bytes if isinstance(note_bytes, Note) else parse_note(note_bytes)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise PolicyError(
            "checkpoint is for another log", expected=origin, actual=checkpoint.origin
        )
    for v in log_verifiers:
        if v.sig_type != SIG_TYPE_ED25519:
            raise NoteFormatError(
                f"log key {v.name} is not an Ed25519 note key", expected=1, actual=v.sig_type
            )
    for v in witness_verifiers:
        if v.sig_type != SIG_TYPE_COSIGNATURE_V1:
            raise NoteFormatError(
                f"witness key {v.name} is not a cosignature/v1 key", expected=4, actual=v.sig_type
            )
    if not 0 <= quorum <= len(witness_verifiers):
        raise PolicyError(
            "quorum cannot be met by the witness set",
            expected=f"0..{len(witness_verifiers)}",
            actual=quorum,
        )
    # SPEC §6.5 step 2: every known signature must verify (a bad one refuses the note).
    verified = _verify_known(note, [*log_verifiers, *witness_verifiers])
    log_ids = {(v.name, v.key_id) for v in log_verifiers}
    # SPEC §6.5 step 3: at least one log signature.
    if not any((x.verifier.name, x.verifier.key_id) in log_ids for x in verified):
        raise PolicyError(
            "checkpoint is not signed by a trusted log key",
            expected=sorted(f"{v.name}+{v.key_id.hex()}" for v in log_verifiers),
            actual=[f"{s.name}+{s.key_id.hex()}" for s in note.signatures],
        )
    # SPEC §6.5 step 4: k-of-n distinct witnesses.
    cosigs = tuple(
        WitnessCosignature(x.verifier.name, x.verifier.key_id, x.timestamp)
        for x in verified
        if x.timestamp is not None
    )
    found = sorted({c.name for c in cosigs})
    if len(found) < quorum:
        missing = sorted({v.name for v in witness_verifiers} - set(found))
        raise PolicyError(
            f"{len(found)} of {quorum} required witness cosignatures "
            f"(of {len(witness_verifiers)} witnesses): found {found}, missing {missing}",
            expected=quorum,
            actual=len(found),
        )
    return checkpoint, cosigs


def verify_checkpoint(
    note_bytes: bytes | str | Note,
    log_verifiers: Sequence[Verifier],
    witness_verifiers: Sequence[Verifier] = (),
    quorum: int = 0,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint and return it (see :func:`verify_checkpoint_witnessed`).

    Args:
        note_bytes: The signed checkpoint note.
        log_verifiers: The log's keys.
        witness_verifiers: The witness keys of the policy.
        quorum: How many distinct witnesses must have cosigned.
        origin: If given, the checkpoint must be for this origin.

    Returns:
        The verified checkpoint.

    Raises:
        NoteFormatError: The note or checkpoint is malformed.
        SignatureError: A known key's signature does not verify.
        PolicyError: The log or witness policy is not met.
    """
    checkpoint, _ = verify_checkpoint_witnessed(
        note_bytes, log_verifiers, witness_verifiers, quorum, origin=origin
    )
    return checkpoint
