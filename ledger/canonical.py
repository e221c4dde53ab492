"""RFC 8785 (JCS) canonical JSON.

:func:`canonical_json` is the only serialiser for bytes that get hashed or signed. The
``rfc8785`` package is the reference; it is pure Python and slow (tens of thousands of events
per second). Where ``orjson`` is installed, values that are *proven* to serialise identically
take a fast path (SPEC §4.1):

* RFC 8785 sorts object keys by UTF-16 code units; ``orjson`` sorts by UTF-8 bytes. The two
  orders agree for keys made only of Basic Multilingual Plane characters (one UTF-16 unit per
  code point, and UTF-8 preserves code point order), so any key outside the BMP falls back.
* RFC 8785 writes numbers in ECMAScript form (``1e+21``, ``1`` for ``1.0``); ``orjson`` does
  not, so any float falls back. Integers are exact only within ±(2**53 - 1); larger ones are
  refused by RFC 8785 and also fall back (to raise the same error).
* String escaping is identical: both escape ``"`` and ``\\``, use ``\\b \\t \\n \\f \\r`` and
  ``\\u00xx`` (lower-case hex) for the other C0 controls, and emit everything else - ``/``,
  DEL, U+2028/U+2029 and all non-ASCII - as raw UTF-8. A differential test checks this.
* Only exact built-in types (``dict``, ``list``, ``tuple``, ``str``, ``int``, ``bool``,
  ``None``) qualify: subclasses such as enums may serialise differently.

Anything ``orjson`` refuses (lone surrogates, very deep nesting) is retried on the reference
path so that the error raised is the same whichever path ran.

Bytes from the fast path are also *stable*: they parse back (with any JSON parser) to a value
of the same exact types whose canonical JSON is the same bytes, so a verifier that made them
itself need not re-check them (:func:`canonical_json_stable`, SPEC §4.9). The reference path
does not promise that: an integral float such as ``1e16`` is written as an integer beyond
±(2**53 - 1), which RFC 8785 then refuses to write again.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

import rfc8785

from ledger.errors import CanonicalizationError

_orjson: ModuleType | None
try:  # orjson is an optional accelerator; the reference path is always available.
    import orjson as _orjson_module

    _orjson = _orjson_module
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

__all__ = [
    "FAST_PATH_INT_MAX",
    "HAVE_FAST_PATH",
    "MAX_DEPTH",
    "canonical_json",
    "canonical_json_reference",
    "canonical_json_stable",
    "is_fast_path_safe",
    "is_fast_path_scalar",
]

#: True when the orjson fast path is available in this interpreter.
HAVE_FAST_PATH: Final[bool] = _orjson is not None

#: Largest integer magnitude on the fast path. RFC 8785 §3.2.2.3 / I-JSON: integers must be
#: exactly representable as IEEE 754 doubles; larger ones take the reference path (which refuses
#: them, so the error is the same whichever path ran). See :func:`is_fast_path_scalar`.
FAST_PATH_INT_MAX: Final = 2**53 - 1
_BMP_LIMIT: Final = "\uffff"

#: Deepest container nesting accepted. Yima's formats nest a handful of levels; an explicit
#: limit keeps the error typed and the process safe whatever the interpreter's recursion
#: limit is (web3's dependencies raise it to 100,000 on import, where 100,000 nested
#: brackets would overflow the C stack instead of raising RecursionError).
MAX_DEPTH: Final = 64
_ORJSON_OPTS: Final[int] = _orjson.OPT_SORT_KEYS if _orjson is not None else 0


def _safe(value: Any, depth: int = 0) -> bool:
    """Whether orjson is proven to give RFC 8785 bytes for ``value`` (walks it once).

    Written for speed: scalars are checked inline (:func:`is_fast_path_scalar`, unrolled),
    only containers recurse, and each object's keys are checked in one pass over their
    concatenation.
    """
    # ``value`` is a container at ``depth`` (0 = outermost): the same bound as _check_depth.
    if depth >= MAX_DEPTH:
        raise CanonicalizationError(f"JSON value is nested deeper than {MAX_DEPTH} levels")
    t = type(value)
    items: Any
    if t is dict:
        try:
            keys = "".join(value)
        except TypeError:
            return False  # a non-string key: RFC 8785 refuses it, let the reference path raise
        # Non-BMP keys sort differently in UTF-16 and UTF-8 (SPEC §4.1).
        if not keys.isascii() and max(keys) > _BMP_LIMIT:
            return False
        items = value.values()
    elif t is list or t is tuple:
        items = value
    else:
        items = (value,)
    for v in items:
        t = type(v)
        # is_fast_path_scalar, inlined: a call per value would slow the walk by half.
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if not -FAST_PATH_INT_MAX <= v <= FAST_PATH_INT_MAX:
                return False
            continue
        if t is dict or t is list or t is tuple:
            if not _safe(v, depth + 1):
                return False
            continue
        return False  # floats, subclasses, and anything that is not JSON
    return True


def is_fast_path_scalar(value: Any) -> bool:
    """Report whether orjson is proven to write the scalar ``value`` as RFC 8785 does.

    The scalar half of the fast-path proof (:func:`is_fast_path_safe` walks containers and
    checks object keys): an exact ``str`` (any code points: the escaping is identical, and
    characters outside the BMP matter only in object keys), ``bool`` or ``None``, or an exact
    ``int`` within ±:data:`FAST_PATH_INT_MAX`. Floats (ECMAScript number form), subclasses
    (an enum may serialise differently) and any other type are refused. A ``str`` orjson
    cannot encode (a lone surrogate) passes: callers retry orjson's refusals on the reference
    path. Whether orjson is installed is not part of it (:data:`HAVE_FAST_PATH`).

    Hot loops that prove values (this module's walk, the service's item-state serialiser)
    inline this test rather than call it, as the call would cost more than the test; their
    unit tests hold each copy to this function.

    Args:
        value: Any Python value.

    Returns:
        True when ``value`` is such a scalar.
    """
    t = type(value)
    if t is int:
        n: int = value
        return -FAST_PATH_INT_MAX <= n <= FAST_PATH_INT_MAX
    return t is str or t is bool or value is None


def _check_depth(value: Any) -> None:
    """Raise unless ``value`` nests at most MAX_DEPTH containers deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        t = type(v)
        if t is dict or isinstance(v, dict):
            children: Any = v.values()
        elif t is list or t is tuple or isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth >= MAX_DEPTH:
            raise CanonicalizationError(f"JSON value is nested deeper than {MAX_DEPTH} levels")
        stack.extend((c, depth + 1) for c in children)


