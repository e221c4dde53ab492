"""EPCIS 2.0 events: validation of JSON-LD documents, a frozen event model, and builders.

Our own pure validator of the GS1 EPCIS 2.0 JSON Schema's constraints (no JSON Schema
engine at run time, nothing fetched): docs/spec/02-epcis.md gives the accepted subset and
the numbered steps that the code below cites as ``# SPEC §2.x step n``.

* :func:`load_document` takes bytes (UTF-8 JSON), text or an already parsed mapping and
  returns an :class:`EpcisDocument`, or raises :class:`~ledger.errors.EpcisValidationError`
  whose ``path`` names the offending field (``epcisBody.eventList[0].ilmd``) and whose
  ``reason`` says why.
* :func:`validate_event` does the same for one event object; :func:`check_event` gives its
  verdict without building the model. The usual event shapes take a fast path proven to give
  the same result (SPEC §2.4a).
* :func:`object_event`, :func:`aggregation_event`, :func:`transformation_event`,
  :func:`association_event` and :func:`document` build plain JSON dicts with bare CBV
  terms that pass this validator.

CBV values may be written as bare terms (``shipping``), Web URIs
(``https://ref.gs1.org/cbv/BizStep-shipping``) or EPCIS 1.x URNs
(``urn:epcglobal:cbv:bizstep:shipping``); the model keeps the Web URI and offers the bare
term (``biz_step_term``).
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, NoReturn, TypeAlias

from ledger.cbv import (
    ALERT_TYPES,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    CBV_WEB,
    COMPONENTS,
    DISPOSITIONS,
    ERROR_REASONS,
    KINDS,
    MEASUREMENT_TYPES,
    SOURCE_DEST_TYPES,
    CbvKind,
    urn_prefix,
    vocabulary,
    web_prefix,
)
from ledger.errors import EpcisValidationError

__all__ = [
    "BIZ_STEPS",
    "BIZ_TRANSACTION_TYPES",
    "DISPOSITIONS",
    "EPCIS_CONTEXT",
    "ERROR_REASONS",
    "EVENT_TYPES",
    "GS1_CONTEXTS",
    "SOURCE_DEST_TYPES",
    "YIMA_NS",
    "YIMA_PREFIX",
    "Action",
    "AggregationEvent",
    "AssociationEvent",
    "BaseEvent",
    "BizTransaction",
    "CbvKind",
    "EpcisDocument",
    "ErrorDeclaration",
    "Event",
    "ObjectEvent",
    "PersistentDisposition",
    "QuantityElement",
    "SensorElement",
    "SensorReport",
    "SourceDest",
    "TransactionEvent",
    "TransformationEvent",
    "aggregation_event",
    "association_event",
    "cbv_uri",
    "check_event",
    "document",
    "epc_list_of",
    "load_document",
    "normalize_cbv",
    "object_event",
    "sensor_element",
    "sensor_report",
    "transformation_event",
    "validate_event",
]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
"""The standard EPCIS 2.0 JSON-LD context that :func:`document` names."""

YIMA_PREFIX: Final = "yima"
YIMA_NS: Final = "https://yima.example/ns/"
"""Namespace of Yima's extension fields (``"yima:administered": true``), SPEC §2.7."""

Action: TypeAlias = Literal["ADD", "OBSERVE", "DELETE"]
_ACTIONS: Final = ("ADD", "OBSERVE", "DELETE")

EVENT_TYPES: Final = (
    "ObjectEvent",
    "AggregationEvent",
    "AssociationEvent",
    "TransformationEvent",
    "TransactionEvent",
)

# The prefixes that the GS1 contexts themselves declare (so "cbvmda:lotNumber" or
# "rdfs:comment" need no local declaration). Kept in code: nothing is fetched (SPEC §2.2).
_FULL_CONTEXT_PREFIXES: Final[Mapping[str, str]] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
_SIMPLE_CONTEXT_PREFIXES: Final[Mapping[str, str]] = {
    **_FULL_CONTEXT_PREFIXES,
    "vtype": "urn:epcglobal:epcis:vtype:",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}
GS1_CONTEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    EPCIS_CONTEXT: _FULL_CONTEXT_PREFIXES,
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld": _FULL_CONTEXT_PREFIXES,
    "https://gs1.github.io/EPCIS/epcis-context.jsonld": _FULL_CONTEXT_PREFIXES,
    "https://gs1.github.io/EPCIS/epcis-context-simple.jsonld": _SIMPLE_CONTEXT_PREFIXES,
}
"""The GS1 EPCIS 2.0 context URLs we know offline, with the prefixes each declares."""

_DEFAULT_PREFIXES: Final[Mapping[str, str]] = {**_FULL_CONTEXT_PREFIXES, YIMA_PREFIX: YIMA_NS}

# --------------------------------------------------------------------------------------------
# Small format checks (the schema's "format": "uri" / "date-time" and its patterns)
# --------------------------------------------------------------------------------------------

# RFC 3986 absolute URI, ASCII only: scheme ":" then URI characters or %HH escapes.
_URI_RE: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*"
)
# RFC 3339 date-time (what JSON Schema "format": "date-time" means).
_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:[Zz]|[+-](\d{2}):(\d{2}))"
)
_TZ_OFFSET_RE: Final = re.compile(r"[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)")
_VERSION_RE: Final = re.compile(r"\d+(\.\d+)*")
_UOM_RE: Final = re.compile(r"[A-Z0-9]{2,3}")
_HEX_RE: Final = re.compile(r"[A-Fa-f0-9]+")
# vocab-other-uri: a private vocabulary URI may not sit in GS1's CBV namespaces.
_CBV_OWNED_RE: Final = re.compile(r"urn:epcglobal:cbv|https?://ns\.gs1\.org/cbv/")
# vocab-nonGS1WebVoc-uri: measurement/alert types may not be GS1 Web Vocabulary URIs.
_GS1_VOC_RE: Final = re.compile(r"https?://(www\.)?gs1\.org/voc/")


# The same language as _URI_RE for strings without "%" (where the percent-escape branch can
# never match): one character class instead of an alternation per character, several times
# faster on the ~25 URIs of a typical event.
_URI_PLAIN_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]*")


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if "%" in value:
        return _URI_RE.fullmatch(value) is not None
    return _URI_PLAIN_RE.fullmatch(value) is not None


# JSON-LD blank node identifier, allowed where a value is a node's @id ("id").
_BLANK_NODE_RE: Final = re.compile(r"_:\S+")


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    m = _DATETIME_RE.fullmatch(value)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    # Second 60 is RFC 3339's leap second.
    if hour > 23 or minute > 59 or second > 60:
        return False
    oh, om = m.group(7), m.group(8)
    return oh is None or (int(oh) <= 23 and int(om) <= 59)


