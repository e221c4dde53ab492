"""Identifier canonicalisation of an event before the lifecycle rules see it (SPEC §8.4, §10.8).

A signed event names its objects, classes, sites and parties in whatever form the producer
wrote them (EPC URNs, Digital Links on any domain, element strings). The lifecycle rules
compare identifiers as strings, so the service, the full audit and the offline bundle
verifier must all map an event to the **same** canonical copy before the rules run;
otherwise a replay would disagree with the logged outcome. This module is that one mapping.
The logged event always stays exactly as signed: only the rules see the copy.

Pure (no I/O, clock or randomness), like the rest of :mod:`ledger`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from ledger.errors import CodeError
from ledger.identifiers import epc_to_canonical, gs1_check_digit

__all__ = [
    "CLASS_LISTS",
    "ID_LISTS",
    "SOURCE_DEST_LISTS",
    "canonical_event",
    "canonical_id",
    "canonical_location",
]

#: Event members holding lists of instance identifiers.
ID_LISTS: Final = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
#: Event members holding ``{"epcClass", ...}`` quantity elements.
CLASS_LISTS: Final = (
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputQuantityList",
)
#: Source/destination lists and the member of each element that holds the identifier.
SOURCE_DEST_LISTS: Final = (("sourceList", "source"), ("destinationList", "destination"))

# Ids already in canonical form with only unreserved characters (no percent-encoding question
# arises): the common case for producers that build events with the ledger's builders. Only
# the check digit needs checking; epc_to_canonical returns such an id unchanged
# (tests/unit/test_journey_fastpath.py checks this differentially), everything else goes
# through the full parser. SGTIN, GTIN, LGTIN, SSCC, SGLN (with or without extension) and
# party GLN; ASCII digits only ("\d" would also take other scripts' digits).
_CANONICAL_FAST: Final = re.compile(
    r"https://id\.gs1\.org/(?:01/([0-9]{14})(?:/(?:21|10)/[A-Za-z0-9._-]{1,20})?"
    r"|00/([0-9]{18})|414/([0-9]{13})(?:/254/[A-Za-z0-9._-]{1,20})?|417/([0-9]{13}))"
)


@lru_cache(maxsize=1 << 12)
def _key_ok(key: str) -> bool:
    # Cached: the key is the GTIN/GLN part, shared by every serial of a product.
    return int(key[-1]) == gs1_check_digit(key[:-1])


def _fast_canonical(value: str) -> bool:
    m = _CANONICAL_FAST.fullmatch(value)
    if m is None:
        return False
    return _key_ok(m.group(1) or m.group(2) or m.group(3) or m.group(4))


def canonical_id(value: str, cache: dict[str, str]) -> str:
    """Canonicalise one EPC / Digital Link identifier, memoised (identifiers repeat a lot).

    Args:
        value: The identifier as written in the event.
        cache: Memo of identifier -> canonical form, shared across calls.

    Returns:
        The canonical ``https://id.gs1.org`` Digital Link (or ``urn:yima:nmpa:`` form).

    Raises:
        CodeError: The identifier is malformed.
    """
    got = cache.get(value)
    if got is None:
        got = value if _fast_canonical(value) else epc_to_canonical(value)
        cache[value] = got
    return got


def canonical_location(value: str, cache: dict[str, str]) -> str:
    """Like :func:`canonical_id`, but a non-GS1 location URI stays as written.

    Args:
        value: A read point, business location, source or destination identifier.
        cache: The same memo as :func:`canonical_id`.

    Returns:
        The canonical Digital Link, or ``value`` itself when it is not a GS1 identifier.
    """
    try:
        return canonical_id(value, cache)
    except CodeError:
        # Memoised as written; a later canonical_id of the same string returns it too
        # (the service has always behaved so, and the replay must match it).
        cache[value] = value
        return value


def canonical_event(
    event: Mapping[str, Any], cache: dict[str, str] | None = None
) -> dict[str, Any]:
    """A copy of ``event`` with every identifier in canonical form, for the lifecycle rules.

    SPEC §8.4 step 4 (the service) and §10.8 step 1 (the audit and bundles): object
    (``parentID``, EPC lists), class (``epcClass`` of quantity lists), location (``readPoint``,
    ``bizLocation``) and source/destination identifiers. Everything else is shared with
    ``event`` (a shallow copy): callers must not mutate the result's nested members.

    Args:
        event: The event as signed.
        cache: Memo of identifier -> canonical form (a fresh one when None).

    Returns:
        The canonicalised copy.

    Raises:
        CodeError: An object or class identifier is malformed.
    """
    memo: dict[str, str] = {} if cache is None else cache
    out = dict(event)
    get = event.get
    # The memo is read inline (most identifiers of a capture repeat); canonical_id fills it.
    # "type(x) is dict or isinstance(x, Mapping)": the same test, without the ABC machinery
    # for the usual plain dict.
    parent = get("parentID")
    if isinstance(parent, str):
        out["parentID"] = memo.get(parent) or canonical_id(parent, memo)
    for key in ID_LISTS:
        value = get(key)
        if isinstance(value, list):
            out[key] = [
                (memo.get(v) or canonical_id(v, memo)) if isinstance(v, str) else v for v in value
            ]
    for key in CLASS_LISTS:
        value = get(key)
        if isinstance(value, list):
            out[key] = [_class_element(q, memo) for q in value]
    for key in ("readPoint", "bizLocation"):
        value = get(key)
        if (type(value) is dict or isinstance(value, Mapping)) and isinstance(value.get("id"), str):
            out[key] = {**value, "id": _location(value["id"], memo)}
    for list_key, item_key in SOURCE_DEST_LISTS:
        value = get(list_key)
        if isinstance(value, list):
            out[list_key] = [
                {**sd, item_key: _location(sd[item_key], memo)}
                if (type(sd) is dict or isinstance(sd, Mapping))
                and isinstance(sd.get(item_key), str)
                else sd
                for sd in value
            ]
    return out


def _class_element(q: Any, memo: dict[str, str]) -> Any:
    if (type(q) is dict or isinstance(q, Mapping)) and isinstance(q.get("epcClass"), str):
        cls = q["epcClass"]
        return {**q, "epcClass": memo.get(cls) or canonical_id(cls, memo)}
    return q


def _location(value: str, memo: dict[str, str]) -> str:
    return memo.get(value) or canonical_location(value, memo)
