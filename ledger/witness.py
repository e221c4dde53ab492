"""The witness state machine of c2sp.org/tlog-witness (v1.0.0), pure (SPEC §10.1-10.3).

A witness keeps, per log origin, the latest checkpoint it cosigned: ``(origin, size, root)``.
``add-checkpoint`` brings a new checkpoint and a consistency proof from the size the client
believes the witness is at. :func:`check_add_checkpoint` decides, without any I/O, whether the
witness may cosign it and what its new state is; the caller persists that state atomically
(compare-and-swap on the old state) *before* it answers with :func:`cosignature_lines`.

Every refusal is a :class:`~ledger.errors.WitnessRefusal` carrying the HTTP status the
protocol prescribes:

====== ==================================================================================
400    malformed request, or ``old`` is larger than the checkpoint size
403    no trusted log signature verifies (or a trusted key's signature is bad)
404    the checkpoint's origin is not a log this witness knows
409    ``old`` is not the latest cosigned size (``latest_size`` says which it is), or the
       same size arrives with a different root
422    the consistency proof does not verify (a fork), or a size-0 checkpoint without the
       empty-tree root
====== ==================================================================================

The same-size/different-root case is 409 as written in the C2SP text (earlier summaries of
the protocol said 422; see docs/adr/0007-witness-and-bundles.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ledger.errors import (
    EncodingError,
    LedgerError,
    NoteFormatError,
    PolicyError,
    ProofError,
    SignatureError,
    WitnessRefusal,
)
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from ledger.note import (
    Checkpoint,
    CosignatureSigner,
    Note,
    Verifier,
    cosign,
    parse_checkpoint,
    parse_note,
    verify_checkpoint,
)

__all__ = [
    "MAX_PROOF_LINES",
    "AddCheckpointRequest",
    "WitnessState",
    "check_add_checkpoint",
    "cosignature_lines",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

#: A client MUST NOT send more than 63 consistency proof lines (c2sp.org/tlog-witness).
MAX_PROOF_LINES: Final = 63
_MAX_U64: Final = 2**64 - 1


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The latest checkpoint a witness cosigned for one log.

    Attributes:
        origin: The log's origin line.
        size: The cosigned tree size (0 before the first cosignature).
        root: The cosigned root hash (:data:`~ledger.merkle.EMPTY_ROOT` for size 0).
    """

    origin: str
    size: int
    root: bytes

    @classmethod
    def initial(cls, origin: str) -> WitnessState:
        """The state of a log the witness never cosigned: size 0, the empty-tree root."""
        return cls(origin, 0, EMPTY_ROOT)


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    """A parsed ``add-checkpoint`` request body (signatures not yet verified).

    Attributes:
        old_size: The size the client says the witness last cosigned.
        proof: The consistency proof from ``old_size`` to the checkpoint size.
        note: The signed checkpoint note.
        checkpoint: Its parsed body.
    """

    old_size: int
    proof: tuple[bytes, ...]
    note: Note
    checkpoint: Checkpoint

    @property
    def origin(self) -> str:
        """The checkpoint's origin (what the witness looks its state up by)."""
        return self.checkpoint.origin


def _bad_request(message: str, cause: LedgerError | None = None) -> WitnessRefusal:
    err = WitnessRefusal(message, status=400)
    err.__cause__ = cause
    return err


def _decimal(text: str, what: str) -> int:
    # ASCII decimal, no sign, no leading zeros unless the value is 0 (same rule as checkpoints).
    if (
        text == ""
        or not all("0" <= c <= "9" for c in text)
        or (len(text) > 1 and text[0] == "0")
        or int(text) > _MAX_U64
    ):
        raise _bad_request(f"{what} must be a decimal without leading zeros: {text!r}")
    return int(text)


