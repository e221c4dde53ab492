"""CBV 2.0 EPCIS event hash (``ni:///sha-256;{hex}?ver=CBV2.0``), the event ID of the ledger.

The algorithm is specified in ``docs/spec/03-eventhash.md``; comments cite its steps as
``# SPEC §3 step n``. It reproduces the GS1 reference implementation (RalphTro
epcis-event-hash-generator) byte for byte on EPCIS 2.0 JSON-LD, including its documented
quirks, without JSON-LD processing or network access: the few JSON-LD facts the hash depends
on (which bare CBV terms expand to which Web URI) are built-in tables taken from the standard
GS1 EPCIS 2.0 context.

Public API:

* :func:`prehash_string` / :func:`event_hash` for one event (a JSON object as a mapping).
* :func:`document_event_hashes` for an ``EPCISDocument`` or ``EPCISQueryDocument`` (JSON-LD
  mapping, bytes or text; XML bytes/text are accepted too), in document order.

Malformed input raises :class:`ledger.errors.EncodingError` subclasses; structural problems
raise :class:`ledger.errors.EpcisValidationError` carrying the JSON path of the field.

Two implementations, one result: the general path (``_prehash_general``: the reference's node
tree, SPEC §3 steps 1-11) is the definition; a fast path (``_prehash_fast``) emits the pre-hash
string of the usual lone event (the shapes the ``ledger.epcis`` builders make) in one pass and
steps aside for anything else. ``tests/unit/test_eventhash_fastpath.py`` proves they agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Final
from xml.etree import ElementTree

from ledger import cbv
from ledger.errors import EncodingError, EpcisValidationError

__all__ = [
    "EVENT_HASH_VERSION",
    "EVENT_TYPES",
    "document_event_hashes",
    "document_prehash_strings",
    "event_hash",
    "hash_prehash",
    "prehash_string",
]

EVENT_HASH_VERSION: Final = "CBV2.0"
"""The ``?ver=`` tag of every hash this module emits; stored with each hash (rules may change)."""

EVENT_TYPES: Final = frozenset(
    {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }
)
"""The EPCIS 2.0 event types."""

# A pre-hash tree node, the data model of the reference: (name, text, children).
# Children lists are mutated while the ordered part consumes them (SPEC §3 step 6).
Node = tuple[str, str, list["Node"]]

_PAIR: Final = (
    "\x00pair"  # name of a (type, id) node inside bizTransaction/source/destination lists
)

_CBV: Final = "https://ref.gs1.org/cbv/"
_GS1_VOC: Final = "https://gs1.org/voc/"
_EXPANDED_PREFIXES: Final = ("https://ref.gs1.org/cbv", "https://gs1.org/voc")

# JSON-LD contexts whose term tables are built in (SPEC §3 step 2). Any other remote context
# is not fetched; its terms are unknown to us.
_STANDARD_CONTEXTS: Final = frozenset(
    {
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
        "https://gs1.github.io/EPCIS/epcis-context.jsonld",
    }
)

# ---------------------------------------------------------------------------------------------
# Built-in knowledge of the GS1 EPCIS 2.0 JSON-LD context: bare terms of the type-scoped
# vocabularies and the Web URI each one expands to.
# ---------------------------------------------------------------------------------------------
# The CBV 2.0 and GS1 vocabularies are defined once, in ledger.cbv (the validator uses the
# same lists); sorted so the tables below are built in a stable order.
_BIZ_STEPS: Final = tuple(sorted(cbv.BIZ_STEPS))
_DISPOSITIONS: Final = tuple(sorted(cbv.DISPOSITIONS))
_BTT: Final = tuple(sorted(cbv.BIZ_TRANSACTION_TYPES))
_SDT: Final = tuple(sorted(cbv.SOURCE_DEST_TYPES))
_ER: Final = tuple(sorted(cbv.ERROR_REASONS))
_COMPONENTS: Final = tuple(sorted(cbv.COMPONENTS))
_MEASUREMENT_TYPES: Final = tuple(sorted(cbv.MEASUREMENT_TYPES))
_SENSOR_EXCEPTIONS: Final = tuple(sorted(cbv.ALERT_TYPES))


def _table(prefix: str, terms: Iterable[str]) -> dict[str, str]:
    return {t: prefix + t for t in terms}


_T_BIZ_STEP: Final = _table(_CBV + "BizStep-", _BIZ_STEPS)
_T_DISP: Final = _table(_CBV + "Disp-", _DISPOSITIONS)
_T_BTT: Final = _table(_CBV + "BTT-", _BTT)
_T_SDT: Final = _table(_CBV + "SDT-", _SDT)
_T_ER: Final = _table(_CBV + "ER-", _ER)
_T_COMP: Final = _table(_CBV + "Comp-", _COMPONENTS)
_T_MTYPE: Final = _table(_GS1_VOC, _MEASUREMENT_TYPES)
_T_EXC: Final = _table(_GS1_VOC, _SENSOR_EXCEPTIONS)

# (scope, key) -> vocabulary table; scope names the enclosing property-scoped context.
_SCOPED_VOCAB: Final[dict[tuple[str, str], dict[str, str]]] = {
    ("pd", "set"): _T_DISP,
    ("pd", "unset"): _T_DISP,
    ("btl", "type"): _T_BTT,
    ("src", "type"): _T_SDT,
    ("dst", "type"): _T_SDT,
    ("sr", "type"): _T_MTYPE,
    ("sr", "exception"): _T_EXC,
    ("sr", "component"): _T_COMP,
    ("err", "reason"): _T_ER,
}
_GLOBAL_VOCAB: Final[dict[str, dict[str, str]]] = {"bizStep": _T_BIZ_STEP, "disposition": _T_DISP}
_SCOPE_OF_KEY: Final = {
    "persistentDisposition": "pd",
    "bizTransactionList": "btl",
    "sourceList": "src",
    "destinationList": "dst",
    "sensorElementList": "sel",
    "sensorReport": "sr",
    "errorDeclaration": "err",
}
# Every term the standard context defines as a property (keys other than these, compact
# IRIs and absolute IRIs are dropped by JSON-LD expansion).
_KNOWN_TERMS: Final = frozenset(
    [
        "action",
        "baseURL",
        "bizLocation",
        "bizRules",
        "bizStep",
        "bizTransaction",
        "bizTransactionList",
        "booleanValue",
        "certificationInfo",
        "chemicalSubstance",
        "childEPCs",
        "childQuantityList",
        "children",
        "component",
        "coordinateReferenceSystem",
        "correctiveEventIDs",
        "creationDate",
        "dataProcessingMethod",
        "declarationTime",
        "destination",
        "destinationList",
        "deviceID",
        "deviceMetadata",
        "disposition",
        "endTime",
        "epcClass",
        "epcList",
        "epcisBody",
        "epcisHeader",
        "errorDeclaration",
        "eventID",
        "eventList",
        "eventTime",
        "eventTimeZoneOffset",
        "exception",
        "hexBinaryValue",
        "id",
        "ilmd",
        "inputEPCList",
        "inputQuantityList",
        "instanceIdentifier",
        "masterData",
        "maxValue",
        "meanValue",
        "member",
        "microorganism",
        "minValue",
        "outputEPCList",
        "outputQuantityList",
        "parentID",
        "percRank",
        "percValue",
        "persistentDisposition",
        "quantity",
        "quantityList",
        "queryName",
        "queryResults",
        "rawData",
        "readPoint",
        "reason",
        "receiver",
        "recordTime",
        "resultsBody",
        "sDev",
        "schemaVersion",
        "sender",
        "sensorElementList",
        "sensorMetadata",
        "sensorReport",
        "set",
        "source",
        "sourceList",
        "startTime",
        "stringValue",
        "subscriptionID",
        "time",
        "transformationID",
        "type",
        "unset",
        "uom",
        "uriValue",
        "value",
        "vocabularyList",
    ]
)
# Properties whose string values are IRIs (compact IRIs such as ``gs1:x`` get expanded).
_IRI_KEYS: Final = frozenset(
    [
        "bizLocation",
        "bizRules",
        "bizStep",
        "bizTransaction",
        "certificationInfo",
        "chemicalSubstance",
        "childEPCs",
        "children",
        "component",
        "coordinateReferenceSystem",
        "correctiveEventIDs",
        "dataProcessingMethod",
        "destination",
        "deviceID",
        "deviceMetadata",
        "disposition",
        "epcClass",
        "epcList",
        "eventID",
        "exception",
        "id",
        "inputEPCList",
        "member",
        "microorganism",
        "outputEPCList",
        "parentID",
        "rawData",
        "readPoint",
        "reason",
        "set",
        "source",
        "transformationID",
        "type",
        "unset",
        "uriValue",
    ]
)
_STD_PREFIXES: Final = {"cbv": _CBV, "gs1": _GS1_VOC}
_VOCAB_KEYS: Final = frozenset(
    {"bizStep", "disposition", "set", "unset", "type", "exception", "component", "reason"}
)


# ---------------------------------------------------------------------------------------------
# Identifier normalisation: EPC URN / Digital Link -> constrained canonical Digital Link.
# SPEC §3 step 9. The patterns reproduce the reference normaliser's acceptance rules exactly
# (including its odd corners); they are built from shared pieces for readability.
# ---------------------------------------------------------------------------------------------

# One character of an EPC URN component: a permitted %-escape or a plain URN character.
_X: Final = (
    r"(?:%2[125-9A-Fa-f]|%3[0-9A-Fa-f]|%4[1-9A-Fa-f]|%5[0-9AaFf]|%6[1-9A-Fa-f]|%7[0-9Aa]"
    r"|[!')(*+,.0-9:;=A-Za-z_-])"
)
_CPI_X: Final = r"(?:%2[3dfDF]|%3[0-9]|%4[1-9A-Fa-f]|%5[0-9Aa]|[0-9A-Z-])"
_DLC: Final = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"  # DL-safe chars


def _alts(parts: Iterable[str]) -> str:
    return "(?:" + "|".join(parts) + ")"


# GS1 company prefix (6..12 digits) "." reference, the two digit counts summing to `total`.
def _cp(total: int) -> str:
    return _alts(rf"\d{{{n}}}\.\d{{{total - n}}}" for n in range(6, 13))


# Same, but a 12-digit prefix is followed by two dots (an artefact of the reference).
def _cp_dd(total: int) -> str:
    return _alts([*(rf"\d{{{n}}}\.\d{{{total - n}}}" for n in range(6, 12)), r"\d{12}\.\."])


def _cp_var(chars: str, total: int) -> str:
    return _alts(rf"\d{{{n}}}\.{chars}{{1,{total - n}}}" for n in range(6, 13))


_URN_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    k: re.compile(v)
    for k, v in {
        "id:sgtin": rf"urn:epc:id:sgtin:{_cp(13)}\.{_X}{{1,20}}$",
        "id:sscc": rf"urn:epc:id:sscc:{_cp(17)}$",
        "id:sgln": rf"urn:epc:id:sgln:{_cp(12)}\.{_X}{{1,20}}$",
        "id:grai": rf"urn:epc:id:grai:{_cp_dd(12)}\.{_X}{{1,16}}$",
        "id:giai": rf"urn:epc:id:giai:{_cp_var(_X, 30)}$",
        "id:gsrn": rf"urn:epc:id:gsrn:{_cp(17)}$",
        "id:gsrnp": rf"urn:epc:id:gsrnp:{_cp(17)}$",
        "id:gdti": rf"urn:epc:id:gdti:{_cp_dd(12)}{_X}{{1,20}}$",
        "id:cpi": rf"urn:epc:id:cpi:{_cp_var(_CPI_X, 30)}\.\d{{1,12}}$",
        "id:sgcn": rf"urn:epc:id:sgcn:{_cp(12)}\.\d{{1,12}}$",
        "id:ginc": rf"urn:epc:id:ginc:{_cp_var(_X, 30)}$",
        "id:gsin": rf"urn:epc:id:gsin:{_cp(16)}$",
        "id:itip": rf"urn:epc:id:itip:{_cp(13)}\.\d{{2}}\.\d{{2}}\.{_X}{{1,20}}$",
        "id:upui": rf"urn:epc:id:upui:{_cp(13)}\.{_X}{{1,28}}$",
        "id:pgln": rf"urn:epc:id:pgln:{_cp(12)}$",
        "class:lgtin": rf"urn:epc:class:lgtin:{_cp(13)}\.{_X}{{1,20}}$",
        "idpat:sgtin": rf"urn:epc:idpat:sgtin:{_cp(13)}\.\*$",
        "idpat:grai": rf"urn:epc:idpat:grai:{_cp_dd(12)}\.\*$",
        "idpat:gdti": rf"urn:epc:idpat:gdti:{_cp_dd(12)}\.\*$",
        "idpat:sgcn": rf"urn:epc:idpat:sgcn:{_cp_dd(12)}\.\*$",
        "idpat:cpi": rf"urn:epc:idpat:cpi:{_cp_var(_CPI_X, 30)}\.\*$",
        "idpat:itip": rf"urn:epc:idpat:itip:{_cp(13)}\.\d{{2}}\.\d{{2}}\.\*$",
        "idpat:upui": rf"urn:epc:idpat:upui:{_cp(13)}\.\*$",
    }.items()
}

_DL_SHAPE: Final = re.compile(
    r"https?:(//((([^/?#]*)@)?([^/?#:]*)(:([^/?#]*))?))?((([^?#]*)(/(01|gtin|8006|itip|8010|cpid"
    r"|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc|402|gsin|8003"
    r"|grai|8004|giai)/)(\d{4}[^/]+)(/[^/]+/[^/]+)?/?(\?([^?\n]*))?(#([^\n]*))?)"
    r"|(/[A-Za-z_-]{10}$))"
)
_DL_CANONICAL_DOMAIN: Final = re.compile(
    r"https://id.gs1.org/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)"
    r"/(\d{4}[^/]+)"
)
_DL_SHORT_NAMES: Final = (
    ("/gtin/", "/01/"), ("/itip/", "/8006/"), ("/cpid/", "/8010/"), ("/gln/", "/414/"),
    ("/party/", "/417/"), ("/gsrnp/", "/8017/"), ("/gsrn/", "/8018/"), ("/gcn/", "/255/"),
    ("/sscc/", "/00/"), ("/gdti/", "/253/"), ("/ginc/", "/401/"), ("/gsin/", "/402/"),
    ("/grai/", "/8003/"), ("/giai/", "/8004/"), ("/cpv/", "/22/"), ("/lot/", "/10/"),
    ("/ser/", "/21/"),
)  # fmt: skip
# Primary keys searched (in this priority) when re-basing a custom domain onto id.gs1.org.
_DL_REBASE_KEYS: Final = (
    "/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/", "/417/", "/8003/", "/8004/",
    "/8006/", "/8010/", "/8017/", "/8018/",
)  # fmt: skip
_GTIN14: Final = re.compile(r"https://id.gs1.org/01/\d{14}")
_GTIN13: Final = re.compile(r"https://id.gs1.org/01/\d{13}")
_GTIN12: Final = re.compile(r"https://id.gs1.org/01/\d{12}")
_GTIN8: Final = re.compile(r"https://id.gs1.org/01/\d{8}")
_CPV_LAST: Final = re.compile(
    rf"https://id.gs1.org/8006/\d{{18}}/22/({_DLC}{{0,20}})$|https://id.gs1.org/01/\d{{14}}/22/({_DLC}{{0,20}})$"
)
_DLC_SLASH: Final = r"[\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"
_CPV_MID: Final = re.compile(
    rf"https://id.gs1.org/8006/\d{{18}}/22/({_DLC_SLASH}{{0,20}})$"
    rf"|https://id.gs1.org/01/\d{{14}}/22/({_DLC_SLASH}{{0,20}})$"
)
_LOT_AND_SERIAL: Final = re.compile(
    rf"https://id.gs1.org/8006/\d{{18}}/10/({_DLC}{{0,20}})/21/({_DLC}{{0,20}})$"
    rf"|https://id.gs1.org/01/(\d{{14}})/10/({_DLC}{{0,20}})/21/({_DLC}{{0,20}})$"
)
# The constrained output forms ("finest keys only"): SPEC §3 step 9c.
_DL_FINAL: Final = re.compile(
    "|".join(
        "(?:https://id.gs1.org/" + p + ")"
        for p in (
            r"00/(\d{18})$",
            rf"01/(\d{{14}})/21/({_DLC}{{0,20}})$",
            rf"01/(\d{{14}})/10/({_DLC}{{0,20}})$",
            r"01/(\d{14})$",
            rf"01/(\d{{14}})/235/({_DLC}{{0,28}})$",
            rf"253/(\d{{13}})({_DLC}{{0,17}})$",
            r"255/(\d{13})(\d{0,12})$",
            rf"401/({_DLC}{{0,30}})$",
            r"402/(\d{17})$",
            r"414/(\d{13})$",
            rf"414/(\d{{13}})/254/({_DLC}{{0,20}})$",
            r"417/(\d{13})$",
            rf"8003/(\d{{14}})({_DLC}{{0,16}})$",
            rf"8004/({_DLC}{{0,30}})$",
            rf"8006/(\d{{18}})/21/({_DLC}{{0,20}})$",
            rf"8006/(\d{{18}})/10/({_DLC}{{0,20}})$",
            r"8006/(\d{18})$",
            r"8010/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})/8011/(\d{0,12})$",
            r"8010/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})$",
            r"8017/(\d{18})$",
            r"8018/(\d{18})$",
        )
    )
)


def _check_digit_general(body: str) -> str:
    """GS1 mod-10 check digit of a key body (weights 3,1,3,... from the right)."""
    total = 3 * sum(map(int, body[::-2])) + sum(map(int, body[-2::-2]))
    return str(-total % 10)


@lru_cache(maxsize=1 << 12)
def _check_digit(body: str) -> str:
    """:func:`_check_digit_general`; ASCII digits are summed as bytes (``0`` is 48).

    Cached: the body is the GTIN/GLN part of an identifier, shared by all serials of a product.
    """
    if not (body.isascii() and body.isdigit()):
        return _check_digit_general(body)  # e.g. other Unicode decimal digits (regex \d)
    raw = body.encode()
    size = len(raw)
    total = 3 * sum(raw[::-2]) + sum(raw[-2::-2]) - 48 * (3 * ((size + 1) // 2) + size // 2)
    return str(-total % 10)


def _pct(text: str) -> str:
    """Percent-encode the characters GS1 Digital Link reserves that EPC URNs allow."""
    if text.isalnum():  # none of the characters below: the usual serial
        return text
    for ch, enc in (
        ("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A"), ("+", "%2B"), (",", "%2C"),
        (":", "%3A"),
    ):  # fmt: skip
        if ch in text:
            text = text.replace(ch, enc)
    return text


def _gtin(uri: str, cp_start: int, dot: int) -> str:
    """GTIN-14 (with check digit) from an sgtin-like URN: indicator + prefix + item ref."""
    cp = uri[cp_start:dot]
    item = uri[dot + 1 : dot + 1 + 13 - len(cp)]
    raw = item[:1] + cp + item[1:]
    return raw + _check_digit(raw)


def _urn_to_dl(kind: str, uri: str, dot: int) -> str:
    """Convert a matched EPC URN (see _URN_PATTERNS) to its Digital Link. SPEC §3 step 9a."""
    base = "https://id.gs1.org/"
    if kind == "id:sgtin":
        return f"{base}01/{_gtin(uri, 17, dot)}/21/{_pct(uri[32:])}"
    if kind == "id:sscc":
        cp = uri[16:dot]
        raw = uri[dot + 1 : dot + 2] + cp + uri[dot + 2 :]
        return f"{base}00/{raw}{_check_digit(raw)}"
    if kind in ("id:sgln", "id:pgln"):
        cp = uri[16:dot]
        gln = cp + uri[dot + 1 : dot + 1 + 12 - len(cp)]
        gln += _check_digit(gln)
        if kind == "id:pgln":
            return f"{base}417/{gln}"
        ext = uri[30:]
        return f"{base}414/{gln}" if ext == "0" else f"{base}414/{gln}/254/{_pct(ext)}"
    if kind in ("id:grai", "idpat:grai"):
        start = 16 if kind == "id:grai" else 19
        cp = uri[start:dot]
        raw = "0" + cp + uri[dot + 1 : dot + 1 + 12 - len(cp)]
        serial = _pct(uri[30:]) if kind == "id:grai" else ""
        return f"{base}8003/{raw}{_check_digit(raw)}{serial}"
    if kind in ("id:giai", "id:ginc"):
        ai = "8004" if kind == "id:giai" else "401"
        return f"{base}{ai}/{uri[16:dot]}{_pct(uri[dot + 1 :])}"
    if kind in ("id:gsrn", "id:gsrnp"):
        start, ai = (16, "8018") if kind == "id:gsrn" else (17, "8017")
        raw = uri[start:dot] + uri[dot + 1 :]
        return f"{base}{ai}/{raw}{_check_digit(raw)}"
    if kind in ("id:gdti", "idpat:gdti", "id:sgcn", "idpat:sgcn"):
        start = 16 if kind.startswith("id:") else 19
        ai = "253" if kind.endswith("gdti") else "255"
        cp = uri[start:dot]
        raw = cp + uri[dot + 1 : dot + 1 + 12 - len(cp)]
        if kind == "id:gdti":
            serial = _pct(uri[30:])
        elif kind == "id:sgcn":
            serial = uri[30:]
        else:
            serial = ""
        return f"{base}{ai}/{raw}{_check_digit(raw)}{serial}"
    if kind in ("id:cpi", "idpat:cpi"):
        start = 15 if kind == "id:cpi" else 18
        last = uri.rfind(".")
        raw = _pct(uri[start:dot] + uri[dot + 1 : last])
        if kind == "idpat:cpi":
            return f"{base}8010/{raw}"
        return f"{base}8010/{raw}/8011/{uri[last + 1 :]}"
    if kind == "id:gsin":
        raw = uri[16:dot] + uri[dot + 1 :]
        return f"{base}402/{raw}{_check_digit(raw)}"
    if kind == "id:itip":
        return f"{base}8006/{_gtin(uri, 16, dot)}{uri[31:33]}{uri[34:36]}/21/{_pct(uri[37:])}"
    if kind == "idpat:itip":
        return f"{base}8006/{_gtin(uri, 19, dot)}{uri[34:36]}{uri[37:39]}"
    if kind == "id:upui":
        return f"{base}01/{_gtin(uri, 16, dot)}/235/{_pct(uri[31:])}"
    if kind == "class:lgtin":
        return f"{base}01/{_gtin(uri, 20, dot)}/10/{_pct(uri[35:])}"
    # idpat:sgtin and idpat:upui: class level GTIN
    return f"{base}01/{_gtin(uri, 20 if kind == 'idpat:sgtin' else 19, dot)}"


def _dl_constrain(uri: str) -> str | None:
    """Constrain a GS1 Digital Link to the canonical form. SPEC §3 step 9b-9c."""
    if _DL_SHAPE.match(uri) is None:
        return None
    q = uri.find("?")
    if q >= 0:
        uri = uri[:q]
    for short, ai in _DL_SHORT_NAMES:
        if short in uri:
            uri = uri.replace(short, ai)
    if _DL_CANONICAL_DOMAIN.match(uri) is None:
        # Custom resolver domain (or http): re-base onto id.gs1.org from the first primary key.
        for key in _DL_REBASE_KEYS:
            at = uri.find(key)
            if at != -1:
                uri = "https://id.gs1.org" + uri[at:]
                break
    if _GTIN14.match(uri) is None:
        if _GTIN13.match(uri) is not None:
            uri = uri.replace("/01/", "/01/0")
        elif _GTIN12.match(uri) is not None:
            uri = uri.replace("/01/", "/01/00")
        elif _GTIN8.match(uri) is not None:
            uri = uri.replace("/01/", "/01/000000")
    # Drop a CPV (AI 22) key qualifier; slicing mirrors the reference exactly.
    cpv_at = uri.find("/22/")
    after = uri[cpv_at + 4 :]
    if _CPV_LAST.match(uri) is not None:
        uri = uri[:cpv_at] + after[after.find("/") : -1]
        cpv_at = uri.find("/22/")
    if _CPV_MID.match(uri) is not None:
        uri = uri[:cpv_at] + after[after.find("/") :]
    # Finest key only: a serial makes the lot redundant.
    if _LOT_AND_SERIAL.match(uri) is not None:
        lot_at = uri.find("/10/")
        rest = uri[lot_at + 4 :]
        uri = uri[:lot_at] + rest[rest.find("/") :]
    return uri if _DL_FINAL.match(uri) is not None else None


# Digital Links already in constrained canonical form: the full pipeline returns them
# unchanged, so they skip it (same characters as _DLC, minus "?" which starts a query).
_DLS: Final = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3E\x41-\x5A\x5F\x61-\x7A]"
_DL_ALREADY_CANONICAL: Final = re.compile(
    rf"https://id\.gs1\.org/(?:00/\d{{18}}|01/\d{{14}}(?:/(?:10|21)/{_DLS}{{0,20}})?"
    rf"|414/\d{{13}}(?:/254/{_DLS}{{0,20}})?|417/\d{{13}}|8004/{_DLS}{{0,30}})"
)
# The same forms with ASCII digits only, one per line: several EPCs in one regex pass.
_DL_CANONICAL_ASCII: Final = _DL_ALREADY_CANONICAL.pattern.replace("\\d", "[0-9]")
_DL_CANONICAL_LINES: Final = re.compile(rf"(?:{_DL_CANONICAL_ASCII}\n)*{_DL_CANONICAL_ASCII}")


# The usual SGTIN URN: ASCII digits and an alphanumeric serial (a subset of id:sgtin).
_SGTIN_USUAL: Final = re.compile(r"urn:epc:id:sgtin:([0-9]{6,12})\.([0-9]{1,7})\.[0-9A-Za-z]{1,20}")


@lru_cache(maxsize=1 << 12)
def _sgtin_head(head: str) -> str:
    """``urn:epc:id:sgtin:CP.REF.`` -> ``https://id.gs1.org/01/{GTIN-14}/21/`` (one per product)."""
    return f"https://id.gs1.org/01/{_gtin(head, 17, head.find('.'))}/21/"


