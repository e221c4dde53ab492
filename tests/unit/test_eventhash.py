"""CBV 2.0 event hash: GS1 vectors, differential test against the reference, invariances.

The reference implementation (PyPI ``epcis-event-hash-generator``) is a test-only dependency;
``ledger/`` never imports it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.errors import EncodingError, EpcisValidationError
from ledger.eventhash import (
    EVENT_HASH_VERSION,
    document_event_hashes,
    document_prehash_strings,
    event_hash,
    prehash_string,
)

STD_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
NS_EXAMPLE = "https://ns.example.com/epcis/"
NS_URN = "urn:example:ns:"  # a namespace without a trailing "/": see SPEC §3 step 6 (Q2)

# Pre-hash lines in the vector set that are stale upstream: their SHA-256 is not the expected
# hash (the .hashes files, which the reference's own tests check, are authoritative).
STALE_PREHASH_LINES = {
    ("epcisDocWithCustomSchemaInContext", 1),
    ("epcisDocWithDefaultSchemaInContext", 1),
}


def _ni(prehash: str) -> str:
    return f"ni:///sha-256;{hashlib.sha256(prehash.encode()).hexdigest()}?ver=CBV2.0"


# ---------------------------------------------------------------------------------------------
# (1) GS1 vectors
# ---------------------------------------------------------------------------------------------


def _vector_docs(vectors_dir: Path, suffix: str) -> list[Path]:
    docs = sorted((vectors_dir / "epcis-hash").glob(f"*{suffix}"))
    assert docs, f"no *{suffix} vectors found"
    return docs


def _check_vector_doc(path: Path) -> None:
    stem = path.with_suffix("")
    expected = stem.with_suffix(".hashes").read_text().splitlines()
    assert document_event_hashes(path.read_bytes()) == expected, path.name
    pre_file = stem.with_suffix(".prehashes")
    if not pre_file.exists():
        return
    ours = document_prehash_strings(path.read_bytes())
    for i, line in enumerate(pre_file.read_text().splitlines()):
        if not line:
            continue
        if _ni(line) not in expected:
            assert (stem.name, i) in STALE_PREHASH_LINES, f"{path.name}: stale prehash line {i}"
            continue
        assert line in ours, f"{path.name}: prehash line {i} not produced"
        assert ours[expected.index(_ni(line))] == line


def test_every_jsonld_vector(vectors_dir: Path) -> None:
    docs = _vector_docs(vectors_dir, ".jsonld")
    for path in docs:
        _check_vector_doc(path)
    assert len(docs) >= 14


def test_every_xml_vector(vectors_dir: Path) -> None:
    docs = _vector_docs(vectors_dir, ".xml")
    for path in docs:
        _check_vector_doc(path)
    assert len(docs) >= 12


def test_single_event_reference_example() -> None:
    """STANDARDS §3.4: epcisDocWithSingleEvent's pre-hash and hash (sha256sum-confirmed)."""
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2018", "urn:epc:id:sgtin:0614141.107346.2017"],
        "eventTime": "2022-02-16T20:33:31.116000-06:00",
        "eventTimeZoneOffset": "-06:00",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}
        ],
    }
    assert prehash_string(event) == (
        "eventType=ObjectEventeventTime=2022-02-17T02:33:31.116ZeventTimeZoneOffset=-06:00"
        "epcListepc=https://id.gs1.org/01/10614141073464/21/2017"
        "epc=https://id.gs1.org/01/10614141073464/21/2018action=OBSERVE"
        "bizStep=https://ref.gs1.org/cbv/BizStep-shipping"
        "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
        "readPointid=https://id.gs1.org/414/0614141073467/254/1234"
        "bizTransactionListtype=https://ref.gs1.org/cbv/BTT-po"
        "bizTransaction=http://transaction.acme.com/po/12345678"
    )
    assert event_hash(event) == (
        "ni:///sha-256;ffa491b16867e34a7791a8d5389d826afc24e63a121026b6a4004ace38631b4b?ver=CBV2.0"
    )
    assert event_hash(event).endswith(f"?ver={EVENT_HASH_VERSION}")


# ---------------------------------------------------------------------------------------------
# (2) Differential test against the reference implementation
# ---------------------------------------------------------------------------------------------

