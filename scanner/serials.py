"""Cryptographically random serial numbers for SGTINs and NMPA codes (SPEC §11.3).

EU FMD (Delegated Regulation 2016/161, Art. 4(b)) requires that the probability of guessing a
serial number be "negligible and in any case lower than one in ten thousand". The guess
probability of one try is ``issued / space`` (``space`` = alphabet size ** length), so every
draw checks ``issued * 10_000 <= space`` before it hands out serials. Randomness comes from
:mod:`secrets` (the OS CSPRNG); tests may pass their own ``randbelow`` for fixed output.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from fractions import Fraction
from typing import Final

__all__ = [
    "GUESS_LIMIT",
    "SERIAL_ALPHABET",
    "SerialPolicyError",
    "guess_probability",
    "nmpa_serials",
    "sgtin_serials",
]

#: Crockford base32 without I, L, O, U: all in GS1 set 82, unambiguous when typed by hand.
SERIAL_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: The EU FMD bound on the probability of guessing a valid serial.
GUESS_LIMIT: Final = Fraction(1, 10_000)
_NMPA_SERIAL_DIGITS: Final = 12

RandBelow = Callable[[int], int]


class SerialPolicyError(ValueError):
    """More serials were asked for than the space allows at the EU FMD guess bound."""


def guess_probability(issued: int, alphabet_size: int, length: int) -> Fraction:
    """Probability that one random guess hits an issued serial.

    Args:
        issued: Serials issued under the same GTIN (or 药品标识码), including this draw.
        alphabet_size: Characters per position.
        length: Serial length.

    Returns:
        ``issued / alphabet_size ** length`` as an exact fraction.
    """
    return Fraction(issued, alphabet_size**length)


def _check(issued: int, alphabet_size: int, length: int) -> None:
    p = guess_probability(issued, alphabet_size, length)
    if p > GUESS_LIMIT:
        raise SerialPolicyError(
            f"{issued} serials of length {length} over {alphabet_size} symbols give a guess "
            f"probability of {float(p):.3g} > 1/10,000 (EU FMD): use longer serials"
        )


def _draw(count: int, draw_one: Callable[[], str]) -> list[str]:
    # A set rejects the (astronomically rare) repeat within one draw; the ledger's R1
    # "commission once" rule is the backstop across draws.
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        s = draw_one()
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def sgtin_serials(
    count: int,
    *,
    length: int = 12,
    already_issued: int = 0,
    randbelow: RandBelow = secrets.randbelow,
) -> list[str]:
    """Draw distinct random GS1 serials (AI 21) from :data:`SERIAL_ALPHABET`.

    Args:
        count: How many serials.
        length: Characters per serial (1..20; 12 gives 60 bits).
        already_issued: Serials issued before under the same GTIN (counts toward the bound).
        randbelow: Source of uniform integers (tests only; default :func:`secrets.randbelow`).

    Returns:
        ``count`` distinct serials.

    Raises:
        SerialPolicyError: If the guess probability would exceed 1/10,000.
        ValueError: If ``count`` or ``length`` is out of range.
    """
    if count < 0 or not 1 <= length <= 20:
        raise ValueError("count must be >= 0 and length 1..20")
    n = len(SERIAL_ALPHABET)
    _check(already_issued + count, n, length)
    alphabet = SERIAL_ALPHABET
    space = n**length

    def one() -> str:
        v = randbelow(space)
        chars = []
        for _ in range(length):
            v, r = divmod(v, n)
            chars.append(alphabet[r])
        return "".join(chars)

    return _draw(count, one)


def nmpa_serials(
    count: int,
    *,
    already_issued: int = 0,
    randbelow: RandBelow = secrets.randbelow,
) -> list[str]:
    """Draw distinct random 12-digit serial parts for NMPA 20-digit codes.

    Args:
        count: How many serial parts.
        already_issued: Codes issued before under the same 药品标识码.
        randbelow: Source of uniform integers (tests only).

    Returns:
        ``count`` distinct 12-digit strings (leading zeros kept).

    Raises:
        SerialPolicyError: If the guess probability would exceed 1/10,000.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    _check(already_issued + count, 10, _NMPA_SERIAL_DIGITS)
    space = 10**_NMPA_SERIAL_DIGITS
    return _draw(count, lambda: f"{randbelow(space):012d}")