def _normalise_id(value: str) -> str | None:
    """Canonical constrained Digital Link for an EPC URN or Digital Link, else None."""
    if _DL_ALREADY_CANONICAL.fullmatch(value) is not None:
        return value
    dot = value.find(".")
    if dot < 0:
        return None
    if value.startswith("urn:epc:"):
        if value.startswith("urn:epc:id:sgtin:"):
            usual = _SGTIN_USUAL.fullmatch(value)
            if usual is not None and usual.end(2) == 31:  # 13 digits: one of _cp(13)'s splits
                return _sgtin_head(value[:32]) + value[32:]  # alphanumeric: nothing to escape
        parts = value.split(":", 4)
        if len(parts) == 5:
            kind = parts[2] + ":" + parts[3]
            pattern = _URN_PATTERNS.get(kind)
            if pattern is not None and pattern.match(value) is not None:
                return _urn_to_dl(kind, value, dot)
        return None
    if value.startswith("http"):
        return _dl_constrain(value)
    return None


# ---------------------------------------------------------------------------------------------
# Value canonicalisation. SPEC §3 steps 7-9.
# ---------------------------------------------------------------------------------------------

_CBV_URNS: Final = (
    ("urn:epcglobal:cbv:bizstep:", _CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", _CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", _CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", _CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", _CBV + "ER-"),
)
_NOT_NUMERIC_START: Final = frozenset("abcdefghjklmopqrstuvwxyzABCDEFGHJKLMOPQRSTUVWXYZ")