def is_fast_path_safe(value: Any) -> bool:
    """Report whether ``value`` would take the orjson fast path.

    Args:
        value: Any Python value.

    Returns:
        True when orjson is installed and the value contains only types and keys for which
        orjson's output is proven identical to RFC 8785.
    """
    if _orjson is None:
        return False
    try:
        return _safe(value)
    except CanonicalizationError:
        return False


def canonical_json_reference(value: Any) -> bytes:
    """Serialise ``value`` with the reference RFC 8785 implementation only.

    Args:
        value: A JSON value made of dict (str keys), list, tuple, str, int, float, bool, None.

    Returns:
        The RFC 8785 canonical UTF-8 bytes.

    Raises:
        CanonicalizationError: The value is not representable (NaN, infinity, an integer
            beyond ±(2**53 - 1), a non-string key, a lone surrogate, an unsupported type,
            nesting deeper than MAX_DEPTH).
    """
    _check_depth(value)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as e:
        # rfc8785 lets UnicodeEncodeError escape for a lone surrogate in a key.
        raise CanonicalizationError(f"not RFC 8785 serialisable: {e}") from e
    except RecursionError as e:
        raise CanonicalizationError("JSON value is nested too deeply") from e


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON (SPEC §4.1).

    Uses orjson where that is proven byte-identical and falls back to the reference
    implementation otherwise; both paths give the same bytes or the same error.

    Args:
        value: A JSON value made of dict (str keys), list, tuple, str, int, float, bool, None.

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        CanonicalizationError: The value cannot be put in RFC 8785 form.
    """
    return canonical_json_stable(value)[0]


def canonical_json_stable(value: Any) -> tuple[bytes, bool]:
    """:func:`canonical_json`, and whether the bytes are proven stable under a round trip.

    Args:
        value: As for :func:`canonical_json`.

    Returns:
        ``(bytes, stable)``: the same bytes :func:`canonical_json` returns; ``stable`` is True
        when they came from the fast path, i.e. ``value`` holds only plain JSON types, integers
        within ±(2**53 - 1) and no floats. Then the bytes parse back to an equal value (lists
        for tuples) whose canonical JSON is these very bytes.

    Raises:
        CanonicalizationError: The value cannot be put in RFC 8785 form.
    """
    # The walk always runs: it enforces MAX_DEPTH (raising) before any recursive serialiser.
    # (the reference path below checks the depth of values _safe could not prove).
    safe = _safe(value)
    if _orjson is not None and safe:
        try:
            out: bytes = _orjson.dumps(value, option=_ORJSON_OPTS)
            return out, True
        except _orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference path raise the uniform error
    return canonical_json_reference(value), False
