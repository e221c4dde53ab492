"""The one error tree of the pure core.

Every failure in :mod:`ledger` is a :class:`LedgerError`. Verification never
returns ``False``: it returns ``None`` or raises one of these, carrying the
compared values where there are any (``expected`` / ``actual``).

::

    LedgerError
     ├── EncodingError                  input is malformed or not in the required form
     │    ├── CodeError                 a scanned or typed identifier is wrong
     │    │    ├── CheckDigitError      GS1 mod-10 check digit does not match
     │    │    ├── UnknownAIError       GS1 Application Identifier not known / not allowed
     │    │    ├── MissingSeparatorError a variable-length AI lost its GS (FNC1) separator
     │    │    └── CodeFormatError      anything else wrong with a code's syntax
     │    ├── EpcisValidationError      EPCIS document/event breaks the schema (path + reason)
     │    ├── CanonicalizationError     value cannot be put in RFC 8785 form
     │    └── NoteFormatError           C2SP signed note / checkpoint is malformed
     ├── IntegrityError                 tamper evidence: the bytes do not verify
     │    ├── SignatureError            an Ed25519 signature does not verify
     │    ├── HashMismatchError         a recomputed hash differs (expected/actual)
     │    ├── ChainError                a producer seq/prev chain is broken (expected/actual)
     │    ├── ProofError                a Merkle inclusion/consistency proof fails
     │    ├── PolicyError               too few trusted signatures (k-of-n not met)
     │    └── AuditFailure              a full re-verification found its first bad entry (index)
     ├── ConflictError                  a write lost a race or contradicts the log (fork, seq reuse)
     ├── NotFoundError                  an unknown key, index or item
     ├── AuthorizationError             the actor may never perform this step (refused, not logged)
     ├── WitnessRefusal                 a witness refuses a checkpoint (carries the HTTP status)
     └── RuleViolation                  a lifecycle rule (R1–R10) refuses a step; carries alert kind
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditFailure",
    "AuthorizationError",
    "CanonicalizationError",
    "ChainError",
    "CheckDigitError",
    "CodeError",
    "CodeFormatError",
    "ConflictError",
    "EncodingError",
    "EpcisValidationError",
    "HashMismatchError",
    "IntegrityError",
    "LedgerError",
    "MissingSeparatorError",
    "NotFoundError",
    "NoteFormatError",
    "PolicyError",
    "ProofError",
    "RuleViolation",
    "SignatureError",
    "UnknownAIError",
    "WitnessRefusal",
]


class LedgerError(Exception):
    """Root of every error raised by :mod:`ledger`.

    Args:
        message: A human-readable explanation (shown to users as is).
        expected: The value the verifier wanted, where a comparison failed.
        actual: The value it found.
    """

    def __init__(self, message: str, *, expected: Any = None, actual: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        if self.expected is None and self.actual is None:
            return self.message
        return f"{self.message} (expected {self.expected!r}, got {self.actual!r})"


class EncodingError(LedgerError):
    """Input is malformed or not in the form the format requires."""


class CodeError(EncodingError):
    """A scanned or typed identifier (GS1 key, Digital Link, NMPA code) is wrong."""


class CheckDigitError(CodeError):
    """A GS1 mod-10 check digit does not match the body."""


class UnknownAIError(CodeError):
    """A GS1 Application Identifier is unknown or not allowed here."""


class MissingSeparatorError(CodeError):
    """A variable-length GS1 element lost its GS (FNC1) end; the scan is refused, not guessed."""


class CodeFormatError(CodeError):
    """Any other syntax problem in an identifier."""


class EpcisValidationError(EncodingError):
    """An EPCIS document or event breaks the EPCIS 2.0 schema.

    Args:
        message: Why the field is wrong.
        path: JSON path of the offending field, e.g. ``epcisBody.eventList[0].ilmd``.
    """

    def __init__(self, message: str, *, path: str = "", **kw: Any) -> None:
        super().__init__(f"{path}: {message}" if path else message, **kw)
        self.path = path
        self.reason = message


class CanonicalizationError(EncodingError):
    """A value cannot be serialised as RFC 8785 canonical JSON."""


class NoteFormatError(EncodingError):
    """A C2SP signed note, checkpoint, cosignature or verifier key is malformed."""


class IntegrityError(LedgerError):
    """Tamper evidence: stored or received bytes do not verify."""


class SignatureError(IntegrityError):
    """An Ed25519 signature does not verify."""


class HashMismatchError(IntegrityError):
    """A recomputed hash differs from the recorded one."""


class ChainError(IntegrityError):
    """A producer's seq/prev hash chain is broken (gap, reorder or fork)."""


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof does not verify."""


class PolicyError(IntegrityError):
    """Too few trusted signatures or cosignatures (a k-of-n policy is not met)."""


class ConflictError(LedgerError):
    """A write contradicts the log: a lost race, a forked head, a reused producer seq."""


class NotFoundError(LedgerError):
    """An unknown key, index, entry or item."""


class AuthorizationError(LedgerError):
    """The actor may never perform this step: wrong role, or a site it does not operate.

    Unlike a :class:`RuleViolation`, the request is refused and nothing is logged.
    """


class RuleViolation(LedgerError):
    """A lifecycle rule refuses a step.

    Args:
        message: Why the step is refused.
        kind: The alert kind, e.g. ``"double_dispense"``.
        rule: The rule number, e.g. ``"R5"``.
    """

    def __init__(self, message: str, *, kind: str, rule: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.kind = kind
        self.rule = rule


class AuditFailure(IntegrityError):
    """A full re-verification of the log stopped at its first failing entry.

    Args:
        message: Why the entry fails.
        index: The log index of the first failing entry (None for a log-level failure).
        reason: A short machine-readable reason, e.g. ``"capture_signature"``.
        checkpoint: The size of the failing checkpoint, for a checkpoint-level failure.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None,
        reason: str,
        checkpoint: int | None = None,
        **kw: Any,
    ) -> None:
        if index is not None:
            where = f"entry {index}: "
        elif checkpoint is not None:
            where = f"checkpoint at size {checkpoint}: "
        else:
            where = ""
        super().__init__(f"{where}{reason}: {message}", **kw)
        self.index = index
        self.reason = reason
        self.checkpoint = checkpoint


class WitnessRefusal(LedgerError):
    """A witness refuses to cosign a checkpoint (c2sp.org/tlog-witness).

    Args:
        message: Why the checkpoint is refused.
        status: The HTTP status the protocol prescribes (400, 403, 404, 409 or 422).
        latest_size: For 409, the size of the latest checkpoint the witness cosigned.
    """

    def __init__(
        self, message: str, *, status: int, latest_size: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.latest_size = latest_size
