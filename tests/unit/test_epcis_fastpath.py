"""The EPCIS validator's fast path gives exactly the general path's verdict, or steps aside.

``ledger.epcis._fast_event`` (SPEC §2.4a) checks the usual event shapes with cheaper tests and
builds the model through the same builder; ``_validate_general`` (SPEC §2.4 steps 1-14) is the
definition, proven against the GS1 schema in ``test_epcis.py``. Here, on generated events, on
mutations of them near every boundary the fast path draws, on every GS1 example event and on
the service's own workload:

* whenever the fast path accepts, the general path accepts too and builds an equal model;
* ``validate_event`` and ``check_event`` give the general path's answer: the same model, or the
  same error type, message, path and reason;
* the fast path is really taken for builder-made and benchmark events.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import epcis
from ledger.epcis import check_event, validate_event

DIFFERENTIAL = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PATH = "events[7]"


def _outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", fn())
    except Exception as exc:  # the same Python error counts too (e.g. a non-str key)
        return (
            "error",
            type(exc),
            str(exc),
            getattr(exc, "path", None),
            getattr(exc, "reason", None),
        )


def _agree(event: Any, prefixes: Mapping[str, str] | None = None) -> bool:
    """Assert that every entry point gives the general path's answer; True if fast was taken."""
    in_force = epcis._DEFAULT_PREFIXES if prefixes is None else prefixes
    general = _outcome(lambda: epcis._validate_general(event, PATH, prefixes))
    fast = epcis._fast_event(event, in_force, True)
    if fast is not False:
        assert general[0] == "ok", (
            f"the fast path accepted an event the general path refuses: {general}"
        )
        assert type(fast) is type(general[1])
        assert fast == general[1]
        assert fast.raw is event
    # The check-only run takes the same decision.
    assert epcis._fast_event(event, in_force, False) is (fast is not False)
    assert _outcome(lambda: validate_event(event, PATH, prefixes=prefixes)) == general
    checked = _outcome(lambda: check_event(event, PATH, prefixes=prefixes))
    assert checked == (("ok", None) if general[0] == "ok" else general)
    return fast is not False


# ---------------------------------------------------------------------------------------------
# Generated events: every type, every member the fast path handles, in several spellings
# ---------------------------------------------------------------------------------------------


def _check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)


serials = st.text(st.sampled_from("ABCXYZabc0123456789-_.~"), min_size=1, max_size=8)


@st.composite
def epc(draw: st.DrawFn) -> str:
    body = draw(_digits(13))
    gtin = body + _check_digit(body)
    return draw(
        st.sampled_from(
            [
                f"https://id.gs1.org/01/{gtin}/21/{draw(serials)}",
                f"https://id.gs1.org/00/{draw(_digits(17))}{_check_digit('0')}",
                f"urn:epc:id:sgtin:{body[1:8]}.{body[0]}{body[8:]}.{draw(serials)}",
                f"https://scan.example.cn/01/{gtin}/21/{draw(serials)}?17=270630",
                "urn:yima:nmpa:81234560000000000012",
            ]
        )
    )


@st.composite
def location(draw: st.DrawFn) -> str:
    gln = draw(_digits(12))
    gln += _check_digit(gln)
    return draw(
        st.sampled_from(
            [
                f"https://id.gs1.org/414/{gln}",
                f"https://id.gs1.org/414/{gln}/254/{draw(serials)}",
                f"https://id.gs1.org/417/{gln}",
                f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0",
                "urn:yima:site:hz-01",
            ]
        )
    )


@st.composite
def timestamp(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([0, 1, 1900, 2000, 2024, 2025, 2026, 9999]))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, calendar.monthrange(year or 2000, month)[1]))
    hh, mm, ss = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 60))
    frac = draw(st.sampled_from(["", ".000", ".5", ".123456789"]))
    zone = draw(st.sampled_from(["Z", "+08:00", "-06:00", "+00:00", "+23:59", "-14:00"]))
    return f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}{frac}{zone}"