def _numeric(text: str) -> str:
    """Format numbers as the reference does (``26.0`` -> ``26``). SPEC §3 step 8."""
    first = text[:1]
    if first in _NOT_NUMERIC_START:  # fast path: URIs and words ("inf"/"nan" start i/n)
        return text
    if not (first.isascii() or first.isdecimal() or first.isspace()):
        return text  # float() reads no other non-ASCII first character (e.g. 中药)
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        # NaN stays as written (as in the reference); infinity too (the reference crashes).
        return text
    if number == int(number):
        return str(int(number))
    return str(number)


@lru_cache(maxsize=1 << 16)
def _canon(text: str) -> str:
    """Canonical form of a (stripped, non-empty) value. SPEC §3 steps 7-9."""
    if "urn:epcglobal:cbv:" in text:  # SPEC §3 step 7
        for urn, web in _CBV_URNS:
            text = text.replace(urn, web)
    text = _numeric(text)  # SPEC §3 step 8
    return _normalise_id(text) or text  # SPEC §3 step 9


_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(?:(Z|z)|([+-])(\d{2})(?::?(\d{2}))?)?"
)


def _timestamp_general(text: str) -> str:
    """ISO 8601 date-time -> UTC, millisecond precision, ``Z``. SPEC §3 step 6.

    Raises:
        EpcisValidationError: ``text`` is not an ISO 8601 date-time.
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise EpcisValidationError(f"not an ISO 8601 date-time: {text!r}")
    year, month, day, hh, mm, ss, frac, _z, sign, oh, om = m.groups()
    micro = int((frac or "")[:6].ljust(6, "0"))  # digits past the 6th are cut, not rounded
    # Round to milliseconds half-to-even on the microsecond count, as round(us, -3) does.
    ms, rest = divmod(micro, 1000)
    if rest > 500 or (rest == 500 and ms % 2 == 1):
        ms += 1
    tz = UTC
    if sign is not None:
        offset = timedelta(hours=int(oh), minutes=int(om or 0))
        tz = timezone(-offset if sign == "-" else offset)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz
        ) + timedelta(milliseconds=ms)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise EpcisValidationError(f"not a valid date-time: {text!r}") from exc
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


# The form every Yima builder writes: YYYY-MM-DDTHH:MM:SS.mmm then Z or ±HH:MM (ASCII digits).
_TS_USUAL: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]\.[0-9]{3}(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_MINUTE_OF_DAY: Final = {f"{m // 60:02d}:{m % 60:02d}": m for m in range(1440)}
_HH_MM: Final = tuple(_MINUTE_OF_DAY)
_OFFSET_MINUTES: Final = {
    f"{sign}{hhmm}": (m if sign == "+" else -m)
    for hhmm, m in _MINUTE_OF_DAY.items()
    for sign in "+-"
}
_MONTH_DAY: Final = frozenset(
    f"{m:02d}-{d:02d}"
    for m in range(1, 13)
    for d in range(1, 1 + (29, 31, 30)[(m in (4, 6, 9, 11)) + (m != 2)])
)


def _timestamp_usual(text: str) -> str | None:
    """:func:`_timestamp_general` for ``YYYY-MM-DDTHH:MM:SS.mmm`` + ``Z`` or ``±HH:MM``.

    Table look-ups instead of datetime arithmetic; None for anything else (other forms,
    fields out of range, a result outside years 1-9999), which the general function then
    handles, errors included. Whole milliseconds: seconds and fraction are copied as written.
    """
    if _TS_USUAL.fullmatch(text) is None:
        return None
    # Seconds and milliseconds are copied; the rest is a function of the minute and offset,
    # which many events share (cached).
    head = _utc_minute(text[:16], text[23:])
    return None if head is None else head + text[16:23] + "Z"


@lru_cache(maxsize=1 << 12)
def _utc_minute(local: str, zone: str) -> str | None:
    """``YYYY-MM-DDTHH:MM`` (local, offset ``zone``: ``Z`` or ``±HH:MM``) in UTC, or None.

    None for fields out of range or a result outside years 1-9999 (see _timestamp_usual).
    """
    minute = _MINUTE_OF_DAY.get(local[11:16])
    month_day = local[5:10]
    if minute is None or month_day not in _MONTH_DAY or local[:4] == "0000":
        return None
    if month_day == "02-29":
        year = int(local[:4])
        if year % 4 or (year % 100 == 0 and year % 400):
            return None
    if zone != "Z":
        offset = _OFFSET_MINUTES.get(zone)
        if offset is None:
            return None
        minute -= offset
    ymd: str | None = local[:10]
    if not 0 <= minute < 1440:  # another UTC day
        days, minute = divmod(minute, 1440)
        ymd = _shift_day(local[:10], days)
    return None if ymd is None else ymd + "T" + _HH_MM[minute]


@lru_cache(maxsize=1 << 10)
def _shift_day(ymd: str, days: int) -> str | None:
    """``YYYY-MM-DD`` moved by ``days`` (-1 or 1), or None outside years 1-9999."""
    try:
        day = date(int(ymd[:4]), int(ymd[5:7]), int(ymd[8:10]))
        return date.fromordinal(day.toordinal() + days).isoformat()
    except (ValueError, OverflowError):
        return None


@lru_cache(maxsize=1 << 14)
def _timestamp(text: str) -> str:
    """ISO 8601 date-time -> UTC, millisecond precision, ``Z``. SPEC §3 step 6.

    Raises:
        EpcisValidationError: ``text`` is not an ISO 8601 date-time.
    """
    return _timestamp_usual(text) or _timestamp_general(text)


# ---------------------------------------------------------------------------------------------
# Bare-string expansion. SPEC §3 step 2.
# ---------------------------------------------------------------------------------------------


class _Ctx:
    """Per-document facts: namespace prefixes, term knowledge and the bare-string map."""

    __slots__ = ("ignore", "namespaces", "replace", "standard", "terms", "vocab")

    def __init__(self) -> None:
        self.namespaces: dict[str, str] = {}
        self.standard = True
        self.terms: set[str] = set()
        self.vocab = False
        self.replace: Mapping[str, str] = {}
        self.ignore: frozenset[str] = frozenset()

    def key(self, key: str) -> str:
        """``prefix:local`` -> ``{namespace}local`` for declared prefixes. SPEC §3 step 3."""
        prefix, sep, local = key.partition(":")
        if sep:
            ns = self.namespaces.get(prefix)
            if ns is not None:
                return "{" + ns + "}" + local
        return key

    def value(self, text: str) -> str:
        """Bare-term expansion then CURIE expansion of a string value. SPEC §3 steps 2-3."""
        text = self.replace.get(text, text)
        prefix, sep, local = text.partition(":")
        if sep:
            ns = self.namespaces.get(prefix)
            if ns is not None:
                return ns.replace("{", "").replace("}", "") + local
        return text


def _add_expanded(value: Any, table: Mapping[str, str] | None, key: str, out: set[str]) -> None:
    """Add what JSON-LD expansion makes of a string (or strings) at ``key`` to ``out``."""
    if isinstance(value, list):
        for item in value:
            _add_expanded(item, table, key, out)
        return
    if not isinstance(value, str):
        return
    if table is not None and value in table:
        out.add(table[value])
    elif value.startswith(_EXPANDED_PREFIXES):
        out.add(value)
    elif (table is not None or key in _IRI_KEYS) and value[:4] in ("cbv:", "gs1:"):
        out.add(_STD_PREFIXES[value[:3]] + value[4:])


def _collect_expanded(obj: Any, scope: str, ctx: _Ctx, out: set[str]) -> None:
    """Walk ``obj`` like JSON-LD expansion would, collecting CBV/GS1-voc IRIs into ``out``."""
    if isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict | list):
                _collect_expanded(item, scope, ctx, out)
        return
    for key, value in obj.items():
        if isinstance(value, str):
            if not (
                key in _VOCAB_KEYS
                or value.startswith(_EXPANDED_PREFIXES)
                or value[:4] in ("cbv:", "gs1:")
            ):
                continue  # cannot expand to a CBV / GS1 voc IRI
        elif not isinstance(value, dict | list):
            continue
        if key[:1] == "@":
            continue
        if not (key in _KNOWN_TERMS or ":" in key or key in ctx.terms or ctx.vocab):
            continue  # an undefined term: dropped by expansion, so it contributes nothing
        table = _GLOBAL_VOCAB.get(key) or _SCOPED_VOCAB.get((scope, key))
        if isinstance(value, str):
            _add_expanded(value, table, key, out)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    if (
                        table is not None
                        or item.startswith(_EXPANDED_PREFIXES)
                        or item[:4]
                        in (
                            "cbv:",
                            "gs1:",
                        )
                    ):
                        _add_expanded(item, table, key, out)
                elif table is None and isinstance(item, dict | list):
                    _collect_expanded(item, _SCOPE_OF_KEY.get(key, scope), ctx, out)
        elif table is None:
            _collect_expanded(value, _SCOPE_OF_KEY.get(key, scope), ctx, out)


@lru_cache(maxsize=1024)
def _replacement_map(expanded: frozenset[str]) -> Mapping[str, str]:
    """Bare string -> the one expanded IRI ending in ``-bare`` or ``/bare``. SPEC §3 step 2."""
    found: dict[str, str | None] = {}
    for iri in expanded:
        for i, ch in enumerate(iri):
            if ch in "-/":
                suffix = iri[i + 1 :]
                found[suffix] = iri if suffix not in found or found[suffix] == iri else None
    return {k: v for k, v in found.items() if v is not None}


def _read_context(context: Any, ctx: _Ctx) -> None:
    """Take namespace prefixes and term names from a document ``@context``. SPEC §3 step 1."""
    ctx.standard = False
    if isinstance(context, str):
        ctx.standard = context in _STANDARD_CONTEXTS
    elif isinstance(context, list):
        for entry in context:
            if isinstance(entry, str):
                ctx.standard = ctx.standard or entry in _STANDARD_CONTEXTS
            elif isinstance(entry, dict):
                for term, iri in entry.items():
                    ctx.terms.add(term)
                    if term == "@vocab":
                        ctx.vocab = True
                    elif isinstance(iri, str):
                        ctx.namespaces[term] = iri
    # A lone object @context: the reference takes no prefixes from it (SPEC §3 quirk Q5).


# ---------------------------------------------------------------------------------------------
# Event tree (the reference's XML-shaped data model). SPEC §3 steps 3-4.
# ---------------------------------------------------------------------------------------------

# "@context" is JSON-LD syntax, not event data (the reference hashes it: quirk Q8).
_SKIPPED_KEYS: Final = frozenset({"#text", "rdfs:comment", "comment", "@context"})
_PAIR_LISTS: Final = {
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
}
_RENAME: Final = {
    "inputEPC": "epc",
    "outputEPC": "epc",
    "inputQuantity": "quantityElement",
    "outputQuantity": "quantityElement",
    "childQuantity": "quantityElement",
}


def _at(exc: EpcisValidationError, part: str) -> EpcisValidationError:
    """The same error with ``part`` prepended to its (relative) path."""
    sub = exc.path
    path = part if not sub else (part + sub if sub.startswith("[") else f"{part}.{sub}")
    return EpcisValidationError(exc.reason, path=path)


def _scalar_text(value: Any, ctx: _Ctx) -> str:
    if isinstance(value, str):
        return ctx.value(value)
    if isinstance(value, bool):
        # JSON true/false are written as in XML (the reference 1.9 wrote "True": quirk Q3).
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise EpcisValidationError(f"unsupported JSON value {value!r}")


def _rename(name: str, text: str, children: list[Node]) -> Node:
    new = _RENAME.get(name)
    if new is not None:
        return (new, text, children)
    if name == "quantity" and children:
        return ("quantityElement", text, children)
    return (name, text, children)


def _node(name: str, value: Any, ctx: _Ctx) -> Node:
    if isinstance(value, dict):
        text = value.get("#text", "")
        if not isinstance(text, str):
            raise EpcisValidationError("must be a string", path="#text")
        text = ctx.replace.get(text, text)  # "#text" gets bare-term but not CURIE expansion
        return _rename(name, text, _children(value, ctx))
    if isinstance(value, list):  # a list directly inside a list: anonymous children
        kids: list[Node] = []
        for i, item in enumerate(value):
            try:
                kids.append(_node("", item, ctx))
            except EpcisValidationError as exc:
                raise _at(exc, f"[{i}]") from None
        return _rename(name, "", kids)
    return _rename(name, _scalar_text(value, ctx), [])


def _pair(list_key: str, item: Any, ctx: _Ctx) -> Node:
    """One bizTransaction/source/destination: ``type`` first, then the ID. SPEC §3 step 4."""
    id_key = _PAIR_LISTS[list_key]
    if not isinstance(item, dict):
        raise EpcisValidationError(f"{id_key} entry must be an object")
    if id_key not in item:
        raise EpcisValidationError(f"{id_key} entry has no {id_key!r}")
    kids: list[Node] = []
    for key in ("type", id_key):
        if key in item:
            try:
                kids.append(_node(key, item[key], ctx))
            except EpcisValidationError as exc:
                raise _at(exc, key) from None
    return (_PAIR, "", kids)


def _children(obj: Mapping[str, Any], ctx: _Ctx) -> list[Node]:
    """Child nodes of a JSON object, in the XML element structure. SPEC §3 steps 3-4.

    ``xxxList`` items become ``xxx`` elements of one ``xxxList`` element and ``childEPCs`` items
    become ``epc`` elements, as in the XML binding (bizTransaction/source/destination lists
    become (type, ID) pairs).
    """
    kids: list[Node] = []
    lists: dict[str, list[Node]] | None = None
    child_epcs: list[Node] = []
    replace, namespaces = ctx.replace, ctx.namespaces
    for key, value in obj.items():
        if key in _SKIPPED_KEYS or key.startswith("@xmlns"):
            continue
        name = ctx.key(key) if namespaces and ":" in key else key
        try:
            if name in _PAIR_LISTS:
                items = value if isinstance(value, list) else [value]
                pairs: list[Node] = []
                for i, item in enumerate(items):
                    try:
                        pairs.append(_pair(name, item, ctx))
                    except EpcisValidationError as exc:
                        raise _at(exc, f"[{i}]") from None
                if pairs:
                    kids.append((name, "", pairs))
                continue
            nodes: list[Node] = []
            for i, item in enumerate(value if isinstance(value, list) else (value,)):
                if isinstance(item, str):  # fast path for the common case: a plain string
                    if replace:
                        item = replace.get(item, item)
                    if namespaces and ":" in item:
                        item = ctx.value(item)
                    nodes.append((name, item, []))
                else:
                    try:
                        nodes.append(_node(name, item, ctx))
                    except EpcisValidationError as exc:
                        raise _at(exc, f"[{i}]") if isinstance(value, list) else exc from None
        except EpcisValidationError as exc:
            raise _at(exc, key) from None
        if name.endswith("List"):
            if lists is None:
                lists = {}
            group = lists.setdefault(name, [])
            element = name[:-4]
            group.extend(_rename(element, text, sub) for _n, text, sub in nodes)
        elif name == "childEPCs":
            child_epcs.extend(("epc", text, []) for _n, text, _sub in nodes)
        elif name in _RENAME or name == "quantity":
            kids.extend(_rename(*node) for node in nodes)
        else:
            kids.extend(nodes)
    if lists:
        kids.extend((name, "", items) for name, items in lists.items())
    if child_epcs:
        kids.append(("childEPCs", "", child_epcs))
    return kids


# ---------------------------------------------------------------------------------------------
# Pre-hash string. SPEC §3 steps 5-6 and 10-11.
# ---------------------------------------------------------------------------------------------

_Order = tuple[tuple[str, "_Order | None"], ...]
_QUANTITY: Final[_Order] = (
    ("quantityElement", (("epcClass", None), ("quantity", None), ("uom", None))),
)
_EPC: Final[_Order] = (("epc", None),)
_SENSOR_METADATA: Final[_Order] = tuple(
    (n, None)
    for n in [
        "time",
        "startTime",
        "endTime",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "bizRules",
    ]
)
_SENSOR_REPORT: Final[_Order] = tuple(
    (n, None)
    for n in [
        "type",
        "exception",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "time",
        "microorganism",
        "chemicalSubstance",
        "value",
        "component",
        "stringValue",
        "booleanValue",
        "hexBinaryValue",
        "uriValue",
        "minValue",
        "maxValue",
        "meanValue",
        "sDev",
        "percRank",
        "percValue",
        "uom",
        "coordinateReferenceSystem",
    ]
)
# SPEC §3 step 5: canonical property order. bizTransactionList, sourceList and
# destinationList are absent on purpose: they are emitted with the extensions (quirk Q1).
_PROP_ORDER: Final[_Order] = (
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("certificationInfo", None),
    ("parentID", None),
    ("epcList", _EPC),
    ("inputEPCList", _EPC),
    ("childEPCs", _EPC),
    ("quantityList", _QUANTITY),
    ("childQuantityList", _QUANTITY),
    ("inputQuantityList", _QUANTITY),
    ("outputEPCList", _EPC),
    ("outputQuantityList", _QUANTITY),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("persistentDisposition", (("set", None), ("unset", None))),
    ("readPoint", (("id", None),)),
    ("bizLocation", (("id", None),)),
    (
        "sensorElementList",
        (
            (
                "sensorElement",
                (("sensorMetadata", _SENSOR_METADATA), ("sensorReport", _SENSOR_REPORT)),
            ),
        ),
    ),
)
_TIME_FIELDS: Final = frozenset({"eventTime", "time", "startTime", "endTime"})
_TOP_IGNORED: Final = frozenset({"recordTime", "eventID", "type", "errorDeclaration"})
_UNSORTED_MARKERS: Final = frozenset({"bizTransaction", "source", "destination"})


# An order compiled for lookups: (rank of each name, sub-order of each name).
_OrderMap = tuple[dict[str, int], dict[str, "_OrderMap | None"]]


def _compile_order(order: _Order) -> _OrderMap:
    rank = {name: i for i, (name, _sub) in enumerate(order)}
    subs = {name: (_compile_order(sub) if sub is not None else None) for name, sub in order}
    return rank, subs


_PROP_MAP: Final = _compile_order(_PROP_ORDER)


def _ordered(children: list[Node], order: _OrderMap) -> str:
    """Emit ``children`` in ``order``, consuming what was emitted. SPEC §3 step 6."""
    rank, subs = order
    groups: dict[str, list[Node]] = {}
    braces = False
    for kid in children:
        name = kid[0]
        if name in rank:
            group = groups.get(name)
            if group is None:
                groups[name] = [kid]
            else:
                group.append(kid)
        elif "{" in name:
            braces = True
    extensions: list[Node] = []
    if (
        braces
        and len(children) > 1
        and not any("eventTime" in k[0] or "action" in k[0] for k in children)
    ):  # nested user extensions ({ns/}name) stay with their parent element
        extensions = [k for k in children if "{" in k[0] and "/}" in k[0]]
    if not groups and not extensions:
        return ""
    parts: list[str] = []
    for name in sorted(groups, key=rank.__getitem__) if len(groups) > 1 else groups:
        sub = subs[name]
        values: list[str] = []
        for kid in groups[name]:
            text = ""
            raw = kid[1]
            if raw:
                raw = raw.strip()
                if raw:
                    text = "=" + (_timestamp(raw) if name in _TIME_FIELDS else _canon(raw))
            inner = _ordered(kid[2], sub) if sub is not None and kid[2] else ""
            if text or inner:
                values.append(name + text + inner)
        if len(values) > 1:
            values.sort()
        parts.extend(values)
    # What was emitted in full is consumed; what is left goes to the generic part (step 10).
    if extensions:
        children[:] = [
            k
            for k in children
            if (k[0] not in groups or k[2]) and not ("{" in k[0] and "/}" in k[0])
        ]
        parts.append(_generic(extensions))
    else:
        children[:] = [k for k in children if k[0] not in groups or k[2]]
    return "".join(parts)


def _generic(children: list[Node]) -> str:
    """Emit remaining elements as ``name=value`` + children, sorted. SPEC §3 step 10."""
    values: list[str] = []
    unsorted = False
    for name, raw, kids in children:
        if name == _PAIR:
            values.append(_generic(kids))
            continue
        if name in _UNSORTED_MARKERS:
            unsorted = True
        text = raw.strip()
        values.append(name + ("=" + _canon(text) if text else "") + _generic(kids))
    if not unsorted:
        values.sort()
    return "".join(values)


# ---------------------------------------------------------------------------------------------
# Fast path. SPEC §3 steps 2-11 for the event shapes the builders make, emitted in one pass
# straight from the JSON object: no node tree, no whole-event expansion walk. It calls the same
# value functions (_canon, _timestamp) and reproduces the general path exactly; on anything it
# does not cover (unknown keys, @context or declared prefixes, nested extension objects, values
# that step 2 would collect outside a vocabulary position, #text, odd list shapes, errors) it
# gives up and _prehash_general decides. tests/unit/test_eventhash_fastpath.py proves identity.
# ---------------------------------------------------------------------------------------------


class _Bail(Exception):
    """The event is outside the fast path's shapes: the general path decides."""


