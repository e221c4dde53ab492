"""GS1 keys, GS1 Digital Link and NMPA 药品追溯码: build, print and parse identifiers.

One entry point, :func:`parse_code`, reads every form a scanner or a person produces
(Digital Link on any domain, element strings with or without an AIM symbology
identifier, HRI, EPC URNs, NMPA 20-digit codes, plain GTINs) and returns one frozen
:data:`Identifier`. Each identifier prints itself as a Digital Link on a chosen
resolver domain, as its canonical ``https://id.gs1.org`` form (the form used inside
EPCIS events and as the database key), as an element string and as HRI.

The rules, and the step numbers cited in comments, are in docs/spec/01-identifiers.md.

The module is pure: no I/O, no clock, no randomness. Two-digit years are read as
20YY (not by the GS1 sliding window, which would need today's date).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from biip import ParseError as _BiipParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier

from ledger.errors import (
    CheckDigitError,
    CodeFormatError,
    MissingSeparatorError,
    UnknownAIError,
)

__all__ = [
    "GS1_RESOLVER",
    "LOT_MAX",
    "SERIAL_MAX",
    "Giai",
    "Gtin",
    "Identifier",
    "Lgtin",
    "NmpaCode",
    "PartyGln",
    "Sgln",
    "Sgtin",
    "Sscc",
    "epc_to_canonical",
    "gs1_check_digit",
    "make_nmpa_code",
    "nmpa_check_char",
    "parse_code",
    "verify_check_digit",
]

GS1_RESOLVER: Final = "https://id.gs1.org"
"""The resolver domain of every canonical Digital Link."""

LOT_MAX: Final = 20
"""Maximum length of a batch/lot (AI 10, an..20)."""

SERIAL_MAX: Final = 20
"""Maximum length of a serial number (AI 21, an..20)."""

_GIAI_MAX: Final = 30
_EXT_MAX: Final = 20
_GS: Final = "\x1d"

# GS1 AI encodable character set 82 (GenSpecs fig. 7.11-1), as used by AIs 10, 21, 254, 8004.
_AI82 = re.compile(r'[!"%-?A-Z_a-z]+')
_DIGITS = re.compile(r"[0-9]+")
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
# AIM symbology identifiers that announce FNC1 in first position, i.e. GS1 element strings:
# GS1 DataMatrix, GS1 QR, GS1-128, GS1 DataBar.
_GS1_AIM: Final = frozenset({"]d2", "]Q3", "]C1", "]e0"})
# AIM identifiers of symbols that carry only a plain GTIN: EAN-13/UPC-A, EAN-8, ITF-14.
_GTIN_AIM: Final = frozenset({"]E0", "]E4", "]I0"})
_GTIN_LENGTHS: Final = frozenset({8, 12, 13, 14})
_KEY_LENGTHS: Final = frozenset({8, 12, 13, 14, 17, 18})
_PRIMARY_KEYS: Final = ("01", "00", "414", "417", "8004")
# Digital Link path order of key qualifiers after each primary key (SPEC §1.5 step 4).
_QUALIFIER_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "01": ("22", "10", "21", "235"),
    "414": ("254",),
}
_ALL_QUALIFIERS: Final = frozenset({"22", "10", "21", "235", "254"})
_UNSUPPORTED_QUALIFIERS: Final = frozenset({"22", "235"})
# AIs whose loss of a preceding GS the separator heuristic looks for (SPEC §1.4 step 5).
_SWALLOWABLE: Final = ("10", "21", "17")
_DATE_AIS: Final = frozenset({"11", "12", "13", "15", "16", "17"})
_NMPA_LEN: Final = 20
_NMPA_URN: Final = "urn:yima:nmpa:"


# --------------------------------------------------------------------------- check digits


def gs1_check_digit(body: str) -> int:
    """Compute the GS1 mod-10 check digit of a key body (GTIN, GLN, SSCC...).

    From the rightmost digit of the body, weights 3, 1, 3, ... are applied; the
    check digit is ``(10 - sum mod 10) mod 10`` (GS1 GenSpecs §7.9.1).

    Args:
        body: The key without its check digit, ASCII digits only.

    Returns:
        The check digit, 0-9.

    Raises:
        CodeFormatError: If ``body`` is empty or not all ASCII digits.
    """
    if not _DIGITS.fullmatch(body):
        raise CodeFormatError(f"a GS1 key body must be ASCII digits, got {body!r}")
    # The digits summed as bytes ("0" is 48), weight 3 on every second one from the right;
    # the same sum as digit by digit, without a Python-level loop.
    raw = body.encode("ascii")
    size = len(raw)
    total = 3 * sum(raw[::-2]) + sum(raw[-2::-2]) - 48 * (3 * ((size + 1) // 2) + size // 2)
    return -total % 10


def verify_check_digit(key: str) -> None:
    """Check the last digit of a whole GS1 key (GTIN-8/12/13/14, GLN, GSIN, SSCC).

    Args:
        key: The key including its check digit (8, 12, 13, 14, 17 or 18 digits).

    Raises:
        CodeFormatError: If ``key`` is not a GS1 key length of ASCII digits.
        CheckDigitError: If the check digit is wrong; ``expected``/``actual`` hold the digits.
    """
    if not _DIGITS.fullmatch(key) or len(key) not in _KEY_LENGTHS:
        raise CodeFormatError(
            f"a GS1 key must be 8, 12, 13, 14, 17 or 18 ASCII digits, got {key!r}"
        )
    _check_key(key, "GS1 key")


def _check_key(key: str, label: str) -> None:
    expected = str(gs1_check_digit(key[:-1]))
    if key[-1] != expected:
        raise CheckDigitError(
            f"{label} {key} has a wrong check digit: the body {key[:-1]} needs {expected}",
            expected=expected,
            actual=key[-1],
        )


def _gs1_key(value: str, length: int, label: str) -> str:
    if not _DIGITS.fullmatch(value) or len(value) != length:
        raise CodeFormatError(f"{label} must be {length} ASCII digits, got {value!r}")
    _check_key(value, label)
    return value


# --------------------------------------------------------------------------- NMPA


def nmpa_check_char(body19: str) -> str:
    """Compute Yima's check character for an NMPA 20-digit 药品追溯码.

    The official check part of 药品追溯码 is platform-specific and unpublished, so
    Yima uses its OWN documented scheme: ISO/IEC 7064 MOD 11,10 over the first 19
    digits, giving one decimal digit (so the code stays 20 digits). It catches every
    single-digit error and nearly all adjacent transpositions. Codes issued by other
    platforms, whose check scheme differs, are still accepted as opaque codes by
    :func:`parse_code` unless ``strict=True`` (SPEC §1.8).

    Args:
        body19: The first 19 digits (7-digit 药品标识码 + 12 more).

    Returns:
        The check digit as a one-character string.

    Raises:
        CodeFormatError: If ``body19`` is not 19 ASCII digits.
    """
    if not _DIGITS.fullmatch(body19) or len(body19) != _NMPA_LEN - 1:
        raise CodeFormatError(f"an NMPA code body must be 19 ASCII digits, got {body19!r}")
    return _mod_11_10(body19)


def _mod_11_10(digits: str) -> str:
    # ISO/IEC 7064 MOD 11,10 (hybrid system), as in the standard's worked example.
    product = 10
    for d in digits:
        total = (product + int(d)) % 10 or 10
        product = (2 * total) % 11
    return str((11 - product) % 10)


def make_nmpa_code(drug_id7: str, serial12: str) -> str:
    """Build a 20-digit NMPA code carrying Yima's check digit.

    Args:
        drug_id7: The 7-digit 药品标识码 (one per drug and packaging level).
        serial12: 12 digits identifying the pack within that 药品标识码.

    Returns:
        ``drug_id7 + serial12 + nmpa_check_char(drug_id7 + serial12)``.

    Raises:
        CodeFormatError: If either part has the wrong length or is not ASCII digits.
    """
    if not _DIGITS.fullmatch(drug_id7) or len(drug_id7) != 7:
        raise CodeFormatError(f"a 药品标识码 must be 7 ASCII digits, got {drug_id7!r}")
    if not _DIGITS.fullmatch(serial12) or len(serial12) != 12:
        raise CodeFormatError(f"the NMPA serial part must be 12 ASCII digits, got {serial12!r}")
    body = drug_id7 + serial12
    return body + _mod_11_10(body)


# --------------------------------------------------------------------------- helpers


def _text(value: str, label: str, max_len: int) -> str:
    if not value:
        raise CodeFormatError(f"{label} is empty")
    if len(value) > max_len:
        raise CodeFormatError(
            f"{label} {value!r} is {len(value)} characters; at most {max_len} are allowed"
        )
    if not _AI82.fullmatch(value):
        bad = next(c for c in value if not _AI82.fullmatch(c))
        raise CodeFormatError(
            f"{label} {value!r} contains {bad!r}, outside the GS1 AI encodable character set 82"
        )
    return value


def _decode_yymmdd(value: str, ai: str) -> date:
    if not _DIGITS.fullmatch(value) or len(value) != 6:
        raise CodeFormatError(f"AI ({ai}) date must be 6 digits YYMMDD, got {value!r}")
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    if not 1 <= month <= 12:
        raise CodeFormatError(f"AI ({ai}) date {value!r} has month {month:02d}")
    if day == 0:
        # GenSpecs §7.12: day 00 means the last day of the month.
        day = calendar.monthrange(year, month)[1]
    try:
        return date(year, month, day)
    except ValueError:
        raise CodeFormatError(f"AI ({ai}) date {value!r} is not a real date") from None


def _encode_yymmdd(value: date) -> str:
    return f"{value.year % 100:02d}{value.month:02d}{value.day:02d}"


def _resolver(domain: str) -> str:
    base = domain.rstrip("/")
    low = base.lower()
    if not (low.startswith(("https://", "http://")) and "?" not in base and "#" not in base):
        raise CodeFormatError(
            f"a resolver domain must be an http(s) URL without query, got {domain!r}"
        )
    return base


def _pct(value: str) -> str:
    # Everything outside RFC 3986 unreserved characters is percent-encoded (SPEC §1.2).
    return quote(value, safe="")


# --------------------------------------------------------------------------- identifiers


class _Gs1Key:
    """Shared behaviour of the GS1-key identifiers (not public)."""

    __slots__ = ()
    kind: ClassVar[str]

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def element_string(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def hri(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def canonical(self) -> str:
        """The Digital Link on https://id.gs1.org (EPCIS form and database key)."""
        return self.digital_link(GS1_RESOLVER)