def cbv(kind: str, terms: list[str]) -> st.SearchStrategy[str]:
    web, urn = epcis.web_prefix(kind), epcis.urn_prefix(kind)  # type: ignore[arg-type]
    return st.sampled_from(terms).flatmap(
        lambda t: st.sampled_from([t, t, t, web + t, urn + t, "https://vocab.example.com/" + t])
    )


biz_steps = cbv("bizStep", ["shipping", "receiving", "commissioning", "packing", "dispensing"])
dispositions = cbv("disposition", ["in_transit", "active", "recalled", "dispensed", "in_progress"])
btts = cbv("bizTransactionType", ["po", "inv", "desadv"])
sdts = cbv("sourceDestType", ["owning_party", "possessing_party", "location"])
quantities = st.lists(
    st.fixed_dictionaries(
        {"epcClass": location()},
        optional={
            "quantity": st.one_of(st.integers(0, 500), st.floats(0, 500)),
            "uom": st.sampled_from(["KGM", "LTR", "EA"]),
        },
    ),
    max_size=2,
)


@st.composite
def usual_event(draw: st.DrawFn) -> dict[str, Any]:
    etype = draw(st.sampled_from(list(epcis.EVENT_TYPES)))
    ev: dict[str, Any] = {
        "type": etype,
        "eventTime": draw(timestamp()),
        "eventTimeZoneOffset": draw(st.sampled_from(["+08:00", "-06:00", "+00:00", "+14:00"])),
    }
    epcs = st.lists(epc(), max_size=4, unique=True)
    if etype == "TransformationEvent":
        for key, strategy in (
            ("inputEPCList", epcs),
            ("outputEPCList", epcs),
            ("inputQuantityList", quantities),
            ("outputQuantityList", quantities),
        ):
            if draw(st.booleans()):
                ev[key] = draw(strategy)
        if draw(st.booleans()):
            ev["transformationID"] = f"urn:yima:tcm:process:{draw(serials)}"
    else:
        ev["action"] = draw(st.sampled_from(["ADD", "OBSERVE", "DELETE"]))
        if etype in ("ObjectEvent", "TransactionEvent"):
            if draw(st.integers(0, 4)):
                ev["epcList"] = draw(epcs)
            if draw(st.booleans()):
                ev["quantityList"] = draw(quantities)
            if etype == "TransactionEvent" and draw(st.booleans()):
                ev["parentID"] = draw(epc())
        else:
            if etype == "AssociationEvent" or draw(st.booleans()):
                ev["parentID"] = draw(epc())
            if draw(st.integers(0, 4)):
                ev["childEPCs"] = draw(st.lists(epc(), max_size=4))
            if draw(st.booleans()):
                ev["childQuantityList"] = draw(quantities)
    if draw(st.booleans()):
        ev["bizStep"] = draw(biz_steps)
    if draw(st.booleans()):
        ev["disposition"] = draw(dispositions)
    if draw(st.integers(0, 3)) == 0:
        pd: dict[str, Any] = {}
        for key in ("set", "unset"):
            if draw(st.booleans()):
                pd[key] = draw(st.lists(dispositions, min_size=1, max_size=2))
        ev["persistentDisposition"] = pd
    for key in ("readPoint", "bizLocation"):
        if draw(st.booleans()):
            ev[key] = {"id": draw(location())}
    if etype == "TransactionEvent" or draw(st.integers(0, 3)) == 0:
        ev["bizTransactionList"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"bizTransaction": st.sampled_from(["urn:yima:po:1", "http://t.cn/po/2"])},
                    optional={"type": btts},
                ),
                max_size=2,
            )
        )
    for key, member in (("sourceList", "source"), ("destinationList", "destination")):
        if draw(st.integers(0, 2)) == 0:
            ev[key] = draw(
                st.lists(st.fixed_dictionaries({"type": sdts, member: location()}), max_size=2)
            )
    if draw(st.integers(0, 3)) == 0:
        ev["ilmd"] = draw(
            st.dictionaries(
                st.sampled_from(["cbvmda:lotNumber", "yima:origin", "urn:x:y", "http://e.com/k"]),
                st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2)),
                max_size=2,
            )
        )
    if draw(st.integers(0, 3)) == 0:
        ev.update(
            draw(
                st.dictionaries(
                    st.sampled_from(["yima:administered", "cbvmda:x", "http://e.com/f", "urn:a:b"]),
                    st.one_of(st.booleans(), st.text(max_size=5), st.none()),
                    max_size=2,
                )
            )
        )
    if draw(st.booleans()):
        ev["eventID"] = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
    if draw(st.booleans()):
        ev["recordTime"] = draw(timestamp())
    return ev