# A string starting with one of these would be collected by step 2 (a compact or expanded
# CBV / GS1 voc IRI). Outside the vocabulary positions handled below, the fast path gives up.
_FAST_BAIL_PREFIXES: Final = (*_EXPANDED_PREFIXES, "cbv:", "gs1:")
_FAST_DL: Final = "https://id.gs1.org/"
_FAST_CTX: Final = _Ctx()  # a lone event without prefixes (never mutated)

_ValueFn = Callable[[Any, Mapping[str, str]], str]


def _fv(value: Any, replace: Mapping[str, str]) -> str:
    """``=`` + canonical value of a JSON scalar, or ``""`` when blank. SPEC §3 steps 2, 7-9."""
    # Scalars are told apart with isinstance, as _children/_scalar_text do.
    if isinstance(value, str):
        if value.startswith(_FAST_BAIL_PREFIXES):
            raise _Bail  # step 2 would collect this value
        text = replace.get(value, value) if replace else value  # SPEC §3 step 2
        text = text.strip()
        if not text:
            return ""
        if text.startswith(_FAST_DL) and _DL_ALREADY_CANONICAL.fullmatch(text) is not None:
            return "=" + text  # what _canon returns for it (no ':', not numeric, canonical)
        return "=" + _canon(text)
    if isinstance(value, bool):  # JSON true/false (Q3); before int: bool is an int
        return "=" + _canon("true" if value else "false")
    if isinstance(value, int | float):
        return "=" + _canon(str(value))
    raise _Bail  # null (an error), objects, nested lists


