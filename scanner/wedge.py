"""Keyboard-wedge scanner input: one scan per line on stdin (SPEC §11.4.3).

A wedge gun types what it reads and ends it with Enter. With AIM IDs on, GS1 symbols start with
their symbology identifier (``]d2`` DataMatrix, ``]Q3`` QR, ``]C1`` GS1-128); the in-code FNC1
separator arrives as GS (0x1D, Ctrl+]) or as a substitute string configured on the gun (for
example ``<GS>`` or ``^]``), which is turned back into GS. A GS1 scan that lost a separator it
needed is refused by the parser (:class:`ledger.errors.MissingSeparatorError`), never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ledger.errors import CodeError
from ledger.identifiers import Identifier, parse_code

__all__ = ["WedgeScan", "read_wedge"]


@dataclass(frozen=True, slots=True)
class WedgeScan:
    """One line from the wedge.

    Attributes:
        raw: The line as typed (without its line ending).
        identifier: The parsed identifier, or None if refused.
        error: Why it was refused.
    """

    raw: str
    identifier: Identifier | None
    error: CodeError | None


def read_wedge(lines: Iterable[str], *, gs_substitute: str | None = None) -> Iterator[WedgeScan]:
    """Parse wedge lines; blank lines are skipped.

    Args:
        lines: A text stream (e.g. ``sys.stdin``) or any iterable of lines.
        gs_substitute: The string the gun sends instead of GS, if any.

    Yields:
        One :class:`WedgeScan` per non-blank line, in order.
    """
    for line in lines:
        raw = line.rstrip("\r\n")
        if not raw.strip(" \t"):
            continue
        try:
            yield WedgeScan(raw, parse_code(raw, gs_substitute=gs_substitute), None)
        except CodeError as e:
            yield WedgeScan(raw, None, e)