class _Str(str):
    pass


# Changes near each boundary the fast path draws: each one is either still valid (and must give
# the same model) or invalid (and must give the general path's error).
MUTATIONS: list[tuple[str, Any]] = [
    # step 1-2: type, members, extension keys
    ("type", "FooEvent"),
    ("type", ["ObjectEvent"]),
    ("type", None),
    ("@context", [{"ex": "https://ns.example.com/"}]),
    ("ex:field", 1),
    ("id", "_:event1"),
    ("id", "https://example.com/e/1"),
    ("unknownField", "x"),
    ("undeclared:x", 1),
    ("urn:x:y", 1),
    ("http://e.com/y", 2),
    ("http://e.com/%41", 2),
    ("yima:x", {"nested": [1]}),
    ("certificationInfo", "https://cert.example.com/qc/1"),
    ("certificationInfo", ["https://cert.example.com/qc/1", "not a uri"]),
    ("errorDeclaration", {"declarationTime": "2026-01-01T00:00:00Z", "reason": "incorrect_data"}),
    ("errorDeclaration", {"reason": "incorrect_data"}),
    ("sensorElementList", [{"sensorReport": [{"type": "Temperature", "value": 4.5}]}]),
    ("sensorElementList", []),
    # steps 3-4: required members, times, offset, eventID
    ("eventTime", None),
    ("eventTime", "2026-02-29T00:00:00Z"),
    ("eventTime", "2024-02-29T00:00:00Z"),
    ("eventTime", "1900-02-29T00:00:00Z"),
    ("eventTime", "2000-02-29T00:00:00Z"),
    ("eventTime", "0000-02-29T00:00:00Z"),
    ("eventTime", "2026-04-31T00:00:00Z"),
    ("eventTime", "2026-13-01T00:00:00Z"),
    ("eventTime", "2026-00-01T00:00:00Z"),
    ("eventTime", "2026-01-00T00:00:00Z"),
    ("eventTime", "2026-01-01T24:00:00Z"),
    ("eventTime", "2026-01-01T23:60:00Z"),
    ("eventTime", "2026-01-01T23:59:60Z"),
    ("eventTime", "2026-01-01T23:59:61Z"),
    ("eventTime", "2026-01-01t00:00:00z"),
    ("eventTime", "2026-01-01T00:00:00+24:00"),
    ("eventTime", "2026-01-01T00:00:00+23:60"),
    ("eventTime", "2026-01-01T00:00:00+08"),
    ("eventTime", "2026-01-01T00:00:00"),
    ("eventTime", "2026-01-01T00:00:00.Z"),
    ("eventTime", "2026-01-01 00:00:00Z"),
    ("eventTime", "\u0662\u0660\u0662\u0666-01-01T00:00:00Z"),
    ("eventTime", " 2026-01-01T00:00:00Z"),
    ("eventTimeZoneOffset", "+14:00"),
    ("eventTimeZoneOffset", "+14:01"),
    ("eventTimeZoneOffset", "-13:59"),
    ("eventTimeZoneOffset", "+15:00"),
    ("eventTimeZoneOffset", "+8:00"),
    ("eventTimeZoneOffset", "Z"),
    ("eventTimeZoneOffset", None),
    ("eventTimeZoneOffset", ["+08:00"]),
    ("recordTime", "2026-01-01T00:00:00Z"),
    ("recordTime", "yesterday"),
    ("recordTime", None),
    ("eventID", "urn:uuid:4c3b0b9b-1f6a-4b4e-9d5a-0f6f2b1a2c3d"),
    ("eventID", "ni:///sha-256;%41?ver=CBV2.0"),
    ("eventID", "not a uri"),
    ("eventID", None),
    # step 5: action
    ("action", "add"),
    ("action", "ADD "),
    ("action", None),
    ("action", ["ADD"]),
    ("action", "DELETE"),
    # step 6: identifiers
    ("epcList", []),
    ("epcList", ["https://id.gs1.org/01/09506000134352/21/A"] * 2),
    ("epcList", ["https://id.gs1.org/01/09506000134352/21/A%20B"]),
    ("epcList", ["not a uri"]),
    ("epcList", [None]),
    ("epcList", [["https://id.gs1.org/00/106141411234567897"]]),
    ("epcList", "https://id.gs1.org/00/106141411234567897"),
    ("epcList", ["urn:x:1\nurn:x:2"]),
    ("epcList", ["urn:x:1", "urn:x:2\nurn:x:3"]),
    ("epcList", ["urn:x:1", "urn:x:2\n"]),
    ("epcList", ["urn:x:1", _Str("urn:x:2")]),
    ("epcList", ["urn:x:1", "urn:x:2", "not a uri"]),
    ("epcList", ["urn:x:1", "urn:x:2", 3]),
    ("childEPCs", ["urn:x:1", "urn:x:1", "urn:x:2"]),
    ("childEPCs", ["urn:x:1", "urn:x:2\nurn:x:3"]),
    ("childEPCs", ["https://id.gs1.org/01/09506000134352/21/A"] * 2),
    ("childEPCs", []),
    ("childEPCs", [5]),
    ("parentID", "https://id.gs1.org/00/106141411234567897"),
    ("parentID", "not a uri"),
    ("parentID", None),
    ("inputEPCList", ["urn:x:1", "urn:x:1"]),
    ("outputEPCList", ["urn:x:2"]),
    ("transformationID", "urn:x:t"),
    ("transformationID", 5),
    # step 7: quantity lists
    ("quantityList", []),
    ("quantityList", [{"epcClass": "urn:x:c", "quantity": 1.5, "uom": "KGM"}]),
    ("quantityList", [{"epcClass": "urn:x:c", "quantity": True}]),
    ("quantityList", [{"epcClass": "urn:x:c", "quantity": float("nan")}]),
    ("quantityList", [{"epcClass": "urn:x:c", "quantity": "1"}]),
    ("quantityList", [{"epcClass": "urn:x:c", "uom": "kg"}]),
    ("quantityList", [{"epcClass": "urn:x:c", "uom": "KGMS"}]),
    ("quantityList", [{"epcClass": "urn:x:c", "quantity": None}]),
    ("quantityList", [{"quantity": 1}]),
    ("quantityList", [{"epcClass": "urn:x:c", "extra": 1}]),
    ("quantityList", ["urn:x:c"]),
    ("childQuantityList", [{"epcClass": "urn:x:c", "quantity": 2}]),
    ("inputQuantityList", [{"epcClass": "urn:x:c", "quantity": 2}]),
    # step 9: vocabularies and persistentDisposition
    ("bizStep", "shipping"),
    ("bizStep", "Shipping"),
    ("bizStep", "urn:epcglobal:cbv:bizstep:shipping"),
    ("bizStep", "urn:epcglobal:cbv:bizstep:flying"),
    ("bizStep", "https://ref.gs1.org/cbv/BizStep-shipping"),
    ("bizStep", "https://ref.gs1.org/cbv/BizStep-flying"),
    ("bizStep", "https://ref.gs1.org/cbv/Disp-active"),
    ("bizStep", "https://vocab.example.com/steps/shipping"),
    ("bizStep", "http://ns.gs1.org/cbv/x"),
    ("bizStep", ["shipping"]),
    ("bizStep", None),
    ("disposition", "recalled"),
    ("disposition", "active "),
    ("persistentDisposition", {"set": ["recalled"]}),
    ("persistentDisposition", {"set": ["recalled", "recalled"]}),
    ("persistentDisposition", {"set": ["recalled", "https://ref.gs1.org/cbv/Disp-recalled"]}),
    ("persistentDisposition", {"set": ["recalled"], "unset": ["active"]}),
    ("persistentDisposition", {"unset": []}),
    ("persistentDisposition", {}),
    ("persistentDisposition", {"set": ["recalled"], "other": []}),
    ("persistentDisposition", {"set": ["flying"]}),
    ("persistentDisposition", {"set": "recalled"}),
    ("persistentDisposition", {"set": [None]}),
    # step 10: locations
    ("readPoint", {"id": "https://id.gs1.org/414/9506000134307"}),
    ("readPoint", {"id": "https://id.gs1.org/414/9506000134307", "yima:zone": "A"}),
    ("readPoint", {"id": "https://id.gs1.org/414/9506000134307", "zone": "A"}),
    ("readPoint", {}),
    ("readPoint", {"id": None}),
    ("readPoint", {"id": "not a uri"}),
    ("readPoint", "https://id.gs1.org/414/9506000134307"),
    ("bizLocation", {"id": ["https://id.gs1.org/414/9506000134307"]}),
    # step 11: transactions, sources, destinations
    ("bizTransactionList", []),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1"}]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "type": "po"}]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "type": "https://e.com/t"}]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "type": "purchase"}]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "extra": 1}]),
    ("bizTransactionList", [{"type": "po"}]),
    ("bizTransactionList", [{"bizTransaction": "urn:yima:po:1", "type": None}]),
    ("bizTransactionList", {"bizTransaction": "urn:yima:po:1"}),
    ("sourceList", [{"type": "location", "source": "urn:x:s"}]),
    ("sourceList", [{"source": "urn:x:s"}]),
    ("sourceList", [{"type": "location"}]),
    ("sourceList", [{"type": "location", "source": "urn:x:s", "x": 1}]),
    ("sourceList", [{"type": "nowhere", "source": "urn:x:s"}]),
    ("destinationList", [{"type": "owning_party", "destination": "not a uri"}]),
    ("destinationList", []),
    # step 13: ilmd
    ("ilmd", {"cbvmda:lotNumber": "L1"}),
    ("ilmd", {"lotNumber": "L1"}),
    ("ilmd", {"undeclared:lot": "L1"}),
    ("ilmd", {}),
    ("ilmd", []),
    ("ilmd", {"yima:x": {"nested": True}}),
]