def _fvv(value: Any, replace: Mapping[str, str]) -> str:
    """:func:`_fv` for a vocabulary position, whose expansion :func:`_fast_replace` did."""
    if isinstance(value, str):
        text = replace.get(value, value) if replace else value
        text = text.strip()
        return "=" + _canon(text) if text else ""
    return _fv(value, replace)


def _ft(value: Any, replace: Mapping[str, str]) -> str:
    """``=`` + UTC timestamp, or ``""`` when blank. SPEC §3 step 6 (Q4)."""
    if not isinstance(value, str):
        raise _Bail
    text = replace.get(value, value) if replace else value
    text = text.strip()
    return "=" + _timestamp(text) if text else ""


def _fleaf(name: str, value: Any, fn: _ValueFn, replace: Mapping[str, str]) -> str:
    """Ordered elements without sub-order: ``name=value``, sorted. SPEC §3 step 6."""
    if type(value) is list:  # a list repeats the element (SPEC §3 step 4)
        values = []
        for item in value:
            text = fn(item, replace)
            if text:
                values.append(name + text)
        if len(values) > 1:
            values.sort()
        return "".join(values)
    text = fn(value, replace)
    return name + text if text else ""


def _fepcs(name: str, value: Any, replace: Mapping[str, str]) -> str:
    """epcList / inputEPCList / childEPCs / outputEPCList: ``epc`` children. SPEC §3 steps 4-6."""
    if type(value) is list and value and _all_canonical_epcs(value, replace):
        # Each is emitted as written (what the per-item loop below does for such an EPC);
        # sorting the ids sorts the "epc=" + id strings alike.
        return name + "epc=" + "epc=".join(sorted(value) if len(value) > 1 else value)
    values = []
    for item in value if type(value) is list else (value,):
        if (
            type(item) is str
            and item.startswith(_FAST_DL)
            and not (replace and item in replace)
            and _DL_ALREADY_CANONICAL.fullmatch(item) is not None
        ):  # the usual EPC: _fv inlined (nothing to strip, _canon returns it as is)
            values.append("epc=" + item)
            continue
        text = _fv(item, replace)
        if text:
            values.append("epc" + text)
    if not values:
        return ""
    if len(values) > 1:
        values.sort()
    return name + "".join(values)