@dataclass(frozen=True, slots=True)
class Sgtin(_Gs1Key):
    """One serialised trade item (a pack): GTIN + serial, with lot and expiry if known.

    Args:
        gtin: GTIN-14 (GTIN-8/12/13 left-padded with zeros), check digit verified.
        serial: Serial number (AI 21), 1..20 characters of GS1 set 82.
        lot: Batch/lot (AI 10), 1..20 characters of GS1 set 82, if known.
        expiry: Expiry date (AI 17), year 2000-2099, if known.
    """

    kind: ClassVar[str] = "sgtin"
    gtin: str
    serial: str
    lot: str | None = None
    expiry: date | None = None

    def __post_init__(self) -> None:
        _gs1_key(self.gtin, 14, "GTIN")
        _text(self.serial, "serial (21)", SERIAL_MAX)
        if self.lot is not None:
            _text(self.lot, "lot (10)", LOT_MAX)
        if self.expiry is not None and (
            isinstance(self.expiry, datetime) or not 2000 <= self.expiry.year <= 2099
        ):
            raise CodeFormatError(
                f"expiry must be a date in 2000-2099 (AI 17 is YYMMDD), got {self.expiry!r}"
            )

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/01/{gtin}[/10/{lot}]/21/{serial}[?17=YYMMDD]``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI; lot and serial percent-encoded.
        """
        lot = f"/10/{_pct(self.lot)}" if self.lot is not None else ""
        query = f"?17={_encode_yymmdd(self.expiry)}" if self.expiry is not None else ""
        return f"{_resolver(domain)}/01/{self.gtin}{lot}/21/{_pct(self.serial)}{query}"

    @property
    def canonical(self) -> str:
        """``https://id.gs1.org/01/{gtin}/21/{serial}``: the item's identity, no lot/expiry."""
        return f"{GS1_RESOLVER}/01/{self.gtin}/21/{_pct(self.serial)}"

    def element_string(self) -> str:
        """Element string: 01, 17 (fixed) first, then 10, GS, 21; no trailing GS."""
        parts = [f"01{self.gtin}"]
        if self.expiry is not None:
            parts.append(f"17{_encode_yymmdd(self.expiry)}")
        if self.lot is not None:
            parts.append(f"10{self.lot}{_GS}")
        parts.append(f"21{self.serial}")
        return "".join(parts)

    def hri(self) -> str:
        """Human-readable interpretation, e.g. ``(01)…(17)…(10)…(21)…``."""
        out = f"(01){self.gtin}"
        if self.expiry is not None:
            out += f"(17){_encode_yymmdd(self.expiry)}"
        if self.lot is not None:
            out += f"(10){self.lot}"
        return out + f"(21){self.serial}"