@DIFFERENTIAL
@given(event=usual_event())
def test_fast_path_equals_general_on_generated_events(event: dict[str, Any]) -> None:
    _agree(event)


@DIFFERENTIAL
@given(
    event=usual_event(),
    changes=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
    drop=st.sampled_from(
        [None, "eventTime", "eventTimeZoneOffset", "action", "type", "parentID", "epcList"]
    ),
)
def test_fast_path_equals_general_on_mutated_events(
    event: dict[str, Any], changes: list[tuple[str, Any]], drop: str | None
) -> None:
    for key, value in changes:
        event[key] = value
    if drop is not None:
        event.pop(drop, None)
    _agree(event)


def _base_events() -> list[dict[str, Any]]:
    """One rich, valid event of each type (each takes the fast path)."""
    common = {
        "eventTime": "2024-02-29T23:59:60.5+08:00",
        "eventTimeZoneOffset": "+08:00",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "https://id.gs1.org/414/9506000134307/254/DOCK1"},
        "bizLocation": {"id": "https://id.gs1.org/414/9506000134307"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:yima:po:1"}],
        "sourceList": [{"type": "owning_party", "source": "https://id.gs1.org/417/9506000134307"}],
        "destinationList": [{"type": "location", "destination": "urn:yima:site:hz-01"}],
        "persistentDisposition": {"set": ["recalled"], "unset": ["active"]},
        "eventID": "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0",
        "recordTime": "2026-01-01T00:00:00Z",
        "yima:administered": True,
    }
    epcs = ["https://id.gs1.org/01/09506000134352/21/A", "urn:epc:id:sscc:0614141.1234567890"]
    qty = [
        {"epcClass": "https://id.gs1.org/01/09506000134352/10/L1", "quantity": 2.5, "uom": "KGM"}
    ]
    return [
        {"type": "ObjectEvent", "action": "ADD", "epcList": epcs, "quantityList": qty}
        | common
        | {"ilmd": {"cbvmda:lotNumber": "L1"}},
        {"type": "TransactionEvent", "action": "OBSERVE", "epcList": epcs, "quantityList": qty}
        | common
        | {"parentID": "urn:x:parent"},
        {
            "type": "AggregationEvent",
            "action": "ADD",
            "parentID": "https://id.gs1.org/00/106141411234567897",
            "childEPCs": epcs,
            "childQuantityList": qty,
        }
        | common,
        {
            "type": "AssociationEvent",
            "action": "OBSERVE",
            "parentID": "https://id.gs1.org/8004/0614141LOGGER1",
            "childEPCs": epcs,
        }
        | common,
        {
            "type": "TransformationEvent",
            "inputEPCList": epcs,
            "outputEPCList": ["urn:x:out"],
            "inputQuantityList": qty,
            "outputQuantityList": qty,
            "transformationID": "urn:yima:tcm:process:1",
            "ilmd": {"cbvmda:lotNumber": "OUT1"},
        }
        | common,
    ]