def _all_canonical_epcs(value: list[Any], replace: Mapping[str, str]) -> bool:
    """Whether every item is an exact ``str`` that the per-item shortcut of :func:`_fepcs`
    would emit as written: in ``_DL_ALREADY_CANONICAL`` form and not replaced by step 2.

    One regex pass over the newline-joined list instead of one call per item: no item holds a
    newline (counted), so the lines are the items; the ASCII-digit pattern is a subset of
    ``_DL_ALREADY_CANONICAL`` (whose digit class also takes other scripts: those take the loop).
    """
    if list(map(type, value)).count(str) != len(value):
        return False
    joined = "\n".join(value)
    return (
        joined.count("\n") == len(value) - 1
        and _DL_CANONICAL_LINES.fullmatch(joined) is not None
        and not (replace and not replace.keys().isdisjoint(value))
    )


_QTY_KEYS: Final = frozenset({"epcClass", "quantity", "uom"})
_PD_KEYS: Final = frozenset({"set", "unset"})
_SENSOR_ELEMENT_KEYS: Final = frozenset({"sensorMetadata", "sensorReport"})


def _fqty(name: str, value: Any, replace: Mapping[str, str]) -> str:
    """Quantity lists: ``quantityElement`` (epcClass, quantity, uom). SPEC §3 steps 4-6."""
    if type(value) is not list:
        raise _Bail
    values = []
    for item in value:
        if type(item) is not dict or not item or not item.keys() <= _QTY_KEYS:
            raise _Bail
        inner = ""
        for key in ("epcClass", "quantity", "uom"):
            if key in item:
                inner += _fleaf(key, item[key], _fv, replace)
        if inner:
            values.append("quantityElement" + inner)
    if not values:
        return ""
    values.sort()
    return name + "".join(values)


def _fpd(name: str, value: Any, replace: Mapping[str, str]) -> str:
    """persistentDisposition (set, unset). SPEC §3 steps 5-6."""
    if type(value) is not dict or not value.keys() <= _PD_KEYS:
        raise _Bail
    inner = ""
    for key in ("set", "unset"):
        if key in value:
            inner += _fleaf(key, value[key], _fvv, replace)
    return name + inner if inner else ""


_LOC_ID: Final = {"readPoint": "readPointid", "bizLocation": "bizLocationid"}


def _floc(name: str, value: Any, replace: Mapping[str, str]) -> str:
    """readPoint / bizLocation (id). SPEC §3 steps 5-6."""
    if type(value) is not dict or len(value) != 1 or "id" not in value:
        if value == {}:
            return ""
        raise _Bail
    ident = value["id"]
    if type(ident) is str:  # _fv inlined, as in _fleaf_fv
        if ident.startswith(_FAST_BAIL_PREFIXES):
            raise _Bail
        return _named(_LOC_ID[name], replace.get(ident, ident) if replace else ident)
    if type(ident) is list:
        inner = _fleaf("id", ident, _fv, replace)
        return name + inner if inner else ""
    text = _fv(ident, replace)
    return name + "id" + text if text else ""


def _value_fns(order: _Order, vocab: Iterable[str]) -> dict[str, tuple[int, _ValueFn]]:
    return {
        n: (i, _ft if n in _TIME_FIELDS else _fvv if n in vocab else _fv)
        for i, (n, _sub) in enumerate(order)
    }


_FAST_META: Final = _value_fns(_SENSOR_METADATA, ())
_FAST_REPORT: Final = _value_fns(_SENSOR_REPORT, ("type", "exception", "component"))


def _fsensor_part(
    name: str, value: Any, fns: dict[str, tuple[int, _ValueFn]], replace: Mapping[str, str]
) -> str:
    """sensorMetadata / one sensorReport in its sub-order. SPEC §3 steps 5-6."""
    if type(value) is not dict or not value.keys() <= fns.keys():
        raise _Bail
    keys = sorted(value, key=fns.__getitem__) if len(value) > 1 else value
    inner = "".join(_fleaf(key, value[key], fns[key][1], replace) for key in keys)
    return name + inner if inner else ""


def _fsensors(name: str, value: Any, replace: Mapping[str, str]) -> str:
    """sensorElementList(sensorElement(sensorMetadata, sensorReport)). SPEC §3 steps 4-6."""
    if type(value) is not list:
        raise _Bail
    elements = []
    for element in value:
        if type(element) is not dict or not element.keys() <= _SENSOR_ELEMENT_KEYS:
            raise _Bail
        inner = ""
        if "sensorMetadata" in element:
            inner = _fsensor_part("sensorMetadata", element["sensorMetadata"], _FAST_META, replace)
        if "sensorReport" in element:
            reports = element["sensorReport"]
            texts = [
                text
                for report in (reports if type(reports) is list else (reports,))
                if (text := _fsensor_part("sensorReport", report, _FAST_REPORT, replace))
            ]
            if len(texts) > 1:
                texts.sort()
            inner += "".join(texts)
        if inner:
            elements.append("sensorElement" + inner)
    if not elements:
        return ""
    elements.sort()
    return name + "".join(elements)


def _ftime(name: str, value: Any, replace: Mapping[str, str]) -> str:
    if type(value) is str and not (replace and value in replace):
        # The usual eventTime (unique per event: no cache look-up that would always miss).
        text = value.strip()
        if text:
            return name + "=" + (_timestamp_usual(text) or _timestamp(text))
        return ""
    if type(value) is list:
        return _fleaf(name, value, _ft, replace)
    text = _ft(value, replace)
    return name + text if text else ""


@lru_cache(maxsize=1 << 12)
def _named(name: str, text: str) -> str:
    """``name`` + :func:`_fv`'s ``=value`` of a string after step 2's replacement, or ``""``.

    Cached: locations, offsets, actions and vocabulary values repeat from event to event.
    """
    stripped = text.strip()
    return name + "=" + _canon(stripped) if stripped else ""


def _fleaf_fv(name: str, value: Any, replace: Mapping[str, str]) -> str:
    if type(value) is str:  # _fv inlined: the same checks, then the cached part
        if value.startswith(_FAST_BAIL_PREFIXES):
            raise _Bail  # step 2 would collect this value
        return _named(name, replace.get(value, value) if replace else value)
    if type(value) is list:
        return _fleaf(name, value, _fv, replace)
    text = _fv(value, replace)
    return name + text if text else ""


