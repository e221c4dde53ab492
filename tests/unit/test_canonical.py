"""RFC 8785 canonical JSON: the fast path must give exactly the reference bytes (SPEC §4.1)."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical
from ledger.canonical import (
    MAX_DEPTH,
    canonical_json,
    canonical_json_reference,
    canonical_json_stable,
    is_fast_path_safe,
)
from ledger.errors import CanonicalizationError, EncodingError

needs_orjson = pytest.mark.skipif(not canonical.HAVE_FAST_PATH, reason="orjson not installed")

# Strings that stress escaping and key order: every C0 control, DEL, C1, "/", U+2028/2029,
# BOM and non-characters, CJK, and characters outside the BMP (emoji, CJK Ext B).
_SPECIAL = "".join(chr(i) for i in range(0x20)) + '"\\/\x7f\x80\x9f\u2028\u2029\ufeff\ufffe\uffff'
_ALPHABET = st.sampled_from(
    list(_SPECIAL) + list("azAZ09 é中文药品疫苗黄芪\ue000\uff21") + ["😀", "𠀀", "\U0010ffff"]
)
_text = st.text(alphabet=_ALPHABET, max_size=12) | st.text(max_size=8)
_ints = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.sampled_from(
    [0, -1, 2**53 - 1, -(2**53) + 1, 2**31, 2**32 + 1]
)
_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 0.1, 123456789.125]
)
_scalars = st.none() | st.booleans() | _ints | _floats | _text
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=25,
)
_int_json = st.recursive(  # no floats: these must all take the fast path (BMP keys)
    st.none() | st.booleans() | _ints | _text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(alphabet=st.characters(max_codepoint=0xFFFF), max_size=6), children
        )
    ),
    max_leaves=25,
)


class _RefError(Exception):
    pass


def _ref(value: Any) -> bytes:
    # rfc8785 leaks UnicodeEncodeError for a lone surrogate in a key; canonical_json wraps it.
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as e:
        raise _RefError(str(e)) from e


@given(_json)
@settings(max_examples=600, deadline=None)
def test_differential_against_rfc8785(value: Any) -> None:
    try:
        expected = _ref(value)
    except _RefError:
        with pytest.raises(CanonicalizationError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@needs_orjson
@given(_int_json)
@settings(max_examples=400, deadline=None)
def test_fast_path_is_taken_and_identical(value: Any) -> None:
    try:
        expected = _ref(value)
    except _RefError:  # lone surrogates in generated text
        with pytest.raises(CanonicalizationError):
            canonical_json(value)
        return
    assert is_fast_path_safe(value)
    assert canonical_json(value) == expected


@needs_orjson
def test_escaping_of_every_special_character_matches() -> None:
    every = "".join(chr(i) for i in range(0x100)) + "\u2028\u2029/中文😀\U0010ffff"
    value = {"k": every, every.replace("\U0010ffff", ""): [every]}
    assert is_fast_path_safe({"k": every})
    assert canonical_json(value) == _ref(value)
    out = canonical_json({"s": "\x00\x1f\b\t\n\f\r/\u2028"})
    assert out == b'{"s":"\\u0000\\u001f\\b\\t\\n\\f\\r/\xe2\x80\xa8"}'


def test_rfc8785_key_order_is_utf16_not_codepoint() -> None:
    # U+1F600 (UTF-16 D83D DE00) sorts BEFORE U+FF21 in UTF-16, after it in UTF-8.
    value = {"\uff21": 1, "😀": 2, "a": 3}
    assert not is_fast_path_safe(value)
    assert canonical_json(value) == '{"a":3,"😀":2,"Ａ":1}'.encode()


def test_rfc8785_appendix_example() -> None:
    # RFC 8785 §3.2.3 sorting example (keys in UTF-16 order).
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign",'
        '"😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonical_json(value) == expected


def test_floats_use_ecmascript_form() -> None:
    value = {"a": 1.0, "b": 1e21, "c": 1e-7, "d": -0.0, "e": 0.1}
    assert not is_fast_path_safe(value)
    assert canonical_json(value) == b'{"a":1,"b":1e+21,"c":1e-7,"d":0,"e":0.1}'


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -math.inf, 2**53, -(2**53), 2**64, {1: "x"}, {(1, 2): 3}, b"x", {1.5}],
)
def test_non_json_values_raise(bad: Any) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonical_json({"v": bad} if not isinstance(bad, dict) else bad)
    assert isinstance(info.value, EncodingError)


def test_lone_surrogate_raises_on_both_paths() -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json({"k": "\ud800"})
    with pytest.raises(CanonicalizationError):
        canonical_json({"\ud800": 1})


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 5000, 100_000])
@pytest.mark.parametrize("leaf", [[], 1.5])
def test_deep_nesting_raises_typed_error(depth: int, leaf: Any) -> None:
    deep: Any = leaf
    for _ in range(depth):
        deep = [deep]
    with pytest.raises(CanonicalizationError, match="nested deeper"):
        canonical_json(deep)
    with pytest.raises(CanonicalizationError, match="nested deeper"):
        canonical_json_reference(deep)


def test_deep_nesting_is_refused_whatever_the_recursion_limit() -> None:
    # web3's dependencies raise the limit to 100,000 on import; the explicit depth limit
    # must still refuse (not overflow the C stack) in such a process.
    import subprocess
    import sys

    code = (
        "import sys; sys.setrecursionlimit(100_000)\n"
        "from ledger.canonical import canonical_json\n"
        "from ledger.errors import CanonicalizationError\n"
        "d = []\n"
        "for _ in range(200_000): d = [d]\n"
        "try:\n    canonical_json(d)\nexcept CanonicalizationError:\n    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "refused", out.stderr


def test_nesting_up_to_the_limit_is_canonical() -> None:
    deep: Any = 1.5  # a float forces the reference path
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canonical_json(deep) == _ref(deep)
    deep = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canonical_json(deep) == _ref(deep)


def test_subclasses_take_the_reference_path() -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    value = {"c": Colour.RED, "n": Level.HIGH, "t": (1, 2), "b": True}
    assert not is_fast_path_safe(value)
    assert canonical_json(value) == b'{"b":true,"c":"red","n":3,"t":[1,2]}'


def test_reference_function_matches() -> None:
    v = {"z": [1, "二", None], "a": {"y": False}}
    assert (
        canonical_json_reference(v)
        == canonical_json(v)
        == b'{"a":{"y":false},"z":[1,"\xe4\xba\x8c",null]}'
    )


def test_fallback_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical, "_orjson", None)
    v = {"b": [1, 2.5, "中"], "a": None}
    assert not canonical.is_fast_path_safe(v)
    assert canonical.canonical_json(v) == _ref(v)


def test_typical_epcis_event_is_fast_path() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-01-31T08:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["https://id.gs1.org/01/06901234567892/21/ABC123"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "readPoint": {"id": "https://id.gs1.org/414/6901234000004"},
        "cn:备注": "黄芪 批次",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/06901234567892", "quantity": 10}],
    }
    assert is_fast_path_safe(event) == canonical.HAVE_FAST_PATH
    assert canonical_json(event) == _ref(event)


# --------------------------------------------------------------------------- stable bytes


def _as_json(value: Any) -> Any:
    """``value`` as a JSON parser returns it (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    return value


_with_tuples = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=20,
)