ref_json_to_py = pytest.importorskip("epcis_event_hash_generator.json_to_py")
ref_hash_generator = pytest.importorskip("epcis_event_hash_generator.hash_generator")


def reference_prehashes(doc: dict[str, Any]) -> list[str]:
    """Pre-hash strings from the reference, one per event (it silently drops failing events)."""
    # Reference bug: json_to_py._namespaces is a module global that accumulates prefixes
    # across documents; clear it so each document is read on its own.
    ref_json_to_py._namespaces.clear()
    events = ref_json_to_py.event_list_from_epcis_document_json(copy.deepcopy(doc))
    return list(ref_hash_generator.derive_prehashes_from_events(events))


BIZ_STEPS = ["shipping", "receiving", "commissioning", "packing", "inspecting", "other"]
DISPS = ["in_transit", "in_progress", "active", "recalled", "damaged"]
BTTS = ["po", "inv", "desadv", "bol", "prodorder"]
SDTS = ["owning_party", "possessing_party", "location"]
MTYPES = ["Temperature", "RelativeHumidity", "Speed", "Illuminance", "Mass"]
URN_KIND = {"bizStep": "bizstep", "disposition": "disp", "btt": "btt", "sdt": "sdt"}
WEB_KIND = {"bizStep": "BizStep", "disposition": "Disp", "btt": "BTT", "sdt": "SDT"}

# Text for serials and free values. Input classes the reference mishandles are not generated:
# see the exclusion list above test_differential_against_reference.
SAFE_CHARS = st.sampled_from("ABCXYZabcxyz0123456789-_.")
serials = st.text(SAFE_CHARS, min_size=1, max_size=8).filter(lambda s: s[0] not in ".")
free_text = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["po", "shipping", "Temperature", "26.0", "0012", "1e3", " padded ", "中药"]),
)


def _gs1_key(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)


@st.composite
def cbv_value(draw: st.DrawFn, kind: str, terms: list[str]) -> str:
    term = draw(st.sampled_from(terms))
    form = draw(st.sampled_from(["bare", "urn", "web", "custom"]))
    if form == "urn":
        return f"urn:epcglobal:cbv:{URN_KIND[kind]}:{term}"
    if form == "web":
        return f"https://ref.gs1.org/cbv/{WEB_KIND[kind]}-{term}"
    if form == "custom":
        return f"https://vocab.example.com/{kind}/{term}"
    return term


@st.composite
def sgtin(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 12))
    cp = draw(_gs1_key(cp_len))
    item = draw(_gs1_key(13 - cp_len))
    serial = draw(serials)
    form = draw(st.sampled_from(["urn", "dl", "dl_lot", "custom", "custom_query"]))
    if form == "urn":
        return f"urn:epc:id:sgtin:{cp}.{item}.{serial}"
    gtin_body = item[0] + cp + item[1:]
    s = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(gtin_body)))
    gtin = gtin_body + str(-s % 10)
    if form == "dl":
        return f"https://id.gs1.org/01/{gtin}/21/{serial}"
    if form == "dl_lot":
        return f"https://id.gs1.org/01/{gtin}/10/{draw(serials)}/21/{serial}"
    if form == "custom":
        return f"https://brand.example.com/p/01/{gtin}/21/{serial}"
    return f"https://brand.example.com/01/{gtin}/10/{draw(serials)}/21/{serial}?17=261231"


@st.composite
def sscc(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 12))
    if draw(st.booleans()):
        return f"urn:epc:id:sscc:{draw(_gs1_key(cp_len))}.{draw(_gs1_key(17 - cp_len))}"
    return f"https://id.gs1.org/00/{draw(_gs1_key(18))}"


@st.composite
def sgln(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 11))
    ext = draw(st.sampled_from(["0", "1234", "A1"]))
    cp, loc = draw(_gs1_key(cp_len)), draw(_gs1_key(12 - cp_len))
    if draw(st.booleans()):
        return f"urn:epc:id:sgln:{cp}.{loc}.{ext}"
    return f"https://id.gs1.org/414/{draw(_gs1_key(13))}/254/{ext}"


@st.composite
def epc_class(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 12))
    cp, item = draw(_gs1_key(cp_len)), draw(_gs1_key(13 - cp_len))
    if draw(st.booleans()):
        return f"urn:epc:class:lgtin:{cp}.{item}.{draw(serials)}"
    return f"urn:epc:idpat:sgtin:{cp}.{item}.*"