@dataclass(frozen=True, slots=True)
class Lgtin(_Gs1Key):
    """A batch/lot of a trade item (class level): GTIN + lot.

    Args:
        gtin: GTIN-14, check digit verified.
        lot: Batch/lot (AI 10), 1..20 characters of GS1 set 82.
    """

    kind: ClassVar[str] = "lgtin"
    gtin: str
    lot: str

    def __post_init__(self) -> None:
        _gs1_key(self.gtin, 14, "GTIN")
        _text(self.lot, "lot (10)", LOT_MAX)

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/01/{gtin}/10/{lot}``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI; the lot percent-encoded.
        """
        return f"{_resolver(domain)}/01/{self.gtin}/10/{_pct(self.lot)}"

    def element_string(self) -> str:
        """Element string ``01{gtin}10{lot}``."""
        return f"01{self.gtin}10{self.lot}"

    def hri(self) -> str:
        """Human-readable interpretation ``(01){gtin}(10){lot}``."""
        return f"(01){self.gtin}(10){self.lot}"


@dataclass(frozen=True, slots=True)
class Gtin(_Gs1Key):
    """A trade item class (product), no lot or serial.

    Args:
        gtin: GTIN-14, check digit verified.
    """

    kind: ClassVar[str] = "gtin"
    gtin: str

    def __post_init__(self) -> None:
        _gs1_key(self.gtin, 14, "GTIN")

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/01/{gtin}``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI.
        """
        return f"{_resolver(domain)}/01/{self.gtin}"

    def element_string(self) -> str:
        """Element string ``01{gtin}``."""
        return f"01{self.gtin}"

    def hri(self) -> str:
        """Human-readable interpretation ``(01){gtin}``."""
        return f"(01){self.gtin}"