def _is_number(value: object) -> bool:
    # bool is an int subclass in Python but not a JSON number.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _describe(value: object) -> str:
    """A short JSON-ish name of a value's type for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"string {shown!r}"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _fail(path: str, reason: str) -> NoReturn:
    raise EpcisValidationError(reason, path=path)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _ix(path: str, index: int) -> str:
    return f"{path}[{index}]"


# --------------------------------------------------------------------------------------------
# CBV normalisation (SPEC §2.2)
# --------------------------------------------------------------------------------------------


def _cbv_term(value: str, kind: CbvKind, path: str) -> str | None:
    """Bare term of a CBV value, ``None`` for a private-vocabulary URI; raises if neither.

    SPEC §2.2 steps 1-5.
    """
    terms = vocabulary(kind)
    # SPEC §2.2 step 1: a bare term must be one of the code list's terms.
    if ":" not in value:
        if value in terms:
            return value
        _fail(path, f"{value!r} is not a CBV {kind} term (and not a URI)")
    # SPEC §2.2 step 2: EPCIS 1.x URN of this code list (schema deviation D1: accepted).
    urn = urn_prefix(kind)
    if value.startswith(urn):
        term = value[len(urn) :]
        if term in terms:
            return term
        _fail(path, f"{value!r} is not a CBV {kind} URN (unknown term {term!r})")
    # SPEC §2.2 step 3: CBV 2.0 Web URI of this code list.
    web = web_prefix(kind)
    if value.startswith(web):
        term = value[len(web) :]
        if term in terms:
            return term
        _fail(path, f"{value!r} is not a CBV {kind} Web URI (unknown term {term!r})")
    # SPEC §2.2 step 4: other values in GS1's CBV namespaces are not {kind} values.
    if _CBV_OWNED_RE.match(value) or value.startswith(CBV_WEB):
        _fail(path, f"{value!r} is in a GS1 CBV namespace but is not a CBV {kind} value")
    # SPEC §2.2 step 5: any other absolute URI is a private vocabulary value.
    if _is_uri(value):
        return None
    _fail(path, f"{value!r} is neither a CBV {kind} term nor an absolute URI")


def normalize_cbv(term: str, kind: CbvKind) -> str:
    """The bare CBV term of a value written bare, as a URN or as a Web URI.

    A private-vocabulary URI (outside GS1's CBV namespaces) is returned unchanged.

    Args:
        term: ``"shipping"``, ``"urn:epcglobal:cbv:bizstep:shipping"`` or
            ``"https://ref.gs1.org/cbv/BizStep-shipping"``.
        kind: The code list: ``bizStep``, ``disposition``, ``bizTransactionType``,
            ``sourceDestType`` or ``errorReason``.

    Returns:
        The bare term (``"shipping"``), or the private URI as given.

    Raises:
        EpcisValidationError: Unknown bare term, unknown CBV URI, or not a URI at all.
    """
    if not isinstance(term, str):
        _fail("", f"a CBV {kind} value must be a string, got {_describe(term)}")
    bare = _cbv_term(term, kind, "")
    return term if bare is None else bare


def cbv_uri(term: str, kind: CbvKind) -> str:
    """The CBV 2.0 Web URI of a value written bare, as a URN or as a Web URI.

    A private-vocabulary URI is returned unchanged.

    Args:
        term: The value in any accepted spelling.
        kind: The code list (see :func:`normalize_cbv`).

    Returns:
        E.g. ``"https://ref.gs1.org/cbv/BizStep-shipping"``.

    Raises:
        EpcisValidationError: As :func:`normalize_cbv`.
    """
    if not isinstance(term, str):
        _fail("", f"a CBV {kind} value must be a string, got {_describe(term)}")
    bare = _cbv_term(term, kind, "")
    return term if bare is None else web_prefix(kind) + bare


def _term_of(uri: str | None, kind: CbvKind) -> str | None:
    if uri is None:
        return None
    prefix = web_prefix(kind)
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuantityElement:
    """A class-level quantity: ``{"epcClass", "quantity", "uom"}``.

    Attributes:
        epc_class: The class URI (e.g. an LGTIN ``https://id.gs1.org/01/.../10/LOT``).
        quantity: The amount, absent for a count of unknown size.
        uom: UN/ECE Rec 20 unit code such as ``KGM``; absent means a count of items.
    """

    epc_class: str
    quantity: int | float | None = None
    uom: str | None = None


@dataclass(frozen=True, slots=True)
class BizTransaction:
    """A business transaction reference.

    Attributes:
        value: The transaction's URI (``bizTransaction``).
        type: Web URI of its type (``https://ref.gs1.org/cbv/BTT-po``), or a private URI.
    """

    value: str
    type: str | None = None

    @property
    def type_term(self) -> str | None:
        """The bare CBV type term (``po``), or the private type URI."""
        return _term_of(self.type, "bizTransactionType")


@dataclass(frozen=True, slots=True)
class SourceDest:
    """A source or destination.

    Attributes:
        type: Web URI of its type (``https://ref.gs1.org/cbv/SDT-owning_party``) or private.
        id: The party or location URI.
    """

    type: str
    id: str

    @property
    def type_term(self) -> str:
        """The bare CBV type term (``owning_party``), or the private type URI."""
        return _term_of(self.type, "sourceDestType") or self.type


@dataclass(frozen=True, slots=True)
class PersistentDisposition:
    """Dispositions that persist until unset (EPCIS 2.0), e.g. a recall.

    Attributes:
        set_values: Web URIs of dispositions this event sets.
        unset_values: Web URIs of dispositions this event clears.
    """

    set_values: tuple[str, ...] = ()
    unset_values: tuple[str, ...] = ()

    @property
    def set_terms(self) -> tuple[str, ...]:
        """Bare terms of ``set_values`` (private URIs unchanged)."""
        return tuple(_term_of(v, "disposition") or v for v in self.set_values)

    @property
    def unset_terms(self) -> tuple[str, ...]:
        """Bare terms of ``unset_values`` (private URIs unchanged)."""
        return tuple(_term_of(v, "disposition") or v for v in self.unset_values)


@dataclass(frozen=True, slots=True)
class SensorReport:
    """One sensor reading (``sensorReport`` member).

    Attributes:
        type: Measurement type as written (``Temperature`` or a URI).
        exception: ``ALARM_CONDITION`` / ``ERROR_CONDITION`` or a URI, if any.
        value: The reading.
        min_value: Minimum over the interval.
        max_value: Maximum over the interval.
        mean_value: Mean over the interval.
        uom: Unit (``CEL`` for degrees Celsius).
        time: When measured.
        device_id: The sensor's URI.
        raw: The report object as given.
    """

    type: str
    raw: Mapping[str, Any]
    exception: str | None = None
    value: int | float | None = None
    min_value: int | float | None = None
    max_value: int | float | None = None
    mean_value: int | float | None = None
    uom: str | None = None
    time: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class SensorElement:
    """A ``sensorElementList`` member.

    Attributes:
        reports: The readings.
        metadata: ``sensorMetadata`` as given, if any.
        raw: The element as given.
    """

    reports: tuple[SensorReport, ...]
    raw: Mapping[str, Any]
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ErrorDeclaration:
    """An ``errorDeclaration``: the event is declared wrong after the fact.

    Attributes:
        declaration_time: When it was declared wrong.
        reason: Web URI of the reason (``https://ref.gs1.org/cbv/ER-incorrect_data``) or private.
        corrective_event_ids: eventIDs of the events that correct it.
        raw: The object as given.
    """

    declaration_time: str
    raw: Mapping[str, Any]
    reason: str | None = None
    corrective_event_ids: tuple[str, ...] = ()

    @property
    def reason_term(self) -> str | None:
        """The bare reason term (``incorrect_data``), or the private URI."""
        return _term_of(self.reason, "errorReason")


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseEvent:
    """Fields shared by every EPCIS event (SPEC §2.5).

    CBV values are stored as Web URIs (private URIs as given); ``*_term`` properties give
    the bare terms. ``raw`` is the exact JSON object that was validated.

    Attributes:
        event_time: ``eventTime`` (RFC 3339 text as given).
        event_time_zone_offset: ``eventTimeZoneOffset`` such as ``+08:00``.
        raw: The event JSON object as given.
        event_id: ``eventID`` (or the JSON-LD alias ``id``), if any.
        record_time: ``recordTime``, if any.
        biz_step: Web URI of the business step, if any.
        disposition: Web URI of the disposition, if any.
        persistent_disposition: Dispositions set/unset until further notice (召回 sets
            ``recalled``).
        read_point: ``readPoint.id``.
        biz_location: ``bizLocation.id``.
        biz_transactions: ``bizTransactionList``.
        sources: ``sourceList``.
        destinations: ``destinationList``.
        sensor_elements: ``sensorElementList``.
        ilmd: Instance/lot master data, only on ObjectEvent ADD and TransformationEvent.
        error_declaration: ``errorDeclaration``, if any.
        certification_info: ``certificationInfo`` URIs.
        extensions: The event's top-level namespaced extension fields, keys as written.
    """

    TYPE: ClassVar[str] = ""

    event_time: str
    event_time_zone_offset: str
    raw: Mapping[str, Any]
    event_id: str | None = None
    record_time: str | None = None
    biz_step: str | None = None
    disposition: str | None = None
    persistent_disposition: PersistentDisposition | None = None
    read_point: str | None = None
    biz_location: str | None = None
    biz_transactions: tuple[BizTransaction, ...] = ()
    sources: tuple[SourceDest, ...] = ()
    destinations: tuple[SourceDest, ...] = ()
    sensor_elements: tuple[SensorElement, ...] = ()
    ilmd: Mapping[str, Any] | None = None
    error_declaration: ErrorDeclaration | None = None
    certification_info: tuple[str, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """``ObjectEvent``, ``AggregationEvent``, … ."""
        return self.TYPE

    @property
    def biz_step_term(self) -> str | None:
        """The bare bizStep term (``shipping``), a private URI, or ``None``."""
        return _term_of(self.biz_step, "bizStep")

    @property
    def disposition_term(self) -> str | None:
        """The bare disposition term (``in_transit``), a private URI, or ``None``."""
        return _term_of(self.disposition, "disposition")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectEvent(BaseEvent):
    """An event about objects (EPCs and/or class quantities)."""

    TYPE: ClassVar[str] = "ObjectEvent"

    action: str
    epc_list: tuple[str, ...] = ()
    quantity_list: tuple[QuantityElement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregationEvent(BaseEvent):
    """Children physically packed into (ADD) or taken out of (DELETE) a parent."""

    TYPE: ClassVar[str] = "AggregationEvent"

    action: str
    parent_id: str | None = None
    child_epcs: tuple[str, ...] = ()
    child_quantity_list: tuple[QuantityElement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociationEvent(BaseEvent):
    """A non-physical link such as a temperature logger ↔ an SSCC."""

    TYPE: ClassVar[str] = "AssociationEvent"

    action: str
    parent_id: str
    child_epcs: tuple[str, ...] = ()
    child_quantity_list: tuple[QuantityElement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformationEvent(BaseEvent):
    """Inputs consumed and outputs produced (e.g. 中药炮制); has no ``action``."""

    TYPE: ClassVar[str] = "TransformationEvent"

    input_epc_list: tuple[str, ...] = ()
    input_quantity_list: tuple[QuantityElement, ...] = ()
    output_epc_list: tuple[str, ...] = ()
    output_quantity_list: tuple[QuantityElement, ...] = ()
    transformation_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEvent(BaseEvent):
    """Objects tied to business transactions (accepted; discouraged by EPCIS 2.0)."""

    TYPE: ClassVar[str] = "TransactionEvent"

    action: str
    parent_id: str | None = None
    epc_list: tuple[str, ...] = ()
    quantity_list: tuple[QuantityElement, ...] = ()


Event: TypeAlias = (
    ObjectEvent | AggregationEvent | AssociationEvent | TransformationEvent | TransactionEvent
)


@dataclass(frozen=True, slots=True)
class EpcisDocument:
    """A validated EPCIS 2.0 document.

    Attributes:
        context: ``@context`` as given.
        schema_version: ``schemaVersion`` (required in an EPCISDocument, optional in a query
            document).
        creation_date: ``creationDate`` (same).
        events: The events in document order.
        raw: The document JSON object as given.
        document_type: ``EPCISDocument`` or ``EPCISQueryDocument``.
        prefixes: Every namespace prefix in force at the document level (GS1 context
            prefixes plus the document's own declarations), for expanding extension keys.
    """

    context: Any
    schema_version: str | None
    creation_date: str | None
    events: tuple[Event, ...]
    raw: Mapping[str, Any]
    document_type: str = "EPCISDocument"
    prefixes: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Parsing and the JSON data model (SPEC §2.3 step 1)
# --------------------------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _last_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # ECMAScript JSON.parse and Python agree: the last duplicate wins. GS1's own example
    # AssociationEvent-h repeats eventID, and the GS1 schema accepts it (SPEC §2.9 D7).
    return dict(pairs)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        # Two readers of a duplicated key can see two different events; refuse instead.
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def _check_json_model(value: Any, path: str) -> None:
    """Refuse anything that is not plain JSON (I-JSON: no lone surrogates, finite numbers)."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, f"{value!r} is not a JSON number")
        return
    if isinstance(value, str):
        if _has_surrogate(value):
            _fail(path, "string contains a lone UTF-16 surrogate (not valid Unicode text)")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(path, f"object key {key!r} is not a string")
            if _has_surrogate(key):
                _fail(path, "object key contains a lone UTF-16 surrogate")
            _check_json_model(item, _at(path, key))
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_model(item, _ix(path, i))
        return
    _fail(path, f"{type(value).__name__} is not a JSON value")


def _parse(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any], *, reject_duplicate_keys: bool
) -> Mapping[str, Any]:
    # SPEC §2.3 step 1: UTF-8 JSON text, one object, no NaN/Infinity (duplicate keys: the
    # last wins unless the caller asks for them to be refused).
    if isinstance(data, Mapping):
        _check_json_model(data, "")
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            _fail("", f"document is not UTF-8 (bad byte at offset {exc.start})")
    elif isinstance(data, str):
        text = data
    else:
        _fail("", f"expected bytes, str or a mapping, got {type(data).__name__}")
    try:
        parsed = json.loads(
            text,
            object_pairs_hook=_no_duplicates if reject_duplicate_keys else _last_wins,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        _fail(
            "", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        )
    except _DuplicateKeyError as exc:
        _fail("", f"invalid JSON: duplicate key {exc.key!r} in one object")
    except ValueError as exc:
        _fail("", f"invalid JSON: {exc} is not a JSON number")
    if not isinstance(parsed, dict):
        _fail("", f"an EPCIS document must be a JSON object, got {_describe(parsed)}")
    _check_json_model(parsed, "")
    return parsed


# --------------------------------------------------------------------------------------------
# @context and extension keys (SPEC §2.3 step 3, §2.4 step 2)
# --------------------------------------------------------------------------------------------


def _context_prefixes(ctx: Any, path: str) -> tuple[dict[str, str], bool]:
    """Prefixes declared by an ``@context`` value, and whether it names a GS1 context."""
    items: list[Any]
    if isinstance(ctx, list):
        seen: set[str] = set()
        for i, item in enumerate(ctx):
            # The schema's "uniqueItems": the same entry twice is refused.
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                _fail(_ix(path, i), "@context lists the same entry twice")
            seen.add(key)
        items = ctx
        where = [_ix(path, i) for i in range(len(ctx))]
    else:
        items = [ctx]
        where = [path]
    prefixes: dict[str, str] = {}
    has_gs1 = False
    for item, at in zip(items, where, strict=True):
        if isinstance(item, str):
            if not _is_uri(item):
                _fail(at, f"@context entry {_describe(item)} is not an absolute URI")
            known = GS1_CONTEXTS.get(item)
            if known is not None:
                has_gs1 = True
                prefixes.update(known)
        elif isinstance(item, Mapping):
            for term, definition in item.items():
                if term.startswith("@"):
                    continue
                iri = definition.get("@id") if isinstance(definition, Mapping) else definition
                if isinstance(iri, str):
                    prefixes[term] = iri
        else:
            _fail(at, f"@context entry must be a URI or an object, got {_describe(item)}")
    return prefixes, has_gs1


def _check_extension_key(key: str, path: str, prefixes: Mapping[str, str]) -> None:
    """An extension key is a compact IRI with a declared prefix, or an absolute URI."""
    at = _at(path, key)
    prefix, sep, rest = key.partition(":")
    if not sep:
        _fail(at, f"unknown field {key!r} (extension fields must be namespaced, e.g. 'yima:x')")
    if not _is_uri(key):
        _fail(at, f"extension field name {key!r} is not a URI")
    # JSON-LD: "p://..." is an absolute IRI, never a compact one; so are URNs.
    if rest.startswith("//") or prefix == "urn" or prefix in prefixes:
        return
    _fail(at, f"extension field {key!r} uses prefix {prefix!r} that the @context does not declare")


def _check_keys(
    obj: Mapping[str, Any],
    allowed: Iterable[str],
    path: str,
    prefixes: Mapping[str, str],
) -> dict[str, Any]:
    """Refuse unknown non-namespaced keys; return the extension (namespaced) members."""
    known = set(allowed)
    extensions: dict[str, Any] = {}
    for key, value in obj.items():
        if key in known:
            continue
        _check_extension_key(key, path, prefixes)
        extensions[key] = value
    return extensions


# --------------------------------------------------------------------------------------------
# Field helpers
# --------------------------------------------------------------------------------------------


def _object(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(path, f"{what} must be an object, got {_describe(value)}")
    return value


def _array(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, f"{what} must be an array, got {_describe(value)}")
    return value


def _uri(value: Any, path: str, what: str) -> str:
    if not _is_uri(value):
        _fail(path, f"{what} must be an absolute URI, got {_describe(value)}")
    assert isinstance(value, str)
    return value


def _node_id(value: Any, path: str, what: str) -> str:
    """A JSON-LD ``@id`` value: an absolute URI or a blank node id such as ``_:document1``."""
    if isinstance(value, str) and (_is_uri(value) or _BLANK_NODE_RE.fullmatch(value)):
        return value
    _fail(
        path, f"{what} must be an absolute URI or a blank node id (_:name), got {_describe(value)}"
    )


def _datetime(value: Any, path: str, what: str) -> str:
    if not _is_datetime(value):
        _fail(path, f"{what} must be an RFC 3339 date-time with offset, got {_describe(value)}")
    assert isinstance(value, str)
    return value


def _string(value: Any, path: str, what: str) -> str:
    if not isinstance(value, str):
        _fail(path, f"{what} must be a string, got {_describe(value)}")
    return value


def _number(value: Any, path: str, what: str) -> int | float:
    if not _is_number(value):
        _fail(path, f"{what} must be a number, got {_describe(value)}")
    assert isinstance(value, int | float)
    return value


def _opt(obj: Mapping[str, Any], key: str, path: str, check: Callable[[Any, str, str], Any]) -> Any:
    if key not in obj:
        return None
    return check(obj[key], _at(path, key), key)


def _require(obj: Mapping[str, Any], key: str, path: str, owner: str) -> Any:
    if key not in obj:
        _fail(_at(path, key), f"{key} is required in {owner}")
    return obj[key]


def _uri_list(value: Any, path: str, what: str, *, unique: bool) -> tuple[str, ...]:
    items = _array(value, path, what)
    # Fast path for the common, valid list (e.g. 1,000 EPCs): no per-member path strings. Any
    # doubt (a non-str member, an invalid URI, a repeat) takes the loop below, which raises
    # exactly as before.
    if all(type(item) is str and _is_uri(item) for item in items) and (
        not unique or len(set(items)) == len(items)
    ):
        return tuple(items)
    out: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        uri = _uri(item, _ix(path, i), f"each {what} member")
        if unique and uri in seen:
            _fail(_ix(path, i), f"{what} lists {uri!r} twice")
        seen.add(uri)
        out.append(uri)
    return tuple(out)


def _vocab(value: Any, path: str, kind: CbvKind) -> str:
    """A CBV field value -> Web URI (CBV) or the private URI (SPEC §2.2)."""
    if not isinstance(value, str):
        _fail(path, f"{kind} must be a string, got {_describe(value)}")
    bare = _cbv_term(value, kind, path)
    return value if bare is None else web_prefix(kind) + bare


def _gs1_voc_value(value: Any, path: str, what: str, terms: frozenset[str]) -> str:
    """sensorReport type / exception: a GS1 bare term or a URI outside gs1.org/voc/."""
    if not isinstance(value, str):
        _fail(path, f"{what} must be a string, got {_describe(value)}")
    if value in terms:
        return value
    if ":" not in value:
        _fail(path, f"{value!r} is not a GS1 {what} term (and not a URI)")
    if _GS1_VOC_RE.match(value):
        _fail(path, f"write the GS1 {what} {value!r} as its bare term")
    return _uri(value, path, what)


# --------------------------------------------------------------------------------------------
# Sub-structures (SPEC §2.4 steps 7-13)
# --------------------------------------------------------------------------------------------

_QUANTITY_KEYS: Final = frozenset({"epcClass", "quantity", "uom"})


def _quantity_list(value: Any, path: str, what: str) -> tuple[QuantityElement, ...]:
    out: list[QuantityElement] = []
    for i, item in enumerate(_array(value, path, what)):
        at = _ix(path, i)
        q = _object(item, at, f"each {what} member")
        for key in q:
            # quantityElement has "additionalProperties": false.
            if key not in _QUANTITY_KEYS:
                _fail(_at(at, key), f"{key!r} is not allowed in a quantityElement")
        epc_class = _uri(
            _require(q, "epcClass", at, "a quantityElement"), _at(at, "epcClass"), "epcClass"
        )
        quantity = _opt(q, "quantity", at, _number)
        uom = None
        if "uom" in q:
            uom = _string(q["uom"], _at(at, "uom"), "uom")
            if _UOM_RE.fullmatch(uom) is None:
                _fail(
                    _at(at, "uom"),
                    f"uom must be a UN/ECE Rec 20 code of 2-3 capitals/digits, got {uom!r}",
                )
        out.append(QuantityElement(epc_class, quantity, uom))
    return tuple(out)


def _location(value: Any, path: str, what: str, prefixes: Mapping[str, str]) -> str:
    obj = _object(value, path, what)
    _check_keys(obj, ("id",), path, prefixes)
    return _uri(_require(obj, "id", path, what), _at(path, "id"), f"{what}.id")


def _biz_transactions(value: Any, path: str) -> tuple[BizTransaction, ...]:
    out: list[BizTransaction] = []
    for i, item in enumerate(_array(value, path, "bizTransactionList")):
        at = _ix(path, i)
        bt = _object(item, at, "a bizTransaction")
        for key in bt:
            if key not in ("type", "bizTransaction"):
                _fail(_at(at, key), f"{key!r} is not allowed in a bizTransaction")
        ref = _uri(
            _require(bt, "bizTransaction", at, "a bizTransaction"),
            _at(at, "bizTransaction"),
            "bizTransaction",
        )
        btt = _vocab(bt["type"], _at(at, "type"), "bizTransactionType") if "type" in bt else None
        out.append(BizTransaction(ref, btt))
    return tuple(out)


def _source_dests(value: Any, path: str, member: str) -> tuple[SourceDest, ...]:
    out: list[SourceDest] = []
    for i, item in enumerate(_array(value, path, f"{member}List")):
        at = _ix(path, i)
        sd = _object(item, at, f"a {member}")
        for key in sd:
            if key not in ("type", member):
                _fail(_at(at, key), f"{key!r} is not allowed in a {member}")
        sdt = _vocab(_require(sd, "type", at, f"a {member}"), _at(at, "type"), "sourceDestType")
        ident = _uri(_require(sd, member, at, f"a {member}"), _at(at, member), member)
        out.append(SourceDest(sdt, ident))
    return tuple(out)


def _persistent_disposition(value: Any, path: str) -> PersistentDisposition:
    obj = _object(value, path, "persistentDisposition")
    for key in obj:
        if key not in ("set", "unset"):
            _fail(
                _at(path, key), f"{key!r} is not allowed in persistentDisposition (only set/unset)"
            )
    if "set" not in obj and "unset" not in obj:
        _fail(path, "persistentDisposition needs set or unset")
    parts: dict[str, tuple[str, ...]] = {}
    for key in ("set", "unset"):
        if key not in obj:
            parts[key] = ()
            continue
        at = _at(path, key)
        items = _array(obj[key], at, f"persistentDisposition.{key}")
        if not items:
            _fail(at, f"persistentDisposition.{key} must not be empty")
        raw_seen: set[Any] = set()
        values: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, str) and item in raw_seen:
                _fail(_ix(at, i), f"persistentDisposition.{key} lists {item!r} twice")
            raw_seen.add(item if isinstance(item, str) else id(item))
            values.append(_vocab(item, _ix(at, i), "disposition"))
        parts[key] = tuple(values)
    return PersistentDisposition(parts["set"], parts["unset"])


_SENSOR_METADATA_TIMES: Final = ("time", "startTime", "endTime")
_SENSOR_METADATA_URIS: Final = (
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
_SENSOR_REPORT_URIS: Final = (
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
    "microorganism",
    "chemicalSubstance",
    "coordinateReferenceSystem",
    "uriValue",
)
_SENSOR_REPORT_NUMBERS: Final = (
    "value",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
)
_SENSOR_REPORT_KEYS: Final = frozenset(
    {
        "type",
        "exception",
        "time",
        "component",
        "stringValue",
        "booleanValue",
        "hexBinaryValue",
        "uom",
        *_SENSOR_REPORT_URIS,
        *_SENSOR_REPORT_NUMBERS,
    }
)


def _sensor_report(value: Any, path: str, prefixes: Mapping[str, str]) -> SensorReport:
    rep = _object(value, path, "a sensorReport")
    _check_keys(rep, _SENSOR_REPORT_KEYS, path, prefixes)
    mtype = _gs1_voc_value(
        _require(rep, "type", path, "a sensorReport"),
        _at(path, "type"),
        "measurement type",
        MEASUREMENT_TYPES,
    )
    exception = None
    if "exception" in rep:
        exception = _gs1_voc_value(
            rep["exception"], _at(path, "exception"), "sensor alert type", ALERT_TYPES
        )
    for key in _SENSOR_REPORT_URIS:
        _opt(rep, key, path, _uri)
    numbers = {key: _opt(rep, key, path, _number) for key in _SENSOR_REPORT_NUMBERS}
    time = _opt(rep, "time", path, _datetime)
    if "component" in rep:
        comp = rep["component"]
        at = _at(path, "component")
        if not (isinstance(comp, str) and comp in COMPONENTS):
            if not isinstance(comp, str) or ":" not in comp:
                _fail(at, f"component must be a CBV component term or a URI, got {_describe(comp)}")
            if _CBV_OWNED_RE.match(comp):
                _fail(at, f"{comp!r} is in a GS1 CBV namespace; write the bare component term")
            _uri(comp, at, "component")
    _opt(rep, "stringValue", path, _string)
    if "booleanValue" in rep and not isinstance(rep["booleanValue"], bool):
        _fail(
            _at(path, "booleanValue"),
            f"booleanValue must be true or false, got {_describe(rep['booleanValue'])}",
        )
    if "hexBinaryValue" in rep:
        hx = rep["hexBinaryValue"]
        if not isinstance(hx, str) or _HEX_RE.fullmatch(hx) is None:
            _fail(
                _at(path, "hexBinaryValue"),
                f"hexBinaryValue must be hex digits, got {_describe(hx)}",
            )
    uom = _opt(rep, "uom", path, _string)
    return SensorReport(
        type=mtype,
        raw=rep,
        exception=exception,
        value=numbers["value"],
        min_value=numbers["minValue"],
        max_value=numbers["maxValue"],
        mean_value=numbers["meanValue"],
        uom=uom,
        time=time,
        device_id=rep.get("deviceID"),
    )


def _sensor_elements(
    value: Any, path: str, prefixes: Mapping[str, str]
) -> tuple[SensorElement, ...]:
    out: list[SensorElement] = []
    for i, item in enumerate(_array(value, path, "sensorElementList")):
        at = _ix(path, i)
        el = _object(item, at, "a sensorElement")
        # "type" is the GS1 context's alias of @type (the examples write "epcis:SensorElement").
        _check_keys(el, ("sensorMetadata", "sensorReport", "type"), at, prefixes)
        if "type" in el:
            _uri(el["type"], _at(at, "type"), "sensorElement type")
        metadata = None
        if "sensorMetadata" in el:
            mat = _at(at, "sensorMetadata")
            metadata = _object(el["sensorMetadata"], mat, "sensorMetadata")
            _check_keys(metadata, (*_SENSOR_METADATA_TIMES, *_SENSOR_METADATA_URIS), mat, prefixes)
            for key in _SENSOR_METADATA_TIMES:
                _opt(metadata, key, mat, _datetime)
            for key in _SENSOR_METADATA_URIS:
                _opt(metadata, key, mat, _uri)
        rat = _at(at, "sensorReport")
        reports = _array(_require(el, "sensorReport", at, "a sensorElement"), rat, "sensorReport")
        if not reports:
            _fail(rat, "sensorReport must have at least one report")
        parsed = tuple(_sensor_report(r, _ix(rat, j), prefixes) for j, r in enumerate(reports))
        out.append(SensorElement(parsed, el, metadata))
    return tuple(out)


def _error_declaration(value: Any, path: str, prefixes: Mapping[str, str]) -> ErrorDeclaration:
    obj = _object(value, path, "errorDeclaration")
    _check_keys(obj, ("declarationTime", "reason", "correctiveEventIDs"), path, prefixes)
    when = _datetime(
        _require(obj, "declarationTime", path, "errorDeclaration"),
        _at(path, "declarationTime"),
        "declarationTime",
    )
    reason = _vocab(obj["reason"], _at(path, "reason"), "errorReason") if "reason" in obj else None
    corrective: tuple[str, ...] = ()
    if "correctiveEventIDs" in obj:
        corrective = _uri_list(
            obj["correctiveEventIDs"],
            _at(path, "correctiveEventIDs"),
            "correctiveEventIDs",
            unique=False,
        )
    return ErrorDeclaration(when, obj, reason, corrective)


def _ilmd(value: Any, path: str, prefixes: Mapping[str, str]) -> Mapping[str, Any]:
    obj = _object(value, path, "ilmd")
    # ilmd's keys must be URIs (schema "propertyNames": {"format": "uri"}).
    _check_keys(obj, (), path, prefixes)
    return obj


# --------------------------------------------------------------------------------------------
# Events (SPEC §2.4)
# --------------------------------------------------------------------------------------------

_COMMON_KEYS: Final = frozenset(
    {
        "@context",
        "type",
        "eventTime",
        "recordTime",
        "eventTimeZoneOffset",
        "eventID",
        "certificationInfo",
        "errorDeclaration",
        # The GS1 context aliases "id" to @id, as "eventID" is (PersistentDisposition example).
        "id",
    }
)
_WHERE_WHY: Final = (
    "bizStep",
    "disposition",
    # EPCIS 2.0's "why" dimension has persistentDisposition on every event type; the JSON
    # Schema lists it on Object/Transformation only, but GS1's own examples put it on
    # Aggregation and Association events too (SPEC §2.9 D6).
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
)
_TYPE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "ObjectEvent": frozenset(
        {"action", "epcList", "quantityList", "persistentDisposition", "ilmd", *_WHERE_WHY}
    ),
    "AggregationEvent": frozenset(
        {"parentID", "childEPCs", "childQuantityList", "action", *_WHERE_WHY}
    ),
    "AssociationEvent": frozenset(
        {"parentID", "childEPCs", "childQuantityList", "action", *_WHERE_WHY}
    ),
    "TransformationEvent": frozenset(
        {
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "persistentDisposition",
            "ilmd",
            *_WHERE_WHY,
        }
    ),
    "TransactionEvent": frozenset({"parentID", "epcList", "quantityList", "action", *_WHERE_WHY}),
}


def validate_event(
    obj: Mapping[str, Any],
    path: str = "event",
    *,
    prefixes: Mapping[str, str] | None = None,
) -> Event:
    """Validate one EPCIS 2.0 event object and build its model.

    Args:
        obj: The event JSON object.
        path: Path of the event used in error messages, e.g. ``epcisBody.eventList[3]``.
        prefixes: Namespace prefixes in force (from the document's ``@context``); default:
            the GS1 context's prefixes plus ``yima``.

    Returns:
        The frozen model (``raw`` is ``obj`` itself).

    Raises:
        EpcisValidationError: With ``path`` of the offending field and ``reason``.
    """
    # SPEC §2.4a: the usual shapes take the fast path, which gives this same model.
    fast = _fast_event(obj, _DEFAULT_PREFIXES if prefixes is None else prefixes, True)
    if fast is not False and fast is not True:
        return fast
    return _validate_general(obj, path, prefixes)


def _validate_general(obj: Any, path: str, prefixes: Mapping[str, str] | None) -> Event:
    """SPEC §2.4 steps 1-14 for any event: the definition the fast path is proven against."""
    in_force: dict[str, str] = dict(_DEFAULT_PREFIXES if prefixes is None else prefixes)
    # SPEC §2.4 step 1: an object with a known event type.
    ev = _object(obj, path, "an event")
    etype = _require(ev, "type", path, "an event")
    if etype not in EVENT_TYPES:
        _fail(
            _at(path, "type"),
            f"unsupported event type {_describe(etype)} (expected one of {', '.join(EVENT_TYPES)})",
        )
    assert isinstance(etype, str)
    owner = f"an {etype}" if etype[0] in "AEIOU" else f"a {etype}"
    # SPEC §2.4 step 2: an event-level @context adds prefixes; every other key is a field of
    # this event type or a namespaced extension.
    if "@context" in ev:
        local, _ = _context_prefixes(ev["@context"], _at(path, "@context"))
        in_force.update(local)
    extensions = _check_keys(ev, _COMMON_KEYS | _TYPE_KEYS[etype], path, in_force)

    # SPEC §2.4 step 3: required fields.
    required = ["eventTime", "eventTimeZoneOffset"]
    if etype != "TransformationEvent":
        required.append("action")
    if etype == "AssociationEvent":
        required.append("parentID")
    if etype == "TransactionEvent":
        required.append("bizTransactionList")
    for key in required:
        _require(ev, key, path, owner)

    # SPEC §2.4 step 4: times, offset, identity, certification, error declaration.
    event_time = _datetime(ev["eventTime"], _at(path, "eventTime"), "eventTime")
    offset = ev["eventTimeZoneOffset"]
    if not isinstance(offset, str) or _TZ_OFFSET_RE.fullmatch(offset) is None:
        _fail(
            _at(path, "eventTimeZoneOffset"),
            "eventTimeZoneOffset must be ±hh:mm between -14:00 and +14:00, "
            f"got {_describe(offset)}",
        )
    record_time = _opt(ev, "recordTime", path, _datetime)
    event_id = _opt(ev, "eventID", path, _uri)
    if "id" in ev:
        if event_id is not None:
            _fail(_at(path, "id"), "id and eventID both name the event (@id); give only eventID")
        event_id = _node_id(ev["id"], _at(path, "id"), "id")
    certification: tuple[str, ...] = ()
    if "certificationInfo" in ev:
        ci = ev["certificationInfo"]
        at = _at(path, "certificationInfo")
        certification = (
            _uri_list(ci, at, "certificationInfo", unique=False)
            if isinstance(ci, list)
            else (_uri(ci, at, "certificationInfo"),)
        )
    error_declaration = None
    if "errorDeclaration" in ev:
        error_declaration = _error_declaration(
            ev["errorDeclaration"], _at(path, "errorDeclaration"), in_force
        )

    # SPEC §2.4 step 5: action.
    action = ev.get("action")
    if "action" in ev and action not in _ACTIONS:
        _fail(
            _at(path, "action"), f"action must be ADD, OBSERVE or DELETE, got {_describe(action)}"
        )

    # SPEC §2.4 step 6: identifiers.
    ids: dict[str, Any] = {}
    for key in ("epcList", "inputEPCList", "outputEPCList"):
        if key in ev:
            ids[key] = _uri_list(ev[key], _at(path, key), key, unique=True)
    if "childEPCs" in ev:
        ids["childEPCs"] = _uri_list(
            ev["childEPCs"], _at(path, "childEPCs"), "childEPCs", unique=False
        )
    for key in ("parentID", "transformationID"):
        if key in ev:
            ids[key] = _uri(ev[key], _at(path, key), key)

    # SPEC §2.4 step 7: quantity lists.
    qty: dict[str, tuple[QuantityElement, ...]] = {}
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        if key in ev:
            qty[key] = _quantity_list(ev[key], _at(path, key), key)

    # SPEC §2.4 step 8: the "what" dimension.
    def has(key: str) -> bool:
        return len(ids.get(key, ())) > 0 or len(qty.get(key, ())) > 0

    if etype == "ObjectEvent":
        sensors = ev.get("sensorElementList")
        if not (
            "epcList" in ev
            or has("quantityList")
            or (isinstance(sensors, list) and sensors and "readPoint" in ev)
        ):
            _fail(
                path,
                "an ObjectEvent needs epcList, a non-empty quantityList, "
                "or sensorElementList with readPoint",
            )
    elif etype in ("AggregationEvent", "AssociationEvent"):
        if not (has("childEPCs") or has("childQuantityList") or action == "DELETE"):
            _fail(
                path,
                f"{owner} with action {action} needs a non-empty childEPCs or childQuantityList",
            )
    elif etype == "TransactionEvent":
        if not ("epcList" in ev or has("quantityList") or action == "DELETE"):
            _fail(path, f"{owner} with action {action} needs epcList or a non-empty quantityList")
    else:
        inputs = has("inputEPCList") or has("inputQuantityList")
        outputs = has("outputEPCList") or has("outputQuantityList")
        if not ((inputs and outputs) or ("transformationID" in ev and (inputs or outputs))):
            _fail(
                path,
                "a TransformationEvent needs inputs and outputs, "
                "or a transformationID with inputs or outputs",
            )

    # SPEC §2.4 step 9: bizStep, disposition, persistentDisposition.
    biz_step = _vocab(ev["bizStep"], _at(path, "bizStep"), "bizStep") if "bizStep" in ev else None
    disposition = (
        _vocab(ev["disposition"], _at(path, "disposition"), "disposition")
        if "disposition" in ev
        else None
    )
    persistent = None
    if "persistentDisposition" in ev:
        persistent = _persistent_disposition(
            ev["persistentDisposition"], _at(path, "persistentDisposition")
        )

    # SPEC §2.4 step 10: readPoint, bizLocation.
    read_point = biz_location = None
    if "readPoint" in ev:
        read_point = _location(ev["readPoint"], _at(path, "readPoint"), "readPoint", in_force)
    if "bizLocation" in ev:
        biz_location = _location(
            ev["bizLocation"], _at(path, "bizLocation"), "bizLocation", in_force
        )

    # SPEC §2.4 step 11: bizTransactionList, sourceList, destinationList.
    biz_transactions: tuple[BizTransaction, ...] = ()
    if "bizTransactionList" in ev:
        biz_transactions = _biz_transactions(
            ev["bizTransactionList"], _at(path, "bizTransactionList")
        )
        if etype == "TransactionEvent" and not biz_transactions:
            _fail(
                _at(path, "bizTransactionList"),
                "a TransactionEvent needs at least one bizTransaction",
            )
    sources = (
        _source_dests(ev["sourceList"], _at(path, "sourceList"), "source")
        if "sourceList" in ev
        else ()
    )
    destinations = (
        _source_dests(ev["destinationList"], _at(path, "destinationList"), "destination")
        if "destinationList" in ev
        else ()
    )

    # SPEC §2.4 step 12: sensorElementList.
    sensor_elements: tuple[SensorElement, ...] = ()
    if "sensorElementList" in ev:
        sensor_elements = _sensor_elements(
            ev["sensorElementList"], _at(path, "sensorElementList"), in_force
        )

    # SPEC §2.4 step 13: ilmd, and on an ObjectEvent only with action ADD.
    ilmd = None
    if "ilmd" in ev:
        if etype == "ObjectEvent" and action != "ADD":
            _fail(
                _at(path, "ilmd"), f"ilmd is allowed only when action is ADD (action is {action})"
            )
        ilmd = _ilmd(ev["ilmd"], _at(path, "ilmd"), in_force)

    common: dict[str, Any] = {
        "event_time": event_time,
        "event_time_zone_offset": offset,
        "raw": ev,
        "event_id": event_id,
        "record_time": record_time,
        "biz_step": biz_step,
        "disposition": disposition,
        "persistent_disposition": persistent,
        "read_point": read_point,
        "biz_location": biz_location,
        "biz_transactions": biz_transactions,
        "sources": sources,
        "destinations": destinations,
        "sensor_elements": sensor_elements,
        "ilmd": ilmd,
        "error_declaration": error_declaration,
        "certification_info": certification,
        "extensions": extensions,
    }
    # SPEC §2.4 step 14: the model.
    return _model(etype, common, action, ids, qty)


def _model(
    etype: str,
    common: dict[str, Any],
    action: Any,
    ids: Mapping[str, Any],
    qty: Mapping[str, tuple[QuantityElement, ...]],
) -> Event:
    """The frozen model of a validated event (SPEC §2.4 step 14): one builder, both paths."""
    if etype == "ObjectEvent":
        return ObjectEvent(
            **common,
            action=str(action),
            epc_list=ids.get("epcList", ()),
            quantity_list=qty.get("quantityList", ()),
        )
    if etype == "AggregationEvent":
        return AggregationEvent(
            **common,
            action=str(action),
            parent_id=ids.get("parentID"),
            child_epcs=ids.get("childEPCs", ()),
            child_quantity_list=qty.get("childQuantityList", ()),
        )
    if etype == "AssociationEvent":
        return AssociationEvent(
            **common,
            action=str(action),
            parent_id=ids["parentID"],
            child_epcs=ids.get("childEPCs", ()),
            child_quantity_list=qty.get("childQuantityList", ()),
        )
    if etype == "TransactionEvent":
        return TransactionEvent(
            **common,
            action=str(action),
            parent_id=ids.get("parentID"),
            epc_list=ids.get("epcList", ()),
            quantity_list=qty.get("quantityList", ()),
        )
    return TransformationEvent(
        **common,
        input_epc_list=ids.get("inputEPCList", ()),
        input_quantity_list=qty.get("inputQuantityList", ()),
        output_epc_list=ids.get("outputEPCList", ()),
        output_quantity_list=qty.get("outputQuantityList", ()),
        transformation_id=ids.get("transformationID"),
    )


# --------------------------------------------------------------------------------------------
# Fast path (SPEC §2.4a): the usual event shapes, checked without path strings or helpers
# --------------------------------------------------------------------------------------------
# validate_event above is the definition. _fast_event accepts only what it can prove valid
# with cheaper checks (each one is at least as strict as its general counterpart) and builds
# the same model through _model; anything unusual (an @context, "id", certificationInfo,
# errorDeclaration, sensorElementList, a private vocabulary URI, a percent-escape, a lower-case
# "t"/"z", a str subclass, a failed check...) makes it step aside, and the general path decides
# and raises. tests/unit/test_epcis_fastpath.py proves it on generated and mutated events.

_MISSING: Final[Any] = object()
# Members the fast path leaves to the general path (rare in captures, or involved to check).
_FAST_SKIPPED: Final = frozenset(
    {"@context", "id", "certificationInfo", "errorDeclaration", "sensorElementList"}
)
_ALL_KEYS: Final[Mapping[str, frozenset[str]]] = {
    etype: _COMMON_KEYS | keys for etype, keys in _TYPE_KEYS.items()
}
_FAST_KEYS: Final[Mapping[str, frozenset[str]]] = {
    etype: keys - _FAST_SKIPPED for etype, keys in _ALL_KEYS.items()
}


def _cbv_values(kind: CbvKind) -> dict[str, str]:
    # Every spelling _cbv_term maps to a term (bare, EPCIS 1.x URN, Web URI) -> the Web URI
    # _vocab returns for it. Private-vocabulary URIs are absent: the general path decides.
    web, urn = web_prefix(kind), urn_prefix(kind)
    out: dict[str, str] = {}
    for term in vocabulary(kind):
        out[term] = out[urn + term] = out[web + term] = web + term
    return out


_FAST_CBV: Final[Mapping[str, Mapping[str, str]]] = {kind: _cbv_values(kind) for kind in KINDS}
_FAST_BIZ_STEP: Final = _FAST_CBV["bizStep"]
_FAST_DISPOSITION: Final = _FAST_CBV["disposition"]
_FAST_BTT: Final = _FAST_CBV["bizTransactionType"]
_FAST_SDT: Final = _FAST_CBV["sourceDestType"]

# A subset of _DATETIME_RE (ASCII digits, upper-case T and Z); the field ranges are looked up.
_FAST_DATETIME_RE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
#: "HH:MM" with hour <= 23 and minute <= 59: a time of day, and an offset _is_datetime takes.
_FAST_HH_MM: Final = frozenset(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
#: "MM-DD" of every day of a leap year (02-29 needs a leap year, checked apart).
_FAST_MONTH_DAY: Final = frozenset(
    f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, calendar.monthrange(2000, m)[1] + 1)
)
#: Every string _TZ_OFFSET_RE accepts (it allows hours 00-14 only).
_FAST_TZ_OFFSETS: Final = frozenset(
    text
    for sign in "+-"
    for h in range(15)
    for m in range(60)
    if _TZ_OFFSET_RE.fullmatch(text := f"{sign}{h:02d}:{m:02d}")
)


def _fast_datetime(value: Any) -> bool:
    """True only where :func:`_is_datetime` is True (False: let the general path decide)."""
    if type(value) is not str or _FAST_DATETIME_RE.fullmatch(value) is None:
        return False
    month_day = value[5:10]
    if month_day not in _FAST_MONTH_DAY or (
        month_day == "02-29" and not calendar.isleap(int(value[:4]))
    ):
        return False
    # Hour <= 23, minute <= 59, second <= 60 (RFC 3339 leap second), offset hh <= 23, mm <= 59.
    if value[11:16] not in _FAST_HH_MM or value[17:19] > "60":
        return False
    return value[-1] == "Z" or value[-5:] in _FAST_HH_MM


def _fast_uri(value: Any) -> bool:
    # Without "%" _is_uri is exactly _URI_PLAIN_RE; with one, the plain regex fails (bail).
    return type(value) is str and _URI_PLAIN_RE.fullmatch(value) is not None


# _URI_PLAIN_RE, one per line: a whole identifier list in one regex pass.
_URI_PLAIN_LINES: Final = re.compile(rf"(?:{_URI_PLAIN_RE.pattern}\n)*{_URI_PLAIN_RE.pattern}")


def _fast_uris(items: list[Any]) -> bool:
    """Every item an exact ``str`` that :func:`_fast_uri` accepts (an empty list: True)."""
    if len(items) < 2:
        return not items or _fast_uri(items[0])
    if list(map(type, items)).count(str) != len(items):
        return False
    # No item holds a newline (counted), so the lines of the joined text are the items.
    joined = "\n".join(items)
    return joined.count("\n") == len(items) - 1 and _URI_PLAIN_LINES.fullmatch(joined) is not None


def _fast_extension_key(key: Any, prefixes: Mapping[str, str]) -> bool:
    """True only where :func:`_check_extension_key` accepts ``key``."""
    if type(key) is not str:
        return False
    prefix, sep, rest = key.partition(":")
    return (
        bool(sep)
        and _URI_PLAIN_RE.fullmatch(key) is not None
        and (rest.startswith("//") or prefix == "urn" or prefix in prefixes)
    )


def _fast_quantities(value: Any) -> tuple[QuantityElement, ...] | None:
    if type(value) is not list:
        return None
    out: list[QuantityElement] = []
    for q in value:
        if type(q) is not dict or not q.keys() <= _QUANTITY_KEYS:
            return None
        epc_class = q.get("epcClass", _MISSING)
        if not _fast_uri(epc_class):
            return None
        quantity = q.get("quantity")
        if "quantity" in q and not _is_number(quantity):
            return None
        uom = q.get("uom")
        if "uom" in q and (type(uom) is not str or _UOM_RE.fullmatch(uom) is None):
            return None
        out.append(QuantityElement(epc_class, quantity, uom))
    return tuple(out)


def _fast_location(value: Any) -> str | None:
    # Only {"id": uri}: extension members of a location take the general path.
    if type(value) is not dict or len(value) != 1:
        return None
    ident = value.get("id")
    return ident if _fast_uri(ident) else None


def _fast_persistent(value: Any) -> PersistentDisposition | None:
    if type(value) is not dict or not value or not value.keys() <= {"set", "unset"}:
        return None
    parts: dict[str, tuple[str, ...]] = {"set": (), "unset": ()}
    for key, items in value.items():
        if type(items) is not list or not items:
            return None
        uris: list[str] = []
        for item in items:
            uri = _FAST_DISPOSITION.get(item) if type(item) is str else None
            if uri is None:
                return None
            uris.append(uri)
        if len(set(items)) != len(items):
            return None  # a repeated disposition
        parts[key] = tuple(uris)
    return PersistentDisposition(parts["set"], parts["unset"])


def _fast_pairs(
    value: Any, member: str, table: Mapping[str, str], need_type: bool
) -> list[tuple[str, str | None]] | None:
    """bizTransactionList / sourceList / destinationList as (identifier, type URI) pairs."""
    if type(value) is not list:
        return None
    out: list[tuple[str, str | None]] = []
    for item in value:
        if type(item) is not dict:
            return None
        ident = item.get(member, _MISSING)
        typ = item.get("type", _MISSING)
        if typ is _MISSING:
            if need_type or len(item) != 1:
                return None
            uri = None
        else:
            uri = table.get(typ) if type(typ) is str else None
            if uri is None or len(item) != 2:
                return None
        if not _fast_uri(ident):
            return None
        out.append((ident, uri))
    return out


def _fast_event(ev: Any, prefixes: Mapping[str, str], build: bool) -> Event | bool:
    """SPEC §2.4 steps 1-14 for the usual event shapes.

    Returns:
        False: step aside (the general path decides, errors included). Otherwise the model
        (``build``) or True: the event is valid and :func:`validate_event` would return this
        very model.
    """
    if type(ev) is not dict:
        return False
    etype = ev.get("type")
    if type(etype) is not str:
        return False
    fast_keys = _FAST_KEYS.get(etype)
    if fast_keys is None:
        return False
    # Step 2: members of this type, or extension keys with a prefix in force.
    extensions: dict[str, Any] = {}
    if not ev.keys() <= fast_keys:
        known = _ALL_KEYS[etype]
        for key, value in ev.items():
            if key in fast_keys:
                continue
            if key in known or not _fast_extension_key(key, prefixes):
                return False
            extensions[key] = value
    # Steps 3-5: required members, times, offset, eventID, action.
    event_time = ev.get("eventTime")
    offset = ev.get("eventTimeZoneOffset")
    if not _fast_datetime(event_time) or type(offset) is not str or offset not in _FAST_TZ_OFFSETS:
        return False
    record_time = ev.get("recordTime", _MISSING)
    if record_time is _MISSING:
        record_time = None
    elif not _fast_datetime(record_time):
        return False
    event_id = ev.get("eventID", _MISSING)
    if event_id is _MISSING:
        event_id = None
    elif not _fast_uri(event_id):
        return False
    action = ev.get("action")
    if etype != "TransformationEvent" and (type(action) is not str or action not in _ACTIONS):
        return False  # TransformationEvent: "action" is not one of its members (step 2)
    # Step 6: identifiers.
    ids: dict[str, Any] = {}
    for key in ("epcList", "inputEPCList", "outputEPCList", "childEPCs"):
        items = ev.get(key, _MISSING)
        if items is not _MISSING:
            if (
                type(items) is not list
                or not _fast_uris(items)
                or (key != "childEPCs" and len(set(items)) != len(items))
            ):
                return False
            ids[key] = tuple(items)
    for key in ("parentID", "transformationID"):
        value = ev.get(key, _MISSING)
        if value is not _MISSING:
            if not _fast_uri(value):
                return False
            ids[key] = value
    # Step 7: quantity lists.
    qty: dict[str, tuple[QuantityElement, ...]] = {}
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        value = ev.get(key, _MISSING)
        if value is not _MISSING:
            elements = _fast_quantities(value)
            if elements is None:
                return False
            qty[key] = elements
    # Step 8: the "what" dimension (no sensorElementList on this path).
    if etype == "ObjectEvent":
        what = "epcList" in ev or bool(qty.get("quantityList"))
    elif etype == "TransactionEvent":
        what = "epcList" in ev or bool(qty.get("quantityList")) or action == "DELETE"
    elif etype == "TransformationEvent":
        inputs = bool(ids.get("inputEPCList")) or bool(qty.get("inputQuantityList"))
        outputs = bool(ids.get("outputEPCList")) or bool(qty.get("outputQuantityList"))
        what = (inputs and outputs) or ("transformationID" in ev and (inputs or outputs))
    else:  # Aggregation/AssociationEvent
        what = (
            bool(ids.get("childEPCs")) or bool(qty.get("childQuantityList")) or action == "DELETE"
        )
        if etype == "AssociationEvent" and "parentID" not in ev:
            return False
    if not what:
        return False
    # Step 9: bizStep, disposition, persistentDisposition.
    biz_step = disposition = None
    value = ev.get("bizStep", _MISSING)
    if value is not _MISSING:
        biz_step = _FAST_BIZ_STEP.get(value) if type(value) is str else None
        if biz_step is None:
            return False
    value = ev.get("disposition", _MISSING)
    if value is not _MISSING:
        disposition = _FAST_DISPOSITION.get(value) if type(value) is str else None
        if disposition is None:
            return False
    persistent = None
    value = ev.get("persistentDisposition", _MISSING)
    if value is not _MISSING:
        persistent = _fast_persistent(value)
        if persistent is None:
            return False
    # Step 10: readPoint, bizLocation.
    read_point = biz_location = None
    value = ev.get("readPoint", _MISSING)
    if value is not _MISSING:
        read_point = _fast_location(value)
        if read_point is None:
            return False
    value = ev.get("bizLocation", _MISSING)
    if value is not _MISSING:
        biz_location = _fast_location(value)
        if biz_location is None:
            return False
    # Step 11: bizTransactionList, sourceList, destinationList.
    pairs: dict[str, list[tuple[str, str | None]]] = {}
    for key, member, table, need_type in (
        ("bizTransactionList", "bizTransaction", _FAST_BTT, False),
        ("sourceList", "source", _FAST_SDT, True),
        ("destinationList", "destination", _FAST_SDT, True),
    ):
        value = ev.get(key, _MISSING)
        if value is not _MISSING:
            found = _fast_pairs(value, member, table, need_type)
            if found is None:
                return False
            pairs[key] = found
    if etype == "TransactionEvent" and not pairs.get("bizTransactionList"):
        return False
    # Step 13: ilmd, on an ObjectEvent only with action ADD.
    ilmd = ev.get("ilmd", _MISSING)
    if ilmd is _MISSING:
        ilmd = None
    elif (
        type(ilmd) is not dict
        or (etype == "ObjectEvent" and action != "ADD")
        or not all(_fast_extension_key(key, prefixes) for key in ilmd)
    ):
        return False
    if not build:
        return True
    # Step 14: the model, through the general path's builder.
    common: dict[str, Any] = {
        "event_time": event_time,
        "event_time_zone_offset": offset,
        "raw": ev,
        "event_id": event_id,
        "record_time": record_time,
        "biz_step": biz_step,
        "disposition": disposition,
        "persistent_disposition": persistent,
        "read_point": read_point,
        "biz_location": biz_location,
        "biz_transactions": tuple(
            BizTransaction(ref, typ) for ref, typ in pairs.get("bizTransactionList", ())
        ),
        "sources": tuple(SourceDest(str(typ), ref) for ref, typ in pairs.get("sourceList", ())),
        "destinations": tuple(
            SourceDest(str(typ), ref) for ref, typ in pairs.get("destinationList", ())
        ),
        "sensor_elements": (),
        "ilmd": ilmd,
        "error_declaration": None,
        "certification_info": (),
        "extensions": extensions,
    }
    return _model(etype, common, action, ids, qty)


def check_event(
    obj: Mapping[str, Any],
    path: str = "event",
    *,
    prefixes: Mapping[str, str] | None = None,
) -> None:
    """Validate one EPCIS 2.0 event exactly as :func:`validate_event` does, without the model.

    For callers that only need the verdict (the service's ingest): the usual event shapes are
    checked by the fast path (SPEC §2.4a) without building the frozen model; anything else
    runs :func:`validate_event`, so every error is the same, path and reason included.

    Args:
        obj: The event JSON object.
        path: Path of the event used in error messages, e.g. ``events[3]``.
        prefixes: Namespace prefixes in force (default: the GS1 context's plus ``yima``).

    Raises:
        EpcisValidationError: With ``path`` of the offending field and ``reason``.
    """
    if _fast_event(obj, _DEFAULT_PREFIXES if prefixes is None else prefixes, False):
        return
    validate_event(obj, path, prefixes=prefixes)


# --------------------------------------------------------------------------------------------
# Documents (SPEC §2.3)
# --------------------------------------------------------------------------------------------

_DOC_KEYS: Final = frozenset(
    {
        "@context",
        "id",
        "type",
        "schemaVersion",
        "creationDate",
        "instanceIdentifier",
        "sender",
        "receiver",
        "epcisHeader",
        "epcisBody",
    }
)
_QUERY_DOC_KEYS: Final = frozenset(
    {"@context", "id", "type", "schemaVersion", "creationDate", "epcisBody"}
)


def _header(value: Any, path: str, prefixes: Mapping[str, str]) -> None:
    header = _object(value, path, "epcisHeader")
    _check_keys(header, ("epcisMasterData",), path, prefixes)
    if "epcisMasterData" not in header:
        return
    mpath = _at(path, "epcisMasterData")
    master = _object(header["epcisMasterData"], mpath, "epcisMasterData")
    _check_keys(master, ("vocabularyList",), mpath, prefixes)
    if "vocabularyList" in master:
        _vocabulary_list(master["vocabularyList"], _at(mpath, "vocabularyList"), prefixes)


def _vocabulary_list(value: Any, path: str, prefixes: Mapping[str, str]) -> None:
    for i, item in enumerate(_array(value, path, "vocabularyList")):
        at = _ix(path, i)
        voc = _object(item, at, "a vocabulary")
        _check_keys(voc, ("type", "vocabularyElementList"), at, prefixes)
        _uri(_require(voc, "type", at, "a vocabulary"), _at(at, "type"), "vocabulary type")
        if "vocabularyElementList" not in voc:
            continue
        lpath = _at(at, "vocabularyElementList")
        for j, elem in enumerate(
            _array(voc["vocabularyElementList"], lpath, "vocabularyElementList")
        ):
            ep = _ix(lpath, j)
            el = _object(elem, ep, "a vocabularyElement")
            _check_keys(el, ("id", "attributes", "children"), ep, prefixes)
            _uri(_require(el, "id", ep, "a vocabularyElement"), _at(ep, "id"), "id")
            if "children" in el:
                _uri_list(el["children"], _at(ep, "children"), "children", unique=False)
            if "attributes" in el:
                apath = _at(ep, "attributes")
                for k, attr in enumerate(_array(el["attributes"], apath, "attributes")):
                    ap = _ix(apath, k)
                    a = _object(attr, ap, "an attribute")
                    _check_keys(a, ("id", "attribute"), ap, prefixes)
                    _uri(_require(a, "id", ap, "an attribute"), _at(ap, "id"), "id")
                    if "attribute" in a and not (
                        _is_number(a["attribute"]) or isinstance(a["attribute"], str | Mapping)
                    ):
                        _fail(
                            _at(ap, "attribute"),
                            "attribute must be a number, string or object, "
                            f"got {_describe(a['attribute'])}",
                        )


def load_document(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any],
    *,
    reject_duplicate_keys: bool = False,
) -> EpcisDocument:
    """Load and validate an EPCIS 2.0 JSON-LD document (EPCISDocument or EPCISQueryDocument).

    Args:
        data: UTF-8 JSON bytes, JSON text, or an already parsed JSON object.
        reject_duplicate_keys: Refuse JSON text with a repeated key in one object instead
            of keeping the last value (as JSON.parse does). Use it where bytes are signed
            as received, so that no two readers can see different events.

    Returns:
        The validated document with its events' models (``raw`` is the given object).

    Raises:
        EpcisValidationError: ``path`` names the offending field (``""`` for unparseable
            input, with the JSON error position in ``reason``); ``reason`` says why.
    """
    try:
        return _load(data, reject_duplicate_keys=reject_duplicate_keys)
    except RecursionError:
        _fail("", "document nests too deeply")


def _load(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any], *, reject_duplicate_keys: bool
) -> EpcisDocument:
    # SPEC §2.3 step 1: parse.
    doc = _parse(data, reject_duplicate_keys=reject_duplicate_keys)
    # SPEC §2.3 step 2: document type.
    dtype = _require(doc, "type", "", "an EPCIS document")
    if dtype not in ("EPCISDocument", "EPCISQueryDocument"):
        _fail("type", f"type must be EPCISDocument or EPCISQueryDocument, got {_describe(dtype)}")
    query = dtype == "EPCISQueryDocument"
    owner = f"an {dtype}"
    # SPEC §2.3 step 3: @context, naming a GS1 EPCIS 2.0 context (deviation D5).
    ctx = _require(doc, "@context", "", owner)
    prefixes, has_gs1 = _context_prefixes(ctx, "@context")
    if not has_gs1:
        _fail("@context", f"@context must name the EPCIS 2.0 context, e.g. {EPCIS_CONTEXT!r}")
    # SPEC §2.3 step 4: schemaVersion is a version string "2[.n…]" (deviation D4).
    if not query:
        _require(doc, "schemaVersion", "", owner)
    version = doc.get("schemaVersion")
    if "schemaVersion" in doc:
        if not isinstance(version, str):
            _fail(
                "schemaVersion",
                f'schemaVersion must be a string such as "2.0", got {_describe(version)}',
            )
        if _VERSION_RE.fullmatch(version) is None:
            _fail("schemaVersion", f'schemaVersion must look like "2.0", got {version!r}')
        if version.split(".")[0] != "2":
            _fail(
                "schemaVersion",
                f"only EPCIS 2.x documents are accepted, got schemaVersion {version!r}",
            )
    # SPEC §2.3 step 5: creationDate.
    if not query:
        _require(doc, "creationDate", "", owner)
    creation = _opt(doc, "creationDate", "", _datetime)
    # SPEC §2.3 step 6: the other top-level fields.
    _check_keys(doc, _QUERY_DOC_KEYS if query else _DOC_KEYS, "", prefixes)
    _opt(doc, "id", "", _node_id)
    for key in ("instanceIdentifier", "sender", "receiver"):
        _opt(doc, key, "", _string)
    if "epcisHeader" in doc:
        _header(doc["epcisHeader"], "epcisHeader", prefixes)
    # SPEC §2.3 step 7: the body and its event list.
    body = _object(_require(doc, "epcisBody", "", owner), "epcisBody", "epcisBody")
    if query:
        _check_keys(body, ("queryResults",), "epcisBody", prefixes)
        qpath = "epcisBody.queryResults"
        results = _object(
            _require(body, "queryResults", "epcisBody", "epcisBody"), qpath, "queryResults"
        )
        _check_keys(results, ("queryName", "subscriptionID", "resultsBody"), qpath, prefixes)
        _string(
            _require(results, "queryName", qpath, "queryResults"),
            _at(qpath, "queryName"),
            "queryName",
        )
        _opt(results, "subscriptionID", qpath, _string)
        rpath = _at(qpath, "resultsBody")
        rbody = _object(
            _require(results, "resultsBody", qpath, "queryResults"), rpath, "resultsBody"
        )
        _check_keys(rbody, ("eventList", "vocabularyList"), rpath, prefixes)
        if "vocabularyList" in rbody:
            _vocabulary_list(rbody["vocabularyList"], _at(rpath, "vocabularyList"), prefixes)
        lpath = _at(rpath, "eventList")
        events = _array(_require(rbody, "eventList", rpath, "resultsBody"), lpath, "eventList")
    else:
        lpath = "epcisBody.eventList"
        events = _array(_require(body, "eventList", "epcisBody", "epcisBody"), lpath, "eventList")
        _check_keys(body, ("eventList",), "epcisBody", prefixes)
    # SPEC §2.3 step 8: every event (SPEC §2.4).
    models = tuple(
        validate_event(e, _ix(lpath, i), prefixes=prefixes) for i, e in enumerate(events)
    )
    return EpcisDocument(
        context=ctx,
        schema_version=version,
        creation_date=creation,
        events=models,
        raw=doc,
        document_type=str(dtype),
        prefixes=prefixes,
    )


# --------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------


def epc_list_of(
    event: Mapping[str, Any] | Event,
    *,
    canonicalize: Callable[[str], str] | None = None,
) -> tuple[str, ...]:
    """Every object identifier an event names, in a stable order without repeats.

    Order: ``parentID``, ``epcList``, ``childEPCs``, ``inputEPCList``, ``outputEPCList``, then
    the ``epcClass`` of each quantity list (lot-level ids for TCM and bulk goods).

    Args:
        event: An event JSON object or model.
        canonicalize: Maps each id to its canonical form (the service passes
            ``ledger.identifiers.epc_to_canonical``); ids are returned as written without it.

    Returns:
        The identifiers.
    """
    raw = event if isinstance(event, Mapping) else event.raw
    found: list[str] = []
    parent = raw.get("parentID")
    if isinstance(parent, str):
        found.append(parent)
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        value = raw.get(key)
        if isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        value = raw.get(key)
        if isinstance(value, list):
            found.extend(
                q["epcClass"]
                for q in value
                if isinstance(q, Mapping) and isinstance(q.get("epcClass"), str)
            )
    if canonicalize is not None:
        found = [canonicalize(v) for v in found]
    return tuple(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# Builders (SPEC §2.6)
# --------------------------------------------------------------------------------------------

QuantitySpec: TypeAlias = (
    QuantityElement | Mapping[str, Any] | tuple[str, int | float] | tuple[str, int | float, str]
)
PairSpec: TypeAlias = tuple[str, str] | Mapping[str, Any]


def _bare(value: str | None, kind: CbvKind, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(path, f"{kind} must be a string, got {_describe(value)}")
    bare = _cbv_term(value, kind, path)
    return value if bare is None else bare


def _quantity_json(spec: QuantitySpec) -> dict[str, Any]:
    if isinstance(spec, QuantityElement):
        out: dict[str, Any] = {"epcClass": spec.epc_class}
        if spec.quantity is not None:
            out["quantity"] = spec.quantity
        if spec.uom is not None:
            out["uom"] = spec.uom
        return out
    if isinstance(spec, Mapping):
        return dict(spec)
    out = {"epcClass": spec[0], "quantity": spec[1]}
    if len(spec) == 3:
        out["uom"] = spec[2]
    return out


def _pairs(
    specs: Sequence[PairSpec | SourceDest | BizTransaction], member: str, kind: CbvKind, path: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, spec in enumerate(specs):
        at = _ix(path, i)
        typ: Any
        ident: Any
        if isinstance(spec, SourceDest):
            typ, ident = spec.type, spec.id
        elif isinstance(spec, BizTransaction):
            typ, ident = spec.type, spec.value
        elif isinstance(spec, Mapping):
            typ, ident = spec.get("type"), spec.get(member)
        else:
            typ, ident = spec
        item: dict[str, Any] = {}
        if typ is not None:
            item["type"] = _bare(typ, kind, _at(at, "type"))
        item[member] = ident
        out.append(item)
    return out


def _common_fields(
    event: dict[str, Any],
    *,
    biz_step: str | None,
    disposition: str | None,
    read_point: str | None,
    biz_location: str | None,
    biz_transactions: Sequence[PairSpec | BizTransaction],
    sources: Sequence[PairSpec | SourceDest],
    destinations: Sequence[PairSpec | SourceDest],
    sensor_elements: Sequence[Mapping[str, Any]] | None,
) -> None:
    if biz_step is not None:
        event["bizStep"] = _bare(biz_step, "bizStep", "event.bizStep")
    if disposition is not None:
        event["disposition"] = _bare(disposition, "disposition", "event.disposition")
    if read_point is not None:
        event["readPoint"] = {"id": read_point}
    if biz_location is not None:
        event["bizLocation"] = {"id": biz_location}
    if biz_transactions:
        event["bizTransactionList"] = _pairs(
            biz_transactions, "bizTransaction", "bizTransactionType", "event.bizTransactionList"
        )
    if sources:
        event["sourceList"] = _pairs(sources, "source", "sourceDestType", "event.sourceList")
    if destinations:
        event["destinationList"] = _pairs(
            destinations, "destination", "sourceDestType", "event.destinationList"
        )
    if sensor_elements:
        event["sensorElementList"] = [dict(s) for s in sensor_elements]


def _finish(
    event: dict[str, Any],
    *,
    event_id: str | None,
    error_declaration: Mapping[str, Any] | None,
    certification_info: Sequence[str],
    extensions: Mapping[str, Any] | None,
    prefixes: Mapping[str, str] | None,
) -> dict[str, Any]:
    if event_id is not None:
        event["eventID"] = event_id
    if certification_info:
        event["certificationInfo"] = list(certification_info)
    if error_declaration is not None:
        event["errorDeclaration"] = dict(error_declaration)
    for key, value in (extensions or {}).items():
        if key in event:
            _fail(_at("event", key), f"extension {key!r} collides with a field already set")
        event[key] = value
    in_force = {**_DEFAULT_PREFIXES, **(prefixes or {})}
    # Builders only ever hand out events that pass our own validator.
    validate_event(event, "event", prefixes=in_force)
    return event


def _header_fields(etype: str, event_time: str, tz_offset: str) -> dict[str, Any]:
    return {"type": etype, "eventTime": event_time, "eventTimeZoneOffset": tz_offset}


def _persistent_json(spec: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]] | None:
    if spec is None:
        return None
    out: dict[str, list[str]] = {}
    for key in ("set", "unset"):
        if spec.get(key):
            out[key] = [
                _bare(v, "disposition", f"event.persistentDisposition.{key}[{i}]") or v
                for i, v in enumerate(spec[key])
            ]
    for key in spec:
        if key not in ("set", "unset"):
            out[key] = list(spec[key])  # let the validator name the bad key
    return out


def object_event(
    *,
    epcs: Sequence[str],
    action: Action,
    biz_step: str | None,
    disposition: str | None,
    event_time: str,
    tz_offset: str,
    read_point: str | None = None,
    biz_location: str | None = None,
    sources: Sequence[PairSpec | SourceDest] = (),
    destinations: Sequence[PairSpec | SourceDest] = (),
    biz_transactions: Sequence[PairSpec | BizTransaction] = (),
    ilmd: Mapping[str, Any] | None = None,
    sensor_elements: Sequence[Mapping[str, Any]] | None = None,
    quantities: Sequence[QuantitySpec] | None = None,
    persistent_disposition: Mapping[str, Sequence[str]] | None = None,
    error_declaration: Mapping[str, Any] | None = None,
    certification_info: Sequence[str] = (),
    event_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    prefixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build an ObjectEvent JSON object with bare CBV terms.

    Args:
        epcs: Instance ids (``epcList``); may be empty when ``quantities`` are given.
        action: ``ADD`` (commissioning), ``OBSERVE`` or ``DELETE``.
        biz_step: CBV bizStep in any spelling (written bare), or a private URI, or None.
        disposition: CBV disposition (same), or None.
        event_time: RFC 3339 date-time.
        tz_offset: ``+08:00`` style offset.
        read_point: readPoint id.
        biz_location: bizLocation id.
        sources: ``(type, id)`` pairs, mappings or :class:`SourceDest`.
        destinations: As ``sources``.
        biz_transactions: ``(type, uri)`` pairs, mappings or :class:`BizTransaction`.
        ilmd: Instance/lot master data (only with ``ADD``); keys namespaced.
        sensor_elements: sensorElement objects (see :func:`sensor_element`).
        quantities: Class-level quantities: ``(epcClass, quantity[, uom])``, mappings or
            :class:`QuantityElement`.
        persistent_disposition: ``{"set": [...], "unset": [...]}``.
        error_declaration: An errorDeclaration object.
        certification_info: certificationInfo URIs.
        event_id: eventID, if already computed.
        extensions: Namespaced extension fields, e.g. ``{"yima:administered": True}``.
        prefixes: Extra namespace prefixes used by ``extensions``/``ilmd`` keys.

    Returns:
        A plain dict that :func:`validate_event` accepts.

    Raises:
        EpcisValidationError: If the inputs do not make a valid event.
    """
    event = _header_fields("ObjectEvent", event_time, tz_offset)
    if epcs or not quantities:
        event["epcList"] = list(epcs)
    if quantities:
        event["quantityList"] = [_quantity_json(q) for q in quantities]
    event["action"] = action
    _common_fields(
        event,
        biz_step=biz_step,
        disposition=disposition,
        read_point=read_point,
        biz_location=biz_location,
        biz_transactions=biz_transactions,
        sources=sources,
        destinations=destinations,
        sensor_elements=sensor_elements,
    )
    pd = _persistent_json(persistent_disposition)
    if pd is not None:
        event["persistentDisposition"] = pd
    if ilmd is not None:
        event["ilmd"] = dict(ilmd)
    return _finish(
        event,
        event_id=event_id,
        error_declaration=error_declaration,
        certification_info=certification_info,
        extensions=extensions,
        prefixes=prefixes,
    )


def aggregation_event(
    *,
    parent: str | None,
    children: Sequence[str],
    action: Action,
    biz_step: str | None,
    event_time: str,
    tz_offset: str,
    disposition: str | None = None,
    child_quantities: Sequence[QuantitySpec] | None = None,
    read_point: str | None = None,
    biz_location: str | None = None,
    sources: Sequence[PairSpec | SourceDest] = (),
    destinations: Sequence[PairSpec | SourceDest] = (),
    biz_transactions: Sequence[PairSpec | BizTransaction] = (),
    sensor_elements: Sequence[Mapping[str, Any]] | None = None,
    error_declaration: Mapping[str, Any] | None = None,
    certification_info: Sequence[str] = (),
    event_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    prefixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build an AggregationEvent (装箱 ``ADD``/``packing``, 拆箱 ``DELETE``/``unpacking``).

    Args:
        parent: The container (SSCC), may be None only for ``DELETE`` of everything.
        children: Contained instance ids (``childEPCs``).
        action: ``ADD``, ``OBSERVE`` or ``DELETE``.
        biz_step: CBV bizStep (written bare) or None.
        event_time: RFC 3339 date-time.
        tz_offset: ``+08:00`` style offset.
        disposition: CBV disposition or None.
        child_quantities: Class-level children (see :func:`object_event` ``quantities``).
        read_point: readPoint id.
        biz_location: bizLocation id.
        sources: See :func:`object_event`.
        destinations: See :func:`object_event`.
        biz_transactions: See :func:`object_event`.
        sensor_elements: See :func:`object_event`.
        error_declaration: See :func:`object_event`.
        certification_info: See :func:`object_event`.
        event_id: See :func:`object_event`.
        extensions: See :func:`object_event`.
        prefixes: See :func:`object_event`.

    Returns:
        A plain dict that :func:`validate_event` accepts.

    Raises:
        EpcisValidationError: If the inputs do not make a valid event.
    """
    event = _header_fields("AggregationEvent", event_time, tz_offset)
    if parent is not None:
        event["parentID"] = parent
    if children:
        event["childEPCs"] = list(children)
    if child_quantities:
        event["childQuantityList"] = [_quantity_json(q) for q in child_quantities]
    event["action"] = action
    _common_fields(
        event,
        biz_step=biz_step,
        disposition=disposition,
        read_point=read_point,
        biz_location=biz_location,
        biz_transactions=biz_transactions,
        sources=sources,
        destinations=destinations,
        sensor_elements=sensor_elements,
    )
    return _finish(
        event,
        event_id=event_id,
        error_declaration=error_declaration,
        certification_info=certification_info,
        extensions=extensions,
        prefixes=prefixes,
    )


def association_event(
    *,
    parent: str,
    children: Sequence[str],
    action: Action,
    biz_step: str | None,
    event_time: str,
    tz_offset: str,
    disposition: str | None = None,
    child_quantities: Sequence[QuantitySpec] | None = None,
    read_point: str | None = None,
    biz_location: str | None = None,
    sources: Sequence[PairSpec | SourceDest] = (),
    destinations: Sequence[PairSpec | SourceDest] = (),
    biz_transactions: Sequence[PairSpec | BizTransaction] = (),
    sensor_elements: Sequence[Mapping[str, Any]] | None = None,
    error_declaration: Mapping[str, Any] | None = None,
    certification_info: Sequence[str] = (),
    event_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    prefixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build an AssociationEvent, e.g. a temperature logger (GIAI) ↔ an SSCC for 冷链.

    Args:
        parent: The asset (e.g. the logger's GIAI).
        children: Associated instance ids.
        action: ``ADD``, ``OBSERVE`` or ``DELETE``.
        biz_step: CBV bizStep (written bare) or None.
        event_time: RFC 3339 date-time.
        tz_offset: ``+08:00`` style offset.
        disposition: CBV disposition or None.
        child_quantities: Class-level children.
        read_point: readPoint id.
        biz_location: bizLocation id.
        sources: See :func:`object_event`.
        destinations: See :func:`object_event`.
        biz_transactions: See :func:`object_event`.
        sensor_elements: See :func:`object_event`.
        error_declaration: See :func:`object_event`.
        certification_info: See :func:`object_event`.
        event_id: See :func:`object_event`.
        extensions: See :func:`object_event`.
        prefixes: See :func:`object_event`.

    Returns:
        A plain dict that :func:`validate_event` accepts.

    Raises:
        EpcisValidationError: If the inputs do not make a valid event.
    """
    event = _header_fields("AssociationEvent", event_time, tz_offset)
    event["parentID"] = parent
    if children:
        event["childEPCs"] = list(children)
    if child_quantities:
        event["childQuantityList"] = [_quantity_json(q) for q in child_quantities]
    event["action"] = action
    _common_fields(
        event,
        biz_step=biz_step,
        disposition=disposition,
        read_point=read_point,
        biz_location=biz_location,
        biz_transactions=biz_transactions,
        sources=sources,
        destinations=destinations,
        sensor_elements=sensor_elements,
    )
    return _finish(
        event,
        event_id=event_id,
        error_declaration=error_declaration,
        certification_info=certification_info,
        extensions=extensions,
        prefixes=prefixes,
    )


def transformation_event(
    *,
    inputs_quantities: Sequence[QuantitySpec] = (),
    outputs_quantities: Sequence[QuantitySpec] = (),
    input_epcs: Sequence[str] = (),
    output_epcs: Sequence[str] = (),
    transformation_id: str | None = None,
    biz_step: str | None = None,
    event_time: str,
    tz_offset: str,
    disposition: str | None = None,
    read_point: str | None = None,
    biz_location: str | None = None,
    sources: Sequence[PairSpec | SourceDest] = (),
    destinations: Sequence[PairSpec | SourceDest] = (),
    biz_transactions: Sequence[PairSpec | BizTransaction] = (),
    ilmd: Mapping[str, Any] | None = None,
    sensor_elements: Sequence[Mapping[str, Any]] | None = None,
    persistent_disposition: Mapping[str, Sequence[str]] | None = None,
    error_declaration: Mapping[str, Any] | None = None,
    certification_info: Sequence[str] = (),
    event_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    prefixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build a TransformationEvent (中药炮制: LGTIN inputs/outputs in KGM).

    Args:
        inputs_quantities: Consumed class-level quantities.
        outputs_quantities: Produced class-level quantities.
        input_epcs: Consumed instances.
        output_epcs: Produced instances.
        transformation_id: Links several events of one transformation.
        biz_step: CBV bizStep (written bare) or None.
        event_time: RFC 3339 date-time.
        tz_offset: ``+08:00`` style offset.
        disposition: CBV disposition or None.
        read_point: readPoint id.
        biz_location: bizLocation id.
        sources: See :func:`object_event`.
        destinations: See :func:`object_event`.
        biz_transactions: See :func:`object_event`.
        ilmd: Master data of the outputs (origin, GAP, lot, expiry).
        sensor_elements: See :func:`object_event`.
        persistent_disposition: See :func:`object_event`.
        error_declaration: See :func:`object_event`.
        certification_info: See :func:`object_event` (e.g. QC report URIs).
        event_id: See :func:`object_event`.
        extensions: See :func:`object_event`.
        prefixes: See :func:`object_event`.

    Returns:
        A plain dict that :func:`validate_event` accepts.

    Raises:
        EpcisValidationError: If the inputs do not make a valid event.
    """
    event = _header_fields("TransformationEvent", event_time, tz_offset)
    if input_epcs:
        event["inputEPCList"] = list(input_epcs)
    if inputs_quantities:
        event["inputQuantityList"] = [_quantity_json(q) for q in inputs_quantities]
    if output_epcs:
        event["outputEPCList"] = list(output_epcs)
    if outputs_quantities:
        event["outputQuantityList"] = [_quantity_json(q) for q in outputs_quantities]
    if transformation_id is not None:
        event["transformationID"] = transformation_id
    _common_fields(
        event,
        biz_step=biz_step,
        disposition=disposition,
        read_point=read_point,
        biz_location=biz_location,
        biz_transactions=biz_transactions,
        sources=sources,
        destinations=destinations,
        sensor_elements=sensor_elements,
    )
    pd = _persistent_json(persistent_disposition)
    if pd is not None:
        event["persistentDisposition"] = pd
    if ilmd is not None:
        event["ilmd"] = dict(ilmd)
    return _finish(
        event,
        event_id=event_id,
        error_declaration=error_declaration,
        certification_info=certification_info,
        extensions=extensions,
        prefixes=prefixes,
    )


def sensor_report(
    *,
    type: str,
    value: int | float | None = None,
    uom: str | None = None,
    time: str | None = None,
    exception: str | None = None,
    min_value: int | float | None = None,
    max_value: int | float | None = None,
    mean_value: int | float | None = None,
    device_id: str | None = None,
) -> dict[str, Any]:
    """Build a sensorReport, e.g. ``sensor_report(type="Temperature", value=5.1, uom="CEL")``.

    Args:
        type: Measurement type (bare GS1 term such as ``Temperature``, or a URI).
        value: The reading.
        uom: Unit code (``CEL``).
        time: When measured.
        exception: ``ALARM_CONDITION`` or ``ERROR_CONDITION``.
        min_value: Minimum over an interval.
        max_value: Maximum over an interval.
        mean_value: Mean over an interval.
        device_id: The sensor's URI.

    Returns:
        The report dict (validated when the event is built).
    """
    out: dict[str, Any] = {"type": type}
    for key, val in (
        ("exception", exception),
        ("deviceID", device_id),
        ("time", time),
        ("value", value),
        ("minValue", min_value),
        ("maxValue", max_value),
        ("meanValue", mean_value),
        ("uom", uom),
    ):
        if val is not None:
            out[key] = val
    return out


def sensor_element(
    reports: Sequence[Mapping[str, Any]], *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build a sensorElement object from reports (see :func:`sensor_report`).

    Args:
        reports: At least one sensorReport.
        metadata: Optional sensorMetadata (``startTime``, ``endTime``, ``deviceID`` …).

    Returns:
        The element dict (validated when the event is built).
    """
    out: dict[str, Any] = {}
    if metadata is not None:
        out["sensorMetadata"] = dict(metadata)
    out["sensorReport"] = [dict(r) for r in reports]
    return out


def _uses_prefix(value: Any, prefix: str) -> bool:
    if isinstance(value, Mapping):
        return any(k.startswith(prefix) or _uses_prefix(v, prefix) for k, v in value.items())
    if isinstance(value, list):
        return any(_uses_prefix(v, prefix) for v in value)
    return False


def document(
    events: Iterable[Mapping[str, Any] | Event],
    *,
    creation_date: str,
    prefixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Wrap events in an EPCISDocument with the standard EPCIS 2.0 ``@context``.

    The ``yima`` prefix is declared when any event uses a ``yima:`` key; ``prefixes`` adds
    other namespaces.

    Args:
        events: Event dicts (e.g. from the builders) or models (their ``raw`` is used).
        creation_date: RFC 3339 date-time (given by the caller: the core has no clock).
        prefixes: Extra namespace prefixes to declare.

    Returns:
        A plain dict that :func:`load_document` accepts.

    Raises:
        EpcisValidationError: If the result is not a valid document.
    """
    event_list = [dict(e) if isinstance(e, Mapping) else dict(e.raw) for e in events]
    declared: dict[str, str] = {}
    if _uses_prefix(event_list, YIMA_PREFIX + ":"):
        declared[YIMA_PREFIX] = YIMA_NS
    declared.update(prefixes or {})
    context: list[Any] = [EPCIS_CONTEXT]
    if declared:
        context.append(declared)
    doc: dict[str, Any] = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": creation_date,
        "epcisBody": {"eventList": event_list},
    }
    load_document(doc)
    return doc
