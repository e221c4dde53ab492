"""Identifier canonicalisation: the fast paths give exactly what the full parser gives.

``ledger.journey`` passes ids already in canonical Digital Link form through after a strict
regex and a (cached) check digit, reads its memo inline and tests plain dicts without the ABC
machinery. The definition is the full parser, :func:`ledger.identifiers.epc_to_canonical`,
applied member by member as below (``_reference_event``: the function as it was before these
shortcuts). Here, on generated and mutated ids and events, with fresh and shared memos: the
same canonical copy, the same memo afterwards, and the same error (type and message).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import journey
from ledger.errors import CodeError, CodeFormatError
from ledger.identifiers import epc_to_canonical, gs1_check_digit

DIFFERENTIAL = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# The definition
# ---------------------------------------------------------------------------------------------


def _reference_id(value: str, cache: dict[str, str]) -> str:
    got = cache.get(value)
    if got is None:
        got = epc_to_canonical(value)
        cache[value] = got
    return got


def _reference_location(value: str, cache: dict[str, str]) -> str:
    try:
        return _reference_id(value, cache)
    except CodeError:
        cache[value] = value
        return value


def _reference_event(event: Mapping[str, Any], cache: dict[str, str]) -> dict[str, Any]:
    out = dict(event)
    parent = event.get("parentID")
    if isinstance(parent, str):
        out["parentID"] = _reference_id(parent, cache)
    for key in journey.ID_LISTS:
        value = event.get(key)
        if isinstance(value, list):
            out[key] = [_reference_id(v, cache) if isinstance(v, str) else v for v in value]
    for key in journey.CLASS_LISTS:
        value = event.get(key)
        if isinstance(value, list):
            out[key] = [
                {**q, "epcClass": _reference_id(q["epcClass"], cache)}
                if isinstance(q, Mapping) and isinstance(q.get("epcClass"), str)
                else q
                for q in value
            ]
    for key in ("readPoint", "bizLocation"):
        value = event.get(key)
        if isinstance(value, Mapping) and isinstance(value.get("id"), str):
            out[key] = {**value, "id": _reference_location(value["id"], cache)}
    for list_key, item_key in journey.SOURCE_DEST_LISTS:
        value = event.get(list_key)
        if isinstance(value, list):
            out[list_key] = [
                {**sd, item_key: _reference_location(sd[item_key], cache)}
                if isinstance(sd, Mapping) and isinstance(sd.get(item_key), str)
                else sd
                for sd in value
            ]
    return out


def _outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except CodeError as exc:
        return ("error", type(exc), str(exc))


# ---------------------------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------------------------


def _check(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str(-total % 10)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)


SAFE = "ABCXYZabcxyz0123456789._-"
text_parts = st.one_of(
    st.text(st.sampled_from(SAFE), min_size=1, max_size=20),
    st.text(st.sampled_from(SAFE + "~!%'()*+,;:=/?#&@ 中"), min_size=0, max_size=22),
    st.sampled_from([".", "..", "-", "A" * 20, "A" * 21, "%41", "a%2Fb", "x~y", "0"]),
)
DL = "https://id.gs1.org"


@st.composite
def identifier(draw: st.DrawFn) -> str:
    gtin = _check(draw(_digits(13)))
    gln = _check(draw(_digits(12)))
    sscc = _check(draw(_digits(17)))
    part = draw(text_parts)
    wrong = str((int(gtin[-1]) + 1) % 10)
    return draw(
        st.sampled_from(
            [
                f"{DL}/01/{gtin}/21/{part}",
                f"{DL}/01/{gtin}/10/{part}",
                f"{DL}/01/{gtin}",
                f"{DL}/01/{gtin[:-1]}{wrong}/21/{part}",
                f"{DL}/01/{gtin[1:]}/21/{part}",
                f"{DL}/01/{gtin}/10/{part}/21/{part}",
                f"{DL}/01/{gtin}/21/{part}?17=270630",
                f"{DL}/01/{gtin}/21/{part}/",
                f"{DL}/00/{sscc}",
                f"{DL}/00/{sscc[:-1]}",
                f"{DL}/414/{gln}",
                f"{DL}/414/{gln}/254/{part}",
                f"{DL}/417/{gln}",
                f"{DL}/417/{gln}/254/{part}",
                f"{DL}/8004/{gln[:7]}{part}",
                f"http://id.gs1.org/01/{gtin}/21/{part}",
                f"https://ID.GS1.ORG/01/{gtin}/21/{part}",
                f"https://scan.example.cn/01/{gtin}/21/{part}",
                f"urn:epc:id:sgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.{part}",
                f"urn:epc:id:sscc:{sscc[1:8]}.{sscc[0]}{sscc[8:17]}",
                f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0",
                f"urn:epc:class:lgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.{part}",
                "urn:yima:nmpa:81234560000000000012",
                "urn:yima:site:hz-01",
                f"{DL}/01/\u0660{gtin[1:]}/21/{part}",
                f" {DL}/01/{gtin}/21/{part}",
                part,
            ]
        )
    )


@DIFFERENTIAL
@given(value=identifier())
def test_canonical_id_equals_the_full_parser(value: str) -> None:
    expected = _outcome(epc_to_canonical, value)
    assert _outcome(journey.canonical_id, value, {}) == expected
    if journey._fast_canonical(value):
        assert expected == ("ok", value)
    # Locations: the same, or the value itself where the full parser refuses it.
    want = expected[1] if expected[0] == "ok" else value
    assert journey.canonical_location(value, {}) == want


@settings(DIFFERENTIAL, max_examples=1000)
@given(value=st.from_regex(journey._CANONICAL_FAST, fullmatch=True))
def test_every_string_the_fast_regex_takes(value: str) -> None:
    # Mostly wrong check digits (the fast path must refuse those) and odd serial characters.
    expected = _outcome(epc_to_canonical, value)
    assert _outcome(journey.canonical_id, value, {}) == expected
    assert journey._fast_canonical(value) == (expected == ("ok", value))


def test_fast_path_is_taken_for_every_canonical_kind() -> None:
    gtin, gln, sscc = _check("0950600013435"), _check("950600013430"), _check("1" * 17)
    for value in (
        f"{DL}/01/{gtin}/21/S.1-_",
        f"{DL}/01/{gtin}/10/L1",
        f"{DL}/01/{gtin}",
        f"{DL}/00/{sscc}",
        f"{DL}/414/{gln}",
        f"{DL}/414/{gln}/254/DOCK1",
        f"{DL}/417/{gln}",
    ):
        assert journey._fast_canonical(value), value
        assert epc_to_canonical(value) == value


@settings(max_examples=1000, deadline=None)
@given(body=st.text(max_size=25))
def test_check_digit_matches_the_plain_sum(body: str) -> None:
    try:
        got = gs1_check_digit(body)
    except CodeFormatError as exc:
        assert not (body and body.isascii() and body.isdigit()), exc
        return
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    assert got == (10 - total % 10) % 10


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


class _Str(str):
    """A str subclass: canonicalised like any string (isinstance), never mistaken for junk."""


junk = st.one_of(st.none(), st.integers(), st.just(["x"]), st.just({"id": 1}), st.just("junk"))
members = st.one_of(identifier(), identifier(), identifier().map(_Str), junk)


@st.composite
def journey_event(draw: st.DrawFn) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": draw(st.sampled_from(["ObjectEvent", "AggregationEvent"]))}
    if draw(st.booleans()):
        ev["parentID"] = draw(members)
    for key in journey.ID_LISTS:
        if draw(st.integers(0, 2)) == 0:
            ev[key] = draw(st.one_of(st.lists(members, max_size=4), junk))
    for key in journey.CLASS_LISTS:
        if draw(st.integers(0, 3)) == 0:
            element = st.one_of(
                st.fixed_dictionaries({"epcClass": members}, optional={"quantity": st.integers()}),
                st.fixed_dictionaries({"quantity": st.integers()}),
                st.just(MappingProxyType({"epcClass": f"{DL}/01/{_check('0' * 13)}/10/L1"})),
                junk,
            )
            ev[key] = draw(st.one_of(st.lists(element, max_size=3), junk))
    for key in ("readPoint", "bizLocation"):
        if draw(st.booleans()):
            ev[key] = draw(
                st.one_of(
                    st.fixed_dictionaries({"id": members}, optional={"yima:zone": st.just("A")}),
                    st.builds(lambda v: MappingProxyType({"id": v}), members),
                    junk,
                )
            )
    for list_key, item_key in journey.SOURCE_DEST_LISTS:
        if draw(st.integers(0, 2)) == 0:
            element = st.one_of(
                st.fixed_dictionaries({"type": st.just("location"), item_key: members}),
                st.fixed_dictionaries({"type": st.just("location")}),
                junk,
            )
            ev[list_key] = draw(st.one_of(st.lists(element, max_size=3), junk))
    if draw(st.booleans()):
        ev["bizStep"] = "shipping"
    return ev


def _run(events: list[dict[str, Any]], shared: bool) -> None:
    ours: dict[str, str] = {}
    theirs: dict[str, str] = {}
    for ev in events:
        snapshot = repr(ev)
        a = _outcome(journey.canonical_event, ev, ours if shared else {})
        b = _outcome(_reference_event, ev, theirs if shared else {})
        assert a == b, ev
        assert repr(ev) == snapshot  # the event itself is never changed
        if a[0] == "ok":
            assert type(a[1]) is dict and a[1] is not ev
        assert ours == theirs


@DIFFERENTIAL
@given(events=st.lists(journey_event(), min_size=1, max_size=6), shared=st.booleans())
def test_canonical_event_equals_the_definition(events: list[dict[str, Any]], shared: bool) -> None:
    _run(events, shared)


def test_memo_semantics_are_kept() -> None:
    # A non-GS1 location is memoised as written; with a shared memo the same string as an
    # object id then passes too (the service has always behaved so; the replay must match).
    events = [
        {"type": "ObjectEvent", "readPoint": {"id": "urn:x:1"}},
        {"type": "ObjectEvent", "epcList": ["urn:x:1"]},
        {"type": "ObjectEvent", "epcList": ["not a code"]},
    ]
    _run(events, shared=True)
    _run(events, shared=False)
    with pytest.raises(CodeError):
        journey.canonical_event(events[1])
    assert journey.canonical_event(events[0], {}) == events[0]


def test_canonical_event_without_a_memo() -> None:
    gtin = _check("0950600013435")
    ev = {
        "type": "ObjectEvent",
        "epcList": [f"urn:epc:id:sgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.S1"],
        "bizLocation": {"id": f"urn:epc:id:sgln:{'9506000134'[:7]}.{'95060001343'[7:12]}.0"},
    }
    assert journey.canonical_event(ev) == _reference_event(ev, {})