@dataclass(frozen=True, slots=True)
class Sscc(_Gs1Key):
    """A logistic unit (case, pallet, shipper).

    Args:
        sscc: 18 digits, check digit verified.
    """

    kind: ClassVar[str] = "sscc"
    sscc: str

    def __post_init__(self) -> None:
        _gs1_key(self.sscc, 18, "SSCC")

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/00/{sscc}``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI.
        """
        return f"{_resolver(domain)}/00/{self.sscc}"

    def element_string(self) -> str:
        """Element string ``00{sscc}``."""
        return f"00{self.sscc}"

    def hri(self) -> str:
        """Human-readable interpretation ``(00){sscc}``."""
        return f"(00){self.sscc}"


@dataclass(frozen=True, slots=True)
class Sgln(_Gs1Key):
    """A physical location: GLN with an optional extension (dock, line, room).

    Args:
        gln: 13 digits, check digit verified.
        extension: GLN extension (AI 254), 1..20 characters of GS1 set 82, if any.
    """

    kind: ClassVar[str] = "sgln"
    gln: str
    extension: str | None = None

    def __post_init__(self) -> None:
        _gs1_key(self.gln, 13, "GLN")
        if self.extension is not None:
            _text(self.extension, "GLN extension (254)", _EXT_MAX)

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/414/{gln}[/254/{extension}]``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI; the extension percent-encoded.
        """
        ext = f"/254/{_pct(self.extension)}" if self.extension is not None else ""
        return f"{_resolver(domain)}/414/{self.gln}{ext}"

    def element_string(self) -> str:
        """Element string ``414{gln}[254{extension}]`` (414 is fixed-length: no GS)."""
        ext = f"254{self.extension}" if self.extension is not None else ""
        return f"414{self.gln}{ext}"

    def hri(self) -> str:
        """Human-readable interpretation ``(414){gln}[(254){extension}]``."""
        ext = f"(254){self.extension}" if self.extension is not None else ""
        return f"(414){self.gln}{ext}"