def _fleaf_fvv(name: str, value: Any, replace: Mapping[str, str]) -> str:
    if type(value) is str:  # _fvv inlined
        return _named(name, replace.get(value, value) if replace else value)
    if type(value) is list:
        return _fleaf(name, value, _fvv, replace)
    text = _fvv(value, replace)
    return name + text if text else ""


_Emit = Callable[[str, Any, Mapping[str, str]], str]
# SPEC §3 step 5: the canonical order, with the emitter of each property's part.
_FAST_ORDERED: Final[dict[str, tuple[int, _Emit]]] = {
    name: (rank, emit)
    for rank, (name, emit) in enumerate(
        [
            ("eventTime", _ftime),
            ("eventTimeZoneOffset", _fleaf_fv),
            ("certificationInfo", _fleaf_fv),
            ("parentID", _fleaf_fv),
            ("epcList", _fepcs),
            ("inputEPCList", _fepcs),
            ("childEPCs", _fepcs),
            ("quantityList", _fqty),
            ("childQuantityList", _fqty),
            ("inputQuantityList", _fqty),
            ("outputEPCList", _fepcs),
            ("outputQuantityList", _fqty),
            ("action", _fleaf_fv),
            ("transformationID", _fleaf_fv),
            ("bizStep", _fleaf_fvv),
            ("disposition", _fleaf_fvv),
            ("persistentDisposition", _fpd),
            ("readPoint", _floc),
            ("bizLocation", _floc),
            ("sensorElementList", _fsensors),
        ]
    )
}
assert [n for n, _ in _PROP_ORDER] == list(_FAST_ORDERED)  # one order, two emitters
_FAST_IGNORED: Final = frozenset({"type", "eventID", "recordTime", "errorDeclaration"})


def _fast_key(key: str) -> bool:
    """A user extension key the fast path emits as written (``prefix:name``, no prefixes)."""
    return (
        ":" in key
        and key[:1] != "@"
        and "{" not in key
        and not key.endswith("List")
        and key not in _SKIPPED_KEYS
    )


def _fext(key: str, value: Any, replace: Mapping[str, str], out: list[str]) -> None:
    """An extension (or ILMD) element: ``name=value`` per item. SPEC §3 step 10."""
    if type(value) is list:
        out.extend(key + _fv(item, replace) for item in value)
    else:
        out.append(key + _fv(value, replace))


def _fpairs(name: str, id_key: str, value: Any, replace: Mapping[str, str]) -> str:
    """bizTransactionList / sourceList / destinationList: (type, ID) pairs. SPEC §3 step 10, Q1."""
    if type(value) is not list:
        raise _Bail
    pairs = []
    for item in value:
        if type(item) is not dict or id_key not in item or len(item) > 1 + ("type" in item):
            raise _Bail  # a missing ID is an error; other keys would be walked by step 2
        text = "type" + _fvv(item["type"], replace) if "type" in item else ""
        pairs.append(text + id_key + _fv(item[id_key], replace))
    if not pairs:
        return ""
    pairs.sort()
    return name + "".join(pairs)


_FAST_VOCAB_TOP: Final = (("bizStep", _T_BIZ_STEP), ("disposition", _T_DISP))
_FAST_PAIR_TYPES: Final = (
    ("bizTransactionList", _T_BTT),
    ("sourceList", _T_SDT),
    ("destinationList", _T_SDT),
)
_FAST_SENSOR_VOCAB: Final = (("type", _T_MTYPE), ("exception", _T_EXC), ("component", _T_COMP))
# The members _fast_replace looks at besides bizStep and disposition.
_FAST_REPLACE_MORE: Final = frozenset(
    {
        "persistentDisposition",
        *(key for key, _ in _FAST_PAIR_TYPES),
        "sensorElementList",
        "eventID",
        "recordTime",
        "errorDeclaration",
    }
)


@lru_cache(maxsize=1 << 12)
def _fast_replacement(found: tuple[str, ...]) -> Mapping[str, str]:
    return _replacement_map(frozenset(found))


def _fast_replace(event: dict[str, Any]) -> Mapping[str, str]:
    """Step 2 for a fast-path event: the bare-string map from its vocabulary positions.

    _fv gives up on any other string that step 2 would collect, so these positions (and the
    ignored fields, walked by the general code) are all that can contribute. SPEC §3 step 2.
    """
    found: list[str] = []
    more: set[str] = set()  # what _add_expanded finds for the less usual values
    for key, table in _FAST_VOCAB_TOP:
        value = event.get(key)
        if value is not None:
            iri = table.get(value) if isinstance(value, str) else None
            if iri is not None:
                found.append(iri)
            else:
                _add_expanded(value, table, key, more)
    if event.keys().isdisjoint(_FAST_REPLACE_MORE):  # the usual event: nothing else to expand
        return _fast_replacement(tuple(found)) if found else {}
    pd = event.get("persistentDisposition")
    if type(pd) is dict:
        for key in ("set", "unset"):
            if key in pd:
                _add_expanded(pd[key], _T_DISP, key, more)
    for key, table in _FAST_PAIR_TYPES:
        items = event.get(key)
        if type(items) is list:
            for item in items:
                if type(item) is dict and "type" in item:
                    _add_expanded(item["type"], table, "type", more)
    elements = event.get("sensorElementList")
    if type(elements) is list:
        for element in elements:
            if type(element) is dict and "sensorReport" in element:
                reports = element["sensorReport"]
                for report in reports if type(reports) is list else (reports,):
                    if type(report) is dict:
                        for key, table in _FAST_SENSOR_VOCAB:
                            if key in report:
                                _add_expanded(report[key], table, key, more)
    for key in ("eventID", "recordTime"):
        if key in event:
            value = event[key]
            if not isinstance(value, str):
                raise _Bail  # e.g. null: an error the general path reports
            _add_expanded(value, None, key, more)
    if "errorDeclaration" in event:  # rare: the general code checks and walks it
        part = {"errorDeclaration": event["errorDeclaration"]}
        _children(part, _FAST_CTX)  # raises where the general path would
        _collect_expanded(part, "", _FAST_CTX, more)
    if more:
        found.extend(sorted(more))
    # The cache key keeps event order; equal sets give equal maps either way.
    return _fast_replacement(tuple(found)) if found else {}


def _prehash_fast(event: Mapping[str, Any]) -> str | None:
    """The pre-hash string of a usual lone event (no context), or None: use the general path."""
    if type(event) is not dict:
        return None
    try:
        etype = event.get("type")
        if not isinstance(etype, str) or etype not in EVENT_TYPES:
            return None
        replace = _fast_replace(event)
        ordered = [""] * len(_FAST_ORDERED)
        rest: list[str] = []
        for key, value in event.items():
            slot = _FAST_ORDERED.get(key)
            if slot is not None:  # SPEC §3 steps 5-6
                ordered[slot[0]] = slot[1](key, value, replace)
            elif key in _PAIR_LISTS:  # SPEC §3 step 10 (Q1)
                text = _fpairs(key, _PAIR_LISTS[key], value, replace)
                if text:
                    rest.append(text)
            elif key == "ilmd":  # SPEC §3 step 10
                if type(value) is not dict:
                    raise _Bail
                inner: list[str] = []
                for name, item in value.items():
                    if not _fast_key(name):
                        raise _Bail
                    _fext(name, item, replace, inner)
                inner.sort()
                rest.append("ilmd" + "".join(inner))
            elif key in _FAST_IGNORED:
                continue
            elif _fast_key(key):  # SPEC §3 step 10: user extensions
                _fext(key, value, replace, rest)
            else:
                raise _Bail
        if type(event.get("eventTime")) is not str:
            return None  # required: the general path says so
        rest.sort()
        # SPEC §3 step 11
        return "eventType=" + etype + "".join(ordered) + "".join(rest)
    except Exception:  # any surprise, invalid values included: the general path decides
        return None


def _prehash_general(event: Any, context: Mapping[str, str] | None = None) -> str:
    try:
        return _prehash_general_impl(event, context)
    except (TypeError, ValueError, OverflowError) as exc:
        # Malformed input (a list where a string belongs, an offset of 24 h or more) must
        # surface as the core's typed error, never as a bare Python exception.
        raise EpcisValidationError(f"cannot hash this event: {exc}", path="event") from exc


def _prehash_general_impl(
    event: Mapping[str, Any], context: Mapping[str, str] | None = None
) -> str:
    """The pre-hash string by the general path (node tree, SPEC §3 steps 1-11): the definition."""
    return _event_prehash(event, _context_for_event(event, context), "event")


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


def _event_prehash(event: Any, ctx: _Ctx, path: str) -> str:
    if not isinstance(event, Mapping):
        raise EpcisValidationError("an event must be a JSON object", path=path)
    etype = event.get("type")
    if etype not in EVENT_TYPES:
        raise EpcisValidationError(
            f"unknown event type {etype!r}; expected one of {sorted(EVENT_TYPES)}",
            path=path + ".type",
        )
    if not isinstance(event.get("eventTime"), str):
        raise EpcisValidationError("eventTime (a string) is required", path=path + ".eventTime")
    try:
        # SPEC §3 steps 3-4: the JSON object becomes the node tree the XML binding yields.
        return _tree_prehash((str(etype), "", _children(event, ctx)), ctx.ignore)
    except EpcisValidationError as exc:
        raise _at(exc, path) from None


def _context_for_event(event: Mapping[str, Any], context: Mapping[str, str] | None) -> _Ctx:
    ctx = _Ctx()
    own = event.get("@context")
    if own is not None:
        _read_context(own if isinstance(own, list) else [own], ctx)
        ctx.standard = True  # a lone event is read against the standard context regardless
    if context:
        for prefix, iri in context.items():
            ctx.namespaces[prefix] = iri
            ctx.terms.add(prefix)
    expanded: set[str] = set()
    _collect_expanded(event, "", ctx, expanded)
    ctx.replace = _replacement_map(frozenset(expanded))
    return ctx