def _hash_line(line: str, n: int) -> bytes:
    try:
        raw = base64.b64decode(line.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise _bad_request(f"proof line {n} is not base64") from e
    if base64.b64encode(raw).decode("ascii") != line or len(raw) != HASH_SIZE:
        raise _bad_request(f"proof line {n} is not the canonical base64 of a 32-byte hash")
    return raw


def parse_add_checkpoint(body: bytes | str) -> AddCheckpointRequest:
    """Parse an ``add-checkpoint`` request body (SPEC §10.2 steps 1-2).

    ``old <size>\\n``, zero to 63 base64 proof lines, an empty line, then the signed checkpoint.

    Args:
        body: The request body (UTF-8).

    Returns:
        The parsed request.

    Raises:
        WitnessRefusal: status 400 for any malformed part.
    """
    if isinstance(body, bytes | bytearray):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise _bad_request("request body is not UTF-8") from e
    else:
        text = body
    # SPEC §10.2 step 1: the FIRST empty line ends the header (the note has its own, later).
    head, sep, note_text = text.partition("\n\n")
    if not sep:
        raise _bad_request("request has no empty line before the checkpoint")
    lines = head.split("\n")
    first, proof_lines = lines[0], lines[1:]
    if not first.startswith("old "):
        raise _bad_request("request must start with 'old <size>'")
    old = _decimal(first[4:], "old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise _bad_request(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = tuple(_hash_line(line, n) for n, line in enumerate(proof_lines, 1))
    # SPEC §10.2 step 2: the rest is a signed note whose text is a checkpoint.
    try:
        note = parse_note(note_text)
        checkpoint = parse_checkpoint(note.text)
    except NoteFormatError as e:
        raise _bad_request(f"malformed checkpoint: {e}", e) from e
    return AddCheckpointRequest(old, proof, note, checkpoint)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes | str) -> bytes:
    """Build an ``add-checkpoint`` request body (what a log sends to a witness).

    Args:
        old_size: The size the log believes the witness last cosigned.
        proof: The consistency proof from ``old_size`` to the checkpoint's size.
        note: The signed checkpoint note.

    Returns:
        The request body bytes.
    """
    note_bytes = note.encode("utf-8") if isinstance(note, str) else note
    lines = [f"old {old_size}\n", *(base64.b64encode(h).decode("ascii") + "\n" for h in proof)]
    return ("".join(lines) + "\n").encode("ascii") + note_bytes


def check_add_checkpoint(
    request: AddCheckpointRequest | bytes | str,
    state: WitnessState | None,
    log_verifiers: Mapping[str, Sequence[Verifier]],
) -> tuple[WitnessState, Checkpoint]:
    """Decide an ``add-checkpoint`` request (SPEC §10.2 steps 3-9).

    Args:
        request: The request (parsed, or its body).
        state: The witness's state for the request's origin, or None if it never cosigned a
            checkpoint of that log (treated as size 0 with the empty-tree root).
        log_verifiers: The log keys the witness trusts, by origin.

    Returns:
        The new state to persist (compare-and-swap against ``state``) and the checkpoint to
        cosign once it is persisted.

    Raises:
        WitnessRefusal: With the C2SP status (400, 403, 404, 409, 422); ``latest_size`` is set
            on 409. The underlying ledger error, if any, is the ``__cause__``.
    """
    req = request if isinstance(request, AddCheckpointRequest) else parse_add_checkpoint(request)
    cp = req.checkpoint
    # SPEC §10.2 step 3: the origin must be a known log -> else 404.
    verifiers = log_verifiers.get(cp.origin)
    if not verifiers:
        raise WitnessRefusal(f"unknown log origin {cp.origin!r}", status=404)
    if state is not None and state.origin != cp.origin:
        raise ValueError("state is for another origin")  # caller bug, not a protocol outcome
    current = state if state is not None else WitnessState.initial(cp.origin)
    # SPEC §10.2 step 4: a trusted log signature must verify; a bad one from a trusted key
    # refuses the note -> 403.
    try:
        verify_checkpoint(req.note, verifiers, origin=cp.origin)
    except (PolicyError, SignatureError, NoteFormatError) as e:
        refusal = WitnessRefusal(f"checkpoint signature: {e}", status=403)
        raise refusal from e
    # SPEC §10.2 step 5: old must not exceed the checkpoint size -> 400.
    if req.old_size > cp.size:
        raise _bad_request(f"old size {req.old_size} is larger than checkpoint size {cp.size}")
    # SPEC §10.2 step 6: old must be the latest cosigned size -> 409 with that size.
    if req.old_size != current.size:
        raise WitnessRefusal(
            f"old size {req.old_size} is not the latest cosigned size {current.size}",
            status=409,
            latest_size=current.size,
            expected=current.size,
            actual=req.old_size,
        )
    # SPEC §10.2 step 7: a size-0 checkpoint must carry the empty-tree root -> 422.
    if cp.size == 0 and cp.root_hash != EMPTY_ROOT:
        raise WitnessRefusal(
            "size-0 checkpoint does not carry the empty-tree root",
            status=422,
            expected=EMPTY_ROOT.hex(),
            actual=cp.root_hash.hex(),
        )
    # SPEC §10.2 step 8: same size, different root: a fork at equal size -> 409 (C2SP text).
    if cp.size == current.size and cp.root_hash != current.root:
        raise WitnessRefusal(
            "checkpoint has the latest cosigned size but a different root",
            status=409,
            latest_size=current.size,
            expected=current.root.hex(),
            actual=cp.root_hash.hex(),
        )
    # SPEC §10.2 step 9: the proof from the *stored* root (never a client-supplied one) to the
    # new root; old=0 needs an empty proof -> 422 on any failure.
    try:
        verify_consistency(current.size, cp.size, current.root, cp.root_hash, list(req.proof))
    except ProofError as e:
        raise WitnessRefusal(f"consistency proof: {e}", status=422) from e
    return WitnessState(cp.origin, cp.size, cp.root_hash), cp


def cosignature_lines(
    checkpoint: Checkpoint | Note | str,
    signers: Sequence[CosignatureSigner],
    timestamp: int,
) -> bytes:
    """The ``add-checkpoint`` response body: one ``cosignature/v1`` line per witness key.

    Args:
        checkpoint: The checkpoint that was accepted (or its note, or its note text).
        signers: The witness's cosigning keys.
        timestamp: POSIX seconds (the caller's clock).

    Returns:
        The signature lines, each ``— <name> <base64>\\n``.

    Raises:
        EncodingError: No signer was given.
    """
    if not signers:
        raise EncodingError("a witness needs at least one cosigning key")
    if isinstance(checkpoint, Checkpoint):
        text = checkpoint.body()
    elif isinstance(checkpoint, Note):
        text = checkpoint.text
    else:
        text = checkpoint
    return "".join(cosign(text, s, timestamp).line() for s in signers).encode("utf-8")
