"""Recalls: a signed capture whose every event is a recall (or recall lift) of a lot.

The service never signs for a party: the owner of the GTIN (or a regulator) signs an
ObjectEvent on the LGTIN (``quantityList`` epcClass, or ``epcList`` of packs) with
disposition ``recalled`` and submits it here. Ownership is checked *before* anything is
written (403); the lifecycle's R6 then marks every known pack of the lot, wherever it is
(docs/spec/08-service.md §8.8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.auth import Caller
from api.container import Container
from api.errors import PermissionDenied
from api.services.common import load_products
from api.services.ingest import CaptureReceipt, ingest_capture
from ledger import lifecycle as lc
from ledger.journey import canonical_event

__all__ = ["RECALL_STEPS", "submit_recall"]

RECALL_STEPS = frozenset({lc.STEP_RECALL, lc.STEP_RECALL_LIFT})


def _gtins(event: Mapping[str, Any]) -> set[str]:
    codes = list(lc.touched_codes(event))
    for q in event.get("quantityList") or []:
        if isinstance(q, Mapping) and isinstance(q.get("epcClass"), str):
            codes.append(q["epcClass"])
    return {g for g in (lc.gtin_of_code(c) for c in codes) if g is not None}


def submit_recall(c: Container, caller: Caller, wire: Mapping[str, Any]) -> CaptureReceipt:
    """Check the caller may recall every GTIN named, then ingest the capture.

    Args:
        c: The container.
        caller: The authenticated organisation (GTIN owner or regulator).
        wire: The signed capture (wire form) holding only recall events.

    Returns:
        The capture receipt; ``affected`` counts the packs newly marked recalled.

    Raises:
        PermissionDenied: The caller does not own every GTIN named and is not a regulator.
    """
    if not caller.is_regulator:
        cache: dict[str, str] = {}
        gtins: set[str] = set()
        for ev in wire.get("events") or []:
            if isinstance(ev, Mapping):
                gtins |= _gtins(canonical_event(ev, cache))
        with c.engine.connect() as conn:
            products = load_products(conn, sorted(gtins))
        for gtin in sorted(gtins):
            product = products.get(gtin)
            if product is None or product.statement.owner != caller.org:
                raise PermissionDenied(
                    f"only the owner of GTIN {gtin} or a regulator may recall it"
                )
    return ingest_capture(c, caller, wire, only_steps=RECALL_STEPS)