@pytest.mark.parametrize("base", _base_events(), ids=lambda ev: ev["type"])
def test_every_single_mutation_of_a_rich_event(base: dict[str, Any]) -> None:
    assert _agree(base)
    for key, value in MUTATIONS:
        _agree({**base, key: value})
    for key in base:
        _agree({k: v for k, v in base.items() if k != key})


@pytest.mark.parametrize(
    "prefixes",
    [None, {}, {"ex": "https://ns.example.com/"}, {"yima": "https://yima.example/ns/"}],
    ids=["default", "none", "ex-only", "yima-only"],
)
@settings(DIFFERENTIAL, max_examples=150)
@given(event=usual_event())
def test_fast_path_honours_the_prefixes_in_force(
    prefixes: dict[str, str] | None, event: dict[str, Any]
) -> None:
    event["ex:note"] = "x"
    _agree(event, prefixes)


@pytest.mark.parametrize(
    "event",
    [
        # not a plain dict: the general path decides (and accepts a mapping)
        MappingProxyType(
            {
                "type": "ObjectEvent",
                "eventTime": "2026-01-01T00:00:00Z",
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "epcList": [],
            }
        ),
        {
            "type": _Str("ObjectEvent"),
            "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "epcList": [],
        },
        {
            "type": "ObjectEvent",
            "eventTime": _Str("2026-01-01T00:00:00Z"),
            "eventTimeZoneOffset": _Str("+00:00"),
            "action": _Str("OBSERVE"),
            "epcList": [_Str("urn:x:1")],
        },
        {
            "type": "ObjectEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "epcList": [],
            5: "a non-string key",
        },
        {
            "type": "TransformationEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "inputEPCList": ["urn:x:1"],
            "outputEPCList": ["urn:x:2"],
        },
        {
            "type": "ObjectEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "quantityList": [{"epcClass": "urn:x:c"}],
            "ilmd": {"cbvmda:lotNumber": "L1"},
        },
        "not an event",
        None,
        [],
    ],
)
def test_odd_inputs_take_the_general_path(event: Any) -> None:
    _agree(event)