@dataclass(frozen=True, slots=True)
class PartyGln(_Gs1Key):
    """A party (company, pharmacy, CDC) identified by its GLN.

    Args:
        gln: 13 digits, check digit verified.
    """

    kind: ClassVar[str] = "pgln"
    gln: str

    def __post_init__(self) -> None:
        _gs1_key(self.gln, 13, "GLN")

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/417/{gln}``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI.
        """
        return f"{_resolver(domain)}/417/{self.gln}"

    def element_string(self) -> str:
        """Element string ``417{gln}``."""
        return f"417{self.gln}"

    def hri(self) -> str:
        """Human-readable interpretation ``(417){gln}``."""
        return f"(417){self.gln}"


@dataclass(frozen=True, slots=True)
class Giai(_Gs1Key):
    """An individual asset, e.g. a temperature logger.

    Args:
        giai: GIAI (AI 8004), 1..30 characters of GS1 set 82.
    """

    kind: ClassVar[str] = "giai"
    giai: str

    def __post_init__(self) -> None:
        _text(self.giai, "GIAI (8004)", _GIAI_MAX)

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """Digital Link ``{domain}/8004/{giai}``.

        Args:
            domain: Resolver base URL, optionally with a path prefix.

        Returns:
            The URI; the GIAI percent-encoded.
        """
        return f"{_resolver(domain)}/8004/{_pct(self.giai)}"

    def element_string(self) -> str:
        """Element string ``8004{giai}``."""
        return f"8004{self.giai}"

    def hri(self) -> str:
        """Human-readable interpretation ``(8004){giai}``."""
        return f"(8004){self.giai}"


@dataclass(frozen=True, slots=True)
class NmpaCode:
    """A Chinese NMPA 20-digit 药品追溯码 (drug traceability code), held opaque.

    It is not a GS1 key: mapping it to GTIN/lot/expiry is data held elsewhere.
    Only the shape (20 ASCII digits) is checked here; see :func:`nmpa_check_char`
    and ``parse_code(..., strict=True)`` for Yima's own check digit.

    Args:
        code: The 20 digits.
    """

    kind: ClassVar[str] = "nmpa"
    code: str

    def __post_init__(self) -> None:
        if not _DIGITS.fullmatch(self.code) or len(self.code) != _NMPA_LEN:
            raise CodeFormatError(f"an NMPA 药品追溯码 must be 20 ASCII digits, got {self.code!r}")

    @property
    def drug_id(self) -> str:
        """The first 7 digits: the 药品标识码 (drug and packaging level)."""
        return self.code[:7]

    @property
    def canonical(self) -> str:
        """``urn:yima:nmpa:{code}``."""
        return f"{_NMPA_URN}{self.code}"

    def digital_link(self, domain: str = GS1_RESOLVER) -> str:
        """NMPA codes have no GS1 Digital Link; always raises.

        Args:
            domain: Ignored.

        Raises:
            CodeFormatError: Always; use :attr:`canonical` or :meth:`element_string`.
        """
        raise CodeFormatError(
            f"NMPA code {self.code} is not a GS1 key and has no Digital Link; "
            "use .canonical (urn:yima:nmpa:…) or the 20 digits"
        )

    def element_string(self) -> str:
        """The 20 digits, as printed in the barcode."""
        return self.code

    def hri(self) -> str:
        """The 20 digits, as printed under the barcode."""
        return self.code


Identifier = Sgtin | Lgtin | Gtin | Sscc | Sgln | PartyGln | Giai | NmpaCode
"""Any identifier :func:`parse_code` can return."""


# --------------------------------------------------------------------------- parsing


def parse_code(text: str, *, gs_substitute: str | None = None, strict: bool = False) -> Identifier:
    """Parse any scanner or typed form of an identifier (SPEC §1.3).

    Accepted: GS1 Digital Link on any domain and path prefix; element strings, bare
    or after an AIM symbology identifier (]d2 ]Q3 ]C1 ]e0) or a leading GS; HRI
    ``(01)…(21)…``; EPC URNs (sgtin, sscc, sgln, pgln, giai, lgtin class, sgtin idpat);
    plain GTIN-8/12/13/14 digits; NMPA 20-digit codes and ``urn:yima:nmpa:…``.

    A bare 20-digit number is an NMPA code; it is read as an SSCC element string
    (``00`` + 18 digits) only after a GS1 AIM identifier or a leading GS, or as
    ``(00)…`` HRI (SPEC §1.8).

    Args:
        text: What the scanner or user sent. Surrounding spaces, tabs, CR and LF are ignored.
        gs_substitute: A string the keyboard-wedge scanner sends instead of GS (0x1D),
            e.g. ``"<GS>"`` or ``"^]"``; it is replaced by GS before anything else.
        strict: Also require NMPA codes to carry Yima's own check digit
            (:func:`nmpa_check_char`). Off by default because codes from other
            platforms use their own, unpublished schemes and are accepted as opaque.

    Returns:
        The identifier.

    Raises:
        CheckDigitError: A GS1 key (or, when strict, an NMPA code) has a wrong check digit.
        UnknownAIError: An Application Identifier is unknown or not allowed there.
        MissingSeparatorError: A variable-length element lost its GS separator.
        CodeFormatError: Anything else wrong.
    """
    # SPEC §1.3 step 1: normalise. str.strip() would also drop GS (Python counts
    # 0x1C-0x1F as whitespace), so strip only real whitespace.
    data = text.strip(" \t\r\n")
    if gs_substitute is not None:
        if not gs_substitute:
            raise CodeFormatError("gs_substitute must not be empty")
        data = data.replace(gs_substitute, _GS)
    if not data:
        raise CodeFormatError("empty code")

    # SPEC §1.3 step 2: AIM symbology identifier.
    gs1_mode = False
    if _AIM.match(data):
        aim, data = data[:3], data[3:]
        if aim in _GS1_AIM:
            gs1_mode = True
        elif aim in _GTIN_AIM:
            return _plain_gtin(data, aim)
    if data.startswith(_GS):
        # FNC1 in first position sent as GS: a GS1 element string (SPEC §1.3 step 2).
        gs1_mode = True
    if gs1_mode:
        return _parse_element_string(data)

    # SPEC §1.3 step 3: dispatch on the shape of the text.
    low = data.lower()
    if low.startswith(("https://", "http://")):
        return _parse_digital_link(data)
    if low.startswith(_NMPA_URN):
        return _nmpa(data[len(_NMPA_URN) :], strict)
    if low.startswith("urn:epc:"):
        return _parse_epc_urn(data)
    if data.startswith("("):
        return _parse_hri(data)
    if _DIGITS.fullmatch(data):
        if len(data) == _NMPA_LEN:
            return _nmpa(data, strict)  # SPEC §1.8: a bare 20-digit number is NMPA
        if len(data) in _GTIN_LENGTHS:
            return _plain_gtin(data, "digits")
    if not data[:1].isdigit() or not data[:1].isascii():
        raise CodeFormatError(
            f"unrecognised code {data[:40]!r}: not a Digital Link, EPC URN, HRI, "
            "NMPA code or GS1 element string"
        )
    return _parse_element_string(data)


def epc_to_canonical(uri: str) -> str:
    """Map any EPC URN or Digital Link (any domain) to its canonical form.

    SGTINs keep only ``/01/{gtin}/21/{serial}`` (lot and expiry dropped). NMPA
    ``urn:yima:nmpa:`` URNs are returned unchanged.

    Args:
        uri: ``urn:epc:…``, ``urn:yima:nmpa:…`` or an http(s) Digital Link.

    Returns:
        The ``https://id.gs1.org/…`` Digital Link (or the NMPA URN).

    Raises:
        CodeFormatError: If ``uri`` is not one of those URI forms or is malformed.
        CheckDigitError: If a key's check digit is wrong.
        UnknownAIError: If a Digital Link uses an AI not allowed there.
    """
    low = uri.strip().lower()
    if not low.startswith(("urn:epc:", "http://", "https://", _NMPA_URN)):
        raise CodeFormatError(f"not an EPC URN or Digital Link: {uri[:60]!r}")
    return parse_code(uri.strip()).canonical


def _nmpa(code: str, strict: bool) -> NmpaCode:
    result = NmpaCode(code)
    if strict:
        expected = _mod_11_10(code[:-1])
        if code[-1] != expected:
            raise CheckDigitError(
                f"NMPA code {code} fails Yima's ISO 7064 MOD 11,10 check",
                expected=expected,
                actual=code[-1],
            )
    return result


def _plain_gtin(data: str, source: str) -> Gtin:
    if not _DIGITS.fullmatch(data) or len(data) not in _GTIN_LENGTHS:
        raise CodeFormatError(f"a {source} scan must be a GTIN-8/12/13/14, got {data!r}")
    return Gtin(_gs1_key(data.zfill(14), 14, "GTIN"))


# ---- element strings (SPEC §1.4)


def _lookup_ai(rest: str, pos: int) -> GS1ApplicationIdentifier:
    if not rest[:1].isdigit() or not rest[:1].isascii():
        raise CodeFormatError(
            f"expected a GS1 Application Identifier at position {pos}, got {rest[:10]!r}"
        )
    try:
        return GS1ApplicationIdentifier.extract(rest)
    except _BiipParseError:
        raise UnknownAIError(
            f"unknown GS1 Application Identifier at position {pos}: data starts {rest[:6]!r}"
        ) from None


def _exact_ai(code: str) -> GS1ApplicationIdentifier:
    try:
        ai = GS1ApplicationIdentifier.extract(code)
    except _BiipParseError:
        ai = None
    if ai is None or ai.ai != code:
        raise UnknownAIError(f"unknown GS1 Application Identifier ({code})")
    return ai


def _max_len(ai: GS1ApplicationIdentifier) -> int | None:
    m = re.search(r"\.\.(\d+)\]?$", ai.format)
    return int(m.group(1)) if m else None


def _validate(ai: GS1ApplicationIdentifier, value: str) -> str:
    """Check one AI's data against biip's pattern; say what is wrong (SPEC §1.4 step 4)."""
    m = re.fullmatch(ai.pattern, ai.ai + value)
    if m:
        return "".join(g for g in m.groups() if g is not None)
    if not value:
        raise CodeFormatError(f"AI ({ai.ai}) {ai.data_title} has no data")
    if ai.ai in _DATE_AIS:
        _decode_yymmdd(value, ai.ai)  # raises with the precise reason
    max_len = _max_len(ai)
    if "X.." in ai.format and max_len is not None:
        _text(value, f"AI ({ai.ai}) {ai.data_title}", max_len)
    raise CodeFormatError(
        f"AI ({ai.ai}) {ai.data_title} data {value[:40]!r} does not match its format {ai.format}"
    )


def _split_element_string(data: str) -> list[tuple[GS1ApplicationIdentifier, str, bool]]:
    """Split into (AI, raw data, ended-by-GS) — SPEC §1.4 steps 1-3."""
    out: list[tuple[GS1ApplicationIdentifier, str, bool]] = []
    pos, n = 0, len(data)
    while pos < n:
        if data[pos] == _GS:
            pos += 1  # GS is allowed after any element, even fixed-length ones
            continue
        ai = _lookup_ai(data[pos:], pos)
        seg_end = data.find(_GS, pos)
        if seg_end < 0:
            seg_end = n
        if ai.separator_required:
            # GS1: a variable-length field runs to the next GS or the end of data.
            out.append((ai, data[pos + len(ai.ai) : seg_end], seg_end < n))
            pos = seg_end
            continue
        m = re.match(ai.pattern.removesuffix("$"), data[pos:seg_end])
        if m is None:
            got = data[pos + len(ai.ai) : seg_end]
            if ai.ai in _DATE_AIS and len(got) >= 6:
                _decode_yymmdd(got[:6], ai.ai)  # a wrong date says which part is wrong
            raise CodeFormatError(
                f"AI ({ai.ai}) {ai.data_title} needs {ai.format}, got {got[:40]!r}"
            )
        out.append((ai, "".join(g for g in m.groups() if g is not None), True))
        pos += m.end()
    if not out:
        raise CodeFormatError("element string holds no data")
    return out


def _read_tail(tail: str, taken: set[str]) -> list[tuple[str, str]] | None:
    """Read ``tail`` as qualifier AIs absent from the message, or None (SPEC §1.4 step 5)."""
    found: list[tuple[str, str]] = []
    used = set(taken)
    p = 0
    while p < len(tail):
        ai = tail[p : p + 2]
        if ai not in _SWALLOWABLE or ai in used:
            return None
        used.add(ai)
        if ai == "17":
            digits = tail[p + 2 : p + 8]
            try:
                _decode_yymmdd(digits, ai)
            except CodeFormatError:
                return None
            found.append((ai, digits))
            p += 8
        else:
            value = tail[p + 2 :]
            if not 1 <= len(value) <= 20 or not _AI82.fullmatch(value):
                return None
            found.append((ai, value))
            p = len(tail)
    return found or None


def _check_separator(ai: str, value: str, present: set[str]) -> None:
    """Refuse a variable-length value that swallowed the next element (SPEC §1.4 step 5)."""
    for i in range(1, len(value)):
        found = _read_tail(value[i:], present)
        if found:
            reads = "".join(f"({a}){v}" for a, v in found)
            raise MissingSeparatorError(
                f"AI ({ai}) is not ended by GS: its data {value!r} ends with {value[i:]!r}, "
                f"which reads as {reads} — separator lost? The scan is refused rather than "
                "guessed; check the scanner's GS/FNC1 output (or gs_substitute)"
            )


def _parse_element_string(data: str) -> Identifier:
    raw = _split_element_string(data)
    present = {ai.ai for ai, _, _ in raw}
    elements: list[tuple[str, str]] = []
    for idx, (ai, value, ended_by_gs) in enumerate(raw):
        if ai.separator_required:
            max_len = _max_len(ai)
            too_long = max_len is not None and len(value) > max_len
            # SPEC §1.4 step 5: only a field that overflowed, or the last one (it runs
            # to end of data), can have swallowed a following element.
            # The swallowable AIs qualify a GTIN, so only GTIN codes are examined.
            last_open = idx == len(raw) - 1 and not ended_by_gs
            if "01" in present and (too_long or last_open):
                _check_separator(ai.ai, value, present)
            value = _validate(ai, value)
        elements.append((ai.ai, value))
    return _build(elements)


# ---- HRI (SPEC §1.7)

_HRI_ELEMENT = re.compile(r"\s*\((\d{2,4})\)([^()]*)")


def _parse_hri(data: str) -> Identifier:
    elements: list[tuple[str, str]] = []
    pos = 0
    while pos < len(data):
        m = _HRI_ELEMENT.match(data, pos)
        if m is None:
            raise CodeFormatError(
                f"HRI must be (AI)data(AI)data…; cannot read {data[pos : pos + 20]!r} "
                f"at position {pos}"
            )
        code, value = m.group(1), m.group(2).rstrip(" \t")
        elements.append((code, _validate(_exact_ai(code), value)))
        pos = m.end()
    return _build(elements)


# ---- Digital Link (SPEC §1.5)


def _parse_digital_link(uri: str) -> Identifier:
    try:
        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
    except ValueError as exc:  # bad IPv6 host, or %-escapes that are not UTF-8
        raise CodeFormatError(f"malformed Digital Link {uri[:60]!r}: {exc}") from None
    if not parts.netloc:
        raise CodeFormatError(f"Digital Link has no host: {uri[:60]!r}")
    raw = parts.path.split("/")[1:]
    if raw and raw[-1] == "":
        raw = raw[:-1]  # tolerate one trailing slash
    # SPEC §1.5 step 2: the primary key is the first path segment that is a key AI.
    start = next((i for i, s in enumerate(raw) if s in _PRIMARY_KEYS), None)
    if start is None:
        raise CodeFormatError(
            f"Digital Link path {parts.path!r} has no GS1 primary key (/01/, /00/, /414/, "
            "/417/ or /8004/)"
        )
    for seg in raw[:start]:
        if seg in _ALL_QUALIFIERS:
            # SPEC §1.5 step 3: a qualifier before its key is a wrong order, not a prefix.
            raise CodeFormatError(
                f"Digital Link key qualifier /{seg}/ comes before the primary key "
                f"/{raw[start]}/; the GS1 order is /01/{{gtin}}/10/{{lot}}/21/{{serial}}"
            )
    pairs = raw[start:]
    if len(pairs) % 2:
        raise CodeFormatError(f"Digital Link path ends with /{pairs[-1]}/ and no value")
    key = pairs[0]
    order = _QUALIFIER_ORDER.get(key, ())
    elements: list[tuple[str, str]] = []
    last = -1
    for i in range(0, len(pairs), 2):
        code = pairs[i]
        try:
            value = unquote(pairs[i + 1], errors="strict")
        except UnicodeDecodeError:
            raise CodeFormatError(
                f"Digital Link value {pairs[i + 1]!r} is not valid percent-encoded UTF-8"
            ) from None
        if i:
            # SPEC §1.5 step 4: qualifiers in the fixed GS1 order, each at most once.
            if code not in order:
                raise UnknownAIError(
                    f"/{code}/ is not a key qualifier of /{key}/ in a Digital Link path; "
                    "data attributes go in the query, e.g. ?17=YYMMDD"
                )
            rank = order.index(code)
            if rank <= last:
                raise CodeFormatError(
                    f"Digital Link key qualifiers out of order: /{code}/ after "
                    f"/{order[last]}/; the GS1 order is /" + "/…/".join(order) + "/…"
                )
            last = rank
        if code == "01" and _DIGITS.fullmatch(value) and len(value) in _GTIN_LENGTHS:
            value = value.zfill(14)  # GTIN-8/12/13 are padded to 14 digits
        elements.append((code, value))
    # SPEC §1.5 step 5: the query string carries data attributes.
    for name, value in query:
        if not _DIGITS.fullmatch(name):
            continue  # linkType, context, tracking parameters: not GS1 data
        if name == "10" and key == "01":
            # Non-canonical ?10= lot, seen in the field; the same lot twice is harmless,
            # two different lots are refused by _build.
            elements.append((name, value))
        elif name == "17":
            elements.append((name, value))
        elif name in _PRIMARY_KEYS or name in _ALL_QUALIFIERS:
            raise CodeFormatError(
                f"AI ({name}) in the query: keys and key qualifiers belong in the Digital Link path"
            )
        else:
            _exact_ai(name)  # unknown AIs are refused; other known attributes are ignored
    checked = [(code, _validate(_exact_ai(code), value)) for code, value in elements]
    return _build(checked)


# ---- EPC URNs (SPEC §1.6)


def _epc_part(value: str, label: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise CodeFormatError(f"EPC URN {label} {value!r} is not valid %-escaped UTF-8") from None


def _company_split(cp: str, ref: str, total: int, urn: str) -> None:
    if not (_DIGITS.fullmatch(cp) and _DIGITS.fullmatch(ref)):
        raise CodeFormatError(f"EPC URN {urn!r}: company prefix and reference must be digits")
    if not 6 <= len(cp) <= 12 or len(cp) + len(ref) != total:
        raise CodeFormatError(
            f"EPC URN {urn!r}: company prefix ({len(cp)} digits, 6-12 allowed) plus "
            f"reference must be {total} digits, got {len(cp) + len(ref)}"
        )


def _parse_epc_urn(urn: str) -> Identifier:
    pieces = urn.split(":", 4)
    if len(pieces) != 5:
        raise CodeFormatError(f"EPC URN must be urn:epc:{{id|class|idpat}}:scheme:…, got {urn!r}")
    family, scheme, body = pieces[2].lower(), pieces[3].lower(), pieces[4]
    fields: list[str] = []

    def need(count: int) -> None:
        # The last field (serial, lot, extension, asset) may itself contain dots.
        fields[:] = body.split(".", count - 1)
        if len(fields) != count or not all(fields):
            raise CodeFormatError(
                f"EPC URN {urn!r}: {scheme} needs {count} non-empty dot-separated fields"
            )

    def gtin_of(cp: str, ind_item: str) -> str:
        _company_split(cp, ind_item, 13, urn)
        body13 = ind_item[0] + cp + ind_item[1:]
        return body13 + str(gs1_check_digit(body13))

    # SPEC §1.6: rebuild the GS1 key by moving the indicator/extension digit to the front.
    if family == "id" and scheme == "sgtin":
        need(3)
        return Sgtin(gtin_of(fields[0], fields[1]), _epc_part(fields[2], "serial"))
    if family == "id" and scheme == "sscc":
        need(2)
        _company_split(fields[0], fields[1], 17, urn)
        body17 = fields[1][0] + fields[0] + fields[1][1:]
        return Sscc(body17 + str(gs1_check_digit(body17)))
    if family == "id" and scheme in ("sgln", "pgln"):
        need(3 if scheme == "sgln" else 2)
        _company_split(fields[0], fields[1], 12, urn)
        gln = fields[0] + fields[1] + str(gs1_check_digit(fields[0] + fields[1]))
        if scheme == "pgln":
            return PartyGln(gln)
        ext = _epc_part(fields[2], "extension")
        return Sgln(gln, None if ext == "0" else ext)  # TDS: extension 0 means none
    if family == "id" and scheme == "giai":
        need(2)
        if not _DIGITS.fullmatch(fields[0]) or not 6 <= len(fields[0]) <= 12:
            raise CodeFormatError(f"EPC URN {urn!r}: company prefix must be 6-12 digits")
        return Giai(fields[0] + _epc_part(fields[1], "asset reference"))
    if family == "class" and scheme == "lgtin":
        need(3)
        return Lgtin(gtin_of(fields[0], fields[1]), _epc_part(fields[2], "lot"))
    if family == "idpat" and scheme == "sgtin":
        need(3)
        if fields[1] == "*" or fields[2] != "*":
            raise CodeFormatError(
                f"EPC pattern {urn!r}: only company.item.* (one GTIN) is supported"
            )
        return Gtin(gtin_of(fields[0], fields[1]))
    raise CodeFormatError(f"EPC URN type urn:epc:{family}:{scheme} is not supported")


# ---- building the identifier (SPEC §1.9)


def _build(elements: list[tuple[str, str]]) -> Identifier:
    data: dict[str, str] = {}
    for ai, value in elements:
        if ai in data and data[ai] != value:
            raise CodeFormatError(
                f"AI ({ai}) appears twice with different data", expected=data[ai], actual=value
            )
        data[ai] = value
    unsupported = sorted(_UNSUPPORTED_QUALIFIERS & data.keys())
    if unsupported:
        raise UnknownAIError(
            f"AI ({unsupported[0]}) is a key qualifier this ledger does not support"
        )
    keys = [k for k in _PRIMARY_KEYS if k in data]
    if not keys:
        found = ", ".join(f"({a})" for a in data)
        raise CodeFormatError(
            f"no GS1 key (01, 00, 414, 417 or 8004) in the code; it holds {found}"
        )
    if len(keys) > 1:
        raise CodeFormatError(
            "one code must name one thing; it holds several GS1 keys: "
            + ", ".join(f"({k})" for k in keys)
        )
    key = keys[0]
    if "21" in data and key != "01":
        raise CodeFormatError("AI (21) serial needs a GTIN (01) in the same code")
    if "254" in data and key != "414":
        raise CodeFormatError("AI (254) GLN extension needs a location GLN (414)")
    if key == "01":
        gtin = _gs1_key(data["01"], 14, "GTIN")
        expiry = _decode_yymmdd(data["17"], "17") if "17" in data else None
        if "21" in data:
            return Sgtin(gtin, data["21"], data.get("10"), expiry)
        if "10" in data:
            return Lgtin(gtin, data["10"])
        return Gtin(gtin)
    if key == "00":
        return Sscc(data["00"])
    if key == "414":
        return Sgln(data["414"], data.get("254"))
    if key == "417":
        return PartyGln(data["417"])
    return Giai(data["8004"])