def prehash_string(event: Mapping[str, Any], *, context: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of one EPCIS 2.0 JSON-LD event.

    Args:
        event: The event object (``{"type": "ObjectEvent", "eventTime": ..., ...}``).
        context: Namespace prefixes in force (``{"example": "https://ns.example.com/epcis/"}``),
            i.e. the object entries of the enclosing document's ``@context``. The standard GS1
            EPCIS context is always assumed.

    Returns:
        The pre-hash string (SPEC §3); its SHA-256 is the event hash. Without ``context``, the
        usual builder-shaped event takes the fast path; the result is the same either way.

    Raises:
        EpcisValidationError: The event is structurally invalid (path names the field).
        EncodingError: Another encoding problem.
    """
    if not context:
        fast = _prehash_fast(event)
        if fast is not None:
            return fast
    return _prehash_general(event, context)


def hash_prehash(prehash: str) -> str:
    """``ni:///sha-256;{hex}?ver=CBV2.0`` of a pre-hash string. SPEC §3 step 12.

    Args:
        prehash: A pre-hash string.

    Returns:
        The RFC 6920 named-information URI used as event ID.
    """
    digest = hashlib.sha256(prehash.encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={EVENT_HASH_VERSION}"


def event_hash(event: Mapping[str, Any], *, context: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 event hash ID of one EPCIS 2.0 JSON-LD event.

    Args:
        event: The event object.
        context: Namespace prefixes in force (see :func:`prehash_string`).

    Returns:
        ``ni:///sha-256;{lowercase hex}?ver=CBV2.0``.

    Raises:
        EpcisValidationError: The event is structurally invalid (path names the field).
        EncodingError: Another encoding problem.
    """
    return hash_prehash(prehash_string(event, context=context))


def _load(doc: Mapping[str, Any] | bytes | str) -> Any:
    if isinstance(doc, Mapping):
        return doc
    if isinstance(doc, bytes | bytearray):
        try:
            text = bytes(doc).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"document is not UTF-8: {exc}") from exc
    elif isinstance(doc, str):
        text = doc
    else:
        raise EncodingError(f"unsupported document type {type(doc).__name__}")
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _document_from_xml(stripped)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EncodingError(f"document is not valid JSON: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# XML binding. SPEC §3 step 13: the XML document maps onto the same node tree.
# ---------------------------------------------------------------------------------------------

_UNWRAPPED_XML: Final = frozenset({"extension", "baseExtension"})
_XML_PREFIXES: Final = (("gs1:", _GS1_VOC), ("cbv:", _CBV))


def _xml_value(text: str) -> str:
    for prefix, iri in _XML_PREFIXES:
        if text.startswith(prefix):
            return text.replace(prefix, iri)
    return text


def _xml_children(element: ElementTree.Element) -> Iterable[ElementTree.Element]:
    for child in element:
        if isinstance(child.tag, str) and child.tag in _UNWRAPPED_XML:
            yield from _xml_children(child)  # EPCIS 1.x <extension> wrappers are transparent
        elif isinstance(child.tag, str):
            yield child


def _xml_node(element: ElementTree.Element) -> Node:
    kids: list[Node] = [(k, _xml_value(v.strip()), []) for k, v in element.attrib.items()]
    kids.extend(_xml_node(child) for child in _xml_children(element))
    pairs: list[Node] = []
    for name, text, grand in kids:
        if name in _UNSORTED_MARKERS:  # bizTransaction/source/destination: type attribute first
            pair = [g for g in grand if g[0] == "type"][:1]
            pairs.append((_PAIR, "", [*pair, (name, text, [])]))
    if pairs:
        kids = pairs
    return (element.tag, _xml_value((element.text or "").strip()), kids)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _document_from_xml(text: str) -> tuple[list[Node], frozenset[str]]:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise EncodingError("XML document type declarations are not accepted")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise EncodingError(f"document is not well-formed XML: {exc}") from exc
    if _local(root.tag) not in ("EPCISDocument", "EPCISQueryDocument"):
        raise EpcisValidationError(f"not an EPCIS document: root element is {_local(root.tag)}")
    event_list = next((e for e in root.iter("EventList")), None)
    if event_list is None:
        raise EpcisValidationError("no EventList", path="EPCISBody.EventList")
    ignore = {
        child.tag
        for holder in root.iter()
        if isinstance(holder.tag, str) and _local(holder.tag) == "ignoreFields"
        for child in holder
        if isinstance(child.tag, str)
    }
    events: list[Node] = []
    for i, element in enumerate(_xml_children(event_list)):
        path = f"EventList[{i}]"
        if element.tag not in EVENT_TYPES:
            raise EpcisValidationError(f"unknown event type {element.tag!r}", path=path)
        if element.find("eventTime") is None:
            raise EpcisValidationError("eventTime is required", path=path + ".eventTime")
        events.append(_xml_node(element))
    return events, frozenset(ignore)


def _tree_prehash(node: Node, ignore: frozenset[str]) -> str:
    name, _text, children = node
    ordered = _ordered(children, _PROP_MAP)  # SPEC §3 steps 5-6
    ignored = _TOP_IGNORED | ignore if ignore else _TOP_IGNORED  # SPEC §3 step 10
    rest = _generic([k for k in children if k[0] not in ignored])
    return "eventType=" + name + ordered + rest  # SPEC §3 step 11


def _ignore_fields(holder: Any, ctx: _Ctx) -> set[str]:
    """Names listed under a ``…:ignoreFields`` key (excluded from every event). SPEC §3 step 10."""
    out: set[str] = set()
    if not isinstance(holder, Mapping):
        return out
    for key, value in holder.items():
        name = ctx.key(key)
        if name == "ignoreFields" or name.endswith(("}ignoreFields", ":ignoreFields")):
            items = value if isinstance(value, list) else [value]
            out.update(ctx.key(v) for v in items if isinstance(v, str))
    return out


def _document_events(doc: Any) -> tuple[list[Any], str, _Ctx]:
    if not isinstance(doc, Mapping):
        raise EpcisValidationError("not an EPCIS document: expected a JSON object")
    dtype = doc.get("type")
    if dtype is not None and dtype not in ("EPCISDocument", "EPCISQueryDocument"):
        raise EpcisValidationError(f"not an EPCIS document: type is {dtype!r}", path="type")
    body = doc.get("epcisBody")
    if not isinstance(body, Mapping):
        raise EpcisValidationError("not an EPCIS document: no epcisBody object", path="epcisBody")
    ctx = _Ctx()
    _read_context(doc.get("@context"), ctx)
    ignore = _ignore_fields(doc, ctx)
    if "eventList" in body:
        events, path = body["eventList"], "epcisBody.eventList"
    elif isinstance(body.get("queryResults"), Mapping):
        results = body["queryResults"]
        ignore |= _ignore_fields(results, ctx)
        rbody = results.get("resultsBody")
        if not isinstance(rbody, Mapping) or "eventList" not in rbody:
            raise EpcisValidationError(
                "no eventList", path="epcisBody.queryResults.resultsBody.eventList"
            )
        events, path = rbody["eventList"], "epcisBody.queryResults.resultsBody.eventList"
    else:
        raise EpcisValidationError("no eventList", path="epcisBody.eventList")
    if not isinstance(events, list):
        raise EpcisValidationError("eventList must be an array", path=path)
    ctx.ignore = frozenset(ignore)
    if ctx.standard:
        expanded: set[str] = set()
        # SPEC §3 step 2: the whole document is expanded at once, so a bare term used in one
        # event can expand an equal string in another (quirk Q6).
        _collect_expanded({k: v for k, v in doc.items() if k != "@context"}, "", ctx, expanded)
        ctx.replace = _replacement_map(frozenset(expanded))
    return events, path, ctx


def document_prehash_strings(doc: Mapping[str, Any] | bytes | str) -> list[str]:
    """Pre-hash strings of every event of an EPCIS document, in document order.

    Args:
        doc: An ``EPCISDocument`` or ``EPCISQueryDocument``: parsed JSON, or JSON-LD/XML as
            bytes or text.

    Returns:
        One pre-hash string per event.

    Raises:
        EpcisValidationError: Not an EPCIS document, no eventList, or an invalid event.
        EncodingError: The bytes are not UTF-8 JSON (or XML).
    """
    loaded = _load(doc)
    if isinstance(loaded, tuple):  # XML: (event trees, ignoreFields)
        trees, ignore = loaded
        out: list[str] = []
        for i, tree in enumerate(trees):
            try:
                out.append(_tree_prehash(tree, ignore))
            except EpcisValidationError as exc:
                raise _at(exc, f"EventList[{i}]") from None
        return out
    events, path, ctx = _document_events(loaded)
    out = []
    for i, e in enumerate(events):
        try:
            out.append(_event_prehash(e, ctx, f"{path}[{i}]"))
        except (TypeError, ValueError, OverflowError) as exc:
            # Same rule as prehash_string: only typed errors leave the core.
            raise EpcisValidationError(
                f"cannot hash this event: {exc}", path=f"{path}[{i}]"
            ) from exc
    return out


def document_event_hashes(doc: Mapping[str, Any] | bytes | str) -> list[str]:
    """CBV 2.0 event hashes of every event of an EPCIS document, in document order.

    Args:
        doc: An ``EPCISDocument`` or ``EPCISQueryDocument``: parsed JSON, or JSON-LD/XML as
            bytes or text.

    Returns:
        One ``ni:///sha-256;…?ver=CBV2.0`` per event.

    Raises:
        EpcisValidationError: Not an EPCIS document, no eventList, or an invalid event.
        EncodingError: The bytes are not UTF-8 JSON (or XML).
    """
    return [hash_prehash(p) for p in document_prehash_strings(doc)]
