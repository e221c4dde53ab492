"""Errors of the anchoring client.

These are operational failures of talking to a chain, not tamper evidence: a checkpoint that
does not match what the chain holds is reported with :mod:`ledger.errors`
(:class:`~ledger.errors.HashMismatchError` / :class:`~ledger.errors.IntegrityError`).

::

    AnchorError                 anything that stopped an anchor or a read (config, key, node error)
     ├── AnchorTimeout          no answer in time, or the node could not be reached; the
     │                          transaction may or may not be on chain: keep it pending, retry
     └── AnchorReverted         the contract refused the call (decoded custom error in .reason)
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnchorError", "AnchorReverted", "AnchorTimeout"]


class AnchorError(Exception):
    """An anchor, deployment or chain read failed.

    Args:
        message: A human-readable explanation (shown to operators as is).
        attempts: How many times the operation was tried.
        tx_hash: The transaction hash (``0x`` hex), when one was signed; with it the caller
            can later look the transaction up instead of sending a new one.
    """

    def __init__(self, message: str, *, attempts: int = 1, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.tx_hash = tx_hash

    def __str__(self) -> str:
        return self.message


class AnchorTimeout(AnchorError):
    """The node did not answer in time or could not be reached, after bounded retries.

    The transaction may still be mined later: callers keep the anchor pending (with
    :attr:`tx_hash` where known) and try again; they never drop it.
    """


class AnchorReverted(AnchorError):
    """The contract refused the call.

    Args:
        message: A human-readable explanation.
        error_name: The Solidity custom error, e.g. ``"SizeNotIncreasing"`` (``""`` if unknown).
        error_args: Its decoded arguments by name, e.g. ``{"last": 7, "given": 7}``.
        **kw: ``attempts`` and ``tx_hash`` as for :class:`AnchorError`.
    """

    def __init__(
        self,
        message: str,
        *,
        error_name: str = "",
        error_args: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.error_name = error_name
        self.error_args = dict(error_args or {})
