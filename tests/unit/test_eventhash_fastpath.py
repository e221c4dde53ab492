"""The event-hash fast path gives exactly the general path's pre-hash string, or steps aside.

``ledger.eventhash._prehash_fast`` emits the pre-hash string of the usual (builder-shaped) lone
event in one pass; ``_prehash_general`` (node tree, SPEC §3 steps 1-11) is the definition and
is checked against the GS1 vectors and the reference in ``test_eventhash.py``. Here: the two
agree on generated Yima-shaped events (including the awkward corners the fast path must either
reproduce or refuse) and on every GS1 vector event; the fast path is really taken for builder
events; and the value helpers that were sped up agree with their plain versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import epcis, eventhash
from ledger.epcis import QuantityElement, SourceDest
from ledger.errors import EpcisValidationError
from ledger.eventhash import _prehash_fast, _prehash_general, event_hash, prehash_string

DIFFERENTIAL = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _agree(event: Any) -> str | None:
    """Assert fast == general (or fast stepped aside); return the fast result."""
    fast = _prehash_fast(event)
    try:
        general = _prehash_general(event)
    except Exception as exc:  # EpcisValidationError, or e.g. TypeError for "type": [...]
        assert fast is None, "the fast path hashed an event the general path rejects"
        with pytest.raises(type(exc)):
            prehash_string(event)
        return None
    if fast is not None:
        assert fast == general
    assert prehash_string(event) == general
    return fast


# ---------------------------------------------------------------------------------------------
# Generated Yima-shaped events
# ---------------------------------------------------------------------------------------------


def _check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=1)
SERIAL_CHARS = "ABCXYZabcxyz0123456789-_."
serials = st.one_of(
    st.text(st.sampled_from(SERIAL_CHARS), min_size=1, max_size=12),
    st.sampled_from(["SN0001", "x!y", "a%21b", "(1)", "a:b", "a+b,c", "*"]),
)


def _key(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)


@st.composite
def sgtin(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 12))
    cp, ref = draw(_key(cp_len)), draw(_key(13 - cp_len))
    body = ref[0] + cp + ref[1:]
    gtin = body + _check_digit(body)
    serial = draw(serials)
    return draw(
        st.sampled_from(
            [
                f"https://id.gs1.org/01/{gtin}/21/{serial}",
                f"urn:epc:id:sgtin:{cp}.{ref}.{serial}",
                f"https://id.gs1.org/01/{gtin}/10/L1/21/{serial}",
                f"https://scan.example.cn/01/{gtin}/21/{serial}?17=270630",
                f"https://id.gs1.org/01/{gtin[1:]}/21/{serial}",  # GTIN-13: padded
                f"urn:epc:id:sgtin:{cp}.{ref}",  # not an EPC: kept as written
            ]
        )
    )


@st.composite
def sscc(draw: st.DrawFn) -> str:
    cp_len = draw(st.integers(6, 12))
    cp, rest = draw(_key(cp_len)), draw(_key(17 - cp_len))
    body = rest[0] + cp + rest[1:]
    return draw(
        st.sampled_from(
            [f"https://id.gs1.org/00/{body}{_check_digit(body)}", f"urn:epc:id:sscc:{cp}.{rest}"]
        )
    )


@st.composite
def location(draw: st.DrawFn) -> str:
    gln = draw(_key(12))
    gln += _check_digit(gln)
    ext = draw(st.sampled_from(["0", "1234", "A1"]))
    return draw(
        st.sampled_from(
            [
                f"https://id.gs1.org/414/{gln}",
                f"https://id.gs1.org/414/{gln}/254/{ext}",
                f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.{ext}",
                f"https://id.gs1.org/417/{gln}",
                "urn:yima:site:hz-01",
            ]
        )
    )


@st.composite
def lgtin(draw: st.DrawFn) -> str:
    body = draw(_key(13))
    gtin = body + _check_digit(body)
    lot = draw(serials)
    return draw(
        st.sampled_from(
            [
                f"https://id.gs1.org/01/{gtin}/10/{lot}",
                f"https://id.gs1.org/01/{gtin}",
                f"urn:epc:class:lgtin:{body[1:8]}.{body[0]}{body[8:]}.{lot}",
            ]
        )
    )


@st.composite
def timestamp(draw: st.DrawFn) -> str:
    y = draw(st.sampled_from([1, 1999, 2000, 2024, 2026, 9999]))
    mo, d = draw(st.integers(1, 12)), draw(st.integers(1, 31))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.sampled_from([".000", ".123", ".999", "", ".5", ".123456", ".0005"]))
    off = draw(st.sampled_from(["+08:00", "Z", "-06:00", "+00:00", "+05:45", "-0330", "+14:00"]))
    sep = draw(st.sampled_from(["T", "T", "T", "t", " "]))
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}"


CBV_KINDS = {
    "bizStep": ("bizstep", "BizStep", ["shipping", "receiving", "commissioning", "packing"]),
    "disposition": ("disp", "Disp", ["in_transit", "active", "recalled", "dispensed"]),
    "btt": ("btt", "BTT", ["po", "inv", "desadv"]),
    "sdt": ("sdt", "SDT", ["owning_party", "possessing_party", "location"]),
}


@st.composite
def cbv(draw: st.DrawFn, kind: str) -> str:
    urn, web, terms = CBV_KINDS[kind]
    term = draw(st.sampled_from(terms))
    form = draw(st.sampled_from(["bare", "bare", "bare", "urn", "web", "custom", "curie"]))
    if form == "urn":
        return f"urn:epcglobal:cbv:{urn}:{term}"
    if form == "web":
        return f"https://ref.gs1.org/cbv/{web}-{term}"
    if form == "custom":
        return f"https://vocab.example.com/{web}-{term}"
    if form == "curie":
        return f"cbv:{web}-{term}"
    return term


# Values that exercise step 2 (Q6: equal to a suffix of an expanded CBV IRI), steps 7-9
# (CBV URNs, numbers, identifiers), blanks and padding, and a few the fast path must refuse.
free_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=10),
    st.sampled_from(
        [
            "shipping",
            "BizStep-shipping",
            "in_transit",
            "po",
            "location",
            "Temperature",
            "voc/Temperature",
            "26.0",
            "0012",
            "1e3",
            "inf",
            " padded ",
            "",
            "   ",
            "中药",
            "甘肃岷县",
            "２６",
            "urn:epcglobal:cbv:disp:active",
            "urn:epc:id:sgtin:0614141.107346.2018",
            "https://id.gs1.org/01/09506000134352/21/ABC",
            "gs1:Temperature",
            "https://gs1.org/voc/Temperature",
            "cbv:BizStep-shipping",
            "https://ref.gs1.org/cbv/Disp-active",
        ]
    ),
)
scalars = st.one_of(
    free_text,
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([26.0, 12.5, 1e16, -0.0, 5.2]),
)
ext_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.just(None),  # an error in the general path
    st.fixed_dictionaries({"yima:inner": free_text}),  # nested: the fast path steps aside
)
ext_keys = st.sampled_from(
    ["yima:administered", "yima:origin", "yima:note", "example:f1", "cbvmda:lotNumber", "x:y"]
)


@st.composite
def sensor_element(draw: st.DrawFn) -> dict[str, Any]:
    reports = []
    for _ in range(draw(st.integers(0, 3))):
        report: dict[str, Any] = {
            "type": draw(st.sampled_from(["Temperature", "RelativeHumidity", "gs1:Temperature"]))
        }
        for key, strat in (
            ("value", st.one_of(st.floats(-50, 50), st.integers(-50, 50))),
            ("uom", st.sampled_from(["CEL", "KMH", " CEL "])),
            ("time", timestamp()),
            ("exception", st.sampled_from(["ALARM_CONDITION", "ERROR_CONDITION"])),
            ("minValue", st.floats(-50, 50)),
            ("booleanValue", st.booleans()),
            ("stringValue", free_text),
            ("component", st.sampled_from(["x", "latitude"])),
            ("deviceID", location()),
        ):
            if draw(st.integers(0, 3)) == 0:
                report[key] = draw(strat)
        reports.append(report)
    element: dict[str, Any] = {}
    if draw(st.booleans()):
        meta: dict[str, Any] = {}
        if draw(st.booleans()):
            meta["deviceID"] = f"https://id.gs1.org/8004/{draw(_key(10))}"
        if draw(st.booleans()):
            meta["startTime"] = draw(timestamp())
        if draw(st.booleans()):
            meta["bizRules"] = "https://example.com/rules/1"
        element["sensorMetadata"] = meta
    if len(reports) > 0 or draw(st.booleans()):
        single = len(reports) == 1 and draw(st.booleans())
        element["sensorReport"] = reports[0] if single else reports
    return element


def _pairs(kind: str, member: str, ids: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    entry = st.one_of(
        st.tuples(cbv(kind), ids).map(lambda t: {"type": t[0], member: t[1]}),
        ids.map(lambda i: {member: i}),  # no type (Q1): our path emits the ID alone
    )
    return st.lists(entry, max_size=3)


@st.composite
def yima_event(draw: st.DrawFn) -> dict[str, Any]:
    etype = draw(
        st.sampled_from(
            ["ObjectEvent", "AggregationEvent", "TransformationEvent", "AssociationEvent"]
        )
    )
    ev: dict[str, Any] = {"type": etype, "eventTime": draw(timestamp())}
    ev["eventTimeZoneOffset"] = draw(st.sampled_from(["+08:00", "-06:00", "+00:00"]))
    epcs = st.lists(st.one_of(sgtin(), sscc()), max_size=4)
    quantities = st.lists(
        st.fixed_dictionaries(
            {"epcClass": lgtin()},
            optional={
                "quantity": st.one_of(st.integers(0, 500), st.floats(0, 500), st.just("10")),
                "uom": st.sampled_from(["KGM", "LTR", ""]),
            },
        ),
        min_size=1,
        max_size=3,
    )
    if etype == "ObjectEvent":
        ev["epcList"] = draw(epcs)
        if draw(st.booleans()):
            ev["quantityList"] = draw(quantities)
    elif etype == "TransformationEvent":
        for key, strat in (
            ("inputEPCList", epcs),
            ("outputEPCList", epcs),
            ("inputQuantityList", quantities),
            ("outputQuantityList", quantities),
        ):
            if draw(st.booleans()):
                ev[key] = draw(strat)
        if draw(st.booleans()):
            ev["transformationID"] = f"urn:yima:tcm:process:{draw(serials)}"
    else:
        ev["parentID"] = draw(st.one_of(sscc(), st.just("https://id.gs1.org/8004/69012LOG1")))
        ev["childEPCs"] = draw(epcs)
        if draw(st.booleans()):
            ev["childQuantityList"] = draw(quantities)
    if etype != "TransformationEvent":
        ev["action"] = draw(st.sampled_from(["ADD", "OBSERVE", "DELETE"]))
    if draw(st.booleans()):
        ev["bizStep"] = draw(cbv("bizStep"))
    if draw(st.booleans()):
        ev["disposition"] = draw(cbv("disposition"))
    if draw(st.integers(0, 4)) == 0:
        ev["persistentDisposition"] = {
            draw(st.sampled_from(["set", "unset"])): draw(st.lists(cbv("disposition"), max_size=2))
        }
    if draw(st.booleans()):
        ev["readPoint"] = {"id": draw(location())}
    if draw(st.booleans()):
        ev["bizLocation"] = {"id": draw(location())}
    if draw(st.booleans()):
        ev["bizTransactionList"] = draw(
            _pairs("btt", "bizTransaction", st.sampled_from(["urn:yima:po:1", "http://t.cn/po/2"]))
        )
    if draw(st.integers(0, 2)) == 0:
        ev["sourceList"] = draw(_pairs("sdt", "source", location()))
    if draw(st.integers(0, 2)) == 0:
        ev["destinationList"] = draw(_pairs("sdt", "destination", location()))
    if draw(st.integers(0, 3)) == 0:
        ev["sensorElementList"] = draw(st.lists(sensor_element(), max_size=2))
    if draw(st.integers(0, 2)) == 0:
        ev["ilmd"] = draw(st.dictionaries(ext_keys, scalars, max_size=3))
    if draw(st.integers(0, 2)) == 0:
        ev.update(draw(st.dictionaries(ext_keys, ext_values, max_size=2)))
    if draw(st.integers(0, 3)) == 0:
        ev["certificationInfo"] = draw(
            st.one_of(st.just("https://cert.example.com/qc/1"), st.lists(free_text, max_size=2))
        )
    if draw(st.booleans()):
        ev["eventID"] = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
    if draw(st.booleans()):
        ev["recordTime"] = draw(timestamp())
    if draw(st.integers(0, 5)) == 0:
        ev["errorDeclaration"] = {
            "declarationTime": draw(timestamp()),
            "reason": draw(st.sampled_from(["incorrect_data", "did_not_occur", "other"])),
        }
    return ev


# Changes that put an event outside the fast path's shapes, or make it invalid: whatever the
# fast path does with them, it must not give a different answer.
ODD_CHANGES: list[tuple[str, Any]] = [
    ("@context", ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]),
    ("comment", "a comment"),
    ("rdfs:comment", "https://gs1.org/voc/x"),
    ("unknownField", "x"),
    ("yima:nested", {"bizStep": "shipping"}),
    ("yima:aList", ["a", "b"]),
    ("{https://ns.example.com/}raw", "x"),
    ("readPoint", {"id": "urn:epc:id:sgln:0614141.07346.1234", "yima:zone": "A"}),
    ("readPoint", {"#text": "x"}),
    ("readPoint", {}),
    ("bizLocation", {"id": ["https://id.gs1.org/414/9506000134307", "b"]}),
    ("quantityList", [{}]),
    ("quantityList", [{"epcClass": "x", "yima:extra": 1}]),
    ("quantityList", ["https://id.gs1.org/01/09506000134352/10/L1"]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "type": "po", "x:y": "z"}]),
    ("bizTransactionList", ["po"]),
    ("bizTransactionList", {"type": "po", "bizTransaction": "urn:yima:po:1"}),
    ("sourceList", []),
    ("sensorElementList", [{"sensorReport": {"type": "Temperature", "yima:x": 1}}]),
    ("sensorElementList", [{"sensorMetadata": [{"time": "2024-01-01T00:00:00Z"}]}]),
    ("epcList", "https://id.gs1.org/01/09506000134352/21/ABC"),
    ("epcList", [["nested"]]),
    ("epcList", [None]),
    ("epcList", ["https://ref.gs1.org/cbv/BizStep-shipping"]),
    ("action", None),
    ("action", ["ADD", "OBSERVE"]),
    ("bizStep", ["shipping", "receiving"]),
    ("bizStep", {"id": "x"}),
    ("bizStep", "gs1:Temperature"),
    ("disposition", 5),
    ("eventTime", "yesterday"),
    ("eventTime", "2024-02-30T00:00:00.000+08:00"),
    ("eventTime", "2024-01-01T24:00:00.000Z"),
    ("eventTime", "   "),
    ("eventTime", 12),
    ("eventTimeZoneOffset", ["+08:00"]),
    ("eventID", None),
    ("eventID", "cbv:foo"),
    ("recordTime", ["x"]),
    ("errorDeclaration", {"reason": None}),
    ("errorDeclaration", "incorrect_data"),
    ("ilmd", "x"),
    ("ilmd", {}),
    ("ilmd", {"lotNumber": "L1"}),
    ("ilmd", {"cbvmda:lotNumber": {"#text": "L1"}}),
    ("type", ["ObjectEvent"]),
    ("type", "FooEvent"),
    ("persistentDisposition", {"set": "recalled", "other": ["x"]}),
    ("persistentDisposition", {}),
    ("certificationInfo", {"id": "x"}),
]


@DIFFERENTIAL
@given(event=yima_event())
def test_fast_path_equals_general_on_generated_events(event: dict[str, Any]) -> None:
    _agree(event)


@settings(DIFFERENTIAL, max_examples=500)
@given(
    event=yima_event(),
    changes=st.lists(st.sampled_from(ODD_CHANGES), min_size=1, max_size=2),
    drop=st.sampled_from([None, "eventTime", "type", "action"]),
)
def test_fast_path_never_differs_on_odd_events(
    event: dict[str, Any], changes: list[tuple[str, Any]], drop: str | None
) -> None:
    for key, value in changes:
        event[key] = json.loads(json.dumps(value))  # fresh copies: paths mutate nothing, but
    if drop is not None:
        event.pop(drop, None)
    _agree(event)


# ---------------------------------------------------------------------------------------------
# GS1 vector events (as lone events: no document context)
# ---------------------------------------------------------------------------------------------


def test_fast_path_equals_general_on_every_vector_event(vectors_dir: Path) -> None:
    docs = sorted((vectors_dir / "epcis-hash").glob("*.jsonld"))
    assert docs, "no .jsonld vectors found"
    events = 0
    fast = 0
    for path in docs:
        doc = json.loads(path.read_text(encoding="utf-8"))
        body = doc["epcisBody"]
        found = body.get("eventList") or body["queryResults"]["resultsBody"]["eventList"]
        for event in found:
            events += 1
            if _agree(event) is not None:
                fast += 1
            # Each vector event with its namespaced keys read as plain "prefix:name" keys
            # must agree too (the service hashes lone events without the document context).
            bare = {k: v for k, v in event.items() if k != "@context"}
            _agree(bare)
    assert events >= 30
    assert fast >= 5, f"the fast path took only {fast} of {events} vector events"


# ---------------------------------------------------------------------------------------------
# The fast path is taken for what the builders make (so the speed-up cannot silently vanish)
# ---------------------------------------------------------------------------------------------

T = "2025-03-01T08:00:00.000+08:00"
ITEMS = [
    "https://id.gs1.org/01/09506000134352/21/ABC123",
    "https://id.gs1.org/01/09506000134352/21/ABC124",
]
CASE = "https://id.gs1.org/00/095060001343520006"
LOT = "https://id.gs1.org/01/09506000134352/10/L2025"
SITE = "https://id.gs1.org/414/9506000134307"
PARTY = "https://id.gs1.org/417/9506000134307"
LOGGER = "https://id.gs1.org/8004/9506000134307LOG1"


def builder_events() -> list[dict[str, Any]]:
    """One event per builder and per option Yima uses (SPEC §2.8 steps)."""
    common: dict[str, Any] = {"event_time": T, "tz_offset": "+08:00", "read_point": SITE}
    return [
        epcis.object_event(
            epcs=ITEMS,
            action="ADD",
            biz_step="commissioning",
            disposition="active",
            biz_location=SITE,
            ilmd={"cbvmda:lotNumber": "L2025", "cbvmda:itemExpirationDate": "2027-03-31"},
            **common,
        ),
        epcis.aggregation_event(
            parent=CASE, children=ITEMS, action="ADD", biz_step="packing", **common
        ),
        epcis.object_event(
            epcs=[CASE],
            action="OBSERVE",
            biz_step="shipping",
            disposition="in_transit",
            biz_transactions=[("po", "urn:yima:po:2025-0001")],
            sources=[("owning_party", PARTY), ("location", SITE)],
            destinations=[SourceDest("location", "https://id.gs1.org/414/9506000134314")],
            **common,
        ),
        epcis.object_event(
            epcs=["urn:epc:id:sgtin:9506000.134352.ABC125"],
            action="OBSERVE",
            biz_step="receiving",
            disposition="sellable_not_accessible",
            event_id="ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0",
            **common,
        ),
        epcis.object_event(
            epcs=ITEMS[:1],
            action="OBSERVE",
            biz_step="dispensing",
            disposition="dispensed",
            extensions={"yima:administered": True},
            **common,
        ),
        epcis.object_event(
            epcs=ITEMS[:1],
            action="OBSERVE",
            biz_step="holding",
            disposition="recalled",
            persistent_disposition={"set": ["recalled"]},
            **common,
        ),
        epcis.object_event(
            epcs=[LOT],
            action="OBSERVE",
            biz_step="holding",
            disposition="recalled",
            quantities=[(LOT, 120, "EA")],
            **common,
        ),
        epcis.object_event(
            epcs=[CASE],
            action="OBSERVE",
            biz_step="sensor_reporting",
            disposition=None,
            sensor_elements=[
                epcis.sensor_element(
                    [epcis.sensor_report(type="Temperature", value=5.2, uom="CEL", time=T)],
                    metadata={"deviceID": LOGGER},
                )
            ],
            **common,
        ),
        epcis.association_event(
            parent=LOGGER, children=[CASE], action="ADD", biz_step="installing", **common
        ),
        epcis.transformation_event(
            inputs_quantities=[(LOT, 100, "KGM")],
            outputs_quantities=[QuantityElement(LOT.replace("L2025", "P2025"), 82.5, "KGM")],
            transformation_id="urn:yima:tcm:process:2025-0001",
            biz_step="commissioning",
            ilmd={"cbvmda:lotNumber": "P2025", "yima:origin": "甘肃岷县"},
            certification_info=["https://cert.example.com/qc/2025-0001"],
            **common,
        ),
        epcis.object_event(
            epcs=ITEMS[:1],
            action="OBSERVE",
            biz_step="receiving",
            disposition="returned",
            error_declaration={"declarationTime": T, "reason": "incorrect_data"},
            **common,
        ),
    ]


def test_builder_events_take_the_fast_path() -> None:
    for i, event in enumerate(builder_events()):
        fast = _prehash_fast(event)
        assert fast is not None, f"builder event {i} fell back to the general path"
        assert fast == _prehash_general(event)


def test_event_hash_uses_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    events = builder_events()
    expected = [event_hash(e) for e in events]

    def refuse(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("general path used")

    monkeypatch.setattr(eventhash, "_prehash_general", refuse)
    assert [event_hash(e) for e in events] == expected


def test_context_and_odd_events_use_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    event = builder_events()[0]
    calls: list[object] = []
    general = eventhash._prehash_general

    def counting(ev: Any, context: Any = None) -> str:
        calls.append(ev)
        return general(ev, context)

    monkeypatch.setattr(eventhash, "_prehash_general", counting)
    prehash_string(event, context={"cbvmda": "urn:epcglobal:cbv:mda:"})
    prehash_string(
        {**event, "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]}
    )
    prehash_string({**event, "yima:nested": {"a:b": "c"}})
    prehash_string({**event, "yima:note": "https://gs1.org/voc/Temperature"})
    assert len(calls) == 4
    prehash_string(event)
    assert len(calls) == 4


# ---------------------------------------------------------------------------------------------
# Sped-up value helpers agree with their plain versions
# ---------------------------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(
    y=st.integers(0, 9999),
    mo=st.integers(0, 13),
    d=st.integers(0, 32),
    h=st.integers(0, 25),
    mi=st.integers(0, 60),
    s=st.integers(0, 61),
    ms=st.integers(0, 999),
    off=st.one_of(
        st.just("Z"),
        st.tuples(st.sampled_from("+-"), st.integers(0, 25), st.integers(0, 61)).map(
            lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"
        ),
    ),
)
def test_usual_timestamps_match_the_general_parser(
    y: int, mo: int, d: int, h: int, mi: int, s: int, ms: int, off: str
) -> None:
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}{off}"
    fast = eventhash._timestamp_usual(text)
    try:
        general = eventhash._timestamp_general(text)
    except (EpcisValidationError, ValueError):
        assert fast is None
        return
    assert fast is None or fast == general
    if 1 < y < 9999 and off != "Z" and abs(int(off[1:3])) < 24 and int(off[4:]) < 60:
        assert fast == general  # the usual form is always handled by the fast parser


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=30))
def test_timestamp_fast_parser_is_only_ever_a_shortcut(text: str) -> None:
    fast = eventhash._timestamp_usual(text)
    if fast is not None:
        assert fast == eventhash._timestamp_general(text)


@settings(max_examples=500, deadline=None)
@given(body=st.text(st.characters(categories=["Nd"]), min_size=1, max_size=20))
def test_check_digit_matches_the_plain_sum(body: str) -> None:
    assert eventhash._check_digit(body) == eventhash._check_digit_general(body)


def _numeric_plain(text: str) -> str:
    """ledger.eventhash._numeric before the non-ASCII shortcut."""
    if text[:1] in eventhash._NOT_NUMERIC_START:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    if number == int(number):
        return str(int(number))
    return str(number)


@settings(max_examples=1000, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=8),
        st.text(st.characters(categories=["Nd", "Zs", "Lo", "No", "Nl"]), max_size=6),
        st.from_regex(r"\s*[+-]?[0-9٠-٩０-９]{1,4}(\.[0-9]+)?\s*", fullmatch=True),
    )
)
def test_numeric_shortcut_matches_float(text: str) -> None:
    assert eventhash._numeric(text) == _numeric_plain(text)


def _pct_plain(text: str) -> str:
    for ch, enc in (
        ("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A"), ("+", "%2B"), (",", "%2C"),
        (":", "%3A"),
    ):  # fmt: skip
        text = text.replace(ch, enc)
    return text


@settings(max_examples=500, deadline=None)
@given(text=st.text(st.sampled_from("aZ09!()*+,:%-_.中"), max_size=12))
def test_pct_shortcut(text: str) -> None:
    assert eventhash._pct(text) == _pct_plain(text)


@settings(max_examples=1000, deadline=None)
@given(
    cp=st.text(st.sampled_from("0123456789"), min_size=5, max_size=13),
    ref=st.text(st.sampled_from("0123456789"), min_size=0, max_size=8),
    serial=st.text(st.sampled_from("aZ09!%2-_.:*中"), min_size=0, max_size=22),
)
def test_sgtin_shortcut_matches_the_urn_rules(cp: str, ref: str, serial: str) -> None:
    urn = f"urn:epc:id:sgtin:{cp}.{ref}.{serial}"
    expected = None
    if eventhash._URN_PATTERNS["id:sgtin"].match(urn) is not None:
        expected = eventhash._urn_to_dl("id:sgtin", urn, urn.find("."))
    assert eventhash._normalise_id(urn) == expected


@settings(max_examples=1000, deadline=None)
@given(text=st.from_regex(eventhash._DL_ALREADY_CANONICAL, fullmatch=True))
def test_already_canonical_digital_links_are_left_alone_by_the_pipeline(text: str) -> None:
    # The shortcut in _normalise_id / _fv / _fepcs skips SPEC §3 step 9b-9c for these.
    assert (eventhash._dl_constrain(text) or text) == text
    assert eventhash._numeric(text) == text
    assert "urn:epcglobal:cbv:" not in text


def test_malformed_events_raise_typed_errors_not_python_errors() -> None:
    import pytest

    from ledger.errors import EpcisValidationError
    from ledger.eventhash import document_event_hashes, event_hash

    bad_type = {"type": ["ObjectEvent"], "eventTime": "2025-01-01T00:00:00Z",
                "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": []}  # fmt: skip
    with pytest.raises(EpcisValidationError):
        event_hash(bad_type)
    bad_offset = {"type": "ObjectEvent", "eventTime": "2025-01-01T00:00:00+25:00",
                  "eventTimeZoneOffset": "+25:00", "action": "OBSERVE", "epcList": []}  # fmt: skip
    with pytest.raises(EpcisValidationError):
        event_hash(bad_offset)
    doc = {"type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2025-01-01T00:00:00Z",
           "epcisBody": {"eventList": [bad_offset]}}  # fmt: skip
    with pytest.raises(EpcisValidationError):
        document_event_hashes(doc)


# ---------------------------------------------------------------------------------------------
# Memoised parts (_named, _utc_minute): they must follow step 2's replacement map
# ---------------------------------------------------------------------------------------------

_SITE = "https://id.gs1.org/414/6901234000004"
_MEMO_BASE: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2026-03-01T00:30:00.000+08:00",
    "eventTimeZoneOffset": "+08:00",
    "epcList": ["https://id.gs1.org/01/06901234567892/21/A1"],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "disposition": "in_transit",
    "readPoint": {"id": _SITE + "/254/DOCK1"},
    "bizLocation": {"id": _SITE},
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        # A location, action or offset equal to a bare term (or to a suffix of an expanded
        # IRI) is replaced by step 2 in one event and not in the next: the same value must
        # not come back from the cache with the other event's replacement.
        {"readPoint": {"id": "shipping"}},
        {"readPoint": {"id": "in_transit"}, "disposition": "active"},
        {"bizLocation": {"id": "BizStep-shipping"}},
        {"eventID": "https://ref.gs1.org/cbv/x-" + _SITE},
        {"eventID": "https://ref.gs1.org/cbv/x-OBSERVE"},
        {"eventID": "https://ref.gs1.org/cbv/x-+08:00"},
        {"eventID": "https://ref.gs1.org/cbv/x-2026-03-01T00:30:00.000+08:00"},
        {"recordTime": "https://gs1.org/voc/x/" + _SITE},
        {"bizStep": "receiving", "readPoint": {"id": "receiving"}},
        {"action": "shipping"},
        {"eventTimeZoneOffset": "in_transit"},
        {"eventTime": "2026-03-01T00:30:59.999Z"},
        {"eventTime": "2026-02-28T20:30:00.000-08:00"},
        {"eventTime": "2024-02-29T23:59:00.000-14:00"},
        {"eventTime": "2026-02-29T00:00:00.000Z"},
        {"eventTime": "9999-12-31T23:59:59.999-01:00"},
        {"eventTime": "0001-01-01T00:00:00.000+01:00"},
    ],
)
def test_memoised_parts_follow_the_replacement_map(change: dict[str, Any]) -> None:
    event = {**_MEMO_BASE, **change}
    plain = dict(_MEMO_BASE)
    # Either order, twice: whatever a cache holds from one event must not leak into another.
    for first, second in ((event, plain), (plain, event), (event, plain)):
        _agree(first)
        _agree(second)
    eventhash._named.cache_clear()
    eventhash._utc_minute.cache_clear()
    _agree(event)


class _Str(str):
    pass


_EPC_A = "https://id.gs1.org/01/06901234567892/21/A1"
_EPC_B = "https://id.gs1.org/00/069012340000000018"


@pytest.mark.parametrize(
    "epcs",
    [
        [_EPC_A],
        [_EPC_B, _EPC_A, _EPC_A],
        [_EPC_A + "\n" + _EPC_B],
        [_EPC_A, _EPC_B + "\n" + _EPC_A],
        [_EPC_A, _EPC_B + "\n"],
        [_EPC_A, _Str(_EPC_B)],
        [_EPC_A, "https://id.gs1.org/01/\u0660" + _EPC_A[23:]],
        [_EPC_A, " " + _EPC_B],
        [_EPC_A, "urn:epc:id:sgtin:6901234.056789.S1"],
        [_EPC_A, "shipping"],
        [_EPC_A, _EPC_B, None],
        [_EPC_A, _EPC_B, ["nested"]],
        [],
    ],
)
@pytest.mark.parametrize(
    "event_id",
    [
        None,
        "https://ref.gs1.org/cbv/x-" + _EPC_B,  # replaced, but canonicalised back to itself
        "https://ref.gs1.org/cbv/00/069012340000000018/x-" + _EPC_A,  # replaced for good
    ],
)
def test_whole_epc_lists_match_the_per_item_rules(epcs: list[Any], event_id: str | None) -> None:
    event = {**_MEMO_BASE, "epcList": epcs}
    if event_id is not None:  # step 2 then replaces an EPC wherever it stands alone
        event["eventID"] = event_id
    assert _agree(event) is not None or epcs[-1:] in ([None], [["nested"]])
    aggregation = {k: v for k, v in event.items() if k != "epcList"}
    _agree({**aggregation, "type": "AggregationEvent", "childEPCs": epcs})