@st.composite
def timestamp(draw: st.DrawFn) -> str:
    y, mo, d = draw(st.integers(1990, 2040)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.text(st.sampled_from("0123456789"), max_size=9))
    # Excluded: reference bug — a fraction rounding up to the next second (>= .9995) makes it
    # call datetime.replace(microsecond=1000000) and drop the event.
    assume(int(frac[:6].ljust(6, "0") or 0) < 999500)
    offset = draw(st.sampled_from(["Z", "+00:00", "-06:00", "+01:00", "+05:45", "+14:00", "-0330"]))
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{'.' + frac if frac else ''}{offset}"


numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.sampled_from([26.0, 12.5, 0.1, 1e-7, 100.25, -3.0, 1e16]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def sensor_element(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["time"] = draw(timestamp())
    if draw(st.booleans()):
        meta["deviceID"] = f"https://id.gs1.org/8004/{draw(_gs1_key(10))}"
    if draw(st.booleans()):
        meta["example:note"] = draw(free_text)
    reports = []
    for _ in range(draw(st.integers(1, 3))):
        rep: dict[str, Any] = {"type": draw(st.sampled_from([*MTYPES, "gs1:Temperature"]))}
        rep["value"] = draw(numbers)
        if draw(st.booleans()):
            rep["uom"] = draw(st.sampled_from(["CEL", "KMH", "A93"]))
        if draw(st.booleans()):
            rep["minValue"] = draw(numbers)
        if draw(st.booleans()):
            rep["exception"] = "ALARM_CONDITION"
        if draw(st.booleans()):
            rep["example:extra"] = draw(free_text)
        reports.append(rep)
    element: dict[str, Any] = {"sensorReport": reports}
    if meta:
        element["sensorMetadata"] = meta
    return element


def _pair_list(kind: str, key: str, terms: list[str], ids: st.SearchStrategy[str]) -> Any:
    # "type" first: the reference takes the first two JSON keys in key order (bug, SPEC Q1).
    entry = st.tuples(cbv_value(kind, terms), ids).map(lambda t: {"type": t[0], key: t[1]})
    return st.lists(entry, min_size=1, max_size=3)


@st.composite
def extension_value(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            free_text,
            numbers,
            st.fixed_dictionaries({"example:inner": free_text}),
            st.lists(free_text, min_size=1, max_size=3),
        )
    )


@st.composite
def epcis_event(draw: st.DrawFn) -> dict[str, Any]:
    etype = draw(
        st.sampled_from(
            [
                "ObjectEvent",
                "AggregationEvent",
                "TransactionEvent",
                "TransformationEvent",
                "AssociationEvent",
            ]
        )
    )
    ev: dict[str, Any] = {"type": etype, "eventTime": draw(timestamp())}
    ev["eventTimeZoneOffset"] = draw(st.sampled_from(["+01:00", "-06:00", "+08:00"]))
    epcs = st.lists(st.one_of(sgtin(), sscc()), min_size=1, max_size=4)
    quantities = st.lists(
        st.fixed_dictionaries(
            {"epcClass": epc_class(), "quantity": numbers},
            optional={"uom": st.sampled_from(["KGM", "LTR"])},
        ),
        min_size=1,
        max_size=3,
    )
    if etype in ("ObjectEvent", "TransactionEvent"):
        ev["epcList"] = draw(epcs)
        if draw(st.booleans()):
            ev["quantityList"] = draw(quantities)
    elif etype in ("AggregationEvent", "AssociationEvent"):
        ev["parentID"] = draw(sscc())
        ev["childEPCs"] = draw(epcs)
        if draw(st.booleans()):
            ev["childQuantityList"] = draw(quantities)
    else:
        ev["inputEPCList"] = draw(epcs)
        ev["outputEPCList"] = draw(epcs)
        if draw(st.booleans()):
            ev["inputQuantityList"] = draw(quantities)
        if draw(st.booleans()):
            ev["outputQuantityList"] = draw(quantities)
        if draw(st.booleans()):
            ev["transformationID"] = f"urn:epc:id:gdti:0614141.00001.{draw(serials)}"
    if etype != "TransformationEvent":
        ev["action"] = draw(st.sampled_from(["ADD", "OBSERVE", "DELETE"]))
    if draw(st.booleans()):
        ev["bizStep"] = draw(cbv_value("bizStep", BIZ_STEPS))
    if draw(st.booleans()):
        ev["disposition"] = draw(cbv_value("disposition", DISPS))
    if draw(st.booleans()):
        ev["persistentDisposition"] = {"set": [draw(st.sampled_from(DISPS))]}
    if draw(st.booleans()):
        ev["readPoint"] = {"id": draw(sgln())}
        if draw(st.booleans()):
            ev["readPoint"]["example:zone"] = draw(free_text)
    if draw(st.booleans()):
        ev["bizLocation"] = {"id": draw(sgln())}
    if draw(st.booleans()):
        ev["bizTransactionList"] = draw(
            _pair_list(
                "btt",
                "bizTransaction",
                BTTS,
                st.sampled_from(
                    ["urn:epcglobal:cbv:bt:0614141073467:1152", "http://transaction.acme.com/po/1"]
                ),
            )
        )
    if draw(st.booleans()):
        ev["sourceList"] = draw(_pair_list("sdt", "source", SDTS, sgln()))
    if draw(st.booleans()):
        ev["destinationList"] = draw(_pair_list("sdt", "destination", SDTS, sgln()))
    if draw(st.booleans()):
        ev["sensorElementList"] = draw(st.lists(sensor_element(), min_size=1, max_size=2))
    if draw(st.booleans()):
        ev["ilmd"] = {
            "cbvmda:lotNumber": draw(serials),
            "example:batch": draw(extension_value()),
        }
    for _ in range(draw(st.integers(0, 3))):
        prefix = draw(st.sampled_from(["example", "urnns"]))
        ev[f"{prefix}:{draw(st.sampled_from(['f1', 'f2', 'myList', 'deliveryTime']))}"] = draw(
            extension_value()
        )
    if draw(st.booleans()):
        ev["eventID"] = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
    if draw(st.booleans()):
        ev["recordTime"] = draw(timestamp())
    return ev


@st.composite
def epcis_document(draw: st.DrawFn) -> dict[str, Any]:
    events = draw(st.lists(epcis_event(), min_size=1, max_size=3))
    return {
        "@context": [STD_CONTEXT, {"example": NS_EXAMPLE, "urnns": NS_URN}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-01-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


@pytest.fixture(autouse=True)
def _quiet_reference_logging() -> Any:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# Input classes deliberately NOT generated (reference bugs; see docs/spec/03-eventhash.md):
#  Q1 bizTransaction/source/destination entries without "type", with the ID key before "type",
#     or with extra keys (reference takes the first two JSON keys; IndexError without type);
#  Q3 JSON booleans (reference writes "True"/"False", its XML path "true") and null;
#  Q4 fractions rounding to the next second (>= .9995: reference crashes, drops the event),
#     timestamps without offset (reference uses the machine's local zone);
#  Q7 numeric strings "inf"/"infinity" (reference crashes: OverflowError, drops the event);
#  Q8 event-level "@context" (reference hashes the context itself as an extension);
#  document-level ignoreFields and EPCISQueryDocument (reference 1.9.3 predates both).
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(doc=epcis_document())
def test_differential_against_reference(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assume("nf" not in text.lower())  # Q7: any "inf"/"infinity" text
    expected = reference_prehashes(doc)
    assert len(expected) == len(doc["epcisBody"]["eventList"]), "reference dropped an event"
    assert document_prehash_strings(doc) == expected
    assert document_event_hashes(text.encode()) == [_ni(p) for p in expected]


# ---------------------------------------------------------------------------------------------
# (3) Invariances
# ---------------------------------------------------------------------------------------------

BASE_EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2024-03-01T10:00:00.123+08:00",
    "eventTimeZoneOffset": "+08:00",
    "epcList": [
        "urn:epc:id:sgtin:6901234.000001.1000001",
        "urn:epc:id:sgtin:6901234.000001.1000002",
        "urn:epc:id:sgtin:6901234.000001.99",
    ],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
}


def _with(**changes: Any) -> dict[str, Any]:
    ev = copy.deepcopy(BASE_EVENT)
    ev.update(changes)
    return ev


def test_epc_order_does_not_matter() -> None:
    shuffled = _with(epcList=list(reversed(BASE_EVENT["epcList"])))
    assert event_hash(shuffled) == event_hash(BASE_EVENT)


def test_urn_and_digital_link_hash_the_same() -> None:
    dl = _with(
        epcList=[
            "https://id.gs1.org/01/06901234000016/21/1000001",
            # custom resolver domain, a lot and a query string: all normalised away
            "https://scan.example.cn/01/06901234000016/10/B2501/21/1000002?17=270630",
            "https://id.gs1.org/01/06901234000016/21/99",
        ],
        readPoint={"id": "https://id.gs1.org/414/6901234000016"},
    )
    assert event_hash(dl) == event_hash(BASE_EVENT)


def test_cbv_forms_hash_the_same() -> None:
    for form in ("urn:epcglobal:cbv:bizstep:shipping", "https://ref.gs1.org/cbv/BizStep-shipping"):
        assert event_hash(_with(bizStep=form)) == event_hash(BASE_EVENT)


def test_ignored_fields_do_not_matter() -> None:
    decorated = _with(
        eventID="ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0",
        recordTime="2024-03-02T00:00:00Z",
        errorDeclaration={"declarationTime": "2024-03-03T00:00:00Z", "reason": "incorrect_data"},
    )
    assert event_hash(decorated) == event_hash(BASE_EVENT)


def test_time_zone_and_precision_do_not_matter() -> None:
    same = _with(eventTime="2024-03-01T02:00:00.1230Z")
    assert event_hash(same) == event_hash(BASE_EVENT)
    assert event_hash(_with(eventTime="2024-03-01T02:00:00.124Z")) != event_hash(BASE_EVENT)


def test_changed_content_changes_the_hash() -> None:
    assert event_hash(_with(action="ADD")) != event_hash(BASE_EVENT)
    assert event_hash(_with(epcList=BASE_EVENT["epcList"][:2])) != event_hash(BASE_EVENT)


def test_context_prefixes_expand_extensions() -> None:
    ev = _with(**{"ex:batch": "B1"})
    plain = prehash_string(ev)
    assert plain.endswith("ex:batch=B1")
    expanded = prehash_string(ev, context={"ex": "https://ns.example.com/epcis/"})
    assert expanded.endswith("{https://ns.example.com/epcis/}batch=B1")


def test_fraction_rounding_carries_into_the_next_second() -> None:
    # The reference crashes here (Q4); we carry, which is what rounding means.
    pre = prehash_string(_with(eventTime="2024-12-31T23:59:59.9996Z"))
    assert "eventTime=2025-01-01T00:00:00.000Z" in pre
    assert "eventTime=2024-03-01T02:00:00.002Z" in prehash_string(
        _with(eventTime="2024-03-01T02:00:00.0025Z")  # half to even on the microseconds
    )


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

Bad = Callable[[], object]


@pytest.mark.parametrize(
    ("make", "error", "path"),
    [
        (lambda: prehash_string(_with(type="FooEvent")), EpcisValidationError, "event.type"),
        (lambda: prehash_string({"type": "ObjectEvent"}), EpcisValidationError, "event.eventTime"),
        (lambda: prehash_string(_with(eventTime="yesterday")), EpcisValidationError, "event"),
        (lambda: prehash_string(_with(action=None)), EpcisValidationError, "event.action"),
        (
            lambda: prehash_string(_with(bizTransactionList=["po"])),
            EpcisValidationError,
            "event.bizTransactionList[0]",
        ),
        (lambda: document_event_hashes(b"{not json"), EncodingError, None),
        (lambda: document_event_hashes(b"[]"), EpcisValidationError, ""),
        (lambda: document_event_hashes(b'{"epcisBody": {}}'), EpcisValidationError, None),
        (
            lambda: document_event_hashes(b'{"type": "Foo", "epcisBody": {"eventList": []}}'),
            EpcisValidationError,
            "type",
        ),
        (
            lambda: document_event_hashes(b'{"epcisBody": {"eventList": [{"type": "X"}]}}'),
            EpcisValidationError,
            "epcisBody.eventList[0].type",
        ),
    ],
)
def test_bad_input_raises(make: Bad, error: type[Exception], path: str | None) -> None:
    with pytest.raises(error) as info:
        make()
    if path is not None:
        assert getattr(info.value, "path", None) == path


def test_empty_event_list() -> None:
    assert document_event_hashes(b'{"epcisBody": {"eventList": []}}') == []
