"""The scalar half of the orjson fast-path proof (``ledger.canonical.is_fast_path_scalar``).

Two hot loops inline the predicate rather than call it (``ledger.canonical._safe`` and
``api.services.common._plain``, the item-state serialiser): these tests pin its contract and
hold both copies to it, so that neither proof can accept a value the other refuses.
"""

from __future__ import annotations

import decimal
import enum
import fractions
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.services import common
from ledger import canonical
from ledger.canonical import FAST_PATH_INT_MAX, is_fast_path_safe, is_fast_path_scalar


class _IntEnum(enum.IntEnum):
    ONE = 1


class _StrEnum(enum.StrEnum):
    A = "a"


class _Int(int):
    pass


class _Str(str):
    __slots__ = ()


ACCEPTED: list[Any] = [
    "",
    "plain ascii",
    "药品追溯 é",  # BMP, non-ASCII
    "\U0001f600 \U00020000",  # outside the BMP: only object *keys* must stay in the BMP
    '\x00\x1f"\\/\x7f\u2028',  # controls and escapes: orjson escapes them as RFC 8785 does
    "\ud800",  # a lone surrogate passes the proof; orjson's refusal is retried by callers
    True,
    False,
    None,
    0,
    1,
    -1,
    FAST_PATH_INT_MAX,
    -FAST_PATH_INT_MAX,
]

REFUSED: list[Any] = [
    FAST_PATH_INT_MAX + 1,  # not exact as an IEEE 754 double: the reference path refuses it
    -FAST_PATH_INT_MAX - 1,
    10**30,
    0.0,  # every float: ECMAScript number form differs from orjson's
    1.0,
    -0.0,
    1e21,
    float("nan"),
    float("inf"),
    _IntEnum.ONE,  # subclasses of int and str, whatever their value
    _Int(1),
    _StrEnum.A,
    _Str("a"),
    b"bytes",
    bytearray(b"x"),
    decimal.Decimal(1),
    fractions.Fraction(1, 2),
    1j,
    object(),
    {},  # containers are not scalars: the walks recurse into them instead
    [],
    (),
]


def _id(value: Any) -> str:
    # Stable across processes (pytest-xdist compares the collected ids): no memory addresses.
    return "object()" if type(value) is object else repr(value)


SCALARS = [v for v in ACCEPTED + REFUSED if type(v) not in (dict, list, tuple)]


def test_fast_path_int_bound() -> None:
    assert FAST_PATH_INT_MAX == 2**53 - 1


@pytest.mark.parametrize("value", ACCEPTED, ids=_id)
def test_accepts(value: Any) -> None:
    assert is_fast_path_scalar(value) is True


@pytest.mark.parametrize("value", REFUSED, ids=_id)
def test_refuses(value: Any) -> None:
    assert is_fast_path_scalar(value) is False


def test_bool_has_no_subclasses() -> None:
    # Why an exact-type test of bool is complete: Python refuses to subclass it.
    with pytest.raises(TypeError):
        type("B", (bool,), {})


@pytest.mark.parametrize("value", SCALARS, ids=_id)
def test_canonical_walk_agrees(value: Any) -> None:
    want = is_fast_path_scalar(value)
    assert canonical._safe(value) is want
    assert canonical._safe([value]) is want
    assert canonical._safe({"k": value}) is want
    if canonical.HAVE_FAST_PATH:
        assert is_fast_path_safe(value) is want


@pytest.mark.parametrize("value", SCALARS, ids=_id)
def test_state_serialiser_agrees(value: Any) -> None:
    want = is_fast_path_scalar(value)
    assert common._plain((value,)) is want
    assert common._plain(("x", value, None)) is want


@given(st.integers(min_value=-(2**64), max_value=2**64))
def test_ints_agree_at_any_size(n: int) -> None:
    want = -FAST_PATH_INT_MAX <= n <= FAST_PATH_INT_MAX
    assert is_fast_path_scalar(n) is want
    assert canonical._safe([n]) is want
    assert common._plain((n,)) is want