@given(_with_tuples | _int_json)
@settings(max_examples=800, deadline=None)
def test_stable_flag_is_a_proof_of_round_trip_stability(value: Any) -> None:
    """canonical_json_stable gives canonical_json's bytes (or error); "stable" bytes parse back
    to an equal value whose canonical JSON is the same bytes, with any JSON parser."""
    try:
        expected = canonical_json(value)
    except CanonicalizationError as e:
        with pytest.raises(CanonicalizationError) as info:
            canonical_json_stable(value)
        assert str(info.value) == str(e)
        return
    data, stable = canonical_json_stable(value)
    assert data == expected
    assert not stable or is_fast_path_safe(value)
    if stable:
        import orjson

        for parsed in (orjson.loads(data), json.loads(data)):
            assert parsed == _as_json(value)
            assert canonical_json(parsed) == data
            assert canonical_json_stable(parsed) == (data, True)


def test_reference_bytes_are_not_promised_stable() -> None:
    # An integral float is written as an integer; beyond 2**53 RFC 8785 refuses it when read
    # back as an int. Such bytes must never be taken as canonical without the re-check.
    data, stable = canonical_json_stable({"x": 1e16})
    assert (data, stable) == (b'{"x":10000000000000000}', False)
    with pytest.raises(CanonicalizationError):
        canonical_json(json.loads(data))
    assert canonical_json_stable({"x": 1.5})[1] is False
    assert canonical_json_stable({"\U0001f600": 1})[1] is False  # non-BMP key
    assert canonical_json_stable({"x": [1, "a", None, True]}) == (
        b'{"x":[1,"a",null,true]}',
        canonical.HAVE_FAST_PATH,
    )


def test_stable_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical, "_orjson", None)
    assert canonical_json_stable({"a": [1]}) == (b'{"a":[1]}', False)


@pytest.mark.parametrize("leaf", [1, 1.5, "x", None])
def test_depth_bound_is_the_same_on_both_paths(leaf: object) -> None:
    # MAX_DEPTH containers are accepted and one more is refused, whether or not the value
    # can take the orjson fast path (a float sends it to the reference path).
    def nest(n: int) -> object:
        v = leaf
        for _ in range(n):
            v = [v]
        return v

    canonical_json(nest(MAX_DEPTH))
    with pytest.raises(CanonicalizationError):
        canonical_json(nest(MAX_DEPTH + 1))