# ---------------------------------------------------------------------------------------------
# GS1 example events, builder events, the benchmark workload
# ---------------------------------------------------------------------------------------------


def test_every_gs1_example_event(vectors_dir: Path) -> None:
    folder = vectors_dir / "epcis-examples" / "documents"
    if not folder.is_dir():
        pytest.skip(f"GS1 EPCIS examples not found under {folder}")
    events = 0
    for file in sorted(folder.rglob("*")):
        if file.suffix not in (".json", ".jsonld") or not file.is_file():
            continue
        doc = json.loads(file.read_text("utf-8"))
        body = doc.get("epcisBody", {})
        listed = body.get("eventList") or body.get("queryResults", {}).get("resultsBody", {}).get(
            "eventList", []
        )
        prefixes, _ = epcis._context_prefixes(doc.get("@context", []), "@context")
        for ev in listed:
            events += 1
            _agree(ev, prefixes)
            _agree(ev)
    assert events > 30


def _builder_events() -> list[dict[str, Any]]:
    gtin, site = "https://id.gs1.org/01/09506000134352", "https://id.gs1.org/414/9506000134307"
    sscc = "https://id.gs1.org/00/195060001343520004"
    return [
        epcis.object_event(
            epcs=[f"{gtin}/21/S1", f"{gtin}/21/S2"],
            action="ADD",
            biz_step="commissioning",
            disposition="active",
            event_time="2026-01-31T08:00:00.000+08:00",
            tz_offset="+08:00",
            read_point=site + "/254/LINE1",
            biz_location=site,
            ilmd={"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2028-12-31"},
        ),
        epcis.object_event(
            epcs=[sscc],
            action="OBSERVE",
            biz_step="shipping",
            disposition="in_transit",
            event_time="2026-01-31T09:00:00.000+08:00",
            tz_offset="+08:00",
            read_point=site,
            biz_location=site,
            biz_transactions=[("po", "urn:yima:po:2026-0001")],
            sources=[("owning_party", "https://id.gs1.org/417/9506000134307")],
            destinations=[("location", "https://id.gs1.org/414/6901234000004")],
            extensions={"yima:administered": True},
        ),
        epcis.object_event(
            epcs=[],
            action="OBSERVE",
            biz_step="holding",
            disposition="recalled",
            event_time="2026-01-31T11:00:00Z",
            tz_offset="+00:00",
            quantities=[(f"{gtin}/10/L1", 10)],
            persistent_disposition={"set": ["recalled"]},
        ),
        epcis.aggregation_event(
            parent=sscc,
            children=[f"{gtin}/21/S1", f"{gtin}/21/S2"],
            action="ADD",
            biz_step="packing",
            event_time="2026-01-31T08:30:00.000+08:00",
            tz_offset="+08:00",
            read_point=site,
        ),
        epcis.transformation_event(
            inputs_quantities=[(f"{gtin}/10/RAW1", 12.5, "KGM")],
            outputs_quantities=[(f"{gtin}/10/OUT1", 10, "KGM")],
            transformation_id="urn:yima:tcm:process:1",
            biz_step="commissioning",
            event_time="2026-01-31T10:00:00.000+08:00",
            tz_offset="+08:00",
            ilmd={"cbvmda:lotNumber": "OUT1"},
        ),
    ]


def test_builder_events_take_the_fast_path() -> None:
    for ev in _builder_events():
        assert _agree(ev), ev


def test_the_benchmark_workload_takes_the_fast_path() -> None:
    from fixtures import generate

    steps = generate.supply_chain(events=120, seed=3, block_cases=4)
    assert all(_agree(step.event) for step in steps)
