"""GET /v1/items/{code}, /history, /contents — {code} may be any scanned form (URL-encoded)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, ContainerDep
from api.routers import problems
from api.schemas import (
    ContentPublic,
    ContentsPublic,
    DispensePublic,
    HistoryEventPublic,
    HistoryPublic,
    ItemPublic,
    ProductPublic,
)
from api.services import items
from api.services.common import ProductInfo

router = APIRouter(prefix="/v1/items", tags=["items"])

_ERRORS = problems(401, 403, 404, 422)


def product_public(p: ProductInfo) -> ProductPublic:
    """Shape registered master data."""
    return ProductPublic(
        **p.statement.public(), owner=p.statement.owner, registered_index=p.registered_index
    )


# The suffix routes come first: ``{code:path}`` would otherwise swallow "/history".
@router.get("/{code:path}/history", response_model=HistoryPublic, responses=_ERRORS)
def get_history(code: str, c: ContainerDep, caller: CallerDep) -> HistoryPublic:
    """The whole journey of an item, in log order, each with its event ID and log index.

    `relation` says why an entry is part of it: `own` (names the item), `parent` (an event of
    the case/pallet it was packed in, between packing and unpacking), `lot` (about its lot:
    recalls, the processing step that made it) or `input` (an input lot of that processing
    step, e.g. the raw herb of TCM decoction pieces).
    """
    view, entries = items.get_history(c, caller, code)
    return HistoryPublic(
        code=view.code,
        events=[
            HistoryEventPublic(
                event_id=e.event_id,
                index=e.index,
                relation=e.relation,
                via=e.via,
                event=dict(e.event),
                record_time=e.record_time,
                outcome=e.outcome,
            )
            for e in entries
        ],
    )


@router.get("/{code:path}/contents", response_model=ContentsPublic, responses=_ERRORS)
def get_contents(code: str, c: ContainerDep, caller: CallerDep) -> ContentsPublic:
    """What is inside a case or pallet (SSCC) now, recursively, breadth first."""
    view, inside = items.get_contents(c, caller, code)
    return ContentsPublic(
        code=view.code,
        children=[ContentPublic(code=k, depth=d, parent=p) for k, d, p in inside],
    )


@router.get("/{code:path}", response_model=ItemPublic, responses=_ERRORS)
def get_item(code: str, c: ContainerDep, caller: CallerDep) -> ItemPublic:
    """Current state of a pack, case or pallet.

    `{code}` is whatever was scanned, URL-encoded: a Digital Link on any domain, a GS1
    element string (GS as `%1D`, AIM prefix allowed), HRI `(01)…(21)…`, an EPC URN or a
    20-digit NMPA code. Visible to regulators, the product owner and parties in its journey.
    """
    view = items.get_item(c, caller, code)
    s = view.state
    first = s.first_dispense
    return ItemPublic(
        code=view.code,
        kind=view.ident.kind,
        product=product_public(view.product) if view.product else None,
        lot=s.lot,
        expiry=s.expiry,
        status=s.status,
        custodian=s.custodian,
        location=s.location,
        parent=s.parent,
        in_transit_to=s.in_transit_to,
        recalled=s.recalled,
        quarantined=s.quarantined,
        dispense_count=s.dispense_count,
        first_dispense=None
        if first is None
        else DispensePublic(
            org=first.org,
            location=first.location,
            time=first.time,
            event_id=first.event_id,
            administered=first.administered,
        ),
        last_index=view.updated_index,
    )
